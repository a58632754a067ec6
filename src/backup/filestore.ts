/**
 * One tenant's filestore, content-addressed. Odoo names each file by the SHA-1 of its content
 * (`<aa>/<sha1>`); files are packed a few MiB at a time into encrypted packs (src/backup/packs.ts)
 * and the session's `filestore.jsonl` lists each file with the pack holding it. The next backup
 * reuses the packs of the tenant's previous session: an unchanged file is neither read nor uploaded.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, createWriteStream, fstatSync, openSync, readFileSync, statSync, type Stats } from 'node:fs';
import { mkdir, open, rename, rm, stat, utimes, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { DrConfig } from '../config';
import { DiskFullError } from '../errors';
import { cloudKey, headObject, uploadFile, type CloudSettings } from '../storage/s3';
import { syncFileSystem } from '../pipeline';
import { localPath, rel } from './layout';
import type { Artifact } from './artifact';
import { loadReusable } from './filestore-index';
import { forEachLimited, walkFilestore, yieldingEvery } from './filestore-walk';
import { PackFeed } from './filestore-feed';
import { PACK_TARGET_BYTES, SMALL_FILE_BYTES, tarEntryBytes, writePack, type FileEntry, type PackMember, type PackRecord, type WrittenPack } from './packs';

export { blobSound, readFilestoreIndex, readIndexLines } from './filestore-index';

/** `<aa>/<sha1>` as Odoo writes it. */
const ODOO_FILE = /^([0-9a-f]{2})\/([0-9a-f]{40})$/;

export type FilestoreEntry = FileEntry;

export interface FilestoreProgress {
  files: number;
  bytes: number;
}

export interface FilestoreRequest {
  config: DrConfig;
  session: string;
  tenant: string;
  recipients: string[];
  /** Upload new packs to the bucket too. */
  cloud: boolean;
  /**
   * Indexes (local files, already verified by the caller) whose packs this backup may reuse: the
   * tenant's previous session, the partial index of an interrupted attempt. A file listed there
   * with its size, in a pack still sound here (and in the bucket with `cloud`), is neither read nor
   * uploaded again.
   */
  reuseFrom?: string[];
  /** Distinguishes this attempt's partial index from any other attempt's (default: random). */
  attempt?: string;
  /** Checked before the finished index is renamed into place; throws when this attempt was superseded. */
  fence?: () => Promise<void>;
  signal?: AbortSignal;
  onProgress?: (p: FilestoreProgress) => void;
  /** The partial index now holds every file done so far (each in a pack stored, and uploaded with `cloud`). */
  onCheckpoint?: (partialIndex: string) => void;
  /** Files read at once (default 8). */
  concurrency?: number;
  /** Test hook: called before a stored pack is checked for reuse (once per pack). */
  beforeReuse?: (pack: string) => Promise<void>;
}

export interface FilestoreResult {
  index: Artifact;
  files: number;
  bytes: number;
  /** Files read and packed by this backup. */
  blobsStored: number;
  /** Files found in packs already stored (not read, not uploaded). */
  blobsReused: number;
  /** Files whose content this backup sent to the bucket (in new packs). */
  blobsUploaded: number;
  /** Stored packs found damaged or missing (here or in the bucket) and replaced. */
  blobsRepaired: number;
  /** Packs written by this backup. */
  packsStored: number;
  /** Packs this backup uploaded (its new ones, and stored ones the bucket lacked). */
  packsUploaded: number;
  /** Files whose content does not match their SHA-1 name (recorded under their real SHA-1). */
  mismatched: string[];
  /** The tenant has no filestore folder (Odoo creates it with the first attachment). */
  missing: boolean;
}

function wrapDiskError(err: unknown, where: string): Error {
  if ((err as NodeJS.ErrnoException).code === 'ENOSPC') return new DiskFullError(`no space left on the backup disk writing ${where}`);
  return err instanceof Error ? err : new Error(String(err));
}

const isGone = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT';

