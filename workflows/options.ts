/** Timeouts and retry policies of activities, by kind. Permanent errors are never retried (see src/errors.ts). */
import type { ActivityOptions, LocalActivityOptions } from '@temporalio/workflow';

/** Short metadata calls (catalog queries, listings). */
export const quickActivity: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 6,
  },
};

/**
 * Long streaming work (dumps, filestores, uploads). The heartbeat timeout is what detects a dead
 * worker: the retry then resumes from the last heartbeat on another worker.
 */
export const longActivity: ActivityOptions = {
  startToCloseTimeout: '24 hours',
  heartbeatTimeout: '60 seconds',
  retry: {
    initialInterval: '10 seconds',
    backoffCoefficient: 2,
    maximumInterval: '5 minutes',
    maximumAttempts: 5,
  },
};

/** Session bookkeeping: verification re-reads every artifact, so give it time; it heartbeats per artifact. */
export const sessionActivity: ActivityOptions = {
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '2 minutes', maximumAttempts: 5 },
};

/** Alerts and audit lines: a few quick attempts, never blocking the result for long. */
export const notifyActivity: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '5 seconds', maximumAttempts: 3 },
};

/**
 * Short steps run as local activities, in the worker that runs the workflow task: no round trip to
 * the server to dispatch them, and consecutive ones share one workflow task. Only for steps that take
 * seconds at most and may run on any worker (the workflow's). Retries wait on server timers (time
 * skipping applies; a worker restart does not lose the wait), as for normal activities.
 */
export const localQuickActivity: LocalActivityOptions = {
  startToCloseTimeout: quickActivity.startToCloseTimeout!,
  retry: quickActivity.retry!,
  localRetryThreshold: '1 second',
};

/** The audit line, locally: a few quick attempts. */
export const localNotifyActivity: LocalActivityOptions = {
  startToCloseTimeout: notifyActivity.startToCloseTimeout!,
  retry: notifyActivity.retry!,
  localRetryThreshold: '1 second',
};

/**
 * Long work pinned to one worker's own task queue (a session without a cloud copy lives on that
 * worker's disk). If that worker is gone, nothing else can do the work: fail after a while rather
 * than wait for ever.
 */
export function pinnedActivity(base: ActivityOptions, workerQueue: string): ActivityOptions {
  return { ...base, taskQueue: workerQueue, scheduleToStartTimeout: '10 minutes' };
}

/**
 * The steps that hold Odoo down or change a tenant in place (swap, health, drop, markers): quick,
 * so a worker that dies mid-step is noticed in a minute, not ten; few retries, then compensation.
 */
const fewQuickRetries: ActivityOptions['retry'] = { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 4 };

export const criticalActivity: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  retry: fewQuickRetries,
};

/** Odoo's stop and start commands (each may take up to 5 minutes): they heartbeat, so a dead worker is noticed in 30 s. */
export const serviceActivity: ActivityOptions = {
  startToCloseTimeout: '6 minutes',
  heartbeatTimeout: '30 seconds',
  retry: fewQuickRetries,
};

/**
 * Undoing a swap: retried until it succeeds (a rollback that gives up leaves a tenant half
 * recovered); only a permanent error (a database this recovery did not make) stops it.
 */
export const compensationActivity: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  // No maximumAttempts: unlimited.
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute' },
};
