/**
 * Measuring helpers for `npm run bench` (bench/run.ts): bare commands timed through bash, the real
 * `odoo-dr` CLI and worker processes (test/helpers/cli.ts) with their peak RSS, folder sizes,
 * activity timeouts read from workflow histories, and a check that the local stack is up.
 *
 * Nothing here knows how odoo-dr lays out its backups: only the CLI, the worker process, the
 * workflow histories and the sizes of whole folders are used.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Client } from '@temporalio/client';
import { runCli, startCliWorker, type CliRun } from '../test/helpers/cli';
import { REPO_ROOT } from '../test/helpers/config';

export const MiB = 1024 * 1024;

export function median(xs: readonly number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Children started by the bench: stopped by pid, one by one, on the way out (never by name). */
const children = new Set<ChildProcess>();

export function killChildren(signal: NodeJS.Signals = 'SIGTERM'): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null && c.pid) {
      try {
        process.kill(c.pid, signal);
      } catch {
        /* already gone */
      }
    }
  }
}

function tail(text: string, lines = 25): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/**
 * Runs a bash script (`set -euo pipefail`) and returns its wall time. `argv` are `$1`, `$2`, … (names
 * and paths never pasted into the script). Fails with the script's stderr.
 */
export async function sh(script: string, argv: string[] = [], env: NodeJS.ProcessEnv = {}, timeoutMs = 3 * 3600_000): Promise<{ ms: number; stdout: string }> {
  const t0 = performance.now();
  const child = spawn('bash', ['-c', `set -euo pipefail\n${script}`, 'bench', ...argv], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  }).finally(() => {
    clearTimeout(timer);
    children.delete(child);
  });
  const ms = performance.now() - t0;
  if (code !== 0) throw new Error(`bare command failed (exit ${code}): ${script.split('\n')[0]}\n${tail(stderr, 10)}`);
  return { ms, stdout };
}

/** Bytes of the regular files under `dir` (apparent sizes), the whole tree; 0 if absent. */
export function dirBytes(dir: string): number {
  if (!existsSync(dir)) return 0;
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += dirBytes(p);
    else if (e.isFile()) total += lstatSync(p).size;
  }
  return total;
}

/** Regular files under `dir`. */
export function dirFiles(dir: string): number {
  if (!existsSync(dir)) return 0;
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) n += e.isDirectory() ? dirFiles(path.join(dir, e.name)) : e.isFile() ? 1 : 0;
  return n;
}

/** `VmHWM` (peak resident set) of a live process, in bytes; undefined where /proc has none. */
export function peakRss(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Resolves when host:port accepts a TCP connection, rejects after `timeoutMs`. */
export function tcpReachable(host: string, port: number, timeoutMs = 3000): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const done = (err?: Error) => {
      socket.destroy();
      if (err) reject(err);
      else resolve();
    };
    socket.setTimeout(timeoutMs, () => done(new Error(`no answer within ${timeoutMs} ms`)));
    socket.once('connect', () => done());
    socket.once('error', (err) => done(err));
  });
}

/** An `odoo-dr worker` process started with the bench's environment. */
export interface BenchWorker {
  label: string;
  pid: number;
  env: NodeJS.ProcessEnv;
  /** Peak RSS once it polls its task queue (start-up: configuration, connections, workflow bundle). */
  startRss: number | undefined;
  /** Settles when the process exits (whoever stopped it). */
  exited: Promise<number | null>;
  /** Everything it printed so far (last lines). */
  tail(lines?: number): string;
  /** SIGTERM, waits for the drain (SIGKILL after `graceMs`); returns the peak RSS read just before. */
  stop(graceMs?: number): Promise<number | undefined>;
}

/** The systemd unit a deployment runs the worker with (README "Production deployment"). */
export const WORKER_UNIT = path.join(REPO_ROOT, 'deploy/systemd/odoo-dr-worker.service');

/**
 * The `Environment=KEY=VALUE` settings of the worker's systemd unit (one per line, optionally in
 * double quotes): the bench starts its workers with them, as a deployment does, so that what the
 * unit sets for the worker's memory (glibc, V8) is what the bench measures.
 */
export function unitEnvironment(unitText: string = readFileSync(WORKER_UNIT, 'utf8')): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of unitText.split('\n')) {
    if (!line.startsWith('Environment=')) continue;
    const value = line.slice('Environment='.length).trim();
    const m = /^"([A-Za-z_][A-Za-z0-9_]*)=([^"]*)"$/.exec(value) ?? /^([A-Za-z_][A-Za-z0-9_]*)=(\S*)$/.exec(value);
    if (!m) throw new Error(`${WORKER_UNIT}: cannot read "${line}" (one KEY=VALUE per Environment= line, quoted if it holds spaces)`);
    env[m[1]!] = m[2]!;
  }
  return env;
}

