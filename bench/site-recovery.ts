/**
 * Site-loss benchmark: N generated tenants are backed up to an isolated bucket prefix; then a
 * fresh host (empty PostgreSQL cluster with only `postgres`, new Temporal dev server, empty folders)
 * is recovered from the bucket with odoo-dr (`recoveryWorkflow` mode full, site, from the cloud:
 * roles, configuration, every tenant shadow-restored, verified and swapped,
 * DR_MAX_PARALLEL_BACKUPS at a time), against the same restores done with the bare tools in the
 * same run on another fresh cluster (S3 GetObject, `age -d | zstd -d`, `createdb -O odoo`,
 * `pg_restore -j2`, every filestore blob through `age -d`; 3 tenants at a time, no verification,
 * no shadow/swap, no orchestration). Prints the ratio and the RTO projected for 100 tenants of
 * 1 GiB from the rate odoo-dr measured.
 *
 *   node dist/bench/site-recovery.js [--tenants 20] [--move-lines 18000] [--files 20] [--runs 1]
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { Client as PgClient } from 'pg';
import type { DrConfig } from '../src/config';
import { deleteObjects, listObjects } from '../src/storage/s3';
import { temporalSettings } from '../temporal/connection';
import { createWorker, WORKFLOWS_PATH } from '../temporal/worker';
import type { BackupInput, BackupResult } from '../workflows/backup';
import { backupSessionName } from '../workflows/definitions';
import type { RecoveryInput, RecoveryResult } from '../workflows/recovery';
import { createTenant, dropTenant, type PgAdminConnection, type TenantInfo } from '../test/fixtures/odoo-tenants';
import { stackConfig } from '../test/helpers/config';
import { startFreshPostgres, startFreshSite, type FreshPostgres, type FreshSite } from '../test/helpers/fresh-site';

const { values: args } = parseArgs({
  options: {
    tenants: { type: 'string', default: '20' },
    // ≈ 14.4 MiB per tenant (pg_database_size; ~10 MiB of it is the empty schema): 20 tenants ≈ 290 MiB.
    'move-lines': { type: 'string', default: '18000' },
    files: { type: 'string', default: '20' },
    runs: { type: 'string', default: '1' },
  },
});
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const STACK_DIR = path.resolve(process.env.ODOO_DR_STACK_DIR ?? '/var/tmp/odoo-dr-stack');
const PG_BIN = `/usr/lib/postgresql/${process.env.ODOO_DR_PG_MAJOR ?? '15'}/bin`;
/** Tenants restored at once, by odoo-dr (DR_MAX_PARALLEL_BACKUPS) and by the bare baseline. */
const PARALLEL = 3;
/** Filestore blobs in flight per tenant: odoo-dr's restoreFilestore default, used for the baseline too. */
const BLOB_CONCURRENCY = 4;
const run = promisify(execFile);

interface Measured {
  odooDrMs: number;
  bareMs: number;
  report: RecoveryResult['report'];
}

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;

/** Where odoo-dr's wall time went, from the workflow's history (server timestamps). */
interface Phases {
  /** Start to the first shadow restore scheduled: plan, approval, roles, configuration. */
  beforeShadowsMs: number;
  /** First shadow scheduled to last shadow completed. */
  shadowsMs: number;
  /** Σ prepareRecoveryShadow time (started to completed). */
  shadowActivityMs: number;
  /** Last shadow completed to the workflow's end: stop Odoo, swaps, start, health, markers, report. */
  afterShadowsMs: number;
  /** Activities after the shadows, by type: count and Σ scheduled-to-completed time. */
  after: Record<string, { n: number; ms: number }>;
}

function eventMs(t: { seconds?: unknown; nanos?: number | null } | null | undefined): number {
  return Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;
}

