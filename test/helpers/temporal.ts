/**
 * One Temporal environment of each kind per test run (mocha root hooks in test/setup.ts tear them
 * down): the stack's dev server (Schedules, visibility) and the Java time-skipping test server,
 * started from the binary that scripts/install-test-server.sh installed — never downloaded.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createActivities } from '../../activities';
import type { DrConfig } from '../../src/config';
import { temporalSettings } from '../../temporal/connection';
import { WORKFLOWS_PATH } from '../../temporal/worker';
import { stackConfig, uniqueSuffix } from './config';

export const TEST_SERVER_PATH =
  process.env.TEMPORAL_TEST_SERVER_PATH ?? path.join(homedir(), '.cache/odoo-dr/bin/temporal-test-server');

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
let devEnv: Promise<TestWorkflowEnvironment> | undefined;
let skippingEnv: Promise<TestWorkflowEnvironment> | undefined;

/** The workflow bundle, built once per run from the compiled workflows. */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietBundlerLogger });
  return bundle;
}

const quietBundlerLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (m: string) => console.warn(m),
  error: (m: string) => console.error(m),
};

/** The local stack's dev server. */
export function devServer(): Promise<TestWorkflowEnvironment> {
  devEnv ??= (async () => {
    const { connectionOptions, namespace } = temporalSettings(stackConfig(), {});
    return TestWorkflowEnvironment.createFromExistingServer({ address: connectionOptions.address, namespace });
  })();
  return devEnv;
}

/** The Java time-skipping test server (fails loudly if it is not installed). */
export function timeSkippingServer(): Promise<TestWorkflowEnvironment> {
  skippingEnv ??= (async () => {
    if (!existsSync(TEST_SERVER_PATH)) {
      throw new Error(`time-skipping test server not found at ${TEST_SERVER_PATH}: run scripts/install-test-server.sh`);
    }
    return TestWorkflowEnvironment.createTimeSkipping({
      server: { executable: { type: 'existing-path', path: TEST_SERVER_PATH } },
    });
  })();
  return skippingEnv;
}

export async function teardownServers(): Promise<void> {
  const envs = [devEnv, skippingEnv].filter((e): e is Promise<TestWorkflowEnvironment> => e !== undefined);
  devEnv = skippingEnv = undefined;
  await Promise.all(envs.map(async (e) => (await e).teardown()));
}

export interface WorkerRun {
  env: TestWorkflowEnvironment;
  config?: DrConfig;
  /** Replaces the real activities (only to inject faults). */
  activities?: object;
}

/** Runs `fn` while a worker on a fresh task queue serves it; returns what `fn` returns. */
export async function withWorker<T>(run: WorkerRun, fn: (taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = `test-${uniqueSuffix()}`;
  const config = run.config ?? stackConfig();
  const worker = await Worker.create({
    connection: run.env.nativeConnection,
    namespace: run.env.namespace ?? 'default',
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: run.activities ?? createActivities({ config }),
  });
  return worker.runUntil(fn(taskQueue));
}
