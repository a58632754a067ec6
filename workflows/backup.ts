/**
 * backupWorkflow: a backup session for the fleet or chosen tenants. How its tenants run (and the
 * per-tenant and batch child workflows) is in backup-tenants.ts.
 */
import {
  CancellationScope,
  condition,
  executeChild,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities, FinalizeInput, ManifestSummary } from '../activities';
import type { AlertDelivery } from '../src/notify';
import type { BatchSettings } from './backup-plan';
import { backUpTenantUnits, failedSummary, failureMessage, tenantBackupWorkflow, type TenantBackupSummary } from './backup-tenants';
import { backupProgressQuery, backupSessionName, workflowIds, type BackupProgress } from './definitions';
import { fail } from './failures';
import { localNotifyActivity, localQuickActivity, longActivity, notifyActivity, pinnedActivity, quickActivity, sessionActivity } from './options';

export { backupBatchWorkflow, tenantBackupWorkflow } from './backup-tenants';
export type { BackupBatchInput, BackupBatchResult, TenantBackupInput, TenantBackupSummary } from './backup-tenants';

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
      .appendAuditRecord({
        at: new Date(Date.now()).toISOString(),
        action: 'backup',
        startedBy,
        workflowId: info.workflowId,
        result,
        session: sessionName,
        ...extra,
      })
      .catch((err: unknown) => log.warn('audit line not written', { error: failureMessage(err) }));
  };

  let prepared: Awaited<ReturnType<typeof quick.prepareBackupSession>> | undefined;
  let discovery: Awaited<ReturnType<typeof quick.discoverTenants>>;
  try {
    discovery = await start.discoverTenants(input.tenants?.length ? { include: input.tenants } : {});
    // Names asked for that are not tenants: refused below, before a session exists (no FAILED session, no alert).
    const refused = Boolean(input.tenants?.length) && discovery.missing.length > 0;
    if (!refused)
      prepared = await start.prepareBackupSession({
        session: sessionName,
        ...(input.cloud !== undefined ? { cloud: input.cloud } : {}),
        workflowId: info.workflowId,
      });
  } catch (err) {
    const message = failureMessage(err);
    await audit('failed', { error: message });
    await notify.sendAlert({ severity: 'critical', subject: `backup ${sessionName} could not start`, text: message }).catch(() => undefined);
    throw fail('BackupNotStarted', `backup ${sessionName} could not start: ${message}`);
  }
  if (!prepared) {
    const message = `not tenants (absent, not owned by the Odoo role, or templates): ${discovery.missing.join(', ')}; nothing was backed up`;
    await audit('refused', { error: message });
    throw fail('TenantNotFoundError', message);
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
        log.info('retention', {
          localDeleted: removed.localDeleted,
          cloudDeleted: removed.cloudDeleted,
          packsDeleted: removed.packsDeleted ?? 0,
          bytesFreed: removed.bytesFreed ?? 0,
        });
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
    let clusterDone: Promise<Cluster> | undefined;
    const releases = await backUpTenantUnits({
      session: sessionName,
      tenants: discovery.tenants,
      recipients: prepared.recipients,
      cloud,
      maxParallel: prepared.maxParallel,
      batch: input.batch,
      longOptions,
      workerQueue,
      lockedBy: input.lockedBy,
      progress,
      summaries,
      whenUnderWay: () => {
        clusterDone = clusterSteps(true);
        retained = retention();
      },
    });
    progress.phase = 'cluster';
    cluster = await clusterDone!;
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
          args: [
            {
              session: sessionName,
              tenant,
              recipients: prepared.recipients,
              cloud,
              ...(workerQueue ? { workerQueue } : {}),
              ...(input.lockedBy ? { lockedBy: input.lockedBy } : {}),
            },
          ],
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
  const finalize = (extra: Partial<FinalizeInput> = {}) =>
    sessionSteps.finalizeBackupSession({
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
    if (isCancellation(err) && patched('backup-cancellation-audited')) {
      // Cancelled (an operator, or a run that replaced this one): the audit line and the alert go in a
      // scope of their own, since in the cancelled one they would be cancelled before they ran. The
      // workflow ends cancelled, not failed.
      await CancellationScope.nonCancellable(async () => {
        await audit('cancelled', { error: message });
        await notify
          .sendAlert({
            severity: 'warning',
            subject: `backup ${sessionName} was cancelled`,
            text: `Session ${sessionName} (${info.workflowId}) was cancelled before it was finalised: it stays incomplete and nothing will restore from it. The tenants' newest complete sessions are unchanged; the next scheduled backup makes a new one.`,
          })
          .catch(() => undefined);
      });
      throw err;
    }
    await retained;
    await audit('failed', { error: `finalize: ${message}` });
    await notify.sendAlert({ severity: 'critical', subject: `backup ${sessionName} could not be finalized`, text: message }).catch(() => undefined);
    throw fail('BackupNotFinalized', `backup ${sessionName} could not be finalized: ${message}`);
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
