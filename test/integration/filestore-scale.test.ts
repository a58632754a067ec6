/**
 * A filestore of real size (issue 12): 20,000 small files, on the real stack (PostgreSQL, S3 through a
 * counting proxy, the Temporal dev server), with the production heartbeat timeout (60 s). The first
 * attempt of the tenant's backup, and of its files-only recovery, stalls past that timeout in the
 * filestore phase and then carries on writing: the retry must complete, and nothing the stale
 * attempt writes may replace or corrupt what the retry made.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import { createActivities } from '../../activities';
import { readIndexLines } from '../../src/backup/filestore';
import { PACK_TARGET_BYTES } from '../../src/backup/packs';
import { localPath, rel } from '../../src/backup/layout';
import { readManifest } from '../../src/backup/manifest';
import type { DrConfig } from '../../src/config';
import { backupWorkflow, recoveryWorkflow, validationWorkflow } from '../../workflows';
import { backupSessionName } from '../../workflows/definitions';
import { createTenant, dropTenant } from '../fixtures/odoo-tenants';
import { stackConfig, uniqueSuffix } from '../helpers/config';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { filestoreFiles } from '../helpers/files';
import { devServer, withWorker } from '../helpers/temporal';
import { adminConnection } from '../helpers/pg';
import { testBucketUrl } from '../helpers/bucket';

const FILES = 20_000;
/** Longer than the production heartbeat timeout (60 s, workflows/options.ts). */
const STALL_MS = 75_000;

/** Every file of a filestore folder with its SHA-1 (relative path → SHA-1). */
function snapshot(dir: string): Map<string, string> {
  return new Map(filestoreFiles(dir).map((line) => [line.slice(0, line.lastIndexOf(':')), line.slice(line.lastIndexOf(':') + 1)]));
}

