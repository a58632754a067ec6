/**
 * The durable alert state (alertsWorkflow) with time skipping and real receivers: an alert fires
 * once, is repeated after DR_ALERT_REPEAT_HOURS, clears with a recovery message; e-mail reaches a
 * real SMTP server and the webhook a real HTTP receiver; a dead SMTP server does not block the webhook.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { ObservationOutcome } from '../../activities';
import { handObservation } from '../../activities/monitor';
import type { ObservedCheck, Observation } from '../../src/monitor/alerts';
import { alertsWorkflow } from '../../workflows';
import type { AlertsInput } from '../../workflows/monitor';
import { alertStateQuery, observationOutcomeUpdate, observeSignal, workflowIds } from '../../workflows/definitions';
import { stackConfig, uniqueSuffix } from '../helpers/config';
import { historyText } from '../helpers/history';
import { mailText, startReceivers, type Receivers } from '../helpers/receivers';
import { ownTimeSkippingServer, withWorker } from '../helpers/temporal';

const HOUR = 3_600_000;

describe('alertsWorkflow (time skipping, real SMTP and webhook receivers)', function () {
  this.timeout(300_000);
  // A time-skipping server of its own: these tests skip hours, and late in a full run the shared
  // server had stopped skipping time (something an earlier file left; CI of 2026-11-26 waited in real
  // time until the mocha timeout). One retry, from a clean state (withWorker terminates what the failed
  // attempt left, each attempt counts from its own baseline).
  this.retries(1);
  let rx: Receivers;
  const token = `tok${uniqueSuffix()}${uniqueSuffix()}`;
  const timeSkippingServer = ownTimeSkippingServer();

  before(async () => {
    rx = await startReceivers();
  });
  after(async () => {
    await rx.close();
  });

  const config = (smtpPort: number) =>
    stackConfig({
      DR_BACKUP_DIR: mkdtempSync(path.join(tmpdir(), 'odoo-dr-alertswf-')),
      DR_SMTP_HOST: '127.0.0.1',
      DR_SMTP_PORT: String(smtpPort),
      DR_SMTP_FROM: 'odoo-dr@test.example',
      DR_NOTIFICATION_EMAIL: 'ops@example.com',
      DR_WEBHOOK_URL: `http://127.0.0.1:${rx.httpPort}/services/T0/B0/${token}`,
      DR_ALERT_REPEAT_HOURS: '6',
    });

  const backupAge = (status: ObservedCheck['status'], value: number): ObservedCheck => ({
    id: 'backup-age/acme',
    tenant: 'acme',
    status,
    value,
    unit: 'h',
    threshold: 'warning > 4 h (DR_RPO_HOURS), critical > 24 h (DR_ALERT_ON_BACKUP_AGE)',
    message: `newest complete backup of acme is ${value} h old`,
    action: 'odoo-dr backup --tenant acme --wait',
  });

  /** What monitorWorkflow's activity does (the same function): signalWithStart, then wait for the outcome (an update). */
  async function observe(env: TestWorkflowEnvironment, taskQueue: string, checks: ObservedCheck[], input: AlertsInput = {}): Promise<ObservationOutcome> {
    const observation: Observation = { id: `monitor/${uniqueSuffix()}`, source: 'test', complete: true, checks };
    const workflowId = workflowIds.alerts(taskQueue);
    return handObservation(env.client, { workflowId, taskQueue }, observation, input);
  }

  it('fires once, repeats after DR_ALERT_REPEAT_HOURS, clears with a recovery message; e-mail and webhook carry the details', async () => {
    const env = await timeSkippingServer();
    const mails = rx.mails.length;
    const hooks = rx.hooks.length;
    await withWorker({ env, config: config(rx.smtpPort) }, async (taskQueue) => {
      const fired = await observe(env, taskQueue, [backupAge('critical', 30)]);
      assert.deepEqual(fired.sent, ['CRITICAL backup-age/acme']);
      assert.deepEqual(fired.active, ['backup-age/acme']);
      assert.equal(fired.channels.email?.last, 'sent');
      assert.equal(fired.channels.webhook?.last, 'sent');
      assert.equal(rx.mails.length, mails + 1);
      assert.equal(rx.hooks.length, hooks + 1);
      const mail = mailText(rx.mails.at(-1)!.data);
      assert.deepEqual(rx.mails.at(-1)!.to, ['ops@example.com']);
      assert.match(mail, /Subject: \[odoo-dr critical\] CRITICAL backup-age\/acme/);
      for (const re of [
        /tenant acme: newest complete backup of acme is 30 h old/,
        /Value: +30 h/,
        /Threshold: +warning > 4 h \(DR_RPO_HOURS\), critical > 24 h/,
        /What to do: odoo-dr backup --tenant acme --wait/,
      ]) {
        assert.match(mail, re);
        assert.match(rx.hooks.at(-1)!.text, re);
      }
      assert.equal(rx.hooks.at(-1)!.path, `/services/T0/B0/${token}`);

      // Persisting: silent within the interval…
      await env.sleep(HOUR);
      assert.deepEqual((await observe(env, taskQueue, [backupAge('critical', 31)])).sent, []);
      await env.sleep(4 * HOUR);
      assert.deepEqual((await observe(env, taskQueue, [backupAge('critical', 35)])).sent, []);
      assert.equal(rx.mails.length, mails + 1);
      // …repeated once the interval (6 h since the last message) has passed.
      await env.sleep(1.5 * HOUR);
      const repeated = await observe(env, taskQueue, [backupAge('critical', 36.5)]);
      assert.deepEqual(repeated.sent, ['still CRITICAL backup-age/acme']);
      assert.match(mailText(rx.mails.at(-1)!.data), /still CRITICAL: tenant acme: newest complete backup of acme is 36.5 h old/);
      assert.match(rx.hooks.at(-1)!.text, /still CRITICAL/);

      // Cleared: one recovery message, then nothing.
      const cleared = await observe(env, taskQueue, [backupAge('ok', 0.2)]);
      assert.deepEqual(cleared.sent, ['RESOLVED backup-age/acme']);
      assert.deepEqual(cleared.active, []);
      assert.match(mailText(rx.mails.at(-1)!.data), /Subject: \[odoo-dr info\] RESOLVED backup-age\/acme/);
      assert.match(rx.hooks.at(-1)!.text, /RESOLVED: tenant acme/);
      assert.deepEqual((await observe(env, taskQueue, [backupAge('ok', 1)])).sent, []);
      assert.equal(rx.mails.length, mails + 3);
      assert.equal(rx.hooks.length, hooks + 3);

      // The state is durable in the workflow, and the webhook's token is in none of its history.
      const handle = env.client.workflow.getHandle(workflowIds.alerts(taskQueue));
      const view = await handle.query(alertStateQuery);
      assert.deepEqual(view.state.active, {});
      assert.equal(view.processed, 6);
      assert.ok(!historyText(await handle.fetchHistory()).includes(token), 'webhook token in the history');
      await handle.terminate('test done');
    });
  });

  it('the same observation delivered twice (a retried sender) alerts once', async () => {
    const env = await timeSkippingServer();
    const hooks = rx.hooks.length;
    await withWorker({ env, config: config(rx.smtpPort) }, async (taskQueue) => {
      const observation: Observation = { id: `monitor/${uniqueSuffix()}`, source: 'test', complete: true, checks: [backupAge('warning', 5)] };
      const workflowId = workflowIds.alerts(taskQueue);
      for (let i = 0; i < 2; i++)
        await env.client.workflow.signalWithStart(alertsWorkflow, { workflowId, taskQueue, args: [{}], signal: observeSignal, signalArgs: [observation] });
      const outcome = await env.client.workflow.getHandle(workflowId).executeUpdate(observationOutcomeUpdate, { args: [observation.id] });
      assert.deepEqual(outcome.sent, ['WARNING backup-age/acme']);
      const second = await observe(env, taskQueue, [backupAge('warning', 5.5)]);
      assert.deepEqual(second.sent, []);
      assert.equal(rx.hooks.length, hooks + 1);
      await env.client.workflow.getHandle(workflowId).terminate('test done');
    });
  });

  it('two monitor runs reporting at once send the alert once', async () => {
    const env = await timeSkippingServer();
    const hooks = rx.hooks.length;
    await withWorker({ env, config: config(rx.smtpPort) }, async (taskQueue) => {
      const [a, b] = await Promise.all([observe(env, taskQueue, [backupAge('critical', 30)]), observe(env, taskQueue, [backupAge('critical', 30)])]);
      assert.deepEqual([...a.sent, ...b.sent], ['CRITICAL backup-age/acme']);
      assert.equal(rx.hooks.length, hooks + 1);
      await env.client.workflow.getHandle(workflowIds.alerts(taskQueue)).terminate('test done');
    });
  });

  it('the alert state survives continue-as-new: no second alert, the repeat and the recovery still come', async () => {
    const env = await timeSkippingServer();
    const hooks = rx.hooks.length;
    await withWorker({ env, config: config(rx.smtpPort) }, async (taskQueue) => {
      const small: AlertsInput = { observationsPerRun: 2 };
      const handle = env.client.workflow.getHandle(workflowIds.alerts(taskQueue));
      assert.deepEqual((await observe(env, taskQueue, [backupAge('critical', 30)], small)).sent, ['CRITICAL backup-age/acme']);
      const firstRun = (await handle.describe()).runId;
      assert.deepEqual((await observe(env, taskQueue, [backupAge('critical', 31)], small)).sent, []);
      // Two observations processed: the run continued as new, carrying the state.
      assert.deepEqual((await observe(env, taskQueue, [backupAge('critical', 32)], small)).sent, []);
      const d = await handle.describe();
      assert.notEqual(d.runId, firstRun);
      assert.deepEqual(Object.keys((await handle.query(alertStateQuery)).state.active), ['backup-age/acme']);
      await env.sleep(7 * HOUR);
      assert.deepEqual((await observe(env, taskQueue, [backupAge('critical', 39)], small)).sent, ['still CRITICAL backup-age/acme']);
      assert.deepEqual((await observe(env, taskQueue, [backupAge('ok', 1)], small)).sent, ['RESOLVED backup-age/acme']);
      assert.equal(rx.hooks.length, hooks + 3);
      await handle.terminate('test done');
    });
  });

  it('a dead SMTP server does not block the webhook; the failure is recorded per channel', async () => {
    const env = await timeSkippingServer();
    const hooks = rx.hooks.length;
    const mails = rx.mails.length;
    // Port 1: nothing listens (connection refused).
    await withWorker({ env, config: config(1) }, async (taskQueue) => {
      const outcome = await observe(env, taskQueue, [backupAge('critical', 30)]);
      assert.deepEqual(outcome.sent, ['CRITICAL backup-age/acme']);
      assert.match(outcome.channels.email!.last, /^failed: .*ECONNREFUSED/);
      assert.equal(outcome.channels.webhook!.last, 'sent');
      assert.equal(rx.hooks.length, hooks + 1);
      assert.match(rx.hooks.at(-1)!.text, /CRITICAL: tenant acme/);
      assert.equal(rx.mails.length, mails);
      await env.client.workflow.getHandle(workflowIds.alerts(taskQueue)).terminate('test done');
    });
  });
});
