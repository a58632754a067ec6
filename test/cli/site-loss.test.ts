/**
 * Site loss, end to end, as an operator lives it: a fleet (generated tenants and the real Odoo 17
 * tenant) is backed up with its cloud copy; then the host is gone. A second, empty PostgreSQL
 * cluster (no Odoo role), empty data and backup folders and a brand-new Temporal server get only
 * the configuration, the bucket and the age identity, and `odoo-dr recover -m full -c --all --yes`
 * brings every tenant back, roles and configuration first. The worker is killed in the middle of it
 * once; the next worker finishes without redoing what was verified, and a rerun skips everything.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { DrConfig } from '../../src/config';
import { withClient } from '../../src/postgres';
import { S3SessionStore } from '../../src/sessions/s3-store';
import type { BackupResult } from '../../workflows/backup';
import type { DrillReport } from '../../workflows/drill';
import type { RecoveryResult, RecoveryStatus } from '../../workflows/recovery';
import type { ValidationReport } from '../../workflows/validation';
import { createTenant, dropTenant, type PgAdminConnection } from '../fixtures/odoo-tenants';
import { loadRealOdooTenant } from '../fixtures/real-odoo';
import { runCli, startCliWorker, workflowIdOf, type CliRun } from '../helpers/cli';
import { stackConfig, uniqueSuffix } from '../helpers/config';
import { startFreshSite, type FreshSite } from '../helpers/fresh-site';
import { filestoreFiles } from '../helpers/files';
import { adminQuery, adminConnection } from '../helpers/pg';
import { testBucketUrl } from '../helpers/bucket';

const STACK = '/var/tmp/odoo-dr-stack';

/** Every table's row count and content checksum, and every filestore file's SHA-1. */
async function fingerprint(config: DrConfig, tenant: string): Promise<string> {
  const parts: string[] = [];
  await withClient(config.postgres, tenant, async (c) => {
    const tables = await c.query<{ t: string }>(
      "SELECT quote_ident(table_name) AS t FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
    );
    for (const { t } of tables.rows) {
      const { rows } = await c.query<{ n: string; h: string | null }>(
        `SELECT count(*) AS n, md5(string_agg(x::text, '|' ORDER BY x::text)) AS h FROM public.${t} x`,
      );
      parts.push(`${t}:${rows[0]!.n}:${rows[0]!.h}`);
    }
  });
  parts.push(...filestoreFiles(path.join(config.odoo.filestoreRoot, tenant)));
  return parts.join('\n');
}

function json<T>(out: string): T {
  return JSON.parse(out.slice(out.indexOf('{'))) as T;
}

async function stopWorker(w: CliRun, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill(signal);
  await w.result;
}

