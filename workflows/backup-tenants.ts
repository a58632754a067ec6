/**
 * The tenants of a backup session: how backupWorkflow runs them (one activity per tenant, small
 * tenants several to a child backupBatchWorkflow, each under its lock, a sliding window of units)
 * and the per-tenant and batch workflows themselves.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  ChildWorkflowFailure,
  condition,
  log,
  patched,
  proxyActivities,
  setHandler,
  startChild,
  type ActivityOptions,
  type ChildWorkflowHandle,
} from '@temporalio/workflow';
import type { Activities, TenantBackupDone } from '../activities';
import { DEFAULT_BATCH, planBackupUnits, type BatchSettings } from './backup-plan';
import { batchGoSignal, workflowIds, type BackupProgress } from './definitions';
import { acquireTenantLock, type HeldLock } from './lock';
import { longActivity, pinnedActivity } from './options';

const long = proxyActivities<Activities>(longActivity);

export interface TenantBackupInput {
  session: string;
  tenant: string;
  recipients: string[];
  cloud: boolean;
  /** Run on this worker's own task queue (a session without a cloud copy lives on its disk). */
  workerQueue?: string;
  /** The workflow already holding the tenant's lock (see BackupInput.lockedBy). */
  lockedBy?: string;
}

export interface TenantBackupSummary {
  tenant: string;
  status: 'complete' | 'failed';
  error?: string;
  durationMs: number;
  databaseBytes: number;
  filestoreFiles: number;
  filestoreBytes: number;
  blobsStored: number;
  blobsReused: number;
  blobsUploaded: number;
}

export function tenantSummary(tenant: string, done: TenantBackupDone): TenantBackupSummary {
  return {
    tenant,
    status: 'complete',
    durationMs: done.entry.durationMs,
    databaseBytes: done.databaseBytes,
    filestoreFiles: done.filestore.files,
    filestoreBytes: done.filestore.bytes,
    blobsStored: done.filestore.blobsStored,
    blobsReused: done.filestore.blobsReused,
    blobsUploaded: done.filestore.blobsUploaded,
  };
}

export function failedSummary(tenant: string, error: string): TenantBackupSummary {
  return {
    tenant,
    status: 'failed',
    error,
    durationMs: 0,
    databaseBytes: 0,
    filestoreFiles: 0,
    filestoreBytes: 0,
    blobsStored: 0,
    blobsReused: 0,
    blobsUploaded: 0,
  };
}

/** The root cause of a child workflow's or an activity's failure, with its type. */
export function failureMessage(err: unknown): string {
  let e: unknown = err;
  // Unwrap ChildWorkflowFailure → ActivityFailure → ApplicationFailure to the root cause.
  while (e instanceof ChildWorkflowFailure || e instanceof ActivityFailure) e = e.cause;
  if (e instanceof ApplicationFailure) return e.type ? `${e.type}: ${e.message}` : e.message;
  return e instanceof Error ? e.message : String(e);
}

/**
 * One tenant: database dump (with the Odoo facts of the same snapshot), filestore blobs, cloud
 * copies of the session artifacts, then its manifest entry. Fails as a whole; the parent records it.
 *
 * The child of sessions started before backupWorkflow ran its tenants itself (patch
 * `backup-inline-tenants`): kept, unchanged, for their histories.
 */
export async function tenantBackupWorkflow(input: TenantBackupInput): Promise<TenantBackupSummary> {
  // One activity: every local file it writes is read back by itself, so any worker on any host can
  // run it (and a retry elsewhere starts the tenant over).
  const run = input.workerQueue ? proxyActivities<Activities>(pinnedActivity(longActivity, input.workerQueue)) : long;
  // No dump while a recovery swaps the tenant (it would be of neither state), nor two at once.
  const lock = input.lockedBy === undefined && patched('tenant-lock') ? await acquireTenantLock(input.tenant, 'backup') : undefined;
  let done;
  try {
    done = await run.backupTenant({ session: input.session, tenant: input.tenant, recipients: input.recipients, cloud: input.cloud });
  } finally {
    await lock?.release();
  }
  return tenantSummary(input.tenant, done);
}

export interface BackupBatchInput {
  session: string;
  tenants: string[];
  recipients: string[];
  cloud: boolean;
  /** Take the locks, then wait for the signal `go` before backing up (started one unit ahead). */
  waitForGo: boolean;
  /** Run on this worker's own task queue (a session without a cloud copy lives on its disk). */
  workerQueue?: string;
  /** The workflow already holding the tenants' locks (see BackupInput.lockedBy). */
  lockedBy?: string;
}

export interface BackupBatchResult {
  tenants: TenantBackupSummary[];
}

