/** Monitoring decisions alone (no services): facts → checks with status, value, threshold, message, action. */
import assert from 'node:assert/strict';
import { expectedSchedules } from '../../activities/monitor';
import { loadConfig } from '../../src/config';
import { evaluateChecks, worstStatus, type MonitorCheck, type MonitorFacts, type MonitorSettings } from '../../src/monitor/checks';

const NOW = '2026-11-26T12:00:00.000Z';
const RECIPIENT = 'age1rh5kfd2egluawyk2wxkm70gkujaaedk4hdvnx04qzkjf4qgelgnsc6sld8';
const hoursAgo = (h: number) => new Date(Date.parse(NOW) - h * 3_600_000).toISOString();
const settings: MonitorSettings = { rpoHours: 4, backupAgeSeconds: 86_400, diskUsagePercent: 90, drillMaxAgeDays: 30 };

function facts(over: Partial<MonitorFacts> = {}): MonitorFacts {
  return {
    at: NOW,
    tenants: { names: ['acme', 'globex'] },
    backups: {
      acme: { lastComplete: { session: 's1', at: hoursAgo(1) }, lastValidated: { session: 's1', at: hoursAgo(1) } },
      globex: { lastComplete: { session: 's1', at: hoursAgo(1) }, lastValidated: { session: 's1', at: hoursAgo(1) } },
    },
    latestSession: { session: 's1', at: hoursAgo(1), status: 'complete', tenants: ['acme', 'globex'] },
    cloud: { configured: true, session: 's1', state: 'equal' },
    lastValidation: { session: 's1', status: 'pass', finishedAt: hoursAgo(1), workflowId: 'validation/s1/x', failures: [] },
    lastDrill: { session: 's1', status: 'pass', finishedAt: hoursAgo(24), workflowId: 'drill/full/x', failures: [] },
    disks: [
      { id: 'backup-dir', path: '/backups', usedPercent: 40, freeBytes: 10 * 1024 ** 3, totalBytes: 20 * 1024 ** 3 },
      { id: 'postgres-data', unknown: 'PostgreSQL runs on db1, not on this host' },
    ],
    odooHealth: { configured: true, ok: true, detail: 'http://odoo/web/health answered HTTP 200' },
    postgres: { ok: true, detail: 'PostgreSQL 15.4' },
    schedules: [
      { name: 'backup', id: 'odoo-dr/backup', state: 'present' },
      { name: 'drill', id: 'odoo-dr/drill', state: 'present' },
    ],
    worker: { pollers: 1 },
    resources: { memTotalBytes: 8 * 1024 ** 3, memAvailableBytes: 4 * 1024 ** 3, load1: 0.5, cpus: 2 },
    ...over,
  };
}

const byId = (checks: MonitorCheck[], id: string): MonitorCheck => {
  const c = checks.find((x) => x.id === id);
  assert.ok(c, `no check ${id} in ${checks.map((x) => x.id).join(', ')}`);
  return c;
};

