/**
 * One tenant's filestore, content-addressed. Odoo names each file by the SHA-1 of its content
 * (`<aa>/<sha1>`), so a file is encrypted and stored once under `blobs/<aa>/<sha1>.age` and every
 * session that contains it only lists it. A second backup of an unchanged filestore reads no file
 * content and stores (or uploads) nothing.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, type Dirent } from 'node:fs';
import { link, mkdir, open, opendir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { DrConfig } from '../config';
import { encryptFile, plausibleAgeSize } from '../crypto/age';
import { DiskFullError } from '../errors';
import { hashFile } from '../pipeline';
import { cloudKey, headObject, uploadFile, type CloudSettings } from '../storage/s3';
import { localPath, rel } from './layout';
import type { Artifact } from './manifest';

/** `<aa>/<sha1>` as Odoo writes it. */
const ODOO_FILE = /^([0-9a-f]{2})\/([0-9a-f]{40})$/;

export interface FilestoreEntry {
  path: string;
  sha1: string;
  size: number;
}

export interface FilestoreProgress {
  files: number;
  bytes: number;
}

export interface FilestoreRequest {
  config: DrConfig;
  session: string;
  tenant: string;
  recipients: string[];
  /** Upload new blobs to the bucket too. */
  cloud: boolean;
  signal?: AbortSignal;
  onProgress?: (p: FilestoreProgress) => void;
  concurrency?: number;
}

export interface FilestoreResult {
  index: Artifact;
  files: number;
  bytes: number;
  blobsStored: number;
  blobsReused: number;
  blobsUploaded: number;
  /** Stored blobs found damaged (wrong size, here or in the bucket) and written again. */
  blobsRepaired: number;
  /** Files whose content does not match their SHA-1 name (recorded under their real SHA-1). */
  mismatched: string[];
  /** The tenant has no filestore folder (Odoo creates it with the first attachment). */
  missing: boolean;
}

/** Walks a filestore in a stable order, skipping Odoo's GC `checklist/` markers; bounded memory. */
export async function* walkFilestore(root: string, sub = ''): AsyncGenerator<string> {
  let dir;
  try {
    dir = await opendir(path.join(root, sub));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && sub === '') return;
    throw err;
  }
  const entries: Dirent[] = [];
  for await (const entry of dir) entries.push(entry);
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const relative = sub ? `${sub}/${entry.name}` : entry.name;
    if (sub === '' && entry.name === 'checklist') continue;
    if (entry.isDirectory()) yield* walkFilestore(root, relative);
    else if (entry.isFile()) yield relative;
  }
}

/** Runs `worker` over `items` with at most `limit` at once, in order of arrival. */
async function forEachLimited<T>(items: AsyncIterable<T>, limit: number, worker: (item: T) => Promise<void>): Promise<void> {
  const running = new Set<Promise<void>>();
  let failure: Error | undefined;
  for await (const item of items) {
    if (failure) break;
    const p = worker(item).catch((err: unknown) => {
      failure ??= err instanceof Error ? err : new Error(String(err));
    });
    const tracked = p.finally(() => running.delete(tracked));
    running.add(tracked);
    if (running.size >= limit) await Promise.race(running);
  }
  await Promise.all(running);
  if (failure) throw failure;
}

function wrapDiskError(err: unknown, where: string): Error {
  if ((err as NodeJS.ErrnoException).code === 'ENOSPC') return new DiskFullError(`no space left on the backup disk writing ${where}`);
  return err instanceof Error ? err : new Error(String(err));
}

