/**
 * recoveryWorkflow: plan, approval, shadow copies, the swap with Odoo stopped, health checks, and
 * compensations on failure. Its status types and helpers are in recovery-steps.ts.
 */
import {
  CancellationScope,
  CancelledFailure,
  condition,
  executeChild,
  log,
  patched,
  proxyActivities,
  setHandler,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities, RecoveryScope } from '../activities';
import type { RecoveryMode } from '../src/recovery/plan';
import { backupWorkflow } from './backup';
import { approveSignal, backupSessionName, recoveryStatusQuery, rejectSignal, workflowIds } from './definitions';
import { fail } from './failures';
import { acquireTenantLock, type HeldLock } from './lock';
import { compensationActivity, criticalActivity, longActivity, notifyActivity, quickActivity, serviceActivity } from './options';
import { failureMessage, inParallel, recoveryReport, runCompensations, stampOf, type Compensation, type RecoveryStatus } from './recovery-steps';

export type { RecoveryReport, RecoveryStatus, TenantRecoveryState } from './recovery-steps';

const quick = proxyActivities<Activities>(quickActivity);
const long = proxyActivities<Activities>(longActivity);
const notify = proxyActivities<Activities>(notifyActivity);
/** The critical section: few, quick retries; a swap step that keeps failing must be compensated, not retried for hours. */
const critical = proxyActivities<Activities>(criticalActivity);
/** Odoo's stop and start commands (heartbeating while they run). */
const service = proxyActivities<Activities>(serviceActivity);
/** Undo steps: retried until they succeed. */
const compensate = proxyActivities<Activities>(compensationActivity);

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
  /**
   * Site recovery (`--all`, mode full): cluster roles, then the configuration archive, then every
   * tenant of the session, DR_MAX_PARALLEL_BACKUPS at a time.
   */
  site?: boolean;
  /** Site recovery and config-only: extract the configuration under this folder (for review) instead of DR_CONFIG_PATHS. */
  configTarget?: string;
  /** Earlier runs of this recovery (`recover --resume`): the tenants they recovered and verified are skipped. */
  resumeOf?: string[];
  /** Accept an unsigned session (made before signing was set up); the plan warns loudly. */
  allowUnsigned?: boolean;
  startedBy?: string;
}

export interface RecoveryResult extends RecoveryStatus {
  workflowId: string;
  durationMs: number;
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
  let decision: { approved: boolean; by: string; reason?: string } | undefined = input.approvedBy ? { approved: true, by: input.approvedBy } : undefined;
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
      .appendAuditRecord({
        at: new Date(Date.now()).toISOString(),
        action: 'recovery',
        startedBy: input.startedBy ?? 'temporal',
        workflowId: info.workflowId,
        result,
        mode: input.mode,
        ...extra,
      })
      .catch((err: unknown) => log.warn('audit line not written', { error: failureMessage(err) }));
  const alert = (severity: 'info' | 'warning' | 'critical', subject: string, text: string) =>
    notify.sendAlert({ severity, subject, text }).catch(() => undefined);

  const plan = await quick.planRecovery({
    mode: input.mode,
    fromCloud: input.fromCloud ?? false,
    force: input.force ?? false,
    ...(input.site ? { site: true } : {}),
    ...(input.configTarget ? { configTarget: input.configTarget } : {}),
    ...(input.resumeOf?.length ? { resumeOf: input.resumeOf } : {}),
    ...(input.allowUnsigned ? { allowUnsigned: true } : {}),
    ...(input.session ? { session: input.session } : {}),
    ...(input.tenants?.length ? { tenants: input.tenants } : {}),
  });
  status.plan = plan;
  for (const t of plan.tenants) status.tenants[t.tenant] = { state: 'planned' };
  for (const t of plan.alreadyRecovered) status.tenants[t.tenant] = { state: 'recovered', skipped: `already recovered from ${plan.session} by ${t.by}` };
  if (input.dryRun) {
    status.state = 'planned';
    return result();
  }
  if (plan.space.some((s) => s.ok === false)) {
    throw fail('InsufficientSpace', `not enough space: ${plan.warnings.join('; ')}`);
  }

