/** Delivering the alert state machine's messages through the Notifier port, and the outcome without channels at the Clock's time. */
import assert from 'node:assert/strict';
import { deliverAlertMessages, outcomeWithoutChannels } from '../../src/monitor/deliver';
import type { AlertMessage } from '../../src/monitor/alerts';
import { configNotifier } from '../../src/notify';
import type { Alert, AlertDelivery, Clock, Notifier } from '../../src/ports';
import { stackConfig } from '../helpers/config';

const fixedClock = (iso: string): Clock => ({ now: () => new Date(iso) });

/** Records every alert; the delivery of each is what `deliveryOf` says (default: both channels sent). */
function recordingNotifier(deliveryOf: (alert: Alert) => AlertDelivery = () => ({ email: 'sent', webhook: 'sent' })): Notifier & { sent: Alert[] } {
  const sent: Alert[] = [];
  return {
    sent,
    send: async (alert) => {
      sent.push(alert);
      return Promise.resolve(deliveryOf(alert));
    },
  };
}

const message = (key: string, severity: AlertMessage['severity'], kind: AlertMessage['kind'] = 'fire'): AlertMessage => ({
  key,
  kind,
  severity,
  subject: `${severity.toUpperCase()} ${key}`,
  text: `check ${key} is ${severity}`,
});

describe('alert delivery: deliverAlertMessages', () => {
  it('sends every message in order with its severity, subject and text, and returns each delivery under its key', async () => {
    const notifier = recordingNotifier((a) =>
      a.severity === 'critical' ? { email: 'sent', webhook: 'failed: HTTP 500' } : { email: 'sent', webhook: 'sent' },
    );
    const messages = [message('backup-age/acme', 'critical'), message('disk/backups', 'warning')];
    const result = await deliverAlertMessages(messages, notifier);
    assert.deepEqual(notifier.sent, [
      { severity: 'critical', subject: 'CRITICAL backup-age/acme', text: 'check backup-age/acme is critical' },
      { severity: 'warning', subject: 'WARNING disk/backups', text: 'check disk/backups is warning' },
    ]);
    assert.deepEqual(result.deliveries, [
      { key: 'backup-age/acme', subject: 'CRITICAL backup-age/acme', delivery: { email: 'sent', webhook: 'failed: HTTP 500' } },
      { key: 'disk/backups', subject: 'WARNING disk/backups', delivery: { email: 'sent', webhook: 'sent' } },
    ]);
  });

  it('sends nothing when there is nothing to say', async () => {
    const notifier = recordingNotifier();
    assert.deepEqual(await deliverAlertMessages([], notifier), { deliveries: [] });
    assert.equal(notifier.sent.length, 0);
  });
});

describe('alert delivery: outcomeWithoutChannels', () => {
  it('reports nothing sent, nothing active and both channels not configured, at the clock’s time', () => {
    assert.deepEqual(outcomeWithoutChannels('monitor/42', fixedClock('2026-11-26T12:00:00Z')), {
      id: 'monitor/42',
      sent: [],
      active: [],
      channels: { email: { last: 'not configured', at: '2026-11-26T12:00:00.000Z' }, webhook: { last: 'not configured', at: '2026-11-26T12:00:00.000Z' } },
    });
  });
});

describe('the configured notifier: configNotifier', () => {
  it('sends through the configured channels as sendAlert does: an unreachable webhook is reported, its token never, no e-mail when none is configured', async () => {
    const token = 'T0KEN-not-to-be-echoed';
    const notifier = configNotifier(stackConfig({ DR_WEBHOOK_URL: `http://127.0.0.1:1/hooks/${token}`, DR_SMTP_HOST: '', DR_NOTIFICATION_EMAIL: '' }));
    const delivery = await notifier.send({ severity: 'warning', subject: 'unit', text: 'unit' });
    assert.equal(delivery.email, 'not configured');
    assert.match(delivery.webhook, /^failed: /);
    assert.doesNotMatch(delivery.webhook, new RegExp(token));
  });
});
