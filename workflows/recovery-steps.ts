/**
 * recoveryWorkflow's status types and its helpers: the compensations run in reverse on failure,
 * bounded parallelism that waits for every step before it reports, the final report.
 */
import { ActivityFailure, ApplicationFailure, CancellationScope, condition, log } from '@temporalio/workflow';
import type { RecoveryPlan } from '../src/recovery/plan';

export type TenantRecoveryState =
  'planned' | 'restoring-shadow' | 'verified' | 'swapped' | 'recovered' | 'failed-before-swap' | 'rolled-back' | 'rollback-failed';

export interface RecoveryStatus {
  state: 'planning' | 'waiting-for-approval' | 'rejected' | 'expired' | 'recovering' | 'done' | 'rolled-back' | 'planned';
  plan?: RecoveryPlan;
  approvedBy?: string;
  rejectedBy?: string;
  /**
   * Per tenant. `downtimeMs`: how long the tenant was not served (Odoo stopped until started again),
   * `swapMs`: its swap, retries included; both measured from the workflow's own timestamps.
   */
  tenants: Record<string, { state: TenantRecoveryState; error?: string; downtimeMs?: number; swapMs?: number; bytes?: number; skipped?: string }>;
  /** Odoo stopped → started again, in total (health-check rollbacks included). */
  odooDowntimeMs?: number;
  config?: { restored: string[]; keptAs: string[]; error?: string };
  /** Cluster roles restored before the tenants (full mode). */
  globals?: { created: string[]; existing: string[]; memberships: string[]; skipped: string[]; warnings: string[]; passwordsRestored: number; error?: string };
  /** The final figures: what came back, how old it is (achieved RPO), how long it took (achieved RTO). */
  report?: RecoveryReport;
  /** The session made by --backup-first. */
  backupFirst?: { session: string; status: string };
}

export interface RecoveryReport {
  session: string;
  tenantsRecovered: number;
  tenantsFailed: number;
  bytes: number;
  /** Per tenant: the session's age when its data came back. */
  achievedRpoHours: Record<string, number>;
  /** Wall time from approval to the end. */
  achievedRtoMinutes: number;
  rtoMinutes: number;
  rtoMet: boolean;
}

/** The root cause of an activity's failure, with its type. */
export function failureMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof ActivityFailure) e = e.cause;
  if (e instanceof ApplicationFailure) return e.type ? `${e.type}: ${e.message}` : e.message;
  return e instanceof Error ? e.message : String(err);
}

/** An undo step and, once it succeeded, what its tenant is (status and audit tell what happened). */
export interface Compensation {
  tenant: string;
  undo: () => Promise<void>;
  after?: TenantRecoveryState;
}

/** Runs the compensations in reverse, even when the workflow is being cancelled; records each tenant's outcome in `status`. */
export async function runCompensations(compensations: Compensation[], status: RecoveryStatus, why: string): Promise<void> {
  await CancellationScope.nonCancellable(async () => {
    for (const c of [...compensations].reverse()) {
      try {
        await c.undo();
        const now = status.tenants[c.tenant];
        if (c.after && now && now.state !== 'rollback-failed' && now.state !== 'rolled-back' && now.state !== 'failed-before-swap') {
          status.tenants[c.tenant] = { ...now, state: c.after, error: now.error ?? `recovery rolled back: ${why}` };
        }
      } catch (err) {
        log.error('compensation failed', { tenant: c.tenant, error: failureMessage(err) });
        status.tenants[c.tenant] = { ...status.tenants[c.tenant], state: 'rollback-failed', error: failureMessage(err) };
      }
    }
  });
}

/**
 * Runs `fn` over `items`, at most `limit` at once; waits for all of them to settle before it
 * reports the first failure (compensations must never race a step still running).
 */
export async function inParallel<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let running = 0;
  const all: Array<Promise<void>> = [];
  for (const item of items) {
    await condition(() => running < limit);
    running++;
    all.push(
      fn(item).finally(() => {
        running--;
      }),
    );
  }
  const failed = (await Promise.allSettled(all)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** What came back, its age (achieved RPO) and the wall time from approval (achieved RTO). */
export function recoveryReport(plan: RecoveryPlan, status: RecoveryStatus, wallMs: number): RecoveryReport {
  const ageHours = (Date.now() - Date.parse(plan.sessionStartedAt)) / 3_600_000;
  const recovered = Object.entries(status.tenants).filter(([, t]) => t.state === 'recovered');
  const achievedRtoMinutes = wallMs / 60_000;
  return {
    session: plan.session,
    tenantsRecovered: recovered.length,
    tenantsFailed: Object.values(status.tenants).filter((t) => t.state !== 'recovered').length,
    bytes: recovered.reduce((a, [, t]) => a + (t.bytes ?? 0), 0),
    achievedRpoHours: Object.fromEntries(recovered.map(([tenant]) => [tenant, ageHours])),
    achievedRtoMinutes,
    rtoMinutes: plan.rtoMinutes,
    rtoMet: achievedRtoMinutes <= plan.rtoMinutes,
  };
}

/** `20261126031500` from a time in ms. */
export function stampOf(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:T]/g, '').slice(0, 14);
}
