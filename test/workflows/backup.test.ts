import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, existsSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { createActivities } from '../../activities';
import { dumpDatabase } from '../../src/backup/database';
import { readFilestoreIndex } from '../../src/backup/filestore';
import { recipientsFor } from '../../src/crypto/age';
import { findClientTools } from '../../src/pgtools';
import { localPath, rel } from '../../src/backup/layout';
import { readManifest } from '../../src/backup/manifest';
import { SessionCatalog } from '../../src/sessions/catalog';
import type { DrConfig } from '../../src/config';
import { cloudKey, deleteObjects, headObject, listObjects } from '../../src/storage/s3';
import { backupWorkflow } from '../../workflows';
import { backupSessionName } from '../../workflows/definitions';
import { stackConfig, uniqueSuffix } from '../helpers/config';
import { flipByte } from '../helpers/files';
import { historyText } from '../helpers/history';
import { dropDatabase, adminConnection } from '../helpers/pg';
import { devServer, timeSkippingServer, withWorker } from '../helpers/temporal';
import { createTenant, dropTenant, type TenantInfo } from '../fixtures/odoo-tenants';
import { loadRealOdooTenant } from '../fixtures/real-odoo';

const PG15 = '/usr/lib/postgresql/15/bin';

function testConfig(backupDir: string, prefix: string, extra: NodeJS.ProcessEnv = {}): DrConfig {
  return stackConfig({
    DR_BACKUP_DIR: backupDir,
    DR_CLOUD_BUCKET: `s3://odoo-dr-local/${prefix}`,
    DR_LOG_DIR: path.join(backupDir, 'logs'),
    DR_COMPRESSION_LEVEL: '3',
    ...extra,
  });
}

