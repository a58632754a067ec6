/**
 * End to end, as an operator runs it: `odoo-dr backup --no-cloud --wait` (the real CLI process, a real
 * `odoo-dr worker` process, the local dev server) against the bare `pg_dump -Fc -Z0` of the same
 * databases, measured in the same run, interleaved, median of `--runs`:
 *
 * - a fleet of tiny generated tenants (`--tenants`, default 30) against `xargs -P<P> pg_dump`
 *   (P = DR_MAX_PARALLEL_BACKUPS, the same parallelism);
 * - one large tenant (`--move-lines`, default 1,000,000 ≈ 250 MiB) against one `pg_dump`, its
 *   filestore blobs already stored (a warm-up backup runs first).
 *
 *   npm run build && node dist/bench/cli.js [--tenants 30] [--move-lines 1000000] [--runs 5] [--dir /var/tmp/x] [--keep]
 *       [--compare /other/checkout/bin/odoo-dr]
 *
 * With `--compare`, another build of odoo-dr (e.g. the previous version's checkout) runs too, with its
 * own worker on its own task queue, interleaved in the same rounds: before and after, same load.
 *
 * Each odoo-dr run is broken down from its workflow history: CLI start-up (process start → workflow
 * started), the workflow (started → closed) split into the tenants' activities, the session steps and
 * what is left (orchestration), and the CLI's exit (workflow closed → process gone).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { loadConfig } from '../src/config';
import { findClientTools } from '../src/pgtools';
import { serverVersion } from '../src/postgres';
import { temporalSettings } from '../temporal/connection';
import { createTenant, dropTenant, type PgAdminConnection } from '../test/fixtures/odoo-tenants';
import { BIN } from '../test/helpers/cli';
import { LOCAL_CONFIG_PATH, REPO_ROOT } from '../test/helpers/config';

const { values: args } = parseArgs({
  options: {
    tenants: { type: 'string', default: '30' },
    'move-lines': { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '5' },
    dir: { type: 'string' },
    keep: { type: 'boolean', default: false },
    'skip-fleet': { type: 'boolean', default: false },
    'skip-large': { type: 'boolean', default: false },
    compare: { type: 'string' },
  },
});

type History = Awaited<ReturnType<ReturnType<Client['workflow']['getHandle']>['fetchHistory']>>;
type HistoryEvent = NonNullable<History['events']>[number];

const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) => Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const sec = (x: number) => `${(x / 1000).toFixed(2)} s`;

const TENANT_ACTIVITIES = new Set(['backupTenant', 'backupTenants']);

/** Σ (completed − started) of activities, by kind: a tenant's work, or a session step. */
function activityTimes(history: History): { tenants: number; session: number; sessionSteps: Record<string, number> } {
  const scheduled = new Map<string, string>();
  const started = new Map<string, number>();
  const out = { tenants: 0, session: 0, sessionSteps: {} as Record<string, number> };
  for (const e of history.events ?? []) {
    const s = e.activityTaskScheduledEventAttributes;
    if (s) scheduled.set(String(e.eventId), s.activityType?.name ?? '?');
    if (e.activityTaskStartedEventAttributes) started.set(String(e.activityTaskStartedEventAttributes.scheduledEventId), ms(e.eventTime));
    const done = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes;
    if (done) {
      const id = String(done.scheduledEventId);
      const d = ms(e.eventTime) - (started.get(id) ?? ms(e.eventTime));
      const name = scheduled.get(id) ?? '?';
      if (TENANT_ACTIVITIES.has(name)) out.tenants += d;
      else {
        out.session += d;
        out.sessionSteps[name] = (out.sessionSteps[name] ?? 0) + d;
      }
    }
  }
  return out;
}

const firstTime = (h: History, pick: (e: HistoryEvent) => unknown) => ms((h.events ?? []).find((e) => pick(e))?.eventTime);

interface OdooDrRun {
  wall: number;
  cliStart: number;
  workflow: number;
  cliExit: number;
  tenantActivities: number;
  sessionActivities: number;
  steps: Record<string, number>;
  events: number;
}

/** `odoo-dr --config <local stack> …args` of the build at `bin`, the environment overriding the file. */
function odooDrProcess(
  bin: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): { child: ChildProcess; result: Promise<{ code: number | null; stdout: string; out: string }> } {
  const child = spawn(process.execPath, [bin, '--config', LOCAL_CONFIG_PATH, ...args], { cwd: REPO_ROOT, env: { ...process.env, DR_CONFIG: '', ...env } });
  let stdout = '';
  let out = '';
  child.stdout.on('data', (d: Buffer) => ((stdout += d.toString()), (out += d.toString())));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return { child, result: new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, out }))) };
}