/**
 * Several small tenants of a session (ID `backup/<session>/batch/<n>`): takes their locks, then
 * (after `go`, when it was started ahead) backs them up in one activity, `backupTenants`, which
 * heartbeats every finished tenant (a retry skips them). A tenant that failed for a transient reason,
 * or all of them if the batch activity failed as a whole, is then backed up alone (`backupTenant`,
 * with its retries). A tenant's failure is its own. Closing releases the locks (see backupWorkflow).
 */
export async function backupBatchWorkflow(input: BackupBatchInput): Promise<BackupBatchResult> {
  let go = !input.waitForGo;
  setHandler(batchGoSignal, () => {
    go = true;
  });
  const options = input.workerQueue ? pinnedActivity(longActivity, input.workerQueue) : longActivity;
  const summaries: TenantBackupSummary[] = [];
  const task = { session: input.session, recipients: input.recipients, cloud: input.cloud };
  const alone = (tenant: string) =>
    proxyActivities<Activities>({ ...options, activityId: `tenant/${tenant}` })
      .backupTenant({ ...task, tenant })
      .then(
        (done) => summaries.push(tenantSummary(tenant, done)),
        (err: unknown) => summaries.push(failedSummary(tenant, failureMessage(err))),
      );
  const held = await Promise.all(
    input.tenants.map((tenant) =>
      input.lockedBy !== undefined
        ? Promise.resolve({ tenant, error: undefined })
        : acquireTenantLock(tenant, 'backup').then(
            () => ({ tenant, error: undefined }),
            (err: unknown) => ({ tenant, error: failureMessage(err) }),
          ),
    ),
  );
  const ready: string[] = [];
  for (const h of held) {
    if (h.error !== undefined) summaries.push(failedSummary(h.tenant, h.error));
    else ready.push(h.tenant);
  }
  await condition(() => go);
  if (ready.length === 1) await alone(ready[0]!);
  else if (ready.length > 1) {
    const batch = await proxyActivities<Activities>({ ...options, activityId: 'tenants' })
      .backupTenants({ ...task, tenants: ready })
      .catch((err: unknown) => {
        log.warn('the batch activity failed as a whole: each of its tenants is backed up alone', { error: failureMessage(err) });
        return undefined;
      });
    const again: string[] = [];
    for (const t of ready) {
      const outcome = batch?.tenants[t];
      if (outcome?.status === 'complete') summaries.push(tenantSummary(t, outcome.done));
      else if (outcome?.status === 'failed' && !outcome.retryable) summaries.push(failedSummary(t, outcome.error));
      // A transient failure, or none recorded: alone, with the retries of a tenant's activity.
      else again.push(t);
    }
    for (const t of again) await alone(t);
  }
  return { tenants: summaries };
}

/** What backUpTenantUnits needs of its session (see backupWorkflow). */
export interface TenantUnitsRun {
  session: string;
  tenants: Array<{ name: string; databaseBytes: number }>;
  recipients: string[];
  cloud: boolean;
  maxParallel: number;
  batch?: Partial<BatchSettings>;
  /** The options of a tenant's activity (pinned to the session's worker without a cloud copy). */
  longOptions: ActivityOptions;
  workerQueue?: string;
  lockedBy?: string;
  /** Updated as each tenant runs and ends (the backup's progress query). */
  progress: BackupProgress;
  /** Each tenant's summary is added here. */
  summaries: TenantBackupSummary[];
  /** Called once every unit is under way: the cluster steps and retention start then. */
  whenUnderWay: () => void;
}

/**
 * The inline path of backupWorkflow (patch `backup-inline-tenants`): tenants in parallel (at most
 * `maxParallel` units at once, each tenant under its lock, small tenants several to a batch).
 * Resolves when every tenant has ended, to the lock releases still in flight.
 */
