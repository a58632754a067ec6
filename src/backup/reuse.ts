/**
 * What a tenant's next backup may reuse: the filestore index of its newest complete session, read
 * through the session catalog (manifest signature verified, the index's bytes hashed against the
 * manifest), so that a forged index in the bucket can never make a backup list a file in a pack
 * that does not hold it. Packs are checked again by the backup (present, right size) before reuse.
 */
import type { DrConfig } from '../config';
import type { Manifest } from './manifest';
import type { SessionCatalog } from '../sessions/catalog';
import { newestFirst, type SessionStore } from '../sessions/store';

/** Sessions looked at, newest first, before giving up (a tenant failing night after night gets a full backup). */
const LOOKBACK = 8;
/** Listings and verified manifests are kept this long per worker process (a fleet backup asks once per tenant). */
const LISTING_TTL_MS = 60_000;

const listings = new Map<SessionStore, { at: number; names: Promise<string[]> }>();
/** Complete sessions never change: their verified manifests are kept (bounded). */
const manifests = new Map<string, Promise<Manifest | undefined>>();
const MAX_MANIFESTS = 32;

function sessionNames(store: SessionStore): Promise<string[]> {
  const cached = listings.get(store);
  if (cached && Date.now() - cached.at < LISTING_TTL_MS) return cached.names;
  const names = store.sessionNames().then(newestFirst);
  listings.set(store, { at: Date.now(), names });
  names.catch(() => listings.delete(store));
  return names;
}

function verifiedManifest(catalog: SessionCatalog, store: SessionStore, session: string): Promise<Manifest | undefined> {
  const key = `${store.description}\n${session}`;
  let got = manifests.get(key);
  if (!got) {
    got = catalog
      .open(session, store === catalog.cloud ? 'cloud' : 'local')
      .then((o) => (o.manifest.status === 'failed' ? undefined : o.manifest))
      .catch(() => undefined); // in progress, crashed, unsigned or corrupt: not a source
    manifests.set(key, got);
    if (manifests.size > MAX_MANIFESTS) manifests.delete(manifests.keys().next().value!);
  }
  return got;
}

/**
 * A local file holding the newest verified filestore index of `tenant` (from this disk when it has
 * a matching copy, else downloaded under `scratchDir`), or undefined when there is none.
 */
export async function previousFilestoreIndex(opts: {
  config: DrConfig;
  catalog: SessionCatalog;
  tenant: string;
  /** The session being written (never a source). */
  session: string;
  scratchDir: string;
  signal?: AbortSignal;
}): Promise<{ file: string; session: string } | undefined> {
  const { catalog, tenant } = opts;
  for (const store of catalog.stores('auto')) {
    let names: string[];
    try {
      names = await sessionNames(store);
    } catch {
      continue; // an unreachable bucket only means less reuse
    }
    let looked = 0;
    for (const name of names) {
      if (name === opts.session || name > opts.session) continue;
      if (++looked > LOOKBACK) break;
      const manifest = await verifiedManifest(catalog, store, name);
      const entry = manifest?.tenants[tenant];
      const index = entry?.status === 'complete' ? entry.filestore?.index : undefined;
      if (!index) continue;
      // This disk's copy when it is the one the manifest describes (the local store checks it), else the store's.
      for (const from of store === catalog.local ? [store] : [catalog.local, store]) {
        try {
          return { file: await from.fetchArtifact(index, opts.scratchDir, opts.signal), session: name };
        } catch {
          // not here, or not these bytes: next place, then an older session
        }
      }
    }
  }
  return undefined;
}
