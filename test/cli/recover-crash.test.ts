import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { withClient } from '../../src/postgres';
import type { RecoveryResult, RecoveryStatus } from '../../workflows/recovery';
import { recoveryStatusQuery } from '../../workflows/definitions';
import { createTenant, dropTenant, type PgAdminConnection } from '../fixtures/odoo-tenants';
import { runCli as cli, startCliWorker as startWorker, workflowIdOf } from '../helpers/cli';
import { stackConfig, uniqueSuffix } from '../helpers/config';
import { adminQuery, adminConnection, restoreUnderWay } from '../helpers/pg';
import { devServer } from '../helpers/temporal';

describe('recovery survives a worker killed mid-restore', function () {
  this.timeout(600_000);
  const s = uniqueSuffix();
  const tenant = `crash-rc-${s}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-crash-rc-'));
  const dataDir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-crash-rc-data-'));
  const env = { DR_BACKUP_DIR: dir, DR_LOG_DIR: path.join(dir, 'logs'), ODOO_DATA_DIR: dataDir, DR_TASK_QUEUE: `crash-rc-${s}` };
  const config = stackConfig(env);
  const admin = (): PgAdminConnection => adminConnection(config);
  const count = () =>
    withClient(config.postgres, tenant, async (c) => Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM account_move_line')).rows[0]!.n));

  after(async () => {
    await dropTenant(admin(), dataDir, tenant);
    const rest = (await adminQuery('SELECT datname FROM pg_database WHERE datname LIKE $1', [`${tenant}%`])) as Array<{ datname: string }>;
    for (const r of rest) await adminQuery(`DROP DATABASE "${r.datname}" WITH (FORCE)`);
  });

  it('SIGKILL during the shadow restore: the next worker redoes the shadow and completes the recovery', async () => {
    // Big enough that its restore takes seconds.
    await createTenant(admin(), dataDir, { name: tenant, moveLines: 1_000_000, files: 5 });
    let worker = await startWorker(env);
    const backup = await cli(['backup', '--tenant', tenant, '--no-cloud', '--wait'], env).result;
    assert.equal(backup.code, 0, backup.out);
    await withClient(config.postgres, tenant, (c) => c.query('DELETE FROM account_move_line WHERE id > 500000'));

    const run = cli(['--json', 'recover', '-m', 'database-only', '--tenant', tenant, '--yes', '--wait'], env);
    const id = await workflowIdOf(run, 'recovery/');
    const client = (await devServer()).client;
    assert.ok(id, 'the recovery started');
    const handle = client.workflow.getHandle(id);
    let state: RecoveryStatus | undefined;
    for (let i = 0; i < 600; i++) {
      state = await handle.query(recoveryStatusQuery).catch(() => undefined);
      if (state?.tenants[tenant]?.state === 'restoring-shadow') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(state?.tenants[tenant]?.state, 'restoring-shadow');
    // Killed once the shadow's tables exist: the restore is under way, its data not yet loaded.
    for (let i = 0; i < 1200 && !(await restoreUnderWay(`${tenant}\\_dr\\_shadow\\_%`, 'account_move_line')); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(await restoreUnderWay(`${tenant}\\_dr\\_shadow\\_%`, 'account_move_line'), 'the shadow restore started within a minute');
    worker.child.kill('SIGKILL');
    await worker.result;
    assert.equal(await count(), 500_000, 'the tenant is untouched while the shadow is being restored');
    worker = await startWorker(env);
    try {
      const done = await run.result;
      const result = JSON.parse(done.out.slice(done.out.indexOf('{'))) as RecoveryResult;
      assert.equal(result.tenants[tenant]?.state, 'recovered', done.out);
      assert.equal(await count(), 1_000_000, 'every row is back');
      const shadows = await adminQuery('SELECT datname FROM pg_database WHERE datname LIKE $1', [`${tenant}_dr_shadow_%`]);
      assert.deepEqual(shadows, [], 'the half-done shadow of the dead worker was redone, not left behind');
    } finally {
      worker.child.kill('SIGTERM');
      await worker.result;
    }
  });
});
