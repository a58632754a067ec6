/**
 * The status report as Prometheus text exposition format (version 0.0.4), for node_exporter's
 * textfile collector: metrics prefixed `odoo_dr_`, one HELP/TYPE per family, label values escaped.
 */
import type { CheckStatus } from './checks';
import type { StatusReport } from './report';

const STATUS_VALUE: Record<CheckStatus, number> = { ok: 0, warning: 1, critical: 2, unknown: 3 };

function label(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labels(l: Record<string, string | undefined>): string {
  const parts = Object.entries(l)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `${k}="${label(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

export function renderPrometheus(report: StatusReport): string {
  const out: string[] = [];
  const family = (name: string, help: string, samples: Array<[Record<string, string | undefined>, number]>) => {
    out.push(`# HELP odoo_dr_${name} ${help}`, `# TYPE odoo_dr_${name} gauge`);
    for (const [l, v] of samples) out.push(`odoo_dr_${name}${labels(l)} ${Number.isFinite(v) ? v : 'NaN'}`);
  };
  family('status', 'Worst check status: 0 ok, 1 warning, 2 critical, 3 unknown.', [[{}, STATUS_VALUE[report.status]]]);
  family('report_timestamp_seconds', 'When the status report was generated (Unix time).', [[{}, Math.floor(Date.parse(report.generatedAt) / 1000)]]);
  family(
    'check_status',
    'Status of each check: 0 ok, 1 warning, 2 critical, 3 unknown.',
    report.checks.map((c) => [{ check: c.id, category: c.category, tenant: c.tenant }, STATUS_VALUE[c.status]]),
  );
  family(
    'check_value',
    'Measured value of each numeric check (unit in the unit label).',
    report.checks
      .filter((c) => typeof c.value === 'number')
      .map((c) => [{ check: c.id, category: c.category, tenant: c.tenant, unit: c.unit }, c.value as number]),
  );
  family('tenants', 'Tenants found now.', [[{}, report.tenants.length]]);
  family(
    'last_backup_timestamp_seconds',
    'Start time of the newest complete backup per tenant (Unix time).',
    report.tenants.flatMap((t) =>
      t.lastBackup ? [[{ tenant: t.tenant }, Math.floor(Date.parse(t.lastBackup.at) / 1000)] as [Record<string, string>, number]] : [],
    ),
  );
  family(
    'last_validated_backup_timestamp_seconds',
    'Start time of the newest backup that passed validation, per tenant (Unix time).',
    report.tenants.flatMap((t) =>
      t.lastValidated ? [[{ tenant: t.tenant }, Math.floor(Date.parse(t.lastValidated.at) / 1000)] as [Record<string, string>, number]] : [],
    ),
  );
  family('rpo_hours', 'Recovery-point objective (DR_RPO_HOURS).', [[{}, report.objectives.rpoHours]]);
  return `${out.join('\n')}\n`;
}
