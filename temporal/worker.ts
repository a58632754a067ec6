/**
 * The odoo-dr worker: registers every workflow and the activities built from the configuration.
 * Runtime installs SIGINT/SIGTERM handlers that shut the worker down gracefully: running
 * activities get `shutdownGraceTime` to finish or heartbeat their progress.
 *
 * Each worker process also polls a task queue of its own (`<queue>/worker/<host>/<pid>-<random>`,
 * activities only): a backup without a cloud copy lives on one disk, so its workflow pins every
 * activity of the session to the worker that prepared it (the worker-specific task queue pattern).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { Client } from '@temporalio/client';
import { Worker, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities';
import type { DrConfig } from '../src/config';
import { sweepRestoreRoles } from '../src/restore/restore-role';
import { sweepDeadProcesses } from '../src/restore/scratch';
import { findInterruptedSwaps, undoInterruptedSwap } from '../src/recovery/pre-recovery';
import { removeUnfinishedSession, unfinishedLocalSessions } from '../src/backup/session';
import { tenantLockId } from '../workflows/lock';
import { prebuiltWorkflowBundle } from './bundle';

/** Compiled workflows entry (dist/workflows/index.js next to dist/temporal/). */
export const WORKFLOWS_PATH = path.resolve(__dirname, '../workflows/index.js');

/**
 * Workflows run in the SDK's worker thread (a V8 isolate of its own), not in the main one: the SDK's
 * in-thread mode (`debugMode`) installs its promise hooks and stack-trace handler process-wide, which
 * cost every activity's promises ~50 % more CPU in a filestore backup and restore (measured).
 * That thread runs workflow tasks of a few milliseconds over small objects: a young generation of
 * 2 MiB semi-spaces (V8's default grows to 16 MiB) is plenty, and holds ~20 MiB less once the
 * bundle is loaded and sessions run. V8 reads the flag when an isolate is created: it is set just
 * for the creation of the workflow thread, and put back. Cached workflows are bounded (the SDK's
 * default grows with the heap limit: thousands); a DR worker runs a few sessions and their tenant
 * locks at once, and an evicted workflow is replayed from its history at its next task.
 */
const WORKFLOW_THREAD_SEMI_SPACE_MIB = 2;
const MAX_CACHED_WORKFLOWS = 200;

/** Runs `create` (which starts the workflow thread) with V8's semi-space limit for new isolates lowered. */
async function withSmallYoungGeneration<T>(create: () => Promise<T>): Promise<T> {
  setFlagsFromString(`--max-semi-space-size=${WORKFLOW_THREAD_SEMI_SPACE_MIB}`);
  try {
    return await create();
  } finally {
    setFlagsFromString('--max-semi-space-size=0'); // 0: V8's default, for any isolate created later
  }
}

export interface WorkerSetup {
  config: DrConfig;
  connection: NativeConnection;
  namespace: string;
  taskQueue?: string;
  /** Prebuilt bundle (tests bundle once per run); default: `npm run bundle`'s when it matches the code, else bundle from WORKFLOWS_PATH. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** Activities to register instead of the real ones (tests only). */
  activities?: object;
}

/** This process's own task queue: readable in the Temporal UI, unique per process. */
export function workerQueueName(taskQueue: string): string {
  return `${taskQueue}/worker/${hostname()}/${process.pid}-${randomBytes(3).toString('hex')}`;
}

export interface OdooDrWorker {
  taskQueue: string;
  workerQueue: string;
  /** Which workflow code it runs: the prebuilt bundle, or bundled at start and why. */
  workflowCode: string;
  /** What dead workers of this host left (plaintext scratch, scratch copies, restore roles), removed at start. */
  swept: string[];
  /** Runs both pollers until SIGINT/SIGTERM (or `shutdown()`), then drains. */
  run(): Promise<void>;
  /** Runs until `promise` settles, then shuts down and drains; resolves to its value. */
  runUntil<T>(promise: Promise<T>): Promise<T>;
  shutdown(): void;
}

/**
 * Plaintext never outlives its step: what dead worker processes of this host left is removed before
 * this one takes work. PostgreSQL or a disk being unreachable must not stop the worker from starting.
 */
async function sweepLeftovers(config: DrConfig): Promise<string[]> {
  const swept: string[] = [];
  for (const sweep of [sweepDeadProcesses, sweepRestoreRoles]) {
    swept.push(...(await sweep(config).catch((err: Error) => [`(sweep skipped: ${err.message})`])));
  }
  return swept;
}

/**
 * A recovery interrupted mid-swap for good (its workflow terminated or reset: a running one holds the
 * tenant's lock and finishes or compensates by itself) leaves the tenant offline. Put it back as it
 * was before the recovery, from the markers the swap wrote. Unsure (Temporal unreachable) ⇒ untouched.
 */
