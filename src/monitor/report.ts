/**
 * The status report `<DR_LOG_DIR>/dr-status.json` (schema in the README, section "Monitoring and
 * alerts", and in STATUS_REPORT_SCHEMA, which a test checks reports against): what `odoo-dr status`
 * prints and external monitoring reads. Written atomically (temporary file + rename), so a reader
 * never sees half a report. Holds no secrets: only names, figures and messages.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CheckStatus, MonitorCheck, MonitorFacts, MonitorSettings } from './checks';
import { worstStatus } from './checks';

export const STATUS_REPORT_VERSION = 1;

export interface TenantStatus {
  tenant: string;
  lastBackup: { session: string; at: string; ageHours: number } | null;
  lastValidated: { session: string; at: string; ageHours: number } | null;
  /** State of the tenant's backup-age check against the RPO. */
  rpo: CheckStatus;
}

export interface ChannelState {
  /** Last delivery through this channel: `sent`, `not configured` or `failed: …`. */
  last: string;
  at: string;
}

export interface StatusReport {
  version: typeof STATUS_REPORT_VERSION;
  generatedAt: string;
  workflowId: string;
  host: string;
  status: CheckStatus;
  summary: Record<CheckStatus, number>;
  objectives: { rpoHours: number; backupAgeSeconds: number; diskUsagePercent: number; drillMaxAgeDays: number };
  tenants: TenantStatus[];
  checks: MonitorCheck[];
  alerts: {
    /** Whether this run reported to the alert state (false with --no-alerts). */
    enabled: boolean;
    /** Alerts sent because of this run (subjects). */
    sent: string[];
    /** Checks currently alerting (warning/critical) as the alert state knows them. */
    active: string[];
    channels: { email?: ChannelState; webhook?: ChannelState };
    error?: string;
  };
}

export function buildReport(facts: MonitorFacts, settings: MonitorSettings, checks: MonitorCheck[], meta: { workflowId: string; host: string }): StatusReport {
  const now = Date.parse(facts.at);
  const age = (iso: string) => Math.round(((now - Date.parse(iso)) / 3_600_000) * 10) / 10;
  const summary: Record<CheckStatus, number> = { ok: 0, warning: 0, critical: 0, unknown: 0 };
  for (const c of checks) summary[c.status]++;
  const tenants = [...facts.tenants.names].sort().map((t): TenantStatus => {
    const b = facts.backups[t];
    return {
      tenant: t,
      lastBackup: b?.lastComplete ? { ...b.lastComplete, ageHours: age(b.lastComplete.at) } : null,
      lastValidated: b?.lastValidated ? { ...b.lastValidated, ageHours: age(b.lastValidated.at) } : null,
      rpo: checks.find((c) => c.id === `backup-age/${t}`)?.status ?? 'unknown',
    };
  });
  return {
    version: STATUS_REPORT_VERSION,
    generatedAt: facts.at,
    workflowId: meta.workflowId,
    host: meta.host,
    status: worstStatus(checks),
    summary,
    objectives: { ...settings },
    tenants,
    checks,
    alerts: { enabled: false, sent: [], active: [], channels: {} },
  };
}

/** Writes `text` to `file` atomically: a temporary file in the same folder, then rename. */
export async function writeAtomic(file: string, text: string, mode = 0o640): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  await writeFile(tmp, text, { mode });
  await rename(tmp, file);
}

export function statusReportPath(logDir: string): string {
  return path.join(logDir, 'dr-status.json');
}

/** Reads a report; a clear error when it is missing or not a report of this version. */
export async function readStatusReport(file: string): Promise<StatusReport> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(
      code === 'ENOENT'
        ? `no status report at ${file}: run odoo-dr monitor --wait (or apply the schedules) first`
        : `cannot read ${file}: ${(err as Error).message}`,
    );
  }
  let report: unknown;
  try {
    report = JSON.parse(text);
  } catch {
    throw new Error(`${file} is not JSON`);
  }
  const problems = validateStatusReport(report);
  if (problems.length) throw new Error(`${file} is not a status report of version ${STATUS_REPORT_VERSION}: ${problems.slice(0, 5).join('; ')}`);
  return report as StatusReport;
}

const STATUSES = ['ok', 'warning', 'critical', 'unknown'];

/**
 * The schema of dr-status.json (JSON Schema draft 2020-12), documented in the README. It is data so
 * that tooling can use it; validateStatusReport checks the same rules without a schema library.
 */
