/**
 * An attacker with write access to the bucket and no private key (issue "Trust"): a tenant's cloud
 * dump is replaced by another database's dump, padded to the original size, with the uploader-set
 * `x-amz-meta-sha256` forged to the original's. Validation hashes the bytes and fails naming the
 * dump; recovery refuses to swap it in. Re-sealing the manifest to match does not help: it is not
 * signed by a trusted key, so it is refused before anything else of the session is read.
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { rel } from '../../src/backup/layout';
import { parseManifest, sealManifest, type Manifest } from '../../src/backup/manifest';
import type { DrConfig } from '../../src/config';
import { signMessage } from '../../src/crypto/signing';
import { withClient } from '../../src/postgres';
import { S3SessionStore } from '../../src/sessions/s3-store';
import { cloudKey, createS3Client, deleteObjects, getSmallObject } from '../../src/storage/s3';
import { backupWorkflow, recoveryWorkflow, validationWorkflow } from '../../workflows';
import { backupSessionName } from '../../workflows/definitions';
import { createTenant, dropTenant, type PgAdminConnection } from '../fixtures/odoo-tenants';
import { stackConfig, uniqueSuffix } from '../helpers/config';
import { devServer, withWorker } from '../helpers/temporal';
import { adminConnection } from '../helpers/pg';
import { testBucketUrl } from '../helpers/bucket';

describe('trust: a bucket an attacker can write to (real stack)', function () {
  this.timeout(600_000);
  const s = uniqueSuffix();
  const victim = `trust-a-${s}`;
  const other = `trust-b-${s}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-trust-'));
  const config: DrConfig = stackConfig({
    DR_BACKUP_DIR: dir,
    DR_LOG_DIR: path.join(dir, 'logs'),
    DR_CLOUD_BUCKET: testBucketUrl(`trust-${s}`, { exact: true }),
  });
  const cloud = config.cloud!;
  const admin = (): PgAdminConnection => adminConnection(config);
  const rows = () =>
    withClient(config.postgres, victim, async (c) => Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM account_move_line')).rows[0]!.n));
  let session = '';
  let manifest: Manifest;

  const run = async <T>(workflow: typeof validationWorkflow | typeof recoveryWorkflow, input: object): Promise<T> => {
    const env = await devServer();
    return withWorker({ env, config }, (taskQueue) =>
      env.client.workflow.execute(workflow as never, { taskQueue, workflowId: `test/trust/${uniqueSuffix()}`, args: [input] as never }),
    ) as Promise<T>;
  };

  before(async () => {
    await createTenant(admin(), config.odoo.dataDir, { name: victim, moveLines: 800, files: 3 });
    await createTenant(admin(), config.odoo.dataDir, { name: other, moveLines: 300, files: 2 });
    const env = await devServer();
    session = backupSessionName(new Date(), uniqueSuffix());
    const result = await withWorker({ env, config }, (taskQueue) =>
      env.client.workflow.execute(backupWorkflow, {
        taskQueue,
        workflowId: `test/trust-backup/${session}`,
        args: [{ session, tenants: [victim, other], cloud: true, retention: false }],
      }),
    );
    assert.equal(result.status, 'complete');
    manifest = parseManifest((await getSmallObject(cloud, cloudKey(cloud, rel.manifest(session))))!.toString('utf8'), 'manifest');
    // Only the bucket is the attacker's: the local copy goes away, so every reader uses the bucket.
    rmSync(path.join(dir, 'sessions'), { recursive: true, force: true });
    // The forgery: the other tenant's dump, cut or padded to the victim's size, with forged metadata.
    const original = manifest.tenants[victim]!.database!;
    const forged = Buffer.alloc(original.bytes);
    readFileSync(await new S3SessionStore(cloud).fetchArtifact(manifest.tenants[other]!.database!, path.join(dir, 'dl'))).copy(forged);
    await createS3Client(cloud).send(
      new PutObjectCommand({ Bucket: cloud.bucket, Key: cloudKey(cloud, original.path), Body: forged, Metadata: { sha256: original.sha256 } }),
    );
  });
  after(async () => {
    await dropTenant(admin(), config.odoo.dataDir, victim);
    await dropTenant(admin(), config.odoo.dataDir, other);
    const store = new S3SessionStore(cloud);
    for (const x of await store.sessionNames()) await store.deleteSession(x);
    rmSync(dir, { recursive: true, force: true });
  });

  it('validation hashes the bytes in the bucket: the forged dump fails, named', async () => {
    const report = await run<{ status: string; checks: Array<{ name: string; status: string; artifact?: string; message: string }> }>(validationWorkflow, {
      session,
      source: 'cloud',
    });
    assert.equal(report.status, 'fail');
    const bad = report.checks.filter((c) => c.status === 'fail');
    assert.ok(
      bad.some((c) => c.name === 'artifact-cloud' && c.artifact === manifest.tenants[victim]!.database!.path && /content is .* sha256/.test(c.message)),
      JSON.stringify(bad),
    );
    assert.ok(!bad.some((c) => c.artifact === manifest.tenants[other]!.database!.path), 'the untouched dump passes');
  });

  it('recovery refuses to swap the forged dump in: the tenant stays as it is', async () => {
    const before = await rows();
    const result = await run<{ tenants: Record<string, { state: string; error?: string }> }>(recoveryWorkflow, {
      mode: 'database-only',
      tenants: [victim],
      session,
      fromCloud: true,
      approvedBy: 'test',
      startedBy: 'test',
    }).catch((): { tenants: Record<string, { state: string; error?: string }> } => ({ tenants: {} }));
    const state = result.tenants[victim];
    assert.ok(!state || state.state === 'failed-before-swap', JSON.stringify(result));
    if (state) assert.match(state.error ?? '', /sha256 .* expected|ArtifactCorruptedError/);
    assert.equal(await rows(), before, 'the live tenant is untouched');
  });

  it('a re-sealed manifest (checksum recomputed) is refused before anything else is read: unsigned, or signed by a stranger', async () => {
    const { checksum: _c, ...body } = manifest;
    const changed = sealManifest({
      ...body,
      tenants: {
        ...body.tenants,
        [victim]: { ...body.tenants[victim]!, database: { ...body.tenants[victim]!.database!, sha256: createHash('sha256').update('forged').digest('hex') } },
      },
    });
    const text = `${JSON.stringify(changed, null, 2)}\n`;
    const store = new S3SessionStore(cloud);
    for (const signature of [undefined, signMessage(text, generateKeyPairSync('ed25519').privateKey)]) {
      if (signature === undefined) await deleteObjects(cloud, [cloudKey(cloud, rel.signature(session))]);
      await store.putManifest(session, text, signature);
      const report = await run<{ status: string; checks: Array<{ name: string; status: string; message: string }> }>(validationWorkflow, {
        session,
        source: 'cloud',
      });
      assert.equal(report.status, 'fail');
      assert.equal(report.checks.length, 1, 'nothing else of the session was read');
      assert.match(report.checks[0]!.message, signature ? /signed by SHA256:.*not in DR_TRUSTED_SIGNERS/ : /is not signed: refused/);
      const err = await run(recoveryWorkflow, { mode: 'full', tenants: [victim], session, fromCloud: true, approvedBy: 'test' }).then(
        () => assert.fail('expected a refusal'),
        (e: Error) => e,
      );
      const root = ((err.cause as Error | undefined)?.cause ?? err.cause ?? err) as Error;
      assert.match(root.message, /not signed|not in DR_TRUSTED_SIGNERS/);
    }
  });
});
