/**
 * retentionWorkflow against a real backup running at the same time (real PostgreSQL, age, Temporal
 * dev server). The interleavings are forced with hooks, not hoped for: the backup stops right before
 * it checks a stored pack for reuse, and the collection stops right before it moves a candidate to
 * the trash. Whatever the order, the backup must finish `complete` with every pack it lists, and its
 * session must restore.
 */
import assert from 'node:assert/strict';
import type { WorkflowHandle } from '@temporalio/client';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createActivities } from '../../activities';
import { localPath, rel } from '../../src/backup/layout';
import type { DrConfig } from '../../src/config';
import { backupWorkflow, retentionWorkflow, validationWorkflow } from '../../workflows';
import { backupSessionName, workflowIds } from '../../workflows/definitions';
import type { RetentionReport } from '../../workflows/retention';
import { createTenant, dropTenant } from '../fixtures/odoo-tenants';
import { PACK_TARGET_BYTES } from '../../src/backup/packs';
import { stackConfig, uniqueSuffix } from '../helpers/config';
import { devServer, withWorker } from '../helpers/temporal';
import { adminConnection } from '../helpers/pg';
import { testBucketUrl } from '../helpers/bucket';

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
}
function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Waits for `check` to hold, polling, or fails naming `what` after `ms`. */
async function until(what: string, check: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every file under `dir` (recursively) and `dir` itself get `when` as mtime: as if written then. */
function age(dir: string, when: Date): void {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) age(p, when);
    else utimesSync(p, when, when);
  }
  utimesSync(dir, when, when);
}

const packsOf = (backupDir: string): string[] => {
  const root = path.join(backupDir, 'packs');
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((d) => /^[0-9a-f]{2}$/.test(d))
    .flatMap((d) => readdirSync(path.join(root, d)).map((f) => `${d}/${f}`))
    .sort();
};

