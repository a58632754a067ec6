/**
 * `npm run bench`: generates the benchmark tenants, runs the bare tools and odoo-dr in the same run
 * and prints a table of ratios (medians of several runs); writes bench/results.json, from which
 * bench/readme.ts generates the README's performance table.
 *
 *   npm run bench -- [--files 20000] [--file-size 8192] [--big-files 100000] [--db-mb 256] [--fleet 30] [--runs 3]
 *                    [--quick] [--only db,fs,s3,fleet,big] [--skip big] [--out bench/results.json] [--write-readme]
 *                    [--strict] [--config FILE] [--command-timeout 180]
 *
 * odoo-dr is measured end to end as an operator runs it: the real CLI (`odoo-dr --config … backup
 * --tenant T --wait`, `recover … --yes --wait`, `validate … --restore-test --wait`), each command
 * timed from its process start to its exit, against a real `odoo-dr worker` process started with the
 * bench's own task queue, folders and bucket prefix (a fresh worker, with empty folders, for every
 * run of a scenario, so that every "first backup" is one). The worker's peak RSS is its VmHWM.
 * S3 requests are counted by a proxy in front of the S3 endpoint (test/helpers/fault-proxy.ts, no
 * faults). Only the CLI, the worker process, the workflow histories and the sizes of whole folders
 * are used: nothing depends on how odoo-dr lays out its backups.
 *
 * Scenarios (each can be left out with --skip or chosen with --only):
 *  - db:    a tenant of --db-mb MiB: `backup --no-cloud --wait` vs `pg_dump -Fc -Z0` and default
 *           `pg_dump -Fc` (time, and output size = the whole DR_BACKUP_DIR), restore test and
 *           database-only recovery vs `CREATE DATABASE` + `pg_restore -j2` of the -Z0 dump.
 *  - fs:    a tenant with --files files of --file-size bytes: first backup and incremental backup
 *           (+1 % new files) vs `tar [-g] | zstd -1 | age`; files-only recovery and restore test vs
 *           `age -d | zstd -d | tar -x`.
 *  - s3:    the same tenant backed up with its cloud copy to an empty bucket prefix: S3 requests of
 *           the first backup and of an incremental one, per file.
 *  - fleet: --fleet tiny tenants, one `backup --tenant … --no-cloud --wait` vs
 *           `xargs -P3 pg_dump -Fc -Z0`.
 *  - big:   a tenant with --big-files files (one run): backup with cloud copy and files-only
 *           recovery from the bucket; worker peak RSS and activity timeouts.
 *
 * Everything it creates (databases named bench-<id>-…, /var/tmp/odoo-dr-bench-<id>/, the bucket
 * prefix bench-<id>/, its workers and workflows) is removed at the end, also after a failure or
 * Ctrl-C. Exit codes: 0 every scenario ran (aims met or not, unless --strict), 1 a scenario failed
 * (or, with --strict, an aim was missed), 2 bad arguments, 3 the local stack is not up.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { loadConfig, type DrConfig } from '../src/config';
import { findClientTools, type PgTools } from '../src/pgtools';
import { quoteIdent, serverVersion, withClient } from '../src/postgres';
import { abortStaleUploads, deleteObjects, listObjects } from '../src/storage/s3';
import { temporalSettings } from '../temporal/connection';
import { createTenant, type PgAdminConnection, type TenantInfo, type TenantSpec } from '../test/fixtures/odoo-tenants';
import { LOCAL_CONFIG_PATH, REPO_ROOT } from '../test/helpers/config';
import { startFaultProxy, type FaultProxy } from '../test/helpers/fault-proxy';
import { activityIssues, CliError, dirBytes, killChildren, median, MiB, odooDr, sh, startWorker, tcpReachable, type BenchWorker } from './harness';
import { writeReadme } from './readme';
import { figureNotes, judge, runSummary, textTable, type Aim, type Figure, type Results, type Side } from './report';

const SCENARIOS = ['db', 'fs', 's3', 'fleet', 'big'] as const;
type Scenario = (typeof SCENARIOS)[number];

const FULL = { files: 20_000, 'file-size': 8192, 'big-files': 100_000, 'db-mb': 256, fleet: 30, runs: 3 };
const QUICK = { files: 400, 'file-size': 8192, 'big-files': 2000, 'db-mb': 24, fleet: 4, runs: 1 };
/** The aims (issue "npm run bench"); RSS and the README's earlier restore aims included. */
const AIMS = {
  dbBackup: 1.5,
  dbSize: 1.0,
  restoreTest: 1.3,
  dbRecovery: 1.5,
  fsBackup: 3,
  fsRestore: 3,
  s3PerFile: 0.01,
  fleet: 2,
  rssBytes: 300 * MiB,
};
/** Scenarios whose workers each peak-RSS figure covers. */
const RSS_GROUPS: Record<string, Scenario[]> = { files: ['fs', 's3'], big: ['big'], db: ['db'] };
/** Share of the files added before the incremental backup (Odoo adds files; it never changes one). */
const INCREMENT = 0.01;

class UsageError extends Error {}
class StackDownError extends Error {}

interface Params {
  files: number;
  fileSize: number;
  bigFiles: number;
  dbMb: number;
  fleet: number;
  runs: number;
  quick: boolean;
  scenarios: Scenario[];
  out: string;
  writeReadme: boolean;
  strict: boolean;
  config: string;
  commandTimeoutMs: number;
}

const HELP = `npm run bench -- [options]   (or: node dist/bench/run.js [options], after npm run build)

  --files N           files of the filestore tenant (default ${FULL.files}; --quick ${QUICK.files})
  --file-size BYTES   approximate size of each file (default ${FULL['file-size']})
  --big-files N       files of the large filestore tenant, one run (default ${FULL['big-files']}; --quick ${QUICK['big-files']}; 0 skips)
  --db-mb MiB         database size of the database tenant (default ${FULL['db-mb']}; --quick ${QUICK['db-mb']})
  --fleet N           tiny tenants of the fleet backup (default ${FULL.fleet}; --quick ${QUICK.fleet}; 0 skips)
  --runs N            runs per scenario, figures are medians (default ${FULL.runs}; --quick ${QUICK.runs})
  --quick             small sizes and one run: a smoke test of a couple of minutes
  --only LIST         only these scenarios: ${SCENARIOS.join(',')}
  --skip LIST         leave these scenarios out
  --out FILE          results file (default bench/results.json; with --quick bench/results-quick.json)
  --write-readme      then rewrite the README's performance table from the results
  --strict            exit 1 when an aim is missed (default: only when a scenario fails)
  --config FILE       odoo-dr configuration of the local stack (default ${path.relative(process.cwd(), LOCAL_CONFIG_PATH) || LOCAL_CONFIG_PATH})
  --command-timeout M minutes an odoo-dr command may take before it counts as failed (default 180)`;