export async function backUpTenantUnits(run: TenantUnitsRun): Promise<Array<Promise<void>>> {
  const { summaries, progress, longOptions, workerQueue } = run;
  const done = (tenant: string, result: TenantBackupDone) => {
    summaries.push(tenantSummary(tenant, result));
    progress.tenants[tenant] = { state: 'complete' };
  };
  const failed = (tenant: string, error: string) => {
    summaries.push(failedSummary(tenant, error));
    progress.tenants[tenant] = { state: 'failed', error };
  };
  const task = { session: run.session, recipients: run.recipients, cloud: run.cloud };
  // One tenant, one activity (named after the tenant in the history and in pending activities).
  const alone = (tenant: string) =>
    proxyActivities<Activities>({ ...longOptions, activityId: `tenant/${tenant}` })
      .backupTenant({ ...task, tenant })
      .then(
        (result) => done(tenant, result),
        (err: unknown) => failed(tenant, failureMessage(err)),
      );

  const batching = { ...DEFAULT_BATCH, ...run.batch };
  const units = planBackupUnits(run.tenants, run.maxParallel, batching);
  // No dump while a recovery swaps the tenant, nor two at once. A tenant alone: its lock is taken
  // here, when its unit starts or one unit ahead, and released (a signal) when it is done. A batch
  // is a child workflow that takes its tenants' locks and holds them until it closes: closing
  // releases them all at once on the server (ParentClosePolicy TERMINATE), without a signal and a
  // workflow task per lock. The next round of units is made ready ahead (batches started with
  // `waitForGo`): they take their locks while the running units work, and wait for the signal `go`
  // until a slot frees.
  type Held = { tenant: string; lock?: HeldLock; error?: string };
  const locks: Array<Promise<Held[]>> = [];
  const lockUnit = (i: number): Promise<Held[]> =>
    (locks[i] ??= Promise.all(
      units[i]!.tenants.map((tenant) =>
        run.lockedBy !== undefined
          ? Promise.resolve<Held>({ tenant })
          : acquireTenantLock(tenant, 'backup').then(
              (lock): Held => ({ tenant, lock }),
              (err: unknown): Held => ({ tenant, error: failureMessage(err) }),
            ),
      ),
    ));
  const batches: Array<{ child: Promise<ChildWorkflowHandle<typeof backupBatchWorkflow>>; waiting: boolean } | undefined> = [];
  const startBatch = (i: number, waitForGo: boolean) =>
    (batches[i] ??= {
      waiting: waitForGo,
      child: startChild(backupBatchWorkflow, {
        workflowId: workflowIds.backupBatch(run.session, i),
        args: [
          { ...task, tenants: units[i]!.tenants, waitForGo, ...(workerQueue ? { workerQueue } : {}), ...(run.lockedBy ? { lockedBy: run.lockedBy } : {}) },
        ],
      }),
    });
  const ahead = (i: number) => {
    if (i >= units.length) return;
    if (units[i]!.batch) startBatch(i, true);
    else void lockUnit(i);
  };
  const releases: Array<Promise<void>> = [];
  // Each unit says when its work is under way (its activity scheduled, or its batch started).
  const underWay: Array<Promise<void>> = [];
  const runAlone = async (i: number, started: () => void): Promise<void> => {
    const held = await lockUnit(i);
    try {
      for (const h of held) {
        if (h.error !== undefined) failed(h.tenant, h.error);
        else {
          progress.tenants[h.tenant] = { state: 'running' };
          const work = alone(h.tenant);
          started();
          await work;
        }
      }
    } finally {
      started();
      for (const h of held) if (h.lock) releases.push(h.lock.release());
    }
  };
  const runBatch = async (i: number, started: () => void): Promise<void> => {
    const { child, waiting } = startBatch(i, false);
    const tenants = units[i]!.tenants;
    try {
      const handle = await child;
      if (waiting) await handle.signal(batchGoSignal);
      for (const t of tenants) progress.tenants[t] = { state: 'running' };
      started();
      const result = await handle.result();
      for (const summary of result.tenants) {
        summaries.push(summary);
        progress.tenants[summary.tenant] =
          summary.status === 'complete' ? { state: 'complete' } : { state: 'failed', ...(summary.error ? { error: summary.error } : {}) };
      }
    } catch (err) {
      const error = failureMessage(err);
      for (const t of tenants) if (!summaries.some((s) => s.tenant === t)) failed(t, error);
    } finally {
      started();
    }
  };

  // Sliding window of units: a failed tenant never stops the others.
  let running = 0;
  // Units that end soon (a batch, a small tenant): locks taken ahead wait for a slot only that long.
  const short = new Set<number>();
  const all: Array<Promise<void>> = [];
  for (let i = 0; i < units.length; i++) {
    await condition(() => running < run.maxParallel);
    running++;
    const unit = units[i]!;
    if (unit.batch || unit.bytes <= batching.smallBytes) short.add(i);
    let started!: () => void;
    underWay.push(new Promise<void>((resolve) => (started = resolve)));
    const unitWork = unit.batch ? runBatch(i, started) : runAlone(i, started);
    // Every slot busy, one of them soon free: the next units get ready (their locks) meanwhile, once
    // this one has its own (its locks first). Never behind large tenants only: their locks would be
    // held, unused, for as long as those run.
    if (running >= run.maxParallel && short.size > 0) {
      const own = unit.batch
        ? batches[i]!.child.then(
            () => undefined,
            () => undefined,
          )
        : lockUnit(i).then(() => undefined);
      const depth = batching.ahead ?? run.maxParallel;
      void own.then(() => {
        for (let k = i + 1; k <= i + depth; k++) ahead(k);
      });
    }
    all.push(
      unitWork.finally(() => {
        running--;
        short.delete(i);
      }),
    );
  }
  // Every unit is under way: globals, configuration and retention take the slots the last ones
  // leave (started after the last unit's work, so that they never delay it).
  await Promise.all(underWay);
  run.whenUnderWay();
  await Promise.all(all);
  return releases;
}
