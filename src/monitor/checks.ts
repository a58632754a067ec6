/**
 * Monitoring decisions: facts gathered from the host, PostgreSQL, the session catalog and
 * Temporal → checks, each `ok` / `warning` / `critical` (or `unknown` when it cannot be measured
 * from here: never faked as ok) with its value, threshold, message and what to do. Pure: no I/O.
 */

export type CheckStatus = 'ok' | 'warning' | 'critical' | 'unknown';
export type CheckCategory = 'backup-age' | 'validated-age' | 'completeness' | 'cloud-sync' | 'disk' | 'service' | 'integrity' | 'resources';

export interface MonitorCheck {
  /** Stable key (`backup-age/<tenant>`, `disk/backup-dir`…): alerts are tracked by it. */
  id: string;
  category: CheckCategory;
  tenant?: string;
  status: CheckStatus;
  /** The measured value (hours, percent, a state), null when unknown. */
  value: number | string | null;
  unit?: string;
  /** What `value` is compared with, readable (e.g. "warning > 4 h, critical > 24 h"). */
  threshold: string;
  message: string;
  /** What the operator should do; empty when ok. */
  action: string;
}

export interface BackupRef {
  session: string;
  /** Session start (ISO). */
  at: string;
}

export interface ResultRef {
  session: string;
  status: 'pass' | 'fail';
  finishedAt: string;
  workflowId: string;
  failures: string[];
}

export interface DiskFact {
  id: 'backup-dir' | 'postgres-data';
  path?: string;
  usedPercent?: number;
  freeBytes?: number;
  totalBytes?: number;
  /** Why it could not be measured (e.g. PostgreSQL's data directory is on another host). */
  unknown?: string;
}

export interface ScheduleFact {
  name: string;
  id: string;
  state: 'present' | 'paused' | 'missing' | 'unknown';
  error?: string;
}

export interface MonitorFacts {
  at: string;
  /** Tenants that exist now (discovery); error when PostgreSQL could not be asked. */
  tenants: { names: string[]; error?: string };
  /** Newest complete and newest validated backup per tenant (from verified manifests). */
  backups: Record<string, { lastComplete?: BackupRef; lastValidated?: BackupRef }>;
  /** The newest session with a verified manifest, and the tenants it holds complete. */
  latestSession?: BackupRef & { status: string; tenants: string[] };
  catalogError?: string;
  cloud: { configured: boolean; session?: string; state?: 'equal' | 'missing' | 'different'; error?: string };
  lastValidation?: ResultRef;
  lastDrill?: ResultRef;
  disks: DiskFact[];
  odooHealth: { configured: boolean; ok?: boolean; detail?: string };
  postgres: { ok: boolean; detail: string };
  schedules: ScheduleFact[];
  worker: { pollers?: number; error?: string };
  resources: { memTotalBytes: number; memAvailableBytes: number; load1: number; cpus: number };
}

export interface MonitorSettings {
  rpoHours: number;
  backupAgeSeconds: number;
  diskUsagePercent: number;
  drillMaxAgeDays: number;
}

const HOUR = 3_600_000;

function hoursSince(iso: string, now: number): number {
  return Math.max(0, (now - Date.parse(iso)) / HOUR);
}

const round1 = (x: number) => Math.round(x * 10) / 10;

/** Backup age per tenant: warning past the RPO, critical past DR_ALERT_ON_BACKUP_AGE (at least the RPO). */
function backupAge(tenant: string, ref: BackupRef | undefined, s: MonitorSettings, now: number): MonitorCheck {
  const critH = Math.max(s.rpoHours, s.backupAgeSeconds / 3600);
  const threshold = `warning > ${s.rpoHours} h (DR_RPO_HOURS), critical > ${round1(critH)} h (DR_ALERT_ON_BACKUP_AGE)`;
  const base = { id: `backup-age/${tenant}`, category: 'backup-age' as const, tenant, unit: 'h', threshold };
  if (!ref) {
    return {
      ...base,
      status: 'warning',
      value: null,
      message: `${tenant} was never backed up (created since the last backup, or failing every time)`,
      action: `odoo-dr backup --tenant ${tenant} --wait; if it keeps failing, read the backup's error in the Temporal UI`,
    };
  }
  const age = round1(hoursSince(ref.at, now));
  const status = age > critH ? 'critical' : age > s.rpoHours ? 'warning' : 'ok';
  return {
    ...base,
    status,
    value: age,
    message: `newest complete backup of ${tenant} is ${age} h old (${ref.session})`,
    action: status === 'ok' ? '' : 'check that the backup schedule runs (odoo-dr schedules list) and why recent backups failed; run odoo-dr backup --wait',
  };
}

