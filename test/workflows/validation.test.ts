import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, truncateSync, unlinkSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { localPath, rel } from '../../src/backup/layout';
import { markScratch, scratchName } from '../../src/restore/scratch';
import { readFilestoreIndex } from '../../src/backup/filestore';
import type { DrConfig } from '../../src/config';
import { deleteObjects, listObjects } from '../../src/storage/s3';
import { backupWorkflow, drillWorkflow, validationWorkflow } from '../../workflows';
import { backupSessionName } from '../../workflows/definitions';
import type { ValidationReport } from '../../workflows/validation';
import { createTenant, dropTenant } from '../fixtures/odoo-tenants';
import { loadRealOdooTenant } from '../fixtures/real-odoo';
import { stackConfig, uniqueSuffix } from '../helpers/config';
import { flipByte } from '../helpers/files';
import { adminQuery, adminConnection } from '../helpers/pg';
import { devServer, withWorker } from '../helpers/temporal';

const failed = (r: ValidationReport) => r.checks.filter((c) => c.status === 'fail');

describe('validationWorkflow and drillWorkflow (real stack)', function () {
  this.timeout(600_000);
  const s = uniqueSuffix();
  const tenant = `val-${s}.eu`;
  const real = `val-real-${s}`;
  const prefix = `test-val-${s}`;
  const configFor = (dir: string, extra: NodeJS.ProcessEnv = {}): DrConfig =>
    stackConfig({ DR_BACKUP_DIR: dir, DR_LOG_DIR: path.join(dir, 'logs'), DR_CLOUD_BUCKET: `s3://odoo-dr-local/${prefix}/${path.basename(dir)}`, ...extra });

  const backup = async (config: DrConfig, tenants: string[], cloud = false) => {
    const env = await devServer();
    const session = backupSessionName(new Date(), uniqueSuffix());
    const result = await withWorker({ env, config }, (taskQueue) =>
      env.client.workflow.execute(backupWorkflow, {
        taskQueue,
        workflowId: `test/val-backup/${session}`,
        args: [{ session, tenants, cloud, retention: false }],
      }),
    );
    assert.equal(result.status, 'complete', JSON.stringify(result));
    return session;
  };
  const validate = async (config: DrConfig, input: Parameters<typeof validationWorkflow>[0]) => {
    const env = await devServer();
    return withWorker({ env, config }, (taskQueue) =>
      env.client.workflow.execute(validationWorkflow, { taskQueue, workflowId: `test/validation/${uniqueSuffix()}`, args: [input] }),
    );
  };
  /** A fresh backup of the small tenant in its own folder, to damage. */
  const freshSession = async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-val-'));
    const config = configFor(dir);
    const session = await backup(config, [tenant]);
    return { config, session, dir };
  };

  before(async () => {
    await createTenant(adminConnection(), stackConfig().odoo.dataDir, { name: tenant, moveLines: 2000, files: 8 });
    await loadRealOdooTenant(adminConnection(), stackConfig().odoo.dataDir, { name: real });
  });
  after(async () => {
    await dropTenant(adminConnection(), stackConfig().odoo.dataDir, tenant);
    await dropTenant(adminConnection(), stackConfig().odoo.dataDir, real);
    const cloud = stackConfig({ DR_CLOUD_BUCKET: `s3://odoo-dr-local/${prefix}` }).cloud!;
    const keys: string[] = [];
    for await (const o of listObjects(cloud, `${prefix}/`)) keys.push(o.key);
    if (keys.length) await deleteObjects(cloud, keys);
  });

  let good: { config: DrConfig; session: string; dir: string };

  it('passes every check of a good session, with a real restore test of both tenants (local and cloud copies)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-val-good-'));
    const config = configFor(dir);
    const session = await backup(config, [tenant, real], true);
    good = { config, session, dir };
    const report = await validate(config, { session: 'latest', restoreTest: true });
    assert.equal(report.session, session);
    assert.deepEqual(failed(report), [], JSON.stringify(failed(report), null, 2));
    assert.equal(report.status, 'pass');
    const names = new Set(report.checks.map((c) => c.name));
    for (const n of [
      'manifest',
      'artifact-local',
      'artifact-cloud',
      'age',
      'dump-integrity',
      'filestore-blobs',
      'restore-database',
      'restore-filestore',
      'neutralize',
      'modules',
      'row-counts',
      'attachments',
      'admin-user',
    ]) {
      assert.ok(names.has(n), `check ${n} is missing: ${[...names].join(', ')}`);
    }
    for (const t of [tenant, real]) {
      const dumpChecks = report.checks.filter((c) => c.name === 'dump-integrity' && c.tenant === t);
      assert.equal(dumpChecks.length, 1, `${t}: one dump-integrity check`);
      const at = (name: string) => report.checks.findIndex((c) => c.name === name && c.tenant === t);
      assert.ok(at('dump-integrity') > at('restore-database'), `${t}: dump-integrity is reported by the restore`);
      assert.match(dumpChecks[0]!.message, /decrypted and decompressed \(\d+ bytes\), \d+ archive entries, \d+ tables with data/);
    }
    assert.equal(report.restores.length, 2);
    for (const r of report.restores) assert.ok(r.databaseMs > 0 && r.secondsPerGiB > 0);
    assert.ok(report.reportPath && existsSync(report.reportPath), 'the report is kept under DR_LOG_DIR');
    const leftovers = (await adminQuery('SELECT datname FROM pg_database WHERE datname LIKE $1', [`%_dr_test_%`])) as Array<{ datname: string }>;
    assert.deepEqual(
      leftovers.filter((d) => d.datname.startsWith(tenant) || d.datname.startsWith(real)),
      [],
      'scratch copies are dropped',
    );
  });

  it('validates one tenant only when asked', async () => {
    const report = await validate(good.config, { session: good.session, tenant: real });
    assert.equal(report.status, 'pass');
    assert.ok(report.checks.filter((c) => c.tenant).every((c) => c.tenant === real));
  });

  it('a bit flipped in an encrypted dump fails, naming the dump', async () => {
    const { config, session } = await freshSession();
    flipByte(localPath(config.backupDir, rel.database(session, tenant)));
    const report = await validate(config, { session });
    assert.equal(report.status, 'fail');
    const bad = failed(report);
    assert.ok(
      bad.some((c) => c.name === 'artifact-local' && c.message.includes('database.dump.zst.age')),
      JSON.stringify(bad),
    );
    // The bytes no longer hash to the (signed) manifest's SHA-256: refused before decryption is tried.
    assert.ok(
      bad.some((c) => c.name === 'dump-integrity' && /database\.dump\.zst\.age has SHA-256 \w+, the manifest says/.test(c.message)),
      JSON.stringify(bad),
    );
  });

  it('a truncated dump fails, naming the dump', async () => {
    const { config, session } = await freshSession();
    const dump = localPath(config.backupDir, rel.database(session, tenant));
    truncateSync(dump, Math.floor(statSync(dump).size * 0.6));
    const report = await validate(config, { session });
    assert.ok(failed(report).some((c) => c.name === 'dump-integrity' && c.message.includes('database.dump.zst.age')));
  });

  it('a damaged pack and a missing pack both fail, naming the files they held', async () => {
    const { config, session } = await freshSession();
    const entries = [];
    for await (const e of readFilestoreIndex(localPath(config.backupDir, rel.filestoreIndex(session, tenant)))) entries.push(e);
    const pack = localPath(config.backupDir, rel.pack(entries[0]!.pack!));
    flipByte(pack);
    const damaged = failed(await validate(config, { session })).find((c) => c.name === 'filestore-blobs');
    assert.ok(damaged, 'a flipped byte in a pack fails the filestore check');
    assert.match(damaged.message, new RegExp(`${entries[0]!.path}: pack ${rel.pack(entries[0]!.pack!)} cannot be read \\(.*fails authentication`));
    unlinkSync(pack);
    const missing = failed(await validate(config, { session })).find((c) => c.name === 'filestore-blobs');
    assert.ok(missing, 'a missing pack fails the filestore check');
    assert.match(missing.message, new RegExp(`${entries[0]!.path}: pack .* is missing`));
  });

  it('a manifest edited after the fact fails', async () => {
    const { config, session } = await freshSession();
    const file = localPath(config.backupDir, rel.manifest(session));
    writeFileSync(
      file,
      readFileSync(file, 'utf8')
        .replace('"status": "complete"', '"status": "complete" ')
        .replace(/"files": (\d+)/, (_m, n: string) => `"files": ${Number(n) + 1}`),
    );
    const report = await validate(config, { session });
    assert.equal(report.status, 'fail');
    // Caught by the signature before the self-checksum is even read.
    assert.match(failed(report)[0]!.message, /manifest\.json: the signature by SHA256:\S+ does not match: the manifest was changed after it was signed/);
  });

  it('the wrong private key fails the decryption checks, never passes', async () => {
    const { session, dir } = await freshSession();
    const otherKey = path.join(dir, 'other.key');
    execFileSync('age-keygen', ['-o', otherKey], { stdio: 'ignore' });
    const wrongKey = configFor(dir, { DR_ENCRYPTION_KEY_FILE: otherKey });
    const report = await validate(wrongKey, { session });
    assert.equal(report.status, 'fail');
    assert.ok(failed(report).some((c) => c.name === 'dump-integrity' && /cannot be decrypted/.test(c.message)));
    assert.ok(failed(report).some((c) => c.name === 'filestore-blobs'));
    // With a restore test, both come from the restore (which stops before reading the dump: checked on its own).
    const restored = await validate(wrongKey, { session, restoreTest: true });
    assert.equal(restored.status, 'fail');
    const dumpChecks = restored.checks.filter((c) => c.name === 'dump-integrity');
    assert.ok(dumpChecks.length > 0 && dumpChecks.every((c) => c.status === 'fail' && /cannot be decrypted/.test(c.message)), JSON.stringify(dumpChecks));
    const at = (name: string) => restored.checks.findIndex((c) => c.name === name);
    assert.ok(at('dump-integrity') > at('restore-database'), 'dump-integrity is reported by the restore test');
    assert.ok(failed(restored).some((c) => c.name === 'filestore-blobs'));
  });

  it('a session still in progress fails: no manifest yet', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-val-inprogress-'));
    const config = configFor(dir);
    const session = backupSessionName(new Date(), uniqueSuffix());
    mkdirSync(localPath(dir, rel.session(session)), { recursive: true });
    writeFileSync(path.join(localPath(dir, rel.session(session)), '.incomplete'), '{}');
    const report = await validate(config, { session });
    assert.equal(report.status, 'fail');
    assert.match(failed(report)[0]!.message, /has no manifest in .*: it is still in progress, or it crashed/);
  });

  it('removes scratch copies a dead restore left behind, and leaves production tenants untouched', async () => {
    // What a worker killed during a restore test leaves: a marked scratch database, older than the limit.
    const leftover = scratchName(good.config, tenant, 'dead0001');
    await adminQuery(`CREATE DATABASE "${leftover}"`);
    await markScratch(good.config, leftover, { tenant, purpose: 'restore-test', createdAt: new Date(Date.now() - 48 * 3600_000).toISOString() });
    const psqlEnv = {
      ...process.env,
      PGHOST: '127.0.0.1',
      PGPORT: String(good.config.postgres.port),
      PGUSER: 'postgres',
      PGPASSWORD: good.config.postgres.password,
    };
    const count = () => execFileSync('psql', ['-Atc', 'SELECT count(*) FROM account_move_line', `--dbname=${tenant}`], { env: psqlEnv }).toString();
    const countsBefore = count();
    const report = await validate(good.config, { session: good.session, tenant, restoreTest: true });
    assert.equal(report.status, 'pass');
    const dbs = (await adminQuery('SELECT datname FROM pg_database')) as Array<{ datname: string }>;
    assert.ok(!dbs.some((d) => d.datname === leftover), 'the leftover scratch database was swept');
    assert.ok(dbs.some((d) => d.datname === tenant) && dbs.some((d) => d.datname === real), 'production tenants are still there');
    assert.equal(count(), countsBefore);
  });

  it('a restore-only drill reports achieved RPO, restore time and the projected fleet RTO; -c restores from the bucket', async () => {
    const env = await devServer();
    for (const cloud of [false, true]) {
      const report = await withWorker({ env, config: good.config }, (taskQueue) =>
        env.client.workflow.execute(drillWorkflow, {
          taskQueue,
          workflowId: `test/drill/${uniqueSuffix()}`,
          args: [{ mode: 'restore-only', cloud, tenants: [real] }],
        }),
      );
      assert.equal(report.status, 'pass', JSON.stringify(report, null, 2));
      assert.equal(report.session, good.session);
      const t = report.tenants.find((x) => x.tenant === real)!;
      assert.ok(t.achievedRpoHours !== undefined && t.achievedRpoHours < 1);
      assert.ok(t.restore && t.restore.databaseMs > 0);
      assert.ok(report.projectedRto && report.projectedRto.minutes > 0 && report.projectedRto.pass);
      assert.equal(report.projectedRto.targetMinutes, 120);
      assert.ok(report.reportPath && existsSync(report.reportPath));
    }
    const drills = readdirSync(path.join(good.dir, 'logs')).filter((f) => f.startsWith('drill-restore-only-'));
    assert.equal(drills.length, 2, 'each drill report is kept as JSON under logs/');
  });

  it('validation-only and backup-only drills: no restore, and backup-only makes a new verified session', async () => {
    const env = await devServer();
    const run = (mode: 'validation-only' | 'backup-only') =>
      withWorker({ env, config: good.config }, (taskQueue) =>
        env.client.workflow.execute(drillWorkflow, { taskQueue, workflowId: `test/drill-${mode}/${uniqueSuffix()}`, args: [{ mode, tenants: [real] }] }),
      );
    const validation = await run('validation-only');
    assert.equal(validation.status, 'pass', JSON.stringify(validation, null, 2));
    assert.equal(validation.projectedRto, undefined, 'nothing was restored, so no RTO is projected');
    assert.ok(validation.checks.some((c) => c.name === 'dump-integrity' && c.tenant === real && c.status === 'pass'));
    assert.ok(!validation.checks.some((c) => c.name === 'restore-database'));
    const backupOnly = await run('backup-only');
    assert.equal(backupOnly.status, 'pass');
    assert.equal(backupOnly.backup?.status, 'complete');
    assert.notEqual(backupOnly.session, good.session);
    assert.equal(backupOnly.checks.length, 0);
    assert.ok(backupOnly.tenants.find((t) => t.tenant === real)!.achievedRpoHours! < 0.1);
  });
});
