/**
 * `npm run bench`'s command line: the scenarios, their sizes (full or --quick), the aims the figures
 * are judged against, and the parsing of the options into Params.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { LOCAL_CONFIG_PATH, REPO_ROOT } from '../../test/helpers/config';
import { MiB } from '../harness';

export const SCENARIOS = ['db', 'fs', 's3', 'fleet', 'big'] as const;
export type Scenario = (typeof SCENARIOS)[number];

const FULL = { files: 20_000, 'file-size': 8192, 'big-files': 100_000, 'db-mb': 256, fleet: 30, runs: 3 };
const QUICK = { files: 400, 'file-size': 8192, 'big-files': 2000, 'db-mb': 24, fleet: 4, runs: 1 };
/** The aims (issue "npm run bench"); RSS and the README's earlier restore aims included. */
export const AIMS = {
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
/** Share of the files added before the incremental backup (Odoo adds files; it never changes one). */
export const INCREMENT = 0.01;

export class UsageError extends Error {}

export interface Params {
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

export const HELP = `npm run bench -- [options]   (or: node dist/bench/run.js [options], after npm run build)

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

/** The options, or undefined for --help (UsageError when they are wrong). */
export function parseParams(argv: string[]): Params | undefined {
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
    const names = raw
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
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
