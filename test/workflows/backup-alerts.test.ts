import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SMTPServer } from 'smtp-server';
import { sendAlert } from '../../src/notify';
import { backupWorkflow } from '../../workflows';
import { backupSessionName } from '../../workflows/definitions';
import { createTenant, dropTenant, type PgAdminConnection } from '../fixtures/odoo-tenants';
import { stackConfig, uniqueSuffix } from '../helpers/config';
import { historyText } from '../helpers/history';
import { devServer, withWorker } from '../helpers/temporal';

interface Mail {
  from: string;
  to: string[];
  data: string;
}

describe('backup alerts (real SMTP and webhook receivers)', function () {
  this.timeout(180_000);
  const s = uniqueSuffix();
  const tenant = `alert-${s}`;
  const mails: Mail[] = [];
  const hooks: Array<{ path: string; body: { text: string } }> = [];
  const token = `tok-${uniqueSuffix()}${uniqueSuffix()}`;
  let smtp: SMTPServer;
  let http: Server;
  let smtpPort = 0;
  let httpPort = 0;

  before(async () => {
    smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      onData(stream, session, callback) {
        let data = '';
        stream.on('data', (c: Buffer) => (data += c.toString()));
        stream.on('end', () => {
          mails.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            data,
          });
          callback();
        });
      },
    });
    smtp.listen(0, '127.0.0.1');
    await once(smtp.server, 'listening');
    smtpPort = (smtp.server.address() as AddressInfo).port;
    http = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        hooks.push({ path: req.url ?? '', body: JSON.parse(body) as { text: string } });
        res.writeHead(200).end('ok');
      });
    });
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    httpPort = (http.address() as AddressInfo).port;
    const { host, port, user, password } = stackConfig().postgres;
    const admin: PgAdminConnection = { host, port, user, ...(password ? { password } : {}) };
    await createTenant(admin, stackConfig().odoo.dataDir, { name: tenant, moveLines: 50, files: 2 });
  });

  after(async () => {
    const { host, port, user, password } = stackConfig().postgres;
    await dropTenant({ host, port, user, ...(password ? { password } : {}) }, stackConfig().odoo.dataDir, tenant);
    await new Promise<void>((r) => smtp.close(() => r()));
    await new Promise<void>((r) => http.close(() => r()));
  });

  const alertConfig = (extra: NodeJS.ProcessEnv = {}) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-alerts-'));
    return stackConfig({
      ...extra,
      DR_BACKUP_DIR: dir,
      DR_SMTP_HOST: '127.0.0.1',
      DR_SMTP_PORT: String(smtpPort),
      DR_SMTP_FROM: 'odoo-dr@test.example',
      DR_NOTIFICATION_EMAIL: 'ops@example.com,oncall@example.com',
      DR_WEBHOOK_URL: `http://127.0.0.1:${httpPort}/services/T0/B0/${token}`,
    });
  };

  it('sendAlert delivers by e-mail and webhook and reports each channel', async () => {
    const before = mails.length;
    const delivery = await sendAlert(alertConfig(), { severity: 'warning', subject: 'disk almost full', text: 'backup disk at 91 %' });
    assert.deepEqual(delivery, { email: 'sent', webhook: 'sent' });
    const mail = mails[before]!;
    assert.deepEqual(mail.to.sort(), ['oncall@example.com', 'ops@example.com']);
    assert.match(mail.data, /Subject: \[odoo-dr warning\] disk almost full/);
    assert.match(hooks.at(-1)!.body.text, /\*\[odoo-dr warning\] disk almost full\*\nbackup disk at 91 %/);
  });

  it('reports a channel that fails instead of throwing', async () => {
    const config = stackConfig({
      DR_SMTP_HOST: '127.0.0.1',
      DR_SMTP_PORT: '1',
      DR_NOTIFICATION_EMAIL: 'ops@example.com',
      DR_WEBHOOK_URL: 'http://127.0.0.1:1/hook',
    });
    const delivery = await sendAlert(config, { severity: 'info', subject: 'x', text: 'y' });
    assert.match(delivery.email, /^failed: .*ECONNREFUSED/);
    assert.match(delivery.webhook, /^failed: /);
  });

  it('a partial backup session alerts both channels, naming the failed tenant; the webhook token stays out of the history', async () => {
    // A configured tenant (DR_TENANTS) that is gone: the scheduled backup goes on with the others, partial.
    const config = alertConfig({ DR_TENANTS: `${tenant},gone_${s}` });
    const env = await devServer();
    const session = backupSessionName(new Date(), uniqueSuffix());
    const mailsBefore = mails.length;
    const hooksBefore = hooks.length;
    const workflowId = `test/alerts/${session}`;
    const result = await withWorker({ env, config }, (taskQueue) =>
      env.client.workflow.execute(backupWorkflow, { taskQueue, workflowId, args: [{ session, cloud: false }] }),
    );
    assert.equal(result.status, 'partial');
    assert.deepEqual(result.alert, { email: 'sent', webhook: 'sent' });
    const mail = mails[mailsBefore]!;
    assert.match(mail.data, new RegExp(`Subject: \\[odoo-dr warning\\] backup ${session} is partial`));
    assert.match(mail.data, new RegExp(`gone_${s}: not a tenant`));
    const hook = hooks[hooksBefore]!;
    assert.equal(hook.path, `/services/T0/B0/${token}`);
    assert.match(hook.body.text, new RegExp(`backup ${session} is partial`));
    const history = historyText(await env.client.workflow.getHandle(workflowId).fetchHistory());
    assert.ok(!history.includes(token), 'the webhook URL (a secret) leaked into the history');
  });

  it('a complete session sends no alert', async () => {
    const env = await devServer();
    const mailsBefore = mails.length;
    const result = await withWorker({ env, config: alertConfig() }, (taskQueue) =>
      env.client.workflow.execute(backupWorkflow, {
        taskQueue,
        workflowId: `test/alerts-ok/${uniqueSuffix()}`,
        args: [{ tenants: [tenant], cloud: false }],
      }),
    );
    assert.equal(result.status, 'complete');
    assert.equal(result.alert, undefined);
    assert.equal(mails.length, mailsBefore);
  });
});
