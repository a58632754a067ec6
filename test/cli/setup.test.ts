/**
 * `odoo-dr setup` as an operator runs it on a fresh host: a folder with nothing in it, the services
 * of the local stack given through the environment (which overrides the file), real SMTP and
 * webhook receivers, a real worker.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SMTPServer } from 'smtp-server';
import { readEnvFile } from '../../src/config';
import type { SetupReport } from '../../temporal/cli/setup';
import { runCli, startCliWorker } from '../helpers/cli';
import { LOCAL_CONFIG_PATH, stackConfig, uniqueSuffix } from '../helpers/config';
import { adminQuery, createDatabase, dropDatabase, ensureRole } from '../helpers/pg';
import { quoteIdent, withClient } from '../../src/postgres';
import { devServer } from '../helpers/temporal';
import { ScheduleIds } from '../../workflows/definitions';
import { testBucketUrl } from '../helpers/bucket';

/** The stack's services, without its keys: setup must make its own. */
function stackServices(): Record<string, string> {
  const file = readEnvFile(LOCAL_CONFIG_PATH, {});
  const keep = [
    'POSTGRES_HOST',
    'POSTGRES_PORT',
    'POSTGRES_USER',
    'POSTGRES_PASSWORD_FILE',
    'ODOO_DB_USER',
    'ODOO_DATA_DIR',
    'DR_S3_ENDPOINT',
    'DR_S3_FORCE_PATH_STYLE',
    'DR_CLOUD_REGION',
    'AWS_ACCESS_KEY_ID',
    'AWS_SECRET_ACCESS_KEY',
    'TEMPORAL_ADDRESS',
    'TEMPORAL_NAMESPACE',
  ];
  return Object.fromEntries(keep.filter((k) => file[k] !== undefined).map((k) => [k, file[k]!]));
}

const statusOf = (r: SetupReport, service: string, check: string) => r.checks.find((c) => c.service === service && c.check === check)?.status;