  // Approval before anything destructive; silence means no.
  status.state = 'waiting-for-approval';
  const what = `${input.mode} recovery of ${plan.tenants.map((t) => t.tenant).join(', ') || 'the configuration'} from ${plan.session}`;
  if (!decision)
    await alert(
      'warning',
      `recovery waiting for approval: ${info.workflowId}`,
      `${what}\nApprove: odoo-dr recover approve ${info.workflowId}\nReject: odoo-dr recover reject ${info.workflowId}`,
    );
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
  const approvedAt = Date.now();
  await audit('approved', { session: plan.session, approvedBy: decision.by, tenants: plan.tenants.map((t) => t.tenant) });
  await alert('info', `recovery started: ${info.workflowId}`, `${what}, approved by ${decision.by}`);

  const fromCloud = plan.fromCloud;
  const trust = input.allowUnsigned ? { allowUnsigned: true } : {};
  if (input.mode === 'config-only') {
    status.config = await critical.restoreConfiguration({
      session: plan.session,
      stamp: stampOf(started),
      fromCloud,
      ...trust,
      ...(input.configTarget ? { targetRoot: input.configTarget } : {}),
    });
    status.state = 'done';
    await audit('done', { session: plan.session, config: status.config });
    await alert('info', `recovery done: ${info.workflowId}`, `configuration restored: ${status.config.restored.length} files`);
    return result();
  }

  const id = uuid4().replace(/-/g, '').slice(0, 8);
  const stamp = stampOf(started);

  // Site recovery order: roles first (tenant owners must exist), then the configuration.
  if (plan.globals) {
    try {
      status.globals = await critical.restoreClusterGlobals({ session: plan.session, fromCloud, ...trust });
    } catch (err) {
      // Tenants whose owners exist can still come back; the others fail their shadow restore, by name.
      status.globals = { created: [], existing: [], memberships: [], skipped: [], warnings: [], passwordsRestored: 0, error: failureMessage(err) };
    }
  }
  if (plan.site && plan.configTarget) {
    try {
      status.config = await critical.restoreConfiguration({
        session: plan.session,
        stamp,
        fromCloud,
        ...trust,
        ...(input.configTarget ? { targetRoot: input.configTarget } : {}),
      });
    } catch (err) {
      status.config = { restored: [], keptAs: [], error: failureMessage(err) };
    }
  }
  const scope: RecoveryScope = input.mode === 'database-only' ? 'database' : input.mode === 'files-only' ? 'files' : 'both';
  // Every step registers its undo here; a failure runs them in reverse (recovery-steps.ts).
  const compensations: Compensation[] = [];
  // One writer per tenant: held from here to the end (released with the workflow, whatever happens).
  const locks: HeldLock[] = [];
  const lockTenants = patched('tenant-lock');