describe('retentionWorkflow with a backup running concurrently (the collection race)', function () {
  this.timeout(600_000);
  const s = uniqueSuffix();
  const tenant = `ret-${s}`;
  const backupDir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-retention-'));
  let config: DrConfig;
  // Test hooks: the first pack reuse check of a backup waits at `reuseGate`; the first candidate of
  // a collection runs `trashGate` before it is moved.
  let reuseGate: { reached: Deferred<string>; release: Deferred<void> } | undefined;
  let trashGate: ((relPath: string) => Promise<void>) | undefined;
  const twoDaysAgo = () => new Date(Date.now() - 2 * 86_400_000);

  before(async () => {
    config = stackConfig({
      DR_BACKUP_DIR: backupDir,
      DR_LOG_DIR: path.join(backupDir, 'logs'),
      DR_CLOUD_BUCKET: testBucketUrl(`retention-${s}`, { exact: true }),
      DR_LOCAL_RETENTION_DAYS: '7',
      // The shared cluster's scratch and pre-recovery databases are other people's: never old enough here.
      DR_TEST_RETENTION_HOURS: '720',
      DR_PRE_RECOVERY_RETENTION_DAYS: '3650',
    });
    // One and a half packs' worth of files: two packs.
    const fileSize = 256 * 1024;
    await createTenant(adminConnection(), config.odoo.dataDir, {
      name: tenant,
      moveLines: 200,
      files: Math.ceil((1.5 * PACK_TARGET_BYTES) / fileSize),
      fileSize,
    });
  });
  after(async () => {
    await dropTenant(adminConnection(), config.odoo.dataDir, tenant);
    rmSync(backupDir, { recursive: true, force: true });
  });

  const activities = () =>
    createActivities({
      config,
      backupHooks: {
        beforePackReuse: async (pack) => {
          const gate = reuseGate;
          if (!gate) return;
          reuseGate = undefined;
          gate.reached.resolve(pack);
          await gate.release.promise;
        },
      },
      retentionHooks: {
        beforeTrash: async (relPath) => {
          const gate = trashGate;
          trashGate = undefined;
          await gate?.(relPath);
        },
      },
    });

  /** Runs `fn` with a worker serving backups, retention and validation on one task queue. */
  const withStack = async <T>(fn: (run: Runner) => Promise<T>): Promise<T> => {
    const env = await devServer();
    return withWorker({ env, config, activities: activities() }, (taskQueue) =>
      fn({
        backup: (session: string, retention = false) =>
          env.client.workflow.start(backupWorkflow, {
            taskQueue,
            workflowId: `test/retention/${session}`,
            args: [{ session, tenants: [tenant], cloud: false, retention }],
          }),
        retention: () =>
          env.client.workflow.execute(retentionWorkflow, {
            taskQueue,
            workflowId: workflowIds.retention(`test-${uniqueSuffix()}`),
            args: [{ cloud: false, startedBy: 'retention test' }],
          }),
        validate: (session: string) =>
          env.client.workflow.execute(validationWorkflow, {
            taskQueue,
            workflowId: `test/retention-validate/${uniqueSuffix()}`,
            args: [{ session, source: 'local', cloud: false, restoreTest: true }],
          }),
      }),
    );
  };
  interface Runner {
    backup(session: string, retention?: boolean): Promise<WorkflowHandle<typeof backupWorkflow>>;
    retention(): Promise<RetentionReport>;
    validate(session: string): ReturnType<typeof validationWorkflow>;
  }

  /** The session a backup reuses from disappears while it runs (here: its manifest is removed, and it was written long ago). */
  const expire = (session: string) => {
    rmSync(localPath(backupDir, rel.manifest(session)), { force: true });
    rmSync(localPath(backupDir, rel.signature(session)), { force: true });
    age(localPath(backupDir, rel.session(session)), twoDaysAgo());
  };

  /** The session restores into a scratch copy and passes every check (but its age, for a session named in 2020). */
  const restores = async (run: Runner, session: string) => {
    const validation = await run.validate(session);
    const failed = validation.checks.filter((c) => c.status === 'fail' && !(c.name === 'age' && session.startsWith('backup_2020')));
    assert.deepEqual(failed, [], `${session} does not validate`);
    assert.equal(validation.restores.length, 1, 'the tenant was restored into a scratch copy');
    assert.ok(
      validation.checks.some((c) => c.status === 'pass' && /filestore|attachment/i.test(c.name)),
      JSON.stringify(validation.checks.map((c) => c.name)),
    );
  };

  const old1 = `backup_20200101_020000_${s}a`;
  const old2 = `backup_20200102_020000_${s}b`;

  it('collects the packs of a session deleted under a backup that was about to reuse them; the backup packs again and restores', async () => {
    await withStack(async (run) => {
      const first = await (await run.backup(old1)).result();
      assert.equal(first.status, 'complete', JSON.stringify(first));
      const firstPacks = packsOf(backupDir);
      assert.ok(firstPacks.length > 0, 'the first backup stored packs');
      age(path.join(backupDir, 'packs'), twoDaysAgo());

      // The second backup stops right before its first reuse check, its index of old1 loaded.
      reuseGate = { reached: deferred(), release: deferred() };
      const gate = reuseGate;
      const second = await run.backup(old2);
      await gate.reached.promise;
      expire(old1);
      try {
        const report = await run.retention();
        assert.equal(report.status, 'ok', JSON.stringify(report.errors));
        assert.deepEqual(report.local!.sessionsDeleted, [old1]);
        assert.equal(report.local!.collection.packsDeleted, firstPacks.length, 'every pack of old1 is unreferenced and old: collected');
        assert.ok(report.local!.collection.bytesFreed > 0);
        assert.equal(report.local!.sessionsKept, 1, 'the session being written (named in 2020, written now) is kept');
        assert.deepEqual(packsOf(backupDir), [], 'nothing left to reuse');
      } finally {
        gate.release.resolve(); // a failed assertion must not leave the backup stalled
      }
      const result = await second.result();
      assert.equal(result.status, 'complete', JSON.stringify(result));
      assert.equal(result.tenants[0]!.blobsReused, 0, 'nothing could be reused');
      assert.equal(result.tenants[0]!.blobsStored, result.tenants[0]!.filestoreFiles, 'every file packed again');
      await restores(run, old2);
    });
  });

  it('puts back a pack that a backup reused while the collection was moving it; the backup completes and restores', async () => {
    await withStack(async (run) => {
      age(path.join(backupDir, 'packs'), twoDaysAgo());
      const old2Packs = packsOf(backupDir);
      assert.ok(old2Packs.length > 1, 'old2 has packs');

      reuseGate = { reached: deferred(), release: deferred() };
      const gate = reuseGate;
      const third = await run.backup(backupSessionName(new Date(), uniqueSuffix()));
      await gate.reached.promise;
      expire(old2);
      // The collection stops before moving its first candidate, lets the backup go, and moves the
      // candidate only once the backup has touched it (it is about to list it).
      let raced: string | undefined;
      trashGate = async (relPath) => {
        raced = relPath;
        const file = localPath(backupDir, relPath);
        const before = statSync(file).mtimeMs;
        gate.release.resolve();
        await until(`the backup's touch of ${relPath}`, () => statSync(file).mtimeMs !== before);
      };
      const report = await run.retention().finally(() => gate.release.resolve()); // never left stalled
      assert.equal(report.status, 'ok', JSON.stringify(report.errors));
      assert.deepEqual(report.local!.sessionsDeleted, [old2]);
      assert.ok(raced, 'the collection had a candidate');
      assert.ok(report.local!.collection.restored >= 1, `the touched pack was put back: ${JSON.stringify(report.local!.collection)}`);
      assert.ok(existsSync(localPath(backupDir, raced)), `${raced} is back under its name`);
      assert.deepEqual(readdirSync(path.join(backupDir, 'packs', '.trash')), [], 'nothing left in the trash');

      const result = await third.result();
      assert.equal(result.status, 'complete', JSON.stringify(result));
      await restores(run, result.session);
      // What the collection deleted, the backup did not list: its index names only packs that exist.
      for (const p of packsOf(backupDir)) assert.ok(existsSync(path.join(backupDir, 'packs', p)));

      // A later run finds nothing more to collect: every remaining pack is referenced by the new session or young.
      const again = await run.retention();
      assert.equal(again.local!.collection.packsDeleted, 0, JSON.stringify(again.local));
      assert.deepEqual(again.local!.sessionsDeleted, []);
    });
  });

  it("a backup's own retention collects the local folder's old unreferenced packs (a site without schedules)", async () => {
    await withStack(async (run) => {
      const orphan = localPath(backupDir, rel.pack('ab'.padEnd(64, '0')));
      const junk = Buffer.alloc(5000, 7);
      mkdirSync(path.dirname(orphan), { recursive: true });
      writeFileSync(orphan, junk);
      utimesSync(orphan, twoDaysAgo(), twoDaysAgo());
      const before = packsOf(backupDir).filter((p) => !orphan.endsWith(p));
      const result = await (await run.backup(backupSessionName(new Date(), uniqueSuffix()), true)).result();
      assert.equal(result.status, 'complete', JSON.stringify(result));
      assert.ok(!existsSync(orphan), 'the orphan pack was collected by the backup');
      for (const p of before) assert.ok(existsSync(path.join(backupDir, 'packs', p)), `${p} (referenced or young) kept`);
    });
  });
});
