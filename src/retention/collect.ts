/**
 * Pack (and legacy blob) collection: mark and sweep, in the local folder and in the bucket.
 *
 * Mark: every pack and blob listed by the filestore index of any session left after retention,
 * whatever its state (complete, partial, failed, still being written — its finished tenants' indexes
 * and, locally, the `.partial` indexes of tenants in progress). An index that cannot be read stops
 * the sweep of that place: not knowing what is referenced never means deleting.
 *
 * Sweep, and why a concurrent backup never finishes `complete` with a collected pack (README
 * "Retention and collection"):
 * - Only objects untouched for the grace period (DR_COLLECT_GRACE_HOURS) are candidates: packs a
 *   running backup wrote but has not listed yet are younger.
 * - Locally, a backup that reuses a pack first sets its mtime to now, then checks that it exists
 *   with its size (src/backup/filestore.ts). The collector moves a candidate to `packs/.trash/` by
 *   rename (atomic), then reads the mtime of the moved file again: a backup that touched it before
 *   the rename shows, and the pack is linked back. A backup that looks after the rename finds it
 *   missing and packs the files again. The backup's finaliser checks every pack it lists, too.
 * - In the bucket (no rename, many hosts): a backup writes a lease object into its session
 *   (`sessions/<s>/leases/<tenant>.json`) before it looks for packs to reuse. The collector first
 *   deletes the expired sessions, then looks for sessions in progress (no manifest, an object
 *   younger than the grace): if there is one, the bucket's sweep is deferred to the next run. A
 *   backup whose lease came later looked for packs after the expired sessions were gone, so it can
 *   only reuse packs of sessions that are marked (or packs younger than the grace).
 */
