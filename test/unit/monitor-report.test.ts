/** The status report: built from checks, conforming to the documented schema, rendered for Prometheus; exit codes. */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { evaluateChecks, type MonitorFacts } from '../../src/monitor/checks';
import { renderPrometheus } from '../../src/monitor/prometheus';
import { buildReport, exitCodeFor, readStatusReport, validateStatusReport, writeAtomic } from '../../src/monitor/report';

const NOW = '2026-11-26T12:00:00.000Z';
const settings = { rpoHours: 4, backupAgeSeconds: 86_400, diskUsagePercent: 90, drillMaxAgeDays: 30 };
const facts: MonitorFacts = {
  at: NOW,
  tenants: { names: ['acme', 'new"one'] },
  backups: { acme: { lastComplete: { session: 'backup_20261126_060000_aaaaaa', at: '2026-11-26T06:00:00.000Z' } } },
  latestSession: { session: 'backup_20261126_060000_aaaaaa', at: '2026-11-26T06:00:00.000Z', status: 'complete', tenants: ['acme'] },
  cloud: { configured: false },
  disks: [{ id: 'backup-dir', path: '/b', usedPercent: 50, freeBytes: 5 }],
  odooHealth: { configured: false },
  postgres: { ok: true, detail: 'PostgreSQL 15' },
  schedules: [],
  worker: { pollers: 2 },
  resources: { memTotalBytes: 100, memAvailableBytes: 50, load1: 0.1, cpus: 2 },
};

describe('status report', () => {
  const report = buildReport(facts, settings, evaluateChecks(facts, settings), { workflowId: 'monitor/x', host: 'h1' });

  it('has a table per tenant: last backup with its age, last validation, RPO state', () => {
    assert.deepEqual(report.tenants[0], {
      tenant: 'acme',
      lastBackup: { session: 'backup_20261126_060000_aaaaaa', at: '2026-11-26T06:00:00.000Z', ageHours: 6 },
      lastValidated: null,
      rpo: 'warning',
    });
    assert.equal(report.tenants[1]!.lastBackup, null);
    assert.equal(report.status, 'warning');
    assert.equal(report.summary.warning + report.summary.ok + report.summary.critical + report.summary.unknown, report.checks.length);
  });

  it('conforms to the documented schema, and the validator catches what does not', () => {
    assert.deepEqual(validateStatusReport(JSON.parse(JSON.stringify(report))), []);
    const broken = JSON.parse(JSON.stringify(report)) as Record<string, unknown> & { checks: Array<Record<string, unknown>> };
    broken.checks[0]!.status = 'fine';
    delete broken.checks[1]!.action;
    broken.version = 2;
    const problems = validateStatusReport(broken);
    assert.ok(
      problems.some((p) => /checks\[0\]\.status "fine"/.test(p)),
      problems.join('; '),
    );
    assert.ok(
      problems.some((p) => /checks\[1\]\.action/.test(p)),
      problems.join('; '),
    );
    assert.ok(
      problems.some((p) => /version is 2/.test(p)),
      problems.join('; '),
    );
  });

  it('is written atomically (no temporary file left) and read back; a missing report says what to run', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-report-'));
    const file = path.join(dir, 'logs', 'dr-status.json');
    await writeAtomic(file, JSON.stringify(report));
    assert.deepEqual(readdirSync(path.dirname(file)), ['dr-status.json']);
    assert.equal((await readStatusReport(file)).workflowId, 'monitor/x');
    await assert.rejects(readStatusReport(path.join(dir, 'none.json')), /no status report at .*odoo-dr monitor --wait/);
  });

  it('renders Prometheus text format: odoo_dr_ prefix, HELP and TYPE once per family, escaped labels', () => {
    const text = renderPrometheus(report);
    const lines = text.trimEnd().split('\n');
    for (const l of lines) assert.match(l, /^(# (HELP|TYPE) odoo_dr_[a-z_]+ .+|odoo_dr_[a-z_]+(\{[^}]*\})? (-?[0-9.e+]+|NaN))$/, l);
    const types = lines.filter((l) => l.startsWith('# TYPE'));
    assert.equal(new Set(types).size, types.length);
    assert.ok(lines.includes('odoo_dr_status 1'));
    assert.ok(lines.includes('odoo_dr_check_status{check="backup-age/acme",category="backup-age",tenant="acme"} 1'), text);
    assert.ok(lines.includes('odoo_dr_check_value{check="backup-age/acme",category="backup-age",tenant="acme",unit="h"} 6'), text);
    assert.ok(
      lines.some((l) => l.includes('tenant="new\\"one"')),
      'a quote in a label is escaped',
    );
    assert.ok(lines.includes(`odoo_dr_last_backup_timestamp_seconds{tenant="acme"} ${Date.parse('2026-11-26T06:00:00Z') / 1000}`));
  });

  it('exit codes as Nagios plugins; unknown does not change them', () => {
    assert.equal(exitCodeFor('ok'), 0);
    assert.equal(exitCodeFor('unknown'), 0);
    assert.equal(exitCodeFor('warning'), 1);
    assert.equal(exitCodeFor('critical'), 2);
  });
});
