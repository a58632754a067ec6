import {
  ApplicationFailure,
  ChildWorkflowFailure,
  executeChild,
  startChild,
  type ChildWorkflowHandle,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  uuid4,
  workflowInfo,
  condition,
  ActivityFailure,
} from '@temporalio/workflow';
import type { Activities, FinalizeInput, ManifestSummary, TenantBackupDone } from '../activities';
import type { AlertDelivery } from '../src/notify';
import { DEFAULT_BATCH, planBackupUnits, type BatchSettings } from './backup-plan';
import {
  backupProgressQuery,
  backupSessionName,
  batchGoSignal,
  workflowIds,
  type BackupProgress,
} from './definitions';
import { acquireTenantLock, type HeldLock } from './lock';
import { localNotifyActivity, localQuickActivity, longActivity, notifyActivity, pinnedActivity, quickActivity, sessionActivity } from './options';

const quick = proxyActivities<Activities>(quickActivity);
const long = proxyActivities<Activities>(longActivity);
const session = proxyActivities<Activities>(sessionActivity);
const notify = proxyActivities<Activities>(notifyActivity);
const local = proxyLocalActivities<Activities>(localQuickActivity);
const localNotify = proxyLocalActivities<Activities>(localNotifyActivity);

export interface BackupInput {
  /** Only these tenants (default: every tenant, by Odoo's rule and DR_TENANTS/DR_EXCLUDE_TENANTS). */
  tenants?: string[];
  /** Copy to the bucket (default: whenever DR_CLOUD_BUCKET is set); `false` is the explicit opt-out. */
  cloud?: boolean;
  /** Session name; default `backup_<start time>_<random>`. */
  session?: string;
  /** Who asked (for the audit log). */
  startedBy?: string;
  /** Apply local/cloud retention after the session (default true). */
  retention?: boolean;
  /** The workflow that already holds these tenants' locks (a recovery's --backup-first). */
  lockedBy?: string;
  /**
   * Which small tenants share one activity (see workflows/backup-plan.ts; default: databases up to
   * 64 MiB, 10 and 256 MiB per activity). `{ "maxTenants": 1 }`: one activity per tenant.
   */
  batch?: Partial<BatchSettings>;
}

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

export interface BackupResult {
  session: string;
  workflowId: string;
  status: 'complete' | 'partial' | 'failed';
  manifestPath: string;
  tenants: TenantBackupSummary[];
  warnings: string[];
  durationMs: number;
  alert?: AlertDelivery;
}

