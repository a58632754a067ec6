/** Hashing files, and remembering the hashes of files this process wrote so that they need not be read again. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';

interface Written {
  bytes: number;
  sha256: string;
  dev: bigint;
  ino: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/** Files this process wrote through runPipeline (`remember`), newest last; bounded. */
const written = new Map<string, Written>();
const WRITTEN_MAX = 10_000;

/** Records `file` (just renamed into place) as written by this process with this size and SHA-256. */
export async function rememberWritten(file: string, bytes: number, sha256: string): Promise<void> {
  const st = await stat(file, { bigint: true });
  const key = path.resolve(file);
  written.delete(key);
  written.set(key, { bytes, sha256, dev: st.dev, ino: st.ino, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs });
  if (written.size > WRITTEN_MAX) written.delete(written.keys().next().value!);
}

/**
 * Whether `file` is still exactly what this process wrote and hashed on the way out (runPipeline with
 * `remember`), with this size and SHA-256: the same file (device and inode) with the size, mtime and
 * ctime it had once fsync'd and renamed, so nothing has written to it, truncated it, replaced it or
 * renamed another file over it since (any of these changes ctime, which user space cannot set back).
 * Re-reading it would compare the same bytes again, from the page cache. False whenever unsure (another
 * process wrote it, this one restarted, the file changed): the caller then reads and hashes it.
 */
export async function unchangedSinceWritten(file: string, expected: { bytes: number; sha256: string }): Promise<boolean> {
  const w = written.get(path.resolve(file));
  if (!w || w.bytes !== expected.bytes || w.sha256 !== expected.sha256) return false;
  const st = await stat(file, { bigint: true }).catch(() => undefined);
  return st !== undefined && st.dev === w.dev && st.ino === w.ino && st.size === BigInt(w.bytes) && st.mtimeNs === w.mtimeNs && st.ctimeNs === w.ctimeNs;
}

/** Size and SHA-256 of a file, streaming. */
export async function hashFile(file: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) {
    const buf = chunk as Buffer;
    hash.update(buf);
    bytes += buf.length;
  }
  return { bytes, sha256: hash.digest('hex') };
}