describe('a filestore of 20,000 files (real stack, production heartbeat timeout, stalled attempts)', function () {
  this.timeout(1_800_000);
  const s = uniqueSuffix();
  const tenant = `scale-${s}`;
  const backupDir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-scale-'));
  let proxy: FaultProxy;
  let config: DrConfig;
  let original: Map<string, string>;
  let session: string;
  const filestore = () => path.join(config.odoo.filestoreRoot, tenant);

  before(async () => {
    const base = stackConfig();
    proxy = await startFaultProxy({ target: base.cloud!.endpoint! });
    config = stackConfig({
      DR_BACKUP_DIR: backupDir,
      DR_LOG_DIR: path.join(backupDir, 'logs'),
      DR_CLOUD_BUCKET: testBucketUrl(`test-scale-${s}`, { exact: true }),
      DR_S3_ENDPOINT: proxy.url,
      DR_COMPRESSION_LEVEL: '3',
    });
    await createTenant(adminConnection(), config.odoo.dataDir, { name: tenant, files: FILES, fileSize: 8_192, moveLines: 200 });
    original = snapshot(filestore());
    assert.ok(original.size >= FILES, `${original.size} files generated`);
  });
  after(async () => {
    await proxy?.close();
    await dropTenant(adminConnection(), config.odoo.dataDir, tenant);
    rmSync(backupDir, { recursive: true, force: true });
  });

  /** Activities whose first attempt of `name` stalls (as a stuck worker would) and whose end is observed. */
  function withStalledFirstAttempt(name: 'backupTenant' | 'prepareRecoveryShadow') {
    const stale: { woke?: boolean; error?: Error; done?: Promise<void> } = {};
    let finished!: () => void;
    stale.done = new Promise((resolve) => (finished = resolve));
    let retryStarted!: () => void;
    const retry = new Promise<void>((resolve) => (retryStarted = resolve));
    // Attempt 1 sleeps past its heartbeat timeout, then until its retry is at the same step, and
    // goes on: both write the tenant's files at the same time.
    const stall = async (attempt: number) => {
      if (attempt !== 1) return retryStarted();
      await sleep(STALL_MS);
      await retry;
      await sleep(1_000);
      stale.woke = true;
    };
    const activities = createActivities({ config, backupHooks: { beforeFilestore: stall }, recoveryHooks: { beforeRestoreFiles: stall } });
    const original = activities[name] as (input: unknown) => Promise<unknown>;
    (activities as Record<string, unknown>)[name] = async (input: unknown) => {
      const attempt = Context.current().info.attempt;
      try {
        return await original(input);
      } catch (err) {
        if (attempt === 1) stale.error = err as Error;
        throw err;
      } finally {
        if (attempt === 1) finished();
      }
    };
    return { activities, stale };
  }

  it('backs up: the stalled first attempt is retried, its late writes replace nothing; S3 requests ≤ 1 % of the files', async () => {
    const env = await devServer();
    const { activities, stale } = withStalledFirstAttempt('backupTenant');
    session = backupSessionName(new Date(), uniqueSuffix());
    proxy.resetStats();
    const result = await withWorker({ env, config, activities }, async (taskQueue) => {
      const done = await env.client.workflow.execute(backupWorkflow, {
        taskQueue,
        workflowId: `test/scale/${session}`,
        args: [{ tenants: [tenant], cloud: true, session }],
      });
      // The stale attempt goes on after the retry; wait for it to end before the worker stops.
      await stale.done;
      return done;
    });
    assert.equal(result.status, 'complete', JSON.stringify(result, null, 2));
    assert.equal(stale.woke, true, 'the first attempt stalled past its heartbeat timeout, then woke up');
    assert.ok(stale.error, 'the stale attempt did not complete');
    const why = `${(stale.error as { type?: string }).type ?? stale.error.name}: ${stale.error.message}`;
    assert.match(
      why,
      /^SupersededError: .*(newer attempt|cancelled)|^CancelledFailure/,
      `it stopped on its fence or its cancellation, not on something else: ${why}`,
    );

    const manifest = await readManifest(localPath(backupDir, rel.manifest(session)));
    const entry = manifest.tenants[tenant]!;
    assert.equal(entry.status, 'complete');
    assert.equal(entry.filestore!.files, original.size);
    const packsExpected = (original.size * 8_192) / PACK_TARGET_BYTES;
    assert.ok(
      entry.filestore!.packsStored >= Math.floor(0.75 * packsExpected) && entry.filestore!.packsStored <= Math.ceil(2 * packsExpected),
      `${entry.filestore!.packsStored} packs of ~${PACK_TARGET_BYTES / 1024 / 1024} MiB for ~160 MiB`,
    );
    // Requests of the whole session (two attempts, globals, config, manifest): packs, not files.
    assert.ok(proxy.stats.requests <= original.size / 100, `${proxy.stats.requests} S3 requests for ${original.size} files`);
    // No partial file of either attempt is left in the session.
    const tenantDir = localPath(backupDir, rel.tenantDir(session, tenant));
    assert.deepEqual(
      readdirSync(tenantDir).filter((f) => f.endsWith('.partial')),
      [],
    );
    // The index lists every file with a pack it names, each pack stored with its recorded size.
    let files = 0;
    for await (const line of readIndexLines(localPath(backupDir, entry.filestore!.index.path))) if (line.kind === 'file') files++;
    assert.equal(files, original.size);
  });

  it('validates with a restore test from the bucket alone (the local folder gone)', async () => {
    const env = await devServer();
    rmSync(localPath(backupDir, 'packs'), { recursive: true, force: true });
    const result = await withWorker({ env, config }, (taskQueue) =>
      env.client.workflow.execute(validationWorkflow, {
        taskQueue,
        workflowId: `test/scale-validate/${session}`,
        args: [{ session, source: 'cloud', restoreTest: true, fromCloud: true }],
      }),
    );
    assert.equal(
      result.status,
      'pass',
      JSON.stringify(
        result.checks.filter((c) => c.status !== 'pass'),
        null,
        2,
      ),
    );
    const files = result.checks.find((c) => c.name === 'filestore-blobs');
    assert.match(files?.message ?? '', new RegExp(`^${original.size} files`));
  });

  it('a second backup reads no file and uploads no file', async () => {
    const env = await devServer();
    proxy.resetStats();
    const second = backupSessionName(new Date(), uniqueSuffix());
    // The packs were deleted locally above: this backup packs again, locally, and the bucket has them.
    await withWorker({ env, config }, (taskQueue) =>
      env.client.workflow.execute(backupWorkflow, {
        taskQueue,
        workflowId: `test/scale/${second}`,
        args: [{ tenants: [tenant], cloud: true, session: second }],
      }),
    );
    const third = backupSessionName(new Date(Date.now() + 1000), uniqueSuffix());
    proxy.resetStats();
    const result = await withWorker({ env, config }, (taskQueue) =>
      env.client.workflow.execute(backupWorkflow, { taskQueue, workflowId: `test/scale/${third}`, args: [{ tenants: [tenant], cloud: true, session: third }] }),
    );
    assert.equal(result.status, 'complete');
    const t = result.tenants[0]!;
    assert.equal(t.blobsReused, original.size, JSON.stringify(t));
    assert.equal(t.blobsStored, 0);
    assert.equal(t.blobsUploaded, 0);
    const puts = proxy.stats.requests;
    assert.ok(puts <= 80, `${puts} S3 requests for an unchanged tenant of ${original.size} files (one HEAD per pack, the dump, the index, the manifest)`);
    session = third;
  });

  it('recovers files-only: the stalled first attempt is retried, every file comes back equal', async () => {
    // Damage the live filestore: files deleted and overwritten.
    const names = [...original.keys()];
    for (const f of names.slice(0, 50)) unlinkSync(path.join(filestore(), f));
    for (const f of names.slice(50, 60)) writeFileSync(path.join(filestore(), f), 'damaged');
    const env = await devServer();
    const { activities, stale } = withStalledFirstAttempt('prepareRecoveryShadow');
    const result = await withWorker({ env, config, activities }, async (taskQueue) => {
      const done = await env.client.workflow.execute(recoveryWorkflow, {
        taskQueue,
        workflowId: `test/scale-recover/${s}`,
        args: [{ mode: 'files-only', session, tenants: [tenant], approvedBy: 'test', startedBy: 'test' }],
      });
      await stale.done;
      return done;
    });
    assert.equal(result.state, 'done', JSON.stringify(result, null, 2));
    assert.equal(result.tenants[tenant]?.state, 'recovered');
    assert.equal(stale.woke, true);
    assert.ok(stale.error, 'the stale attempt did not complete');
    const after = snapshot(filestore());
    assert.equal(after.size, original.size);
    for (const [f, sha1] of original) assert.equal(after.get(f), sha1, f);
    // Nothing of either attempt is left beside the filestore.
    assert.deepEqual(
      readdirSync(config.odoo.filestoreRoot).filter((d) => d.includes(tenant) && d !== tenant && d.includes('.partial')),
      [],
    );
  });
});