export const STATUS_REPORT_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'odoo-dr status report (dr-status.json)',
  type: 'object',
  required: ['version', 'generatedAt', 'workflowId', 'host', 'status', 'summary', 'objectives', 'tenants', 'checks', 'alerts'],
  properties: {
    version: { const: STATUS_REPORT_VERSION },
    generatedAt: { type: 'string', format: 'date-time' },
    workflowId: { type: 'string' },
    host: { type: 'string' },
    status: { enum: STATUSES },
    summary: { type: 'object', required: STATUSES, additionalProperties: { type: 'integer', minimum: 0 } },
    objectives: { type: 'object', required: ['rpoHours', 'backupAgeSeconds', 'diskUsagePercent', 'drillMaxAgeDays'] },
    tenants: {
      type: 'array',
      items: {
        type: 'object',
        required: ['tenant', 'lastBackup', 'lastValidated', 'rpo'],
        properties: {
          tenant: { type: 'string' },
          lastBackup: { type: ['object', 'null'], required: ['session', 'at', 'ageHours'] },
          lastValidated: { type: ['object', 'null'], required: ['session', 'at', 'ageHours'] },
          rpo: { enum: STATUSES },
        },
      },
    },
    checks: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'category', 'status', 'value', 'threshold', 'message', 'action'],
        properties: {
          id: { type: 'string' },
          category: { type: 'string' },
          tenant: { type: 'string' },
          status: { enum: STATUSES },
          value: { type: ['number', 'string', 'null'] },
          unit: { type: 'string' },
          threshold: { type: 'string' },
          message: { type: 'string' },
          action: { type: 'string' },
        },
      },
    },
    alerts: {
      type: 'object',
      required: ['enabled', 'sent', 'active', 'channels'],
      properties: {
        enabled: { type: 'boolean' },
        sent: { type: 'array', items: { type: 'string' } },
        active: { type: 'array', items: { type: 'string' } },
        channels: {
          type: 'object',
          properties: { email: { type: 'object', required: ['last', 'at'] }, webhook: { type: 'object', required: ['last', 'at'] } },
        },
        error: { type: 'string' },
      },
    },
  },
} as const;

/** Problems of `value` against STATUS_REPORT_SCHEMA (empty when it conforms). */
export function validateStatusReport(value: unknown): string[] {
  const p: string[] = [];
  const obj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!obj(value)) return ['not an object'];
  for (const k of STATUS_REPORT_SCHEMA.required) if (!(k in value)) p.push(`missing ${k}`);
  if (value.version !== STATUS_REPORT_VERSION) p.push(`version is ${JSON.stringify(value.version)}`);
  if (typeof value.generatedAt !== 'string' || Number.isNaN(Date.parse(value.generatedAt))) p.push('generatedAt is not a date-time');
  for (const k of ['workflowId', 'host'] as const) if (typeof value[k] !== 'string') p.push(`${k} is not a string`);
  if (!STATUSES.includes(value.status as string)) p.push(`status ${JSON.stringify(value.status)}`);
  if (!obj(value.summary) || !STATUSES.every((s) => Number.isInteger((value.summary as Record<string, unknown>)[s])))
    p.push('summary needs a count per status');
  if (
    !obj(value.objectives) ||
    !STATUS_REPORT_SCHEMA.properties.objectives.required.every((k) => typeof (value.objectives as Record<string, unknown>)[k] === 'number')
  )
    p.push('objectives incomplete');
  const ref = (r: unknown, where: string) => {
    if (r === null) return;
    if (!obj(r) || typeof r.session !== 'string' || typeof r.at !== 'string' || typeof r.ageHours !== 'number')
      p.push(`${where} is not {session, at, ageHours} or null`);
  };
  if (!Array.isArray(value.tenants)) p.push('tenants is not an array');
  else
    value.tenants.forEach((t: unknown, i) => {
      if (!obj(t) || typeof t.tenant !== 'string') return void p.push(`tenants[${i}] has no tenant`);
      ref(t.lastBackup, `tenants[${i}].lastBackup`);
      ref(t.lastValidated, `tenants[${i}].lastValidated`);
      if (!STATUSES.includes(t.rpo as string)) p.push(`tenants[${i}].rpo ${JSON.stringify(t.rpo)}`);
    });
  if (!Array.isArray(value.checks)) p.push('checks is not an array');
  else
    value.checks.forEach((c: unknown, i) => {
      if (!obj(c)) return void p.push(`checks[${i}] is not an object`);
      for (const k of ['id', 'category', 'threshold', 'message', 'action']) if (typeof c[k] !== 'string') p.push(`checks[${i}].${k} is not a string`);
      if (!STATUSES.includes(c.status as string)) p.push(`checks[${i}].status ${JSON.stringify(c.status)}`);
      if (!(c.value === null || typeof c.value === 'number' || typeof c.value === 'string')) p.push(`checks[${i}].value has a wrong type`);
      if ('tenant' in c && typeof c.tenant !== 'string') p.push(`checks[${i}].tenant is not a string`);
      if ('unit' in c && typeof c.unit !== 'string') p.push(`checks[${i}].unit is not a string`);
    });
  const a = value.alerts;
  if (!obj(a)) p.push('alerts is not an object');
  else {
    if (typeof a.enabled !== 'boolean') p.push('alerts.enabled is not a boolean');
    for (const k of ['sent', 'active'])
      if (!Array.isArray(a[k]) || !(a[k] as unknown[]).every((x) => typeof x === 'string')) p.push(`alerts.${k} is not a list of strings`);
    if (!obj(a.channels)) p.push('alerts.channels is not an object');
    else
      for (const [k, ch] of Object.entries(a.channels))
        if (!obj(ch) || typeof ch.last !== 'string' || typeof ch.at !== 'string') p.push(`alerts.channels.${k} is not {last, at}`);
  }
  return p;
}

/**
 * Exit code of `monitor` and `status`, as Nagios plugins: 0 OK, 1 WARNING, 2 CRITICAL (3 UNKNOWN is
 * the CLI's "service unreachable": no check could run). `unknown` checks (not measurable from here)
 * do not change it.
 */
export function exitCodeFor(status: CheckStatus): 0 | 1 | 2 {
  return status === 'critical' ? 2 : status === 'warning' ? 1 : 0;
}