import { link, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { readIndexLines } from '../backup/filestore';
import { localPath, rel } from '../backup/layout';
import { parseIndexLine } from '../backup/packs';
import { cloudKey, deleteObjects, downloadFile, listObjects, type CloudSettings } from '../storage/s3';
import { createReadStream } from 'node:fs';
import { fileIdentity } from '../sessions/local-store';
import { createInterface } from 'node:readline';

/** What the kept sessions reference. */
export interface References {
  packs: Set<string>;
  blobs: Set<string>;
  indexes: number;
}

export const emptyReferences = (): References => ({ packs: new Set(), blobs: new Set(), indexes: 0 });

export interface SweepResult {
  packsDeleted: number;
  blobsDeleted: number;
  bytesFreed: number;
  /** Unreferenced, but younger than the grace period (kept for now). */
  youngKept: number;
  /** Candidates a backup touched while they were being collected: put back. */
  restored: number;
  /** Why the sweep did not run (nothing deleted), when it did not. */
  deferred?: string;
}

export const emptySweep = (): SweepResult => ({ packsDeleted: 0, blobsDeleted: 0, bytesFreed: 0, youngKept: 0, restored: 0 });

export interface SweepOptions {
  graceMs: number;
  now: Date;
  dryRun: boolean;
  signal?: AbortSignal;
  /** Called every few hundred objects (heartbeats). */
  onProgress?: (what: string) => void;
  /** Test hook: called with a candidate's layout path right before it is moved to the trash. */
  beforeTrash?: (relPath: string) => Promise<void>;
}

const PACK_FILE = /^([0-9a-f]{64})\.tar\.zst\.age$/;
const BLOB_FILE = /^([0-9a-f]{40})\.age$/;
const isGone = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT';

/**
 * Adds what one index lists. `tolerant`: an index still being written (its last line may be cut);
 * returns false when it was gone (renamed into place meanwhile).
 */
export async function addIndexReferences(file: string, refs: References, tolerant = false): Promise<boolean> {
  refs.indexes++;
  if (!tolerant) {
    for await (const line of readIndexLines(file)) {
      if (line.kind === 'pack') refs.packs.add(line.record.pack);
      else if (line.entry.pack) refs.packs.add(line.entry.pack);
      else refs.blobs.add(line.entry.sha1);
    }
    return true;
  }
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  try {
    for await (const text of lines) {
      if (!text.trim()) continue;
      let line;
      try {
        line = parseIndexLine(text, file);
      } catch {
        continue; // the line being written: its pack is younger than the grace period
      }
      if (line.kind === 'pack') refs.packs.add(line.record.pack);
      else if (line.entry.pack) refs.packs.add(line.entry.pack);
      else refs.blobs.add(line.entry.sha1);
    }
  } catch (err) {
    if (!isGone(err)) throw err;
    return false; // renamed into place meanwhile: the caller reads its final name
  } finally {
    lines.close();
  }
  return true;
}

/**
 * What the final (renamed into place, never rewritten) local indexes reference, remembered in this
 * process by the file's identity (see fileIdentity), so that a backup's retention does not parse
 * every kept session's indexes again. Indexes listing more than REMEMBERED_REFERENCES_MAX objects
 * are read each time (memory stays bounded).
 */
const rememberedIndexes = new Map<string, { identity: string; packs: string[]; blobs: string[] }>();
const REMEMBERED_REFERENCES_MAX = 20_000;

async function addFinalIndexReferences(file: string, refs: References): Promise<void> {
  const before = await fileIdentity(file);
  const known = rememberedIndexes.get(file);
  if (before?.settled && known?.identity === before.identity) {
    refs.indexes++;
    for (const p of known.packs) refs.packs.add(p);
    for (const b of known.blobs) refs.blobs.add(b);
    return;
  }
  const own = emptyReferences();
  await addIndexReferences(file, own);
  refs.indexes++;
  for (const p of own.packs) refs.packs.add(p);
  for (const b of own.blobs) refs.blobs.add(b);
  const after = before?.settled ? await fileIdentity(file) : undefined;
  if (before?.settled && after?.identity === before.identity && own.packs.size + own.blobs.size <= REMEMBERED_REFERENCES_MAX) {
    rememberedIndexes.set(file, { identity: before.identity, packs: [...own.packs], blobs: [...own.blobs] });
  } else rememberedIndexes.delete(file);
}

/** Marks from every index of every local session but `skip` (the sessions being deleted). */
export async function markLocal(root: string, skip: Set<string>, refs: References): Promise<void> {
  const seen = new Set<string>();
  const sessions = await readdir(path.join(root, 'sessions')).catch(() => [] as string[]);
  for (const session of sessions.sort()) {
    if (skip.has(session)) continue;
    const tenantsDir = path.join(root, 'sessions', session, 'tenants');
    for (const tenant of await readdir(tenantsDir).catch(() => [] as string[])) {
      const dir = path.join(tenantsDir, tenant);
      const names = (await readdir(dir).catch(() => [] as string[])).sort();
      let final = names.includes('filestore.jsonl');
      for (const name of names) {
        if (!name.startsWith('filestore.jsonl.') || !name.endsWith('.partial')) continue;
        if (!(await addIndexReferences(path.join(dir, name), refs, true))) final = true;
      }
      if (final) {
        const file = path.join(dir, 'filestore.jsonl');
        seen.add(file);
        try {
          await addFinalIndexReferences(file, refs);
        } catch (err) {
          if (!isGone(err)) throw err; // a failed tenant's folder, removed meanwhile
        }
      }
    }
  }
  const under = `${path.join(root, 'sessions')}${path.sep}`;
  for (const file of rememberedIndexes.keys()) if (file.startsWith(under) && !seen.has(file)) rememberedIndexes.delete(file);
}

/** Puts back what a collection that crashed between rename and delete left in a trash folder. */
async function restoreTrash(dir: string, placeOf: (name: string) => string | undefined): Promise<void> {
  const trash = path.join(dir, '.trash');
  for (const name of await readdir(trash).catch(() => [] as string[])) {
    const dest = placeOf(name);
    const from = path.join(trash, name);
    if (dest) {
      await mkdir(path.dirname(dest), { recursive: true });
      await link(from, dest).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
      });
    }
    await rm(from, { force: true });
  }
}