function phasesOf(history: History): Phases {
  const events = history.events ?? [];
  const scheduled = new Map<string, { type: string; at: number }>();
  const started = new Map<string, number>();
  let start = Infinity;
  let end = 0;
  let firstShadow = Infinity;
  let lastShadow = 0;
  let shadowActivityMs = 0;
  const done: Array<{ type: string; scheduledAt: number; at: number }> = [];
  for (const e of events) {
    const at = eventMs(e.eventTime);
    start = Math.min(start, at);
    end = Math.max(end, at);
    const sch = e.activityTaskScheduledEventAttributes;
    if (sch) {
      const type = sch.activityType?.name ?? '?';
      scheduled.set(String(e.eventId), { type, at });
      if (type === 'prepareRecoveryShadow') firstShadow = Math.min(firstShadow, at);
    }
    if (e.activityTaskStartedEventAttributes) started.set(String(e.activityTaskStartedEventAttributes.scheduledEventId), at);
    const fin = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes;
    if (fin) {
      const s = scheduled.get(String(fin.scheduledEventId));
      if (!s) continue;
      done.push({ type: s.type, scheduledAt: s.at, at });
      if (s.type === 'prepareRecoveryShadow') {
        lastShadow = Math.max(lastShadow, at);
        shadowActivityMs += at - (started.get(String(fin.scheduledEventId)) ?? s.at);
      }
    }
  }
  const after: Phases['after'] = {};
  for (const d of done) {
    if (d.scheduledAt < lastShadow) continue;
    const a = (after[d.type] ??= { n: 0, ms: 0 });
    a.n++;
    a.ms += d.at - d.scheduledAt;
  }
  return { beforeShadowsMs: firstShadow - start, shadowsMs: lastShadow - firstShadow, shadowActivityMs, afterShadowsMs: end - lastShadow, after };
}

/** Runs `fn` over `items`, `limit` at a time; the first error wins (after the running ones settle). */
async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const lane = async () => {
    while (next < items.length && errors.length === 0) {
      const item = items[next++]!;
      await fn(item).catch((err: unknown) => void errors.push(err));
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (errors.length) throw errors[0];
}

async function sh(file: string, argv: string[], env?: NodeJS.ProcessEnv): Promise<void> {
  try {
    await run(file, argv, { env: env ?? process.env, maxBuffer: 16 * MiB });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`${path.basename(file)} ${argv.slice(0, 3).join(' ')}… failed: ${e.stderr?.trim() || e.message}`);
  }
}

/** `age -d` of a stream into `dest`. */
function ageDecryptTo(body: Readable, identityFile: string, dest: string): Promise<void> {
  const child = spawn('age', ['-d', '-i', identityFile, '-o', dest], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`age -d ${dest} exited ${code}: ${stderr.trim()}`))));
  });
  return Promise.all([pipeline(body, child.stdin), exited]).then(() => undefined);
}

async function pgCount(conn: { host: string; port: number; user: string; password: string }, database: string, sql: string): Promise<number> {
  const c = new PgClient({ ...conn, database });
  await c.connect();
  try {
    const { rows } = await c.query<{ n: string }>(sql);
    return Number(rows[0]!.n);
  } finally {
    await c.end();
  }
}

/** Regular files under a filestore folder, Odoo's `checklist/` markers excluded. */
function countFiles(dir: string, top = true): number {
  if (!existsSync(dir)) return 0;
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (top && e.name === 'checklist') continue;
    n += e.isDirectory() ? countFiles(path.join(dir, e.name), false) : 1;
  }
  return n;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** odoo-dr: site recovery of every tenant of the session onto a fresh host, from the bucket alone. */
