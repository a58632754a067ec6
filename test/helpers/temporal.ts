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

export const TEST_SERVER_PATH = process.env.TEMPORAL_TEST_SERVER_PATH ?? path.join(homedir(), '.cache/odoo-dr/bin/temporal-test-server');

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

/** A new Java time-skipping test server from the installed binary (fails loudly if it is not installed); the caller tears it down. */
export async function startTimeSkippingServer(): Promise<TestWorkflowEnvironment> {
  if (!existsSync(TEST_SERVER_PATH)) {
    throw new Error(`time-skipping test server not found at ${TEST_SERVER_PATH}: run scripts/install-test-server.sh`);
  }
  return TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: TEST_SERVER_PATH } },
  });
}

/**
 * A time-skipping server for the calling `describe` alone: started on first use, torn down after its
 * tests. For tests that skip time: late in a full run the shared server had stopped skipping it (CI of
 * 2026-11-26 and -27: time-skipped hours waited in real time until the mocha timeout).
 */
export function ownTimeSkippingServer(): () => Promise<TestWorkflowEnvironment> {
  let server: Promise<TestWorkflowEnvironment> | undefined;
  after(async () => {
    const started = server;
    server = undefined;
    if (started) await (await started).teardown();
  });
  return () => (server ??= startTimeSkippingServer());
}

/** The time-skipping server shared by the run (torn down by the root hooks); for tests that do not skip time. */
export function timeSkippingServer(): Promise<TestWorkflowEnvironment> {
  skippingEnv ??= startTimeSkippingServer();
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
  try {
    return await worker.runUntil(fn(taskQueue));
  } finally {
    await terminateLeftovers(run.env, taskQueue);
  }
}

/**
 * A test that failed half-way leaves its workflows running with nobody to serve them. On the
 * time-skipping server such a workflow's pending task stops time skipping for every later test
 * (they then wait in real time and time out), so whatever is still open on this task queue ends here.
 */
async function terminateLeftovers(env: TestWorkflowEnvironment, taskQueue: string): Promise<void> {
  const open: string[] = [];
  if (env.supportsTimeSkipping) {
    // The Java test server has no visibility queries, only the list of open executions.
    const { executions } = await env.client.workflowService.listOpenWorkflowExecutions({ namespace: env.namespace ?? 'default', maximumPageSize: 1000 });
    for (const e of executions) {
      const id = e.execution?.workflowId;
      if (id && (await env.client.workflow.getHandle(id).describe()).taskQueue === taskQueue) open.push(id);
    }
  } else {
    for await (const w of env.client.workflow.list({ query: `TaskQueue = "${taskQueue}" AND ExecutionStatus = "Running"` })) open.push(w.workflowId);
  }
  await Promise.all(
    open.map((id) =>
      env.client.workflow
        .getHandle(id)
        .terminate('left running by a test')
        .catch(() => undefined),
    ),
  );
}
