/**
 * Fault cases: the worker process SIGKILLed at each phase of a backup, a validation and a recovery;
 * a new worker takes over. Each case measures the tenant's data (every table, every filestore
 * file) against what it was, and what was left behind.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { withClient } from '../../src/postgres';
import { createTenant, dropTenant, type PgAdminConnection } from '../fixtures/odoo-tenants';
import { pendingTenantActivityOf } from '../helpers/backup-activities';
import { runCli, startCliWorker, workflowIdOf, type CliRun } from '../helpers/cli';
import { stackConfig, uniqueSuffix } from '../helpers/config';
import { adminQuery, adminConnection, restoreUnderWay } from '../helpers/pg';
import { devServer } from '../helpers/temporal';
import { dataLost, leftovers, tenantData, type TenantData } from './measure';
import { recordFault } from './table';
import { testBucketUrl } from '../helpers/bucket';

/** Polls `check` until it holds; fails at once, with its output, if the command `run` ended first. */
async function waitFor(what: string, run: CliRun, check: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  let ended = false;
  void run.result.then(() => (ended = true));
  const until = Date.now() + timeoutMs;
  while (Date.now() < until && !ended) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 40));
  }
  throw new Error(`${ended ? 'the command ended' : 'timed out'} waiting for ${what}: ${run.out()}`);
}

/** The heartbeat details of a pending activity of workflow `id` (decoded JSON), if any. */
async function pendingActivity(client: Client, id: string, type: string): Promise<{ details?: Record<string, unknown> } | undefined> {
  const d = await client.workflow.getHandle(id).describe();
  const p = d.raw.pendingActivities?.find((a) => a.activityType?.name === type);
  if (!p) return undefined;
  const data = p.heartbeatDetails?.payloads?.[0]?.data;
  return { ...(data ? { details: JSON.parse(Buffer.from(data).toString()) as Record<string, unknown> } : {}) };
}