async function reconcileInterruptedSwaps(config: DrConfig, client: Client): Promise<string[]> {
  const swaps = await findInterruptedSwaps(config);
  if (!swaps.length) return [];
  const done: string[] = [];
  for (const swap of swaps) {
    const lock = await workflowRunning(client, tenantLockId(swap.tenant));
    if (lock !== 'closed') {
      done.push(`${swap.tenant}: swap left alone (lock ${tenantLockId(swap.tenant)}: ${lock})`);
      continue;
    }
    const did = await undoInterruptedSwap(config, swap);
    if (did) done.push(did);
  }
  return done;
}

/** Whether the workflow runs; `unknown` when Temporal cannot say (then nothing is touched). */
async function workflowRunning(client: Client, workflowId: string): Promise<'running' | 'closed' | 'unknown'> {
  return client.workflow
    .getHandle(workflowId)
    .describe()
    .then(
      (d) => (d.status.name === 'RUNNING' ? 'running' : 'closed'),
      (err: Error) => (err.name === 'WorkflowNotFoundError' ? 'closed' : 'unknown'),
    );
}

/**
 * Sessions this host started and never finalised, whose backup workflow is over (terminated, or
 * failed before finalising): their dumps would fill the disk until retention, days later.
 */
async function removeAbandonedSessions(config: DrConfig, client: Client): Promise<string[]> {
  const unfinished = await unfinishedLocalSessions(config);
  if (!unfinished.length) return [];
  const removed: string[] = [];
  for (const u of unfinished) {
    if ((await workflowRunning(client, u.workflowId)) !== 'closed') continue;
    if (await removeUnfinishedSession(config, u.session)) removed.push(`${u.session}: unfinished session of ${u.workflowId} (no longer running) removed`);
  }
  return removed;
}

export async function createWorker(setup: WorkerSetup): Promise<OdooDrWorker> {
  const { config } = setup;
  const swept = await sweepLeftovers(config);
  // Both ask Temporal whether a workflow still runs (the worker's own connection, one client).
  const client = new Client({ connection: setup.connection, namespace: setup.namespace });
  swept.push(...(await reconcileInterruptedSwaps(config, client).catch((err: Error) => [`(interrupted swaps not checked: ${err.message})`])));
  swept.push(...(await removeAbandonedSessions(config, client).catch((err: Error) => [`(unfinished sessions not checked: ${err.message})`])));
  const taskQueue = setup.taskQueue ?? config.taskQueue;
  const workerQueue = workerQueueName(taskQueue);
  const activities = setup.activities ?? createActivities({ config, workerQueue });
  // Backups are long and I/O bound: a few at once per worker, like DR_MAX_PARALLEL_BACKUPS.
  const concurrency = Math.max(4, config.performance.maxParallelBackups * 2);
  // Resume points (upload parts, phases) reach the server at most this stale: a retry after a crash
  // redoes at most a few seconds of work (the SDK's default is up to 48 s with a 60 s timeout).
  const heartbeats = { maxHeartbeatThrottleInterval: '5 seconds', defaultHeartbeatThrottleInterval: '5 seconds' } as const;
  const prebuilt = setup.workflowBundle ? undefined : prebuiltWorkflowBundle();
  const bundle = setup.workflowBundle ?? (prebuilt && 'codePath' in prebuilt ? { codePath: prebuilt.codePath } : undefined);
  const workflowCode = setup.workflowBundle
    ? 'workflow bundle given by the caller'
    : prebuilt && 'codePath' in prebuilt
      ? `prebuilt workflow bundle ${prebuilt.codePath} (${prebuilt.builtAt})`
      : `workflows bundled at start (${prebuilt && 'reason' in prebuilt ? prebuilt.reason : ''})`;
  const shared = await withSmallYoungGeneration(() =>
    Worker.create({
      connection: setup.connection,
      namespace: setup.namespace,
      taskQueue,
      ...(bundle ? { workflowBundle: bundle } : { workflowsPath: WORKFLOWS_PATH }),
      activities,
      maxConcurrentActivityTaskExecutions: concurrency,
      shutdownGraceTime: '30 seconds',
      ...heartbeats,
      maxCachedWorkflows: MAX_CACHED_WORKFLOWS,
    }),
  );
  const own = await Worker.create({
    connection: setup.connection,
    namespace: setup.namespace,
    taskQueue: workerQueue,
    activities,
    maxConcurrentActivityTaskExecutions: concurrency,
    shutdownGraceTime: '30 seconds',
    ...heartbeats,
  });
  const run = async () => {
    await Promise.all([shared.run(), own.run()]);
  };
  const shutdown = () => {
    for (const w of [shared, own]) if (w.getState() === 'RUNNING') w.shutdown();
  };
  return {
    taskQueue,
    workerQueue,
    workflowCode,
    swept,
    run,
    shutdown,
    runUntil: async <T>(promise: Promise<T>): Promise<T> => {
      const running = run();
      try {
        return await promise;
      } finally {
        shutdown();
        await running;
      }
    },
  };
}
