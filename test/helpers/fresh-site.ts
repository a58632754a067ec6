/**
 * A "new host" for site-loss tests: a second, empty PostgreSQL cluster, a second Temporal dev server
 * with an empty database, and empty data, configuration, backup and log folders. Tests back up on
 * the local stack, then point odoo-dr at this host (freshSiteEnv) and recover from the S3 bucket.
 *
 * Started the way scripts/stack.sh starts the stack (same binaries, same Temporal flags), but on
 * free ports that never are the stack's, in folders /var/tmp/odoo-dr-stack/fresh-* of their own.
 *
 * A server must never outlive the test process that started it:
 *   - stop() stops it and deletes its files (idempotent; withFreshSite always calls it);
 *   - on process 'exit' (mocha --exit, uncaught exception, process.exit) and on SIGINT, SIGTERM and
 *     SIGHUP, every live server is killed synchronously and its folder deleted;
 *   - a small detached watchdog per server does the same once the test process is gone, even
 *     when it was killed with SIGKILL and no handler could run.
 */
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  appendFileSync,
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { rm } from 'node:fs/promises';
import net from 'node:net';
import { homedir } from 'node:os';
import path from 'node:path';
import type { DrConfig } from '../../src/config';
import { stackConfig } from './config';

// --- Settings shared with scripts/lib.sh (same environment variables, same defaults) -------------

const STACK_DIR = path.resolve(process.env.ODOO_DR_STACK_DIR ?? '/var/tmp/odoo-dr-stack');
const PG_BIN = `/usr/lib/postgresql/${process.env.ODOO_DR_PG_MAJOR ?? '15'}/bin`;
const TEMPORAL_BIN = path.join(process.env.ODOO_DR_CACHE ?? path.join(homedir(), '.cache/odoo-dr'), 'bin/temporal');

/** The local stack's fixed ports (scripts/lib.sh): a fresh site never uses them. */
export const STACK_PORTS: ReadonlySet<number> = new Set(
  Object.entries({
    ODOO_DR_PG_PORT: 55432,
    ODOO_DR_TEMPORAL_PORT: 57233,
    ODOO_DR_TEMPORAL_UI_PORT: 58233,
    ODOO_DR_S3_PORT: 57070,
  }).flatMap(([variable, port]) => [port, Number(process.env[variable] ?? port)]),
);

/** The Temporal flags of scripts/stack.sh (temporal_up), so workflows behave as on the stack. */
const TEMPORAL_SERVER_FLAGS = [
  '--search-attribute',
  'OdooDrTenants=KeywordList',
  '--search-attribute',
  'OdooDrSession=Keyword',
  '--dynamic-config-value',
  'frontend.enableUpdateWorkflowExecution=true',
  '--dynamic-config-value',
  'frontend.enableUpdateWorkflowExecutionAsyncAccepted=true',
  '--dynamic-config-value',
  'system.enableActivityEagerExecution=true',
];

const IS_ROOT = process.getuid?.() === 0;

// --- Public API ------------------------------------------------------------------------------------

export interface FreshPostgres {
  host: '127.0.0.1';
  port: number;
  /** Password of the superuser `postgres` (mode 0600). */
  passwordFile: string;
  /** The cluster's data directory (PGDATA), `<dir>/data`. */
  dataDir: string;
  /** The cluster folder STACK_DIR/fresh-XXXXXX: data/, password file, log, unix socket. Deleted by stop(). */
  dir: string;
  stop(): Promise<void>;
}

export interface FreshTemporal {
  /** host:port of the frontend gRPC service. */
  address: string;
  /** The server's folder STACK_DIR/fresh-temporal-XXXXXX (SQLite database, log). Deleted by stop(). */
  dir: string;
  stop(): Promise<void>;
}

export interface FreshSite {
  /** The new host's folder: backups/, odoo-data/, odoo-config/, logs/ (all empty at start). */
  root: string;
  postgres: FreshPostgres;
  temporal: FreshTemporal;
  /** freshSiteEnv(): overrides for loadConfig / stackConfig / runCli. */
  env: Record<string, string>;
  /**
   * The stack's configuration with `env` (and `extra`) applied, its Temporal settings pointing at
   * the fresh server too (loadConfig reads TEMPORAL_* only from the file, see freshSiteConfig).
   */
  config(extra?: Record<string, string>): DrConfig;
  /** Stops both servers and deletes `root`. Idempotent. */
  stop(): Promise<void>;
}

