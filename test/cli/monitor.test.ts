/**
 * `odoo-dr monitor` and `odoo-dr status` on the real stack (dev server, a worker process on its own
 * task queue, PostgreSQL, S3, a real SMTP server and webhook receiver): the report's JSON against
 * the documented schema, the exit codes, the alerts received, the Prometheus file, the audit lines.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { localPath, rel } from '../../src/backup/layout';
import { validateStatusReport, type StatusReport } from '../../src/monitor/report';
import { deleteObjects, listObjects } from '../../src/storage/s3';
import { temporalSettings } from '../../temporal/connection';
import type { MonitorResult } from '../../workflows/monitor';
import { createTenant, dropTenant, type PgAdminConnection } from '../fixtures/odoo-tenants';
import { runCli as cli, startCliWorker, type CliRun } from '../helpers/cli';
import { stackConfig, uniqueSuffix } from '../helpers/config';
import { flipByte } from '../helpers/files';
import { mailText, startReceivers, type Receivers } from '../helpers/receivers';

describe('odoo-dr monitor and status (CLI, worker process, dev server)', function () {
  this.timeout(600_000);
  const s = uniqueSuffix();
  const tenant = `cli-mon-${s}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-cli-mon-'));
  const prefix = `test-cli-mon-${s}`;
  const taskQueue = `cli-mon-${s}`;
  const token = `tok${uniqueSuffix()}${uniqueSuffix()}`;
  const promFile = path.join(dir, 'textfile', 'odoo_dr.prom');
  let env: NodeJS.ProcessEnv;
  let rx: Receivers;
  let worker: CliRun;
  const config = () => stackConfig(env);

  before(async () => {
    rx = await startReceivers();
    env = {
      DR_BACKUP_DIR: dir,
      DR_LOG_DIR: path.join(dir, 'logs'),
      DR_CLOUD_BUCKET: `s3://odoo-dr-local/${prefix}`,
      DR_TASK_QUEUE: taskQueue,
      DR_TENANTS: tenant,
      DR_SMTP_HOST: '127.0.0.1',
      DR_SMTP_PORT: String(rx.smtpPort),
      DR_NOTIFICATION_EMAIL: 'ops@example.com',
      DR_WEBHOOK_URL: `http://127.0.0.1:${rx.httpPort}/hooks/${token}`,
      DR_PROMETHEUS_TEXTFILE: promFile,
    };
    const { host, port, user, password } = config().postgres;
    const admin: PgAdminConnection = { host, port, user, ...(password ? { password } : {}) };
    await createTenant(admin, config().odoo.dataDir, { name: tenant, moveLines: 50, files: 2 });
    worker = await startCliWorker(env);
  });

  after(async () => {
    worker.child.kill('SIGTERM');
    await worker.result;
    // The alert state of this test's task queue.
    const { connectionOptions, namespace } = temporalSettings(config(), {});
    const connection = await Connection.connect(connectionOptions);
    await new Client({ connection, namespace }).workflow
      .getHandle(`odoo-dr/alerts/${taskQueue}`)
      .terminate('test done')
      .catch(() => undefined);
    await connection.close();
    const { host, port, user, password } = config().postgres;
    await dropTenant({ host, port, user, ...(password ? { password } : {}) }, config().odoo.dataDir, tenant);
    const keys: string[] = [];
    for await (const o of listObjects(config().cloud!, `${prefix}/`)) keys.push(o.key);
    if (keys.length) await deleteObjects(config().cloud!, keys);
    await rx.close();
  });

  const reportFile = () => path.join(dir, 'logs', 'dr-status.json');
  const check = (r: StatusReport, id: string) => {
    const c = r.checks.find((x) => x.id === id);
    assert.ok(c, `no check ${id}`);
    return c;
  };

  it('before any backup: exit 2 (CRITICAL: no backup schedule), the tenant never backed up, alerts by e-mail and webhook', async () => {
    const r = await cli(['--json', 'monitor', '--wait'], env).result;
    assert.equal(r.code, 2, r.stderr + r.stdout);
    const report = JSON.parse(r.stdout) as MonitorResult;
    assert.deepEqual(validateStatusReport(report), []);
    assert.equal(report.status, 'critical');
    assert.equal(report.reportPath, reportFile());
    const fromFile = JSON.parse(readFileSync(reportFile(), 'utf8')) as StatusReport;
    assert.deepEqual(validateStatusReport(fromFile), []);
    assert.equal(fromFile.workflowId, report.workflowId);

    assert.deepEqual(
      report.tenants.map((t) => t.tenant),
      [tenant],
    );
    assert.equal(report.tenants[0]!.lastBackup, null);
    const age = check(report, `backup-age/${tenant}`);
    assert.equal(age.status, 'warning');
    assert.match(age.message, /never backed up/);
    const sch = check(report, 'service/schedule/backup');
    assert.equal(sch.status, 'critical');
    assert.equal(sch.value, 'missing');
    assert.match(sch.message, new RegExp(`odoo-dr/${taskQueue}/backup`));
    assert.equal(check(report, 'service/postgres').status, 'ok');
    const w = check(report, 'service/worker');
    assert.equal(w.status, 'ok', w.message);
    assert.equal(check(report, 'disk/backup-dir').status === 'unknown', false);

    // Alerts: sent through both channels, naming the tenant, the check, the value, the threshold, what to do.
    assert.ok(report.alerts.enabled);
    assert.ok(report.alerts.sent.includes('CRITICAL service/schedule/backup'), report.alerts.sent.join(', '));
    assert.ok(report.alerts.sent.includes(`WARNING backup-age/${tenant}`), report.alerts.sent.join(', '));
    assert.equal(report.alerts.channels.email?.last, 'sent');
    assert.equal(report.alerts.channels.webhook?.last, 'sent');
    const mail = rx.mails.map((m) => mailText(m.data)).find((m) => m.includes(`WARNING backup-age/${tenant}`));
    assert.ok(mail, 'the e-mail about the tenant arrived');
    assert.match(mail, new RegExp(`tenant ${tenant}: ${tenant} was never backed up`));
    assert.match(mail, /Threshold: warning > 4 h/);
    assert.match(mail, /What to do: odoo-dr backup --tenant/);
    assert.ok(rx.hooks.some((h) => h.text.includes('CRITICAL service/schedule/backup') && h.text.includes('odoo-dr schedules apply')));

    // Prometheus textfile, written with the report.
    assert.ok(existsSync(promFile));
    const prom = readFileSync(promFile, 'utf8');
    assert.match(prom, /^odoo_dr_status 2$/m);
    assert.match(prom, new RegExp(`^odoo_dr_check_status\\{check="backup-age/${tenant}",category="backup-age",tenant="${tenant}"\\} 1$`, 'm'));
    // No secret in the report or the metrics.
    for (const text of [readFileSync(reportFile(), 'utf8'), prom]) assert.ok(!text.includes(token));
  });

  it('a second run with nothing changed sends nothing again', async () => {
    const hooks = rx.hooks.length;
    const r = await cli(['--json', 'monitor', '--wait'], env).result;
    assert.equal(r.code, 2, r.stderr);
    const report = JSON.parse(r.stdout) as MonitorResult;
    // Resources may change on this shared machine; nothing about the site does.
    assert.deepEqual(
      report.alerts.sent.filter((x) => !x.includes('resources/')),
      [],
    );
    assert.equal(rx.hooks.filter((h, i) => i >= hooks && !h.text.includes('resources/')).length, 0);
  });

  it('after a backup and a validation: the tenant is within its RPO, the bucket copy is equal, the validation alert cleared', async () => {
    const b = await cli(['backup', '--wait'], env).result;
    assert.equal(b.code, 0, b.stderr + b.stdout);
    const v = await cli(['validate', 'latest', '--wait'], env).result;
    assert.equal(v.code, 0, v.stderr + v.stdout);
    // The validation reported its result: the warning "no validation result" is resolved at once.
    assert.ok(
      rx.hooks.some((h) => h.text.includes('RESOLVED: last validation of backup_')),
      rx.hooks.map((h) => h.text.split('\n')[0]).join(' | '),
    );

    const r = await cli(['--json', 'monitor', '--wait'], env).result;
    const report = JSON.parse(r.stdout) as MonitorResult;
    assert.deepEqual(validateStatusReport(report), []);
    assert.equal(r.code, report.status === 'critical' ? 2 : report.status === 'warning' ? 1 : 0);
    const t = report.tenants[0]!;
    assert.ok(t.lastBackup && t.lastValidated && t.lastBackup.session === t.lastValidated.session);
    assert.equal(t.rpo, 'ok');
    assert.equal(check(report, `backup-age/${tenant}`).status, 'ok');
    assert.equal(check(report, `validated-age/${tenant}`).status, 'ok');
    assert.equal(check(report, 'cloud-sync').status, 'ok');
    assert.equal(check(report, 'completeness').status, 'ok');
    assert.equal(check(report, 'integrity/validation').status, 'ok');
    assert.ok(report.alerts.sent.includes(`RESOLVED backup-age/${tenant}`), report.alerts.sent.join(', '));
    assert.ok(rx.mails.some((m) => mailText(m.data).includes(`RESOLVED: tenant ${tenant}: newest complete backup of ${tenant} is`)));
  });

  it('`status` prints a table per tenant and exits by the report; --json conforms; `status WORKFLOW_ID` describes a workflow', async () => {
    const report = JSON.parse(readFileSync(reportFile(), 'utf8')) as StatusReport;
    const r = await cli(['status'], env).result;
    assert.equal(r.code, report.status === 'critical' ? 2 : report.status === 'warning' ? 1 : 0, r.stderr);
    assert.match(r.stdout, /^odoo-dr status: (OK|WARNING|CRITICAL)/);
    assert.match(r.stdout, /TENANT\s+LAST BACKUP\s+AGE\s+LAST VALIDATED\s+AGE\s+RPO/);
    assert.match(r.stdout, new RegExp(`${tenant}\\s+backup_\\S+\\s+[0-9.]+ h\\s+backup_\\S+\\s+[0-9.]+ h\\s+OK`));
    const j = await cli(['--json', 'status'], env).result;
    assert.deepEqual(validateStatusReport(JSON.parse(j.stdout)), []);
    const d = await cli(['--json', 'status', report.workflowId], env).result;
    assert.equal(d.code, 0, d.stderr);
    const info = JSON.parse(d.stdout) as { type: string; status: string };
    assert.deepEqual([info.type, info.status], ['monitorWorkflow', 'COMPLETED']);
  });

  it('`monitor --no-alerts` reports without alerting; audit lines name monitor, validation and who started them', async () => {
    const hooks = rx.hooks.length;
    const r = await cli(['--json', 'monitor', '--wait', '--no-alerts'], env).result;
    const report = JSON.parse(r.stdout) as MonitorResult;
    assert.equal(report.alerts.enabled, false);
    assert.equal(rx.hooks.length, hooks);
    const audit = readFileSync(path.join(dir, 'logs', 'audit.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { action: string; startedBy: string; result: string; workflowId: string });
    const monitors = audit.filter((a) => a.action === 'monitor');
    assert.equal(monitors.length, 4);
    assert.ok(monitors.every((m) => m.startedBy.includes('@') && ['ok', 'warning', 'critical'].includes(m.result)));
    assert.ok(monitors.some((m) => m.workflowId === report.workflowId));
    const validation = audit.find((a) => a.action === 'validation');
    assert.ok(validation && validation.result === 'pass' && validation.startedBy.includes('@'), JSON.stringify(audit));
  });

  it('a failed validation and a failed drill alert at once, naming the session and the damaged tenant', async () => {
    const report = JSON.parse(readFileSync(reportFile(), 'utf8')) as StatusReport;
    const session = report.tenants[0]!.lastBackup!.session;
    flipByte(localPath(dir, rel.database(session, tenant)));
    const v = await cli(['validate', session, '--tenant', tenant, '--no-cloud', '--wait'], env).result;
    assert.equal(v.code, 1, v.stderr + v.stdout);
    const hook = rx.hooks.find((h) => h.text.includes('CRITICAL integrity/validation'));
    assert.ok(hook, rx.hooks.map((h) => h.text.split('\n')[0]).join(' | '));
    assert.match(hook.text, new RegExp(`last validation of ${session} FAILED \\(validation/${session}/`));
    assert.match(hook.text, new RegExp(`${tenant}: `));
    assert.match(hook.text, /What to do: /);
    const d = await cli(['drill', '-m', 'validation-only', '--tenant', tenant, '--wait'], env).result;
    assert.equal(d.code, 1, d.stderr + d.stdout);
    // The drill cannot even start (the only session failed validation): alerted as a run that could not finish.
    const drill = rx.hooks.find((h) => h.text.includes('CRITICAL integrity/drill-run'));
    assert.ok(drill, rx.hooks.map((h) => h.text.split('\n')[0]).join(' | '));
    assert.match(drill.text, /drill drill\/validation-only\/\S+ could not run: .*no complete, non-failed backup session/);
    const audit = readFileSync(path.join(dir, 'logs', 'audit.jsonl'), 'utf8');
    assert.match(audit, /"action":"validation".*"result":"fail"/);
    assert.match(audit, /"action":"drill".*"result":"fail"/);
  });

  it('`status` without a report exits 3 (UNKNOWN) and says what to run', async () => {
    const r = await cli(['status'], { ...env, DR_LOG_DIR: path.join(dir, 'empty-logs') }).result;
    assert.equal(r.code, 3);
    assert.match(r.stderr, /no status report at .*odoo-dr monitor --wait/);
  });
});