interface Batch {
  /** The pack's tar, fed as files are read; its pack is written meanwhile (started at its first file). */
  feed: PackFeed;
  /** The pack, once its first file is added. */
  written?: Promise<WrittenPack>;
  /** SHA-1 of each file in the pack. */
  blobs: string[];
  /** Handles of files streamed into the pack, closed once it is written. */
  handles: FileHandle[];
  /** Files to list once the pack is stored (several paths may share one blob). */
  entries: FilestoreEntry[];
  /** Tar bytes so far. */
  bytes: number;
}

export async function backupFilestore(req: FilestoreRequest): Promise<FilestoreResult> {
  const { config, session, tenant, recipients } = req;
  const source = path.join(config.odoo.filestoreRoot, tenant);
  const missing = !(await stat(source).then(
    (s) => s.isDirectory(),
    () => false,
  ));
  const cloud: CloudSettings | undefined = req.cloud ? config.cloud : undefined;
  const reusable = await loadReusable(req.reuseFrom ?? []);

  const indexRel = rel.filestoreIndex(session, tenant);
  const indexPath = localPath(config.backupDir, indexRel);
  await mkdir(path.dirname(indexPath), { recursive: true });
  // This attempt's own partial index: an attempt that timed out but still runs writes its own.
  const indexPartial = `${indexPath}.${req.attempt ?? randomBytes(6).toString('hex')}.partial`;
  const index = createWriteStream(indexPartial, { mode: 0o640 });
  const indexHash = createHash('sha256');
  let indexBytes = 0;
  const writeLines = (lines: object[]) =>
    new Promise<void>((resolve, reject) => {
      if (lines.length === 0) return resolve();
      const text = lines.map((l) => `${JSON.stringify(l)}\n`).join('');
      indexHash.update(text);
      indexBytes += Buffer.byteLength(text);
      index.write(text, (err) => (err ? reject(wrapDiskError(err, indexPartial)) : resolve()));
    });
  /** Packs this index already names (each gets one {pack, bytes} line before its first file). */
  const listed = new Set<string>();
  const packLines = (pack: string, bytes: number): object[] => {
    if (listed.has(pack)) return [];
    listed.add(pack);
    return [{ pack, bytes } satisfies PackRecord];
  };

  const result = {
    files: 0,
    bytes: 0,
    blobsStored: 0,
    blobsReused: 0,
    blobsUploaded: 0,
    blobsRepaired: 0,
    packsStored: 0,
    packsUploaded: 0,
    mismatched: [] as string[],
  };
  const progress = () => req.onProgress?.({ files: result.files, bytes: result.bytes });

  const uploadPack = async (id: string, bytes: number) => {
    const file = localPath(config.backupDir, rel.pack(id));
    await uploadFile({
      cloud: cloud!,
      key: cloudKey(cloud!, rel.pack(id)),
      file,
      expectedBytes: bytes,
      expectedSha256: id,
      partSize: PACK_PART_SIZE,
      ...(req.signal ? { signal: req.signal } : {}),
    });
    result.packsUploaded++;
  };

  /**
   * Whether a stored pack can be listed again: here with its recorded size, and in the bucket with
   * it (uploaded from here when the bucket lacks it or holds a damaged copy). Checked once per pack.
   */
  const usable = new Map<string, Promise<boolean>>();
  const packUsable = (id: string): Promise<boolean> => {
    let known = usable.get(id);
    if (!known) {
      known = (async () => {
        const bytes = reusable.packs.get(id);
        if (bytes === undefined) return false;
        await req.beforeReuse?.(id);
        const packFile = localPath(config.backupDir, rel.pack(id));
        // Touched first, then looked at: a collection that is moving it away sees the touch and puts it
        // back; one that moved it before finds us finding it missing (src/retention/collect.ts).
        const now = new Date();
        await utimes(packFile, now, now).catch(() => undefined);
        const here = await stat(packFile).catch(() => undefined);
        if (here?.size !== bytes) {
          if (here) result.blobsRepaired++; // damaged here: its files are packed again
          return false;
        }
        if (cloud) {
          const there = await headObject(cloud, cloudKey(cloud, rel.pack(id)));
          if (there?.bytes !== bytes) {
            // The local copy's size is right; its bytes are checked against the id on the way up.
            await uploadPack(id, bytes);
            if (there) result.blobsRepaired++;
          }
        }
        return true;
      })();
      usable.set(id, known);
    }
    return known;
  };

  /** Packs written by this backup (made durable before the index names them). */
  const storedPacks: string[] = [];
  // Files packed by this backup: SHA-1 → pack id, or the batch it waits in.
  const packedHere = new Map<string, string | Batch>();
  const newBatch = (): Batch => ({ feed: new PackFeed(), blobs: [], handles: [], entries: [], bytes: 0 });
  let current = newBatch();
  let storing: Promise<void> = Promise.resolve();
  let packFailure: Error | undefined;
  const failed = (err: unknown) => {
    packFailure ??= err instanceof Error ? err : new Error(String(err));
    current.feed.fail(packFailure);
  };

  /** The batch's pack, started (tar → zstd → age) at its first file. */
  const started = (batch: Batch): Promise<WrittenPack> => {
    if (!batch.written) {
      batch.written = writePack({
        root: config.backupDir,
        members: batch.feed,
        recipients,
        compressionLevel: config.encryption.compressionLevel,
        ...(req.signal ? { signal: req.signal } : {}),
      });
      // A pack that fails (or is aborted) stops the backup: readers waiting for room in its tar,
      // which nothing reads any more, go on and see the failure.
      batch.written.catch((err: unknown) => {
        failed(err);
        batch.feed.fail(packFailure!);
      });
    }
    return batch.written;
  };

  /** Once its pack is written: uploaded with `cloud`, its files listed (after the packs before it). */
  const storeBatch = async (batch: Batch): Promise<void> => {
    const written = await batch.written!;
    result.packsStored++;
    storedPacks.push(written.id);
    if (cloud) await uploadPack(written.id, written.bytes);
    for (const sha1 of batch.blobs) packedHere.set(sha1, written.id);
    const lines: object[] = packLines(written.id, written.bytes);
    for (const e of batch.entries) lines.push({ ...e, pack: written.id });
    await writeLines(lines);
    result.files += batch.entries.length;
    for (const e of batch.entries) result.bytes += e.size;
    result.blobsStored += batch.blobs.length;
    if (cloud) result.blobsUploaded += batch.blobs.length;
    progress();
    req.onCheckpoint?.(indexPartial);
  };

  /** Completion of each sealed batch not yet stored, oldest first (two at most: see roomForAFile). */
  const unstored: Array<Promise<void>> = [];

  /** Ends the batch being filled (its pack's tar) and queues it to be stored after the one before it. */
  const seal = (): void => {
    const batch = current;
    current = newBatch();
    if (packFailure) current.feed.fail(packFailure);
    batch.feed.end();
    if (!batch.written) return;
    const closeHandles = async () => {
      for (const h of batch.handles) await h.close().catch(() => undefined);
    };
    // Its pack is being written already: waited for even after a failure (no child left running).
    const written = batch.written.finally(closeHandles);
    written.catch(failed);
    const done = storing
      .then(async () => {
        if (packFailure) await written.catch(() => undefined);
        else await storeBatch(batch);
      })
      .catch(failed);
    storing = done;
    unstored.push(done);
    void done.then(() => unstored.shift());
  };

  /**
   * Before a file is read: the pack being filled has room (its tar is written as it fills, a few MiB
   * queued at most), and two sealed packs at most are still being finished and stored (uploaded
   * with `cloud`, one after the other) meanwhile. Every reader waits here (not only the one that
   * filled a batch, or the other concurrent readers went on filling batch after batch while one was
   * stored). Between this and `place` nothing may wait.
   */
  const roomForAFile = async (): Promise<void> => {
    for (;;) {
      if (packFailure) throw packFailure;
      if (unstored.length >= 2) await unstored[0];
      else if (!current.feed.hasRoom) await current.feed.room();
      else return;
    }
  };

  /** Lists a file added to the current batch's tar; seals the batch once it is full. */
  const place = (sha1: string, entry: FilestoreEntry, tarBytes: number): void => {
    void started(current);
    current.blobs.push(sha1);
    current.entries.push(entry);
    current.bytes += tarBytes;
    packedHere.set(sha1, current);
    if (current.bytes >= PACK_TARGET_BYTES || current.blobs.length >= 16_384) seal();
  };

  const addMember = async (member: PackMember, entry: FilestoreEntry): Promise<void> => {
    await roomForAFile();
    if (member.data) current.feed.add(member.data, member.sha1, member.mtime);
    else {
      current.handles.push(member.handle!);
      current.feed.stream(member);
    }
    place(member.sha1, entry, tarEntryBytes(member.size));
  };

  /** The content is already packed here (another path, same content): list it with that pack. */
  const sameContent = async (entry: FilestoreEntry): Promise<boolean> => {
    const there = packedHere.get(entry.sha1);
    if (there === undefined) {
      const known = reusable.files.get(entry.sha1);
      if (known?.size === entry.size && (await packUsable(known.pack))) {
        await writeLines([...packLines(known.pack, reusable.packs.get(known.pack)!), { ...entry, pack: known.pack }]);
        result.files++;
        result.bytes += entry.size;
        result.blobsReused++;
        progress();
        return true;
      }
      return false;
    }
    if (typeof there === 'string') {
      // Packed by this backup: its record line is already written.
      await writeLines([{ ...entry, pack: there }]);
      result.files++;
      result.bytes += entry.size;
      progress();
    } else there.entries.push(entry);
    return true;
  };

  /**
   * Reads a small file straight into the current pack's tar (src/backup/filestore-feed.ts) and adds
   * it there when its content matches its name. Synchronous from open to place (no other reader
   * adds to the tar meanwhile): open, fstat, read, close, where the promise API cost tens of
   * microseconds per 8 KiB file. Returns the file's stat when it is no small file, a copy of its
   * content when it is not what its name says (or grew meanwhile), undefined when it was added (or
   * is gone).
   */
  const readIntoPack = (
    file: string,
    relative: string,
    named: string | undefined,
  ): { large: Stats } | { copied: { data: Buffer; mtime: Date } } | undefined => {
    let fd;
    try {
      fd = openSync(file, 'r');
    } catch (err) {
      // Odoo's GC may remove an unreferenced file while we walk: it was garbage, skip it.
      if (isGone(err)) return undefined;
      throw err;
    }
    try {
      const st = fstatSync(fd);
      if (st.size > SMALL_FILE_BYTES) return { large: st };
      const data = current.feed.read(fd, st.size);
      if (data.length > st.size) return { copied: { data: readFileSync(fd), mtime: st.mtime } };
      const sha1 = createHash('sha1').update(data).digest('hex');
      // Not the content its name says: checked against what is already packed first.
      if (sha1 !== named) return { copied: { data: Buffer.from(data), mtime: st.mtime } };
      current.feed.commit(sha1, data.length, st.mtime);
      place(sha1, { path: relative, sha1, size: data.length }, tarEntryBytes(data.length));
      return undefined;
    } finally {
      closeSync(fd);
    }
  };

  const storeOne = async (relative: string): Promise<void> => {
    req.signal?.throwIfAborted();
    const file = path.join(source, ...relative.split('/'));
    const named = ODOO_FILE.exec(relative)?.[2];
    // Small files are read with synchronous calls: a few microseconds each against tens for the
    // promise API, which dominated for 8 KiB files; the caller yields to the event loop every few
    // dozen files, so heartbeats and uploads keep flowing.
    if (named && (packedHere.has(named) || reusable.files.has(named))) {
      // Unchanged since a stored pack took it: looked at, not read, not uploaded.
      let st;
      try {
        st = statSync(file);
      } catch (err) {
        if (isGone(err)) return;
        throw err;
      }
      if (await sameContent({ path: relative, sha1: named, size: st.size })) return;
    }
    await roomForAFile();
    const small = readIntoPack(file, relative, named);
    if (!small) return;
    let member: PackMember;
    if ('copied' in small) {
      const { data, mtime } = small.copied;
      const sha1 = createHash('sha1').update(data).digest('hex');
      if (named && sha1 !== named) result.mismatched.push(relative);
      const entry = { path: relative, sha1, size: data.length };
      if (await sameContent(entry)) return;
      member = { sha1, size: data.length, mtime, data, source: file };
      return addMember(member, entry);
    }
    const st = small.large;
    // A large file: hashed first (a tar entry is named before its content), streamed into the pack
    // from the same open handle (a file Odoo deletes meanwhile stays readable), hashed again there.
    let handle;
    try {
      handle = await open(file, 'r');
    } catch (err) {
      if (isGone(err)) return;
      throw err;
    }
    try {
      const hash = createHash('sha1');
      let size = 0;
      for await (const chunk of handle.createReadStream({ start: 0, autoClose: false })) {
        hash.update(chunk as Buffer);
        size += (chunk as Buffer).length;
        req.signal?.throwIfAborted();
      }
      const sha1 = hash.digest('hex');
      if (named && sha1 !== named) result.mismatched.push(relative);
      const entry = { path: relative, sha1, size };
      if (await sameContent(entry)) {
        await handle.close();
        return;
      }
      member = { sha1, size, mtime: st.mtime, handle, source: file };
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
    return addMember(member, { path: relative, sha1: member.sha1, size: member.size });
  };

  try {
    if (!missing) await forEachLimited(yieldingEvery(64, walkFilestore(source)), req.concurrency ?? 8, storeOne);
    seal();
    await storing;
    if (packFailure) throw packFailure;
    // The packs were written without fsync (see writePack): durable before the index names them.
    await makePacksDurable(config.backupDir, storedPacks);
    await new Promise<void>((resolve, reject) => index.end((err?: Error | null) => (err ? reject(wrapDiskError(err, indexPartial)) : resolve())));
    const handle = await open(indexPartial, 'r');
    await handle.sync().finally(() => handle.close());
    req.signal?.throwIfAborted();
    await req.fence?.();
    await rename(indexPartial, indexPath);
  } catch (err) {
    index.destroy();
    // The pack being filled is stopped (its children killed, its temporary file removed).
    failed(err);
    seal();
    await storing;
    // Kept for a retry on this host to resume from (its packs are stored); removed by the next attempt.
    if (!req.onCheckpoint) await rm(indexPartial, { force: true });
    throw err;
  }
  return {
    index: { path: indexRel, bytes: indexBytes, sha256: indexHash.digest('hex') },
    ...result,
    missing,
  };
}

/**
 * Makes the packs just written durable. A few (a small tenant's filestore): each file and its
 * folders fsync'd here, milliseconds; syncfs(2) of a shared disk also writes back every other
 * process's dirty pages, up to hundreds of milliseconds per tenant. Many: one syncfs for all.
 */
async function makePacksDurable(root: string, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  if (ids.length > FSYNC_PACKS_AT_MOST) return syncFileSystem(root);
  const syncPath = async (p: string) => {
    const handle = await open(p, 'r');
    await handle.sync().finally(() => handle.close());
  };
  const files = ids.map((id) => localPath(root, rel.pack(id)));
  // The links (and the entries of new `packs/xx` and `packs` folders) are durable once their folders
  // are. All at once: nothing names the packs until every sync has returned, and concurrent fsyncs
  // share the file system's journal commits (one after the other, each waited for its own).
  const folders = new Set(files.map((file) => path.dirname(file)));
  await Promise.all([...files, ...folders, path.join(root, 'packs'), root].map(syncPath));
}

/** Above this many packs, one syncfs costs less than an fsync per pack. */
const FSYNC_PACKS_AT_MOST = 4;

/**
 * Part size for pack uploads: a pack of small files (at most the target and one file, a little more
 * once encrypted) goes up in one PUT.
 */
const PACK_PART_SIZE = PACK_TARGET_BYTES + 2 * 1024 * 1024;
