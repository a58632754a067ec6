/**
 * The fault table: every fault case records one row (what was injected, what happened, what data
 * was lost, what was left behind). `npm run test:faults` prints it at the end and writes it to
 * dist/fault-table.md; the README shows a copy. A row is recorded only after the case's
 * assertions on data passed, so a failing case shows as a failed test, never as a good row.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';

export interface FaultRow {
  /** What was injected, e.g. "worker SIGKILL during the dump upload". */
  fault: string;
  /** What odoo-dr did, in a few words, e.g. "next worker resumed the upload; session complete". */
  outcome: string;
  /** Data lost, as measured by the case (row checksums, file hashes, bucket contents): must be 0. */
  dataLost: number;
  /** What was left behind after the case (leftover files, databases, roles, uploads): must be empty. */
  leftovers: string[];
}

const rows: FaultRow[] = [];

export function recordFault(row: FaultRow): void {
  rows.push(row);
}

export function faultTableMarkdown(): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const lines = ['| fault | outcome | data lost | leftovers |', '|---|---|---|---|'];
  for (const r of rows) lines.push(`| ${cell(r.fault)} | ${cell(r.outcome)} | ${r.dataLost} | ${r.leftovers.length ? cell(r.leftovers.join(', ')) : 'none'} |`);
  return lines.join('\n');
}

export function writeFaultTable(repoRoot: string): string {
  const md = faultTableMarkdown();
  writeFileSync(path.join(repoRoot, 'dist', 'fault-table.md'), `${md}\n`);
  return md;
}