/** Starts `odoo-dr worker` of the build at `bin`; resolves once it polls. */
async function startWorker(bin: string, env: NodeJS.ProcessEnv): Promise<ReturnType<typeof odooDrProcess>> {
  const worker = odooDrProcess(bin, ['worker'], env);
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const check = (d: Buffer) => {
      out += d.toString();
      if (out.includes("state: 'RUNNING'")) resolve();
    };
    worker.child.stdout!.on('data', check);
    worker.child.stderr!.on('data', check);
    worker.child.on('close', (code) => reject(new Error(`worker ${bin} exited early (${code}): ${out}`)));
  });
  return worker;
}

async function main(): Promise<void> {
  const dir = args.dir ?? mkdtempSync('/var/tmp/odoo-dr-bench-cli-');
  const data = path.join(dir, 'data');
  const raw = path.join(dir, 'raw');
  for (const d of [data, raw]) mkdirSync(d, { recursive: true });
  const suffix = Math.random().toString(36).slice(2, 7);
  const envFor = (label: string) => ({
    DR_TASK_QUEUE: `bench-cli-${suffix}-${label}`,
    DR_BACKUP_DIR: path.join(dir, `backups-${label}`),
    DR_LOG_DIR: path.join(dir, `logs-${label}`),
    ODOO_DATA_DIR: data,
  });
  const builds = [{ label: 'this', bin: BIN }, ...(args.compare ? [{ label: 'compared', bin: path.resolve(args.compare) }] : [])].map((b) => ({
    ...b,
    env: envFor(b.label),
  }));
  const config = loadConfig({ path: LOCAL_CONFIG_PATH, env: builds[0]!.env });
  const { host, port, user, password } = config.postgres;
  const admin: PgAdminConnection = { host, port, user, ...(password ? { password } : {}) };
  const pgEnv = { ...process.env, PGHOST: host, PGPORT: String(port), PGUSER: user, PGPASSWORD: password ?? '' };
  const tools = await findClientTools((await serverVersion(config.postgres)).major);
  const P = config.performance.maxParallelBackups;
  const runs = Number(args.runs);
  const tiny = Array.from({ length: Number(args.tenants) }, (_, i) => `benchcli-${suffix}-${String(i).padStart(3, '0')}`);
  const large = `benchcli-${suffix}-large`;
  const fleet = !args['skip-fleet'] && tiny.length > 0;
  const single = !args['skip-large'];

  console.log(`odoo-dr CLI end-to-end benchmark, ${new Date().toISOString()}, ${runs} runs (median), P=${P}, ${dir}`);
  for (const b of builds) console.log(`  ${b.label}: ${b.bin}`);
  const t0 = performance.now();
  if (fleet) for (const name of tiny) await createTenant(admin, data, { name, moveLines: 20, files: 2, fileSize: 512, partners: 4 });
  if (single) await createTenant(admin, data, { name: large, moveLines: Number(args['move-lines']) });
  console.log(`(tenants created in ${sec(performance.now() - t0)})`);

  const { connectionOptions, namespace } = temporalSettings(config, {});
  const connection = await Connection.connect(connectionOptions);
  const client = new Client({ connection, namespace });
  const workers = [];
  for (const b of builds) workers.push(await startWorker(b.bin, b.env));

  const timeShell = (cmd: string, argv: string[]) => {
    const t = performance.now();
    execFileSync(cmd, argv, { env: pgEnv, stdio: ['ignore', 'ignore', 'inherit'] });
    return performance.now() - t;
  };
  const bare = {
    fleet: () =>
      timeShell('bash', ['-c', `printf '%s\\n' "\${@:3}" | xargs -P"$1" -I{} "$2" -Fc -Z0 -f "${raw}/{}.dump" {}`, 'x', String(P), tools.pgDump, ...tiny]),
    large: () => timeShell(tools.pgDump, ['-Fc', '-Z0', '-f', path.join(raw, 'large.dump'), large]),
  };
  const odooDr = async (build: (typeof builds)[number], tenants: string[]): Promise<OdooDrRun> => {
    const startedAt = Date.now();
    const t = performance.now();
    const run = await odooDrProcess(build.bin, ['--json', 'backup', '--no-cloud', '--wait', '--tenant', ...tenants], build.env).result;
    const wall = performance.now() - t;
    const exitedAt = startedAt + wall;
    if (run.code !== 0) throw new Error(`odoo-dr backup (${build.label}) exited ${run.code}: ${run.out}`);
    const result = JSON.parse(run.stdout.slice(run.stdout.indexOf('{'))) as { workflowId: string; session: string; status: string };
    const history = await client.workflow.getHandle(result.workflowId).fetchHistory();
    const times = activityTimes(history);
    // The tenants' activities run in children too: batches now, one child per tenant before.
    for (const e of history.events ?? []) {
      const c = e.childWorkflowExecutionStartedEventAttributes;
      if (!c?.workflowExecution?.workflowId || c.workflowType?.name === 'tenantLockWorkflow') continue;
      times.tenants += activityTimes(
        await client.workflow.getHandle(c.workflowExecution.workflowId, c.workflowExecution.runId ?? undefined).fetchHistory(),
      ).tenants;
    }
    const wfStart = firstTime(history, (e) => e.workflowExecutionStartedEventAttributes);
    const wfEnd = firstTime(history, (e) => e.workflowExecutionCompletedEventAttributes ?? e.workflowExecutionFailedEventAttributes);
    return {
      wall,
      cliStart: wfStart - startedAt,
      workflow: wfEnd - wfStart,
      cliExit: exitedAt - wfEnd,
      tenantActivities: times.tenants,
      sessionActivities: times.session,
      steps: times.sessionSteps,
      events: history.events?.length ?? 0,
    };
  };

  // Warm-up: blobs stored, caches filled, workers warm.
  for (const b of builds) {
    if (fleet) await odooDr(b, tiny);
    if (single) await odooDr(b, [large]);
  }
  if (fleet) bare.fleet();
  if (single) bare.large();

  type Series = { bare: number[]; odoo: Record<string, OdooDrRun[]> };
  const series = (): Series => ({ bare: [], odoo: Object.fromEntries(builds.map((b) => [b.label, [] as OdooDrRun[]])) });
  const results = { fleet: series(), large: series() };
  for (let i = 0; i < runs; i++) {
    // Rotate who goes first: the same share of each moment's load for everyone.
    const order = [...builds.slice(i % builds.length), ...builds.slice(0, i % builds.length)];
    if (fleet) {
      results.fleet.bare.push(bare.fleet());
      for (const b of order) results.fleet.odoo[b.label]!.push(await odooDr(b, tiny));
    }
    if (single) {
      results.large.bare.push(bare.large());
      for (const b of order) results.large.odoo[b.label]!.push(await odooDr(b, [large]));
    }
  }

  const report = (label: string, baseline: string, r: Series, n: number, parallel: number) => {
    const bareMs = median(r.bare);
    console.log(`\n== ${label}`);
    console.log(`${baseline.padEnd(44)} ${sec(bareMs)}   (runs: ${r.bare.map(sec).join(', ')})`);
    for (const b of builds) {
      const o = r.odoo[b.label]!;
      const m = (f: (x: OdooDrRun) => number) => median(o.map(f));
      // Each run against the bare run of its own round (same moment, same load).
      const ratios = o.map((x, i) => x.wall / r.bare[i]!);
      console.log(`-- odoo-dr backup --no-cloud --wait [${b.label}]`);
      console.log(`  wall                                       ${sec(m((x) => x.wall))}   (runs: ${o.map((x) => sec(x.wall)).join(', ')})`);
      console.log(`  ratio to the bare run of the same round     ${median(ratios).toFixed(2)} median   (runs: ${ratios.map((x) => x.toFixed(2)).join(', ')})`);
      console.log(`  CLI start-up (process → workflow started)   ${sec(m((x) => x.cliStart))}`);
      console.log(`  workflow (started → closed)                 ${sec(m((x) => x.workflow))}, ${m((x) => x.events)} events in the session's history`);
      console.log(`    Σ tenant activity time / ${parallel}               ${sec(m((x) => x.tenantActivities) / parallel)}`);
      console.log(
        `    Σ session-step activity time              ${sec(m((x) => x.sessionActivities))}  (run 1: ${Object.entries(o[0]!.steps)
          .map(([k, v]) => `${k} ${v.toFixed(0)}`)
          .join(', ')} ms)`,
      );
      const overhead = m((x) => x.workflow - x.tenantActivities / parallel - x.sessionActivities);
      console.log(
        `    the rest (orchestration; understated when session steps overlap the tenants) ${sec(overhead)}, ${((overhead * parallel) / n).toFixed(0)} ms × P / N per tenant`,
      );
      console.log(`  CLI exit (workflow closed → process gone)   ${sec(m((x) => x.cliExit))}`);
    }
  };
  if (fleet) report(`fleet of ${tiny.length} tiny tenants, ${P} at a time`, `xargs -P${P} pg_dump -Fc -Z0 -f FILE`, results.fleet, tiny.length, P);
  if (single) report(`one tenant of ${args['move-lines']} move lines, its blobs already stored`, 'pg_dump -Fc -Z0 -f FILE', results.large, 1, 1);

  for (const w of workers) {
    w.child.kill('SIGTERM');
    await w.result;
  }
  await connection.close();
  if (!args.keep) {
    for (const name of [...(fleet ? tiny : []), ...(single ? [large] : [])]) await dropTenant(admin, data, name);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