  try {
    // 1. Shadow copies, restored and verified while Odoo still serves the old state.
    // DR_MAX_PARALLEL_BACKUPS at a time; a tenant that fails is reported and the others go on.
    const readySet = new Set<string>();
    let running = 0;
    const shadows: Array<Promise<void>> = [];
    for (const t of plan.tenants) {
      await condition(() => running < plan.parallelism);
      running++;
      if (lockTenants) {
        try {
          locks.push(await acquireTenantLock(t.tenant, 'recovery'));
        } catch (err) {
          status.tenants[t.tenant] = { state: 'failed-before-swap', error: failureMessage(err) };
          running--;
          continue;
        }
      }
      status.tenants[t.tenant] = { state: 'restoring-shadow' };
      compensations.push({ tenant: t.tenant, undo: () => critical.dropRecoveryShadow({ tenant: t.tenant, id }), after: 'failed-before-swap' });
      shadows.push(
        long
          .prepareRecoveryShadow({ session: plan.session, tenant: t.tenant, id, scope, fromCloud, ...trust })
          .then((shadow) => {
            status.tenants[t.tenant] = { state: 'verified', bytes: shadow.bytes };
            readySet.add(t.tenant);
          })
          .catch(async (err: unknown) => {
            status.tenants[t.tenant] = { state: 'failed-before-swap', error: failureMessage(err) };
            await critical.dropRecoveryShadow({ tenant: t.tenant, id }).catch(() => undefined);
          })
          .finally(() => {
            running--;
          }),
      );
    }
    await Promise.all(shadows);
    // Cancelled while the shadows were restored: the recovery ends cancelled (its compensations run
    // below), not as a recovery whose tenants could not be prepared.
    if (CancellationScope.current().consideredCancelled && patched('recovery-cancelled-while-preparing')) {
      throw new CancelledFailure('recovery cancelled while its shadows were restored');
    }
    const ready = plan.tenants.map((t) => t.tenant).filter((t) => readySet.has(t));
    if (plan.tenants.length > 0 && ready.length === 0) {
      const why = plan.tenants.map((t) => `${t.tenant}: ${status.tenants[t.tenant]?.error ?? 'not prepared'}`).join('; ');
      throw fail('RecoveryNotPrepared', `no tenant could be prepared for recovery (${why})`);
    }

    if (input.backupFirst) {
      // A full session of today's state, on top of the pre-recovery copy the swap keeps.
      const session = backupSessionName(new Date(Date.now()), id);
      const pre = await executeChild(backupWorkflow, {
        workflowId: workflowIds.backup(session),
        // The tenants' locks are this recovery's: its backup writes under them.
        args: [
          {
            session,
            tenants: ready.filter((t) => plan.tenants.find((p) => p.tenant === t)?.exists),
            startedBy: `recovery ${info.workflowId}`,
            retention: false,
            ...(lockTenants ? { lockedBy: info.workflowId } : {}),
          },
        ],
      });
      status.backupFirst = { session: pre.session, status: pre.status };
      if (pre.status === 'failed') throw fail('PreRecoveryBackupFailed', `the pre-recovery backup ${pre.session} failed`);
    }

    // Nothing left to swap (every tenant already recovered by an earlier run): Odoo is not touched.
    if (ready.length > 0) {
      // 2. The swap, Odoo stopped: its downtime is the time between stop and start.
      const stoppedAt = Date.now();
      let downMs = 0;
      const odooStarted = (since: number) => {
        downMs += Date.now() - since;
        status.odooDowntimeMs = downMs;
      };
      const startOdooAgain = {
        tenant: '*',
        undo: async () => {
          await service.startOdoo({});
          odooStarted(stoppedAt);
        },
      };
      // The start is owed as soon as the stop is asked for: a stop cancelled or failing half-way may
      // have stopped Odoo, and the recovery must not leave it down (starting a running Odoo is harmless).
      const startOwedBeforeStop = patched('start-odoo-owed-before-stop');
      if (startOwedBeforeStop) compensations.push(startOdooAgain);
      await service.stopOdoo({});
      if (!startOwedBeforeStop) compensations.push(startOdooAgain);
      const swapInput = (tenant: string) => {
        const planned = plan.tenants.find((t) => t.tenant === tenant)!;
        return { tenant, id, stamp, scope, tenantExisted: planned.exists, tenantDirExisted: planned.filestoreExists };
      };
      // Tenants are independent: swapped DR_MAX_PARALLEL_BACKUPS at a time, Odoo's downtime shortened.
      await inParallel(ready, plan.parallelism, async (tenant) => {
        compensations.push({ tenant, undo: () => compensate.swapBackTenant(swapInput(tenant)), after: 'rolled-back' });
        // Workflow time, retries and a dead worker's timeout included (the activity sees only its attempt).
        const swapStart = Date.now();
        try {
          await critical.swapInTenant(swapInput(tenant));
          status.tenants[tenant] = { ...status.tenants[tenant], state: 'swapped', swapMs: Date.now() - swapStart };
        } catch (err) {
          status.tenants[tenant] = { state: 'rolled-back', error: `swap: ${failureMessage(err)}` };
          await compensate.swapBackTenant(swapInput(tenant));
          await critical.dropRecoveryShadow({ tenant, id }).catch(() => undefined);
        }
      });
      await service.startOdoo({});
      odooStarted(stoppedAt);

      // 3. Health: a tenant that does not answer is swapped back (Odoo stopped again for it).
      const swapped = ready.filter((t) => status.tenants[t]?.state === 'swapped');
      const health = await critical.checkRecoveryHealth({ tenants: swapped });
      const sick = swapped.filter((t) => health.some((h) => h.name === `tenant:${t}` && h.status === 'fail'));
      const serviceDown = health.some((h) => h.name === 'odoo-http' && h.status === 'fail');
      const toRollBack = new Set(serviceDown ? swapped : sick);
      if (toRollBack.size) {
        const stoppedAgainAt = Date.now();
        await service.stopOdoo({});
        for (const tenant of toRollBack) {
          await compensate.swapBackTenant(swapInput(tenant));
          await critical.dropRecoveryShadow({ tenant, id }).catch(() => undefined);
          const why = health
            .filter((h) => h.status === 'fail' && (h.name === `tenant:${tenant}` || h.name === 'odoo-http'))
            .map((h) => h.message)
            .join('; ');
          status.tenants[tenant] = { state: 'rolled-back', error: `health check failed: ${why}` };
        }
        await service.startOdoo({});
        odooStarted(stoppedAgainAt);
      }
      for (const t of ready) {
        const now = status.tenants[t];
        if (now && now.state !== 'failed-before-swap') status.tenants[t] = { ...now, downtimeMs: downMs };
      }
      await inParallel(
        swapped.filter((t) => !toRollBack.has(t)),
        plan.parallelism,
        async (t) => {
          status.tenants[t] = { ...status.tenants[t]!, state: 'recovered' };
          // Verified and serving: a rerun of this recovery skips it. Not fatal if it cannot be written.
          await critical
            .markTenantRecovered({ tenant: t, session: plan.session, workflowId: info.workflowId, site: plan.site })
            .catch((err: unknown) => log.warn('recovered marker not written', { tenant: t, error: failureMessage(err) }));
        },
      );
    }
  } catch (err) {
    // Anything unexpected (or a cancellation): undo everything done, in reverse.
    await runCompensations(compensations, status, failureMessage(err));
    status.state = 'rolled-back';
    await audit('rolled-back', { session: plan.session, error: failureMessage(err), tenants: status.tenants });
    await alert('critical', `recovery rolled back: ${info.workflowId}`, `${what}\n${failureMessage(err)}`);
    throw err;
  } finally {
    await CancellationScope.nonCancellable(() => Promise.all(locks.map((l) => l.release())));
  }
  const states = Object.values(status.tenants).map((t) => t.state);
  status.state = states.length > 0 && states.every((s) => s === 'rolled-back' || s === 'failed-before-swap') ? 'rolled-back' : 'done';
  status.report = recoveryReport(plan, status, Date.now() - approvedAt);
  await audit(status.state, { session: plan.session, tenants: status.tenants });
  await alert(
    status.state === 'done' && states.every((s) => s === 'recovered') ? 'info' : 'critical',
    `recovery ${status.state}: ${info.workflowId}`,
    Object.entries(status.tenants)
      .map(([t, s]) => `- ${t}: ${s.state}${s.error ? ` (${s.error})` : ''}`)
      .join('\n'),
  );
  return result();
}