describe('monitor checks: evaluateChecks', () => {
  it('a healthy site is ok everywhere it can measure; what it cannot measure is unknown, never ok', () => {
    const checks = evaluateChecks(facts(), settings);
    assert.equal(worstStatus(checks), 'unknown');
    for (const c of checks) if (c.status !== 'ok') assert.equal(c.id, 'disk/postgres-data', `${c.id}: ${c.status} ${c.message}`);
    const pg = byId(checks, 'disk/postgres-data');
    assert.equal(pg.value, null);
    assert.match(pg.message, /not on this host/);
    for (const c of checks) for (const k of ['threshold', 'message'] as const) assert.ok(c[k].length > 0, `${c.id}.${k} empty`);
  });

  it('backup age: ok within the RPO, warning past it, critical past DR_ALERT_ON_BACKUP_AGE, with value and threshold', () => {
    const at = (h: number) =>
      byId(
        evaluateChecks(facts({ backups: { ...facts().backups, acme: { lastComplete: { session: 'old', at: hoursAgo(h) } } } }), settings),
        'backup-age/acme',
      );
    assert.equal(at(3.9).status, 'ok');
    const warn = at(5);
    assert.equal(warn.status, 'warning');
    assert.equal(warn.value, 5);
    assert.equal(warn.unit, 'h');
    assert.equal(warn.tenant, 'acme');
    assert.match(warn.threshold, /warning > 4 h .*critical > 24 h/);
    assert.match(warn.action, /odoo-dr backup/);
    const crit = at(25);
    assert.equal(crit.status, 'critical');
    assert.match(crit.message, /acme is 25 h old \(old\)/);
  });

  it('a tenant created since the last backup shows as never backed up, and completeness names it', () => {
    const checks = evaluateChecks(facts({ tenants: { names: ['acme', 'globex', 'initech'] } }), settings);
    const age = byId(checks, 'backup-age/initech');
    assert.equal(age.status, 'warning');
    assert.equal(age.value, null);
    assert.match(age.message, /initech was never backed up/);
    const comp = byId(checks, 'completeness');
    assert.equal(comp.status, 'warning');
    assert.equal(comp.value, 1);
    assert.match(comp.message, /initech/);
  });

  it('a tenant backed up in the latest session whose database is gone is critical, names the recovery, and clears once back', () => {
    const gone = evaluateChecks(facts({ tenants: { names: ['acme'] } }), settings);
    const check = byId(gone, 'tenant-present/globex');
    assert.equal(check.status, 'critical');
    assert.equal(check.tenant, 'globex');
    assert.match(check.message, /globex was backed up in s1 but its database is no longer a tenant/);
    assert.match(check.action, /odoo-dr recover -m full --tenant globex/);
    assert.equal(byId(gone, 'tenant-present/acme').status, 'ok');
    assert.equal(byId(evaluateChecks(facts(), settings), 'tenant-present/globex').status, 'ok');
    // Removed on purpose: the next session no longer lists it, and neither does the monitor.
    const after = evaluateChecks(
      facts({ tenants: { names: ['acme'] }, latestSession: { session: 's2', at: hoursAgo(0.5), status: 'complete', tenants: ['acme'] } }),
      settings,
    );
    assert.equal(after.filter((c) => c.id === 'tenant-present/globex').length, 0);
  });

  it('validated backup age and integrity: a failed validation is critical and says which', () => {
    const checks = evaluateChecks(
      facts({
        backups: { ...facts().backups, acme: { lastComplete: { session: 's1', at: hoursAgo(1) }, lastValidated: { session: 's0', at: hoursAgo(30) } } },
        lastValidation: { session: 's1', status: 'fail', finishedAt: hoursAgo(0.5), workflowId: 'validation/s1/y', failures: ['acme: checksum: mismatch'] },
      }),
      settings,
    );
    assert.equal(byId(checks, 'validated-age/acme').status, 'warning');
    const v = byId(checks, 'integrity/validation');
    assert.equal(v.status, 'critical');
    assert.match(v.message, /FAILED \(validation\/s1\/y\): acme: checksum: mismatch/);
    assert.equal(worstStatus(checks), 'critical');
  });

  it('drill cadence: warning past DR_DRILL_MAX_AGE_DAYS, critical past twice, warning when there was none', () => {
    const drill = (h: number | undefined) =>
      byId(
        evaluateChecks(
          facts(
            h === undefined
              ? { lastDrill: undefined }
              : { lastDrill: { session: 's', status: 'pass', finishedAt: hoursAgo(h), workflowId: 'd', failures: [] } },
          ),
          settings,
        ),
        'integrity/drill',
      );
    assert.equal(drill(29 * 24).status, 'ok');
    assert.equal(drill(31 * 24).status, 'warning');
    assert.equal(drill(61 * 24).status, 'critical');
    assert.equal(drill(undefined).status, 'warning');
  });

  it('cloud sync: a missing copy is a warning while young, critical later; a different copy is critical', () => {
    const young = evaluateChecks(facts({ cloud: { configured: true, session: 's1', state: 'missing' } }), settings);
    assert.equal(byId(young, 'cloud-sync').status, 'warning');
    const old = evaluateChecks(
      facts({
        latestSession: { session: 's1', at: hoursAgo(6), status: 'complete', tenants: ['acme', 'globex'] },
        cloud: { configured: true, session: 's1', state: 'missing' },
      }),
      settings,
    );
    assert.equal(byId(old, 'cloud-sync').status, 'critical');
    assert.equal(byId(evaluateChecks(facts({ cloud: { configured: true, session: 's1', state: 'different' } }), settings), 'cloud-sync').status, 'critical');
    assert.equal(byId(evaluateChecks(facts({ cloud: { configured: true, error: 'AccessDenied' } }), settings), 'cloud-sync').status, 'critical');
    assert.equal(byId(evaluateChecks(facts({ cloud: { configured: false } }), settings), 'cloud-sync').status, 'ok');
  });

  it('disk: warning at DR_ALERT_ON_DISK_USAGE, critical half-way to full', () => {
    const d = (p: number) =>
      byId(evaluateChecks(facts({ disks: [{ id: 'backup-dir', path: '/b', usedPercent: p, freeBytes: 1 }] }), settings), 'disk/backup-dir');
    assert.equal(d(89.9).status, 'ok');
    assert.equal(d(90).status, 'warning');
    assert.equal(d(95).status, 'critical');
    assert.match(d(95).threshold, /warning ≥ 90 % .*critical ≥ 95 %/);
  });

  it('services: Odoo down, PostgreSQL down, backup schedule missing, paused drill schedule, no worker', () => {
    const checks = evaluateChecks(
      facts({
        odooHealth: { configured: true, ok: false, detail: 'cannot be reached: ECONNREFUSED' },
        postgres: { ok: false, detail: 'connection refused' },
        schedules: [
          { name: 'backup', id: 'odoo-dr/backup', state: 'missing' },
          { name: 'drill', id: 'odoo-dr/drill', state: 'paused' },
        ],
        worker: { pollers: 0 },
      }),
      settings,
    );
    assert.equal(byId(checks, 'service/odoo').status, 'critical');
    assert.equal(byId(checks, 'service/postgres').status, 'critical');
    const backup = byId(checks, 'service/schedule/backup');
    assert.equal(backup.status, 'critical');
    assert.match(backup.action, /odoo-dr schedules apply/);
    const drill = byId(checks, 'service/schedule/drill');
    assert.equal(drill.status, 'warning');
    assert.match(drill.action, /--unpause/);
    assert.equal(byId(checks, 'service/worker').status, 'critical');
    assert.equal(byId(evaluateChecks(facts({ odooHealth: { configured: false } }), settings), 'service/odoo').status, 'unknown');
  });

  it('resources: little memory available or a high load per CPU', () => {
    const r = (avail: number, load: number) =>
      evaluateChecks(facts({ resources: { memTotalBytes: 100, memAvailableBytes: avail, load1: load, cpus: 2 } }), settings);
    assert.equal(byId(r(8, 1), 'resources/memory').status, 'warning');
    assert.equal(byId(r(4, 1), 'resources/memory').status, 'critical');
    assert.equal(byId(r(50, 5), 'resources/load').status, 'warning');
    assert.equal(byId(r(50, 9), 'resources/load').status, 'critical');
    assert.equal(byId(r(50, 9), 'resources/load').value, 4.5);
  });

  it('a catalog that cannot be read is critical, not an empty green report', () => {
    const checks = evaluateChecks(facts({ catalogError: 'signature does not verify', backups: {}, latestSession: undefined }), settings);
    assert.equal(byId(checks, 'catalog').status, 'critical');
  });

  it('worstStatus: critical > warning > unknown > ok', () => {
    assert.equal(worstStatus([{ status: 'ok' }, { status: 'unknown' }]), 'unknown');
    assert.equal(worstStatus([{ status: 'unknown' }, { status: 'warning' }]), 'warning');
    assert.equal(worstStatus([{ status: 'critical' }, { status: 'warning' }]), 'critical');
    assert.equal(worstStatus([]), 'ok');
  });
});

describe('the schedules the monitor expects', () => {
  const all = { backup: 'odoo-dr/backup', validation: 'odoo-dr/validation', monitor: 'odoo-dr/monitor', drill: 'odoo-dr/drill', cleanup: 'odoo-dr/cleanup' };
  const withAutomation = (env: NodeJS.ProcessEnv) =>
    loadConfig({ path: '/dev/null', env: { DR_BACKUP_DIR: '/tmp/odoo-dr-unit', DR_AGE_RECIPIENTS: RECIPIENT, ...env } });

  it('are all five by default, and not the drill or monitor schedule the configuration turns off', () => {
    assert.deepEqual(Object.keys(expectedSchedules(withAutomation({}), all)), ['backup', 'validation', 'monitor', 'drill', 'cleanup']);
    assert.deepEqual(Object.keys(expectedSchedules(withAutomation({ DR_TEST_ENABLED: 'false' }), all)), ['backup', 'validation', 'monitor', 'cleanup']);
    assert.deepEqual(Object.keys(expectedSchedules(withAutomation({ DR_MONITORING_ENABLED: 'false', DR_TEST_ENABLED: 'false' }), all)), [
      'backup',
      'validation',
      'cleanup',
    ]);
  });
});