/**
 * An empty PostgreSQL cluster: superuser `postgres` only (no `odoo` role), scram-sha-256 over TCP on
 * 127.0.0.1:<port> (a free one unless given), unix socket in the cluster folder.
 */
export async function startFreshPostgres(opts: { port?: number } = {}): Promise<FreshPostgres> {
  if (opts.port !== undefined && STACK_PORTS.has(opts.port)) {
    throw new Error(`port ${opts.port} belongs to the local stack; a fresh PostgreSQL must use another one`);
  }
  const dir = makeFreshDir('fresh-pg-', { forPostgres: true });
  const dataDir = path.join(dir, 'data');
  const passwordFile = path.join(dir, 'postgres.password');
  const logFile = path.join(dir, 'postgres.log');
  const pgCtl = path.join(PG_BIN, 'pg_ctl');

  // Crash cleanup first, so that even a failing initdb leaves nothing behind.
  const guard = registerGuard({
    kill: () => {
      if (existsSync(path.join(dataDir, 'postmaster.pid'))) {
        const [cmd, args] = asPg(pgCtl, ['-D', dataDir, '-m', 'immediate', 'stop']);
        spawnSync(cmd, args, { cwd: dir, stdio: 'ignore', timeout: 15_000 });
      }
      rmSync(dir, { recursive: true, force: true });
    },
    dir,
    watchdog: [`${IS_ROOT ? 'runuser -u postgres -- ' : ''}"$3" -D "$4" -m immediate stop >/dev/null 2>&1`, pgCtl, dataDir],
  });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      guard.release();
      if (existsSync(path.join(dataDir, 'postmaster.pid'))) {
        try {
          await runAsPg(pgCtl, ['-D', dataDir, '-m', 'immediate', '-w', '-t', '30', 'stop'], dir);
        } catch {
          // pg_ctl could not stop it: kill the postmaster (its backends follow it).
          const pid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
          if (pid > 0) killQuietly(pid, 'SIGKILL');
        }
      }
      await rm(dir, { recursive: true, force: true });
    })());

  try {
    writeFileSync(passwordFile, randomBytes(24).toString('hex'), { mode: 0o600 });
    if (IS_ROOT) chownToPostgres(passwordFile);
    await runAsPg(
      path.join(PG_BIN, 'initdb'),
      [
        '-D',
        dataDir,
        '-U',
        'postgres',
        `--pwfile=${passwordFile}`,
        '--auth-local=peer',
        '--auth-host=scram-sha-256',
        '-E',
        'UTF8',
        '--locale=C.UTF-8',
        '--no-sync',
      ],
      dir,
    );
    // A throwaway cluster: durability settings off, for speed (restores write a lot).
    appendFileSync(
      path.join(dataDir, 'postgresql.conf'),
      [
        '# odoo-dr fresh site (test/helpers/fresh-site.ts)',
        "listen_addresses = '127.0.0.1'",
        `unix_socket_directories = '${dir}'`,
        'max_connections = 100',
        'shared_buffers = 64MB',
        'fsync = off',
        'synchronous_commit = off',
        'full_page_writes = off',
        '',
      ].join('\n'),
    );
    // A free port can be taken between our probe and the server's bind: try another one then.
    for (let attempt = 1; ; attempt++) {
      const port = opts.port ?? (await freePort());
      // Later lines win in postgresql.conf.
      appendFileSync(path.join(dataDir, 'postgresql.conf'), `port = ${port}\n`);
      try {
        await runAsPg(pgCtl, ['-D', dataDir, '-l', logFile, '-w', '-t', '60', 'start'], dir);
        return { host: '127.0.0.1', port, passwordFile, dataDir, dir, stop };
      } catch (err) {
        const log = tail(logFile);
        if (opts.port === undefined && attempt < 3 && /already in use/i.test(log)) continue;
        throw new Error(`fresh PostgreSQL did not start on 127.0.0.1:${port}: ${(err as Error).message}\n${log}`);
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * A Temporal dev server with an empty database on 127.0.0.1:<free port>, namespace `default` and
 * the stack's search attributes and dynamic configuration. Resolves once the namespace is served.
 */
export async function startFreshTemporal(): Promise<FreshTemporal> {
  if (!existsSync(TEMPORAL_BIN)) {
    throw new Error(`Temporal CLI not found at ${TEMPORAL_BIN}: start the local stack first (npm run stack:up)`);
  }
  const headless = await temporalHasHeadless();
  for (let attempt = 1; ; attempt++) {
    try {
      return await startTemporalOnce(headless);
    } catch (err) {
      if (attempt < 3 && err instanceof PortTakenError) continue;
      throw err;
    }
  }
}

/**
 * Environment overrides for loadConfig (stackConfig(overrides), runCli(args, env)) that point
 * odoo-dr at the new host. Creates the empty folders under `root`. What survives a site loss
 * stays from the stack's configuration: the bucket and S3 credentials, ODOO_DB_USER, the age key.
 */
export function freshSiteEnv(opts: { postgres: FreshPostgres; temporal: FreshTemporal; root: string }): Record<string, string> {
  const { postgres, temporal, root } = opts;
  const dirs = {
    backups: path.join(root, 'backups'),
    odooData: path.join(root, 'odoo-data'),
    odooConfig: path.join(root, 'odoo-config'),
    logs: path.join(root, 'logs'),
  };
  for (const dir of Object.values(dirs)) mkdirSync(dir, { recursive: true });
  return {
    POSTGRES_HOST: postgres.host,
    POSTGRES_PORT: String(postgres.port),
    POSTGRES_USER: 'postgres',
    // Empty means "not set": overrides a password the file might carry (both set is an error).
    POSTGRES_PASSWORD: '',
    POSTGRES_PASSWORD_FILE: postgres.passwordFile,
    POSTGRES_MASTER_DB: 'postgres',
    DR_BACKUP_DIR: dirs.backups,
    ODOO_DATA_DIR: dirs.odooData,
    ODOO_FILESTORE_PATH: path.join(dirs.odooData, 'filestore'),
    // The folder the configuration archive restores into.
    DR_CONFIG_PATHS: dirs.odooConfig,
    DR_LOG_DIR: dirs.logs,
    TEMPORAL_ADDRESS: temporal.address,
    TEMPORAL_NAMESPACE: 'default',
  };
}

/**
 * stackConfig(env) whose temporalEnv also carries the env's TEMPORAL_* values: loadConfig takes
 * TEMPORAL_* only from the file, and temporalSettings(config) / connectClient(config) read
 * config.temporalEnv (then process.env, which wins: do not set TEMPORAL_ADDRESS in the test's shell).
 */
export function freshSiteConfig(env: Record<string, string>): DrConfig {
  const config = stackConfig(env);
  const temporalEnv = { ...config.temporalEnv };
  for (const [k, v] of Object.entries(env)) if (k.startsWith('TEMPORAL_')) temporalEnv[k] = v;
  return { ...config, temporalEnv };
}

/** Starts a whole new host: both servers (in parallel) and an empty root folder. */
export async function startFreshSite(): Promise<FreshSite> {
  const root = makeFreshDir('fresh-site-');
  // Readable by the postgres OS user, should a test need it to read a file there.
  chmodSync(root, 0o755);
  const rootGuard = registerGuard({ kill: () => rmSync(root, { recursive: true, force: true }), dir: root, watchdog: [':'] });
  const [pg, temporal] = await Promise.allSettled([startFreshPostgres(), startFreshTemporal()]);
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      const results = await Promise.allSettled([pg, temporal].map((r) => (r.status === 'fulfilled' ? r.value.stop() : Promise.resolve())));
      rootGuard.release();
      await rm(root, { recursive: true, force: true });
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    })());
  if (pg.status === 'rejected' || temporal.status === 'rejected') {
    await stop().catch(() => undefined);
    throw pg.status === 'rejected' ? pg.reason : (temporal as PromiseRejectedResult).reason;
  }
  const env = freshSiteEnv({ postgres: pg.value, temporal: temporal.value, root });
  return {
    root,
    postgres: pg.value,
    temporal: temporal.value,
    env,
    config: (extra = {}) => freshSiteConfig({ ...env, ...extra }),
    stop,
  };
}

