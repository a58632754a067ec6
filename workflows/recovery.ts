import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  defineQuery,
  defineSignal,
  executeChild,
  log,
  proxyActivities,
  setHandler,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities, RecoveryScope } from '../activities';
import type { RecoveryMode, RecoveryPlan } from '../src/recovery/plan';
import { backupWorkflow } from './backup';
import { backupSessionName, workflowIds } from './definitions';
import { longActivity, notifyActivity, quickActivity } from './options';

const quick = proxyActivities<Activities>(quickActivity);
const long = proxyActivities<Activities>(longActivity);
const notify = proxyActivities<Activities>(notifyActivity);
/** The critical section: few, quick retries; a swap step that keeps failing must be compensated, not retried for hours. */
const critical = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 4 },
});

export interface RecoveryInput {
  mode: RecoveryMode;
  /** Session name or `latest` (default): the newest complete session that did not fail validation. */
  session?: string;
  /** Tenants to recover (default: every tenant of the session). */
  tenants?: string[];
  /** Restore from the bucket (when the local session is gone). */
  fromCloud?: boolean;
  /** Compute and return the plan, change nothing. */
  dryRun?: boolean;
  /** Approved at start (`--yes`), by this operator. */
  approvedBy?: string;
  /** How long to wait for an approval before ending without changes (default 1 hour). */
  approvalTimeoutMinutes?: number;
  /** Recover from a session that failed validation. */
  force?: boolean;
  /** Back up the tenants (a normal session, child backupWorkflow) before the swap. */
  backupFirst?: boolean;
  startedBy?: string;
}

export type TenantRecoveryState =
  | 'planned'
  | 'restoring-shadow'
  | 'verified'
  | 'swapped'
  | 'recovered'
  | 'failed-before-swap'
  | 'rolled-back'
  | 'rollback-failed';

export interface RecoveryStatus {
  state: 'planning' | 'waiting-for-approval' | 'rejected' | 'expired' | 'recovering' | 'done' | 'rolled-back' | 'planned';
  plan?: RecoveryPlan;
  approvedBy?: string;
  rejectedBy?: string;
  tenants: Record<string, { state: TenantRecoveryState; error?: string; downtimeMs?: number }>;
  config?: { restored: string[]; keptAs: string[] };
  /** The session made by --backup-first. */
  backupFirst?: { session: string; status: string };
}

export interface RecoveryResult extends RecoveryStatus {
  workflowId: string;
  durationMs: number;
}

export const approveSignal = defineSignal<[{ by: string }]>('approve');
export const rejectSignal = defineSignal<[{ by: string; reason?: string }]>('reject');
export const recoveryStatusQuery = defineQuery<RecoveryStatus>('status');

function failureMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof ActivityFailure) e = e.cause;
  if (e instanceof ApplicationFailure) return e.type ? `${e.type}: ${e.message}` : e.message;
  return e instanceof Error ? e.message : String(err);
}

/**
 * Recovers tenants from a backup session: plan, approval, shadow restore and verification of each
 * tenant, Odoo stopped, atomic swap by rename (the old state kept as the pre-recovery copy), Odoo
 * started, health checked. Every step registers its undo; a failure after a swap swaps back and
 * restarts Odoo, a failure before drops the shadow; compensations also run when the workflow is
 * cancelled. A tenant that cannot be recovered is reported and the others continue.
 */
