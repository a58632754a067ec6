/**
 * S3 faults on the real stack: odoo-dr's S3 endpoint (DR_S3_ENDPOINT) points at a fault-injecting
 * proxy in front of versitygw (test/helpers/fault-proxy.ts), or versitygw itself is stopped.
 * Every case measures the data (row checksums of every table, filestore file hashes, bucket objects
 * against the local session) and what was left behind, then records its row in the fault table.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual, promisify } from 'node:util';
import type { Readable } from 'node:stream';
import { AbortMultipartUploadCommand, GetObjectCommand, ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import type { DrConfig } from '../../src/config';
import { quoteIdent, withClient } from '../../src/postgres';
import { cloudKey, createS3Client, deleteObjects, listObjects } from '../../src/storage/s3';
import type { BackupResult } from '../../workflows/backup';
import type { RecoveryResult } from '../../workflows/recovery';
import type { ValidationReport } from '../../workflows/validation';
import { createTenant, dropTenant, type PgAdminConnection } from '../fixtures/odoo-tenants';
import { tenantActivityAttempt } from '../helpers/backup-activities';
import { runCli, startCliWorker, workflowIdOf, type CliRun } from '../helpers/cli';
import { REPO_ROOT, stackConfig, uniqueSuffix } from '../helpers/config';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { filestoreFiles } from '../helpers/files';
import { adminQuery, adminConnection } from '../helpers/pg';
import { devServer } from '../helpers/temporal';
import { recordFault } from './table';

const execFileP = promisify(execFile);

/** Every table's row count and content checksum (md5 of its rows), and every filestore file's SHA-1, one line each. */
async function fingerprint(config: DrConfig, tenant: string): Promise<string[]> {
  const lines: string[] = [];
  await withClient(config.postgres, tenant, async (c) => {
    const tables = await c.query<{ t: string }>(
      "SELECT quote_ident(table_name) AS t FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
    );
    for (const { t } of tables.rows) {
      const { rows } = await c.query<{ n: string; h: string | null }>(
        `SELECT count(*) AS n, md5(string_agg(x::text, '|' ORDER BY x::text)) AS h FROM public.${t} x`,
      );
      lines.push(`table ${t}:${rows[0]!.n}:${rows[0]!.h}`);
    }
  });
  lines.push(...filestoreFiles(path.join(config.odoo.filestoreRoot, tenant)).map((f) => `file ${f}`));
  return lines;
}

/** Lines of `before` that are not in `after` (a table whose rows differ, a file missing or changed). */
function lost(before: string[], after: string[]): string[] {
  const have = new Set(after);
  return before.filter((l) => !have.has(l));
}

function json<T>(out: string): T {
  try {
    return JSON.parse(out.slice(out.indexOf('{'))) as T;
  } catch {
    throw new Error(`no JSON result in the command's output:\n${out.slice(-3000)}`);
  }
}

/** Every regular file under `dir`, relative, sorted. */
function walk(dir: string, prefix = ''): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name), `${prefix}${e.name}/`) : e.isFile() ? [`${prefix}${e.name}`] : []))
    .sort();
}

async function sha256Of(body: Readable): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of body) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function stopWorker(w: CliRun | undefined): Promise<void> {
  if (!w) return;
  if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGTERM');
  await w.result;
}

const stack = (verb: 'stop' | 'start', service: string) => execFileP('bash', [path.join(REPO_ROOT, 'scripts/stack.sh'), verb, service], { cwd: REPO_ROOT });

async function s3Up(endpoint: string): Promise<boolean> {
  try {
    await fetch(endpoint, { signal: AbortSignal.timeout(2000) });
    return true;
  } catch {
    return false;
  }
}