export async function startWorker(label: string, env: NodeJS.ProcessEnv, configPath: string): Promise<BenchWorker> {
  let run: CliRun | undefined;
  const started = startCliWorker({ ...unitEnvironment(), ...env }, [], { config: configPath });
  try {
    run = await started;
  } catch (err) {
    throw new Error(`the odoo-dr worker "${label}" did not start: ${(err as Error).message.slice(0, 4000)}`);
  }
  const child = run.child;
  children.add(child);
  const exited = run.result.then((r) => {
    children.delete(child);
    return r.code;
  });
  let stopped = false;
  return {
    label,
    pid: child.pid!,
    env,
    startRss: peakRss(child.pid!),
    exited,
    tail: (lines = 25) => tail(run.out(), lines),
    async stop(graceMs = 120_000) {
      if (stopped) return undefined;
      stopped = true;
      const rss = peakRss(child.pid!);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      return rss;
    },
  };
}

/** A failed odoo-dr command; `workflowId` is the workflow it started, if it got that far. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly workflowId: string | undefined,
  ) {
    super(message);
  }
}

function duration(ms: number): string {
  return ms < 120_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`;
}

export interface CliOutcome {
  ms: number;
  /** Parsed `--json` output (stdout). */
  json: Record<string, unknown>;
  /** Workflow ID the command printed on stderr. */
  workflowId: string | undefined;
}

/**
 * `odoo-dr --config <config> --json …args` against `worker`, timed from the start of the process
 * to its exit, as an operator's shell would. Fails on a non-zero exit code, a timeout, or the
 * worker exiting meanwhile, with the last lines of both.
 */
export async function odooDr(args: string[], worker: BenchWorker, configPath: string, timeoutMs: number): Promise<CliOutcome> {
  const t0 = performance.now();
  const run = runCli(['--json', ...args], worker.env, { config: configPath });
  children.add(run.child);
  let why: string | undefined;
  const timer = setTimeout(() => {
    why = `did not finish within ${duration(timeoutMs)}`;
    run.child.kill('SIGTERM');
  }, timeoutMs);
  void worker.exited.then((code) => {
    if (run.child.exitCode !== null) return;
    why = `its worker "${worker.label}" exited (code ${code}) meanwhile:\n${worker.tail()}`;
    run.child.kill('SIGTERM');
  });
  const r = await run.result.finally(() => {
    clearTimeout(timer);
    children.delete(run.child);
  });
  const ms = performance.now() - t0;
  const workflowId = /\(workflow ([^)\s,]+)/.exec(r.stderr)?.[1];
  const what = `odoo-dr ${args.join(' ')}`;
  const wf = workflowId ? ` (workflow ${workflowId})` : '';
  if (why) throw new CliError(`${what}${wf}: ${why}`, workflowId);
  if (r.code !== 0) throw new CliError(`${what}${wf} exited ${r.code ?? r.signal}:\n${tail(r.stderr, 15)}\n${tail(r.stdout, 15)}`, workflowId);
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    /* a command without JSON output */
  }
  return { ms, json, workflowId };
}

export interface ActivityIssues {
  workflows: number;
  activities: number;
  /** Activities that timed out at least once (heartbeat, start-to-close, schedule-to-*), retried or not. */
  timedOut: number;
  /** Attempts beyond the first, over every activity (whatever failed before each). */
  retries: number;
  examples: string[];
}

/**
 * Reads the histories of `workflowIds` and of every child they started. A history keeps one
 * started event per activity (its last attempt, with the failure of the attempt before) and a
 * timed-out event if it ended so: an activity counts as timed out when either says timeout.
 */
export async function activityIssues(client: Client, workflowIds: readonly string[]): Promise<ActivityIssues> {
  const out: ActivityIssues = { workflows: 0, activities: 0, timedOut: 0, retries: 0, examples: [] };
  const queue = [...workflowIds];
  const seen = new Set<string>();
  while (queue.length) {
    const id = queue.shift()!;
    if (seen.has(id)) continue;
    seen.add(id);
    const history = await client.workflow.getHandle(id).fetchHistory();
    out.workflows++;
    const activities = new Map<string, { type: string; attempts: number; timeout?: string; lastFailure?: string }>();
    for (const e of history.events ?? []) {
      const scheduled = e.activityTaskScheduledEventAttributes;
      if (scheduled) activities.set(String(e.eventId), { type: scheduled.activityType?.name ?? '?', attempts: 1 });
      const started = e.activityTaskStartedEventAttributes;
      const a = started ? activities.get(String(started.scheduledEventId)) : undefined;
      if (started && a) {
        a.attempts = started.attempt ?? 1;
        if (started.lastFailure?.timeoutFailureInfo) a.timeout = started.lastFailure.message ?? 'timeout';
        else if (started.lastFailure) a.lastFailure = started.lastFailure.message ?? 'failure';
      }
      const timedOut = e.activityTaskTimedOutEventAttributes;
      const b = timedOut ? activities.get(String(timedOut.scheduledEventId)) : undefined;
      if (timedOut && b) b.timeout = timedOut.failure?.message ?? 'timeout';
      const child = e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowId;
      if (child) queue.push(child);
    }
    for (const a of activities.values()) {
      out.activities++;
      out.retries += a.attempts - 1;
      if (a.timeout) out.timedOut++;
      if ((a.timeout || a.attempts > 1) && out.examples.length < 5) {
        out.examples.push(
          `${id}: ${a.type}, ${a.attempts} attempt(s)${a.timeout ? `, timed out (${a.timeout})` : ''}${a.lastFailure ? `, last failure: ${a.lastFailure}` : ''}`,
        );
      }
    }
  }
  return out;
}