describe('odoo-dr setup', function () {
  this.timeout(300_000);
  const s = uniqueSuffix();
  const dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-setup-'));
  const configFile = path.join(dir, 'config', 'dr-config.env');
  const keyDir = path.join(dir, 'keys');
  const mails: string[] = [];
  const hooks: string[] = [];
  let smtp: SMTPServer;
  let http: Server;
  let env: Record<string, string>;

  before(async () => {
    smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      onData(stream, _session, callback) {
        let data = '';
        stream.on('data', (c: Buffer) => (data += c.toString()));
        stream.on('end', () => (mails.push(data), callback()));
      },
    });
    smtp.listen(0, '127.0.0.1');
    await once(smtp.server, 'listening');
    http = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => (hooks.push(`${req.url} ${body}`), res.writeHead(200).end('ok')));
    });
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    env = {
      ...stackServices(),
      DR_BACKUP_DIR: path.join(dir, 'backups'),
      DR_CLOUD_BUCKET: testBucketUrl(`test-setup-${s}`, { exact: true }),
      DR_TASK_QUEUE: `setup-${s}`,
      DR_SMTP_HOST: '127.0.0.1',
      DR_SMTP_PORT: String((smtp.server.address() as AddressInfo).port),
      DR_NOTIFICATION_EMAIL: 'ops@example.com',
      DR_WEBHOOK_URL: `http://127.0.0.1:${(http.address() as AddressInfo).port}/hooks/T0K3N-${s}`,
    };
  });
  after(async () => {
    await new Promise<void>((r) => smtp.close(() => r()));
    await new Promise<void>((r) => http.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  // The tests run in order on one host folder: the second creates what the later ones check.
  const setup = (args: string[]) => runCli(['--config', configFile, ...args], env, { config: null }).result;

  it('`--check` on a fresh host changes nothing and exits 1, saying to run setup', async () => {
    const r = await setup(['--json', 'setup', '--check', '--dir', keyDir]);
    assert.equal(r.code, 1, r.stderr);
    const report = JSON.parse(r.stdout) as SetupReport;
    assert.equal(report.ok, false);
    assert.deepEqual(
      report.checks.map((c) => [c.service, c.check, c.status]),
      [['config', 'file', 'problem']],
    );
    assert.match(report.checks[0]!.fix!, /^odoo-dr setup --config /);
    assert.ok(!existsSync(configFile) && !existsSync(keyDir), 'nothing created');
  });

  it('creates the configuration from the example and both keys (0600, folder 0700), then checks every service', async () => {
    const r = await setup(['--json', 'setup', '--dir', keyDir]);
    const report = JSON.parse(r.stdout) as SetupReport;
    // No worker polls this test's queue and no schedule exists: broken, and said so.
    assert.equal(r.code, 1, r.stderr);
    assert.equal(report.mode, 'setup');
    assert.equal(statSync(configFile).mode & 0o777, 0o600);
    for (const f of ['encryption.key', 'signing.key']) assert.equal(statSync(path.join(keyDir, f)).mode & 0o777, 0o600, f);
    assert.equal(statSync(keyDir).mode & 0o777, 0o700);
    assert.equal(report.keys.identity?.state, 'created');
    assert.equal(report.keys.signing?.state, 'created');
    assert.match(report.keys.identity.publicKey!, /^age1[02-9ac-hj-np-z]{58}$/);
    assert.match(report.keys.signing.publicKey!, /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI\S+ odoo-dr@/);
    // The file is the example, with the key paths and the public keys filled in.
    const text = readFileSync(configFile, 'utf8');
    const values = readEnvFile(configFile, {});
    assert.equal(values.DR_ENCRYPTION_KEY_FILE, path.join(keyDir, 'encryption.key'));
    assert.equal(values.DR_SIGNING_KEY_FILE, path.join(keyDir, 'signing.key'));
    assert.equal(values.DR_AGE_RECIPIENTS, report.keys.identity.publicKey);
    assert.equal(values.DR_TRUSTED_SIGNERS, report.keys.signing.publicKey);
    assert.match(text, /^#DR_RPO_HOURS="4"$/m, 'the rest of the example is kept, commented');

    const expected: Array<[string, string, string]> = [
      ['config', 'file', 'ok'],
      ['keys', 'age identity', 'ok'],
      ['keys', 'signing key', 'ok'],
      ['postgresql', 'server', 'ok'],
      ['postgresql', 'DR role', 'ok'],
      ['postgresql', 'Odoo role', 'ok'],
      ['postgresql', 'pg_dump', 'ok'],
      ['s3', 'bucket', 'ok'],
      ['s3', 'write/read/delete', 'ok'],
      // versitygw: no lifecycle at all; this bucket has neither versioning nor object lock.
      ['s3', 'lifecycle', 'warning'],
      ['s3', 'object lock', 'warning'],
      ['smtp', 'server', 'ok'],
      ['webhook', 'post', 'skipped'],
      ['temporal', 'namespace', 'ok'],
      ['temporal', 'worker', 'problem'],
      ['temporal', 'schedules', 'problem'],
    ];
    for (const [service, check, status] of expected)
      assert.equal(statusOf(report, service, check), status, `${service} ${check}: ${JSON.stringify(report.checks.filter((c) => c.service === service))}`);
    assert.match(report.checks.find((c) => c.check === 'lifecycle')!.detail, /not supported by this server/);
    assert.match(report.checks.find((c) => c.check === 'worker')!.fix!, new RegExp(`odoo-dr worker .*DR_TASK_QUEUE=setup-${s}`));
    assert.match(report.checks.find((c) => c.check === 'schedules')!.detail, new RegExp(`missing: odoo-dr/setup-${s}/backup`));
    for (const c of report.checks.filter((x) => x.status === 'problem' || x.status === 'warning'))
      assert.ok(c.fix || /not supported/.test(c.detail), `${c.service} ${c.check} has no fix`);
    assert.ok(!r.stdout.includes(`T0K3N-${s}`) && !r.stderr.includes(`T0K3N-${s}`), 'the webhook token is never printed');
    assert.ok(!r.stdout.includes('AGE-SECRET-KEY') && !r.stdout.includes('PRIVATE KEY'));
  });

  it('a second run keeps both keys; `--check --send-test` changes nothing, mails and posts; exit 0 once a worker polls and the schedules exist', async () => {
    const keysBefore = readdirSync(keyDir).map((f) => readFileSync(path.join(keyDir, f), 'utf8'));
    const configBefore = readFileSync(configFile, 'utf8');
    const again = await setup(['--json', 'setup', '--dir', keyDir]);
    const second = JSON.parse(again.stdout) as SetupReport;
    assert.equal(second.keys.identity?.state, 'existing');
    assert.equal(second.keys.signing?.state, 'existing');
    assert.deepEqual(
      readdirSync(keyDir).map((f) => readFileSync(path.join(keyDir, f), 'utf8')),
      keysBefore,
    );
    assert.equal(readFileSync(configFile, 'utf8'), configBefore);

    const worker = await startCliWorker(env, [], { config: configFile });
    try {
      const r = await setup(['setup', '--check', '--send-test']);
      assert.match(r.stdout, /^STATUS +SERVICE +CHECK +DETAIL$/m);
      assert.match(r.stdout, /^ok +temporal +worker +1 worker\(s\) poll task queue/m);
      assert.match(r.stdout, /^PROBLEM +temporal +schedules +missing/m);
      assert.match(r.stdout, /^ok +smtp +test e-mail +sent to ops@example.com/m);
      assert.match(r.stdout, /^ok +webhook +post +test message posted to http:\/\/127\.0\.0\.1:\d+\/… \(set, hidden\)/m);
      assert.match(r.stdout, /IMPORTANT: store a copy of .*encryption\.key OFFLINE/);
      assert.match(r.stdout, /something is broken: see the fixes above \(checked only, nothing changed\)/);
      assert.equal(r.code, 1, 'the schedules are missing');
      assert.equal(mails.length, 1);
      assert.match(mails[0]!, /Subject: \[odoo-dr info\] test e-mail from odoo-dr setup/);
      assert.equal(hooks.length, 1);
      assert.match(hooks[0]!, new RegExp(`^/hooks/T0K3N-${s} .*test message from odoo-dr setup`));
      assert.ok(!r.stdout.includes(`T0K3N-${s}`));

      // The schedules, as `odoo-dr schedules apply` names them for this queue (paused: they must not run here).
      const { client } = await devServer();
      const ids = Object.keys(ScheduleIds).map((n) => `odoo-dr/setup-${s}/${n}`);
      try {
        for (const scheduleId of ids) {
          await client.schedule.create({
            scheduleId,
            spec: { intervals: [{ every: '1 day' }] },
            action: { type: 'startWorkflow', workflowType: 'monitorWorkflow', taskQueue: `setup-${s}`, args: [{}] },
            state: { paused: true },
          });
        }
        const now = await setup(['setup', '--check']);
        assert.match(now.stdout, /^WARNING +temporal +schedules +paused: odoo-dr\/setup-/m);
        assert.match(now.stdout, /everything odoo-dr needs works \(checked only, nothing changed\)/);
        assert.equal(now.code, 0, now.stdout);
      } finally {
        for (const id of ids)
          await client.schedule
            .getHandle(id)
            .delete()
            .catch(() => undefined);
      }
    } finally {
      worker.child.kill('SIGTERM');
      await worker.result;
    }
    assert.deepEqual(
      readdirSync(keyDir).map((f) => readFileSync(path.join(keyDir, f), 'utf8')),
      keysBefore,
    );
    assert.equal(readFileSync(configFile, 'utf8'), configBefore);
  });

  it("names the DR role's missing rights, unreachable and unreadable tenants, each with the SQL that fixes it", async () => {
    const role = `setup_lim_${s}`;
    const readable = `setup-t-${s}`;
    const closed = `setup-nc-${s}`;
    const password = `pw-${uniqueSuffix()}${uniqueSuffix()}`;
    await ensureRole(role, password);
    await createDatabase(readable);
    await createDatabase(closed);
    try {
      const { postgres } = stackConfig();
      await withClient(postgres, readable, async (c) => {
        // A table and its sequence: pg_dump reads both.
        await c.query('CREATE TABLE res_partner (id serial PRIMARY KEY, name text)');
        await c.query('ALTER TABLE res_partner OWNER TO odoo');
        await c.query(`REVOKE ALL ON res_partner FROM ${quoteIdent(role)}`);
      });
      await adminQuery(`REVOKE CONNECT ON DATABASE ${quoteIdent(closed)} FROM PUBLIC`);
      const limited = { ...env, POSTGRES_USER: role, POSTGRES_PASSWORD: password, POSTGRES_PASSWORD_FILE: '', DR_TENANTS: `${readable},${closed}` };
      const r = await runCli(['--config', configFile, '--json', 'setup', '--check'], limited, { config: null }).result;
      assert.equal(r.code, 1);
      const report = JSON.parse(r.stdout) as SetupReport;
      const pg = Object.fromEntries(report.checks.filter((c) => c.service === 'postgresql').map((c) => [c.check, c]));
      assert.equal(pg['server']!.status, 'ok');
      assert.equal(pg['DR role']!.status, 'problem');
      assert.equal(pg['DR role']!.fix, `ALTER ROLE "${role}" CREATEDB CREATEROLE;`);
      assert.equal(pg.tenants!.status, 'problem');
      assert.match(pg.tenants!.detail, new RegExp(`may not connect to ${closed}`));
      assert.equal(pg.tenants!.fix, `GRANT CONNECT ON DATABASE "${closed}" TO "${role}";`);
      assert.equal(pg['tenant tables']!.status, 'problem');
      assert.match(pg['tenant tables']!.detail, new RegExp(`cannot read every table of ${readable} \\(2 tables\\)`));
      assert.match(pg['tenant tables']!.fix!, /GRANT pg_read_all_data TO/);
      assert.ok(!r.stdout.includes(password) && !r.stderr.includes(password), 'the password is never printed');
    } finally {
      await dropDatabase(readable);
      await dropDatabase(closed);
      await adminQuery(`DROP ROLE IF EXISTS ${quoteIdent(role)}`);
    }
  });

  it('reports a broken service with its fix, and a bad configuration with exit code 2', async () => {
    const broken = await runCli(
      ['--config', configFile, '--json', 'setup', '--check'],
      { ...env, POSTGRES_PORT: '1', DR_CLOUD_BUCKET: `s3://no-such-bucket-${s}/x` },
      { config: null },
    ).result;
    assert.equal(broken.code, 1);
    const report = JSON.parse(broken.stdout) as SetupReport;
    const pg = report.checks.find((c) => c.service === 'postgresql')!;
    assert.equal(pg.status, 'problem');
    assert.match(pg.detail, /127\.0\.0\.1:1/);
    assert.match(pg.fix!, /POSTGRES_HOST\/POSTGRES_PORT/);
    const bucket = report.checks.find((c) => c.service === 's3')!;
    assert.equal(bucket.status, 'problem');
    assert.match(bucket.detail, new RegExp(`bucket no-such-bucket-${s} does not exist`));

    const bad = await runCli(['--config', configFile, 'setup', '--check'], { ...env, DR_RPO_HOURS: 'soon' }, { config: null }).result;
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /DR_RPO_HOURS must be a whole number/);
    // versitygw has no lifecycle API: asking to put rules is a problem, not a silent no-op.
    const lifecycle = await setup(['--json', 'setup', '--apply-lifecycle']);
    assert.equal(lifecycle.code, 1);
    const rules = (JSON.parse(lifecycle.stdout) as SetupReport).checks.find((c) => c.check === 'lifecycle')!;
    assert.equal(rules.status, 'problem');
    assert.match(rules.detail, /not supported by this server: --apply-lifecycle cannot put rules/);

    const usage = await setup(['setup', '--check', '--apply-lifecycle']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--check changes nothing: it cannot go with --apply-lifecycle/);
  });
});
