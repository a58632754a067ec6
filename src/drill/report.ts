/**
 * The drill's verdict: per-tenant results from the backup and the validation checks, the achieved
 * RPO of each tenant, and the fleet's RTO projected from the measured restore rate. Pure: the
 * drill workflow gathers the facts (through activities) and a local activity calls this.
 */
import { SESSION_NAME, sessionTime } from '../backup/layout';
import type { RestoreTestResult } from '../validate/restore-test';
import type { CheckResult } from '../validate/session';

const GiB = 1024 ** 3;
const HOUR_MS = 3_600_000;

/** The objectives a drill measures against, and how many tenants are restored at once. */
export interface DrillSettings {
  rpoHours: number;
  rtoMinutes: number;
  /** DR_MAX_PARALLEL_BACKUPS: tenants restored at once in the projection. */
  maxParallel: number;
}

/** One tenant's measured restore: the restore test's times and restored sizes, and their rate. */
export type MeasuredRestore = Pick<RestoreTestResult, 'tenant' | 'databaseMs' | 'filestoreMs' | 'databaseBytes' | 'filestoreBytes'> & { secondsPerGiB: number };

export interface DrillTenantReport {
  tenant: string;
  status: 'pass' | 'fail';
  /** Age of the newest verified backup of the tenant at drill time. */
  achievedRpoHours: number | undefined;
  restore?: MeasuredRestore;
  checks: { passed: number; failed: number; warned: number };
  failures: string[];
}

/** Projected time to restore the whole fleet at the measured rate, `parallelism` tenants at once. */
export interface ProjectedRto {
  minutes: number;
  targetMinutes: number;
  pass: boolean;
  secondsPerGiB: number;
  fleetBytes: number;
  parallelism: number;
}

/** What the drill observed. Times are epoch milliseconds (the workflow's clock). */
export interface DrillFacts {
  startedAtMs: number;
  /** The drill's own backup (full and backup-only drills). */
  backup?: {
    status: string;
    finishedAtMs: number;
    tenants: Array<{ tenant: string; status: string; error?: string }>;
  };
  /** The validation of the session (every mode but backup-only). */
  validation?: {
    session: string;
    checks: CheckResult[];
    restores: MeasuredRestore[];
    /** When the checks were done: the session's age then is the achieved RPO. */
    checkedAtMs: number;
    restoreTest: boolean;
    /** Current size of the fleet to recover (asked for when restores were measured). */
    fleetBytes?: number;
  };
}

export interface DrillOutcome {
  status: 'pass' | 'fail';
  /** Sorted by tenant name. */
  tenants: DrillTenantReport[];
  projectedRto?: ProjectedRto;
}

/**
 * Fleet RTO: the measured seconds per GiB (all measured restores together) applied to the fleet's
 * bytes, `maxParallel` tenants at once. Undefined when nothing was measured.
 */
export function projectFleetRto(restores: MeasuredRestore[], fleetBytes: number, settings: DrillSettings): ProjectedRto | undefined {
  if (!restores.length) return undefined;
  const totalSeconds = restores.reduce((a, m) => a + (m.databaseMs + m.filestoreMs) / 1000, 0);
  const totalBytes = restores.reduce((a, m) => a + m.databaseBytes + m.filestoreBytes, 0);
  const secondsPerGiB = totalBytes > 0 ? totalSeconds / (totalBytes / GiB) : 0;
  const minutes = ((fleetBytes / GiB) * secondsPerGiB) / settings.maxParallel / 60;
  return { minutes, targetMinutes: settings.rtoMinutes, pass: minutes <= settings.rtoMinutes, secondsPerGiB, fleetBytes, parallelism: settings.maxParallel };
}

/** Start of a session from its name (backup_YYYYMMDD_HHMMSS_id), in ms; `fallback` for another name. */
function sessionStartMs(session: string, fallback: number): number {
  return SESSION_NAME.test(session) ? sessionTime(session).getTime() : fallback;
}

/** Per-tenant results, achieved RPO, projected RTO and the overall status of a drill. */
export function drillOutcome(facts: DrillFacts, settings: DrillSettings): DrillOutcome {
  let status: 'pass' | 'fail' = 'pass';
  const tenants: DrillTenantReport[] = [];
  let projectedRto: ProjectedRto | undefined;

  if (facts.backup) {
    for (const t of facts.backup.tenants) {
      const complete = t.status === 'complete';
      tenants.push({
        tenant: t.tenant,
        status: complete ? 'pass' : 'fail',
        achievedRpoHours: complete ? (facts.backup.finishedAtMs - facts.startedAtMs) / HOUR_MS : undefined,
        checks: { passed: complete ? 1 : 0, failed: complete ? 0 : 1, warned: 0 },
        failures: t.error ? [t.error] : [],
      });
    }
    if (facts.backup.status !== 'complete') status = 'fail';
  }

  const v = facts.validation;
  if (v) {
    const ageHours = (v.checkedAtMs - sessionStartMs(v.session, v.checkedAtMs)) / HOUR_MS;
    const byTenant = new Map<string, CheckResult[]>();
    for (const c of v.checks) if (c.tenant) byTenant.set(c.tenant, [...(byTenant.get(c.tenant) ?? []), c]);
    for (const [tenant, checks] of byTenant) {
      const existing = tenants.find((t) => t.tenant === tenant);
      const failures = checks.filter((c) => c.status === 'fail').map((c) => `${c.name}: ${c.message}`);
      const entry: DrillTenantReport = existing ?? {
        tenant,
        status: 'pass',
        achievedRpoHours: ageHours,
        checks: { passed: 0, failed: 0, warned: 0 },
        failures: [],
      };
      entry.checks.passed += checks.filter((c) => c.status === 'pass').length;
      entry.checks.failed += failures.length;
      entry.checks.warned += checks.filter((c) => c.status === 'warn').length;
      entry.failures.push(...failures);
      // The session's age counts only for a tenant whose copy verified.
      entry.achievedRpoHours = failures.length ? undefined : ageHours;
      const measure = v.restores.find((m) => m.tenant === tenant);
      if (measure) entry.restore = measure;
      if (entry.checks.failed) entry.status = 'fail';
      if (!existing) tenants.push(entry);
    }
    if (v.checks.some((c) => c.status === 'fail')) status = 'fail';

    if (v.restoreTest && v.fleetBytes !== undefined) {
      projectedRto = projectFleetRto(v.restores, v.fleetBytes, settings);
      if (projectedRto && !projectedRto.pass) status = 'fail';
    }
    for (const t of tenants) {
      if (t.achievedRpoHours !== undefined && t.achievedRpoHours > settings.rpoHours) {
        t.status = 'fail';
        t.failures.push(`achieved RPO ${t.achievedRpoHours.toFixed(1)} h exceeds the ${settings.rpoHours} h objective`);
        status = 'fail';
      }
    }
  }
  tenants.sort((a, b) => (a.tenant < b.tenant ? -1 : 1));
  return { status, tenants, ...(projectedRto ? { projectedRto } : {}) };
}