async function odooDrRecovery(opts: {
  bucketUrl: string;
  etcDir: string;
  infos: TenantInfo[];
  workflowBundle: Awaited<ReturnType<typeof bundleWorkflowCode>>;
}): Promise<{ ms: number; result: RecoveryResult; phases: Phases }> {
  let site: FreshSite | undefined;
  try {
    site = await startFreshSite();
    // The host is gone: its configuration too (it comes back from the archive, into DR_CONFIG_PATHS).
    rmSync(opts.etcDir, { recursive: true, force: true });
    const taskQueue = `bench-site-${randomBytes(3).toString('hex')}`;
    const env = { ...site.env, DR_CLOUD_BUCKET: opts.bucketUrl, DR_TASK_QUEUE: taskQueue, DR_CONFIG_PATHS: opts.etcDir, DR_MAX_PARALLEL_BACKUPS: String(PARALLEL) };
    const config = site.config(env);
    const native = await NativeConnection.connect({ address: site.temporal.address });
    const connection = await Connection.connect({ address: site.temporal.address });
    const client = new Client({ connection, namespace: 'default' });
    const worker = await createWorker({ config, connection: native, namespace: 'default', taskQueue, workflowBundle: opts.workflowBundle });
    const running = worker.run();
    let ms: number;
    let result: RecoveryResult;
    let phases: Phases;
    try {
      const input: RecoveryInput = { mode: 'full', site: true, fromCloud: true, approvedBy: 'bench', startedBy: 'bench' };
      const t0 = performance.now();
      result = await client.workflow.execute<(i: RecoveryInput) => Promise<RecoveryResult>>('recoveryWorkflow', {
        taskQueue,
        workflowId: `bench/site-recovery/${taskQueue}`,
        args: [input],
      });
      ms = performance.now() - t0;
      phases = phasesOf(await client.workflow.getHandle(`bench/site-recovery/${taskQueue}`).fetchHistory());
    } finally {
      worker.shutdown();
      await running;
      await connection.close();
      await native.close();
    }
    const bad = opts.infos.filter((t) => result.tenants[t.name]?.state !== 'recovered');
    if (bad.length) {
      throw new Error(
        `odoo-dr site recovery: ${bad.length} tenant(s) not recovered (workflow state ${result.state}): ` +
          bad.map((t) => `${t.name}: ${JSON.stringify(result.tenants[t.name])}`).join('; '),
      );
    }
    // Same data as the originals (outside the timing): move lines and filestore files.
    const conn = { host: config.postgres.host, port: config.postgres.port, user: config.postgres.user, password: config.postgres.password ?? '' };
    for (const t of opts.infos) {
      const lines = await pgCount(conn, t.name, 'SELECT count(*) AS n FROM account_move_line');
      const files = countFiles(path.join(config.odoo.filestoreRoot, t.name));
      if (lines !== t.tables.account_move_line || files !== t.fileCount) {
        throw new Error(`odoo-dr restored ${t.name} with ${lines} move lines and ${files} files, expected ${t.tables.account_move_line} and ${t.fileCount}`);
      }
    }
    return { ms, result, phases };
  } finally {
    await site?.stop();
  }
}