/**
 * Runs `fn` on a new host and always tears it down (servers stopped, folders deleted), whether `fn`
 * succeeds or throws. An error of `fn` wins over an error of the teardown.
 *
 *   it('recovers everything after losing the site', async () => {
 *     await withFreshSite(async (site) => { ... runCli(['recover', ...], site.env) ... });
 *   });
 */
export async function withFreshSite<T>(fn: (site: FreshSite) => Promise<T>): Promise<T> {
  const site = await startFreshSite();
  let result: T;
  try {
    result = await fn(site);
  } catch (err) {
    await site.stop().catch(() => undefined);
    throw err;
  }
  await site.stop();
  return result;
}

// --- Temporal -------------------------------------------------------------------------------------

class PortTakenError extends Error {}

let headlessProbe: Promise<boolean> | undefined;

/** Whether this CLI's `server start-dev` has --headless (no Web UI); CLI 1.x has. */
function temporalHasHeadless(): Promise<boolean> {
  headlessProbe ??= new Promise((resolve) => {
    execFile(TEMPORAL_BIN, ['server', 'start-dev', '--help'], { env: temporalCliEnv(), timeout: 15_000 }, (_err, stdout) =>
      resolve(/--headless\b/.test(String(stdout))),
    );
  });
  return headlessProbe;
}

