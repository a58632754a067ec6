/**
 * backupWorkflow with small tenants batched (real PostgreSQL and age, the dev server): batches are
 * child workflows that take their tenants' locks and release them by closing; a tenant's failure in
 * a batch is its own; a transient failure, or a batch activity that fails as a whole, sends tenants
 * to be backed up alone; a tenant held by a recovery is refused in its batch, naming the holder; a
 * recovery of a tenant its batch holds is refused, naming the batch.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { createActivities } from '../../activities';
import { localPath, rel } from '../../src/backup/layout';
import { readManifest } from '../../src/backup/manifest';
import type { DrConfig } from '../../src/config';
import { backupWorkflow, recoveryWorkflow } from '../../workflows';
import { backupProgressQuery, backupSessionName } from '../../workflows/definitions';
import { tenantLockId } from '../../workflows/lock';
import { createTenant, dropTenant, type PgAdminConnection } from '../fixtures/odoo-tenants';
import { stackConfig, uniqueSuffix } from '../helpers/config';
import { dropDatabase, adminConnection } from '../helpers/pg';
import { devServer, withWorker } from '../helpers/temporal';

type History = Awaited<ReturnType<ReturnType<Awaited<ReturnType<typeof devServer>>['client']['workflow']['getHandle']>['fetchHistory']>>;

const scheduled = (h: History) => (h.events ?? []).map((e) => e.activityTaskScheduledEventAttributes).filter((a) => a !== undefined && a !== null);
const children = (h: History, type: string) =>
  (h.events ?? [])
    .map((e) => e.childWorkflowExecutionStartedEventAttributes)
    .filter((a) => a?.workflowType?.name === type)
    .map((a) => a!.workflowExecution!);

describe('backupWorkflow: small tenants in batches (dev server, real stack)', function () {
  this.timeout(300_000);
  const s = uniqueSuffix();
  const dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-batches-'));
  const tenants = [0, 1, 2, 3, 4].map((i) => `bb-${s}-${i}`);
  let config: DrConfig;
  const admin = (): PgAdminConnection => adminConnection(config);

  before(async () => {
    // One slot: a first batch of 3 tenants, then the next (taken ahead, started by `go`) of 2.
    config = stackConfig({
      DR_BACKUP_DIR: path.join(dir, 'backups'),
      ODOO_DATA_DIR: path.join(dir, 'data'),
      DR_LOG_DIR: path.join(dir, 'logs'),
      DR_MAX_PARALLEL_BACKUPS: '1',
    });
    for (const name of tenants) await createTenant(admin(), config.odoo.dataDir, { name, moveLines: 50, files: 2, fileSize: 512 });
  });
  after(async () => {
    for (const name of tenants) await dropTenant(admin(), config.odoo.dataDir, name).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  const run = async (list: string[], activities?: object, during?: (taskQueue: string, workflowId: string) => Promise<void>) => {
    const env = await devServer();
    const session = backupSessionName(new Date(), uniqueSuffix());
    const workflowId = `test/batches/${session}`;
    const result = await withWorker({ env, config, ...(activities ? { activities } : {}) }, async (taskQueue) => {
      const handle = await env.client.workflow.start(backupWorkflow, {
        taskQueue,
        workflowId,
        args: [{ session, tenants: list, cloud: false, retention: false }],
      });
      if (during) await during(taskQueue, workflowId);
      const r = await handle.result();
      return { r, progress: await handle.query(backupProgressQuery) };
    });
    return { ...result, session, workflowId, history: await env.client.workflow.getHandle(workflowId).fetchHistory() };
  };
  let first: Awaited<ReturnType<typeof run>>;

  it('backs small tenants up several to an activity, in batch children that hold their locks and release them by closing', async () => {
    first = await run(tenants);
    const { r, progress, history, session } = first;
    assert.equal(r.status, 'complete', JSON.stringify(r, null, 2));
    assert.deepEqual(
      r.tenants.map((t) => [t.tenant, t.status]),
      tenants.map((t) => [t, 'complete']),
    );
    assert.ok(
      r.tenants.every((t) => t.databaseBytes > 0 && t.filestoreFiles === 3 && t.durationMs > 0),
      JSON.stringify(r.tenants),
    );
    assert.deepEqual(
      Object.values(progress.tenants).map((t) => t.state),
      tenants.map(() => 'complete'),
    );
    // No activity per tenant in the session's history: two batches did the tenants.
    assert.deepEqual(
      scheduled(history).filter((a) => /^backupTenants?$/.test(a.activityType?.name ?? '')),
      [],
    );
    const batches = children(history, 'backupBatchWorkflow');
    assert.deepEqual(
      batches.map((b) => b.workflowId).sort(),
      [0, 1].map((n) => `backup/${session}/batch/${n}`),
    );
    const env = await devServer();
    const locked: string[] = [];
    for (const b of batches) {
      const h = await env.client.workflow.getHandle(b.workflowId!, b.runId!).fetchHistory();
      assert.deepEqual(
        scheduled(h).map((a) => a.activityType?.name),
        ['backupTenants'],
        'one activity for the batch',
      );
      for (const lock of children(h, 'tenantLockWorkflow')) {
        locked.push(lock.workflowId!);
        // Released by the batch closing: the server ended it (no signal, no workflow task).
        const d = await env.client.workflow.getHandle(lock.workflowId!, lock.runId!).describe();
        assert.equal(d.status.name, 'TERMINATED', `${lock.workflowId} released`);
      }
    }
    assert.deepEqual(locked.sort(), tenants.map(tenantLockId).sort(), 'every tenant was locked, by its batch');
    const manifest = await readManifest(localPath(config.backupDir, rel.manifest(session)));
    assert.equal(manifest.status, 'complete');
    assert.deepEqual(Object.keys(manifest.tenants).sort(), tenants);
  });

  it("a tenant's failure in a batch is its own: the others complete, the session is partial", async () => {
    const victim = `bb-${s}-victim`;
    await createTenant(admin(), config.odoo.dataDir, { name: victim, moveLines: 20, files: 1 });
    const real = createActivities({ config });
    const activities = {
      ...real,
      discoverTenants: async (input: Parameters<typeof real.discoverTenants>[0]) => {
        const found = await real.discoverTenants(input);
        await dropDatabase(victim);
        return found;
      },
    };
    const { r } = await run([tenants[0]!, victim, tenants[1]!, tenants[2]!], activities);
    await dropTenant(admin(), config.odoo.dataDir, victim);
    assert.equal(r.status, 'partial');
    const failed = r.tenants.find((t) => t.tenant === victim)!;
    assert.equal(failed.status, 'failed');
    assert.match(failed.error ?? '', /^TenantNotFoundError: /);
    assert.deepEqual(
      r.tenants.filter((t) => t.tenant !== victim).map((t) => t.status),
      ['complete', 'complete', 'complete'],
    );
  });

  it('a transient failure in a batch: that tenant is backed up again alone (backupTenant, with its retries)', async () => {
    let failedOnce = false;
    const activities = createActivities({
      config,
      backupHooks: {
        afterDump: (file) => {
          if (!failedOnce && file.includes(`/${tenants[1]}/`)) {
            failedOnce = true;
            throw new Error('injected: a transient failure');
          }
        },
      },
    });
    const { r, history } = await run(tenants.slice(0, 3), activities);
    assert.equal(r.status, 'complete', JSON.stringify(r));
    assert.ok(failedOnce);
    const [batch] = children(history, 'backupBatchWorkflow');
    const h = await (await devServer()).client.workflow.getHandle(batch!.workflowId!, batch!.runId!).fetchHistory();
    assert.deepEqual(
      scheduled(h).map((a) => [a.activityType?.name, a.activityId]),
      [
        ['backupTenants', 'tenants'],
        ['backupTenant', `tenant/${tenants[1]}`],
      ],
    );
  });

  it('a batch activity that fails as a whole: each of its tenants is backed up alone', async () => {
    const real = createActivities({ config });
    const activities = { ...real, backupTenants: () => Promise.reject(ApplicationFailure.nonRetryable('injected: the batch failed', 'InjectedError')) };
    const { r, history } = await run(tenants.slice(0, 3), activities);
    assert.equal(r.status, 'complete', JSON.stringify(r));
    const [batch] = children(history, 'backupBatchWorkflow');
    const h = await (await devServer()).client.workflow.getHandle(batch!.workflowId!, batch!.runId!).fetchHistory();
    const ids = scheduled(h).map((a) => a.activityId);
    assert.equal(ids[0], 'tenants');
    assert.deepEqual(
      ids.slice(1).sort(),
      tenants.slice(0, 3).map((t) => `tenant/${t}`),
      'then each tenant alone',
    );
  });

  it('a tenant held by a recovery is refused in its batch, naming the recovery; the others complete', async () => {
    const env = await devServer();
    const held = tenants[3]!;
    const holder = `test/recovery-${uniqueSuffix()}`;
    const { r } = await withWorker({ env, config }, async (taskQueue) => {
      const lock = await env.client.workflow.start('tenantLockWorkflow', {
        taskQueue,
        workflowId: tenantLockId(held),
        args: [{ tenant: held, holder, purpose: 'recovery', since: new Date().toISOString() }],
      });
      try {
        const session = backupSessionName(new Date(), uniqueSuffix());
        return {
          r: await env.client.workflow.execute(backupWorkflow, {
            taskQueue,
            workflowId: `test/batches/${session}`,
            args: [{ session, tenants: tenants.slice(1, 5), cloud: false, retention: false }],
          }),
        };
      } finally {
        await lock.signal('releaseLock');
      }
    });
    assert.equal(r.status, 'partial');
    const refused = r.tenants.find((t) => t.tenant === held)!;
    assert.equal(refused.status, 'failed');
    assert.match(refused.error ?? '', new RegExp(`^TenantLocked: tenant "${held}" is locked by the recovery ${holder} \\(since `));
    assert.deepEqual(
      r.tenants.filter((t) => t.tenant !== held).map((t) => t.status),
      ['complete', 'complete', 'complete'],
    );
  });

  it('a recovery of a tenant its batch is backing up is refused, naming the batch', async () => {
    const env = await devServer();
    const real = createActivities({ config });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let inBatch!: () => void;
    const started = new Promise<void>((resolve) => (inBatch = resolve));
    const activities = {
      ...real,
      backupTenants: async (input: Parameters<typeof real.backupTenants>[0]) => {
        inBatch();
        await gate;
        return real.backupTenants(input);
      },
    };
    const target = tenants[0]!;
    const { r, session } = await run(tenants.slice(0, 3), activities, async (taskQueue) => {
      await started;
      const refused = await env.client.workflow
        .execute(recoveryWorkflow, {
          taskQueue,
          workflowId: `test/batches/recovery-${uniqueSuffix()}`,
          args: [{ mode: 'database-only', session: first.session, tenants: [target], approvedBy: 'ops@test' }],
        })
        .then(
          () => assert.fail('expected the recovery to be refused'),
          (e: unknown) => e,
        )
        .finally(release);
      assert.ok(refused instanceof WorkflowFailedError, String(refused));
      assert.match(String(refused.cause?.message), new RegExp(`tenant "${target}" is locked by the backup backup/backup_\\d{8}_\\d{6}_[a-z0-9]+/batch/0`));
    });
    assert.equal(r.status, 'complete', JSON.stringify(r));
    assert.ok(session);
  });
});