function parseParams(argv: string[]): Params | undefined {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        files: { type: 'string' },
        'file-size': { type: 'string' },
        'big-files': { type: 'string' },
        'db-mb': { type: 'string' },
        fleet: { type: 'string' },
        runs: { type: 'string' },
        quick: { type: 'boolean', default: false },
        only: { type: 'string' },
        skip: { type: 'string' },
        out: { type: 'string' },
        'write-readme': { type: 'boolean', default: false },
        strict: { type: 'boolean', default: false },
        config: { type: 'string' },
        'command-timeout': { type: 'string', default: '180' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return undefined;
  const base = values.quick ? QUICK : FULL;
  const int = (name: keyof typeof FULL, min: number): number => {
    const raw = values[name];
    if (raw === undefined) return base[name];
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be a whole number ≥ ${min}, got "${raw}"`);
    return n;
  };
  const list = (raw: string | undefined, flag: string): Scenario[] | undefined => {
    if (raw === undefined) return undefined;
    const names = raw.split(',').map((s) => s.trim()).filter(Boolean);
    const bad = names.filter((n) => !(SCENARIOS as readonly string[]).includes(n));
    if (bad.length) throw new UsageError(`--${flag}: unknown scenario(s) ${bad.join(', ')}; known: ${SCENARIOS.join(', ')}`);
    return names as Scenario[];
  };
  const p = {
    files: int('files', 10),
    fileSize: int('file-size', 1),
    bigFiles: int('big-files', 0),
    dbMb: int('db-mb', 12),
    fleet: int('fleet', 0),
    runs: int('runs', 1),
  };
  const only = list(values.only, 'only');
  const skip = list(values.skip, 'skip') ?? [];
  let scenarios = (only ?? [...SCENARIOS]).filter((s) => !skip.includes(s));
  if (p.bigFiles === 0) scenarios = scenarios.filter((s) => s !== 'big');
  if (p.fleet === 0) scenarios = scenarios.filter((s) => s !== 'fleet');
  if (!scenarios.length) throw new UsageError('no scenario left to run');
  const timeout = Number(values['command-timeout']);
  if (!(timeout > 0)) throw new UsageError(`--command-timeout must be a number of minutes > 0, got "${values['command-timeout']}"`);
  return {
    ...p,
    quick: values.quick,
    scenarios,
    out: path.resolve(values.out ?? path.join(REPO_ROOT, 'bench', values.quick ? 'results-quick.json' : 'results.json')),
    writeReadme: values['write-readme'],
    strict: values.strict,
    config: path.resolve(values.config ?? LOCAL_CONFIG_PATH),
    commandTimeoutMs: timeout * 60_000,
  };
}

/** Move lines for a database of about `mb` MiB (pg_database_size): ~10 MiB of schema, then ~242 bytes per line. */
function moveLinesFor(mb: number): number {
  return Math.max(1000, Math.round(((mb - 10) * MiB) / 254));
}

function versionLine(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0]!.trim();
  } catch {
    return 'missing';
  }
}

/** Adds `count` new files (random content, named by their SHA-1 as Odoo names them) to a filestore. */
function addFiles(dir: string, count: number, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const data = randomBytes(size);
    const sha = createHash('sha1').update(data).digest('hex');
    const file = path.join(dir, sha.slice(0, 2), sha);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, data);
    out.push(file);
  }
  return out;
}

/** Everything one `npm run bench` run owns, and what it measured. */
class Bench {
  readonly id = randomBytes(3).toString('hex');
  /** Database names of this run start with `${prefix}-`. */
  readonly prefix = `bench-${this.id}`;
  readonly root = `/var/tmp/odoo-dr-bench-${this.id}`;
  readonly dataDir = path.join(this.root, 'odoo-data');
  readonly etcDir = path.join(this.root, 'odoo-config');
  readonly bucketPrefix = `bench-${this.id}`;
  readonly figures: Figure[] = [];
  readonly errors: string[] = [];
  readonly scenarioInfo: Record<string, unknown> = {};
  /** Peak RSS of each worker, by group, and what it had once started. */
  readonly rss: Record<string, Array<{ peak: number; start: number | undefined }>> = {};
  /** Workflows started by odoo-dr commands, by scenario (histories read at the end). */
  readonly workflows: Record<string, string[]> = {};
  readonly tenants = new Map<string, TenantInfo>();
  private readonly workers = new Set<BenchWorker>();
  interrupted = false;
  /** A worker was started: the bucket prefix may hold objects. */
  private usedBucket = false;

  stack!: DrConfig;
  admin!: PgAdminConnection;
  tools!: PgTools;
  pgEnv!: NodeJS.ProcessEnv;
  recipient!: string;
  identityFile!: string;
  proxy!: FaultProxy;
  connection?: Connection;
  client!: Client;
  serverVersion = '';

  constructor(readonly p: Params) {}

  check(): void {
    if (this.interrupted) throw new Error('interrupted');
  }

  /** The local stack, its configuration and the bare tools: a clear error for whatever is missing. */
  async setUp(): Promise<void> {
    if (!existsSync(this.p.config)) throw new StackDownError(`${this.p.config} is missing: start the local stack first (npm run stack:up)`);
    this.stack = loadConfig({ path: this.p.config, env: {} });
    const cloud = this.stack.cloud;
    if (!cloud?.endpoint) throw new StackDownError(`${this.p.config} has no DR_CLOUD_BUCKET / DR_S3_ENDPOINT: the bench needs the local stack's S3 server`);
    const temporalAddress = temporalSettings(this.stack, {}).connectionOptions.address ?? '127.0.0.1:7233';
    const s3 = new URL(cloud.endpoint);
    const services: Array<[string, string, number]> = [
      ['PostgreSQL', this.stack.postgres.host, this.stack.postgres.port],
      ['Temporal', temporalAddress.replace(/:\d+$/, ''), Number(/:(\d+)$/.exec(temporalAddress)?.[1] ?? 7233)],
      ['S3', s3.hostname, Number(s3.port || 80)],
    ];
    const down: string[] = [];
    for (const [name, host, port] of services) {
      await tcpReachable(host, port).catch((err: Error) => down.push(`${name} (${host}:${port}): ${err.message}`));
    }
    if (down.length) throw new StackDownError(`the local stack is not up:\n  ${down.join('\n  ')}\ncheck with npm run stack:status, start it with npm run stack:up`);
    const missing = ['tar', 'zstd', 'age', 'xargs'].filter((t) => versionLine(t, ['--version']) === 'missing');
    if (missing.length) throw new StackDownError(`missing bare tools on PATH: ${missing.join(', ')} (scripts/install-system.sh installs them)`);
    if (!/GNU tar/.test(versionLine('tar', ['--version']))) throw new StackDownError('tar is not GNU tar: the incremental reference needs --listed-incremental');

    const { host, port, user, password } = this.stack.postgres;
    this.admin = { host, port, user, ...(password ? { password } : {}) };
    const server = await serverVersion(this.stack.postgres);
    this.serverVersion = server.full;
    this.tools = await findClientTools(server.major, this.stack.postgres.binDir ? { binDir: this.stack.postgres.binDir } : {});
    this.pgEnv = { PGHOST: host, PGPORT: String(port), PGUSER: user, PGPASSWORD: password ?? '', PGDATABASE: this.stack.postgres.maintenanceDb };
    this.recipient = this.stack.encryption.recipients[0] ?? '';
    this.identityFile = this.stack.encryption.identityFile ?? '';
    if (!this.recipient || !this.identityFile) throw new StackDownError(`${this.p.config} needs DR_AGE_RECIPIENTS and DR_ENCRYPTION_KEY_FILE`);

    const { connectionOptions, namespace } = temporalSettings(this.stack, {});
    this.connection = await Connection.connect({ ...connectionOptions, connectTimeout: '10s' });
    this.client = new Client({ connection: this.connection, namespace });

    mkdirSync(this.dataDir, { recursive: true });
    mkdirSync(this.etcDir, { recursive: true });
    writeFileSync(path.join(this.etcDir, 'odoo.conf'), '[options]\ndb_user = odoo\n');
    this.proxy = await startFaultProxy({ target: cloud.endpoint });
  }

  /** A worker of its own: task queue, folders and bucket prefix unique to `label`, S3 through the counting proxy. */
  async worker(label: string, group?: string): Promise<BenchWorker> {
    this.check();
    const dir = path.join(this.root, 'workers', label);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(path.join(dir, 'backups'), { recursive: true });
    const env: NodeJS.ProcessEnv = {
      DR_TASK_QUEUE: `${this.prefix}-${label}`,
      DR_BACKUP_DIR: path.join(dir, 'backups'),
      DR_LOG_DIR: path.join(dir, 'logs'),
      ODOO_DATA_DIR: this.dataDir,
      ODOO_FILESTORE_PATH: path.join(this.dataDir, 'filestore'),
      DR_CONFIG_PATHS: this.etcDir,
      DR_CLOUD_BUCKET: `s3://${this.stack.cloud!.bucket}/${this.bucketPrefix}/${label}`,
      DR_S3_ENDPOINT: this.proxy.url,
      DR_MAX_PARALLEL_BACKUPS: '3',
    };
    this.usedBucket = true;
    const w = await startWorker(label, env, this.p.config);
    this.workers.add(w);
    const stop = w.stop.bind(w);
    w.stop = async (graceMs?: number) => {
      const rss = await stop(graceMs);
      this.workers.delete(w);
      if (group && rss !== undefined) (this.rss[group] ??= []).push({ peak: rss, start: w.startRss });
      return rss;
    };
    return w;
  }

  backupDir(w: BenchWorker): string {
    return w.env.DR_BACKUP_DIR!;
  }

  /** An odoo-dr command against `w`, its workflow recorded under `scenario`. */
  async cli(scenario: string, w: BenchWorker, args: string[]): Promise<{ ms: number; json: Record<string, unknown> }> {
    this.check();
    try {
      const r = await odooDr(args, w, this.p.config, this.p.commandTimeoutMs);
      if (r.workflowId) (this.workflows[scenario] ??= []).push(r.workflowId);
      return r;
    } catch (err) {
      if (err instanceof CliError && err.workflowId) (this.workflows[scenario] ??= []).push(err.workflowId);
      throw err;
    }
  }

  async tenant(key: string, spec: Omit<TenantSpec, 'name'>): Promise<TenantInfo> {
    const name = `${this.prefix}-${key}`;
    const known = this.tenants.get(name);
    if (known) return known;
    this.check();
    const t0 = performance.now();
    const info = await createTenant(this.admin, this.dataDir, { ...spec, name });
    this.tenants.set(name, info);
    const createMs = performance.now() - t0;
    console.log(
      `  created ${name}: database ${((info.dbSizeBytes ?? 0) / MiB).toFixed(1)} MiB, ${info.fileCount.toLocaleString('en-US')} files ` +
        `(${(info.filestoreBytes / MiB).toFixed(1)} MiB) in ${(createMs / 1000).toFixed(1)} s`,
    );
    return info;
  }

  /**
   * What odoo-dr left beside the live tenants between two steps (pre-recovery copies of databases
   * and folders, shadows): databases of this run that are not tenants, filestore folders that are
   * not tenants'. Names only: no knowledge of odoo-dr's layout beyond "not a tenant".
   */
  async sweep(): Promise<void> {
    const live = new Set(this.tenants.keys());
    const dbs = await withClient(this.stack.postgres, this.stack.postgres.maintenanceDb, async (c) =>
      (await c.query<{ datname: string }>('SELECT datname FROM pg_database WHERE left(datname, $1::int) = $2', [this.prefix.length + 1, `${this.prefix}-`])).rows.map((r) => r.datname),
    );
    for (const db of dbs.filter((d) => !live.has(d))) await this.dropDatabase(db);
    const root = path.join(this.dataDir, 'filestore');
    if (existsSync(root)) for (const e of readdirSync(root)) if (!live.has(e)) rmSync(path.join(root, e), { recursive: true, force: true });
  }

  async dropDatabase(name: string): Promise<void> {
    if (!name.startsWith(`${this.prefix}-`)) throw new Error(`refusing to drop ${name}: not a database of this run`);
    await withClient(this.stack.postgres, this.stack.postgres.maintenanceDb, async (c) => {
      await c.query(`ALTER DATABASE ${quoteIdent(name)} IS_TEMPLATE false`).catch(() => undefined);
      await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
    });
  }

  tmp(name: string): string {
    const dir = path.join(this.root, 'tmp', name);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  figure(f: Omit<Figure, 'pass'>): void {
    const full: Figure = { ...f, pass: null };
    full.pass = judge(full);
    this.figures.push(full);
  }

  /** A time or size figure from paired runs: medians of each side, median of the per-run ratios. */
  pair(f: { id: string; name: string; scenario: string; ours: Omit<Side, 'median'>; bare: Omit<Side, 'median'>; aim?: Aim; note?: string; planned?: number }): void {
    // Runs where both sides were measured (a failed run may have measured one side only).
    const n = Math.min(f.ours.runs.length, f.bare.runs.length);
    if (n === 0) return;
    const ours = f.ours.runs.slice(0, n);
    const bare = f.bare.runs.slice(0, n);
    const ratios = ours.map((x, i) => x / bare[i]!);
    const planned = f.planned ?? this.p.runs;
    const notes = [...(f.note ? [f.note] : []), ...(n < planned ? [`${n} of ${planned} runs (the scenario failed)`] : [])];
    this.figure({
      id: f.id,
      name: f.name,
      scenario: f.scenario,
      odooDr: { ...f.ours, runs: ours, median: median(ours) },
      bare: { ...f.bare, runs: bare, median: median(bare) },
      ratio: median(ratios),
      ratios,
      ...(f.aim ? { aim: f.aim } : {}),
      ...(notes.length ? { note: notes.join('; ') } : {}),
    });
  }

  async cleanUp(): Promise<void> {
    const problems: string[] = [];
    for (const w of [...this.workers]) await w.stop(30_000).catch((err: Error) => problems.push(`worker ${w.label}: ${err.message}`));
    killChildren('SIGKILL');
    // Workflows a failed or interrupted command left running (their children end with them): those
    // the commands named, and any other still running on this run's task queues.
    if (this.connection) {
      const ids = new Set(Object.values(this.workflows).flat());
      try {
        for await (const w of this.client.workflow.list({ query: `ExecutionStatus = 'Running' AND TaskQueue STARTS_WITH '${this.prefix}-'` })) ids.add(w.workflowId);
      } catch {
        /* a server without that visibility query: the named ones only */
      }
      for (const id of ids) {
        try {
          const h = this.client.workflow.getHandle(id);
          if ((await h.describe()).status.name === 'RUNNING') await h.terminate('npm run bench: clean-up');
        } catch {
          /* gone already, or a child its parent's end took with it */
        }
      }
      await this.connection.close().catch(() => undefined);
    }
    if (this.stack && this.admin) {
      try {
        const dbs = await withClient(this.stack.postgres, this.stack.postgres.maintenanceDb, async (c) =>
          (await c.query<{ datname: string }>('SELECT datname FROM pg_database WHERE left(datname, $1::int) = $2', [this.prefix.length + 1, `${this.prefix}-`])).rows.map((r) => r.datname),
        );
        for (const db of dbs) await this.dropDatabase(db).catch((err: Error) => problems.push(`drop ${db}: ${err.message}`));
      } catch (err) {
        problems.push(`listing this run's databases: ${(err as Error).message}`);
      }
    }
    const cloud = this.stack?.cloud;
    if (cloud && this.usedBucket) {
      const prefix = `${this.bucketPrefix}/`;
      // A configuration with its own bucket prefix: this run's objects are under it too.
      const at = { ...cloud, prefix: '' };
      try {
        await abortStaleUploads(at, prefix, 0);
        const keys: string[] = [];
        for await (const o of listObjects(at, prefix)) keys.push(o.key);
        if (keys.length) await deleteObjects(at, keys);
      } catch (err) {
        problems.push(`emptying s3://${cloud.bucket}/${prefix}: ${(err as Error).message}`);
      }
    }
    await this.proxy?.close().catch(() => undefined);
    rmSync(this.root, { recursive: true, force: true });
    if (problems.length) console.error(`clean-up problems (remove by hand):\n  ${problems.join('\n  ')}`);
  }

  // -------------------------------------------------------------------------------------------
  // Scenarios
  // -------------------------------------------------------------------------------------------

  /** Runs `a` then `b` on even runs, `b` then `a` on odd ones: neither side always gets the warmer machine. */
  async alternate<A, B>(run: number, a: () => Promise<A>, b: () => Promise<B>): Promise<[A, B]> {
    if (run % 2 === 0) {
      const x = await a();
      return [x, await b()];
    }
    const y = await b();
    return [await a(), y];
  }

  async db(): Promise<void> {
    const t = await this.tenant('db', { moveLines: moveLinesFor(this.p.dbMb), files: 0, dbAttachments: 2 });
    this.scenarioInfo.db = { tenant: t.name, databaseBytes: t.dbSizeBytes, moveLines: t.tables.account_move_line };
    const r = { z0: [] as number[], dflt: [] as number[], dfltBytes: [] as number[], ours: [] as number[], oursBytes: [] as number[], bareRestore: [] as number[], restoreTest: [] as number[], recovery: [] as number[] };
    // A failed run ends the scenario, but the runs done so far still make figures.
    let failure: Error | undefined;
    for (let i = 0; i < this.p.runs; i++) {
      const w = await this.worker(`db${i}`, 'db').catch((err: unknown) => void (failure = err as Error));
      if (!w) break;
      try {
        const tmp = this.tmp('db');
        const z0File = path.join(tmp, 'z0.dump');
        const [bare, ours] = await this.alternate(
          i,
          async () => {
            const z0 = await sh('"$1" -Fc -Z0 -f "$2" -d "$3"', [this.tools.pgDump, z0File, t.name], this.pgEnv);
            const dflt = await sh('"$1" -Fc -f "$2" -d "$3"', [this.tools.pgDump, path.join(tmp, 'default.dump'), t.name], this.pgEnv);
            return { z0: z0.ms, dflt: dflt.ms, dfltBytes: statSync(path.join(tmp, 'default.dump')).size };
          },
          () => this.cli('db', w, ['backup', '--tenant', t.name, '--no-cloud', '--wait']),
        );
        const session = String(ours.json.session);
        r.z0.push(bare.z0);
        r.dflt.push(bare.dflt);
        r.dfltBytes.push(bare.dfltBytes);
        r.ours.push(ours.ms);
        r.oursBytes.push(dirBytes(this.backupDir(w)));

        const bareDb = `${this.prefix}-bare`;
        const [bareRestore, restoreTest] = await this.alternate(
          i,
          async () => {
            const x = await sh(
              `"$1" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE \\"$3\\" ENCODING 'UTF8' LC_COLLATE 'C' TEMPLATE template0"\n"$2" --jobs=2 --exit-on-error --no-owner -d "$3" "$4"`,
              [this.tools.psql, this.tools.pgRestore, bareDb, z0File],
              this.pgEnv,
            );
            await this.dropDatabase(bareDb);
            return x.ms;
          },
          async () => (await this.cli('db', w, ['validate', session, '--tenant', t.name, '--restore-test', '--no-cloud', '--wait'])).ms,
        );
        r.bareRestore.push(bareRestore);
        r.restoreTest.push(restoreTest);
        r.recovery.push((await this.cli('db', w, ['recover', '-m', 'database-only', '--tenant', t.name, '-s', session, '--yes', '--wait'])).ms);
        await this.sweep();
        console.log(
          `  run ${i + 1}: backup ${(ours.ms / 1000).toFixed(2)} s vs pg_dump -Z0 ${(bare.z0 / 1000).toFixed(2)} s / default ${(bare.dflt / 1000).toFixed(2)} s; ` +
            `restore test ${(restoreTest / 1000).toFixed(2)} s, database-only recovery ${(r.recovery.at(-1)! / 1000).toFixed(2)} s vs pg_restore -j2 ${(bareRestore / 1000).toFixed(2)} s`,
        );
      } catch (err) {
        failure = err as Error;
      } finally {
        await w.stop();
      }
      if (failure) break;
    }
    const size = `${((t.dbSizeBytes ?? 0) / MiB).toFixed(0)} MiB`;
    const backup = { label: '`odoo-dr backup --tenant T --no-cloud --wait` (dump, zstd, age, fsync, manifest, globals, configuration)', unit: 'ms' as const, runs: r.ours };
    this.pair({ id: 'db-backup-vs-z0', name: `Tenant backup, ${size} database, vs \`pg_dump -Fc -Z0\``, scenario: 'db', ours: backup, bare: { label: '`pg_dump -Fc -Z0 -f FILE`', unit: 'ms', runs: r.z0 }, aim: { of: 'ratio', op: '<=', value: AIMS.dbBackup } });
    this.pair({ id: 'db-backup-vs-default', name: `Tenant backup, ${size} database, vs default \`pg_dump -Fc\``, scenario: 'db', ours: backup, bare: { label: '`pg_dump -Fc -f FILE` (gzip 6)', unit: 'ms', runs: r.dflt } });
    this.pair({
      id: 'db-backup-size',
      name: 'Tenant backup output size vs default `pg_dump -Fc`',
      scenario: 'db',
      ours: { label: 'every file in DR_BACKUP_DIR after the backup', unit: 'bytes', runs: r.oursBytes },
      bare: { label: '`pg_dump -Fc` output', unit: 'bytes', runs: r.dfltBytes },
      aim: { of: 'ratio', op: '<=', value: AIMS.dbSize },
    });
    const pgRestore = { label: '`CREATE DATABASE` + `pg_restore -j2` of the `-Z0` dump', unit: 'ms' as const, runs: r.bareRestore };
    this.pair({
      id: 'db-restore-test',
      name: `Restore test, ${size} database, vs \`pg_restore -j2\``,
      scenario: 'db',
      ours: { label: '`odoo-dr validate SESSION --tenant T --restore-test --no-cloud --wait` (all checks, restore, neutralization, Odoo checks)', unit: 'ms', runs: r.restoreTest },
      bare: pgRestore,
      aim: { of: 'ratio', op: '<=', value: AIMS.restoreTest },
    });
    this.pair({
      id: 'db-recovery',
      name: `Database-only recovery, ${size} database, vs \`pg_restore -j2\``,
      scenario: 'db',
      ours: { label: '`odoo-dr recover -m database-only --tenant T -s SESSION --yes --wait` (shadow, verification, swap)', unit: 'ms', runs: r.recovery },
      bare: pgRestore,
      aim: { of: 'ratio', op: '<=', value: AIMS.dbRecovery },
    });
    if (failure) throw failure;
  }

  async fs(): Promise<void> {
    const t = await this.fsTenant();
    const dir = t.filestoreDir;
    const added = Math.max(1, Math.round(t.fileCount * INCREMENT));
    const r = { tar: [] as number[], tarBytes: [] as number[], first: [] as number[], firstBytes: [] as number[], tarIncr: [] as number[], incr: [] as number[], untar: [] as number[], recover: [] as number[], restoreTest: [] as number[] };
    // A failed run ends the scenario, but the runs done so far still make figures.
    let failure: Error | undefined;
    for (let i = 0; i < this.p.runs; i++) {
      const w = await this.worker(`fs${i}`, 'files').catch((err: unknown) => void (failure = err as Error));
      if (!w) break;
      try {
        const tmp = this.tmp('fs');
        const archive = path.join(tmp, 'first.tar.zst.age');
        const snap0 = path.join(tmp, 'snap0');
        const tar = '"$1" -C "$2" -g "$3" -cf - . | zstd -1 -q | age -r "$4" > "$5"';
        const [bare, first] = await this.alternate(
          i,
          () => sh(tar, ['tar', dir, snap0, this.recipient, archive]),
          () => this.cli('fs', w, ['backup', '--tenant', t.name, '--no-cloud', '--wait']),
        );
        const session = String(first.json.session);
        r.tar.push(bare.ms);
        r.tarBytes.push(statSync(archive).size);
        r.first.push(first.ms);
        r.firstBytes.push(dirBytes(this.backupDir(w)));

        const files = addFiles(dir, added, this.p.fileSize);
        try {
          copyFileSync(snap0, path.join(tmp, 'snap1'));
          const [bareIncr, incr] = await this.alternate(
            i,
            () => sh(tar, ['tar', dir, path.join(tmp, 'snap1'), this.recipient, path.join(tmp, 'incr.tar.zst.age')]),
            () => this.cli('fs', w, ['backup', '--tenant', t.name, '--no-cloud', '--wait']),
          );
          r.tarIncr.push(bareIncr.ms);
          r.incr.push(incr.ms);
        } finally {
          for (const f of files) rmSync(f, { force: true });
        }

        const dest = path.join(tmp, 'restored');
        const [untar, recover] = await this.alternate(
          i,
          async () => {
            const x = await sh('mkdir -p "$3"\nage -d -i "$1" "$2" | zstd -d -q | tar -x -C "$3"', [this.identityFile, archive, dest]);
            rmSync(dest, { recursive: true, force: true });
            return x.ms;
          },
          async () => (await this.cli('fs', w, ['recover', '-m', 'files-only', '--tenant', t.name, '-s', session, '--yes', '--wait'])).ms,
        );
        await this.sweep();
        r.untar.push(untar);
        r.recover.push(recover);
        r.restoreTest.push((await this.cli('fs', w, ['validate', session, '--tenant', t.name, '--restore-test', '--no-cloud', '--wait'])).ms);
        await this.sweep();
        console.log(
          `  run ${i + 1}: first backup ${(first.ms / 1000).toFixed(2)} s vs tar ${(bare.ms / 1000).toFixed(2)} s; incremental ${(r.incr.at(-1)! / 1000).toFixed(2)} s vs ${(r.tarIncr.at(-1)! / 1000).toFixed(2)} s; ` +
            `files-only recovery ${(recover / 1000).toFixed(2)} s, restore test ${(r.restoreTest.at(-1)! / 1000).toFixed(2)} s vs untar ${(untar / 1000).toFixed(2)} s`,
        );
      } catch (err) {
        failure = err as Error;
      } finally {
        await w.stop();
      }
      if (failure) break;
    }
    const what = `${t.fileCount.toLocaleString('en-US')} files (${(t.filestoreBytes / MiB).toFixed(0)} MiB)`;
    const tarLabel = '`tar -g SNAP -cf - . | zstd -1 | age -r R > FILE`';
    const untarLabel = '`age -d -i KEY FILE | zstd -d | tar -x` (no fsync)';
    const smallDb = `the tenant's ${((t.dbSizeBytes ?? 0) / MiB).toFixed(0)} MiB database is dumped too (odoo-dr side only)`;
    this.pair({
      id: 'fs-first-backup',
      name: `Filestore first backup, ${what}, vs \`tar | zstd -1 | age\``,
      scenario: 'fs',
      ours: { label: '`odoo-dr backup --tenant T --no-cloud --wait` into an empty DR_BACKUP_DIR', unit: 'ms', runs: r.first },
      bare: { label: tarLabel, unit: 'ms', runs: r.tar },
      aim: { of: 'ratio', op: '<=', value: AIMS.fsBackup },
      note: smallDb,
    });
    this.pair({
      id: 'fs-incremental-backup',
      name: `Filestore incremental backup (+${added.toLocaleString('en-US')} files) vs \`tar -g | zstd -1 | age\``,
      scenario: 'fs',
      ours: { label: 'a second `odoo-dr backup --tenant T --no-cloud --wait`', unit: 'ms', runs: r.incr },
      bare: { label: `${tarLabel} with a copy of the first run's snapshot (level 1)`, unit: 'ms', runs: r.tarIncr },
      note: smallDb,
    });
    this.pair({
      id: 'fs-first-size',
      name: 'Filestore first backup output size vs `tar | zstd -1 | age`',
      scenario: 'fs',
      ours: { label: 'every file in DR_BACKUP_DIR after the first backup', unit: 'bytes', runs: r.firstBytes },
      bare: { label: 'the encrypted archive', unit: 'bytes', runs: r.tarBytes },
      note: 'includes the dump of the small database',
    });
    this.pair({
      id: 'fs-recover',
      name: `Files-only recovery, ${what}, vs \`age -d | zstd -d | tar -x\``,
      scenario: 'fs',
      ours: { label: '`odoo-dr recover -m files-only --tenant T -s SESSION --yes --wait` (shadow folder, verification, swap)', unit: 'ms', runs: r.recover },
      bare: { label: untarLabel, unit: 'ms', runs: r.untar },
      aim: { of: 'ratio', op: '<=', value: AIMS.fsRestore },
    });
    this.pair({
      id: 'fs-restore-test',
      name: `Restore test, ${what}, vs \`age -d | zstd -d | tar -x\``,
      scenario: 'fs',
      ours: { label: '`odoo-dr validate SESSION --tenant T --restore-test --no-cloud --wait`', unit: 'ms', runs: r.restoreTest },
      bare: { label: untarLabel, unit: 'ms', runs: r.untar },
      aim: { of: 'ratio', op: '<=', value: AIMS.fsRestore },
      note: smallDb,
    });
    if (failure) throw failure;
  }

  fsTenant(): Promise<TenantInfo> {
    return this.tenant('fs', { moveLines: 500, files: this.p.files, fileSize: this.p.fileSize }).then((t) => {
      this.scenarioInfo.fs = { tenant: t.name, files: t.fileCount, filestoreBytes: t.filestoreBytes, databaseBytes: t.dbSizeBytes };
      return t;
    });
  }

  async s3(): Promise<void> {
    const t = await this.fsTenant();
    const methods = (m: Record<string, number>) => Object.entries(m).map(([k, v]) => `${k} ${v}`).join(', ');
    const w = await this.worker('s3', 'files');
    try {
      this.proxy.resetStats();
      const first = await this.cli('s3', w, ['backup', '--tenant', t.name, '--wait']);
      const firstStats = { requests: this.proxy.stats.requests, byMethod: { ...this.proxy.stats.byMethod } };
      console.log(`  first backup with cloud copy: ${firstStats.requests} S3 requests (${methods(firstStats.byMethod)}) in ${(first.ms / 1000).toFixed(2)} s`);
      this.scenarioInfo.s3 = { first: { ...firstStats, ms: first.ms } };
      this.figure({
        id: 's3-first-backup',
        name: `S3 requests, first backup of ${t.fileCount.toLocaleString('en-US')} files, per file`,
        scenario: 's3',
        odooDr: { label: `\`odoo-dr backup --tenant T --wait\` with its cloud copy to an empty prefix (${methods(firstStats.byMethod)}; ${(first.ms / 1000).toFixed(1)} s)`, unit: 'count', suffix: 'requests', median: firstStats.requests, runs: [firstStats.requests] },
        bare: { label: 'files in the filestore', unit: 'count', suffix: 'files', median: t.fileCount, runs: [t.fileCount] },
        ratio: firstStats.requests / t.fileCount,
        aim: { of: 'ratio', op: '<=', value: AIMS.s3PerFile },
      });

      const added = Math.max(1, Math.round(t.fileCount * INCREMENT));
      const files = addFiles(t.filestoreDir, added, this.p.fileSize);
      try {
        this.proxy.resetStats();
        const incr = await this.cli('s3', w, ['backup', '--tenant', t.name, '--wait']);
        const incrStats = { requests: this.proxy.stats.requests, byMethod: { ...this.proxy.stats.byMethod } };
        console.log(`  incremental backup with cloud copy: ${incrStats.requests} S3 requests (${methods(incrStats.byMethod)}) in ${(incr.ms / 1000).toFixed(2)} s`);
        this.scenarioInfo.s3 = { first: { ...firstStats, ms: first.ms }, incremental: { ...incrStats, ms: incr.ms, addedFiles: added } };
        this.figure({
          id: 's3-incremental-backup',
          name: `S3 requests, incremental backup (+${added.toLocaleString('en-US')} files), per file`,
          scenario: 's3',
          odooDr: { label: `a second backup with cloud copy (${methods(incrStats.byMethod)}; ${(incr.ms / 1000).toFixed(1)} s)`, unit: 'count', suffix: 'requests', median: incrStats.requests, runs: [incrStats.requests] },
          bare: { label: 'files in the filestore', unit: 'count', suffix: 'files', median: t.fileCount + added, runs: [t.fileCount + added] },
          ratio: incrStats.requests / (t.fileCount + added),
        });
      } finally {
        for (const f of files) rmSync(f, { force: true });
      }
    } finally {
      await w.stop();
    }
  }


  async fleet(): Promise<void> {
    const names: string[] = [];
    const t0 = performance.now();
    for (let i = 0; i < this.p.fleet; i++) {
      const key = `fleet-${String(i).padStart(3, '0')}`;
      const name = `${this.prefix}-${key}`;
      if (!this.tenants.has(name)) this.tenants.set(name, await createTenant(this.admin, this.dataDir, { name, moveLines: 20, files: 2, fileSize: 512, partners: 4 }));
      names.push(name);
      this.check();
    }
    console.log(`  created ${names.length} tiny tenants in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    this.scenarioInfo.fleet = { tenants: names.length, databaseBytes: [...this.tenants.values()].filter((x) => names.includes(x.name)).reduce((a, x) => a + (x.dbSizeBytes ?? 0), 0) };
    const r = { bare: [] as number[], ours: [] as number[] };
    // A failed run ends the scenario, but the runs done so far still make figures.
    let failure: Error | undefined;
    for (let i = 0; i < this.p.runs; i++) {
      const w = await this.worker(`fleet${i}`, 'fleet').catch((err: unknown) => void (failure = err as Error));
      if (!w) break;
      try {
        const tmp = this.tmp('fleet');
        const [bare, ours] = await this.alternate(
          i,
          () => sh('printf \'%s\\n\' "${@:3}" | xargs -P3 -I{} "$1" -Fc -Z0 -f "$2/{}.dump" -d {}', [this.tools.pgDump, tmp, ...names], this.pgEnv),
          () => this.cli('fleet', w, ['backup', '--tenant', ...names, '--no-cloud', '--wait']),
        );
        r.bare.push(bare.ms);
        r.ours.push(ours.ms);
        console.log(`  run ${i + 1}: fleet backup ${(ours.ms / 1000).toFixed(2)} s vs xargs -P3 pg_dump ${(bare.ms / 1000).toFixed(2)} s`);
      } catch (err) {
        failure = err as Error;
      } finally {
        await w.stop();
      }
      if (failure) break;
    }
    this.pair({
      id: 'fleet-backup',
      name: `Fleet of ${names.length} tiny tenants vs \`xargs -P3 pg_dump -Fc -Z0\``,
      scenario: 'fleet',
      ours: { label: '`odoo-dr backup --tenant T1 … TN --no-cloud --wait`, DR_MAX_PARALLEL_BACKUPS=3 (2 files per tenant)', unit: 'ms', runs: r.ours },
      bare: { label: '`xargs -P3 -I{} pg_dump -Fc -Z0 -f DIR/{}.dump -d {}`', unit: 'ms', runs: r.bare },
      aim: { of: 'ratio', op: '<=', value: AIMS.fleet },
    });
    if (failure) throw failure;
  }

  async big(): Promise<void> {
    const t = await this.tenant('big', { moveLines: 500, files: this.p.bigFiles, fileSize: this.p.fileSize });
    this.scenarioInfo.big = { tenant: t.name, files: t.fileCount, filestoreBytes: t.filestoreBytes };
    const what = `${t.fileCount.toLocaleString('en-US')} files`;
    const w = await this.worker('big', 'big');
    try {
      const tmp = this.tmp('big');
      const archive = path.join(tmp, 'first.tar.zst.age');
      const bare = await sh('"$1" -C "$2" -cf - . | zstd -1 -q | age -r "$3" > "$4"', ['tar', t.filestoreDir, this.recipient, archive]);
      this.proxy.resetStats();
      const backup = await this.cli('big', w, ['backup', '--tenant', t.name, '--wait']);
      const requests = this.proxy.stats.requests;
      console.log(`  backup with cloud copy ${(backup.ms / 1000).toFixed(1)} s (${requests} S3 requests) vs tar ${(bare.ms / 1000).toFixed(1)} s`);
      this.pair({
        id: 'big-backup',
        name: `Filestore first backup with cloud copy, ${what}, vs \`tar | zstd -1 | age\``,
        scenario: 'big',
        ours: { label: `\`odoo-dr backup --tenant T --wait\` (local and cloud copy; ${requests} S3 requests)`, unit: 'ms', runs: [backup.ms] },
        bare: { label: '`tar -cf - . | zstd -1 | age -r R > FILE` (local only)', unit: 'ms', runs: [bare.ms] },
        planned: 1,
      });
      const session = String(backup.json.session);
      const dest = path.join(tmp, 'restored');
      const untar = await sh('mkdir -p "$3"\nage -d -i "$1" "$2" | zstd -d -q | tar -x -C "$3"', [this.identityFile, archive, dest]);
      rmSync(dest, { recursive: true, force: true });
      const recover = await this.cli('big', w, ['recover', '-m', 'files-only', '-c', '--tenant', t.name, '-s', session, '--yes', '--wait']);
      await this.sweep();
      console.log(`  files-only recovery from the bucket ${(recover.ms / 1000).toFixed(1)} s vs untar ${(untar.ms / 1000).toFixed(1)} s`);
      this.pair({
        id: 'big-recover',
        name: `Files-only recovery from the bucket, ${what}, vs \`age -d | zstd -d | tar -x\``,
        scenario: 'big',
        ours: { label: '`odoo-dr recover -m files-only -c --tenant T -s SESSION --yes --wait`', unit: 'ms', runs: [recover.ms] },
        bare: { label: '`age -d -i KEY FILE | zstd -d | tar -x` of a local archive', unit: 'ms', runs: [untar.ms] },
        planned: 1,
      });
    } finally {
      await w.stop();
    }
  }


  /** Figures over every worker and workflow: peak RSS by size, activity timeouts. */
  async summaries(ran: Scenario[]): Promise<void> {
    const rssFigure = (id: string, name: string, group: string, what: string) => {
      const xs = this.rss[group];
      if (!xs?.length) return;
      const failed = RSS_GROUPS[group]!.filter((s) => ran.includes(s) && this.errors.some((e) => e.startsWith(`${s}:`)));
      if (failed.length) what += ` (the ${failed.join(', ')} scenario failed: its workers count up to the failure)`;
      const peaks = xs.map((x) => x.peak);
      const starts = xs.map((x) => x.start).filter((x): x is number => x !== undefined);
      this.figure({
        id,
        name,
        scenario: group,
        odooDr: { label: `VmHWM of the \`odoo-dr worker\` process since its start, highest of ${xs.length} worker(s)`, unit: 'bytes', median: Math.max(...peaks), runs: peaks },
        aim: { of: 'value', op: '<', value: AIMS.rssBytes },
        note: `${what}; right after start-up (configuration, connections, workflow bundle) ${starts.length ? `${(Math.max(...starts) / MiB).toFixed(0)} MiB` : 'unknown'}`,
      });
    };
    const fs = this.scenarioInfo.fs as { files?: number } | undefined;
    const big = this.scenarioInfo.big as { files?: number } | undefined;
    if (fs?.files) rssFigure('rss-files', `Worker peak RSS, ${fs.files.toLocaleString('en-US')}-file tenant`, 'files', 'backups (local and cloud), files-only recovery, restore test');
    if (big?.files) rssFigure('rss-big', `Worker peak RSS, ${big.files.toLocaleString('en-US')}-file tenant`, 'big', 'backup with cloud copy, files-only recovery from the bucket');
    const db = this.scenarioInfo.db as { databaseBytes?: number } | undefined;
    if (db?.databaseBytes) rssFigure('rss-db', `Worker peak RSS, ${(db.databaseBytes / MiB).toFixed(0)} MiB database`, 'db', 'backup, restore test, database-only recovery');

    const groups: Array<[string, string, string[]]> = [];
    if (ran.includes('big')) groups.push(['timeouts-big', `Activities timed out, ${big?.files?.toLocaleString('en-US') ?? ''}-file tenant`, this.workflows.big ?? []]);
    const others = ran.filter((s) => s !== 'big').flatMap((s) => this.workflows[s] ?? []);
    if (ran.some((s) => s !== 'big')) groups.push(['timeouts', `Activities timed out, ${ran.filter((s) => s !== 'big').join(', ')} scenarios`, others]);
    for (const [id, name, ids] of groups) {
      try {
        const issues = await activityIssues(this.client, ids);
        this.figure({
          id,
          name,
          scenario: id === 'timeouts-big' ? 'big' : 'all',
          odooDr: { label: `read from the histories of ${issues.workflows} workflow(s) and their children (${issues.activities} activities)`, unit: 'count', median: issues.timedOut, runs: [issues.timedOut] },
          aim: { of: 'value', op: '<=', value: 0 },
          note: `${issues.retries} activity retr${issues.retries === 1 ? 'y' : 'ies'}${issues.examples.length ? `: ${issues.examples.join('; ')}` : ''}`,
        });
      } catch (err) {
        this.figures.push({ id, name, scenario: 'all', pass: null, error: `reading workflow histories: ${(err as Error).message}` });
      }
    }
  }
}

function gitInfo(): Results['git'] {
  const git = (...args: string[]) => execFileSync('git', ['-C', REPO_ROOT, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    return { commit: git('rev-parse', 'HEAD'), branch: git('rev-parse', '--abbrev-ref', 'HEAD'), dirty: git('status', '--porcelain', '--untracked-files=no') !== '' };
  } catch {
    return { commit: 'unknown', branch: 'unknown', dirty: false };
  }
}

async function main(argv: string[]): Promise<number> {
  let p: Params | undefined;
  try {
    p = parseParams(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`npm run bench: ${err.message}\n\n${HELP}`);
      return 2;
    }
    throw err;
  }
  if (!p) {
    console.log(HELP);
    return 0;
  }
  const bench = new Bench(p);
  const started = new Date();
  const t0 = performance.now();
  const loadStart = os.loadavg()[0]!;
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    bench.interrupted = true;
    console.error(`\n${sig}: stopping, then cleaning up (again to stop at once)`);
    killChildren(signals > 1 ? 'SIGKILL' : 'SIGTERM');
    if (signals > 1) process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const ran: Scenario[] = [];
  try {
    try {
      await bench.setUp();
    } catch (err) {
      if (err instanceof StackDownError) {
        console.error(`npm run bench: ${err.message}`);
        return 3;
      }
      throw err;
    }
    console.log(
      `odoo-dr benchmark ${bench.id}, ${started.toISOString()}: scenarios ${p.scenarios.join(', ')}; ${p.runs} run(s); ` +
        `files ${p.files} × ${p.fileSize} B, big ${p.bigFiles}, database ${p.dbMb} MiB, fleet ${p.fleet}`,
    );
    console.log(`  (databases ${bench.prefix}-*, folders ${bench.root}, bucket prefix s3://${bench.stack.cloud!.bucket}/${bench.bucketPrefix}/, task queues ${bench.prefix}-*)`);
    for (const s of p.scenarios) {
      if (bench.interrupted) break;
      console.log(`\n== ${s}`);
      ran.push(s);
      try {
        await bench[s]();
      } catch (err) {
        const msg = (err as Error).message;
        bench.errors.push(`${s}: ${msg}`);
        bench.figures.push({ id: `${s}-error`, name: `${s} scenario`, scenario: s, pass: null, error: msg });
        console.error(`  ${s} failed: ${msg}`);
        await bench.sweep().catch(() => undefined);
      }
    }
    if (!bench.interrupted) await bench.summaries(ran);
  } finally {
    if (ran.length) console.log('\ncleaning up…');
    await bench.cleanUp();
  }
  if (bench.interrupted) return 130;

  const results: Results = {
    version: 1,
    date: started.toISOString(),
    durationMs: performance.now() - t0,
    git: gitInfo(),
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
      memoryBytes: os.totalmem(),
      os: `${os.type()} ${os.release()}`,
      node: process.version,
      loadStart,
      loadEnd: os.loadavg()[0]!,
      tools: {
        postgresServer: bench.serverVersion,
        pg_dump: `pg_dump ${bench.tools.version.full} (${bench.tools.pgDump})`,
        tar: versionLine('tar', ['--version']).replace(/^tar \(GNU tar\)/, 'GNU tar'),
        zstd: `zstd ${/v(\d+(?:\.\d+)+)/.exec(versionLine('zstd', ['--version']))?.[1] ?? 'unknown'}`,
        age: `age ${versionLine('age', ['--version']).replace(/^v/, '')}`,
      },
    },
    params: { files: p.files, 'file-size': p.fileSize, 'big-files': p.bigFiles, 'db-mb': p.dbMb, fleet: p.fleet, runs: p.runs, quick: p.quick, scenarios: ran.join(',') },
    scenarios: bench.scenarioInfo,
    figures: bench.figures,
    errors: bench.errors,
  };
  mkdirSync(path.dirname(p.out), { recursive: true });
  writeFileSync(p.out, `${JSON.stringify(results, null, 2)}\n`);

  console.log(`\n${runSummary(results)}\n`);
  console.log(textTable(results.figures));
  console.log('');
  for (const line of figureNotes(results.figures, false)) console.log(`  ${line}`);
  console.log(`\nresults: ${path.relative(process.cwd(), p.out) || p.out}`);
  if (p.writeReadme) console.log(`README: ${writeReadme(results)}`);
  if (bench.errors.length) return 1;
  if (p.strict && results.figures.some((f) => f.pass === false)) return 1;
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