/** Age of the newest backup that passed validation: warning past DR_ALERT_ON_BACKUP_AGE, critical past twice that. */
function validatedAge(tenant: string, ref: BackupRef | undefined, s: MonitorSettings, now: number): MonitorCheck {
  const warnH = Math.max(s.rpoHours, s.backupAgeSeconds / 3600);
  const threshold = `warning > ${round1(warnH)} h, critical > ${round1(2 * warnH)} h (DR_ALERT_ON_BACKUP_AGE)`;
  const base = { id: `validated-age/${tenant}`, category: 'validated-age' as const, tenant, unit: 'h', threshold };
  const action = 'odoo-dr validate latest --restore-test --wait (and schedule validations: odoo-dr schedules apply)';
  if (!ref) return { ...base, status: 'warning', value: null, message: `no backup of ${tenant} was ever validated`, action };
  const age = round1(hoursSince(ref.at, now));
  const status = age > 2 * warnH ? 'critical' : age > warnH ? 'warning' : 'ok';
  return {
    ...base,
    status,
    value: age,
    message: `newest validated backup of ${tenant} is ${age} h old (${ref.session})`,
    action: status === 'ok' ? '' : action,
  };
}

function completeness(f: MonitorFacts): MonitorCheck {
  const base = { id: 'completeness', category: 'completeness' as const, threshold: 'every current tenant complete in the latest session' };
  if (f.tenants.error || !f.latestSession) {
    return {
      ...base,
      status: 'unknown',
      value: null,
      message: f.tenants.error ? `tenants unknown: ${f.tenants.error}` : 'no backup session yet',
      action: f.latestSession ? 'see the postgres check' : 'odoo-dr backup --wait',
    };
  }
  const inLatest = new Set(f.latestSession.tenants);
  const missing = f.tenants.names.filter((t) => !inLatest.has(t));
  if (!missing.length)
    return { ...base, status: 'ok', value: 0, message: `all ${f.tenants.names.length} tenants are in ${f.latestSession.session}`, action: '' };
  return {
    ...base,
    status: 'warning',
    value: missing.length,
    message: `${missing.length} tenant(s) not complete in the latest session ${f.latestSession.session}: ${missing.slice(0, 20).join(', ')}${missing.length > 20 ? ', …' : ''}`,
    action:
      'new tenants are picked up by the next backup; for others read the failed tenant backups (odoo-dr sessions list) and run odoo-dr backup --tenant DB --wait',
  };
}

/**
 * Every tenant complete in the latest session still has its database: one that vanished (dropped,
 * renamed, its owner changed) is the disaster this tool exists for, and discovery alone no longer
 * lists it. A tenant removed on purpose leaves the latest session with the next backup, and its
 * check with it.
 */
function tenantsPresent(f: MonitorFacts): MonitorCheck[] {
  if (f.tenants.error || !f.latestSession) return [];
  const current = new Set(f.tenants.names);
  const latest = f.latestSession;
  return latest.tenants.map((tenant) => {
    const base = { id: `tenant-present/${tenant}`, category: 'completeness' as const, tenant, threshold: `in the cluster (backed up in ${latest.session})` };
    if (current.has(tenant)) return { ...base, status: 'ok' as const, value: 'present', message: `${tenant} is in the cluster`, action: '' };
    return {
      ...base,
      status: 'critical' as const,
      value: 'gone',
      message: `${tenant} was backed up in ${latest.session} but its database is no longer a tenant of the cluster (dropped, renamed, or no longer owned by the Odoo role)`,
      action: `recover it: odoo-dr recover -m full --tenant ${tenant} --wait (add -c when the local session is gone); if it was removed on purpose, this clears with the next backup`,
    };
  });
}

function cloudSync(f: MonitorFacts, s: MonitorSettings, now: number): MonitorCheck {
  const base = { id: 'cloud-sync', category: 'cloud-sync' as const, threshold: 'latest session present and equal in the bucket' };
  if (!f.cloud.configured) return { ...base, status: 'ok', value: 'not configured', message: 'no cloud copy configured (DR_CLOUD_BUCKET empty)', action: '' };
  if (f.cloud.error)
    return {
      ...base,
      status: 'critical',
      value: 'unreachable',
      message: `bucket not readable: ${f.cloud.error}`,
      action: 'check DR_CLOUD_BUCKET, DR_S3_ENDPOINT, the S3 credentials and the network (odoo-dr setup checks them)',
    };
  if (!f.cloud.session || !f.cloud.state) return { ...base, status: 'unknown', value: null, message: 'no local session to compare', action: '' };
  if (f.cloud.state === 'equal')
    return { ...base, status: 'ok', value: 'equal', message: `${f.cloud.session} is in the bucket, manifest identical`, action: '' };
  const young = f.latestSession && hoursSince(f.latestSession.at, now) <= s.rpoHours;
  const status = f.cloud.state === 'different' || !young ? 'critical' : 'warning';
  return {
    ...base,
    status,
    value: f.cloud.state,
    message: f.cloud.state === 'missing' ? `${f.cloud.session} is not in the bucket` : `${f.cloud.session} in the bucket differs from the local copy`,
    action: 'odoo-dr validate ' + f.cloud.session + ' -c --wait shows which artifacts; the next backup copies what is missing',
  };
}

