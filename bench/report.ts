/**
 * The results of `npm run bench` (bench/results.json) and their two renderings: the table printed
 * at the end of a run and the README's performance table (bench/readme.ts).
 */

export type Unit = 'ms' | 'bytes' | 'count';

/** One side of a figure: odoo-dr or the bare tools. */
export interface Side {
  /** What was run, e.g. "`pg_dump -Fc -Z0`". */
  label: string;
  unit: Unit;
  /** Word after a count ("requests", "files"). */
  suffix?: string;
  /** Median of `runs`. */
  median: number;
  runs: number[];
}

export interface Aim {
  /** What the aim applies to: the ratio, or odoo-dr's value itself (e.g. RSS). */
  of: 'ratio' | 'value';
  op: '<=' | '<';
  /** Threshold, in the ratio or in the value's unit (bytes for RSS). */
  value: number;
}

export interface Figure {
  id: string;
  /** Row title, markdown allowed (backticks). */
  name: string;
  /** Which scenario produced it (db, fs, s3, fleet, big, all). */
  scenario: string;
  odooDr?: Side;
  bare?: Side;
  /** Median of the per-run ratios odoo-dr / bare (each run's pair measured back to back). */
  ratio?: number;
  ratios?: number[];
  aim?: Aim;
  /** true / false against the aim; null when there is no aim or the figure failed. */
  pass: boolean | null;
  /** Set when the scenario failed: the figure has no value. */
  error?: string;
  note?: string;
}

export interface Results {
  version: 1;
  /** ISO date of the run's start. */
  date: string;
  durationMs: number;
  git: { commit: string; branch: string; dirty: boolean };
  machine: {
    cpus: number;
    cpuModel: string;
    memoryBytes: number;
    os: string;
    node: string;
    /** 1-minute load average at the start and at the end (other work on the machine shows here). */
    loadStart: number;
    loadEnd: number;
    tools: Record<string, string>;
  };
  params: Record<string, number | boolean | string>;
  /** What was generated: tenants, sizes, file counts. */
  scenarios: Record<string, unknown>;
  figures: Figure[];
  errors: string[];
}

const MiB = 1024 * 1024;

export function formatValue(v: number, unit: Unit, suffix?: string): string {
  if (!Number.isFinite(v)) return '—';
  if (unit === 'ms') return `${(v / 1000).toFixed(v < 10_000 ? 2 : 1)} s`;
  if (unit === 'bytes') return `${(v / MiB).toFixed(v < 10 * MiB ? 2 : 1)} MiB`;
  return `${Math.round(v).toLocaleString('en-US')}${suffix ? ` ${suffix}` : ''}`;
}

export function formatAim(f: Figure): string {
  if (!f.aim) return '—';
  const op = f.aim.op === '<=' ? '≤' : '<';
  if (f.aim.of === 'ratio') return `${op} ${f.aim.value}`;
  const unit = f.odooDr?.unit ?? 'count';
  if (unit === 'count' && f.aim.value === 0 && f.aim.op === '<=') return 'none';
  if (unit === 'bytes' && f.aim.value % MiB === 0) return `${op} ${f.aim.value / MiB} MiB`;
  return `${op} ${formatValue(f.aim.value, unit, f.odooDr?.suffix)}`;
}

export function formatRatio(r: number | undefined): string {
  if (r === undefined || !Number.isFinite(r)) return '—';
  return r < 0.1 ? r.toFixed(4) : r.toFixed(2);
}

function resultWord(f: Figure): string {
  if (f.error) return 'ERROR';
  if (f.pass === null) return '—';
  return f.pass ? 'pass' : 'FAIL';
}

/** Whether `f` meets its aim (null: no aim, or no value). */
export function judge(f: Figure): boolean | null {
  if (!f.aim || f.error) return null;
  const x = f.aim.of === 'ratio' ? f.ratio : f.odooDr?.median;
  if (x === undefined || !Number.isFinite(x)) return null;
  return f.aim.op === '<=' ? x <= f.aim.value : x < f.aim.value;
}

interface Row {
  name: string;
  odooDr: string;
  bare: string;
  ratio: string;
  aim: string;
  result: string;
}