/** The bare tools: what a person with the bucket, the key and a shell would run, 3 tenants at a time. */
async function bareRecovery(opts: { stack: DrConfig; session: string; infos: TenantInfo[] }): Promise<number> {
  const cloud = opts.stack.cloud!;
  const identity = opts.stack.encryption.identityFile!;
  const s3 = new S3Client({
    region: cloud.region,
    endpoint: cloud.endpoint,
    forcePathStyle: cloud.forcePathStyle,
    ...(cloud.accessKeyId && cloud.secretAccessKey ? { credentials: { accessKeyId: cloud.accessKeyId, secretAccessKey: cloud.secretAccessKey } } : {}),
  });
  const key = (...parts: string[]) => [cloud.prefix, ...parts].filter((p) => p !== '').join('/');
  const get = async (k: string) => (await s3.send(new GetObjectCommand({ Bucket: cloud.bucket, Key: k }))).Body as Readable;
  let pg: FreshPostgres | undefined;
  let work: string | undefined;
  try {
    pg = await startFreshPostgres();
    work = mkdtempSync(path.join(STACK_DIR, 'bench-site-bare-'));
    const password = readFileSync(pg.passwordFile, 'utf8').trim();
    const env = { ...process.env, PGHOST: pg.host, PGPORT: String(pg.port), PGUSER: 'postgres', PGPASSWORD: password, PGDATABASE: 'postgres' };
    const tenantDir = (t: string) => `sessions/${opts.session}/tenants/${t}`;
    const scratch = work;

    const t0 = performance.now();
    await sh(path.join(PG_BIN, 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', 'CREATE ROLE odoo LOGIN'], env);
    await pool(opts.infos, PARALLEL, async ({ name }) => {
      const encrypted = path.join(scratch, `${name}.dump.zst.age`);
      const plain = path.join(scratch, `${name}.dump`);
      await pipeline(await get(key(tenantDir(name), 'database.dump.zst.age')), createWriteStream(encrypted));
      await sh('bash', ['-c', 'set -o pipefail; age -d -i "$1" "$2" | zstd -d -q > "$3"', 'x', identity, encrypted, plain]);
      await sh(path.join(PG_BIN, 'createdb'), ['-O', 'odoo', name], env);
      await sh(path.join(PG_BIN, 'pg_restore'), ['-j2', '--exit-on-error', '-d', name, plain], env);
      rmSync(encrypted);
      rmSync(plain);
      const chunks: Buffer[] = [];
      for await (const chunk of await get(key(tenantDir(name), 'filestore.jsonl'))) chunks.push(chunk as Buffer);
      const entries = Buffer.concat(chunks)
        .toString('utf8')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as { path: string; sha1: string; size: number });
      const dest = path.join(scratch, 'filestore', name);
      await pool(entries, BLOB_CONCURRENCY, async (e) => {
        mkdirSync(path.dirname(path.join(dest, e.path)), { recursive: true });
        await ageDecryptTo(await get(key('blobs', e.sha1.slice(0, 2), `${e.sha1}.age`)), identity, path.join(dest, e.path));
      });
    });
    const ms = performance.now() - t0;

    const conn = { host: pg.host, port: pg.port, user: 'postgres', password };
    for (const t of opts.infos) {
      const lines = await pgCount(conn, t.name, 'SELECT count(*) AS n FROM account_move_line');
      const files = countFiles(path.join(scratch, 'filestore', t.name));
      if (lines !== t.tables.account_move_line || files !== t.fileCount) {
        throw new Error(`bare tools restored ${t.name} with ${lines} move lines and ${files} files, expected ${t.tables.account_move_line} and ${t.fileCount}`);
      }
    }
    return ms;
  } finally {
    s3.destroy();
    await pg?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const count = Number(args.tenants);
  const moveLines = Number(args['move-lines']);
  const files = Number(args.files);
  const runs = Number(args.runs);
  const s = randomBytes(4).toString('hex');
  mkdirSync(STACK_DIR, { recursive: true });
  const root = mkdtempSync(path.join(STACK_DIR, 'bench-site-'));
  const dataDir = path.join(root, 'odoo-data');
  const backupDir = path.join(root, 'backups');
  const etcDir = path.join(root, 'etc-odoo');
  mkdirSync(etcDir, { recursive: true });
  writeFileSync(path.join(etcDir, 'odoo.conf'), '[options]\ndb_user = odoo\n');
  const bucket = stackConfig().cloud?.bucket;
  if (!bucket) throw new Error('the local stack configuration has no DR_CLOUD_BUCKET');
  const bucketUrl = `s3://${bucket}/bench-site-${s}`;
  const taskQueue = `bench-site-backup-${s}`;
  const stack = stackConfig({
    DR_BACKUP_DIR: backupDir,
    DR_LOG_DIR: path.join(backupDir, 'logs'),
    ODOO_DATA_DIR: dataDir,
    DR_CONFIG_PATHS: etcDir,
    DR_CLOUD_BUCKET: bucketUrl,
    DR_TASK_QUEUE: taskQueue,
    DR_MAX_PARALLEL_BACKUPS: String(PARALLEL),
  });
  const { host, port, user, password } = stack.postgres;
  const admin: PgAdminConnection = { host, port, user, ...(password ? { password } : {}) };
  const names = Array.from({ length: count }, (_, i) => `bench-site-${s}-${String(i).padStart(2, '0')}`);
  const infos: TenantInfo[] = [];
  console.log(`odoo-dr site-recovery benchmark, ${new Date().toISOString()}, ${count} tenants × ${moveLines} move lines + ${files} files, ${runs} run(s)`);

  try {
    const tc = performance.now();
    for (const name of names) infos.push(await createTenant(admin, dataDir, { name, moveLines, files }));
    const dbBytes = infos.reduce((a, t) => a + (t.dbSizeBytes ?? 0), 0);
    const fsBytes = infos.reduce((a, t) => a + t.filestoreBytes, 0);
    const fileCount = infos.reduce((a, t) => a + t.fileCount, 0);
    console.log(`tenants created in ${((performance.now() - tc) / 1000).toFixed(1)} s: databases ${(dbBytes / MiB).toFixed(1)} MiB (pg_database_size), filestores ${fileCount} files (${(fsBytes / MiB).toFixed(2)} MiB)`);

    const workflowBundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('WARN') });
    const { connectionOptions, namespace } = temporalSettings(stack, {});
    const native = await NativeConnection.connect(connectionOptions);
    const connection = await Connection.connect(connectionOptions);
    const session = backupSessionName(new Date(), randomBytes(4).toString('hex'));
    try {
      const client = new Client({ connection, namespace });
      const worker = await createWorker({ config: stack, connection: native, namespace, taskQueue, workflowBundle });
      const tb = performance.now();
      const backup = await worker.runUntil(
        client.workflow.execute<(i: BackupInput) => Promise<BackupResult>>('backupWorkflow', {
          taskQueue,
          workflowId: `bench/site-backup/${session}`,
          args: [{ tenants: names, cloud: true, retention: false, session }],
        }),
      );
      if (backup.status !== 'complete') throw new Error(`backup ${session} ended ${backup.status}: ${JSON.stringify(backup)}`);
      console.log(`backed up to ${bucketUrl} (session ${session}) in ${((performance.now() - tb) / 1000).toFixed(1)} s`);
    } finally {
      await connection.close();
      await native.close();
    }
    // Nothing of the old host's backup folder is used from here on.
    rmSync(backupDir, { recursive: true, force: true });

    const measured: Measured[] = [];
    for (let i = 0; i < runs; i++) {
      // Alternate the order, so that neither side always runs on a warmer machine.
      let ours: Awaited<ReturnType<typeof odooDrRecovery>> | undefined;
      let bareMs = 0;
      if (i % 2 === 0) {
        ours = await odooDrRecovery({ bucketUrl, etcDir, infos, workflowBundle });
        bareMs = await bareRecovery({ stack, session, infos });
      } else {
        bareMs = await bareRecovery({ stack, session, infos });
        ours = await odooDrRecovery({ bucketUrl, etcDir, infos, workflowBundle });
      }
      measured.push({ odooDrMs: ours.ms, bareMs, report: ours.result.report });
      const r = ours.result.report;
      console.log(
        `run ${i + 1}: odoo-dr ${(ours.ms / 1000).toFixed(2)} s, bare tools ${(bareMs / 1000).toFixed(2)} s, ratio ${(ours.ms / bareMs).toFixed(2)}; ` +
          `report: ${r?.tenantsRecovered} recovered, ${r?.tenantsFailed} failed, ${((r?.bytes ?? 0) / MiB).toFixed(1)} MiB restored (databases as restored + files), ` +
          `achieved RTO ${r?.achievedRtoMinutes.toFixed(2)} min of ${r?.rtoMinutes} (met: ${r?.rtoMet}), roles created: ${ours.result.globals?.created.join(' ') || 'none'}, config files: ${ours.result.config?.restored.length ?? 0}`,
      );
      const p = ours.phases;
      const sec = (x: number) => `${(x / 1000).toFixed(2)} s`;
      console.log(
        `  odoo-dr phases: plan+roles+config ${sec(p.beforeShadowsMs)}, shadows ${sec(p.shadowsMs)} (Σ shadow activities / ${PARALLEL} = ${sec(p.shadowActivityMs / PARALLEL)}), ` +
          `swaps+health+markers ${sec(p.afterShadowsMs)} [${Object.entries(p.after).map(([t, a]) => `${t} ${a.n}× ${sec(a.ms)}`).join(', ')}]`,
      );
    }

    const oursMs = median(measured.map((m) => m.odooDrMs));
    const bareMs = median(measured.map((m) => m.bareMs));
    const tenantBytes = dbBytes + fsBytes;
    const rate = tenantBytes / (oursMs / 1000);
    const bareRate = tenantBytes / (bareMs / 1000);
    const projected = (100 * GiB) / rate / 60;
    const bareProjected = (100 * GiB) / bareRate / 60;
    const rto = stack.objectives.rtoMinutes;
    const label = runs > 1 ? `median of ${runs} runs` : 'one run';
    console.log(`\n== site recovery from the bucket onto a fresh host, ${PARALLEL} tenants at a time (${label})`);
    console.log(`tenants                                   ${count}`);
    console.log(`databases (pg_database_size)              ${(dbBytes / MiB).toFixed(1)} MiB`);
    console.log(`filestores                                ${fileCount} files, ${(fsBytes / MiB).toFixed(2)} MiB`);
    console.log(`odoo-dr recover -m full -c --all          ${(oursMs / 1000).toFixed(2)} s`);
    console.log(`bare tools (S3 get, age|zstd, pg_restore) ${(bareMs / 1000).toFixed(2)} s`);
    const ratios = measured.map((m) => m.odooDrMs / m.bareMs);
    console.log(
      `ratio                                     ${(oursMs / bareMs).toFixed(2)}   (aim <= 1.5)` +
        (runs > 1 ? `; per run ${ratios.map((r) => r.toFixed(2)).join(', ')}, median ${median(ratios).toFixed(2)}` : ''),
    );
    console.log(`odoo-dr rate                              ${(rate / MiB).toFixed(1)} MiB/s of tenant data (bare tools ${(bareRate / MiB).toFixed(1)} MiB/s)`);
    console.log(
      `projected RTO, 100 tenants × 1 GiB        ${projected.toFixed(1)} min vs DR_RTO_MINUTES ${rto}: ${projected <= rto ? 'within' : 'OVER'} (bare tools ${bareProjected.toFixed(1)} min)`,
    );
    console.log('  (linear in bytes from this run; per-tenant fixed costs and the ~10 MiB empty schema of each small tenant are counted as data)');
  } finally {
    await cleanUp({ admin, dataDir, names, cloud: stack.cloud!, prefix: `bench-site-${s}`, root });
  }
}

/** Drops the tenants, empties this run's bucket prefix (never another one) and deletes the folders. */
async function cleanUp(opts: { admin: PgAdminConnection; dataDir: string; names: string[]; cloud: NonNullable<DrConfig['cloud']>; prefix: string; root: string }): Promise<void> {
  const { cloud } = opts;
  for (const name of opts.names) await dropTenant(opts.admin, opts.dataDir, name).catch((err: unknown) => console.error(`drop ${name}: ${(err as Error).message}`));
  if (cloud.prefix === opts.prefix) {
    try {
      const keys: string[] = [];
      for await (const o of listObjects(cloud, `${cloud.prefix}/`)) keys.push(o.key);
      if (keys.length) await deleteObjects(cloud, keys);
    } catch (err) {
      console.error(`emptying s3://${cloud.bucket}/${cloud.prefix}: ${(err as Error).message}`);
    }
  } else {
    console.error(`not emptying s3://${cloud.bucket}/${cloud.prefix}: not this run's prefix`);
  }
  rmSync(opts.root, { recursive: true, force: true });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