function disk(d: DiskFact, s: MonitorSettings): MonitorCheck {
  const crit = s.diskUsagePercent + Math.floor((100 - s.diskUsagePercent) / 2);
  const what = d.id === 'backup-dir' ? 'backup disk (DR_BACKUP_DIR)' : 'PostgreSQL data disk';
  const base = {
    id: `disk/${d.id}`,
    category: 'disk' as const,
    unit: '%',
    threshold: `warning ≥ ${s.diskUsagePercent} % (DR_ALERT_ON_DISK_USAGE), critical ≥ ${crit} %`,
  };
  if (d.usedPercent === undefined)
    return {
      ...base,
      status: 'unknown',
      value: null,
      message: `${what}: ${d.unknown ?? 'not measured'}`,
      action: d.id === 'postgres-data' ? 'monitor that disk on the database host' : '',
    };
  const used = round1(d.usedPercent);
  const status = used >= crit ? 'critical' : used >= s.diskUsagePercent ? 'warning' : 'ok';
  return {
    ...base,
    status,
    value: used,
    message: `${what} ${d.path ?? ''} ${used} % used${d.freeBytes !== undefined ? `, ${(d.freeBytes / 1024 ** 3).toFixed(1)} GiB free` : ''}`,
    action:
      status === 'ok'
        ? ''
        : d.id === 'backup-dir'
          ? 'odoo-dr cleanup (retention), lower DR_LOCAL_RETENTION_DAYS or grow the disk'
          : 'free space on the database server (old pre-recovery copies, WAL, bloat) or grow the disk',
  };
}

function services(f: MonitorFacts): MonitorCheck[] {
  const out: MonitorCheck[] = [];
  const h = f.odooHealth;
  out.push({
    id: 'service/odoo',
    category: 'service',
    status: !h.configured ? 'unknown' : h.ok ? 'ok' : 'critical',
    value: !h.configured ? null : h.ok ? 'up' : 'down',
    threshold: 'DR_ODOO_HEALTH_URL answers 2xx',
    message: !h.configured ? 'DR_ODOO_HEALTH_URL not set: Odoo not checked' : `Odoo health: ${h.detail ?? (h.ok ? 'up' : 'down')}`,
    action:
      h.configured && !h.ok
        ? 'check the Odoo service and its logs; odoo-dr recover if its data is lost'
        : h.configured
          ? ''
          : 'set DR_ODOO_HEALTH_URL (e.g. http://127.0.0.1:8069/web/health)',
  });
  out.push({
    id: 'service/postgres',
    category: 'service',
    status: f.postgres.ok ? 'ok' : 'critical',
    value: f.postgres.ok ? 'up' : 'down',
    threshold: 'reachable',
    message: `PostgreSQL: ${f.postgres.detail}`,
    action: f.postgres.ok ? '' : 'check the PostgreSQL service, POSTGRES_HOST/PORT and credentials',
  });
  for (const sch of f.schedules) {
    // Without the backup schedule nothing is backed up: critical. The others degrade assurance only.
    const bad = sch.name === 'backup' ? 'critical' : 'warning';
    const status = sch.state === 'present' ? 'ok' : sch.state === 'unknown' ? 'unknown' : bad;
    out.push({
      id: `service/schedule/${sch.name}`,
      category: 'service',
      status,
      value: sch.state,
      threshold: 'present and not paused',
      message: `schedule ${sch.id}: ${sch.state}${sch.error ? ` (${sch.error})` : ''}`,
      action:
        sch.state === 'missing'
          ? 'odoo-dr schedules apply'
          : sch.state === 'paused'
            ? `temporal schedule toggle --schedule-id ${sch.id} --unpause --reason "…"`
            : '',
    });
  }
  const w = f.worker;
  out.push({
    id: 'service/worker',
    category: 'service',
    status: w.pollers === undefined ? 'unknown' : w.pollers > 0 ? 'ok' : 'critical',
    value: w.pollers ?? null,
    threshold: 'at least 1 worker polling the task queue',
    message: w.pollers === undefined ? `workers unknown: ${w.error ?? 'not asked'}` : `${w.pollers} worker(s) polling the task queue`,
    action: w.pollers === 0 ? 'start the worker: odoo-dr worker (systemd unit)' : '',
  });
  return out;
}