/** Decrypts with the standard CLI and lists the archive with pg_restore: what an operator would do by hand. */
function breakGlassList(config: DrConfig, file: string): string {
  const identity = config.encryption.identityFile!;
  const out = spawnSync('bash', ['-c', `age -d -i "$1" "$2" | zstd -d -q -c | ${PG15}/pg_restore --list`, 'bg', identity, file], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  assert.equal(out.status, 0, out.stderr);
  return out.stdout;
}

describe('backupWorkflow (real PostgreSQL, S3, age; dev server)', function () {
  this.timeout(300_000);
  const s = uniqueSuffix();
  const tenants = [`bk-${s}.eu`, `bk_${s}`];
  const real = `bk-real-${s}`;
  const backupDir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-backup-'));
  const prefix = `test-${s}`;
  let config: DrConfig;
  const infos: Record<string, TenantInfo> = {};

  before(async () => {
    config = testConfig(backupDir, prefix);
    infos[tenants[0]!] = await createTenant(adminConnection(), config.odoo.dataDir, { name: tenants[0]!, moveLines: 3000, files: 12 });
    infos[tenants[1]!] = await createTenant(adminConnection(), config.odoo.dataDir, { name: tenants[1]!, moveLines: 500, files: 5 });
    infos[real] = await loadRealOdooTenant(adminConnection(), config.odoo.dataDir, { name: real });
  });
  after(async () => {
    for (const t of [...tenants, real]) await dropTenant(adminConnection(), config.odoo.dataDir, t);
  });

  const run = async (cfg: DrConfig, input: Parameters<typeof backupWorkflow>[0], activities?: object, server = devServer) => {
    const env = await server();
    const session = input?.session ?? backupSessionName(new Date(), uniqueSuffix());
    const workflowId = `test/backup/${session}`;
    const result = await withWorker({ env, config: cfg, ...(activities ? { activities } : {}) }, (taskQueue) =>
      env.client.workflow.execute(backupWorkflow, { taskQueue, workflowId, args: [{ ...input, session }] }),
    );
    return { result, workflowId, session };
  };

  let first: Awaited<ReturnType<typeof run>>;

  it('backs up every tenant to disk and S3, verified, with a manifest written last', async () => {
    first = await run(config, { tenants: [...tenants, real], cloud: true, startedBy: 'test' });
    const { result, session } = first;
    assert.equal(result.status, 'complete', JSON.stringify(result, null, 2));
    assert.deepEqual(
      result.tenants.map((t) => t.status),
      ['complete', 'complete', 'complete'],
    );
    const manifest = await readManifest(localPath(backupDir, rel.manifest(session)));
    assert.equal(manifest.status, 'complete');
    assert.ok(!existsSync(path.join(localPath(backupDir, rel.session(session)), '.incomplete')));
    assert.ok(manifest.globals, 'globals are in the session');
    for (const [name, entry] of Object.entries(manifest.tenants)) {
      assert.equal(entry.database?.cloud?.verified, true, `${name} dump verified in the bucket`);
      assert.equal(entry.filestore?.index.cloud?.verified, true);
      const obj = await headObject(config.cloud!, cloudKey(config.cloud!, entry.database.path));
      assert.equal(obj?.bytes, entry.database.bytes);
    }
    assert.ok(await headObject(config.cloud!, cloudKey(config.cloud!, rel.manifest(session))), 'manifest uploaded');
  });

  it('records the Odoo facts of the dumped snapshot: versions, modules, row counts, attachments', async () => {
    const manifest = await readManifest(localPath(backupDir, rel.manifest(first.session)));
    const gen = manifest.tenants[tenants[0]!]!.odoo!;
    assert.equal(gen.isOdoo, true);
    assert.equal(gen.series, '17.0');
    assert.equal(gen.tables.account_move_line, 3000);
    assert.equal(gen.tables.res_partner, infos[tenants[0]!]!.tables.res_partner);
    const odoo = manifest.tenants[real]!.odoo!;
    assert.equal(odoo.modules.base?.startsWith('17.0'), true);
    assert.equal(Object.keys(odoo.modules).length, 24, 'the 24 modules installed in the real Odoo backup');
    assert.equal(odoo.attachments.rows, 194);
    assert.equal(odoo.attachments.distinctFiles, 60);
    assert.match(manifest.postgres.pgDump, /^15\./);
  });

  it('produces artifacts that the standard tools restore by hand (age -d | zstd -d | pg_restore)', () => {
    const manifest = JSON.parse(readFileSync(localPath(backupDir, rel.manifest(first.session)), 'utf8')) as {
      tenants: Record<string, { database: { path: string } }>;
    };
    const listing = breakGlassList(config, localPath(backupDir, manifest.tenants[real]!.database.path));
    assert.match(listing, /TABLE DATA public ir_attachment/);
    assert.match(listing, /TABLE DATA public res_partner/);
    const globals = spawnSync(
      'bash',
      ['-c', 'age -d -i "$1" "$2" | zstd -d -q -c', 'g', config.encryption.identityFile!, localPath(backupDir, rel.globals(first.session))],
      { encoding: 'utf8' },
    );
    assert.equal(globals.status, 0, globals.stderr);
    assert.match(globals.stdout, /CREATE ROLE odoo;/);
  });

  it('packs the filestore: each file listed with its SHA-1, size and pack; `age -d | zstd -d | tar -x` of the packs gives the Odoo filestore back', async () => {
    const entries = [];
    for await (const e of readFilestoreIndex(localPath(backupDir, rel.filestoreIndex(first.session, real)))) entries.push(e);
    assert.equal(entries.length, 60);
    // Break-glass, by hand: the packs alone, with the standard tools, are an Odoo filestore.
    const out = mkdtempSync(path.join(tmpdir(), 'odoo-dr-breakglass-'));
    for (const pack of new Set(entries.map((e) => e.pack!))) {
      const done = spawnSync(
        'bash',
        ['-c', 'age -d -i "$1" "$2" | zstd -d -q -c | tar -x -C "$3"', 'bg', config.encryption.identityFile!, localPath(backupDir, rel.pack(pack)), out],
        { encoding: 'utf8' },
      );
      assert.equal(done.status, 0, done.stderr);
    }
    for (const e of entries) {
      const plain = readFileSync(path.join(out, e.path));
      assert.equal(plain.length, e.size);
      assert.equal(createHash('sha1').update(plain).digest('hex'), e.sha1);
    }
    const summary = first.result.tenants.find((t) => t.tenant === real)!;
    assert.equal(summary.filestoreFiles, 60);
    assert.equal(summary.blobsUploaded, 60);
  });

  it('a second backup of unchanged filestores reads and uploads no file', async () => {
    const second = await run(config, { tenants: [...tenants, real], cloud: true });
    assert.equal(second.result.status, 'complete');
    for (const t of second.result.tenants) {
      assert.equal(t.blobsStored, 0, `${t.tenant} stored blobs again`);
      assert.equal(t.blobsUploaded, 0, `${t.tenant} uploaded blobs again`);
      assert.ok(t.blobsReused > 0);
    }
  });

  it('keeps secrets out of every workflow history (parent and children)', async () => {
    const env = await devServer();
    const parent = await env.client.workflow.getHandle(first.workflowId).fetchHistory();
    const texts = [historyText(parent)];
    // Every child it started (the tenants' locks), each run as recorded in the parent.
    const children = (parent.events ?? []).map((e) => e.childWorkflowExecutionStartedEventAttributes?.workflowExecution).filter((x) => x?.workflowId);
    assert.ok(children.length >= 3, 'one lock per tenant');
    for (const c of children) texts.push(historyText(await env.client.workflow.getHandle(c!.workflowId!, c!.runId ?? undefined).fetchHistory()));
    const identity = readFileSync(config.encryption.identityFile!, 'utf8');
    const privateKey = /AGE-SECRET-KEY-1[0-9A-Z]+/.exec(identity)![0];
    for (const secret of [config.postgres.password!, config.cloud!.secretAccessKey!, privateKey]) {
      for (const text of texts) assert.ok(!text.includes(secret), 'a secret is in a workflow history');
    }
    assert.match(texts[0]!, new RegExp(first.session), 'histories were decoded');
  });

  it('writes one audit line per session', () => {
    const lines = readFileSync(path.join(backupDir, 'logs/audit.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { session: string; result: string; startedBy: string; workflowId: string });
    const mine = lines.find((l) => l.session === first.session)!;
    assert.equal(mine.result, 'complete');
    assert.equal(mine.startedBy, 'test');
    assert.equal(mine.workflowId, first.workflowId);
  });

  it('refuses a backup of a name that is not a tenant before a session is created (no failed session, no alert)', async () => {
    const catalog = SessionCatalog.fromConfig(config);
    const before = await catalog.local.sessionNames();
    const err = await run(config, { tenants: [tenants[1]!, `absent_${s}`], cloud: false }).then(
      () => assert.fail('expected a refusal'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError, String(err));
    assert.match(String(err.cause?.message), new RegExp(`not tenants .*: absent_${s}; nothing was backed up`));
    assert.deepEqual(await catalog.local.sessionNames(), before, 'no session folder was created');
  });

  it('fails only the tenant dropped between discovery and dump (TenantNotFoundError, not retried)', async () => {
    const victim = `bk-victim-${s}`;
    await createTenant(adminConnection(), config.odoo.dataDir, { name: victim, moveLines: 100, files: 2 });
    const realActivities = createActivities({ config });
    const activities = {
      ...realActivities,
      // The real discovery, then the database disappears before its dump starts.
      discoverTenants: async (input: Parameters<typeof realActivities.discoverTenants>[0]) => {
        const found = await realActivities.discoverTenants(input);
        await dropDatabase(victim);
        return found;
      },
    };
    const { result } = await run(config, { tenants: [tenants[1]!, victim], cloud: false }, activities);
    await dropTenant(adminConnection(), config.odoo.dataDir, victim);
    assert.equal(result.status, 'partial');
    const failed = result.tenants.find((t) => t.tenant === victim)!;
    assert.equal(failed.status, 'failed');
    assert.match(failed.error!, /TenantNotFoundError: database "bk-victim-.*" does not exist/);
    assert.equal(result.tenants.find((t) => t.tenant === tenants[1])!.status, 'complete');
  });

  it('a tenant dropped (WITH FORCE) while its dump runs fails that dump; the worker process survives', async () => {
    const victim = `bk-dropped-${s}`;
    await createTenant(adminConnection(), config.odoo.dataDir, { name: victim, moveLines: 400_000, files: 1 });
    const tools = await findClientTools(15);
    const dumping = dumpDatabase({
      config,
      tools,
      session: backupSessionName(new Date(), uniqueSuffix()),
      tenant: victim,
      recipients: await recipientsFor(config),
    });
    dumping.catch(() => undefined); // observed below; avoids an 'unhandled rejection' note meanwhile
    await new Promise((r) => setTimeout(r, 300));
    await dropDatabase(victim);
    // Without a guard, node-postgres emits 'error' on the idle snapshot connection and kills the process.
    await assert.rejects(dumping, (err: Error) => /pg_dump|terminat|does not exist|PostgresError|Pipeline/i.test(`${err.name} ${err.message}`));
    await dropTenant(adminConnection(), config.odoo.dataDir, victim);
  });

  it('never uploads a local artifact that was corrupted after it was written', async () => {
    // Between the dump and its upload, a bit flips on disk.
    const activities = createActivities({ config, backupHooks: { afterDump: (file) => flipByte(file) } });
    const { result, session } = await run(config, { tenants: [tenants[1]!], cloud: true }, activities);
    assert.equal(result.status, 'failed');
    assert.match(result.tenants[0]!.error!, /ArtifactCorruptedError/);
    assert.equal(
      await headObject(config.cloud!, cloudKey(config.cloud!, rel.database(session, tenants[1]!))),
      null,
      'corrupted dump must not be in the bucket',
    );
    // Nothing was backed up: no session is kept, here or in the bucket (no "failed" manifest to list or retain).
    assert.equal(existsSync(localPath(backupDir, rel.session(session))), false);
    assert.equal(await headObject(config.cloud!, cloudKey(config.cloud!, rel.manifest(session))), null);
    assert.match(result.manifestPath, /none: nothing was backed up/);
  });

  it('the bucket unreachable at finalisation (every attempt): the verified local copy is kept with a manifest saying it has no cloud copy', async () => {
    const real = createActivities({ config });
    const activities = {
      ...real,
      finalizeBackupSession: (input: Parameters<typeof real.finalizeBackupSession>[0]) =>
        input.localOnly
          ? real.finalizeBackupSession(input)
          : Promise.reject(ApplicationFailure.nonRetryable('injected: the bucket does not answer', 'CloudUnavailableError')),
    };
    const { result, session } = await run(config, { tenants: [tenants[1]!], cloud: true, retention: false }, activities);
    assert.equal(result.status, 'complete', JSON.stringify(result));
    const manifest = await readManifest(localPath(backupDir, rel.manifest(session)));
    assert.equal(manifest.status, 'complete');
    assert.equal(manifest.cloud, null);
    assert.ok(
      manifest.warnings.some((w) => /no verified cloud copy/.test(w)),
      manifest.warnings.join('; '),
    );
    assert.equal(await headObject(config.cloud!, cloudKey(config.cloud!, rel.manifest(session))), null, 'no manifest in the bucket');
  });

  it('refuses to start on wrong S3 credentials: non-retryable, clear, no secret printed', async () => {
    const wrongSecret = `wrong-${uniqueSuffix()}-secret`;
    const bad = testConfig(backupDir, prefix, { AWS_SECRET_ACCESS_KEY: wrongSecret });
    const err = await run(bad, { tenants: [tenants[1]!], cloud: true }).then(
      () => assert.fail('expected failure'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError, String(err));
    const text = `${err.cause?.message}`;
    assert.match(text, /could not start: CloudAuthError/);
    assert.ok(!text.includes(wrongSecret));
  });

  it('refuses to start when the bucket does not exist', async () => {
    const bad = stackConfig({ DR_BACKUP_DIR: backupDir, DR_CLOUD_BUCKET: `s3://no-such-bucket-${s}/x` });
    const err = await run(bad, { tenants: [tenants[1]!], cloud: true }).then(
      () => assert.fail('expected failure'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    assert.match(`${err.cause?.message}`, /BucketNotFoundError/);
  });

  it('retries an unreachable PostgreSQL with backoff, then fails clearly and leaves no complete session', async () => {
    const bad = testConfig(backupDir, prefix, { POSTGRES_PORT: '1' });
    const session = backupSessionName(new Date(), uniqueSuffix());
    // The time-skipping server skips the retry backoff (about a minute of real time).
    const err = await run(bad, { tenants: [tenants[1]!], cloud: false, session }, undefined, timeSkippingServer).then(
      () => assert.fail('expected failure'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    assert.match(`${err.cause?.message}`, /DatabaseUnavailableError: .*127\.0\.0\.1:1/);
    assert.ok(!existsSync(localPath(backupDir, rel.manifest(session))));
    const history = await (await timeSkippingServer()).client.workflow.getHandle(`test/backup/${session}`).fetchHistory();
    // Discovery is a local activity: its attempts are in its markers (an activity's in its start event).
    const attempts = history.events!.flatMap((e) => {
      if (e.activityTaskStartedEventAttributes) return [e.activityTaskStartedEventAttributes.attempt ?? 0];
      const marker = e.markerRecordedEventAttributes;
      const data = marker?.markerName === 'core_local_activity' ? marker.details?.data?.payloads?.[0]?.data : undefined;
      return data ? [(JSON.parse(Buffer.from(data).toString()) as { attempt: number }).attempt] : [];
    });
    assert.equal(Math.max(...attempts), 6, `a transient error is retried up to the policy maximum (attempts: ${attempts.join(', ')})`);
  });

  it('fails the tenant, not the worker, when the backup disk is full; nothing is marked complete', async function () {
    const small = path.join(backupDir, `tiny-${s}`);
    mkdirSync(small);
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', small]);
    if (mounted.status !== 0) {
      // Without CAP_SYS_ADMIN there is no honest way to fill a disk here: say so loudly.
      assert.fail(`cannot mount a small tmpfs to simulate a full disk: ${mounted.stderr.toString()}`);
    }
    try {
      const full = testConfig(small, prefix);
      const { result, session } = await run(full, { tenants: [tenants[0]!], cloud: false, retention: false });
      assert.equal(result.status, 'failed');
      assert.match(result.tenants[0]!.error!, /DiskFullError/);
      const manifestFile = localPath(small, rel.manifest(session));
      if (existsSync(manifestFile)) assert.notEqual((await readManifest(manifestFile)).status, 'complete');
      // What the failed tenant wrote is removed: it would only fill the disk for the next tenant.
      assert.equal(existsSync(localPath(small, rel.tenantDir(session, tenants[0]!))), false, 'no leftover of the failed tenant');
    } finally {
      spawnSync('umount', [small]);
    }
  });

  after(async () => {
    // Leave the bucket as we found it.
    const cloud = config.cloud!;
    const keys: string[] = [];
    for await (const o of listObjects(cloud, `${prefix}/`)) keys.push(o.key);
    if (keys.length) await deleteObjects(cloud, keys);
    writeFileSync(path.join(backupDir, 'cleaned'), '');
  });
});
