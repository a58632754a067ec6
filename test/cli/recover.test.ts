import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { withClient } from '../../src/postgres';
import type { RecoveryResult } from '../../workflows/recovery';
import { createTenant, dropTenant, type PgAdminConnection } from '../fixtures/odoo-tenants';
import { runCli as cli, startCliWorker, workflowIdOf, type CliRun } from '../helpers/cli';
import { stackConfig, uniqueSuffix } from '../helpers/config';
import { adminConnection } from '../helpers/pg';

describe('odoo-dr recover (CLI, worker process)', function () {
  this.timeout(600_000);
  const s = uniqueSuffix();
  const tenant = `cli-rc-${s}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-cli-rc-'));
  const dataDir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-cli-rc-data-'));
  const taskQueue = `cli-rc-${s}`;
  const env = { DR_BACKUP_DIR: dir, DR_LOG_DIR: path.join(dir, 'logs'), ODOO_DATA_DIR: dataDir, DR_TASK_QUEUE: taskQueue };
  const config = stackConfig(env);
  let worker: CliRun;
  const admin = (): PgAdminConnection => adminConnection(config);
  const rows = () =>
    withClient(config.postgres, tenant, async (c) => Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM account_move_line')).rows[0]!.n));

  before(async () => {
    await createTenant(admin(), dataDir, { name: tenant, moveLines: 400, files: 3 });
    worker = await startCliWorker(env);
    const backup = await cli(['backup', '--tenant', tenant, '--no-cloud', '--wait'], env).result;
    assert.equal(backup.code, 0, backup.stdout + backup.stderr);
    await withClient(config.postgres, tenant, (c) => c.query('DELETE FROM account_move_line WHERE id > 100'));
  });
  after(async () => {
    worker.child.kill('SIGTERM');
    await worker.result;
    await dropTenant(admin(), dataDir, tenant);
  });

  it('`recover -t` prints the plan and changes nothing', async () => {
    const r = await cli(['recover', '-m', 'database-only', '--tenant', tenant, '-t'], env).result;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /recovery: planned/);
    assert.match(r.stdout, new RegExp(`${tenant}: dump .* files`));
    assert.match(r.stdout, /- restore the dump into a shadow database/);
    assert.match(r.stdout, /space for shadow databases in .*: need/);
    assert.equal(await rows(), 100);
  });

  it('`recover` waits for `recover approve`, `recover status` shows the plan, and the tenant comes back', async () => {
    const run = cli(['--json', 'recover', '-m', 'database-only', '--tenant', tenant, '--wait'], env);
    const id = await workflowIdOf(run, 'recovery/');
    assert.ok(id, 'the CLI printed the workflow id');
    let status = { code: 1 as number | null, stdout: '', stderr: '' };
    for (let i = 0; i < 100; i++) {
      status = await cli(['--json', 'recover', 'status', id], env).result;
      if (status.code === 0 && (JSON.parse(status.stdout) as { state: string }).state === 'waiting-for-approval') break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal((JSON.parse(status.stdout) as { state: string; plan: { tenants: Array<{ tenant: string }> } }).plan.tenants[0]!.tenant, tenant);
    assert.equal(await rows(), 100, 'nothing changes before the approval');
    const approve = await cli(['recover', 'approve', id], env).result;
    assert.equal(approve.code, 0, approve.stderr);
    assert.match(approve.stdout, new RegExp(`approved ${id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} as \\S+@\\S+`));
    const done = await run.result;
    assert.equal(done.code, 0, done.stderr);
    const result = JSON.parse(done.stdout) as RecoveryResult;
    assert.equal(result.state, 'done');
    assert.equal(result.tenants[tenant]?.state, 'recovered');
    assert.equal(await rows(), 400, 'the deleted rows are back');
  });

  it('`recover reject` ends a recovery without changes, exit 1', async () => {
    await withClient(config.postgres, tenant, (c) => c.query('DELETE FROM account_move_line WHERE id > 200'));
    const run = cli(['recover', '-m', 'database-only', '--tenant', tenant, '--wait'], env);
    const id = await workflowIdOf(run, 'recovery/');
    for (let i = 0; i < 100; i++) {
      const st = await cli(['--json', 'recover', 'status', id], env).result;
      if (st.code === 0 && (JSON.parse(st.stdout) as { state: string }).state === 'waiting-for-approval') break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const reject = await cli(['--json', 'recover', 'reject', id, '--reason', 'not now'], env).result;
    assert.equal(reject.code, 0, reject.stderr);
    const sent = JSON.parse(reject.stdout) as { workflowId: string; signal: string; by: string; reason?: string };
    assert.deepEqual({ ...sent, by: undefined }, { workflowId: id, signal: 'reject', by: undefined, reason: 'not now' });
    assert.match(sent.by, /\S+@\S+/);
    const done = await run.result;
    assert.equal(done.code, 1);
    assert.match(done.stdout, /recovery: rejected \(rejected by \S+\)/);
    assert.equal(await rows(), 200);
  });

  it('refuses an unknown mode and an unknown session with clear errors', async () => {
    const mode = await cli(['recover', '-m', 'everything'], env).result;
    assert.equal(mode.code, 2);
    assert.match(mode.stderr, /--mode must be one of full, database-only, files-only, config-only, got "everything"/);
    const session = await cli(['recover', '-s', 'backup_20200101_000000_nothere', '--tenant', tenant, '-t'], env).result;
    assert.equal(session.code, 1);
    assert.match(session.stderr, /session backup_20200101_000000_nothere does not exist in .* nor in s3:\/\//);
  });
});
