/**
 * Log rotation in DR_LOG_DIR. The audit log is appended to by every workflow (O_APPEND, one write a
 * line): it is rotated by renaming `audit.jsonl` to `audit-<YYYYMMDD>.jsonl` (the UTC day of the
 * rotation) once its first line is from an earlier day. A writer that opened it before the rename
 * finishes its line in the rotated file; the next append creates a new `audit.jsonl`. Rotated
 * files, drill reports and other files older than DR_LOG_RETENTION_DAYS are deleted; the current
 * audit log and the status report (`dr-status.json`) never are.
 */
import { open, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';

export interface LogRotation {
  /** `audit.jsonl` renamed to this name (file name only), when it was rotated. */
  auditRotatedTo?: string;
  /** File names deleted. */
  deleted: string[];
  bytesFreed: number;
}

const NEVER = new Set(['audit.jsonl', 'dr-status.json']);

async function firstLine(file: string): Promise<string | undefined> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const buf = Buffer.alloc(4096);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const text = buf.subarray(0, bytesRead).toString('utf8');
    const end = text.indexOf('\n');
    return end < 0 ? undefined : text.slice(0, end);
  } finally {
    await fh.close();
  }
}

export async function rotateLogs(logDir: string, opts: { keepDays: number; now: Date; dryRun: boolean }): Promise<LogRotation> {
  const out: LogRotation = { deleted: [], bytesFreed: 0 };
  const today = opts.now.toISOString().slice(0, 10);
  const audit = path.join(logDir, 'audit.jsonl');
  const first = await firstLine(audit);
  let startedOn: string | undefined;
  try {
    const at = (JSON.parse(first ?? '') as { at?: unknown }).at;
    if (typeof at === 'string') startedOn = at.slice(0, 10);
  } catch {
    startedOn = undefined; // a damaged first line: the file's own date decides below
  }
  startedOn ??= first === undefined ? undefined : (await stat(audit)).birthtime.toISOString().slice(0, 10);
  if (startedOn !== undefined && startedOn < today) {
    const name = `audit-${today.replace(/-/g, '')}.jsonl`;
    // Never over an earlier rotation of the same day (a clock set back): a suffix then.
    let target = name;
    for (
      let i = 1;
      await stat(path.join(logDir, target)).then(
        () => true,
        () => false,
      );
      i++
    )
      target = name.replace('.jsonl', `-${i}.jsonl`);
    if (!opts.dryRun) await rename(audit, path.join(logDir, target));
    out.auditRotatedTo = target;
  }
  const cutoff = opts.now.getTime() - opts.keepDays * 86_400_000;
  for (const name of (await readdir(logDir).catch(() => [] as string[])).sort()) {
    if (NEVER.has(name) || name === out.auditRotatedTo) continue;
    const file = path.join(logDir, name);
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile() || st.mtimeMs >= cutoff) continue;
    if (!opts.dryRun) await rm(file, { force: true });
    out.deleted.push(name);
    out.bytesFreed += st.size;
  }
  return out;
}