async function startTemporalOnce(headless: boolean): Promise<FreshTemporal> {
  const dir = makeFreshDir('fresh-temporal-');
  const logFile = path.join(dir, 'temporal.log');
  const port = await freePort();
  // Every port the server would otherwise pick at random is chosen here, away from the stack's.
  const uiFlags = headless ? ['--headless'] : ['--ui-port', String(await freePort())];
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    ...uiFlags,
    '--http-port',
    String(await freePort()),
    '--metrics-port',
    String(await freePort()),
    '--db-filename',
    path.join(dir, 'temporal.db'),
    '--namespace',
    'default',
    '--log-level',
    'error',
    ...TEMPORAL_SERVER_FLAGS,
  ];
  const address = `127.0.0.1:${port}`;

  const logFd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    // Own process group (kill the group), not tied to the terminal's Ctrl-C; unref'd so that a test
    // forgetting stop() does not keep node alive (the 'exit' guard kills it then).
    child = spawn(TEMPORAL_BIN, args, { cwd: dir, detached: true, stdio: ['ignore', logFd, logFd], env: temporalCliEnv() });
  } finally {
    closeSync(logFd);
  }
  child.unref();
  let spawnError: Error | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', (err) => ((spawnError = err), resolve()));
  });
  const hasExited = () => spawnError !== undefined || child.exitCode !== null || child.signalCode !== null;
  const pid = child.pid;

  const guard = registerGuard({
    kill: () => {
      if (pid !== undefined && !hasExited()) killGroup(pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
    dir,
    watchdog: pid === undefined ? [':'] : ['kill -TERM -- "-$3" 2>/dev/null; sleep 2; kill -KILL -- "-$3" 2>/dev/null', String(pid)],
  });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      guard.release();
      if (pid !== undefined && !hasExited()) {
        killGroup(pid, 'SIGTERM');
        if (!(await within(exited, 10_000))) {
          killGroup(pid, 'SIGKILL');
          await within(exited, 5_000);
        }
      }
      await rm(dir, { recursive: true, force: true });
    })());

  // The frontend port opens before the namespace is served: wait until `describe` answers.
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (hasExited()) {
      const log = tail(logFile);
      await stop();
      const why = spawnError ? spawnError.message : `exit code ${child.exitCode}, signal ${child.signalCode}`;
      if (/address already in use/i.test(log)) throw new PortTakenError(`a port was taken: ${log}`);
      throw new Error(`fresh Temporal dev server on ${address} exited while starting (${why}); last lines of its log:\n${log}`);
    }
    if (await namespaceServed(address)) return { address, dir, stop };
    if (Date.now() > deadline) {
      const log = tail(logFile);
      await stop();
      throw new Error(`fresh Temporal dev server on ${address} did not serve namespace 'default' within 60 s; last lines of its log:\n${log}`);
    }
    await sleep(200);
  }
}

function namespaceServed(address: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(TEMPORAL_BIN, ['operator', 'namespace', 'describe', '--address', address, '-n', 'default'], { env: temporalCliEnv(), timeout: 10_000 }, (err) =>
      resolve(!err),
    );
  });
}

/** The process environment without TEMPORAL_* (a developer's profile, namespace or TLS settings). */
function temporalCliEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TEMPORAL_')) env[k] = v;
  return env;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  if (!killQuietly(-pid, signal)) killQuietly(pid, signal);
}

// --- PostgreSQL -----------------------------------------------------------------------------------

/** The command line that runs `cmd` as PostgreSQL's OS user (runuser when we are root, as stack.sh). */
function asPg(cmd: string, args: string[]): [string, string[]] {
  return IS_ROOT ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
}

function runAsPg(cmd: string, args: string[], cwd: string): Promise<void> {
  const [file, argv] = asPg(cmd, args);
  return new Promise((resolve, reject) => {
    execFile(file, argv, { cwd, timeout: 120_000, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (!err) return resolve();
      const output = `${String(stderr)}${String(stdout)}`.trim();
      reject(new Error(`${path.basename(cmd)} failed (${err.message.split('\n')[0]})${output ? `: ${output}` : ''}`));
    });
  });
}

