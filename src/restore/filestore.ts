/**
 * Restores one tenant's filestore from a session's `filestore.jsonl` and the packs it names
 * (`<root>/packs/<aa>/<sha256>.tar.zst.age`, see src/backup/packs.ts), or, for sessions made before
 * packs, one blob per file (`<root>/blobs/<aa>/<sha1>.age`).
 *
 * Each pack is read once, start to end (two at a time); each file it holds that the index wants is
 * checked against the index (SHA-1 and size) before it is written: a small file whole from memory,
 * straight to its name, a larger one streamed to a temporary name and renamed once checked. The
 * folder is the caller's own (a partial or scratch folder, renamed into place or dropped whole) and
 * is made durable by one sync of its file system at the end (unless the caller drops it anyway). Files of sessions made before packs
 * (one blob each) are decrypted to a temporary name, checked, fsync'd and renamed. A bad pack or
 * blob (missing, undecryptable, wrong content or size) or an unsafe path in the index is recorded
 * as a problem naming the file and its pack or blob; systemic failures (index missing or
 * unreadable, disk full, destination not writable, abort) throw. Memory stays bounded.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, fchownSync, openSync, writeSync } from 'node:fs';
import { chmod, copyFile, lchown, mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { DrConfig } from '../config';
import { ageDecrypter, decryptStream } from '../crypto/age';
import { ArtifactCorruptedError, DiskFullError, DrError, EncryptionKeyError, InvalidInputError } from '../errors';
import { localPath, rel } from '../backup/layout';
import { syncFileSystem } from '../pipeline';
import { readIndexLines, type FilestoreEntry } from '../backup/filestore';
import { SMALL_FILE_BYTES, type IndexLine } from '../backup/packs';
import { PackPlan, visitPackedFiles } from '../backup/pack-reader';
import type { Ownership } from './ownership';

export interface RestoreFilestoreOptions {
  /** DR_BACKUP_DIR holds the blobs unless `blobRoot` says where. */
  config?: Pick<DrConfig, 'backupDir'>;
  /** The session's `filestore.jsonl`. */
  indexFile: string;
  /** age private key text. */
  identity: string;
  /** Filestore folder to fill (created if needed), e.g. `<data_dir>/filestore/<db>` or a scratch folder. */
  destDir: string;
  signal?: AbortSignal;
  /** Files decrypted at once (default 4). */
  concurrency?: number;
  /** Files restored so far (every few dozen files, and at the end). */
  onProgress?: (files: number) => void;
  /**
   * Owner and modes for everything restored (applyOwnership's rules: folders `dirMode`, files without
   * its execute bits), set as each file is written instead of by a second walk of the folder.
   */
  owner?: Ownership;
  /** Called for each file once it is restored and verified against the index (path, SHA-1, size). */
  onRestored?: (path: string, sha1: string, size: number) => void;
  /** Folder in the session layout holding the blobs (default DR_BACKUP_DIR: `config`; a mirror of the bucket). */
  blobRoot?: string;
  /**
   * Whether the files must be on disk when this returns (default true: one sync of the file system
   * for packed files, an fsync each for older blobs). A scratch copy that is dropped once checked
   * (the restore test) does not need it, and flushing 150 MiB costs seconds.
   */
  durable?: boolean;
}

export interface RestoreFilestoreResult {
  /** Files restored and verified. */
  files: number;
  bytes: number;
  /** One line per bad file, naming it and its blob (at most MAX_PROBLEMS lines, then a summary line). */
  problems: string[];
  /** Total number of bad files (problems may be capped). */
  problemCount: number;
}

const SHA1 = /^[0-9a-f]{40}$/;
const MAX_PROBLEMS = 1_000;
/** Mode of restored files when no ownership is given. */
const FILE_MODE = 0o640;
const asRoot = process.getuid?.() === 0;

/** Gives an open restored file the owner and mode of `owner` (chown only as root, as applyOwnership). */
async function ownFile(fh: FileHandle, owner: Ownership): Promise<void> {
  await fh.chmod(owner.dirMode & 0o666);
  if (asRoot) await fh.chown(owner.uid, owner.gid);
}

async function ownPath(p: string, owner: Ownership, mode = owner.dirMode & 0o666): Promise<void> {
  await chmod(p, mode);
  if (asRoot) await lchown(p, owner.uid, owner.gid);
}