function tenantSummary(tenant: string, done: TenantBackupDone): TenantBackupSummary {
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

function failedSummary(tenant: string, error: string): TenantBackupSummary {
  return { tenant, status: 'failed', error, durationMs: 0, databaseBytes: 0, filestoreFiles: 0, filestoreBytes: 0, blobsStored: 0, blobsReused: 0, blobsUploaded: 0 };
}

function failureMessage(err: unknown): string {
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

/**
 * A backup session for the fleet (or chosen tenants): tenants in parallel (at most
 * DR_MAX_PARALLEL_BACKUPS activities at once, each tenant under its lock; small tenants several to
 * an activity), cluster globals and configuration while the last tenants run, then verification
 * and the manifest (written last), retention, audit line and alert.
 *
 * Sessions started before the patch `backup-inline-tenants` go on as they began: one child
 * `tenantBackupWorkflow` per tenant, then globals and configuration, each step its own activity.
 */
export async function backupWorkflow(input: BackupInput = {}): Promise<BackupResult> {
  // Decided once, in the first workflow task: a history recorded without the marker keeps its path.
  const inline = patched('backup-inline-tenants');
  const info = workflowInfo();
  const startedAt = new Date(Date.now());
  const sessionName = input.session ?? backupSessionName(startedAt, uuid4().replace(/-/g, '').slice(0, 8));
  const startedBy = input.startedBy ?? 'temporal';
  const progress: BackupProgress = { session: sessionName, phase: 'preparing', tenants: {} };
  setHandler(backupProgressQuery, () => progress);

  // Discovery, preparation and the audit line take milliseconds: local activities (no dispatch
  // through the server; discovery and preparation share one workflow task).
  const start = inline ? local : quick;
  const auditSteps = inline ? localNotify : notify;
  const audit = async (result: string, extra: Record<string, unknown>) => {
    await auditSteps
      .appendAuditRecord({ at: new Date(Date.now()).toISOString(), action: 'backup', startedBy, workflowId: info.workflowId, result, session: sessionName, ...extra })
      .catch((err: unknown) => log.warn('audit line not written', { error: failureMessage(err) }));
  };

  let prepared: Awaited<ReturnType<typeof quick.prepareBackupSession>> | undefined;
  let discovery: Awaited<ReturnType<typeof quick.discoverTenants>>;
  try {
    discovery = await start.discoverTenants(input.tenants?.length ? { include: input.tenants } : {});
    // Names asked for that are not tenants: refused below, before a session exists (no FAILED session, no alert).
    const refused = Boolean(input.tenants?.length) && discovery.missing.length > 0;
    if (!refused) prepared = await start.prepareBackupSession({ session: sessionName, ...(input.cloud !== undefined ? { cloud: input.cloud } : {}), workflowId: info.workflowId });
  } catch (err) {
    const message = failureMessage(err);
    await audit('failed', { error: message });
    await notify
      .sendAlert({ severity: 'critical', subject: `backup ${sessionName} could not start`, text: message })
      .catch(() => undefined);
    throw ApplicationFailure.nonRetryable(`backup ${sessionName} could not start: ${message}`, 'BackupNotStarted');
  }
  if (!prepared) {
    const message = `not tenants (absent, not owned by the Odoo role, or templates): ${discovery.missing.join(', ')}; nothing was backed up`;
    await audit('refused', { error: message });
    throw ApplicationFailure.nonRetryable(message, 'TenantNotFoundError');
  }

  const cloud = prepared.cloud !== null;
  // Without a cloud copy the session is one folder on one disk: every step goes to the worker that
  // prepared it. With one, each step is self-contained and any worker may take it.
  const workerQueue = cloud ? undefined : prepared.workerQueue;
  const longOptions = workerQueue ? pinnedActivity(longActivity, workerQueue) : longActivity;
  const sessionSteps = workerQueue ? proxyActivities<Activities>(pinnedActivity(sessionActivity, workerQueue)) : session;
  const longSteps = workerQueue ? proxyActivities<Activities>(longOptions) : long;
  const summaries: TenantBackupSummary[] = [];
  for (const t of discovery.tenants) progress.tenants[t.name] = { state: 'pending' };
  for (const name of discovery.missing) {
    const error = 'not a tenant (absent, not owned by the Odoo role, or a template)';
    progress.tenants[name] = { state: 'failed', error };
    summaries.push(failedSummary(name, error));
  }

  const warnings: string[] = [];
  const sessionTask = { session: sessionName, recipients: prepared.recipients };
  type Cluster = { globals: FinalizeInput['globals']; config: FinalizeInput['config']; warnings: string[] };
  // Cluster globals and the configuration archive: each may fail alone (a warning, the session goes on).
  const clusterSteps = async (together: boolean): Promise<Cluster> => {
    const globalsStep = () =>
      longSteps.backupClusterGlobals({ ...sessionTask, cloud }).then(
        (artifact) => ({ artifact, warning: undefined }),
        (err: unknown) => ({ artifact: undefined, warning: `cluster globals failed: ${failureMessage(err)}` }),
      );
    const configStep = () =>
      longSteps.backupConfiguration({ ...sessionTask, cloud }).then(
        (archived) => ({ archived, warning: undefined }),
        (err: unknown) => ({ archived: undefined, warning: `configuration archive failed: ${failureMessage(err)}` }),
      );
    let g: Awaited<ReturnType<typeof globalsStep>>;
    let c: Awaited<ReturnType<typeof configStep>>;
    if (together) [g, c] = await Promise.all([globalsStep(), configStep()]);
    else {
      g = await globalsStep();
      c = await configStep();
    }
    return {
      globals: g.artifact,
      config: c.archived?.artifact,
      warnings: [...(g.warning ? [g.warning] : []), ...(c.warning ? [c.warning] : c.archived!.warnings)],
    };
  };

  // Retention: a failure is a warning. On the inline path it runs with the cluster steps, while the
  // last tenants work: it protects this session and never sees it complete, so it keeps at least what
  // it would keep after it (each tenant's newest complete session before this one stays until the
  // next run), and it frees the space of expired sessions before this one is finalised.
  const retention = async (): Promise<string | undefined> => {
    if (!(input.retention ?? true)) return undefined;
    try {
      const removed = await sessionSteps.applyBackupRetention({ protect: [sessionName], cloud });
      if (removed.localDeleted.length || removed.cloudDeleted.length || removed.packsDeleted) {
        log.info('retention', { localDeleted: removed.localDeleted, cloudDeleted: removed.cloudDeleted, packsDeleted: removed.packsDeleted ?? 0, bytesFreed: removed.bytesFreed ?? 0 });
      }
      return undefined;
    } catch (err) {
      return `retention failed: ${failureMessage(err)}`;
    }
  };
  let retained: Promise<string | undefined> | undefined;

  progress.phase = 'tenants';
  let cluster: Cluster;
  let lockReleases: Promise<void> | undefined;
  if (inline) {
    const done = (tenant: string, result: TenantBackupDone) => {
      summaries.push(tenantSummary(tenant, result));
      progress.tenants[tenant] = { state: 'complete' };
    };
    const failed = (tenant: string, error: string) => {
      summaries.push(failedSummary(tenant, error));
      progress.tenants[tenant] = { state: 'failed', error };
    };
    const task = { session: sessionName, recipients: prepared.recipients, cloud };
    // One tenant, one activity (named after the tenant in the history and in pending activities).
    const alone = (tenant: string) =>
      proxyActivities<Activities>({ ...longOptions, activityId: `tenant/${tenant}` })
        .backupTenant({ ...task, tenant })
        .then(
          (result) => done(tenant, result),
          (err: unknown) => failed(tenant, failureMessage(err)),
        );

    const batching = { ...DEFAULT_BATCH, ...input.batch };
    const units = planBackupUnits(discovery.tenants, prepared.maxParallel, batching);
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
          input.lockedBy !== undefined
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
          workflowId: workflowIds.backupBatch(sessionName, i),
          args: [{ ...task, tenants: units[i]!.tenants, waitForGo, ...(workerQueue ? { workerQueue } : {}), ...(input.lockedBy ? { lockedBy: input.lockedBy } : {}) }],
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
          progress.tenants[summary.tenant] = summary.status === 'complete' ? { state: 'complete' } : { state: 'failed', ...(summary.error ? { error: summary.error } : {}) };
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
      await condition(() => running < prepared.maxParallel);
      running++;
      const unit = units[i]!;
      if (unit.batch || unit.bytes <= batching.smallBytes) short.add(i);
      let started!: () => void;
      underWay.push(new Promise<void>((resolve) => (started = resolve)));
      const run = unit.batch ? runBatch(i, started) : runAlone(i, started);
      // Every slot busy, one of them soon free: the next units get ready (their locks) meanwhile, once
      // this one has its own (its locks first). Never behind large tenants only: their locks would be
      // held, unused, for as long as those run.
      if (running >= prepared.maxParallel && short.size > 0) {
        const own = unit.batch ? batches[i]!.child.then(() => undefined, () => undefined) : lockUnit(i).then(() => undefined);
        const depth = batching.ahead ?? prepared.maxParallel;
        void own.then(() => {
          for (let k = i + 1; k <= i + depth; k++) ahead(k);
        });
      }
      all.push(
        run.finally(() => {
          running--;
          short.delete(i);
        }),
      );
    }
    // Every unit is under way: globals, configuration and retention take the slots the last ones
    // leave (started after the last unit's work, so that they never delay it).
    await Promise.all(underWay);
    const clusterDone = clusterSteps(true);
    retained = retention();
    await Promise.all(all);
    progress.phase = 'cluster';
    cluster = await clusterDone;
    // The releases were sent with the workflow task that follows each unit; their acknowledgements
    // (and the locks' ends) arrive while the session is finalised: awaited at the very end.
    lockReleases = Promise.all(releases).then(() => undefined);
  } else {
    // Sliding window of child workflows: a failed tenant never stops the others.
    let running = 0;
    const children: Array<Promise<void>> = [];
    for (const tenant of discovery.tenants.map((t) => t.name)) {
      await condition(() => running < prepared.maxParallel);
      running++;
      progress.tenants[tenant] = { state: 'running' };
      children.push(
        executeChild(tenantBackupWorkflow, {
          workflowId: workflowIds.tenantBackup(sessionName, tenant),
          args: [{ session: sessionName, tenant, recipients: prepared.recipients, cloud, ...(workerQueue ? { workerQueue } : {}), ...(input.lockedBy ? { lockedBy: input.lockedBy } : {}) }],
        })
          .then((summary) => {
            summaries.push(summary);
            progress.tenants[tenant] = { state: 'complete' };
          })
          .catch((err: unknown) => {
            const error = failureMessage(err);
            summaries.push(failedSummary(tenant, error));
            progress.tenants[tenant] = { state: 'failed', error };
          })
          .finally(() => {
            running--;
          }),
      );
    }
    await Promise.all(children);
    progress.phase = 'cluster';
    cluster = await clusterSteps(false);
  }
  warnings.push(...cluster.warnings);
  const globals = cluster.globals;
  const configArchive = cluster.config;

  progress.phase = 'finalizing';
  let manifest: ManifestSummary;
  const finalize = (extra: Partial<FinalizeInput> = {}) => sessionSteps.finalizeBackupSession({
    session: sessionName,
    startedAt: startedAt.toISOString(),
    startedBy,
    workflowId: info.workflowId,
    postgres: { server: prepared.postgres.server, pgDump: prepared.postgres.pgDump },
    recipients: prepared.recipients,
    cloud,
    tenants: Object.fromEntries(summaries.map((s) => [s.tenant, { status: s.status, durationMs: s.durationMs, ...(s.error ? { error: s.error } : {}) }])),
    ...(globals ? { globals } : {}),
    ...(configArchive ? { config: configArchive } : {}),
    warnings,
    ...extra,
  });
  try {
    try {
      manifest = await finalize();
    } catch (err) {
      // The bucket is gone for now: the copies on this disk are verified and kept, said to be local only.
      if (!cloud || !(inline || patched('finalize-local-only'))) throw err;
      log.warn('finalisation with the bucket failed; finalising the local copy only', { error: failureMessage(err) });
      manifest = await finalize({ localOnly: true });
    }
  } catch (err) {
    // No manifest: the session is not complete and is listed as incomplete. Say so everywhere.
    const message = failureMessage(err);
    await retained;
    await audit('failed', { error: `finalize: ${message}` });
    await notify
      .sendAlert({ severity: 'critical', subject: `backup ${sessionName} could not be finalized`, text: message })
      .catch(() => undefined);
    throw ApplicationFailure.nonRetryable(`backup ${sessionName} could not be finalized: ${message}`, 'BackupNotFinalized');
  }
  // Verification may demote a tenant whose artifact did not read back correctly.
  for (const s of summaries) {
    const final = manifest.tenants[s.tenant];
    if (final && final.status !== s.status) {
      s.status = final.status;
      if (final.error) s.error = final.error;
      progress.tenants[s.tenant] = { state: final.status, ...(final.error ? { error: final.error } : {}) };
    }
  }

  if (input.retention ?? true) progress.phase = 'retention';
  const retentionWarning = await (retained ?? retention());
  if (retentionWarning) manifest.warnings.push(retentionWarning);
  const resultOf = (): BackupResult => ({
    session: sessionName,
    workflowId: info.workflowId,
    status: manifest.status,
    manifestPath: manifest.manifestPath,
    tenants: summaries.sort((a, b) => (a.tenant < b.tenant ? -1 : 1)),
    warnings: manifest.warnings,
    durationMs: Date.now() - startedAt.getTime(),
  });
  const auditResult = (r: BackupResult) =>
    audit(r.status, {
      tenants: r.tenants.map((t) => ({ tenant: t.tenant, status: t.status })),
      durationMs: r.durationMs,
    });
  const result = resultOf();
  await auditResult(result);
  if (result.status !== 'complete') {
    const failed = result.tenants.filter((t) => t.status === 'failed');
    result.alert = await notify
      .sendAlert({
        severity: result.status === 'failed' ? 'critical' : 'warning',
        subject: `backup ${sessionName} is ${result.status}`,
        text: [
          `Session ${sessionName} (${info.workflowId}) finished ${result.status}.`,
          ...failed.map((t) => `- ${t.tenant}: ${t.error ?? 'failed'}`),
          ...result.warnings.map((w) => `- warning: ${w}`),
        ].join('\n'),
      })
      .catch((err: unknown): AlertDelivery => {
        const reason = `failed: ${failureMessage(err)}` as const;
        return { email: reason, webhook: reason };
      });
  }
  await lockReleases;
  progress.phase = 'done';
  return result;
}
