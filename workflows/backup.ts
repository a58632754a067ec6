import {
  ApplicationFailure,
  ChildWorkflowFailure,
  executeChild,
  log,
  patched,
  proxyActivities,
  setHandler,
  uuid4,
  workflowInfo,
  condition,
  ActivityFailure,
} from '@temporalio/workflow';
import type { Activities, FinalizeInput, ManifestSummary } from '../activities';
import type { AlertDelivery } from '../src/notify';
import {
  backupProgressQuery,
  backupSessionName,
  workflowIds,
  type BackupProgress,
} from './definitions';
import { acquireTenantLock } from './lock';
import { longActivity, notifyActivity, pinnedActivity, quickActivity, sessionActivity } from './options';

const quick = proxyActivities<Activities>(quickActivity);
const long = proxyActivities<Activities>(longActivity);
const session = proxyActivities<Activities>(sessionActivity);
const notify = proxyActivities<Activities>(notifyActivity);

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
  return {
    tenant: input.tenant,
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

/**
 * A backup session for the fleet (or chosen tenants): tenants in parallel (at most
 * DR_MAX_PARALLEL_BACKUPS child workflows at once), then cluster globals and configuration, then
 * verification and the manifest (written last), retention, audit line and alert.
 */
export async function backupWorkflow(input: BackupInput = {}): Promise<BackupResult> {
  const info = workflowInfo();
  const startedAt = new Date(Date.now());
  const sessionName = input.session ?? backupSessionName(startedAt, uuid4().replace(/-/g, '').slice(0, 8));
  const startedBy = input.startedBy ?? 'temporal';
  const progress: BackupProgress = { session: sessionName, phase: 'preparing', tenants: {} };
  setHandler(backupProgressQuery, () => progress);

  const audit = async (result: string, extra: Record<string, unknown>) => {
    await notify
      .appendAuditRecord({ at: new Date(Date.now()).toISOString(), action: 'backup', startedBy, workflowId: info.workflowId, result, session: sessionName, ...extra })
      .catch((err: unknown) => log.warn('audit line not written', { error: failureMessage(err) }));
  };

  let prepared: Awaited<ReturnType<typeof quick.prepareBackupSession>> | undefined;
  let discovery: Awaited<ReturnType<typeof quick.discoverTenants>>;
  try {
    discovery = await quick.discoverTenants(input.tenants?.length ? { include: input.tenants } : {});
    // Names asked for that are not tenants: refused below, before a session exists (no FAILED session, no alert).
    const refused = Boolean(input.tenants?.length) && discovery.missing.length > 0;
    if (!refused) prepared = await quick.prepareBackupSession({ session: sessionName, ...(input.cloud !== undefined ? { cloud: input.cloud } : {}), workflowId: info.workflowId });
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
  const sessionSteps = workerQueue ? proxyActivities<Activities>(pinnedActivity(sessionActivity, workerQueue)) : session;
  const longSteps = workerQueue ? proxyActivities<Activities>(pinnedActivity(longActivity, workerQueue)) : long;
  const summaries: TenantBackupSummary[] = [];
  for (const t of discovery.tenants) progress.tenants[t.name] = { state: 'pending' };
  for (const name of discovery.missing) {
    const error = 'not a tenant (absent, not owned by the Odoo role, or a template)';
    progress.tenants[name] = { state: 'failed', error };
    summaries.push({ tenant: name, status: 'failed', error, durationMs: 0, databaseBytes: 0, filestoreFiles: 0, filestoreBytes: 0, blobsStored: 0, blobsReused: 0, blobsUploaded: 0 });
  }

  // Sliding window of child workflows: a failed tenant never stops the others.
  progress.phase = 'tenants';
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
          summaries.push({ tenant, status: 'failed', error, durationMs: 0, databaseBytes: 0, filestoreFiles: 0, filestoreBytes: 0, blobsStored: 0, blobsReused: 0, blobsUploaded: 0 });
          progress.tenants[tenant] = { state: 'failed', error };
        })
        .finally(() => {
          running--;
        }),
    );
  }
  await Promise.all(children);

  progress.phase = 'cluster';
  const warnings: string[] = [];
  const sessionTask = { session: sessionName, recipients: prepared.recipients };
  let globals: FinalizeInput['globals'];
  let configArchive: FinalizeInput['config'];
  try {
    globals = await longSteps.backupClusterGlobals({ ...sessionTask, cloud });
  } catch (err) {
    warnings.push(`cluster globals failed: ${failureMessage(err)}`);
    globals = undefined;
  }
  try {
    const archived = await longSteps.backupConfiguration({ ...sessionTask, cloud });
    warnings.push(...archived.warnings);
    configArchive = archived.artifact;
  } catch (err) {
    warnings.push(`configuration archive failed: ${failureMessage(err)}`);
    configArchive = undefined;
  }

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
      if (!cloud || !patched('finalize-local-only')) throw err;
      log.warn('finalisation with the bucket failed; finalising the local copy only', { error: failureMessage(err) });
      manifest = await finalize({ localOnly: true });
    }
  } catch (err) {
    // No manifest: the session is not complete and is listed as incomplete. Say so everywhere.
    const message = failureMessage(err);
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

  if (input.retention ?? true) {
    progress.phase = 'retention';
    try {
      const retention = await sessionSteps.applyBackupRetention({ protect: [sessionName], cloud });
      if (retention.localDeleted.length || retention.cloudDeleted.length) {
        log.info('retention', { localDeleted: retention.localDeleted, cloudDeleted: retention.cloudDeleted });
      }
    } catch (err) {
      manifest.warnings.push(`retention failed: ${failureMessage(err)}`);
    }
  }

  const result: BackupResult = {
    session: sessionName,
    workflowId: info.workflowId,
    status: manifest.status,
    manifestPath: manifest.manifestPath,
    tenants: summaries.sort((a, b) => (a.tenant < b.tenant ? -1 : 1)),
    warnings: manifest.warnings,
    durationMs: Date.now() - startedAt.getTime(),
  };
  await audit(result.status, {
    tenants: result.tenants.map((t) => ({ tenant: t.tenant, status: t.status })),
    durationMs: result.durationMs,
  });
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
  progress.phase = 'done';
  return result;
}
