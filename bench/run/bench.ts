/**
 * What one `npm run bench` run owns (its databases, folders, bucket prefix, workers and workflows,
 * all named after its id) and what it measured (figures, errors, each worker's peak RSS), with the
 * set-up that checks the local stack and the clean-up that removes everything, also after a failure.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { loadConfig, type DrConfig } from '../../src/config';
import { findClientTools, type PgTools } from '../../src/pgtools';
import { quoteIdent, serverVersion, withClient } from '../../src/postgres';
import { abortStaleUploads, deleteObjects, listObjects } from '../../src/storage/s3';
import { temporalSettings } from '../../temporal/connection';
import type { PgAdminConnection, TenantInfo } from '../../test/fixtures/odoo-tenants';
import { startFaultProxy, type FaultProxy } from '../../test/helpers/fault-proxy';
import { CliError, killChildren, median, odooDr, startWorker, tcpReachable, type BenchWorker } from '../harness';
import { judge, type Aim, type Figure, type Side } from '../report';
import { versionLine } from './bare';
import type { Params } from './params';

/** The local stack is not up, or lacks what the bench needs (exit 3). */
export class StackDownError extends Error {}

/** Everything one `npm run bench` run owns, and what it measured. */
export class Bench {
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
    if (down.length)
      throw new StackDownError(`the local stack is not up:\n  ${down.join('\n  ')}\ncheck with npm run stack:status, start it with npm run stack:up`);
    const missing = ['tar', 'zstd', 'age', 'xargs'].filter((t) => versionLine(t, ['--version']) === 'missing');
    if (missing.length) throw new StackDownError(`missing bare tools on PATH: ${missing.join(', ')} (scripts/install-system.sh installs them)`);
    if (!/GNU tar/.test(versionLine('tar', ['--version'])))
      throw new StackDownError('tar is not GNU tar: the incremental reference needs --listed-incremental');

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

  /**
   * Runs `measure` --runs times, each with a fresh worker (`<label><run>`, its peak RSS counted in
   * `group`), stopped after the run. The first failure ends the runs and is returned, so that the
   * scenario still makes figures from the runs done before it.
   */
  async eachRun(label: string, group: string, measure: (run: number, w: BenchWorker) => Promise<void>): Promise<Error | undefined> {
    for (let i = 0; i < this.p.runs; i++) {
      let w: BenchWorker;
      try {
        w = await this.worker(`${label}${i}`, group);
      } catch (err) {
        return err as Error;
      }
      try {
        await measure(i, w);
      } catch (err) {
        return err as Error;
      } finally {
        await w.stop();
      }
    }
    return undefined;
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

  /**
   * What odoo-dr left beside the live tenants between two steps (pre-recovery copies of databases
   * and folders, shadows): databases of this run that are not tenants, filestore folders that are
   * not tenants'. Names only: no knowledge of odoo-dr's layout beyond "not a tenant".
   */
  async sweep(): Promise<void> {
    const live = new Set(this.tenants.keys());
    const dbs = await withClient(this.stack.postgres, this.stack.postgres.maintenanceDb, async (c) =>
      (
        await c.query<{ datname: string }>('SELECT datname FROM pg_database WHERE left(datname, $1::int) = $2', [this.prefix.length + 1, `${this.prefix}-`])
      ).rows.map((r) => r.datname),
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
  pair(f: {
    id: string;
    name: string;
    scenario: string;
    ours: Omit<Side, 'median'>;
    bare: Omit<Side, 'median'>;
    aim?: Aim;
    note?: string;
    planned?: number;
  }): void {
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
        for await (const w of this.client.workflow.list({ query: `ExecutionStatus = 'Running' AND TaskQueue STARTS_WITH '${this.prefix}-'` }))
          ids.add(w.workflowId);
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
          (
            await c.query<{ datname: string }>('SELECT datname FROM pg_database WHERE left(datname, $1::int) = $2', [this.prefix.length + 1, `${this.prefix}-`])
          ).rows.map((r) => r.datname),
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

  /** Runs `a` then `b` on even runs, `b` then `a` on odd ones: neither side always gets the warmer machine. */
  async alternate<A, B>(run: number, a: () => Promise<A>, b: () => Promise<B>): Promise<[A, B]> {
    if (run % 2 === 0) {
      const x = await a();
      return [x, await b()];
    }
    const y = await b();
    return [await a(), y];
  }
}
