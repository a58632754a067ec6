/** The drill's verdict alone: per-tenant aggregation, achieved RPO, and the fleet RTO projection. */
import assert from 'node:assert/strict';
import { drillOutcome, projectFleetRto, type DrillFacts, type MeasuredRestore } from '../../src/drill/report';
import type { CheckResult } from '../../src/validate/session';

const GiB = 1024 ** 3;
const HOUR = 3_600_000;
const SESSION = 'backup_20261126_000000_abcdef12';
const SESSION_START = Date.parse('2026-11-26T00:00:00Z');
const settings = { rpoHours: 24, rtoMinutes: 60, maxParallel: 2 };

const check = (tenant: string, status: CheckResult['status'], name = 'restore-database'): CheckResult => ({
  name,
  status,
  tenant,
  message: `${name} ${status}`,
});
/** A restore of `gib` GiB in `seconds` seconds, split evenly between database and filestore. */
const measure = (tenant: string, gib: number, seconds: number): MeasuredRestore => ({
  tenant,
  databaseMs: (seconds * 1000) / 2,
  filestoreMs: (seconds * 1000) / 2,
  databaseBytes: (gib * GiB) / 2,
  filestoreBytes: (gib * GiB) / 2,
  secondsPerGiB: gib > 0 ? seconds / gib : 0,
});
const validation = (over: Partial<NonNullable<DrillFacts['validation']>>): NonNullable<DrillFacts['validation']> => ({
  session: SESSION,
  checks: [],
  restores: [],
  checkedAtMs: SESSION_START + 2 * HOUR,
  restoreTest: true,
  ...over,
});

describe('drill report: projectFleetRto', () => {
  it('applies the measured seconds per GiB to the fleet, parallelism at once', () => {
    // 2 GiB in 120 s + 1 GiB in 60 s: 60 s per GiB. 100 GiB fleet, 2 at once: 100 * 60 / 2 = 3000 s = 50 min.
    const rto = projectFleetRto([measure('a', 2, 120), measure('b', 1, 60)], 100 * GiB, settings)!;
    assert.equal(rto.secondsPerGiB, 60);
    assert.equal(rto.minutes, 50);
    assert.equal(rto.pass, true);
    assert.deepEqual({ target: rto.targetMinutes, fleet: rto.fleetBytes, parallelism: rto.parallelism }, { target: 60, fleet: 100 * GiB, parallelism: 2 });
  });

  it('fails when the projection exceeds the RTO', () => {
    const rto = projectFleetRto([measure('a', 1, 90)], 100 * GiB, settings)!;
    assert.equal(rto.minutes, 75);
    assert.equal(rto.pass, false);
  });

  it('projects nothing without a measured restore, and 0 s per GiB when the restores held no bytes', () => {
    assert.equal(projectFleetRto([], 100 * GiB, settings), undefined);
    const rto = projectFleetRto([measure('a', 0, 30)], 100 * GiB, settings)!;
    assert.equal(rto.secondsPerGiB, 0);
    assert.equal(rto.minutes, 0);
  });
});