describe('faults: worker SIGKILL at each phase', function () {
  this.timeout(900_000);
  const s = uniqueSuffix();
  const tenant = `fk-${s}`;
  const work = mkdtempSync(path.join(tmpdir(), 'odoo-dr-fault-kill-'));
  const env: Record<string, string> = {
    DR_BACKUP_DIR: path.join(work, 'backups'),
    DR_LOG_DIR: path.join(work, 'logs'),
    ODOO_DATA_DIR: path.join(work, 'odoo-data'),
    DR_TASK_QUEUE: `fault-kill-${s}`,
    DR_CLOUD_BUCKET: testBucketUrl(`faults-kill-${s}`, { exact: true }),
    // Odoo's stop takes a while (as a real one does): a worker can die while it runs.
    DR_ODOO_STOP_CMD: `touch '${path.join(work, 'odoo-stopping')}'; sleep 10`,
    DR_ODOO_START_CMD: 'true',
  };
  const config = stackConfig(env);
  const admin = (): PgAdminConnection => adminConnection(config);
  let client: Client;
  let worker: CliRun | undefined;
  let original: TenantData;
  let lastSession = '';

  const killed: number[] = [];
  const restartWorker = async () => {
    if (worker?.child.pid) killed.push(worker.child.pid);
    worker?.child.kill('SIGKILL');
    await worker?.result;
    worker = await startCliWorker(env);
  };
  const json = <T>(out: string): T => JSON.parse(out.slice(out.indexOf('{'))) as T;

  before(async function () {
    this.timeout(600_000);
    // Big enough that each phase lasts seconds: ~50 MB of rows, 300 attachments.
    await createTenant(admin(), config.odoo.dataDir, { name: tenant, moveLines: 200_000, files: 300, fileSize: 4096 });
    original = await tenantData(config, tenant);
    client = (await devServer()).client;
    worker = await startCliWorker(env);
  });
  after(async function () {
    this.timeout(120_000);
    worker?.child.kill('SIGTERM');
    await worker?.result;
    await dropTenant(admin(), config.odoo.dataDir, tenant).catch(() => undefined);
    const rest = (await adminQuery('SELECT datname FROM pg_database WHERE datname LIKE $1', [`${tenant}%`])) as Array<{ datname: string }>;
    for (const r of rest) await adminQuery(`DROP DATABASE "${r.datname}" WITH (FORCE)`);
    rmSync(work, { recursive: true, force: true });
  });

  for (const phase of ['dump', 'filestore'] as const) {
    it(`backup: SIGKILL during the ${phase} phase, a new worker completes the session; it restores to the same data`, async () => {
      if (phase === 'filestore') {
        // Files the previous session does not hold (the others are reused, neither read nor sent),
        // and uploads slowed to 1 MiB/s: the filestore phase (packing and uploading ~16 MB) lasts seconds.
        const dir = path.join(config.odoo.filestoreRoot, tenant);
        for (let i = 0; i < 2_000; i++) {
          const content = randomBytes(8_192);
          const sha1 = createHash('sha1').update(content).digest('hex');
          mkdirSync(path.join(dir, sha1.slice(0, 2)), { recursive: true });
          writeFileSync(path.join(dir, sha1.slice(0, 2), sha1), content);
        }
        original = await tenantData(config, tenant);
        env.DR_BANDWIDTH_LIMIT = '1M';
        await restartWorker();
      }
      const run = runCli(['--json', 'backup', '--tenant', tenant, '--wait'], env);
      const id = await workflowIdOf(run, 'backup/');
      const session = id.slice('backup/'.length);
      // The dump phase shows in the heartbeat; the filestore phase by its partial file list.
      const tenantDir = path.join(env.DR_BACKUP_DIR!, 'sessions', session, 'tenants', tenant);
      await waitFor(`the ${phase} phase`, run, async () =>
        phase === 'filestore'
          ? existsSync(tenantDir) && readdirSync(tenantDir).some((f) => /^filestore\.jsonl\..+\.partial$/.test(f))
          : (await pendingTenantActivityOf(client, id, tenant))?.progress?.phase === phase,
      );
      await restartWorker();
      delete env.DR_BANDWIDTH_LIMIT;
      const done = await run.result;
      assert.equal(done.code, 0, done.out);
      const result = json<{ status: string }>(done.stdout);
      assert.equal(result.status, 'complete', done.out);
      lastSession = session;
      // The proof: the session restores (from the bucket alone) to exactly the tenant's data.
      const recovered = await runCli(['--json', 'recover', '-m', 'full', '-c', '--tenant', tenant, '-s', session, '--yes', '--wait'], env).result;
      assert.equal(recovered.code, 0, recovered.out);
      const lost = dataLost(original, await tenantData(config, tenant));
      const left = await leftovers(config, tenant, { killedPids: killed });
      assert.equal(lost, 0);
      assert.deepEqual(left, []);
      recordFault({
        fault: `worker SIGKILL during a backup's ${phase} phase`,
        outcome: 'next worker redid the tenant; session complete; restores equal from the bucket',
        dataLost: lost,
        leftovers: left,
      });
    });
  }

  it('validation with a restore test: SIGKILL during the restore, a new worker validates; no scratch copy, role or plaintext left', async () => {
    assert.ok(lastSession, 'a session from the cases above');
    const run = runCli(['--json', 'validate', lastSession, '--tenant', tenant, '--restore-test', '--wait'], env);
    // Killed once the scratch copy's tables exist: the restore is under way.
    await waitFor('the restore test', run, () => restoreUnderWay(`${tenant}\\_dr\\_test\\_%`, 'account_move_line'));
    await restartWorker();
    const done = await run.result;
    assert.equal(done.code, 0, done.out);
    const left = await leftovers(config, tenant, { killedPids: killed });
    const lost = dataLost(original, await tenantData(config, tenant));
    assert.equal(lost, 0);
    assert.deepEqual(left, []);
    recordFault({
      fault: 'worker SIGKILL during a restore test (validation)',
      outcome: 'new worker swept the dead one’s copy and plaintext, validation passed',
      dataLost: lost,
      leftovers: left,
    });
  });

  for (const phase of ['shadow restore', 'Odoo stop'] as const) {
    it(`recovery: SIGKILL during the ${phase}, a new worker completes it; the tenant is exactly the backup's data`, async () => {
      // Damage the tenant as an operator would need a recovery for.
      await withClient(config.postgres, tenant, (c) => c.query('DELETE FROM account_move_line WHERE id % 3 = 0'));
      const run = runCli(['--json', 'recover', '-m', 'full', '--tenant', tenant, '-s', lastSession, '--yes', '--wait'], env);
      const id = await workflowIdOf(run, 'recovery/');
      // The Odoo stop is seen by the file its command touches (it runs 10 s): no server round trip to miss it.
      const stopping = path.join(work, 'odoo-stopping');
      rmSync(stopping, { force: true });
      await waitFor(`the ${phase}`, run, async () =>
        phase === 'shadow restore'
          ? (await pendingActivity(client, id, 'prepareRecoveryShadow')) !== undefined &&
            (await restoreUnderWay(`${tenant}\\_dr\\_shadow\\_%`, 'account_move_line'))
          : existsSync(stopping),
      );
      await restartWorker();
      const done = await run.result;
      assert.equal(done.code, 0, done.out);
      assert.equal(json<{ tenants: Record<string, { state: string }> }>(done.stdout).tenants[tenant]?.state, 'recovered', done.out);
      const lost = dataLost(original, await tenantData(config, tenant));
      const left = await leftovers(config, tenant, { killedPids: killed });
      assert.equal(lost, 0);
      assert.deepEqual(left, []);
      recordFault({
        fault: `worker SIGKILL during a recovery's ${phase}`,
        outcome: 'new worker resumed; tenant recovered, equal to the backup',
        dataLost: lost,
        leftovers: left,
      });
    });
  }
});
