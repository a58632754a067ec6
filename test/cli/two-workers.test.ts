/**
 * Any number of workers, on any hosts: two `odoo-dr worker` processes with different DR_BACKUP_DIRs
 * (two hosts that share nothing but the bucket) serve one task queue. A fleet backup with its cloud
 * copy completes and verifies; with one of the workers killed mid-backup, the session still
 * completes (the other worker starts the dead one's tenant over) and validates from the bucket.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { BackupResult } from '../../workflows/backup';
import { backupSessionName } from '../../workflows/definitions';
import type { ValidationReport } from '../../workflows/validation';
import { createTenant, dropTenant, type PgAdminConnection } from '../fixtures/odoo-tenants';
import { pendingTenantsOf } from '../helpers/backup-activities';
import { runCli, startCliWorker, type CliRun } from '../helpers/cli';
import { stackConfig, uniqueSuffix } from '../helpers/config';
import { devServer } from '../helpers/temporal';
import { adminConnection } from '../helpers/pg';
import { testBucketUrl } from '../helpers/bucket';

function json<T>(out: string): T {
  return JSON.parse(out.slice(out.indexOf('{'))) as T;
}

describe('two workers on two hosts (different DR_BACKUP_DIRs, one task queue)', function () {
  this.timeout(600_000);
  const s = uniqueSuffix();
  const data = mkdtempSync('/var/tmp/odoo-dr-2w-data-');
  const hostA = mkdtempSync('/var/tmp/odoo-dr-2w-a-');
  const hostB = mkdtempSync('/var/tmp/odoo-dr-2w-b-');
  const tenants = [`tw-big-${s}`, `tw-a-${s}`, `tw-b-${s}`, `tw-c-${s}`];
  const common = { ODOO_DATA_DIR: data, DR_TASK_QUEUE: `two-${s}`, DR_CLOUD_BUCKET: testBucketUrl(`two-${s}`, { exact: true }), DR_MAX_PARALLEL_BACKUPS: '2' };
  const envA = { ...common, DR_BACKUP_DIR: hostA, DR_LOG_DIR: path.join(hostA, 'logs') };
  const envB = { ...common, DR_BACKUP_DIR: hostB, DR_LOG_DIR: path.join(hostB, 'logs') };
  const config = stackConfig(envA);
  const admin = (): PgAdminConnection => adminConnection(config);
  let a: CliRun | undefined;
  let b: CliRun | undefined;
  const stop = async (w: CliRun | undefined, signal: NodeJS.Signals = 'SIGTERM') => {
    if (w && w.child.exitCode === null && w.child.signalCode === null) w.child.kill(signal);
    await w?.result;
  };

  before(async () => {
    await createTenant(admin(), data, { name: tenants[0]!, moveLines: 60_000, files: 4 });
    for (const t of tenants.slice(1)) await createTenant(admin(), data, { name: t, moveLines: 200, files: 3 });
  });
  after(async () => {
    await stop(a);
    await stop(b);
    for (const t of tenants) await dropTenant(admin(), data, t).catch(() => undefined);
    for (const d of [data, hostA, hostB]) rmSync(d, { recursive: true, force: true });
  });

  it('a fleet backup served by both workers completes, and validates from the bucket', async () => {
    a = await startCliWorker(envA);
    b = await startCliWorker(envB);
    const run = await runCli(['--json', 'backup', '--wait', '--tenant', ...tenants], envA).result;
    assert.equal(run.code, 0, run.out);
    const result = json<BackupResult>(run.out);
    assert.equal(result.status, 'complete', run.out);
    const check = await runCli(['--json', 'validate', result.session, '-c', '--wait'], envB).result;
    assert.equal(check.code, 0, check.out);
    assert.equal(json<ValidationReport>(check.out).status, 'pass');
  });

  it('one worker killed mid-backup: the session still completes, and validates from the bucket', async () => {
    await stop(a);
    await stop(b);
    // Worker A alone at first (which worker a task goes to is Temporal's choice), uploading slowly, so
    // that it surely holds a tenant when it is killed; worker B joins before that.
    a = await startCliWorker({ ...envA, DR_BANDWIDTH_LIMIT: '1M' });
    const env = await devServer();
    const client: Client = env.client;
    const session = backupSessionName(new Date(), uniqueSuffix());
    const handle = await client.workflow.start('backupWorkflow', {
      taskQueue: common.DR_TASK_QUEUE,
      workflowId: `test/two/${session}`,
      args: [{ session, tenants, startedBy: 'test' }],
    });
    const identityA = `${a.child.pid}@`;
    let heldByA = '';
    for (let i = 0; i < 600 && !heldByA; i++) {
      // A tenant's own activity, or the tenant in progress in a batch of small ones (once it heartbeated).
      const pending = await pendingTenantsOf(client, handle.workflowId).catch(() => []);
      heldByA = pending.find((p) => p.activity.worker?.startsWith(identityA))?.tenant ?? '';
      if (!heldByA) await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(heldByA, 'worker A took a tenant');
    b = await startCliWorker(envB);
    await stop(a, 'SIGKILL');
    a = undefined;
    const result = (await handle.result()) as BackupResult;
    assert.equal(result.status, 'complete', JSON.stringify(result));
    assert.equal(result.tenants.find((t) => t.tenant === heldByA)?.status, 'complete');
    const check = await runCli(['--json', 'validate', session, '-c', '--wait'], envB).result;
    assert.equal(check.code, 0, check.out);
    assert.equal(json<ValidationReport>(check.out).status, 'pass');
  });
});
