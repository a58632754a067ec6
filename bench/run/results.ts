/**
 * The end of a `npm run bench` run: bench/results.json (every figure and run, the machine, the
 * tools, the commit), the table printed from it and, with --write-readme, the README's
 * performance table (bench/readme.ts, bench/report.ts).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../../test/helpers/config';
import { writeReadme } from '../readme';
import { figureNotes, runSummary, textTable, type Results } from '../report';
import { versionLine } from './bare';
import type { Bench } from './bench';
import type { Params, Scenario } from './params';

function gitInfo(): Results['git'] {
  const git = (...args: string[]) => execFileSync('git', ['-C', REPO_ROOT, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    return {
      commit: git('rev-parse', 'HEAD'),
      branch: git('rev-parse', '--abbrev-ref', 'HEAD'),
      dirty: git('status', '--porcelain', '--untracked-files=no') !== '',
    };
  } catch {
    return { commit: 'unknown', branch: 'unknown', dirty: false };
  }
}

/** What the run measured, with the machine it ran on (load average at its start and end) and the tools' versions. */
export function benchResults(bench: Bench, run: { started: Date; durationMs: number; loadStart: number; ran: Scenario[] }): Results {
  const p = bench.p;
  return {
    version: 1,
    date: run.started.toISOString(),
    durationMs: run.durationMs,
    git: gitInfo(),
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
      memoryBytes: os.totalmem(),
      os: `${os.type()} ${os.release()}`,
      node: process.version,
      loadStart: run.loadStart,
      loadEnd: os.loadavg()[0]!,
      tools: {
        postgresServer: bench.serverVersion,
        pg_dump: `pg_dump ${bench.tools.version.full} (${bench.tools.pgDump})`,
        tar: versionLine('tar', ['--version']).replace(/^tar \(GNU tar\)/, 'GNU tar'),
        zstd: `zstd ${/v(\d+(?:\.\d+)+)/.exec(versionLine('zstd', ['--version']))?.[1] ?? 'unknown'}`,
        age: `age ${versionLine('age', ['--version']).replace(/^v/, '')}`,
      },
    },
    params: {
      files: p.files,
      'file-size': p.fileSize,
      'big-files': p.bigFiles,
      'db-mb': p.dbMb,
      fleet: p.fleet,
      runs: p.runs,
      quick: p.quick,
      scenarios: run.ran.join(','),
    },
    scenarios: bench.scenarioInfo,
    figures: bench.figures,
    errors: bench.errors,
  };
}

/** Writes the results file (and the README's table with --write-readme) and prints the table. */
export function publishResults(results: Results, p: Params): void {
  mkdirSync(path.dirname(p.out), { recursive: true });
  writeFileSync(p.out, `${JSON.stringify(results, null, 2)}\n`);

  console.log(`\n${runSummary(results)}\n`);
  console.log(textTable(results.figures));
  console.log('');
  for (const line of figureNotes(results.figures, false)) console.log(`  ${line}`);
  console.log(`\nresults: ${path.relative(process.cwd(), p.out) || p.out}`);
  if (p.writeReadme) console.log(`README: ${writeReadme(results)}`);
}
