/**
 * The partial file a pipeline writes to: created private, then either fsync'd and renamed over its
 * destination (with the folder fsync'd, so the rename is durable) or removed. A file at the destination
 * is therefore always complete.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { DiskFullError, PipelineError } from '../errors';
import { isDiskFull, messageOf } from './failures';

export class PartialFile {
  private constructor(
    readonly path: string,
    readonly handle: FileHandle,
  ) {}

  /**
   * Creates `dest.partial`, or with `unique` `dest.<random>.partial`: two writers of one `dest` (an
   * activity attempt that timed out but still runs, and its retry) then never share a partial file.
   */
  static async create(dest: string, unique: boolean | undefined): Promise<PartialFile> {
    const file = unique ? `${dest}.${randomBytes(4).toString('hex')}.partial` : `${dest}.partial`;
    try {
      return new PartialFile(file, await open(file, 'w', 0o600));
    } catch (err) {
      if (isDiskFull(err)) throw new DiskFullError(`no space left on device: cannot create ${file}`, { cause: err });
      throw new PipelineError(`cannot create ${file}: ${messageOf(err)}`, { cause: err });
    }
  }

  /**
   * fsync, close, then `beforeRename` (throwing abandons the file: a fence), rename to `dest`, fsync
   * its folder. Not `durable`: no fsync at all (the caller syncs many files at once).
   */
  async commit(dest: string, beforeRename: (() => Promise<void>) | undefined, durable = true): Promise<void> {
    if (durable) await this.handle.sync();
    await this.handle.close();
    await beforeRename?.();
    await rename(this.path, dest);
    if (durable) await syncDir(path.dirname(dest));
  }

  /** Closes and removes the partial file, ignoring errors (it may already be closed or gone). */
  async discard(): Promise<void> {
    await this.handle.close().catch(() => undefined);
    await rm(this.path, { force: true }).catch(() => undefined);
  }
}

/** fsync a directory so that a rename in it is durable (best effort: not every filesystem allows it). */
async function syncDir(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    /* e.g. EINVAL on some filesystems */
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/** `sync -f DIR`: syncfs(2) of the file system holding DIR (coreutils): one call makes many files durable. */
export async function syncFileSystem(dir: string): Promise<void> {
  await promisify(execFile)('sync', ['-f', dir]);
}