export async function recoveryWorkflow(input: RecoveryInput): Promise<RecoveryResult> {
  const info = workflowInfo();
  const started = Date.now();
  const status: RecoveryStatus = { state: 'planning', tenants: {} };
  let decision: { approved: boolean; by: string; reason?: string } | undefined = input.approvedBy
    ? { approved: true, by: input.approvedBy }
    : undefined;
  setHandler(recoveryStatusQuery, () => status);
  setHandler(approveSignal, ({ by }) => {
    decision ??= { approved: true, by };
  });
  setHandler(rejectSignal, ({ by, reason }) => {
    decision ??= { approved: false, by, ...(reason ? { reason } : {}) };
  });
  const result = (): RecoveryResult => ({ ...status, workflowId: info.workflowId, durationMs: Date.now() - started });
  const audit = (result: string, extra: Record<string, unknown> = {}) =>
    notify
      .appendAuditRecord({ at: new Date(Date.now()).toISOString(), action: 'recovery', startedBy: input.startedBy ?? 'temporal', workflowId: info.workflowId, result, mode: input.mode, ...extra })
      .catch((err: unknown) => log.warn('audit line not written', { error: failureMessage(err) }));
  const alert = (severity: 'info' | 'warning' | 'critical', subject: string, text: string) =>
    notify.sendAlert({ severity, subject, text }).catch(() => undefined);

  const plan = await quick.planRecovery({
    mode: input.mode,
    fromCloud: input.fromCloud ?? false,
    force: input.force ?? false,
    ...(input.session ? { session: input.session } : {}),
    ...(input.tenants?.length ? { tenants: input.tenants } : {}),
  });
  status.plan = plan;
  for (const t of plan.tenants) status.tenants[t.tenant] = { state: 'planned' };
  if (input.dryRun) {
    status.state = 'planned';
    return result();
  }
  if (plan.space.some((s) => s.ok === false)) {
    throw ApplicationFailure.nonRetryable(`not enough space: ${plan.warnings.join('; ')}`, 'InsufficientSpace');
  }

  // Approval before anything destructive; silence means no.
  status.state = 'waiting-for-approval';
  const what = `${input.mode} recovery of ${plan.tenants.map((t) => t.tenant).join(', ') || 'the configuration'} from ${plan.session}`;
  if (!decision) await alert('warning', `recovery waiting for approval: ${info.workflowId}`, `${what}\nApprove: odoo-dr recover approve ${info.workflowId}\nReject: odoo-dr recover reject ${info.workflowId}`);
  const timeoutMs = (input.approvalTimeoutMinutes ?? 60) * 60_000;
  const decided = await condition(() => decision !== undefined, timeoutMs);
  if (!decided || !decision) {
    status.state = 'expired';
    await audit('expired', { session: plan.session });
    return result();
  }
  if (!decision.approved) {
    status.state = 'rejected';
    status.rejectedBy = decision.by;
    await audit('rejected', { session: plan.session, by: decision.by, reason: decision.reason });
    return result();
  }
  status.approvedBy = decision.by;
  status.state = 'recovering';
  await audit('approved', { session: plan.session, approvedBy: decision.by, tenants: plan.tenants.map((t) => t.tenant) });
  await alert('info', `recovery started: ${info.workflowId}`, `${what}, approved by ${decision.by}`);

  if (input.mode === 'config-only') {
    status.config = await critical.restoreConfiguration({ session: plan.session, stamp: stampOf(started) });
    status.state = 'done';
    await audit('done', { session: plan.session, config: status.config });
    await alert('info', `recovery done: ${info.workflowId}`, `configuration restored: ${status.config.restored.length} files`);
    return result();
  }

  const id = uuid4().replace(/-/g, '').slice(0, 8);
  const stamp = stampOf(started);
  const scope: RecoveryScope = input.mode === 'database-only' ? 'database' : input.mode === 'files-only' ? 'files' : 'both';
  const compensations: Array<{ tenant: string; undo: () => Promise<void> }> = [];
  const runCompensations = async (tenants?: Set<string>) => {
    // Compensations must run even when the workflow is being cancelled.
    await CancellationScope.nonCancellable(async () => {
      for (const c of [...compensations].reverse()) {
        if (tenants && !tenants.has(c.tenant)) continue;
        try {
          await c.undo();
        } catch (err) {
          log.error('compensation failed', { tenant: c.tenant, error: failureMessage(err) });
          status.tenants[c.tenant] = { state: 'rollback-failed', error: failureMessage(err) };
        }
      }
    });
  };

  try {
    // 1. Shadow copies, restored and verified while Odoo still serves the old state.
    const ready: string[] = [];
    for (const t of plan.tenants) {
      status.tenants[t.tenant] = { state: 'restoring-shadow' };
      compensations.push({ tenant: t.tenant, undo: () => critical.dropRecoveryShadow({ tenant: t.tenant, id }) });
      try {
        await long.prepareRecoveryShadow({ session: plan.session, tenant: t.tenant, id, scope, fromCloud: plan.fromCloud });
        status.tenants[t.tenant] = { state: 'verified' };
        ready.push(t.tenant);
      } catch (err) {
        status.tenants[t.tenant] = { state: 'failed-before-swap', error: failureMessage(err) };
        await critical.dropRecoveryShadow({ tenant: t.tenant, id }).catch(() => undefined);
      }
    }
    if (ready.length === 0) throw ApplicationFailure.nonRetryable('no tenant could be prepared for recovery', 'RecoveryNotPrepared');

    if (input.backupFirst) {
      // A full session of today's state, on top of the pre-recovery copy the swap keeps.
      const session = backupSessionName(new Date(Date.now()), id);
      const pre = await executeChild(backupWorkflow, {
        workflowId: workflowIds.backup(session),
        args: [{ session, tenants: ready.filter((t) => plan.tenants.find((p) => p.tenant === t)?.exists), startedBy: `recovery ${info.workflowId}`, retention: false }],
      });
      status.backupFirst = { session: pre.session, status: pre.status };
      if (pre.status === 'failed') throw ApplicationFailure.nonRetryable(`the pre-recovery backup ${pre.session} failed`, 'PreRecoveryBackupFailed');
    }

    // 2. The swap, Odoo stopped: its downtime is the time between stop and start.
    await critical.stopOdoo({});
    compensations.push({ tenant: '*', undo: async () => void (await critical.startOdoo({})) });
    const swapInput = (tenant: string) => {
      const planned = plan.tenants.find((t) => t.tenant === tenant)!;
      return { tenant, id, stamp, scope, tenantExisted: planned.exists, tenantDirExisted: planned.filestoreExists };
    };
    for (const tenant of ready) {
      compensations.push({ tenant, undo: () => critical.swapBackTenant(swapInput(tenant)) });
      try {
        const swapped = await critical.swapInTenant(swapInput(tenant));
        status.tenants[tenant] = { state: 'swapped', downtimeMs: swapped.downtimeMs };
      } catch (err) {
        status.tenants[tenant] = { state: 'rolled-back', error: `swap: ${failureMessage(err)}` };
        await critical.swapBackTenant(swapInput(tenant));
        await critical.dropRecoveryShadow({ tenant, id }).catch(() => undefined);
      }
    }
    await critical.startOdoo({});

    // 3. Health: a tenant that does not answer is swapped back (Odoo stopped again for it).
    const swapped = ready.filter((t) => status.tenants[t]?.state === 'swapped');
    const health = await critical.checkRecoveryHealth({ tenants: swapped });
    const sick = swapped.filter((t) => health.some((h) => h.name === `tenant:${t}` && h.status === 'fail'));
    const serviceDown = health.some((h) => h.name === 'odoo-http' && h.status === 'fail');
    const toRollBack = new Set(serviceDown ? swapped : sick);
    if (toRollBack.size) {
      await critical.stopOdoo({});
      for (const tenant of toRollBack) {
        await critical.swapBackTenant(swapInput(tenant));
        await critical.dropRecoveryShadow({ tenant, id }).catch(() => undefined);
        const why = health.filter((h) => h.status === 'fail' && (h.name === `tenant:${tenant}` || h.name === 'odoo-http')).map((h) => h.message).join('; ');
        status.tenants[tenant] = { state: 'rolled-back', error: `health check failed: ${why}` };
      }
      await critical.startOdoo({});
    }
    for (const t of swapped) if (!toRollBack.has(t)) status.tenants[t] = { ...status.tenants[t]!, state: 'recovered' };
  } catch (err) {
    // Anything unexpected (or a cancellation): undo everything done, in reverse.
    await runCompensations();
    status.state = 'rolled-back';
    await audit('rolled-back', { session: plan.session, error: failureMessage(err), tenants: status.tenants });
    await alert('critical', `recovery rolled back: ${info.workflowId}`, `${what}\n${failureMessage(err)}`);
    throw err;
  }
  const states = Object.values(status.tenants).map((t) => t.state);
  status.state = states.every((s) => s === 'rolled-back' || s === 'failed-before-swap') ? 'rolled-back' : 'done';
  await audit(status.state, { session: plan.session, tenants: status.tenants });
  await alert(
    status.state === 'done' && states.every((s) => s === 'recovered') ? 'info' : 'critical',
    `recovery ${status.state}: ${info.workflowId}`,
    Object.entries(status.tenants).map(([t, s]) => `- ${t}: ${s.state}${s.error ? ` (${s.error})` : ''}`).join('\n'),
  );
  return result();
}

/** `20261126031500` from a time in ms. */
function stampOf(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:T]/g, '').slice(0, 14);
}
