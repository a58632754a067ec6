/**
 * Fault cases: work that overlaps. Two backups writing the same blobs at once (two tenants with
 * identical attachments, each in its own session, with a cloud copy), and two workers.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createTenant, dropTenant, type PgAdminConnection } from '../fixtures/odoo-tenants';
import { runCli, startCliWorker, type CliRun } from '../helpers/cli';
import { stackConfig, uniqueSuffix } from '../helpers/config';
import { leftovers } from './measure';
import { recordFault } from './table';
import { adminConnection } from '../helpers/pg';
import { testBucketUrl } from '../helpers/bucket';

describe('faults: overlapping backups', function () {
  this.timeout(600_000);
  const s = uniqueSuffix();
  const tenants = [`fc-a-${s}`, `fc-b-${s}`];
  let work = '';
  let env: Record<string, string> = {};
  const workers: CliRun[] = [];
  const admin = (): PgAdminConnection => adminConnection(stackConfig(env));

  before(async function () {
    this.timeout(300_000);
    work = mkdtempSync(path.join(tmpdir(), 'odoo-dr-fault-conc-'));
    env = {
      DR_BACKUP_DIR: path.join(work, 'backups'),
      DR_LOG_DIR: path.join(work, 'logs'),
      ODOO_DATA_DIR: path.join(work, 'odoo-data'),
      DR_TASK_QUEUE: `fault-conc-${s}`,
      DR_CLOUD_BUCKET: testBucketUrl(`faults-conc-${s}`, { exact: true }),
    };
    // The same seed: the same attachments, so both backups store and upload the same blobs.
    for (const name of tenants) await createTenant(admin(), path.join(work, 'odoo-data'), { name, moveLines: 2_000, files: 400, fileSize: 6_000, seed: 4242 });
    // Two workers on one queue: the two backups run at the same time in two processes.
    workers.push(await startCliWorker(env), await startCliWorker(env));
  });
  after(async function () {
    this.timeout(120_000);
    for (const w of workers) w.child.kill('SIGTERM');
    await Promise.all(workers.map((w) => w.result));
    for (const t of tenants) await dropTenant(admin(), path.join(work, 'odoo-data'), t).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  });

  it('two backups storing and uploading the same blobs at once: both complete, and each session validates from the bucket alone (every blob decrypted)', async () => {
    const runs = tenants.map((t) => runCli(['--json', 'backup', '--tenant', t, '--wait'], env));
    const done = await Promise.all(runs.map((r) => r.result));
    const sessions = done.map((d) => {
      assert.equal(d.code, 0, d.out);
      const r = JSON.parse(d.stdout.slice(d.stdout.indexOf('{'))) as { session: string; status: string };
      assert.equal(r.status, 'complete', d.out);
      return r.session;
    });
    let lost = 0;
    for (const [i, session] of sessions.entries()) {
      const v = await runCli(['--json', 'validate', session, '-c', '--tenant', tenants[i]!, '--restore-test', '--wait'], env).result;
      if (v.code !== 0) lost++;
      assert.equal(v.code, 0, v.out);
    }
    const left = [...(await leftovers(stackConfig(env), tenants[0]!)), ...(await leftovers(stackConfig(env), tenants[1]!))];
    assert.deepEqual(left, []);
    recordFault({
      fault: 'two backups storing and uploading the same blobs at once (two workers)',
      outcome: 'both sessions complete; each validates from the bucket with a restore test',
      dataLost: lost,
      leftovers: left,
    });
  });
});
