/**
 * Fault suite: the services odoo-dr depends on fail during a backup, on the real local stack, with
 * the real `odoo-dr` binary and worker processes.
 *
 *   a. the Temporal dev server restarted during `odoo-dr backup --wait` (the CLI reconnects, the worker too)
 *   b. PostgreSQL stopped during a tenant's dump and started again ~10 s later
 *   c. the backup disk full (a small tmpfs) while two tenants are backed up
 *   d. Temporal down for longer than --reconnect-timeout: the CLI gives up with exit 3, the backup goes on
 *
 * What is measured, not assumed: "data lost" restores the session by hand, as the README's
 * break-glass section does (`age -d | zstd -d | pg_restore`, `age -d` of each blob), into a check
 * database and compares every table (row count and content hash) and every filestore file (SHA-1)
 * with the tenant; "leftovers" lists `.partial` files, blob temp files, scratch folders, scratch
 * databases and `odoo_dr_restore_%` roles that were not there before the case, an `.incomplete`
 * marker of a finished session, and multipart uploads under the case's bucket prefix.
 *
 * The dump is slowed with a high zstd level (DR_COMPRESSION_LEVEL, the level alone: the default
 * DR_DUMP_ZSTD_PARAMETERS would override its match finder and make the dump fast again) so that the
 * services fail while pg_dump is running (it blocks on the pipe), not before or after it. PostgreSQL is stopped for
 * about 10 s only: other test runs may share this stack while this file is developed.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import { localPath, rel } from '../../src/backup/layout';
import { readManifest } from '../../src/backup/manifest';
import type { DrConfig } from '../../src/config';
import { findClientTools } from '../../src/pgtools';
import { quoteIdent, serverVersion, withClient } from '../../src/postgres';
import { RESTORE_ROLE_PREFIX } from '../../src/restore/restore-role';
import { SCRATCH_MARKER_PREFIX } from '../../src/restore/scratch';
import { createS3Client, deleteObjects, listObjects } from '../../src/storage/s3';
import { temporalSettings } from '../../temporal/connection';
import type { BackupResult } from '../../workflows/backup';
import { createTenant, dropTenant, type PgAdminConnection } from '../fixtures/odoo-tenants';
import { tenantActivityAttempt } from '../helpers/backup-activities';
import { runCli, startCliWorker, workflowIdOf, type CliRun } from '../helpers/cli';
import { REPO_ROOT, stackConfig, uniqueSuffix } from '../helpers/config';
import { filestoreFiles } from '../helpers/files';
import { adminQuery, adminConnection } from '../helpers/pg';
import { recordFault } from './table';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `scripts/stack.sh stop|start SERVICE`, asynchronously: the CLI and worker pipes keep draining meanwhile. */
async function stack(action: 'stop' | 'start', service: 'temporal' | 'postgres'): Promise<void> {
  await run('bash', [path.join(REPO_ROOT, 'scripts/stack.sh'), action, service], { cwd: REPO_ROOT, timeout: 120_000 });
}