/** Sweeps `packs/` and `blobs/` of the local folder `root`. */
export async function sweepLocal(root: string, refs: References, opts: SweepOptions): Promise<SweepResult> {
  const result = emptySweep();
  const cutoff = opts.now.getTime() - opts.graceMs;
  const kinds = [
    { top: 'packs', pattern: PACK_FILE, marked: refs.packs, relOf: rel.pack, count: () => result.packsDeleted++ },
    { top: 'blobs', pattern: BLOB_FILE, marked: refs.blobs, relOf: rel.blob, count: () => result.blobsDeleted++ },
  ];
  let seen = 0;
  for (const kind of kinds) {
    const dir = path.join(root, kind.top);
    const placeOf = (name: string) => {
      const m = kind.pattern.exec(name);
      return m ? localPath(root, kind.relOf(m[1]!)) : undefined;
    };
    if (!opts.dryRun) await restoreTrash(dir, placeOf);
    const shards = (await readdir(dir).catch(() => [] as string[])).filter((n) => /^[0-9a-f]{2}$/.test(n)).sort();
    for (const shard of shards) {
      for (const name of (await readdir(path.join(dir, shard)).catch(() => [] as string[])).sort()) {
        opts.signal?.throwIfAborted();
        if (++seen % 500 === 0) opts.onProgress?.(`${kind.top}/${shard}`);
        const m = kind.pattern.exec(name);
        if (!m || !name.startsWith(shard) || kind.marked.has(m[1]!)) continue;
        const file = path.join(dir, shard, name);
        const before = await stat(file).catch(() => undefined);
        if (!before) continue;
        if (before.mtimeMs >= cutoff) {
          result.youngKept++;
          continue;
        }
        if (opts.dryRun) {
          kind.count();
          result.bytesFreed += before.size;
          continue;
        }
        await opts.beforeTrash?.(kind.relOf(m[1]!));
        const trash = path.join(dir, '.trash');
        await mkdir(trash, { recursive: true });
        const moved = path.join(trash, name);
        try {
          await rename(file, moved);
        } catch (err) {
          if (isGone(err)) continue;
          throw err;
        }
        const after = await stat(moved);
        if (after.mtimeMs !== before.mtimeMs) {
          // A backup reused it after we looked: back under its name (a new copy there is the same bytes).
          await link(moved, file).catch((err: NodeJS.ErrnoException) => {
            if (err.code !== 'EEXIST') throw err;
          });
          await rm(moved, { force: true });
          result.restored++;
          continue;
        }
        await rm(moved, { force: true });
        kind.count();
        result.bytesFreed += after.size;
      }
    }
  }
  return result;
}

/**
 * The first session in progress in the bucket: no manifest, and an object younger than the grace
 * period (a backup's lease or upload). `incomplete`: the sessions without a manifest.
 */
export async function cloudSessionInProgress(cloud: CloudSettings, incomplete: string[], opts: { graceMs: number; now: Date }): Promise<string | undefined> {
  const cutoff = opts.now.getTime() - opts.graceMs;
  for (const session of incomplete) {
    for await (const obj of listObjects(cloud, `${cloudKey(cloud, rel.session(session))}/`)) {
      if (obj.lastModified === undefined || obj.lastModified.getTime() >= cutoff) return session;
    }
  }
  return undefined;
}

/** Marks from every filestore index in the bucket's sessions but `skip`; downloads under `scratchDir`. */
export async function markCloud(
  cloud: CloudSettings,
  sessions: string[],
  skip: Set<string>,
  scratchDir: string,
  refs: References,
  signal?: AbortSignal,
): Promise<void> {
  for (const session of sessions) {
    if (skip.has(session)) continue;
    const prefix = `${cloudKey(cloud, rel.session(session))}/tenants/`;
    for await (const obj of listObjects(cloud, prefix)) {
      const tail = obj.key.slice(prefix.length);
      if (!/^[^/]+\/filestore\.jsonl$/.test(tail)) continue;
      const dest = path.join(scratchDir, `${refs.indexes}.jsonl`);
      try {
        await downloadFile(cloud, obj.key, dest, signal ? { signal } : {});
      } catch (err) {
        // Deleted meanwhile (a failed tenant's leftovers): nothing to mark.
        if ((err as Error).name === 'ArtifactNotFoundError') continue;
        throw err;
      }
      try {
        await addIndexReferences(dest, refs);
      } finally {
        await rm(dest, { force: true });
      }
    }
  }
}

/** Sweeps `packs/` and `blobs/` of the bucket: unmarked objects older than the grace period. */
export async function sweepCloud(cloud: CloudSettings, refs: References, opts: SweepOptions): Promise<SweepResult> {
  const result = emptySweep();
  const cutoff = opts.now.getTime() - opts.graceMs;
  let seen = 0;
  for (const kind of [
    { top: 'packs', pattern: /^[0-9a-f]{2}\/([0-9a-f]{64})\.tar\.zst\.age$/, marked: refs.packs, count: () => result.packsDeleted++ },
    { top: 'blobs', pattern: /^[0-9a-f]{2}\/([0-9a-f]{40})\.age$/, marked: refs.blobs, count: () => result.blobsDeleted++ },
  ]) {
    const prefix = `${cloudKey(cloud, kind.top)}/`;
    const doomed: string[] = [];
    for await (const obj of listObjects(cloud, prefix)) {
      opts.signal?.throwIfAborted();
      if (++seen % 500 === 0) opts.onProgress?.(kind.top);
      const m = kind.pattern.exec(obj.key.slice(prefix.length));
      if (!m || kind.marked.has(m[1]!)) continue;
      if (obj.lastModified === undefined || obj.lastModified.getTime() >= cutoff) {
        result.youngKept++;
        continue;
      }
      doomed.push(obj.key);
      kind.count();
      result.bytesFreed += obj.bytes;
    }
    if (!opts.dryRun) await deleteObjects(cloud, doomed);
  }
  return result;
}