export function integrityCheck(kind: 'validation' | 'drill', r: ResultRef | undefined, s: MonitorSettings, now: number): MonitorCheck {
  const maxH = s.drillMaxAgeDays * 24;
  const base = {
    id: `integrity/${kind}`,
    category: 'integrity' as const,
    unit: 'h',
    threshold: `passed, and newer than ${s.drillMaxAgeDays} d (DR_DRILL_MAX_AGE_DAYS; critical past ${2 * s.drillMaxAgeDays} d)`,
  };
  const run = kind === 'validation' ? 'odoo-dr validate latest --restore-test --wait' : 'odoo-dr drill -m full --wait';
  if (!r) return { ...base, status: 'warning', value: null, message: `no ${kind} result found`, action: run };
  const age = round1(hoursSince(r.finishedAt, now));
  if (r.status === 'fail') {
    return {
      ...base,
      status: 'critical',
      value: age,
      message: `last ${kind} of ${r.session} FAILED (${r.workflowId}): ${r.failures.slice(0, 3).join('; ') || 'see its report'}`,
      action: `read the report (odoo-dr status ${r.workflowId}); fix the cause and ${run}`,
    };
  }
  const status = age > 2 * maxH ? 'critical' : age > maxH ? 'warning' : 'ok';
  return { ...base, status, value: age, message: `last ${kind} of ${r.session} passed ${age} h ago`, action: status === 'ok' ? '' : run };
}

function resources(r: MonitorFacts['resources']): MonitorCheck[] {
  const availPct = r.memTotalBytes > 0 ? round1((r.memAvailableBytes / r.memTotalBytes) * 100) : null;
  const memStatus = availPct === null ? 'unknown' : availPct < 5 ? 'critical' : availPct < 10 ? 'warning' : 'ok';
  const perCpu = r.cpus > 0 ? Math.round((r.load1 / r.cpus) * 100) / 100 : null;
  const loadStatus = perCpu === null ? 'unknown' : perCpu > 4 ? 'critical' : perCpu > 2 ? 'warning' : 'ok';
  return [
    {
      id: 'resources/memory',
      category: 'resources',
      status: memStatus,
      value: availPct,
      unit: '% available',
      threshold: 'warning < 10 % available, critical < 5 %',
      message: `memory: ${availPct ?? '?'} % of ${(r.memTotalBytes / 1024 ** 3).toFixed(1)} GiB available`,
      action: memStatus === 'ok' ? '' : 'lower DR_MAX_PARALLEL_BACKUPS or Odoo workers; check for runaway processes',
    },
    {
      id: 'resources/load',
      category: 'resources',
      status: loadStatus,
      value: perCpu,
      unit: 'load per CPU',
      threshold: 'warning > 2 per CPU, critical > 4 (1-minute load average)',
      message: `load ${r.load1.toFixed(2)} on ${r.cpus} CPU(s)`,
      action: loadStatus === 'ok' ? '' : 'check what runs (backups overlapping? lower DR_MAX_PARALLEL_BACKUPS, raise DR_CPU_NICE_LEVEL)',
    },
  ];
}

/** Every check, in a stable order: per tenant first (sorted), then the site-wide ones. */
export function evaluateChecks(f: MonitorFacts, s: MonitorSettings): MonitorCheck[] {
  const now = Date.parse(f.at);
  const tenants = [...new Set([...f.tenants.names])].sort();
  const checks: MonitorCheck[] = [];
  for (const t of tenants) {
    const b = f.backups[t];
    checks.push(backupAge(t, b?.lastComplete, s, now), validatedAge(t, b?.lastValidated, s, now));
  }
  checks.push(completeness(f), ...tenantsPresent(f), cloudSync(f, s, now));
  if (f.catalogError) {
    checks.push({
      id: 'catalog',
      category: 'integrity',
      status: 'critical',
      value: null,
      threshold: 'sessions readable and verified',
      message: `backup sessions could not be read: ${f.catalogError}`,
      action: 'check DR_BACKUP_DIR, the signing keys (DR_TRUSTED_SIGNERS) and the bucket',
    });
  }
  for (const d of f.disks) checks.push(disk(d, s));
  checks.push(...services(f));
  checks.push(integrityCheck('validation', f.lastValidation, s, now), integrityCheck('drill', f.lastDrill, s, now));
  checks.push(...resources(f.resources));
  return checks;
}

const RANK: Record<CheckStatus, number> = { ok: 0, unknown: 1, warning: 2, critical: 3 };

/** The worst status of the checks; `unknown` counts only when nothing is worse. */
export function worstStatus(checks: Pick<MonitorCheck, 'status'>[]): CheckStatus {
  return checks.reduce<CheckStatus>((w, c) => (RANK[c.status] > RANK[w] ? c.status : w), 'ok');
}
