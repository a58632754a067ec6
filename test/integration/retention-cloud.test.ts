/**
 * Retention of the bucket (real S3, a real backup's session): unreferenced packs and blobs past the
 * grace period are collected, referenced ones never; a session being written (its lease) defers the
 * sweep; a dry run reports the same figures and deletes nothing. The clock is the use case's `now`
 * (objects cannot be made older in S3): a run "two days later".
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createActivities } from '../../activities';
import { readIndexLines } from '../../src/backup/filestore';
import { localPath, rel } from '../../src/backup/layout';
import type { DrConfig } from '../../src/config';
import { retainCloud } from '../../src/retention/run';
import { cloudKey, deleteObjects, headObject, listObjects, putSmallObject } from '../../src/storage/s3';
import { backupWorkflow } from '../../workflows';
import { backupSessionName } from '../../workflows/definitions';
import { createTenant, dropTenant, type PgAdminConnection } from '../fixtures/odoo-tenants';
import { stackConfig, uniqueSuffix } from '../helpers/config';
import { devServer, withWorker } from '../helpers/temporal';
import { adminConnection } from '../helpers/pg';

describe('retention of the bucket: pack collection (real S3)', function () {
  this.timeout(300_000);
  const s = uniqueSuffix();
  const tenant = `retc-${s}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-retention-cloud-'));
  const prefix = `retention-cloud-${s}`;
  const env = { DR_BACKUP_DIR: dir, DR_LOG_DIR: path.join(dir, 'logs'), DR_CLOUD_BUCKET: `s3://odoo-dr-local/${prefix}` };
  let config: DrConfig;
  let session = '';
  const later = () => new Date(Date.now() + 2 * 86_400_000);
  const admin = (): PgAdminConnection => adminConnection();

  before(async () => {
    config = stackConfig(env);
    await createTenant(admin(), config.odoo.dataDir, { name: tenant, moveLines: 100, files: 6 });
    const wf = await devServer();
    session = backupSessionName(new Date(), uniqueSuffix());
    const result = await withWorker({ env: wf, config }, (taskQueue) =>
      wf.client.workflow.execute(backupWorkflow, {
        taskQueue,
        workflowId: `test/retention-cloud/${session}`,
        args: [{ session, tenants: [tenant], cloud: true, retention: false }],
      }),
    );
    assert.equal(result.status, 'complete', JSON.stringify(result));
  });
  after(async () => {
    await dropTenant(admin(), config.odoo.dataDir, tenant);
    const keys: string[] = [];
    for await (const o of listObjects(config.cloud!, `${prefix}/`)) keys.push(o.key);
    if (keys.length) await deleteObjects(config.cloud!, keys);
    rmSync(dir, { recursive: true, force: true });
  });

  /** The session's packs, from its index. */
  const sessionPacks = async (): Promise<string[]> => {
    const packs: string[] = [];
    for await (const line of readIndexLines(localPath(dir, rel.filestoreIndex(session, tenant)))) if (line.kind === 'pack') packs.push(line.record.pack);
    return packs;
  };

  /** An unreferenced pack and legacy blob in the bucket (a deleted session's, say). */
  const plantOrphans = async () => {
    const pack = randomBytes(3000);
    const packId = createHash('sha256').update(pack).digest('hex');
    const blob = randomBytes(500);
    const sha1 = createHash('sha1').update(randomBytes(20)).digest('hex');
    await putSmallObject(config.cloud!, cloudKey(config.cloud!, rel.pack(packId)), pack, 'application/octet-stream');
    await putSmallObject(config.cloud!, cloudKey(config.cloud!, rel.blob(sha1)), blob, 'application/octet-stream');
    return { packKey: cloudKey(config.cloud!, rel.pack(packId)), blobKey: cloudKey(config.cloud!, rel.blob(sha1)), bytes: pack.length + blob.length };
  };

  it('a backup leaves its lease in the session, before it looks for packs to reuse', async () => {
    assert.ok(await headObject(config.cloud!, cloudKey(config.cloud!, `${rel.session(session)}/leases/${tenant}.json`)));
  });

  it('a dry run reports the orphans; the real run deletes them and nothing the session references', async () => {
    const orphans = await plantOrphans();
    const dry = await retainCloud(config, { now: later(), dryRun: true });
    assert.deepEqual(dry.sessionsDeleted, []);
    assert.equal(dry.collection.deferred, undefined);
    assert.equal(dry.collection.packsDeleted, 1);
    assert.equal(dry.collection.blobsDeleted, 1);
    assert.equal(dry.collection.bytesFreed, orphans.bytes);
    assert.ok(await headObject(config.cloud!, orphans.packKey), 'a dry run deletes nothing');

    const real = await retainCloud(config, { now: later(), dryRun: false });
    assert.deepEqual(
      { packs: real.collection.packsDeleted, blobs: real.collection.blobsDeleted, bytes: real.collection.bytesFreed },
      { packs: dry.collection.packsDeleted, blobs: dry.collection.blobsDeleted, bytes: dry.collection.bytesFreed },
      'the dry run reported the same figures',
    );
    assert.equal(await headObject(config.cloud!, orphans.packKey), null);
    assert.equal(await headObject(config.cloud!, orphans.blobKey), null);
    const packs = await sessionPacks();
    assert.ok(packs.length > 0);
    for (const p of packs) assert.ok(await headObject(config.cloud!, cloudKey(config.cloud!, rel.pack(p))), `referenced pack ${p} kept`);
  });

  it('unreferenced objects younger than the grace period are kept', async () => {
    const orphans = await plantOrphans();
    const now = await retainCloud(config, { now: new Date(), dryRun: false });
    assert.equal(now.collection.packsDeleted, 0);
    assert.equal(now.collection.youngKept, 2);
    assert.ok(await headObject(config.cloud!, orphans.packKey));
    await deleteObjects(config.cloud!, [orphans.packKey, orphans.blobKey]);
  });

  it("a backup's lease in the bucket defers the sweep: nothing is collected while a session is being written", async () => {
    const orphans = await plantOrphans();
    const writing = backupSessionName(new Date(Date.now() + 1000), uniqueSuffix());
    const leaseKey = cloudKey(config.cloud!, `${rel.session(writing)}/leases/${tenant}.json`);
    await putSmallObject(config.cloud!, leaseKey, Buffer.from(JSON.stringify({ tenant })));
    // Two days on, the lease is as old as the orphans: with a 72 h grace it is still a backup in progress.
    const deferred = await retainCloud(stackConfig({ ...env, DR_COLLECT_GRACE_HOURS: '72' }), { now: later(), dryRun: false });
    assert.match(deferred.collection.deferred ?? '', new RegExp(`backup session ${writing} is being written`));
    assert.equal(deferred.collection.packsDeleted, 0);
    assert.deepEqual(deferred.sessionsDeleted, [], 'a session being written is not expired');
    assert.ok(await headObject(config.cloud!, orphans.packKey), 'nothing collected while the backup runs');
    // Its lease gone stale (24 h grace, two days on): collected.
    const after = await retainCloud(config, { now: later(), dryRun: false });
    assert.equal(after.collection.deferred, undefined);
    assert.equal(after.collection.packsDeleted, 1);
    assert.equal(await headObject(config.cloud!, orphans.packKey), null);
    await deleteObjects(config.cloud!, [leaseKey]);
  });

  it('a real backup between its lease and its reuse check defers the sweep; it completes with every pack it lists in the bucket', async () => {
    const orphans = await plantOrphans();
    const reached = deferred<void>();
    const release = deferred<void>();
    let stalled = false;
    const activities = createActivities({
      config,
      backupHooks: {
        beforePackReuse: async () => {
          if (stalled) return;
          stalled = true;
          reached.resolve();
          await release.promise;
        },
      },
    });
    const wf = await devServer();
    const next = backupSessionName(new Date(), uniqueSuffix());
    await withWorker({ env: wf, config, activities }, async (taskQueue) => {
      const handle = await wf.client.workflow.start(backupWorkflow, {
        taskQueue,
        workflowId: `test/retention-cloud/${next}`,
        args: [{ session: next, tenants: [tenant], cloud: true, retention: false }],
      });
      await reached.promise;
      try {
        const during = await retainCloud(config, { now: new Date(), dryRun: false });
        assert.match(during.collection.deferred ?? '', new RegExp(`backup session ${next} is being written`));
        assert.ok(await headObject(config.cloud!, orphans.packKey));
      } finally {
        release.resolve(); // a failed assertion must not leave the backup stalled
      }
      const result = await handle.result();
      assert.equal(result.status, 'complete', JSON.stringify(result));
      assert.ok(result.tenants[0]!.blobsReused > 0, 'the backup reused the stored packs');
    });
    for await (const line of readIndexLines(localPath(dir, rel.filestoreIndex(next, tenant)))) {
      if (line.kind === 'pack')
        assert.ok(await headObject(config.cloud!, cloudKey(config.cloud!, rel.pack(line.record.pack))), `pack ${line.record.pack} in the bucket`);
    }
    await deleteObjects(config.cloud!, [orphans.packKey, orphans.blobKey]);
  });
});

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