describe('drill report: drillOutcome', () => {
  it('zero tenants: passes with an empty table and no projection', () => {
    assert.deepEqual(drillOutcome({ startedAtMs: SESSION_START, validation: validation({}) }, settings), { status: 'pass', tenants: [] });
    assert.deepEqual(drillOutcome({ startedAtMs: SESSION_START }, settings), { status: 'pass', tenants: [] });
  });

  it('counts checks per tenant, takes the session age as achieved RPO and projects the fleet RTO', () => {
    const out = drillOutcome(
      {
        startedAtMs: SESSION_START,
        validation: validation({
          checks: [check('b', 'pass'), check('a', 'pass'), check('a', 'warn', 'modules'), { name: 'age', status: 'pass', message: 'fresh' }],
          restores: [measure('a', 1, 60)],
          fleetBytes: 10 * GiB,
        }),
      },
      settings,
    );
    assert.equal(out.status, 'pass');
    assert.deepEqual(
      out.tenants.map((t) => [t.tenant, t.status, t.achievedRpoHours, t.checks]),
      [
        ['a', 'pass', 2, { passed: 1, failed: 0, warned: 1 }],
        ['b', 'pass', 2, { passed: 1, failed: 0, warned: 0 }],
      ],
    );
    assert.equal(out.tenants[0]!.restore?.tenant, 'a');
    assert.equal(out.tenants[1]!.restore, undefined);
    assert.equal(out.projectedRto?.minutes, 5); // 10 GiB * 60 s / 2 / 60
  });

  it('a failed tenant fails the drill, has no achieved RPO and names its failures; the others pass', () => {
    const out = drillOutcome(
      {
        startedAtMs: SESSION_START,
        validation: validation({
          checks: [check('a', 'pass'), check('b', 'fail'), check('b', 'pass', 'neutralize')],
          restores: [measure('a', 1, 60)],
          fleetBytes: GiB,
        }),
      },
      settings,
    );
    assert.equal(out.status, 'fail');
    const [a, b] = out.tenants;
    assert.deepEqual([a!.status, a!.achievedRpoHours], ['pass', 2]);
    assert.deepEqual(
      [b!.status, b!.achievedRpoHours, b!.checks, b!.failures],
      ['fail', undefined, { passed: 1, failed: 1, warned: 0 }, ['restore-database: restore-database fail']],
    );
  });

  it('a tenant with no measured rate (its restore failed) does not enter the projection', () => {
    const out = drillOutcome(
      {
        startedAtMs: SESSION_START,
        validation: validation({ checks: [check('a', 'pass'), check('b', 'fail')], restores: [measure('a', 2, 60)], fleetBytes: 4 * GiB }),
      },
      settings,
    );
    assert.equal(out.projectedRto?.secondsPerGiB, 30);
    assert.equal(out.projectedRto?.minutes, 1); // 4 GiB * 30 s / 2 / 60
    assert.equal(out.tenants.find((t) => t.tenant === 'b')!.restore, undefined);
  });

  it('no projection without a restore test or without a measure, and a projection over the RTO fails the drill', () => {
    assert.equal(
      drillOutcome({ startedAtMs: SESSION_START, validation: validation({ restoreTest: false, restores: [measure('a', 1, 60)], fleetBytes: GiB }) }, settings)
        .projectedRto,
      undefined,
    );
    assert.equal(
      drillOutcome({ startedAtMs: SESSION_START, validation: validation({ checks: [check('a', 'fail')], fleetBytes: GiB }) }, settings).projectedRto,
      undefined,
    );
    const slow = drillOutcome(
      { startedAtMs: SESSION_START, validation: validation({ checks: [check('a', 'pass')], restores: [measure('a', 1, 60)], fleetBytes: 1000 * GiB }) },
      settings,
    );
    assert.equal(slow.projectedRto?.pass, false);
    assert.equal(slow.status, 'fail');
    assert.equal(slow.tenants[0]!.status, 'pass');
  });

  it('an achieved RPO beyond the objective fails the tenant', () => {
    const out = drillOutcome(
      { startedAtMs: SESSION_START, validation: validation({ checks: [check('a', 'pass')], checkedAtMs: SESSION_START + 30 * HOUR, restoreTest: false }) },
      settings,
    );
    assert.equal(out.status, 'fail');
    assert.deepEqual(out.tenants[0]!.failures, ['achieved RPO 30.0 h exceeds the 24 h objective']);
  });

  it('backup results: a failed tenant fails, a complete one gets the backup duration as RPO, the validation then overrides it', () => {
    const backup = {
      status: 'partial',
      finishedAtMs: SESSION_START + HOUR / 2,
      tenants: [
        { tenant: 'b', status: 'complete' },
        { tenant: 'a', status: 'failed', error: 'pg_dump died' },
      ],
    };
    const backupOnly = drillOutcome({ startedAtMs: SESSION_START, backup }, settings);
    assert.equal(backupOnly.status, 'fail');
    assert.deepEqual(
      backupOnly.tenants.map((t) => [t.tenant, t.status, t.achievedRpoHours, t.checks.failed, t.failures]),
      [
        ['a', 'fail', undefined, 1, ['pg_dump died']],
        ['b', 'pass', 0.5, 0, []],
      ],
    );
    const full = drillOutcome({ startedAtMs: SESSION_START, backup, validation: validation({ checks: [check('b', 'pass')], restoreTest: false }) }, settings);
    assert.deepEqual(full.tenants.find((t) => t.tenant === 'b')!.checks, { passed: 2, failed: 0, warned: 0 });
    assert.equal(full.tenants.find((t) => t.tenant === 'b')!.achievedRpoHours, 2);
  });
});
