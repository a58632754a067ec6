import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { localPath, rel } from '../../src/backup/layout';
import { cloudKey, deleteObjects, listObjects } from '../../src/storage/s3';
import type { DrillReport } from '../../workflows/drill';
import type { ValidationReport } from '../../workflows/validation';
import { createTenant, dropTenant, type PgAdminConnection } from '../fixtures/odoo-tenants';
import { runCli as cli, startCliWorker, type CliRun } from '../helpers/cli';
import { stackConfig, uniqueSuffix } from '../helpers/config';
import { flipByte } from '../helpers/files';

describe('odoo-dr validate and drill (CLI, worker process)', function () {
  this.timeout(600_000);
  const s = uniqueSuffix();
  const tenant = `cli-val-${s}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-cli-val-'));
  const prefix = `test-cli-val-${s}`;
  const taskQueue = `cli-val-${s}`;
  const env = { DR_BACKUP_DIR: dir, DR_LOG_DIR: path.join(dir, 'logs'), DR_CLOUD_BUCKET: `s3://odoo-dr-local/${prefix}`, DR_TASK_QUEUE: taskQueue };
  const config = stackConfig(env);
  let worker: CliRun;

  before(async () => {
    const { host, port, user, password } = config.postgres;
    const admin: PgAdminConnection = { host, port, user, ...(password ? { password } : {}) };
    await createTenant(admin, config.odoo.dataDir, { name: tenant, moveLines: 300, files: 4 });
    worker = await startCliWorker(env);
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

  let session = '';

  it('`drill -m full -c` backs up, validates and restores from the bucket; exit 0 and the report as JSON', async () => {
    const { result } = cli(['--json', 'drill', '-m', 'full', '-c', '--tenant', tenant, '--wait'], env);
    const r = await result;
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const report = JSON.parse(r.stdout) as DrillReport;
    assert.equal(report.status, 'pass');
    assert.equal(report.mode, 'full');
    assert.equal(report.cloud, true);
    assert.equal(report.backup?.status, 'complete');
    session = report.session!;
    const t = report.tenants.find((x) => x.tenant === tenant)!;
    assert.equal(t.status, 'pass');
    assert.ok(t.restore && t.restore.databaseMs > 0, 'restore measured');
    assert.ok(report.checks.some((c) => c.name === 'artifact-cloud' && c.status === 'pass'));
    assert.ok(report.projectedRto?.pass);
  });

  it('`validate SESSION --wait` exits 0 on a good session and prints the checks', async () => {
    const r = await cli(['validate', session, '--wait'], env).result;
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, new RegExp(`validation of ${session}: PASS`));
    assert.match(r.stdout, /PASS\s+dump-integrity/);
  });

  it('`validate` exits 1 when a check fails, and the JSON names the damaged artifact', async () => {
    const dump = localPath(dir, rel.database(session, tenant));
    flipByte(dump);
    const r = await cli(['--json', 'validate', session, '--tenant', tenant, '--wait'], env).result;
    assert.equal(r.code, 1, r.stderr);
    const report = JSON.parse(r.stdout) as ValidationReport;
    const failed = report.checks.filter((c) => c.status === 'fail');
    assert.ok(failed.length > 0);
    assert.ok(
      failed.every((c) => (c.artifact ?? c.message).includes('database.dump.zst.age')),
      JSON.stringify(failed),
    );
    // The cloud copy of the same dump is intact.
    assert.ok(
      report.checks.some(
        (c) => c.name === 'artifact-cloud' && c.status === 'pass' && c.message.includes(cloudKey(config.cloud!, rel.database(session, tenant))),
      ),
    );
  });

  it('`drill` refuses an unknown mode with exit code 2', async () => {
    const r = await cli(['drill', '-m', 'sometimes'], env).result;
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--mode must be one of full, backup-only, restore-only, validation-only, got "sometimes"/);
  });
});
