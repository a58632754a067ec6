/**
 * What one tenant's restore needs (dump, filestore index, blobs), as local files in the session
 * layout: the local store's own folder, or a mirror filled from the bucket alone, every object
 * verified against the manifest (size and SHA-256 of the bytes downloaded).
 */
import { setMaxListeners } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { readIndexLines } from '../backup/filestore';
import { rel } from '../backup/layout';
import type { Manifest } from '../backup/manifest';
import { InvalidInputError } from '../errors';
import { LocalSessionStore } from '../sessions/local-store';
import type { SessionStore } from '../sessions/store';

export interface TenantFiles {
  /** Root of a folder in the session layout holding the tenant's artifacts and blobs. */
  root: string;
  /** Bytes downloaded (0 for the local store). */
  downloadedBytes: number;
}

/**
 * Local store: its folder, nothing copied. Bucket: downloads into `mirror` (which the caller
 * removes) with at most `concurrency` blob downloads at once.
 */
export async function fetchTenantFiles(opts: {
  store: SessionStore;
  manifest: Manifest;
  tenant: string;
  mirror: string;
  signal?: AbortSignal;
  onProgress?: (files: number) => void;
  concurrency?: number;
  /** The filestore alone (files-only recovery): the dump is neither checked nor downloaded. */
  filesOnly?: boolean;
}): Promise<TenantFiles> {
  const { store, manifest, tenant, mirror, signal } = opts;
  const entry = manifest.tenants[tenant];
  if (!entry?.database || !entry.filestore) throw new InvalidInputError(`tenant ${tenant} has no complete backup in ${manifest.session}`);
  // Each download in flight listens to the one cancellation signal.
  if (signal) setMaxListeners(64, signal);
  if (store instanceof LocalSessionStore) {
    // Nothing copied, but the bytes are checked against the (signed) manifest before they are used.
    if (!opts.filesOnly) await store.fetchArtifact(entry.database);
    await store.fetchArtifact(entry.filestore.index);
    return { root: store.root, downloadedBytes: 0 };
  }
  await mkdir(mirror, { recursive: true, mode: 0o700 });
  let downloadedBytes = 0;
  let done = 0;
  // One download (the dump) can take longer than the caller's heartbeat timeout: progress is
  // reported every 10 s meanwhile, so the activity is not timed out, and its downloads thrown away
  // and started over, while the bytes are still coming (a stalled connection fails on its own).
  const ticker = opts.onProgress ? setInterval(() => opts.onProgress?.(done), 10_000) : undefined;
  try {
    if (!opts.filesOnly) {
      await store.fetchArtifact(entry.database, mirror, signal);
      downloadedBytes += entry.database.bytes;
    }
    const index = await store.fetchArtifact(entry.filestore.index, mirror, signal);
    downloadedBytes += entry.filestore.index.bytes;
    // Packs are downloaded whole, their size and SHA-256 (their name) verified; blobs of sessions
    // from before packs are verified by decryption (age authenticates them) and their SHA-1 where used.
    const seen = new Set<string>();
    const running = new Set<Promise<void>>();
    let failure: Error | undefined;
    for await (const line of readIndexLines(index)) {
      if (failure) break;
      signal?.throwIfAborted();
      let fetch: () => Promise<void>;
      if (line.kind === 'pack') {
        const { pack, bytes } = line.record;
        if (seen.has(pack)) continue;
        seen.add(pack);
        fetch = async () => {
          await store.packFile(pack, bytes, mirror, signal);
          downloadedBytes += bytes;
        };
      } else {
        const file = line.entry;
        if (file.pack !== undefined || seen.has(file.sha1)) continue;
        seen.add(file.sha1);
        fetch = async () => {
          const got = await store.blobFile(file.sha1, mirror, signal);
          if (!got) throw new InvalidInputError(`blob ${rel.blob(file.sha1)} of ${tenant} is missing from ${store.description}`);
          downloadedBytes += got.bytes;
        };
      }
      const p: Promise<void> = fetch()
        .then(() => opts.onProgress?.(++done))
        .catch((err: unknown) => {
          failure ??= err instanceof Error ? err : new Error(String(err));
        })
        .finally(() => running.delete(p));
      running.add(p);
      if (running.size >= (opts.concurrency ?? 4)) await Promise.race(running);
    }
    await Promise.all(running);
    if (failure) throw failure;
  } finally {
    clearInterval(ticker);
  }
  return { root: mirror, downloadedBytes };
}