export async function backupFilestore(req: FilestoreRequest): Promise<FilestoreResult> {
  const { config, session, tenant, recipients } = req;
  const source = path.join(config.odoo.filestoreRoot, tenant);
  const missing = !(await stat(source).then((s) => s.isDirectory(), () => false));
  const cloud: CloudSettings | undefined = req.cloud ? config.cloud : undefined;
  const blobTmp = path.join(config.backupDir, 'blobs', '.tmp');
  await mkdir(blobTmp, { recursive: true });

  const indexRel = rel.filestoreIndex(session, tenant);
  const indexPath = localPath(config.backupDir, indexRel);
  await mkdir(path.dirname(indexPath), { recursive: true });
  const indexPartial = `${indexPath}.partial`;
  const index = createWriteStream(indexPartial, { mode: 0o640 });
  const indexHash = createHash('sha256');
  let indexBytes = 0;
  const writeLine = (entry: FilestoreEntry) =>
    new Promise<void>((resolve, reject) => {
      const line = `${JSON.stringify(entry)}\n`;
      indexHash.update(line);
      indexBytes += Buffer.byteLength(line);
      index.write(line, (err) => (err ? reject(wrapDiskError(err, indexPartial)) : resolve()));
    });

  const result = { files: 0, bytes: 0, blobsStored: 0, blobsReused: 0, blobsUploaded: 0, blobsRepaired: 0, mismatched: [] as string[] };
  // Entries are collected per file and written in walk order for a stable index.
  const pending = new Map<number, FilestoreEntry | null>();
  let nextToWrite = 0;
  let seq = 0;
  const flush = async () => {
    while (pending.has(nextToWrite)) {
      const entry = pending.get(nextToWrite)!;
      pending.delete(nextToWrite);
      nextToWrite++;
      if (entry) await writeLine(entry);
    }
  };

  const storeOne = async (relative: string, order: number): Promise<void> => {
    req.signal?.throwIfAborted();
    const file = path.join(source, ...relative.split('/'));
    const named = ODOO_FILE.exec(relative);
    let size: number;
    try {
      size = (await stat(file)).size;
    } catch (err) {
      // Odoo's GC may remove an unreferenced file while we walk: it was garbage, skip it.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        pending.set(order, null);
        return flush();
      }
      throw err;
    }
    const nameSha1 = named?.[2];
    let sha1: string;
    // A stored blob is reused only if its size fits the file's: a truncated or emptied blob is
    // written again, never listed in a session as if it were sound.
    if (nameSha1 !== undefined && (await blobSound(localPath(config.backupDir, rel.blob(nameSha1)), size)) === 'sound') {
      sha1 = nameSha1;
      result.blobsReused++;
    } else {
      const tmp = path.join(blobTmp, `${randomBytes(8).toString('hex')}.age`);
      let encrypted;
      try {
        encrypted = await encryptFile(recipients, file, tmp, { signal: req.signal });
      } catch (err) {
        await rm(tmp, { force: true });
        // Deleted by Odoo between the walk and the read: not part of this backup.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          pending.set(order, null);
          return flush();
        }
        throw wrapDiskError(err, tmp);
      }
      if (nameSha1 !== undefined && encrypted.plainSha1 !== nameSha1) result.mismatched.push(relative);
      sha1 = encrypted.plainSha1;
      size = encrypted.plainBytes;
      const blob = localPath(config.backupDir, rel.blob(sha1));
      await mkdir(path.dirname(blob), { recursive: true });
      // link, not rename: a blob another backup stored (and may be uploading) is never replaced,
      // whatever ciphertext it holds — content addressing makes equal plaintexts interchangeable.
      const stored = await link(tmp, blob).then(
        () => true,
        (err: NodeJS.ErrnoException) => {
          if (err.code === 'EEXIST') return false;
          throw wrapDiskError(err, blob);
        },
      );
      if (stored) result.blobsStored++;
      else if ((await blobSound(blob, size)) === 'sound') result.blobsReused++;
      else {
        // Damaged: replaced at once by a sound copy (rename is atomic; readers see one or the other).
        await rename(tmp, blob).catch((err: unknown) => {
          throw wrapDiskError(err, blob);
        });
        result.blobsRepaired++;
      }
      await rm(tmp, { force: true });
    }
    if (cloud) {
      const key = cloudKey(cloud, rel.blob(sha1));
      const there = await headObject(cloud, key);
      if (!there || !plausibleAgeSize(there.bytes, size)) {
        const blob = localPath(config.backupDir, rel.blob(sha1));
        const { bytes, sha256 } = await hashFile(blob);
        await uploadFile({ cloud, key, file: blob, expectedBytes: bytes, expectedSha256: sha256, signal: req.signal });
        result.blobsUploaded++;
        if (there) result.blobsRepaired++;
      }
    }
    result.files++;
    result.bytes += size;
    req.onProgress?.({ files: result.files, bytes: result.bytes });
    pending.set(order, { path: relative, sha1, size });
    await flush();
  };

  try {
    if (!missing) {
      await forEachLimited(walkFilestore(source), req.concurrency ?? 4, (relative) => storeOne(relative, seq++));
    }
    await flush();
    await new Promise<void>((resolve, reject) => index.end((err?: Error | null) => (err ? reject(wrapDiskError(err, indexPartial)) : resolve())));
    const handle = await open(indexPartial, 'r');
    await handle.sync().finally(() => handle.close());
    await rename(indexPartial, indexPath);
  } catch (err) {
    index.destroy();
    await rm(indexPartial, { force: true });
    throw err;
  }
  return {
    index: { path: indexRel, bytes: indexBytes, sha256: indexHash.digest('hex') },
    ...result,
    missing,
  };
}

/** Whether the stored blob at `file` has the size of an age file of `plainBytes` (see plausibleAgeSize). */
export async function blobSound(file: string, plainBytes: number): Promise<'sound' | 'absent' | 'damaged'> {
  const st = await stat(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!st) return 'absent';
  return st.isFile() && plausibleAgeSize(st.size, plainBytes) ? 'sound' : 'damaged';
}

/** Reads a filestore index back (streaming), e.g. to validate or restore. */
export async function* readFilestoreIndex(file: string): AsyncGenerator<FilestoreEntry> {
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim()) yield JSON.parse(line) as FilestoreEntry;
  }
}