function rows(figures: readonly Figure[]): Row[] {
  return figures.map((f) => ({
    name: f.name,
    odooDr: f.error ? 'error' : f.odooDr ? formatValue(f.odooDr.median, f.odooDr.unit, f.odooDr.suffix) : '—',
    bare: f.bare ? formatValue(f.bare.median, f.bare.unit, f.bare.suffix) : '—',
    ratio: formatRatio(f.ratio),
    aim: formatAim(f),
    result: resultWord(f),
  }));
}

/** Fixed-width table for the terminal (markdown backticks dropped). */
export function textTable(figures: readonly Figure[]): string {
  const head: Row = { name: 'figure', odooDr: 'odoo-dr', bare: 'bare tools', ratio: 'ratio', aim: 'aim', result: 'result' };
  const body = rows(figures).map((r) => ({ ...r, name: r.name.replace(/`/g, '') }));
  const all = [head, ...body];
  const keys = Object.keys(head) as (keyof Row)[];
  const width = Object.fromEntries(keys.map((k) => [k, Math.max(...all.map((r) => [...r[k]].length))])) as Record<keyof Row, number>;
  const line = (r: Row) =>
    keys
      .map((k) => (k === 'name' ? r[k].padEnd(width[k]) : r[k].padStart(width[k])))
      .join('  ')
      .trimEnd();
  return [line(head), keys.map((k) => '-'.repeat(width[k])).join('  '), ...body.map(line)].join('\n');
}

export function markdownTable(figures: readonly Figure[]): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  const out = ['| figure | odoo-dr | bare tools | ratio | aim | result |', '|---|---:|---:|---:|---:|---|'];
  for (const r of rows(figures)) {
    const result = r.result === 'pass' ? 'pass' : r.result === '—' ? '—' : `**${r.result}**`;
    out.push(`| ${cell(r.name)} | ${r.odooDr} | ${r.bare} | ${r.ratio} | ${r.aim} | ${result} |`);
  }
  return out.join('\n');
}

/** An error in one line: its first line and, when it has more, its last (the cause, for a failed command). */
export function errorSummary(message: string): string {
  const lines = message
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const first = lines[0] ?? '';
  const last = lines.at(-1) ?? '';
  return lines.length > 1 && last !== first ? `${first.replace(/:$/, '')}: … ${last}` : first;
}

/** Details of each figure: what the bare side ran, per-run values, notes. */
export function figureNotes(figures: readonly Figure[], markdown: boolean): string[] {
  const out: string[] = [];
  for (const f of figures) {
    const name = markdown ? f.name : f.name.replace(/`/g, '');
    if (f.error) {
      out.push(`${name}: error: ${errorSummary(f.error)}`);
      continue;
    }
    const parts: string[] = [];
    if (f.odooDr) parts.push(`odoo-dr: ${f.odooDr.label}`);
    if (f.bare) parts.push(`bare: ${f.bare.label}`);
    if (f.ratios && f.ratios.length > 1) parts.push(`per-run ratios ${f.ratios.map(formatRatio).join(', ')}`);
    if (f.note) parts.push(f.note);
    if (parts.length) out.push(`${name}: ${parts.join('; ')}`);
  }
  return out;
}

/** The machine and parameters line printed above both tables. */
export function runSummary(r: Results): string {
  const p = r.params;
  const runs = Number(p.runs);
  return (
    `${r.date.slice(0, 10)}, commit ${r.git.commit.slice(0, 10)}${r.git.dirty ? ' (uncommitted changes)' : ''}, ` +
    `${r.machine.cpus} CPUs (${r.machine.cpuModel}), ${(r.machine.memoryBytes / 1024 ** 3).toFixed(1)} GiB RAM, ` +
    `load ${r.machine.loadStart.toFixed(2)} at the start and ${r.machine.loadEnd.toFixed(2)} at the end; ` +
    `${runs > 1 ? `medians of ${runs} runs` : 'one run'}${p.quick ? ' (--quick)' : ''}: ` +
    `--files ${p.files} --file-size ${p['file-size']} --big-files ${p['big-files']} --db-mb ${p['db-mb']} --fleet ${p.fleet} --runs ${p.runs}; ` +
    `took ${(r.durationMs / 60_000).toFixed(1)} min`
  );
}