/** A small verified file written whole with synchronous calls (a few microseconds each against tens for the promise API). */
function writeSmallFile(target: string, data: Buffer, owner: Ownership | undefined): void {
  const fd = openSync(target, 'w', FILE_MODE);
  try {
    for (let off = 0; off < data.length;) off += writeSync(fd, data, off, data.length - off);
    if (owner) {
      fchmodSync(fd, owner.dirMode & 0o666);
      if (asRoot) fchownSync(fd, owner.uid, owner.gid);
    }
  } finally {
    closeSync(fd);
  }
}

/** A relative path that stays inside the folder: no absolute path, no `..`, no empty or odd segment. */
function isSafeRelative(p: string): boolean {
  if (p === '' || p.includes('\0') || p.includes('\\') || p.startsWith('/')) return false;
  const parts = p.split('/');
  return parts.every((s) => s !== '' && s !== '.' && s !== '..') && parts[0] !== 'checklist';
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null ? (err as NodeJS.ErrnoException).code : undefined;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Reads the index line by line; a damaged line is a systemic error (the index is the artifact). */
async function* readIndex(file: string): AsyncGenerator<IndexLine> {
  try {
    yield* readIndexLines(file);
  } catch (err) {
    if (err instanceof DrError) throw err;
    const code = errnoCode(err);
    throw new ArtifactCorruptedError(`cannot read filestore index ${file} (${code === 'ENOENT' ? 'it does not exist' : (code ?? messageOf(err))})`, {
      cause: err,
    });
  }
}

class BadBlob extends Error {}

const ODOO_NAME = /^[0-9a-f]{2}\/([0-9a-f]{40})$/;

/**
 * The files a restore wrote and verified (pass `record` as `onRestored`), kept small: a file named
 * `<aa>/<sha1>` by its own content (nearly all of a filestore) costs its path and size only.
 */
export class VerifiedFiles {
  private readonly named = new Map<string, number>();
  private readonly others = new Map<string, { sha1: string; size: number }>();

  readonly record = (relativePath: string, sha1: string, size: number): void => {
    if (ODOO_NAME.exec(relativePath)?.[1] === sha1) this.named.set(relativePath, size);
    else this.others.set(relativePath, { sha1, size });
  };

  lookup(relativePath: string): { sha1: string; size: number } | undefined {
    const size = this.named.get(relativePath);
    if (size !== undefined) return { sha1: relativePath.slice(3), size };
    return this.others.get(relativePath);
  }
}

/** Restores the files listed in `indexFile` into `destDir` (see the module comment). */
export async function restoreFilestore(opts: RestoreFilestoreOptions): Promise<RestoreFilestoreResult> {
  const { indexFile, identity, destDir, signal } = opts;
  const blobRoot = opts.blobRoot ?? opts.config?.backupDir;
  if (blobRoot === undefined) throw new InvalidInputError('restoreFilestore needs the folder holding the blobs (blobRoot or DR_BACKUP_DIR)');
  const concurrency = opts.concurrency ?? 4;
  const durable = opts.durable ?? true;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
    throw new InvalidInputError(`filestore restore concurrency must be 1 to 64, got ${concurrency}`);
  }
  signal?.throwIfAborted();
  await mkdir(destDir, { recursive: true, mode: 0o750 }).catch((err: unknown) => {
    throw errnoCode(err) === 'ENOSPC' ? new DiskFullError(`no space left on device creating ${destDir}`) : err;
  });
  if (opts.owner) await ownPath(destDir, opts.owner, opts.owner.dirMode);
  const result: RestoreFilestoreResult = { files: 0, bytes: 0, problems: [], problemCount: 0 };
  let reported = 0;
  /** Counts a restored, verified content at `paths`; progress every few dozen files (each report is a heartbeat). */
  const restored = (paths: string[], sha1: string, size: number) => {
    result.files += paths.length;
    result.bytes += size * paths.length;
    for (const p of paths) opts.onRestored?.(p, sha1, size);
    if (result.files - reported >= 64) {
      reported = result.files;
      opts.onProgress?.(result.files);
    }
  };
  const diskFull = (err: unknown, file: string) =>
    errnoCode(err) === 'ENOSPC' || errnoCode(err) === 'EDQUOT'
      ? new DiskFullError(`no space left on device restoring ${file} into ${destDir}`, { cause: err })
      : err;
  const problem = (text: string) => {
    result.problemCount++;
    if (result.problems.length < MAX_PROBLEMS) result.problems.push(text);
  };
  const madeDirs = new Set<string>();
  const ensureDir = async (dir: string) => {
    if (madeDirs.has(dir)) return;
    try {
      const made = await mkdir(dir, { recursive: true, mode: 0o750 });
      // The folders mkdir made (the first and those below it), given the owner's mode and owner.
      if (made !== undefined && opts.owner) {
        for (let d = dir; d.length >= made.length && d !== destDir; d = path.dirname(d)) await ownPath(d, opts.owner, opts.owner.dirMode);
      }
    } catch (err) {
      if (errnoCode(err) === 'ENOSPC') throw new DiskFullError(`no space left on device creating ${dir}`);
      throw err;
    }
    madeDirs.add(dir);
  };

  const restoreOne = async (entry: FilestoreEntry): Promise<void> => {
    signal?.throwIfAborted();
    if (!isSafeRelative(entry.path)) {
      problem(`${JSON.stringify(entry.path)}: unsafe path in the index, not restored`);
      return;
    }
    if (!SHA1.test(entry.sha1)) {
      problem(`${entry.path}: the index gives an invalid SHA-1 ${JSON.stringify(entry.sha1)}, not restored`);
      return;
    }
    const blobRel = rel.blob(entry.sha1);
    const blob = localPath(blobRoot, blobRel);
    const dest = path.join(destDir, ...entry.path.split('/'));
    await ensureDir(path.dirname(dest));
    const tmp = `${dest}.${randomBytes(6).toString('hex')}.tmp`;
    let fh: FileHandle | undefined;
    try {
      try {
        await stat(blob);
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') throw new BadBlob(`${entry.path}: blob ${blobRel} is missing`);
        throw err;
      }
      fh = await open(tmp, 'wx', FILE_MODE);
      const sha1 = createHash('sha1');
      let size = 0;
      try {
        for await (const chunk of decryptStream(identity, blob)) {
          const buf = chunk as Buffer;
          sha1.update(buf);
          size += buf.length;
          if (size > entry.size) break; // larger than recorded: wrong, whatever follows
          let off = 0;
          while (off < buf.length) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
          if (signal?.aborted) signal.throwIfAborted();
        }
      } catch (err) {
        if (err instanceof ArtifactCorruptedError || err instanceof EncryptionKeyError) {
          throw new BadBlob(`${entry.path}: blob ${blobRel} cannot be decrypted (${err.message})`);
        }
        throw err;
      }
      if (size !== entry.size) {
        throw new BadBlob(`${entry.path}: blob ${blobRel} has the wrong size (${size > entry.size ? 'more than' : size} bytes, expected ${entry.size})`);
      }
      const actual = sha1.digest('hex');
      if (actual !== entry.sha1) {
        throw new BadBlob(`${entry.path}: blob ${blobRel} has the wrong content (SHA-1 ${actual}, expected ${entry.sha1})`);
      }
      if (opts.owner) await ownFile(fh, opts.owner);
      if (durable) await fh.sync();
      await fh.close();
      fh = undefined;
      await rename(tmp, dest);
      restored([entry.path], entry.sha1, size);
    } catch (err) {
      await fh?.close().catch(() => undefined);
      await rm(tmp, { force: true }).catch(() => undefined);
      if (err instanceof BadBlob) {
        problem(err.message);
        return;
      }
      if (errnoCode(err) === 'ENOSPC' || errnoCode(err) === 'EDQUOT') {
        throw new DiskFullError(`no space left on device restoring ${entry.path} into ${destDir}`, { cause: err });
      }
      throw err;
    }
  };

  // Pass 1, over the index: files of older sessions (one blob each) are restored at once, at most
  // `concurrency` in flight; files in packs are grouped by pack.
  const plan = new PackPlan();
  const running = new Set<Promise<void>>();
  let failure: Error | undefined;
  for await (const line of readIndex(indexFile)) {
    if (failure !== undefined) break;
    if (line.kind === 'pack') {
      plan.record(line.record);
      continue;
    }
    const entry = line.entry;
    if (entry.pack !== undefined) {
      if (!isSafeRelative(entry.path)) problem(`${JSON.stringify(entry.path)}: unsafe path in the index, not restored`);
      else if (!SHA1.test(entry.sha1)) problem(`${entry.path}: the index gives an invalid SHA-1 ${JSON.stringify(entry.sha1)}, not restored`);
      else {
        const contradiction = plan.add({ ...entry, pack: entry.pack });
        if (contradiction) problem(contradiction);
      }
      continue;
    }
    const p = restoreOne(entry).catch((err: unknown) => {
      failure ??= err instanceof Error ? err : new Error(String(err));
    });
    const tracked: Promise<void> = p.finally(() => running.delete(tracked));
    running.add(tracked);
    if (running.size >= concurrency) await Promise.race(running);
  }
  await Promise.all(running);
  if (failure !== undefined) throw failure;

  // Pass 2: each pack read once, start to end, two at a time.
  if (plan.files > 0) {
    await visitPackedFiles({
      plan,
      open: (id) => Promise.resolve({ file: localPath(blobRoot, rel.pack(id)) }),
      decrypter: await ageDecrypter(identity),
      problem,
      ...(signal ? { signal } : {}),
      onFile: async (want, member, packRel) => {
        const [first, ...others] = want.paths;
        const dest = path.join(destDir, ...first!.split('/'));
        await ensureDir(path.dirname(dest));
        const wrongContent = (actual: string) => {
          for (const p of want.paths) problem(`${p}: pack ${packRel} holds content with SHA-1 ${actual} under ${want.sha1}`);
        };
        if (want.size <= SMALL_FILE_BYTES) {
          // Small files (most of a filestore): whole in memory, written with synchronous calls (a
          // few microseconds each against tens for the promise API); a turn of the event loop every
          // few dozen files. Durability comes from one sync of the file system at the end.
          const data = await member.whole();
          const actual = createHash('sha1').update(data).digest('hex');
          if (actual !== want.sha1) return wrongContent(actual);
          // Verified before it is written: written straight to its name (the folder is the caller's
          // partial or scratch folder, renamed into place or dropped as a whole).
          try {
            for (const p of want.paths) {
              const target = path.join(destDir, ...p.split('/'));
              if (p !== first) await ensureDir(path.dirname(target));
              writeSmallFile(target, data, opts.owner);
            }
          } catch (err) {
            throw diskFull(err, first!);
          }
        } else {
          const tmp = `${dest}.${randomBytes(6).toString('hex')}.tmp`;
          let fh: FileHandle | undefined;
          try {
            fh = await open(tmp, 'wx', FILE_MODE);
            const sha1 = createHash('sha1');
            for await (const buf of member.content()) {
              sha1.update(buf);
              let off = 0;
              while (off < buf.length) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
            }
            if (opts.owner) await ownFile(fh, opts.owner);
            await fh.close();
            fh = undefined;
            const actual = sha1.digest('hex');
            if (actual !== want.sha1) {
              await rm(tmp, { force: true });
              return wrongContent(actual);
            }
            // Same content at other paths (rare): copies, each renamed into place.
            for (const other of others) {
              const otherDest = path.join(destDir, ...other.split('/'));
              await ensureDir(path.dirname(otherDest));
              const otherTmp = `${otherDest}.${randomBytes(6).toString('hex')}.tmp`;
              await copyFile(tmp, otherTmp);
              if (opts.owner) await ownPath(otherTmp, opts.owner);
              await rename(otherTmp, otherDest);
            }
            await rename(tmp, dest);
          } catch (err) {
            await fh?.close().catch(() => undefined);
            await rm(tmp, { force: true }).catch(() => undefined);
            throw diskFull(err, first!);
          }
        }
        restored(want.paths, want.sha1, want.size);
        if (result.files % 64 === 0) await new Promise((resolve) => setImmediate(resolve));
      },
    });
  }
  signal?.throwIfAborted();
  // Files from packs were not fsync'd one by one (20,000 fsyncs cost more than the restore): one
  // sync of the file system makes them durable before the caller renames the folder into place.
  if (plan.files > 0 && durable) await syncFileSystem(destDir);
  opts.onProgress?.(result.files);
  if (result.problemCount > result.problems.length) {
    result.problems.push(`… and ${result.problemCount - result.problems.length} more problems`);
  }
  return result;
}
