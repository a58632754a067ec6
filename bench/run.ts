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
 *
 * This file runs the scenarios in order; the parts are in bench/run/: params.ts (options, aims),
 * bench.ts (what a run owns, set-up and clean-up, workers), tenants.ts, bare.ts (the bare tools),
 * db.ts, files.ts (fs, s3, big), fleet.ts, summaries.ts (worker peak RSS, activity timeouts) and
 * results.ts (bench/results.json, the printed table, the README's).
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { killChildren } from './harness';
import { Bench, StackDownError } from './run/bench';
import { dbScenario } from './run/db';
import { bigScenario, fsScenario, s3Scenario } from './run/files';
import { fleetScenario } from './run/fleet';
import { HELP, parseParams, UsageError, type Params, type Scenario } from './run/params';
import { benchResults, publishResults } from './run/results';
import { summaryFigures } from './run/summaries';

const SCENARIO_RUNS: Record<Scenario, (bench: Bench) => Promise<void>> = {
  db: dbScenario,
  fs: fsScenario,
  s3: s3Scenario,
  fleet: fleetScenario,
  big: bigScenario,
};

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
    console.log(
      `  (databases ${bench.prefix}-*, folders ${bench.root}, bucket prefix s3://${bench.stack.cloud!.bucket}/${bench.bucketPrefix}/, task queues ${bench.prefix}-*)`,
    );
    for (const s of p.scenarios) {
      if (bench.interrupted) break;
      console.log(`\n== ${s}`);
      ran.push(s);
      try {
        await SCENARIO_RUNS[s](bench);
      } catch (err) {
        const msg = (err as Error).message;
        bench.errors.push(`${s}: ${msg}`);
        bench.figures.push({ id: `${s}-error`, name: `${s} scenario`, scenario: s, pass: null, error: msg });
        console.error(`  ${s} failed: ${msg}`);
        await bench.sweep().catch(() => undefined);
      }
    }
    if (!bench.interrupted) await summaryFigures(bench, ran);
  } finally {
    if (ran.length) console.log('\ncleaning up…');
    await bench.cleanUp();
  }
  if (bench.interrupted) return 130;

  const results = benchResults(bench, { started, durationMs: performance.now() - t0, loadStart, ran });
  publishResults(results, p);
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