describe('site loss: the bucket alone brings the platform back on a fresh host (CLI, real stack)', function () {
  this.timeout(900_000);
  const s = uniqueSuffix();
  const root = path.join(STACK, `site-loss-${s}`);
  const oldSite = {
    backups: path.join(root, 'old/backups'),
    data: path.join(root, 'old/odoo-data'),
    // The same path on the old and the new host (as /etc/odoo would be): the configuration goes back there.
    etc: path.join(root, 'etc-odoo'),
  };
  const tenants = [`site-a-${s}`, `site-b.${s}`, `site-real-${s}`];
  const role = `site_reader_${s}`;
  const env = {
    DR_BACKUP_DIR: oldSite.backups,
    DR_LOG_DIR: path.join(oldSite.backups, 'logs'),
    ODOO_DATA_DIR: oldSite.data,
    DR_CONFIG_PATHS: oldSite.etc,
    DR_CLOUD_BUCKET: testBucketUrl(`site-${s}`, { exact: true }),
    DR_TASK_QUEUE: `site-${s}`,
    DR_MAX_PARALLEL_BACKUPS: '2',
  };
  const config = stackConfig(env);
  const admin = (): PgAdminConnection => adminConnection(config);
  const originals = new Map<string, string>();
  let session = '';
  let worker: CliRun | undefined;

  before(async function () {
    this.timeout(600_000);
    mkdirSync(oldSite.etc, { recursive: true });
    writeFileSync(path.join(oldSite.etc, 'odoo.conf'), `[options]\ndb_user = odoo\nadmin_passwd = site-${s}\n`);
    await createTenant(admin(), oldSite.data, { name: tenants[0]!, moveLines: 600, files: 12 });
    await createTenant(admin(), oldSite.data, { name: tenants[1]!, moveLines: 300, files: 5 });
    await loadRealOdooTenant(admin(), oldSite.data, { name: tenants[2]! });
    // A role with a membership: it must come back on the new cluster with it.
    await adminQuery(`CREATE ROLE "${role}" NOLOGIN`);
    await adminQuery(`GRANT "${role}" TO odoo`);
    for (const t of tenants) originals.set(t, await fingerprint(config, t));
    worker = await startCliWorker(env);
    const run = runCli(['--json', 'backup', '--wait', '--tenant', ...tenants], env);
    const { code, out } = await run.result;
    assert.equal(code, 0, out);
    const result = json<BackupResult>(out);
    assert.equal(result.status, 'complete', out);
    session = result.session;
  });

  after(async () => {
    if (worker) await stopWorker(worker);
    for (const t of tenants) await dropTenant(admin(), oldSite.data, t).catch(() => undefined);
    await adminQuery(`DROP ROLE IF EXISTS "${role}"`).catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  });

  it('a backup started with {} (UI, temporal CLI, schedule) copies to the bucket when one is configured', async () => {
    const run = runCli(['sessions', 'list', '--cloud', '--json'], env);
    const { code, out } = await run.result;
    assert.equal(code, 0, out);
    const listed = json<{ sessions: Array<{ session: string; status: string }> }>(out);
    assert.deepEqual(
      listed.sessions.map((x) => [x.session, x.status]),
      [[session, 'complete']],
    );
  });

  it('with the local folder gone, `validate latest` and `drill -m restore-only -c` run the same checks from the bucket', async () => {
    rmSync(oldSite.backups, { recursive: true, force: true });
    const validate = await runCli(['--json', 'validate', 'latest', '--restore-test', '--wait'], env).result;
    assert.equal(validate.code, 0, validate.out);
    const report = json<ValidationReport>(validate.out);
    assert.equal(report.session, session);
    assert.equal(report.status, 'pass');
    const names = new Set(report.checks.map((c) => c.name));
    for (const name of ['manifest', 'artifact-cloud', 'dump-integrity', 'filestore-blobs', 'restore-database', 'attachments', 'modules', 'row-counts']) {
      assert.ok(names.has(name), `check ${name} ran (${[...names].join(', ')})`);
    }
    assert.ok(report.checks.find((c) => c.name === 'manifest')!.message.includes('s3://odoo-dr-local/'), 'read from the bucket');
    const drill = await runCli(['--json', 'drill', '-m', 'restore-only', '-c', '--wait'], env).result;
    assert.equal(drill.code, 0, drill.out);
    const d = json<DrillReport>(drill.out);
    assert.equal(d.session, session);
    assert.deepEqual(d.tenants.map((t) => [t.tenant, t.status]).sort(), tenants.map((t) => [t, 'pass']).sort());
    assert.equal(existsSync(path.join(oldSite.backups, 'sessions', session)), false, 'nothing of the session was needed on local disk');
  });

  it('bad input fails with a clear error before anything changes', async () => {
    // The worker's configuration is what counts (the bucket, the key): one worker per case.
    const withWorker = async (extra: Record<string, string>, args: string[]) => {
      const e = { ...env, ...extra, DR_TASK_QUEUE: `site-bad-${s}-${uniqueSuffix()}` };
      const w = await startCliWorker(e);
      try {
        return await runCli(['--json', ...args], e).result;
      } finally {
        await stopWorker(w);
      }
    };
    const unknown = await runCli(['--json', 'recover', '-m', 'full', '-c', '--all', '-s', 'backup_20200101_000000_zzzzzz', '-t'], env).result;
    assert.equal(unknown.code, 1);
    assert.match(unknown.out, /session backup_20200101_000000_zzzzzz does not exist in s3:\/\/odoo-dr-local\/site-/);
    const empty = await withWorker({ DR_CLOUD_BUCKET: testBucketUrl(`empty-${s}`, { exact: true }) }, ['recover', '-m', 'full', '-c', '--all', '-t']);
    assert.equal(empty.code, 1);
    assert.match(empty.out, /no complete, non-failed backup session in s3:\/\/odoo-dr-local\/empty-/);
    const bad = await runCli(['recover', '-m', 'full', '--all', '--tenant', tenants[0]!, '-t'], env).result;
    assert.equal(bad.code, 2);
    assert.match(bad.out, /--all recovers every tenant/);
    // A session whose manifest cannot be read (damaged bytes under the backup host's signature).
    const garbage = { ...stackConfig().cloud!, prefix: `garbage-${s}` };
    const real = new S3SessionStore(config.cloud!);
    await new S3SessionStore(garbage).putManifest(session, 'this is not a manifest', await real.signatureText(session));
    const unreadable = await withWorker({ DR_CLOUD_BUCKET: testBucketUrl(`garbage-${s}`, { exact: true }) }, [
      'recover',
      '-m',
      'full',
      '-c',
      '--all',
      '-s',
      session,
      '-t',
    ]);
    await new S3SessionStore(garbage).deleteSession(session);
    assert.equal(unreadable.code, 1);
    assert.match(
      unreadable.out,
      new RegExp(`${session}/manifest.json: the signature by SHA256:\\S+ does not match: the manifest was changed after it was signed`),
    );
    // An identity the session was not encrypted to: refused at planning, before anything changes.
    const otherKey = path.join(root, 'other.key');
    execFileSync('age-keygen', ['-o', otherKey], { stdio: 'ignore' });
    const wrongKey = await withWorker({ DR_ENCRYPTION_KEY_FILE: otherKey }, ['recover', '-m', 'full', '-c', '--all', '--yes', '--wait']);
    assert.equal(wrongKey.code, 1);
    assert.match(wrongKey.out, new RegExp(`EncryptionKeyError: the age identity in ${otherKey} .* cannot decrypt session ${session}.*Nothing was changed`));
  });

  describe('on a fresh host', function () {
    let site: FreshSite;
    let newEnv: Record<string, string>;
    let newConfig: DrConfig;
    let client: Client;

    before(async function () {
      this.timeout(120_000);
      if (worker) await stopWorker(worker);
      worker = undefined;
      // The host is lost: its data, its configuration and its backup folder with it.
      rmSync(path.join(root, 'old'), { recursive: true, force: true });
      rmSync(oldSite.etc, { recursive: true, force: true });
      site = await startFreshSite();
      newEnv = {
        ...site.env,
        DR_CLOUD_BUCKET: env.DR_CLOUD_BUCKET,
        DR_TASK_QUEUE: env.DR_TASK_QUEUE,
        DR_CONFIG_PATHS: oldSite.etc,
        DR_MAX_PARALLEL_BACKUPS: '2',
      };
      newConfig = site.config(newEnv);
      client = new Client({ connection: await Connection.connect({ address: site.temporal.address }), namespace: 'default' });
    });
    after(async () => {
      await client?.connection.close();
      await site?.stop();
    });

    it('`recover -m full -c --all --yes` restores roles, configuration and every tenant; a worker killed midway is replaced', async () => {
      const roles = await withClient(
        newConfig.postgres,
        'postgres',
        async (c) => (await c.query<{ n: string }>("SELECT count(*) AS n FROM pg_roles WHERE rolname = 'odoo'")).rows[0]!.n,
      );
      assert.equal(roles, '0', 'the new cluster starts empty');
      let w = await startCliWorker(newEnv);
      const run = runCli(['--json', 'recover', '-m', 'full', '-c', '--all', '--yes'], newEnv);
      const id = await workflowIdOf(run, 'recovery/');
      assert.equal((await run.result).code, 0);
      const handle = client.workflow.getHandle(id);
      // Kill the worker once a tenant is verified and another is still being restored.
      const deadline = Date.now() + 300_000;
      let killedAt: RecoveryStatus | undefined;
      while (Date.now() < deadline) {
        const st = await handle.query<RecoveryStatus>('status').catch(() => undefined);
        const states = Object.values(st?.tenants ?? {}).map((t) => t.state);
        if (states.includes('verified') && states.includes('restoring-shadow')) {
          killedAt = st;
          break;
        }
        if (states.length && states.every((x) => x !== 'planned' && x !== 'restoring-shadow')) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      await stopWorker(w, 'SIGKILL');
      w = await startCliWorker(newEnv);
      try {
        const result = (await handle.result()) as RecoveryResult;
        assert.equal(result.state, 'done', JSON.stringify(result.tenants));
        for (const t of tenants) assert.equal(result.tenants[t]?.state, 'recovered', `${t}: ${JSON.stringify(result.tenants[t])}`);
        // The figures an operator reports after a site loss.
        assert.equal(result.report?.tenantsRecovered, tenants.length);
        assert.ok((result.report?.bytes ?? 0) > 0);
        assert.equal(typeof result.report?.achievedRtoMinutes, 'number');
        assert.equal(result.report?.rtoMinutes, newConfig.objectives.rtoMinutes);
        for (const t of tenants) assert.ok((result.report?.achievedRpoHours[t] ?? -1) >= 0, t);
        assert.ok(result.globals?.created.includes('odoo'), `the Odoo role was created: ${JSON.stringify(result.globals)}`);
        assert.ok(result.globals?.created.includes(role));
        assert.ok(result.config?.restored.includes(path.join(oldSite.etc, 'odoo.conf')));
        // Verified tenants were not restored again after the kill.
        if (killedAt) {
          const history = await handle.fetchHistory();
          const shadows = (history.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'prepareRecoveryShadow');
          assert.equal(shadows.length, tenants.length, 'one shadow restore per tenant, none redone');
        }
      } finally {
        await stopWorker(w);
      }
      // Data, roles and configuration are the originals.
      for (const t of tenants) assert.equal(await fingerprint(newConfig, t), originals.get(t), `tenant ${t} equals the original`);
      const member = await withClient(
        newConfig.postgres,
        'postgres',
        async (c) => (await c.query<{ ok: boolean }>('SELECT pg_has_role($1, $2, $3) AS ok', ['odoo', role, 'MEMBER'])).rows[0]!.ok,
      );
      assert.equal(member, true, 'the membership came back');
      const owner = await withClient(
        newConfig.postgres,
        'postgres',
        async (c) => (await c.query<{ o: string }>('SELECT pg_get_userbyid(datdba) AS o FROM pg_database WHERE datname = $1', [tenants[2]])).rows[0]!.o,
      );
      assert.equal(owner, 'odoo', 'tenants belong to the Odoo role, so Odoo lists them');
      assert.match(readFileSync(path.join(oldSite.etc, 'odoo.conf'), 'utf8'), new RegExp(`admin_passwd = site-${s}`));
    });

    it('a rerun (`recover --resume`) skips the tenants already recovered and verified', async () => {
      const w = await startCliWorker(newEnv);
      try {
        const listed = client.workflow.list({ query: `WorkflowType = 'recoveryWorkflow'` });
        let first = '';
        for await (const wf of listed) first = wf.workflowId;
        assert.ok(first, 'the first recovery is listed on the new Temporal server');
        const rerun = await runCli(['--json', 'recover', '--resume', first, '--yes', '--wait'], newEnv).result;
        assert.equal(rerun.code, 0, rerun.out);
        const result = json<RecoveryResult>(rerun.out);
        for (const t of tenants) assert.match(result.tenants[t]?.skipped ?? '', /already recovered from backup_/, t);
        assert.equal(result.plan?.tenants.length, 0, 'nothing planned again');
      } finally {
        await stopWorker(w);
      }
    });
  });
});