describe('S3 faults: odoo-dr behind a fault-injecting proxy, and versitygw stopped (real stack)', function () {
  this.timeout(600_000);
  const s = uniqueSuffix();
  const tenant = `fs3-${s}`;
  // Created by `before` (a run that --grep excludes every case here must leave nothing behind).
  const root = path.join(tmpdir(), `odoo-dr-faults-s3-${s}`);
  const backupDir = path.join(root, 'backups');
  const dataDir = path.join(root, 'odoo-data');
  const prefix = `faults-s3-${s}`;
  const direct = stackConfig().cloud!.endpoint!;
  const base = {
    DR_BACKUP_DIR: backupDir,
    DR_LOG_DIR: path.join(backupDir, 'logs'),
    ODOO_DATA_DIR: dataDir,
    DR_CLOUD_BUCKET: `s3://odoo-dr-local/${prefix}`,
    DR_COMPRESSION_LEVEL: '1',
    DR_TASK_QUEUE: `faults-s3-${s}`,
  };
  /** Reads and checks from the test itself go straight to versitygw, never through the proxy. */
  const config = stackConfig({ ...base, DR_S3_ENDPOINT: direct });
  const cloud = config.cloud!;
  let s3: S3Client;
  let proxy: FaultProxy;
  let env: Record<string, string>;
  let worker: CliRun | undefined;
  let original: string[] = [];
  let session = '';

  const admin = (): PgAdminConnection => adminConnection(config);

  /** Local files of a session and the blobs, each compared with its bucket object: what is missing or different there. */
  async function bucketDiffers(name: string): Promise<string[]> {
    const local = [
      ...walk(path.join(backupDir, 'sessions', name)).map((f) => `sessions/${name}/${f}`),
      ...walk(path.join(backupDir, 'packs')).map((f) => `packs/${f}`),
    ].filter((f) => !/(^|\/)\.incomplete$|\.partial$/.test(f));
    assert.ok(local.length >= 8, `the local session ${name} has its files (${local.length})`);
    const inBucket = new Map<string, number>();
    for await (const o of listObjects(cloud, `${prefix}/`)) inBucket.set(o.key, o.bytes);
    const differs: string[] = [];
    for (const rel of local) {
      const key = cloudKey(cloud, rel);
      if (!inBucket.has(key)) {
        differs.push(`${rel} missing`);
        continue;
      }
      const out = await s3.send(new GetObjectCommand({ Bucket: cloud.bucket, Key: key }));
      const mine = readFileSync(path.join(backupDir, rel));
      if (rel.endsWith('/entry.json')) {
        // The tenant's entry is written compact locally and pretty-printed in the bucket: same content.
        const remote = Buffer.concat(await (out.Body as Readable).toArray()).toString('utf8');
        if (!isDeepStrictEqual(JSON.parse(remote), JSON.parse(mine.toString('utf8')))) differs.push(`${rel} differs`);
        continue;
      }
      const remote = await sha256Of(out.Body as Readable);
      if (remote !== createHash('sha256').update(mine).digest('hex')) differs.push(`${rel} differs`);
    }
    return differs;
  }

  /** Multipart uploads under the prefix (initiated since `since`, when given). */
  async function multipartUploads(since?: Date): Promise<Array<{ key: string; uploadId: string }>> {
    const out = await s3.send(new ListMultipartUploadsCommand({ Bucket: cloud.bucket, Prefix: `${prefix}/` }));
    return (out.Uploads ?? [])
      .filter((u) => !since || !u.Initiated || u.Initiated.getTime() >= since.getTime() - 2_000)
      .map((u) => ({ key: u.Key!, uploadId: u.UploadId! }));
  }

  /**
   * What odoo-dr left behind: scratch files, partial files, multipart uploads (started during the
   * case), shadow/scratch databases, shadow folders, restore roles of the worker.
   */
  async function leftovers(): Promise<string[]> {
    const out: string[] = [];
    for (const f of walk(path.join(backupDir, 'scratch'))) out.push(`scratch/${f}`);
    for (const f of [...walk(backupDir).map((x) => path.join(backupDir, x)), ...walk(dataDir).map((x) => path.join(dataDir, x))]) {
      if (f.endsWith('.partial')) out.push(f);
    }
    for (const u of await multipartUploads(caseStarted)) out.push(`multipart upload ${u.key} (${u.uploadId})`);
    const dbs = (await adminQuery("SELECT datname FROM pg_database WHERE datname LIKE $1 ESCAPE '!'", [`${tenant.replace(/[!_%]/g, '!$&')}!_dr!_%`])) as Array<{
      datname: string;
    }>;
    for (const d of dbs) out.push(`database ${d.datname}`);
    const filestoreRoot = config.odoo.filestoreRoot;
    for (const e of existsSync(filestoreRoot) ? readdirSync(filestoreRoot) : [])
      if (e.includes('.dr-shadow-') || e.endsWith('.partial')) out.push(`folder ${e}`);
    if (worker?.child.pid) {
      const roles = (await adminQuery(
        "SELECT rolname FROM pg_roles WHERE rolname LIKE 'odoo!_dr!_restore!_%' ESCAPE '!' AND shobj_description(oid, 'pg_authid') LIKE $1",
        [`%.${worker.child.pid}`],
      )) as Array<{ rolname: string }>;
      for (const r of roles) out.push(`role ${r.rolname}`);
    }
    return out;
  }

  /** The worker of the cases (a Temporal or PostgreSQL restart by another suite may have ended it): started again when it is gone. */
  async function ensureWorker(): Promise<void> {
    if (worker && worker.child.exitCode === null && worker.child.signalCode === null) return;
    worker = await startCliWorker(env);
  }

  let caseStarted = new Date();
  beforeEach(async () => {
    caseStarted = new Date();
    if (proxy) await ensureWorker();
  });

  /**
   * `odoo-dr …args` to its end, failing the case at once (with both outputs) when the worker
   * serving it exits meanwhile or the command outlives `limitMs`: a regression fails fast here
   * instead of waiting for the case's timeout.
   */
  async function cli(args: string[], opts: { env?: Record<string, string>; worker?: CliRun; limitMs?: number; run?: CliRun } = {}) {
    const run = opts.run ?? runCli(args, opts.env ?? env);
    const w = opts.worker ?? worker;
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<string>(
      (resolve) => (timer = setTimeout(() => resolve(`still running after ${(opts.limitMs ?? 240_000) / 1000} s`), opts.limitMs ?? 240_000)),
    );
    const died = w ? w.result.then((x) => `the worker exited (${x.code ?? x.signal})`) : new Promise<string>(() => undefined);
    const first = await Promise.race([run.result, limit, died]);
    clearTimeout(timer);
    if (typeof first !== 'string') return first;
    run.child.kill('SIGTERM');
    await run.result;
    throw new Error(`odoo-dr ${args.join(' ')}: ${first}\n--- command ---\n${run.out().slice(-3000)}\n--- worker ---\n${w?.out().slice(-3000) ?? ''}`);
  }

  /** A session of the tenant in the bucket, made now without faults when an earlier case did not leave one. */
  async function sessionInBucket(): Promise<string> {
    if (session) return session;
    proxy.setFaults({});
    const r = await cli(['--json', 'backup', '--tenant', tenant, '--wait']);
    assert.equal(r.code, 0, r.out);
    session = json<BackupResult>(r.out).session;
    return session;
  }

  before(async function () {
    this.timeout(300_000);
    mkdirSync(root, { mode: 0o700 });
    s3 = createS3Client(cloud);
    proxy = await startFaultProxy({ target: direct });
    env = { ...base, DR_S3_ENDPOINT: proxy.url };
    // A dump of ~16 MiB (two or three 8 MiB parts: a multipart upload, whatever the dump's zstd
    // parameters; 360,000 lines made ~10 MiB with zstd -1, near one part with the new default) and
    // 240 filestore files.
    await createTenant(admin(), dataDir, { name: tenant, moveLines: 720_000, files: 240 });
    original = await fingerprint(config, tenant);
    worker = await startCliWorker(env);
  });

  after(async function () {
    this.timeout(120_000);
    await stopWorker(worker);
    if (!(await s3Up(direct))) await stack('start', 's3');
    await proxy?.close();
    for (const d of (await adminQuery('SELECT datname FROM pg_database WHERE datname LIKE $1', [`${tenant}%`])) as Array<{ datname: string }>) {
      if (d.datname !== tenant) await adminQuery(`DROP DATABASE ${quoteIdent(d.datname)} WITH (FORCE)`);
    }
    await dropTenant(admin(), dataDir, tenant).catch(() => undefined);
    for (const u of await multipartUploads().catch(() => [])) {
      await s3.send(new AbortMultipartUploadCommand({ Bucket: cloud.bucket, Key: u.key, UploadId: u.uploadId })).catch(() => undefined);
    }
    const keys: string[] = [];
    for await (const o of listObjects(cloud, `${prefix}/`)) keys.push(o.key);
    if (keys.length) await deleteObjects(cloud, keys);
    s3?.destroy();
    rmSync(root, { recursive: true, force: true });
  });

  it('a: 30 % of uploads (PUT/POST) answered 503 SlowDown and 30 % reset after the server did the work, then the answers to a CreateMultipartUpload and a CompleteMultipartUpload lost: sessions complete, bucket copies equal the local ones', async () => {
    proxy.resetStats();
    proxy.setFaults({ methods: ['PUT', 'POST'], errorRate: 0.3, errorStatus: 503, resetRate: 0.3, seed: 11 });
    const r = await cli(['--json', 'backup', '--tenant', tenant, '--wait']);
    proxy.setFaults({});
    const random = { ...proxy.stats };
    assert.equal(r.code, 0, r.out);
    const result = json<BackupResult>(r.out);
    assert.equal(result.status, 'complete', r.out);
    session = result.session;
    assert.ok(random.errors > 0 && random.resets > 0, `faults were injected (${random.errors} errors, ${random.resets} resets)`);

    // The dump (multipart) again: the server creates the multipart upload and completes it, but
    // the client never hears it the first time (connection reset); the SDK asks again.
    proxy.resetStats();
    proxy.setFaults([
      { methods: ['POST'], path: /database\.dump\.zst\.age\?uploads=/, resetRate: 1, maxFaults: 1 },
      { methods: ['POST'], path: /database\.dump\.zst\.age\?uploadId=/, resetRate: 1, maxFaults: 1 },
    ]);
    const again = await cli(['--json', 'backup', '--tenant', tenant, '--wait']);
    proxy.setFaults({});
    const lostAnswers = proxy.stats.events.map((e) => (/\?uploads=/.test(e.url) ? 'CreateMultipartUpload' : 'CompleteMultipartUpload'));
    assert.deepEqual(lostAnswers, ['CreateMultipartUpload', 'CompleteMultipartUpload']);
    assert.equal(again.code, 0, again.out);
    const second = json<BackupResult>(again.out);
    assert.equal(second.status, 'complete', again.out);

    // The bucket holds exactly the bytes of the local sessions and blobs.
    const differs = [...(await bucketDiffers(session)), ...(await bucketDiffers(second.session))];
    assert.deepEqual(differs, [], 'every artifact and blob in the bucket equals the local one');
    for (const name of [session, second.session]) {
      const check = await cli(['--json', 'validate', name, '-c', '--wait']);
      assert.equal(check.code, 0, check.out);
      assert.equal(json<ValidationReport>(check.out).status, 'pass', check.out);
    }
    const left = await leftovers();
    assert.deepEqual(left, [], 'no stale multipart upload, nothing in scratch');
    recordFault({
      fault:
        `S3: ${random.errors} uploads (PUT/POST) answered 503 SlowDown and ${random.resets} reset after the server stored them (20 % of ${random.requests} requests); ` +
        "then the answers to the dump's CreateMultipartUpload and CompleteMultipartUpload lost",
      outcome:
        'SDK retries; the upload created by the lost answer is aborted; both sessions complete, bucket copies equal the local sessions, validate -c passes',
      dataLost: differs.length,
      leftovers: left,
    });
  });

  it('b: recover -m full -c with +30 ms per request and 10 % of downloads truncated, 5 % reset, 5 % HTTP 500: the tenant comes back exactly', async () => {
    const name = await sessionInBucket();
    // Damage the tenant: half of the move lines gone, a third of the files gone, one file overwritten.
    await withClient(config.postgres, tenant, (c) => c.query('DELETE FROM account_move_line WHERE id % 2 = 0'));
    const files = walk(path.join(dataDir, 'filestore', tenant)).filter((f) => !f.startsWith('checklist/'));
    files.filter((_, i) => i % 3 === 0).forEach((f) => rmSync(path.join(dataDir, 'filestore', tenant, f)));
    writeFileSync(path.join(dataDir, 'filestore', tenant, files[1]!), 'overwritten');
    assert.notDeepEqual(await fingerprint(config, tenant), original);

    proxy.resetStats();
    proxy.setFaults({ latencyMs: 30, methods: ['GET'], truncateRate: 0.1, resetRate: 0.05, errorRate: 0.05, errorStatus: 500, seed: 31 });
    const started = Date.now();
    const rec = await cli(['--json', 'recover', '-m', 'full', '-c', '-s', name, '--tenant', tenant, '--yes', '--wait']);
    const seconds = Math.round((Date.now() - started) / 1000);
    proxy.setFaults({});
    const stats = { ...proxy.stats };
    const result = json<RecoveryResult>(rec.out);
    assert.equal(result.tenants[tenant]?.state, 'recovered', rec.out);
    assert.equal(rec.code, 0, rec.out);
    assert.ok(stats.truncations + stats.resets + stats.errors > 0, `faults were injected (${JSON.stringify({ ...stats, events: stats.events.length })})`);
    const after = await fingerprint(config, tenant);
    const missing = lost(original, after);
    assert.deepEqual(missing, [], 'every table and file as backed up');
    assert.deepEqual(lost(after, original), [], 'nothing more');
    const left = await leftovers();
    assert.deepEqual(left, []);
    recordFault({
      fault: `S3: recover -m full -c with +30 ms per request (${stats.requests} requests), ${stats.truncations} downloads truncated, ${stats.resets} reset, ${stats.errors} HTTP 500`,
      outcome: `recovered in ${seconds} s; every table checksum and filestore file equal to the backup`,
      dataLost: missing.length,
      leftovers: left,
    });
  });

  it('e: recover -c with the dump download stalled for 70 s mid-body (longer than the 60 s heartbeat timeout): the activity keeps heartbeating and the recovery completes in one attempt', async () => {
    const name = await sessionInBucket();
    await withClient(config.postgres, tenant, (c) => c.query('DELETE FROM account_move_line WHERE id % 5 = 0'));
    proxy.resetStats();
    // Every read of the dump from its middle on: whichever attempt downloads it waits as long.
    proxy.setFaults({ methods: ['GET'], path: /database\.dump\.zst\.age/, stallRate: 1, stallMs: 70_000 });
    const started = Date.now();
    const args = ['--json', 'recover', '-m', 'database-only', '-c', '-s', name, '--tenant', tenant, '--yes', '--wait'];
    const run = runCli(args, env);
    const id = await workflowIdOf(run, 'recovery/');
    const rec = await cli(args, { run });
    const seconds = Math.round((Date.now() - started) / 1000);
    proxy.setFaults({});
    const stalls = proxy.stats.stalls;
    const result = json<RecoveryResult>(rec.out);
    assert.equal(result.tenants[tenant]?.state, 'recovered', rec.out);
    assert.equal(rec.code, 0, rec.out);
    assert.ok(stalls >= 1, 'the dump download stalled');
    // The shadow was prepared by its first attempt: no heartbeat timeout threw a download away.
    const history = await (await devServer()).client.workflow.getHandle(id).fetchHistory();
    const scheduled = (history.events ?? []).find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'prepareRecoveryShadow');
    const attempts = (history.events ?? [])
      .filter(
        (e) => e.activityTaskStartedEventAttributes && e.activityTaskStartedEventAttributes.scheduledEventId?.toString() === scheduled?.eventId?.toString(),
      )
      .map((e) => e.activityTaskStartedEventAttributes!.attempt);
    assert.deepEqual(attempts, [1], 'prepareRecoveryShadow succeeded at its first attempt');
    const after = await fingerprint(config, tenant);
    const missing = lost(original, after);
    assert.deepEqual(missing, [], 'every table and file as backed up');
    assert.deepEqual(lost(after, original), []);
    const left = await leftovers();
    assert.deepEqual(left, []);
    recordFault({
      fault: 'S3: the dump download of recover -m database-only -c stalls 70 s in its middle (heartbeat timeout 60 s)',
      outcome: `the download kept heartbeating; shadow prepared at its first attempt; recovered in ${seconds} s; tables equal to the backup`,
      dataLost: missing.length,
      leftovers: left,
    });
  });

  it('d: validate -c with 30 % of downloads truncated and 15 % reset reports the session valid; with bytes corrupted it reports failure', async () => {
    const name = await sessionInBucket();
    proxy.resetStats();
    proxy.setFaults({ methods: ['GET'], truncateRate: 0.3, resetRate: 0.15, seed: 21 });
    const flaky = await cli(['--json', 'validate', name, '-c', '--wait']);
    proxy.setFaults({});
    const flakyStats = { ...proxy.stats };
    const report = json<ValidationReport>(flaky.out);
    assert.ok(flakyStats.truncations + flakyStats.resets > 0, 'faults were injected');
    assert.deepEqual(
      report.checks.filter((c) => c.status === 'fail'),
      [],
      'no check fails because a download was cut short',
    );
    assert.equal(report.status, 'pass');
    assert.equal(flaky.code, 0);

    // Wrong bytes, every time: the dump and one pack come back with a byte changed.
    const indexLines = readFileSync(path.join(backupDir, 'sessions', name, 'tenants', tenant, 'filestore.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean);
    const blob = `${(JSON.parse(indexLines.find((l) => l.includes('"bytes"'))!) as { pack: string }).pack}.tar.zst.age`;
    proxy.resetStats();
    proxy.setFaults({ methods: ['GET'], corruptRate: 1, path: new RegExp(`database\\.dump\\.zst\\.age|${path.basename(blob).replace(/\./g, '\\.')}`) });
    const bad = await cli(['--json', 'validate', name, '-c', '--wait']);
    proxy.setFaults({});
    const badReport = json<ValidationReport>(bad.out);
    assert.ok(proxy.stats.corruptions > 0);
    assert.equal(bad.code, 1, bad.out);
    assert.equal(badReport.status, 'fail');
    const failed = badReport.checks.filter((c) => c.status === 'fail').map((c) => c.name);
    for (const n of ['artifact-cloud', 'dump-integrity', 'filestore-blobs'])
      assert.ok(failed.includes(n), `${n} fails on wrong bytes (failed: ${failed.join(', ')})`);
    const differs = await bucketDiffers(name);
    const left = await leftovers();
    assert.deepEqual(left, []);
    recordFault({
      fault: `S3: validate -c with ${flakyStats.truncations} downloads truncated and ${flakyStats.resets} reset (15 % of GETs); then the dump and a pack corrupted on every read`,
      outcome: 'truncations: retried, session reported valid; wrong bytes: artifact-cloud, dump-integrity and filestore-blobs fail, never valid',
      dataLost: differs.length,
      leftovers: left,
    });
  });

  it("c: versitygw stopped for 20 s in the middle of a backup's uploads: the backup completes after it is back, or ends failed with nothing marked complete", async () => {
    // New files, so that blobs are uploaded too (the others are in the bucket already).
    const fsDir = path.join(dataDir, 'filestore', tenant);
    const added: string[] = [];
    for (let i = 0; i < 40; i++) {
      const content = randomBytes(20_000 + i);
      const sha1 = createHash('sha1').update(content).digest('hex');
      mkdirSync(path.join(fsDir, sha1.slice(0, 2)), { recursive: true });
      writeFileSync(path.join(fsDir, sha1.slice(0, 2), sha1), content);
      added.push(sha1);
    }
    // The new files go up in a new pack: any pack key the bucket did not have before.
    const oldPacks = new Set<string>();
    for await (const o of listObjects(cloud, cloudKey(cloud, 'packs/'))) oldPacks.add(o.key);
    const before = await fingerprint(config, tenant);
    // Straight to versitygw (no proxy), uploads slowed to 512 KiB/s so that the outage falls inside them.
    const queue = `faults-s3-outage-${s}`;
    const outageEnv = { ...base, DR_S3_ENDPOINT: direct, DR_TASK_QUEUE: queue, DR_BANDWIDTH_LIMIT: '512K' };
    const slow = await startCliWorker(outageEnv);
    let outcome = '';
    let dataLost = 0;
    try {
      const backup = runCli(['--json', 'backup', '--tenant', tenant, '--wait'], outageEnv);
      // Uploads have begun once a new blob or the dump's multipart upload is in the bucket.
      const inFlight = { multipart: 0, newBlobs: 0 };
      const uploading = async () => {
        inFlight.multipart = (await multipartUploads(caseStarted)).length;
        inFlight.newBlobs = 0;
        for await (const o of listObjects(cloud, cloudKey(cloud, 'packs/'))) if (!oldPacks.has(o.key)) inFlight.newBlobs++;
        return inFlight.multipart > 0 || inFlight.newBlobs > 0;
      };
      const until = Date.now() + 120_000;
      while (!(await uploading())) {
        assert.ok(Date.now() < until, `the uploads did not start: ${backup.out()}`);
        assert.equal(backup.child.exitCode, null, `the backup ended before its uploads: ${backup.out()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      let outageSeconds = 0;
      try {
        await stack('stop', 's3');
        const down = Date.now();
        assert.equal(await s3Up(direct), false, 'versitygw is down');
        assert.equal(backup.child.exitCode, null, 'the backup was still running when S3 went away');
        await new Promise((r) => setTimeout(r, 20_000));
        outageSeconds = Math.round((Date.now() - down) / 1000);
      } finally {
        await stack('start', 's3');
      }
      assert.ok(await s3Up(direct), 'versitygw is back');
      const r = await cli(['--json', 'backup', '--tenant', tenant, '--wait'], { run: backup, worker: slow });
      const result = json<BackupResult>(r.out);
      // How the tenant's backup got through: the attempt of its activity that ended it.
      const { attempt } = await tenantActivityAttempt((await devServer()).client, result.workflowId, result.session, tenant);
      const when = `S3 stopped with ${inFlight.newBlobs ? 'the pack of the 40 new files' : 'no new pack'} in the bucket${inFlight.multipart ? " and the dump's multipart upload under way" : ''}`;
      const sessions = json<{ sessions: Array<{ session: string; status: string }> }>(
        (await cli(['--json', 'sessions', 'list', '--cloud'], { env: outageEnv, worker: slow })).out,
      ).sessions;
      const listed = sessions.find((x) => x.session === result.session);
      if (result.status === 'complete') {
        assert.equal(r.code, 0, r.out);
        assert.equal(listed?.status, 'complete');
        const differs = await bucketDiffers(result.session);
        assert.deepEqual(differs, [], 'the bucket copy equals the local session');
        dataLost = differs.length;
        const check = await cli(['--json', 'validate', result.session, '-c', '--wait'], { env: outageEnv, worker: slow });
        assert.equal(json<ValidationReport>(check.out).status, 'pass', check.out);
        outcome = `${when}; backupTenant ended at attempt ${attempt} after the ${outageSeconds} s outage; session complete; bucket copy equals the local session; validate -c passes`;
      } else {
        assert.equal(r.code, 1, r.out);
        assert.notEqual(listed?.status, 'complete', 'a session that did not complete is never listed complete');
        outcome = `${when}; backup ended ${result.status} (backupTenant attempt ${attempt}) after the ${outageSeconds} s outage; not listed complete`;
      }
      // The tenant itself is untouched by a backup.
      dataLost += lost(before, await fingerprint(config, tenant)).length;
      assert.equal(dataLost, 0);
    } finally {
      await stopWorker(slow);
    }
    const left = await leftovers();
    assert.deepEqual(left, []);
    recordFault({ fault: "S3 server (versitygw) stopped for 20 s in the middle of a backup's uploads (512 KiB/s)", outcome, dataLost, leftovers: left });
  });
});
