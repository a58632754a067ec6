/**
 * The odoo-dr worker: registers every workflow and the activities built from the configuration.
 * Runtime installs SIGINT/SIGTERM handlers that shut the worker down gracefully: running
 * activities get `shutdownGraceTime` to finish or heartbeat their progress.
 */
import path from 'node:path';
import { Worker, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities';
import type { DrConfig } from '../src/config';

/** Compiled workflows entry (dist/workflows/index.js next to dist/temporal/). */
export const WORKFLOWS_PATH = path.resolve(__dirname, '../workflows/index.js');

export interface WorkerSetup {
  config: DrConfig;
  connection: NativeConnection;
  namespace: string;
  taskQueue?: string;
  /** Prebuilt bundle (tests bundle once per run); default: bundle from WORKFLOWS_PATH. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** Activities to register instead of the real ones (tests only). */
  activities?: object;
}

export async function createWorker(setup: WorkerSetup): Promise<Worker> {
  const { config } = setup;
  return Worker.create({
    connection: setup.connection,
    namespace: setup.namespace,
    taskQueue: setup.taskQueue ?? config.taskQueue,
    ...(setup.workflowBundle ? { workflowBundle: setup.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
    activities: setup.activities ?? createActivities({ config }),
    // Backups are long and I/O bound: a few at once per worker, like DR_MAX_PARALLEL_BACKUPS.
    maxConcurrentActivityTaskExecutions: Math.max(4, config.performance.maxParallelBackups * 2),
    shutdownGraceTime: '30 seconds',
  });
}