let postgresIds: { uid: number; gid: number } | undefined;

function chownToPostgres(file: string): void {
  postgresIds ??= {
    uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()),
    gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()),
  };
  chownSync(file, postgresIds.uid, postgresIds.gid);
}

// --- Folders, ports, cleanup ----------------------------------------------------------------------

/** A new folder STACK_DIR/<prefix>XXXXXX (mode 0700); for PostgreSQL, owned by its OS user when we are root. */
function makeFreshDir(prefix: string, opts: { forPostgres?: boolean } = {}): string {
  mkdirSync(STACK_DIR, { recursive: true, mode: 0o755 });
  // PostgreSQL's OS user must traverse it (stack.sh makes it 755 too).
  if (IS_ROOT && (statSync(STACK_DIR).mode & 0o005) !== 0o005) chmodSync(STACK_DIR, 0o755);
  const dir = mkdtempSync(path.join(STACK_DIR, prefix));
  if (IS_ROOT && opts.forPostgres) chownToPostgres(dir);
  return dir;
}

/** Ports handed out by this process, so two servers started back to back never get the same one. */
const handedOut = new Set<number>();

/** A port free on 127.0.0.1 right now (bound to port 0 then released), never one of the stack's. */
async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.unref();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    if (!STACK_PORTS.has(port) && !handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no free port on 127.0.0.1 outside the local stack');
}

interface GuardSpec {
  /** Synchronous best-effort cleanup, for 'exit' and signals: stop the server, delete `dir`. */
  kill: () => void;
  /** The folder deleted by the cleanup (always a STACK_DIR/fresh-* folder). */
  dir: string;
  /**
   * Shell commands the watchdog runs once this process is gone, before deleting `dir`:
   * $1 is our pid, $2 the folder, $3… the arguments given here.
   */
  watchdog: [script: string, ...args: string[]];
}

const live = new Set<{ kill: () => void; watchdog: ChildProcess | undefined }>();
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function onExit(): void {
  for (const entry of [...live]) {
    live.delete(entry);
    try {
      entry.kill();
    } catch {
      // best effort: the watchdog tries again
    }
    if (entry.watchdog?.pid !== undefined) killGroup(entry.watchdog.pid, 'SIGKILL');
  }
}

function onSignal(signal: NodeJS.Signals): void {
  onExit();
  uninstallHandlers();
  // Nobody else handles it: behave as if we had not been listening (the default action ends us).
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

let installed = false;

function installHandlers(): void {
  if (installed) return;
  installed = true;
  process.on('exit', onExit);
  for (const s of SIGNALS) process.on(s, onSignal);
}

function uninstallHandlers(): void {
  if (!installed) return;
  installed = false;
  process.off('exit', onExit);
  for (const s of SIGNALS) process.off(s, onSignal);
}

/** Registers crash cleanup for one server or folder; release() once it has been stopped normally. */
function registerGuard(spec: GuardSpec): { release: () => void } {
  const [script, ...args] = spec.watchdog;
  // The watchdog deletes a folder: only ever one of ours.
  if (path.dirname(spec.dir) !== path.resolve(STACK_DIR) || !path.basename(spec.dir).startsWith('fresh-')) {
    throw new Error(`refusing to guard ${spec.dir}: not a ${STACK_DIR}/fresh-* folder`);
  }
  const watchdog = spawn(
    'bash',
    [
      '-c',
      `while kill -0 "$1" 2>/dev/null; do sleep 1; done; ${script}; rm -rf -- "$2"`,
      'odoo-dr-fresh-site-watchdog',
      String(process.pid),
      spec.dir,
      ...args,
    ],
    { cwd: '/', detached: true, stdio: 'ignore' },
  );
  watchdog.on('error', () => undefined);
  watchdog.unref();
  const entry = { kill: spec.kill, watchdog };
  live.add(entry);
  installHandlers();
  return {
    release: () => {
      if (!live.delete(entry)) return;
      if (watchdog.pid !== undefined && watchdog.exitCode === null && watchdog.signalCode === null) {
        killGroup(watchdog.pid, 'SIGKILL');
      }
      if (live.size === 0) uninstallHandlers();
    },
  };
}

function killQuietly(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return `(no log at ${file})`;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether `p` settles within `ms`. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
