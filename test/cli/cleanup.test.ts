/**
 * `odoo-dr cleanup` as operators run it (CLI and worker processes, real PostgreSQL, S3, Temporal):
 * what it reports, what it deletes (an old crashed session, an orphan pack, old logs), what it keeps
 * (the newest session, the status report), the audit log rotated by date, and one audit line.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { localPath, rel } from '../../src/backup/layout';
import { deleteObjects, listObjects } from '../../src/storage/s3';
import type { RetentionReport } from '../../workflows/retention';
import { createTenant, dropTenant, type PgAdminConnection } from '../fixtures/odoo-tenants';
import { runCli as cli, startCliWorker, type CliRun } from '../helpers/cli';
import { stackConfig, uniqueSuffix } from '../helpers/config';

describe('odoo-dr cleanup (CLI, worker process)', function () {
  this.timeout(600_000);
  const s = uniqueSuffix();
  const tenant = `cli-ret-${s}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-cli-ret-'));
  const logs = path.join(dir, 'logs');
  const prefix = `test-cli-ret-${s}`;
  const env = {
    DR_BACKUP_DIR: dir,
    DR_LOG_DIR: logs,
    DR_CLOUD_BUCKET: `s3://odoo-dr-local/${prefix}`,
    DR_TASK_QUEUE: `cli-ret-${s}`,
    // The shared cluster's scratch and pre-recovery databases are other people's: never old enough here.
    DR_TEST_RETENTION_HOURS: '720',
    DR_PRE_RECOVERY_RETENTION_DAYS: '3650',
  };
  const config = stackConfig(env);
  const crashed = `backup_20200101_020000_crash${s}`;
  const old = new Date(Date.now() - 40 * 86_400_000);
  let worker: CliRun;
  let orphan = '';
  let session = '';

  before(async () => {
    const { host, port, user, password } = config.postgres;
    const admin: PgAdminConnection = { host, port, user, ...(password ? { password } : {}) };
    await createTenant(admin, config.odoo.dataDir, { name: tenant, moveLines: 100, files: 4 });
    // An audit log begun on an earlier day, a drill report and the status report from long ago.
    mkdirSync(logs, { recursive: true });
    writeFileSync(
      path.join(logs, 'audit.jsonl'),
      `${JSON.stringify({ at: '2020-01-01T00:00:00.000Z', action: 'backup', startedBy: 'seed', workflowId: 'x', result: 'complete' })}\n`,
    );
    writeFileSync(path.join(logs, 'drill-20200101.json'), '{}\n');
    writeFileSync(path.join(logs, 'dr-status.json'), '{}\n');
    for (const f of ['drill-20200101.json', 'dr-status.json']) utimesSync(path.join(logs, f), old, old);
    worker = await startCliWorker(env);
    const backup = await cli(['--json', 'backup', '--tenant', tenant, '--wait'], env).result;
    assert.equal(backup.code, 0, backup.out);
    session = (JSON.parse(backup.stdout) as { session: string }).session;
    // A session that crashed in 2020 (no manifest) and a pack nothing lists, both untouched for long.
    const crashDir = localPath(dir, `${rel.session(crashed)}/tenants/${tenant}`);
    mkdirSync(crashDir, { recursive: true });
    writeFileSync(path.join(crashDir, 'database.dump.zst.age'), randomBytes(2048));
    for (const d of [crashDir, path.dirname(crashDir), localPath(dir, rel.session(crashed))]) utimesSync(d, old, old);
    utimesSync(path.join(crashDir, 'database.dump.zst.age'), old, old);
    const bytes = randomBytes(4096);
    orphan = localPath(dir, rel.pack(createHash('sha256').update(bytes).digest('hex')));
    mkdirSync(path.dirname(orphan), { recursive: true });
    writeFileSync(orphan, bytes);
    utimesSync(orphan, old, old);
  });
  after(async () => {
    worker.child.kill('SIGTERM');
    await worker.result;
    const { host, port, user, password } = config.postgres;
    await dropTenant({ host, port, user, ...(password ? { password } : {}) }, config.odoo.dataDir, tenant);
    const keys: string[] = [];
    for await (const o of listObjects(config.cloud!, `${prefix}/`)) keys.push(o.key);
    if (keys.length) await deleteObjects(config.cloud!, keys);
  });

  let dry: RetentionReport;

  it('`--json cleanup --dry-run --wait` reports what would go and deletes nothing', async () => {
    const r = await cli(['--json', 'cleanup', '--dry-run', '--wait'], env).result;
    assert.equal(r.code, 0, r.out);
    dry = JSON.parse(r.stdout) as RetentionReport;
    assert.equal(dry.dryRun, true);
    assert.equal(dry.status, 'ok', JSON.stringify(dry.errors));
    assert.deepEqual(dry.local!.sessionsDeleted, [crashed]);
    assert.equal(dry.local!.sessionBytes, 2048);
    assert.equal(dry.local!.collection.packsDeleted, 1);
    assert.equal(dry.local!.collection.bytesFreed, 4096);
    assert.deepEqual(dry.cloud!.sessionsDeleted, []);
    assert.equal(dry.cloud!.collection.packsDeleted, 0, "every pack in the bucket is the session's");
    assert.deepEqual(dry.leftovers!.logs.deleted, ['drill-20200101.json']);
    assert.match(dry.leftovers!.logs.auditRotatedTo ?? '', /^audit-\d{8}\.jsonl$/);
    assert.ok(existsSync(orphan) && existsSync(localPath(dir, rel.session(crashed))), 'nothing deleted');
    assert.ok(existsSync(path.join(logs, 'drill-20200101.json')));
    assert.match(readFileSync(path.join(logs, 'audit.jsonl'), 'utf8'), /^\{"at":"2020-01-01/, 'the audit log is not rotated by a dry run');
  });

  it('`cleanup --wait` deletes the same, prints it, keeps the newest session and the status report, rotates the audit log', async () => {
    const r = await cli(['cleanup', '--wait'], env).result;
    assert.equal(r.code, 0, r.out);
    assert.match(r.stdout, /^retention: OK, deleted 6\.0 KiB/m);
    assert.match(r.stdout, new RegExp(`local: deleted ${crashed}`));
    assert.match(r.stdout, /^local +1 +1 +1 +6\.0 KiB/m);
    assert.match(r.stdout, /log deleted: drill-20200101\.json/);
    assert.ok(!existsSync(orphan), 'the orphan pack is gone');
    assert.ok(!existsSync(localPath(dir, rel.session(crashed))), 'the crashed session is gone');
    assert.ok(existsSync(localPath(dir, rel.manifest(session))), 'the newest session stays');
    assert.ok(existsSync(path.join(logs, 'dr-status.json')), 'the status report is never rotated away');
    const rotated = readdirSync(logs).filter((f) => /^audit-\d{8}\.jsonl$/.test(f));
    assert.equal(rotated.length, 1);
    const rotatedText = readFileSync(path.join(logs, rotated[0]!), 'utf8');
    assert.match(rotatedText, /"startedBy":"seed"/, 'the old lines are in the rotated file');
    assert.match(rotatedText, /"action":"retention \(dry run\)"/, 'the dry run has its audit line too');
    // The run's own audit line, in the new audit log.
    const lines = readFileSync(path.join(logs, 'audit.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const line = lines.find((l) => l.action === 'retention');
    assert.ok(line, readFileSync(path.join(logs, 'audit.jsonl'), 'utf8'));
    assert.equal(line.result, 'ok');
    assert.match(String(line.workflowId), /^retention\//);
    assert.match(String(line.startedBy), /@/);
    assert.deepEqual(line.local, { sessions: 1, packs: 1, blobs: 0 });
    assert.equal(line.bytesFreed, dry.bytesFreed, 'the dry run reported the same figures');
  });

  it('`--json cleanup --no-cloud --wait` leaves the bucket alone; a second run finds nothing to delete', async () => {
    const r = await cli(['--json', 'cleanup', '--no-cloud', '--wait'], env).result;
    assert.equal(r.code, 0, r.out);
    const report = JSON.parse(r.stdout) as RetentionReport;
    assert.equal(report.cloud, null);
    assert.deepEqual(report.local!.sessionsDeleted, []);
    assert.equal(report.local!.collection.packsDeleted, 0);
    assert.equal(report.bytesFreed, 0);
  });
});
