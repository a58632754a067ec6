/** The automation planner alone (no services): cadences, times, the RPO rule, drills, jitter. */
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  AutomationPlanError,
  backupHours,
  largestGapMinutes,
  parseTimeOfDay,
  planSchedules,
  type AutomationSettings,
  type PlannedSchedule,
} from '../../src/automation/schedules';
import { loadConfig } from '../../src/config';
import { ConfigError } from '../../src/errors';
import { automationSettings } from '../../temporal/schedules';
import { scheduleId, scheduledWorkflowId } from '../../workflows/definitions';

const defaults = (): AutomationSettings => automationSettings(loadConfig({ env: {}, path: emptyFile() }));

function emptyFile(content = ''): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'odoo-dr-plan-')), 'dr.env');
  writeFileSync(file, content);
  return file;
}

const byName = (schedules: PlannedSchedule[], name: string) => {
  const found = schedules.find((s) => s.name === name);
  assert.ok(found, `no ${name} schedule in ${schedules.map((s) => s.name).join(', ')}`);
  return found;
};

describe('automation planner', () => {
  it('defaults: backups every DR_RPO_HOURS from 02:00, validation 03:00, drill Sundays 04:00, monitor hourly, cleanup 05:00, UTC', () => {
    const plan = planSchedules(defaults());
    assert.deepEqual(
      plan.schedules.map((s) => s.name),
      ['backup', 'validation', 'drill', 'monitor', 'cleanup'],
    );
    assert.deepEqual(byName(plan.schedules, 'backup').when, { kind: 'calendar', hours: [2, 6, 10, 14, 18, 22], minute: 0 });
    assert.deepEqual(byName(plan.schedules, 'validation').when, { kind: 'calendar', hours: [3], minute: 0 });
    assert.deepEqual(byName(plan.schedules, 'drill').when, { kind: 'calendar', hours: [4], minute: 0, dayOfWeek: 'SUNDAY' });
    assert.deepEqual(byName(plan.schedules, 'monitor').when, { kind: 'interval', everyMinutes: 60 });
    assert.deepEqual(byName(plan.schedules, 'cleanup').when, { kind: 'calendar', hours: [5], minute: 0 });
    for (const s of plan.schedules) {
      assert.equal(s.timezone, 'UTC');
      assert.equal(s.overlap, 'skip');
      assert.equal(s.jitterSeconds, 0);
    }
    assert.deepEqual(plan.rpo, { rpoHours: 4, largestGapMinutes: 240, ok: true });
    assert.deepEqual(plan.warnings, []);
    assert.deepEqual(plan.disabled, []);
    assert.deepEqual(byName(plan.schedules, 'drill').input, { mode: 'full', cloud: false });
    assert.deepEqual(byName(plan.schedules, 'validation').input, { session: 'latest' });
  });

  it('backup cadence follows the RPO: daily when the RPO is a day or more, uneven days keep every gap within it', () => {
    assert.deepEqual(byName(planSchedules({ ...defaults(), rpoHours: 48 }).schedules, 'backup').when, { kind: 'calendar', hours: [2], minute: 0 });
    const five = planSchedules({ ...defaults(), rpoHours: 5, backupTime: { hour: 23, minute: 45 } });
    assert.deepEqual(byName(five.schedules, 'backup').when, { kind: 'calendar', hours: [4, 9, 14, 19, 23], minute: 45 });
    assert.equal(five.rpo.largestGapMinutes, 300, '19:45 → 23:45 is 4 h, the others 5 h');
    assert.deepEqual(backupHours(2, 1).length, 24);
    assert.equal(largestGapMinutes([2, 14], 0), 720);
    assert.equal(largestGapMinutes([2, 14], 600), 730, 'jitter makes the gap longer');
  });

  it('refuses a backup cadence that breaks the RPO, naming the fix; --force accepts it with a loud warning', () => {
    assert.throws(
      () => planSchedules(defaults(), { backupInterval: '24' }),
      (err: Error) =>
        err instanceof AutomationPlanError &&
        /backups every 24 h leave up to 24 h between two backups, more than DR_RPO_HOURS=4/.test(err.message) &&
        /--backup-interval 4 or less/.test(err.message) &&
        /--force/.test(err.message),
    );
    assert.throws(() => planSchedules({ ...defaults(), backupIntervalHours: 6 }), /more than DR_RPO_HOURS=4/);
    const forced = planSchedules(defaults(), { backupInterval: '24', force: true });
    assert.equal(forced.rpo.ok, false);
    assert.equal(forced.rpo.largestGapMinutes, 24 * 60);
    assert.match(forced.warnings[0]!, /^WARNING: --force: backups every 24 h/);
    assert.deepEqual(byName(forced.schedules, 'backup').when, { kind: 'calendar', hours: [2], minute: 0 });
  });

  it('jitter counts against the RPO: the default cadence shortens, an explicit one that no longer fits is refused', () => {
    const plan = planSchedules(defaults(), { jitter: '10' });
    const backup = byName(plan.schedules, 'backup');
    assert.deepEqual(backup.when, { kind: 'calendar', hours: [2, 5, 8, 11, 14, 17, 20, 23], minute: 0 });
    assert.equal(backup.jitterSeconds, 600);
    assert.equal(plan.rpo.largestGapMinutes, 190);
    assert.throws(() => planSchedules(defaults(), { jitter: '10', backupInterval: '4' }), /with up to 10 min of jitter leave up to 4 h 10 min/);
  });

  it("bounds jitter to half of each schedule's period and to 60 minutes", () => {
    const plan = planSchedules({ ...defaults(), rpoHours: 24 }, { jitter: '60', monitorInterval: '30', backupInterval: '1', force: true });
    assert.equal(byName(plan.schedules, 'monitor').jitterSeconds, 15 * 60, 'half of a 30-minute interval');
    assert.equal(byName(plan.schedules, 'backup').jitterSeconds, 30 * 60, 'half of an hourly cadence');
    assert.equal(byName(plan.schedules, 'cleanup').jitterSeconds, 60 * 60);
    assert.throws(() => planSchedules(defaults(), { jitter: '61' }), /--jitter must be a whole number of minutes from 0 to 60, got "61"/);
  });

  it('drills daily, weekly (Sundays) or monthly (the 1st), or none with DR_TEST_ENABLED=false', () => {
    assert.deepEqual(byName(planSchedules(defaults(), { testSchedule: 'daily' }).schedules, 'drill').when, { kind: 'calendar', hours: [4], minute: 0 });
    assert.deepEqual(byName(planSchedules(defaults(), { testSchedule: 'monthly' }).schedules, 'drill').when, {
      kind: 'calendar',
      hours: [4],
      minute: 0,
      dayOfMonth: 1,
    });
    assert.throws(() => planSchedules(defaults(), { testSchedule: 'hourly' }), /--test-schedule must be one of daily, weekly, monthly, got "hourly"/);
    const off = planSchedules({ ...defaults(), drillEnabled: false, monitoringEnabled: false });
    assert.deepEqual(
      off.schedules.map((s) => s.name),
      ['backup', 'validation', 'cleanup'],
    );
    assert.deepEqual(off.disabled, ['drill', 'monitor']);
  });

  it('parses HH:MM with clear errors naming the flag', () => {
    assert.deepEqual(parseTimeOfDay('2:05', 'x'), { hour: 2, minute: 5 });
    assert.deepEqual(parseTimeOfDay('23:59', 'x'), { hour: 23, minute: 59 });
    for (const bad of ['24:00', '12:60', '1200', '12h30', '', '-1:00']) {
      assert.throws(
        () => planSchedules(defaults(), { backupTime: bad }),
        new RegExp(`^AutomationPlanError: --backup-time must be a time of day HH:MM .*got ${JSON.stringify(JSON.stringify(bad)).slice(1, -1)}$`),
      );
    }
    assert.throws(() => planSchedules(defaults(), { monitorInterval: '0' }), /--monitor-interval must be a whole number of minutes from 1 to 1440, got "0"/);
    assert.throws(() => planSchedules(defaults(), { backupInterval: '1.5' }), /--backup-interval must be a whole number of hours from 1 to 24, got "1.5"/);
  });

  it('reads its configuration: seed variables (DR_MONITORING_INTERVAL in seconds), times, time zone; errors name the variable', () => {
    const c = loadConfig({
      env: {},
      path: emptyFile(
        'DR_MONITORING_INTERVAL="900"\nDR_TEST_SCHEDULE="monthly"\nDR_TEST_ENABLED="false"\nDR_BACKUP_TIME="1:30"\nDR_SCHEDULE_TIMEZONE="europe/brussels"\nDR_CLOUD_BUCKET="s3://b-ucket/p"\n',
      ),
    });
    assert.deepEqual(c.warnings, [], 'seed variables are known now, not ignored');
    const s = automationSettings(c);
    assert.equal(s.monitoringIntervalMinutes, 15);
    assert.equal(s.drillCadence, 'monthly');
    assert.equal(s.drillEnabled, false);
    assert.deepEqual(s.backupTime, { hour: 1, minute: 30 });
    assert.equal(s.timezone, 'Europe/Brussels', 'canonical spelling: the server is case-sensitive');
    assert.equal(s.cloud, true);
    const plan = planSchedules(s);
    assert.match(plan.warnings.join('\n'), /Europe\/Brussels observes daylight saving time/);
    assert.equal(byName(plan.schedules, 'backup').timezone, 'Europe/Brussels');

    const slow = loadConfig({ env: {}, path: emptyFile('DR_BACKUP_INTERVAL_HOURS="6"\n') });
    assert.deepEqual(slow.warnings, [
      'DR_BACKUP_INTERVAL_HOURS=6 leaves more than DR_RPO_HOURS=4 between two backups: `odoo-dr schedules apply` refuses it without --force',
    ]);

    let problems: string[] = [];
    try {
      loadConfig({
        env: {},
        path: emptyFile('DR_MONITORING_INTERVAL="90"\nDR_TEST_SCHEDULE="yearly"\nDR_BACKUP_TIME="25:00"\nDR_SCHEDULE_TIMEZONE="Mars/Olympus"\n'),
      });
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      problems = err.problems;
    }
    assert.deepEqual(problems, [
      'DR_BACKUP_TIME must be a time of day HH:MM from 00:00 to 23:59 (24-hour clock), got "25:00"',
      'DR_TEST_SCHEDULE must be one of daily, weekly, monthly, got "yearly"',
      'DR_MONITORING_INTERVAL must be a whole number of minutes in seconds (a multiple of 60), got "90"',
      'DR_SCHEDULE_TIMEZONE must be an IANA time zone name like UTC or Europe/Brussels, got "Mars/Olympus"',
    ]);
  });

  it('schedule and run IDs: readable, and the task queue in them when it is not the default', () => {
    assert.equal(scheduleId('backup', 'odoo-dr'), 'odoo-dr/backup');
    assert.equal(scheduleId('cleanup'), 'odoo-dr/cleanup');
    assert.equal(scheduleId('monitor', 'site-b'), 'odoo-dr/site-b/monitor');
    assert.equal(scheduledWorkflowId('backup', 'odoo-dr'), 'backup/scheduled');
    assert.equal(scheduledWorkflowId('cleanup', 'site-b'), 'retention/site-b/scheduled');
  });
});