async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs: number, everyMs = 50): Promise<T> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const value = await check();
    if (value !== undefined) return value;
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Every file below `dir` (relative paths). */
function walk(dir: string, prefix = ''): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(path.join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`],
  );
}

/** Content of every base table of a database: `table:rows:hash` (order-independent hash of the rows). */
async function tableFingerprints(config: DrConfig, database: string): Promise<Map<string, string>> {
  return withClient(config.postgres, database, async (c) => {
    const { rows: tables } = await c.query<{ t: string }>(
      "SELECT format('%I.%I', table_schema, table_name) AS t FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
    );
    const out = new Map<string, string>();
    for (const { t } of tables) {
      const { rows } = await c.query<{ n: string; h: string | null }>(
        `SELECT count(*) AS n, md5(string_agg(md5(x::text), '' ORDER BY md5(x::text))) AS h FROM ${t} x`,
      );
      out.set(t, `${rows[0]!.n}:${rows[0]!.h}`);
    }
    return out;
  });
}

/**
 * Data lost by a session for one tenant, measured the break-glass way: the dump decrypted and
 * restored into a check database, each table compared with the tenant's; each filestore file's
 * blob decrypted and its SHA-1 compared. Returns the number of tables and files that differ or are missing.
 */
async function dataLost(config: DrConfig, session: string, tenant: string, checkDb: string): Promise<{ lost: number; detail: string[] }> {
  const detail: string[] = [];
  const key = config.encryption.identityFile!;
  const tools = await findClientTools((await serverVersion(config.postgres)).major);
  await adminQuery(`DROP DATABASE IF EXISTS ${quoteIdent(checkDb)} WITH (FORCE)`);
  await adminQuery(`CREATE DATABASE ${quoteIdent(checkDb)} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`);
  try {
    const dump = localPath(config.backupDir, rel.database(session, tenant));
    const { host, port, user, password } = config.postgres;
    await new Promise<void>((resolve, reject) => {
      const sh = spawn(
        'bash',
        ['-o', 'pipefail', '-c', 'age -d -i "$KEY" "$DUMP" | zstd -dc | "$PG_RESTORE" --no-owner --no-privileges --exit-on-error -d "$CHECK_DB"'],
        {
          env: {
            ...process.env,
            KEY: key,
            DUMP: dump,
            PG_RESTORE: tools.pgRestore,
            CHECK_DB: checkDb,
            PGHOST: host,
            PGPORT: String(port),
            PGUSER: user,
            ...(password ? { PGPASSWORD: password } : {}),
          },
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      let err = '';
      sh.stderr.on('data', (d: Buffer) => (err += d.toString()));
      sh.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`break-glass restore of ${dump} failed (${code}): ${err}`))));
    });
    const original = await tableFingerprints(config, tenant);
    const restored = await tableFingerprints(config, checkDb);
    for (const [t, fp] of original) if (restored.get(t) !== fp) detail.push(`table ${t}: ${fp} in the tenant, ${restored.get(t) ?? 'missing'} in the backup`);
  } finally {
    await adminQuery(`DROP DATABASE IF EXISTS ${quoteIdent(checkDb)} WITH (FORCE)`);
  }
  // The filestore: every file of the tenant listed with its SHA-1, and the packs, unpacked by hand
  // (`age -d | zstd -d | tar -x`, break-glass), holding it.
  const index = new Map<string, string>();
  const packs = new Set<string>();
  for (const line of readFileSync(localPath(config.backupDir, rel.filestoreIndex(session, tenant)), 'utf8')
    .split('\n')
    .filter(Boolean)) {
    const e = JSON.parse(line) as { path?: string; sha1: string; pack?: string };
    if (e.path) index.set(e.path, e.sha1);
    if (e.pack) packs.add(e.pack);
  }
  const unpacked = mkdtempSync(path.join(tmpdir(), 'odoo-dr-unpacked-'));
  try {
    for (const pack of packs) {
      await run('bash', [
        '-o',
        'pipefail',
        '-c',
        'age -d -i "$1" "$2" | zstd -d -q -c | tar -x -C "$3"',
        'bg',
        key,
        localPath(config.backupDir, rel.pack(pack)),
        unpacked,
      ]);
    }
    for (const entry of filestoreFiles(path.join(config.odoo.filestoreRoot, tenant))) {
      const [file, sha1] = entry.split(':') as [string, string];
      if (index.get(file) !== sha1) {
        detail.push(`file ${file}: not listed with its SHA-1`);
        continue;
      }
      const kept = path.join(unpacked, sha1.slice(0, 2), sha1);
      if (!existsSync(kept) || createHash('sha1').update(readFileSync(kept)).digest('hex') !== sha1) detail.push(`file ${file}: not in its pack`);
    }
  } finally {
    rmSync(unpacked, { recursive: true, force: true });
  }
  return { lost: detail.length, detail };
}

interface Baseline {
  scratchDbs: Set<string>;
  roles: Set<string>;
}

async function scratchDatabases(): Promise<string[]> {
  const rows = (await adminQuery(
    "SELECT d.datname FROM pg_database d JOIN pg_shdescription s ON s.objoid = d.oid AND s.classoid = 'pg_database'::regclass WHERE s.description LIKE $1",
    [`${SCRATCH_MARKER_PREFIX}%`],
  )) as Array<{ datname: string }>;
  return rows.map((r) => r.datname);
}

async function restoreRoles(): Promise<string[]> {
  const rows = (await adminQuery('SELECT rolname FROM pg_roles WHERE rolname LIKE $1', [`${RESTORE_ROLE_PREFIX}%`])) as Array<{ rolname: string }>;
  return rows.map((r) => r.rolname);
}

async function baseline(): Promise<Baseline> {
  return { scratchDbs: new Set(await scratchDatabases()), roles: new Set(await restoreRoles()) };
}

/** What a case left behind (see the file comment); `sessions` are finished sessions of the case. */
async function leftovers(config: DrConfig, before: Baseline, sessions: string[]): Promise<string[]> {
  const dir = config.backupDir;
  const left: string[] = [];
  for (const f of walk(dir)) {
    if (f.endsWith('.partial')) left.push(`${f} (partial file)`);
    else if (f.startsWith('blobs/.tmp/') || f.startsWith('packs/.tmp/')) left.push(`${f} (pack temp file)`);
  }
  // scratch/<host>.<pid>/ is each worker process's own folder; anything in it is a leftover.
  const scratch = path.join(dir, 'scratch');
  for (const owner of existsSync(scratch) ? readdirSync(scratch) : []) {
    for (const entry of readdirSync(path.join(scratch, owner))) left.push(`scratch/${owner}/${entry} (scratch)`);
  }
  for (const s of sessions) if (existsSync(localPath(dir, `${rel.session(s)}/.incomplete`))) left.push(`${rel.session(s)}/.incomplete`);
  for (const db of await scratchDatabases()) if (!before.scratchDbs.has(db)) left.push(`database ${db} (scratch)`);
  for (const role of await restoreRoles()) if (!before.roles.has(role)) left.push(`role ${role}`);
  const cloud = config.cloud!;
  // (Another fault case may have the S3 service down for a few seconds.)
  const uploads = await waitFor(
    'the bucket to list multipart uploads',
    () =>
      createS3Client(cloud)
        .send(new ListMultipartUploadsCommand({ Bucket: cloud.bucket, Prefix: `${cloud.prefix}/` }))
        .catch(() => undefined),
    60_000,
    1000,
  );
  for (const u of uploads.Uploads ?? []) left.push(`multipart upload ${u.Key} (${u.UploadId})`);
  return left;
}

async function stopWorker(worker: CliRun | undefined): Promise<void> {
  if (!worker || worker.child.exitCode !== null || worker.child.signalCode !== null) return;
  worker.child.kill('SIGTERM');
  await worker.result;
}

/** The partial file an attempt is writing for `dest` (`dest.<random>.partial`), if any. */
function partialOf(dest: string): string | undefined {
  const dir = path.dirname(dest);
  const prefix = `${path.basename(dest)}.`;
  const found = existsSync(dir) ? readdirSync(dir).find((f) => f.startsWith(prefix) && f.endsWith('.partial')) : undefined;
  return found ? path.join(dir, found) : undefined;
}

describe('faults: Temporal, PostgreSQL and the backup disk fail during a backup (real stack)', function () {
  this.timeout(600_000);
  const s = uniqueSuffix();
  /** 300k move lines: about 60 MB of dump before compression, a few seconds at a high zstd level. */
  const big = `flt-svc-big-${s}`;
  const small = `flt-svc-small-${s}`;
  /** Made in `before`: loading this file (mocha also loads it for other fault files, or with --dry-run) creates nothing. */
  let root = '';
  const prefix = `test-faults-svc-${s}`;
  const checkDb = `flt_svc_check_${s}`;
  const base = stackConfig();
  const admin = (): PgAdminConnection => adminConnection(base);

  /** A case's environment: its own backup folder, task queue and bucket prefix (retention only ever sees the latter). */
  const caseEnv = (name: string, extra: Record<string, string> = {}) => {
    const dir = extra.DR_BACKUP_DIR ?? path.join(root, name);
    mkdirSync(dir, { recursive: true });
    const env = {
      DR_BACKUP_DIR: dir,
      DR_LOG_DIR: path.join(root, `${name}-logs`),
      DR_TASK_QUEUE: `flt-svc-${name}-${s}`,
      DR_CLOUD_BUCKET: `s3://${base.cloud!.bucket}/${prefix}`,
      DR_DUMP_ZSTD_PARAMETERS: 'none',
      ...extra,
    };
    return { env, config: stackConfig(env) };
  };

  before(async function () {
    this.timeout(300_000);
    root = mkdtempSync(path.join(tmpdir(), 'odoo-dr-fault-svc-'));
    await createTenant(admin(), base.odoo.dataDir, { name: big, moveLines: 300_000, files: 8 });
    await createTenant(admin(), base.odoo.dataDir, { name: small, moveLines: 200, files: 3 });
  });

  after(async function () {
    this.timeout(120_000);
    // Whatever happened, the stack is left up.
    await stack('start', 'postgres');
    await stack('start', 'temporal');
    for (const t of [big, small]) await dropTenant(admin(), base.odoo.dataDir, t);
    await adminQuery(`DROP DATABASE IF EXISTS ${quoteIdent(checkDb)} WITH (FORCE)`);
    const keys: string[] = [];
    for await (const o of listObjects(base.cloud!, `${prefix}/`)) keys.push(o.key);
    if (keys.length) await deleteObjects(base.cloud!, keys);
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('a. Temporal restarted during `backup --wait`: the CLI reconnects and exits 0, the worker carries on; the session is complete, validates, data equal', async () => {
    const { env, config } = caseEnv('temporal', { DR_COMPRESSION_LEVEL: '15' });
    const before = await baseline();
    const worker = await startCliWorker(env);
    let restarted = false;
    try {
      const started = Date.now();
      const cli = runCli(['backup', '--tenant', big, '--no-cloud', '--wait'], env);
      const session = (await workflowIdOf(cli, 'backup/')).slice('backup/'.length);
      const dumpingNow = () => partialOf(localPath(config.backupDir, rel.database(session, big)));
      await waitFor('the dump to be written', () => (dumpingNow() ? true : undefined), 120_000);
      const dumping = dumpingNow()!;
      try {
        await stack('stop', 'temporal');
        assert.ok(existsSync(dumping), 'Temporal went down while the dump was being written');
        await sleep(5_000);
      } finally {
        await stack('start', 'temporal');
        restarted = true;
      }
      const done = await cli.result;
      assert.equal(done.code, 0, done.out);
      assert.match(done.stderr, /Temporal at \S+ unavailable \(.*\), reconnecting… \(workflow backup\/\S+ keeps running on the server\)/);
      assert.match(done.stderr, /reconnected to Temporal at \S+ after [\d.]+ (ms|s|min)/);
      assert.match(done.stdout, new RegExp(`session ${session}: COMPLETE`));
      // The progress display survived the restart (its pending query used to throw "Channel has been
      // shut down" and turn a complete backup into exit 1); whether it redraws before the end depends
      // on how long the backup still runs after the reconnection, so only its survival is asserted.
      assert.doesNotMatch(done.out, /Channel has been shut down|Unhandled/i);
      assert.equal(worker.child.exitCode, null, `the worker survived the restart: ${worker.out().slice(-2000)}`);
      const waited = Date.now() - started;

      const manifest = await readManifest(localPath(config.backupDir, rel.manifest(session)));
      assert.equal(manifest.status, 'complete');
      assert.equal(manifest.tenants[big]!.status, 'complete');
      // The same worker, after the restart, restores the session into a neutralized scratch copy.
      const validation = await runCli(['validate', session, '--restore-test', '--no-cloud', '--wait'], env).result;
      assert.equal(validation.code, 0, validation.out);
      assert.match(validation.stdout, /: PASS/);

      const { lost, detail } = await dataLost(config, session, big, checkDb);
      assert.deepEqual(detail, [], 'the backup holds the tenant exactly');
      const left = await leftovers(config, before, [session]);
      assert.deepEqual(left, []);
      const { attempt, lastFailure } = await tenantAttempt(config, session, big);
      recordFault({
        fault: 'Temporal dev server restarted (~5 s down) during `odoo-dr backup --wait`, mid-dump',
        outcome:
          `CLI reconnected and exited 0 after ${(waited / 1000).toFixed(0)} s; worker kept running (backupTenant done on attempt ${attempt}` +
          `${lastFailure ? `, after "${lastFailure.slice(0, 60)}"` : ''}); session complete, validated with a restore test`,
        dataLost: lost,
        leftovers: left,
      });
    } finally {
      if (!restarted) await stack('start', 'temporal');
      await stopWorker(worker);
    }
  });

  it('b. PostgreSQL stopped during the dump, started ~10 s later: the backup retries and completes, nothing partial left; data equal', async () => {
    const { env, config } = caseEnv('postgres', { DR_COMPRESSION_LEVEL: '13' });
    const before = await baseline();
    const worker = await startCliWorker(env);
    let pgUp = true;
    try {
      const cli = runCli(['backup', '--tenant', big, '--no-cloud', '--wait'], env);
      const session = (await workflowIdOf(cli, 'backup/')).slice('backup/'.length);
      const dumpingNow = () => partialOf(localPath(config.backupDir, rel.database(session, big)));
      await waitFor(
        'the dump to be written',
        () => {
          const f = dumpingNow();
          return f && statSync(f).size > 0 ? true : undefined;
        },
        120_000,
        20,
      );
      const stoppedAt = Date.now();
      try {
        pgUp = false;
        await stack('stop', 'postgres');
        await sleep(Math.max(0, 10_000 - (Date.now() - stoppedAt)));
      } finally {
        await stack('start', 'postgres');
        pgUp = true;
      }
      const downMs = Date.now() - stoppedAt;
      const done = await cli.result;
      const manifest = await readManifest(localPath(config.backupDir, rel.manifest(session)));
      const tenantDir = localPath(config.backupDir, rel.tenantDir(session, big));
      let outcome: string;
      let lost = 0;
      if (manifest.tenants[big]!.status === 'complete') {
        assert.equal(done.code, 0, done.out);
        assert.equal(manifest.status, 'complete');
        const measured = await dataLost(config, session, big, checkDb);
        assert.deepEqual(measured.detail, [], 'the backup holds the tenant exactly');
        lost = measured.lost;
        const { attempt, lastFailure } = await tenantAttempt(config, session, big);
        assert.ok(attempt > 1, 'the dump that PostgreSQL cut was retried');
        outcome = `backupTenant retried, complete on attempt ${attempt}${lastFailure ? ` (the one before: "${lastFailure.slice(0, 90)}")` : ''}; session complete`;
      } else {
        // The other acceptable outcome: the tenant failed, and nothing of it is marked complete or left behind.
        assert.equal(done.code, 1, done.out);
        assert.notEqual(manifest.status, 'complete');
        assert.equal(existsSync(tenantDir), false, 'no folder of the failed tenant in the session');
        outcome = `tenant failed (${manifest.tenants[big]!.error}); nothing of it in the session`;
      }
      const left = await leftovers(config, before, [session]);
      assert.deepEqual(left, []);
      recordFault({
        fault: `PostgreSQL stopped (pg_ctl -m fast) during the dump, started ${(downMs / 1000).toFixed(0)} s later`,
        outcome,
        dataLost: lost,
        leftovers: left,
      });
    } finally {
      if (!pgUp) await stack('start', 'postgres');
      await stopWorker(worker);
    }
  });

  it('c. backup disk full (small tmpfs), two tenants: the one that does not fit fails with DiskFullError and leaves nothing, the other is complete', async () => {
    const tiny = path.join(root, 'tiny');
    mkdirSync(tiny);
    // Room for the small tenant's session (about 100 KiB), not for the big one's dump (about 7 MiB).
    const mounted = await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', tiny]).then(
      () => true,
      (err: Error) => assert.fail(`cannot mount a small tmpfs to fill a disk for real (needs root, like the rest of the stack): ${err.message}`),
    );
    let worker: CliRun | undefined;
    try {
      // One tenant at a time: the full disk is the big tenant's, whichever goes first.
      const { env, config } = caseEnv('diskfull', { DR_BACKUP_DIR: tiny, DR_MAX_PARALLEL_BACKUPS: '1' });
      const before = await baseline();
      const fingerprintBefore = await tableFingerprints(config, big);
      worker = await startCliWorker(env);
      const done = await runCli(['--json', 'backup', '--tenant', big, small, '--no-cloud', '--wait'], env).result;
      assert.equal(done.code, 1, `a partial session exits 1: ${done.out}`);
      const result = JSON.parse(done.stdout) as BackupResult;
      assert.equal(result.status, 'partial', done.out);
      const failed = result.tenants.find((t) => t.tenant === big)!;
      assert.equal(failed.status, 'failed');
      assert.match(failed.error ?? '', /DiskFullError/);
      assert.equal(result.tenants.find((t) => t.tenant === small)!.status, 'complete');

      const session = result.session;
      const manifest = await readManifest(localPath(tiny, rel.manifest(session)));
      assert.equal(manifest.status, 'partial');
      assert.equal(manifest.tenants[small]!.status, 'complete');
      assert.equal(manifest.tenants[big]!.status, 'failed');
      assert.equal(existsSync(localPath(tiny, rel.tenantDir(session, big))), false, 'nothing of the failed tenant in the session');
      assert.deepEqual(readdirSync(localPath(tiny, `${rel.session(session)}/tenants`)), [small]);

      const { lost, detail } = await dataLost(config, session, small, checkDb);
      assert.deepEqual(detail, [], 'the tenant that fitted is backed up exactly');
      assert.deepEqual(await tableFingerprints(config, big), fingerprintBefore, 'the tenant that did not fit is untouched');
      const left = await leftovers(config, before, [session]);
      assert.deepEqual(left, []);
      recordFault({
        fault: 'backup disk full (1 MiB tmpfs) during a two-tenant backup',
        outcome: 'the tenant that did not fit failed with DiskFullError and left nothing in the session; the other complete; session partial, exit 1',
        dataLost: lost,
        leftovers: left,
      });
    } finally {
      await stopWorker(worker);
      if (mounted) await run('umount', [tiny]).catch(() => run('umount', ['-l', tiny]));
    }
  });

  it('d. Temporal down longer than --reconnect-timeout: the CLI stops waiting with exit 3 naming the workflow; the backup completes anyway', async () => {
    const { env, config } = caseEnv('giveup');
    const before = await baseline();
    let worker: CliRun | undefined;
    let restarted = false;
    try {
      // No worker yet: the workflow waits, so Temporal goes down while the CLI waits for sure.
      const cli = runCli(['--reconnect-timeout', '0.1', 'backup', '--tenant', small, '--no-cloud', '--wait'], env);
      const workflowId = await workflowIdOf(cli, 'backup/');
      const session = workflowId.slice('backup/'.length);
      let done: Awaited<CliRun['result']>;
      try {
        await stack('stop', 'temporal');
        done = await cli.result;
      } finally {
        await stack('start', 'temporal');
        restarted = true;
      }
      assert.equal(done.code, 3, done.out);
      assert.match(done.stderr, /unreachable for [\d.]+ s: stopped waiting for workflow backup\/\S+, which keeps running on the server/);
      assert.ok(done.stderr.includes(`temporal workflow show -w ${workflowId}`), done.stderr);
      worker = await startCliWorker(env);
      const result = await withTemporalClient(config, (client) => client.workflow.getHandle(workflowId).result() as Promise<BackupResult>);
      assert.equal(result.status, 'complete');
      const { lost, detail } = await dataLost(config, session, small, checkDb);
      assert.deepEqual(detail, []);
      const left = await leftovers(config, before, [session]);
      assert.deepEqual(left, []);
      recordFault({
        fault: 'Temporal down longer than `--reconnect-timeout` while `odoo-dr backup --wait` waits',
        outcome: 'CLI exit 3 naming the workflow and `temporal workflow show -w …`; the backup completed once Temporal was back',
        dataLost: lost,
        leftovers: left,
      });
    } finally {
      if (!restarted) await stack('start', 'temporal');
      await stopWorker(worker);
    }
  });
});

/**
 * The attempt on which a tenant's backupTenant activity ended, and the failure of the attempt before
 * (the history keeps only the last attempt's start event, which carries the previous failure).
 */
async function tenantAttempt(config: DrConfig, session: string, tenant: string): Promise<{ attempt: number; lastFailure?: string }> {
  return withTemporalClient(config, (client) => tenantActivityAttempt(client, `backup/${session}`, session, tenant));
}

/** A short-lived client of the stack's Temporal (fresh connection: the server may just have restarted). */
async function withTemporalClient<T>(config: DrConfig, fn: (client: Client) => Promise<T>): Promise<T> {
  const { connectionOptions, namespace } = temporalSettings(config, {});
  const connection = await Connection.connect(connectionOptions);
  try {
    return await fn(new Client({ connection, namespace }));
  } finally {
    await connection.close();
  }
}
