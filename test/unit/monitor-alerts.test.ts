/** The alert state machine alone: fire once, repeat after the interval, change, clear with a recovery message. */
import assert from 'node:assert/strict';
import { decideAlerts, emptyAlertState, type AlertState, type ObservedCheck, type Observation } from '../../src/monitor/alerts';

const HOUR = 3_600_000;
const T0 = Date.parse('2026-11-26T00:00:00Z');
const at = (h: number) => new Date(T0 + h * HOUR);
const REPEAT = 24 * HOUR;

const check = (status: ObservedCheck['status'], value: number | null = 30): ObservedCheck => ({
  id: 'backup-age/acme',
  tenant: 'acme',
  status,
  value,
  unit: 'h',
  threshold: 'warning > 4 h (DR_RPO_HOURS), critical > 24 h (DR_ALERT_ON_BACKUP_AGE)',
  message: `newest complete backup of acme is ${value} h old`,
  action: 'run odoo-dr backup --wait',
});
const obs = (checks: ObservedCheck[], complete = true, id = 'monitor/x'): Observation => ({ id, source: `monitorWorkflow ${id}`, checks, complete });

describe('alert state machine: decideAlerts', () => {
  it('fires once when a check enters critical, naming tenant, check, value, threshold and what to do', () => {
    const { messages, state } = decideAlerts(emptyAlertState(), obs([check('critical')]), at(0), REPEAT);
    assert.equal(messages.length, 1);
    const m = messages[0]!;
    assert.equal(m.kind, 'fire');
    assert.equal(m.severity, 'critical');
    assert.match(m.subject, /^CRITICAL backup-age\/acme/);
    assert.match(m.text, /tenant acme: newest complete backup of acme is 30 h old/);
    assert.match(m.text, /Check: +backup-age\/acme/);
    assert.match(m.text, /Value: +30 h/);
    assert.match(m.text, /Threshold: +warning > 4 h/);
    assert.match(m.text, /What to do: run odoo-dr backup --wait/);
    assert.equal(state.active['backup-age/acme']?.status, 'critical');
  });

  it('stays silent while it persists within the repeat interval, repeats after it, then again only after another interval', () => {
    let state: AlertState = decideAlerts(emptyAlertState(), obs([check('critical')]), at(0), REPEAT).state;
    for (const h of [1, 12, 23.9]) {
      const d = decideAlerts(state, obs([check('critical', 30 + h)]), at(h), REPEAT);
      assert.deepEqual(d.messages, [], `at ${h} h`);
      state = d.state;
    }
    const rep = decideAlerts(state, obs([check('critical', 54)]), at(24), REPEAT);
    assert.equal(rep.messages.length, 1);
    assert.equal(rep.messages[0]!.kind, 'repeat');
    assert.match(rep.messages[0]!.subject, /^still CRITICAL/);
    assert.match(rep.messages[0]!.text, /Value: +54 h/);
    assert.match(rep.messages[0]!.text, /Since: +2026-11-26T00:00:00.000Z/);
    assert.deepEqual(decideAlerts(rep.state, obs([check('critical')]), at(47), REPEAT).messages, []);
    assert.equal(decideAlerts(rep.state, obs([check('critical')]), at(48), REPEAT).messages.length, 1);
  });

  it('a change between warning and critical is sent at once', () => {
    const s1 = decideAlerts(emptyAlertState(), obs([check('warning', 5)]), at(0), REPEAT).state;
    const d = decideAlerts(s1, obs([check('critical', 25)]), at(1), REPEAT);
    assert.equal(d.messages.length, 1);
    assert.equal(d.messages[0]!.kind, 'change');
    assert.match(d.messages[0]!.subject, /WARNING → CRITICAL/);
  });

  it('clears with one recovery message, and nothing for a check that was never alerting', () => {
    const s1 = decideAlerts(emptyAlertState(), obs([check('critical')]), at(0), REPEAT).state;
    const d = decideAlerts(s1, obs([check('ok', 1)]), at(2), REPEAT);
    assert.equal(d.messages.length, 1);
    assert.equal(d.messages[0]!.kind, 'recovery');
    assert.equal(d.messages[0]!.severity, 'info');
    assert.match(d.messages[0]!.subject, /^RESOLVED backup-age\/acme/);
    assert.doesNotMatch(d.messages[0]!.text, /What to do/);
    assert.deepEqual(d.state.active, {});
    assert.deepEqual(decideAlerts(d.state, obs([check('ok', 1)]), at(3), REPEAT).messages, []);
  });

  it('unknown is no news: the alert stays, nothing is sent', () => {
    const s1 = decideAlerts(emptyAlertState(), obs([check('critical')]), at(0), REPEAT).state;
    const d = decideAlerts(s1, obs([check('unknown', null)]), at(30), REPEAT);
    assert.deepEqual(d.messages, []);
    assert.equal(d.state.active['backup-age/acme']?.status, 'critical');
  });

  it('a partial observation (validation) leaves other alerts alone; a complete one forgets checks no longer reported', () => {
    const { tenant: _t, ...rest } = check('warning');
    const other: ObservedCheck = { ...rest, id: 'disk/backup-dir' };
    const s1 = decideAlerts(emptyAlertState(), obs([check('critical'), other]), at(0), REPEAT).state;
    const validation: ObservedCheck = {
      id: 'integrity/validation',
      status: 'critical',
      value: 0,
      threshold: 'passed',
      message: 'last validation FAILED',
      action: 'fix',
    };
    const s2 = decideAlerts(s1, obs([validation], false, 'validation/s/1'), at(1), REPEAT);
    assert.equal(s2.messages.length, 1);
    assert.deepEqual(Object.keys(s2.state.active).sort(), ['backup-age/acme', 'disk/backup-dir', 'integrity/validation']);
    // The tenant was dropped: the monitor no longer reports it; forgotten without a message.
    const s3 = decideAlerts(s2.state, obs([{ ...validation }, { ...other }]), at(2), REPEAT);
    assert.deepEqual(s3.messages, []);
    assert.deepEqual(Object.keys(s3.state.active).sort(), ['disk/backup-dir', 'integrity/validation']);
  });
});
