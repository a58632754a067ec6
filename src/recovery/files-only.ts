/**
 * files-only recovery, first half: the tenant's filestore from a session into its shadow folder,
 * every file verified against its SHA-1 and size, owned like the tenant's files. The swap (see
 * files-swap.ts) then puts it in place. A rerun starts over: partial folders of earlier attempts
 * are removed, and the shadow appears only whole (renamed from this attempt's own folder).
 */
import { rename, rm } from 'node:fs/promises';
import { localPath } from '../backup/layout';
import type { Manifest } from '../backup/manifest';
import { ArtifactCorruptedError, InvalidInputError } from '../errors';
import type { SessionStore, TenantFilestore } from '../ports';
import { restoreFilestore } from '../restore/filestore';
import { fetchTenantFiles } from '../validate/cloud';
import { removeShadowPartials, shadowPartialDir } from './shadow';

export interface RestoreFilesOnlyRequest {
  /** Where the session is read (its manifest already verified). */
  store: SessionStore;
  manifest: Manifest;
  filestore: TenantFilestore;
  tenant: string;
  /** The recovery's id (names the shadow folder). */
  id: string;
  /** age private key text. */
  identity: string;
  /** A folder of this attempt alone for downloads from the bucket (the caller removes it). */
  mirror: string;
  signal?: AbortSignal;
  onProgress?: (phase: 'download' | 'filestore', amount?: number) => void;
  /** Test hook: runs just before the files are restored. */
  beforeRestore?: () => Promise<void> | void;
}

export interface RestoreFilesOnlyResult {
  checks: Array<{ name: string; status: string; message: string }>;
  /** The filestore's bytes, per the manifest. */
  bytes: number;
}

export async function restoreFilesOnly(req: RestoreFilesOnlyRequest): Promise<RestoreFilesOnlyResult> {
  const { manifest, tenant, signal } = req;
  const entry = manifest.tenants[tenant];
  if (!entry?.database || !entry.filestore || !entry.odoo) throw new InvalidInputError(`session ${manifest.session} has no complete backup of ${tenant}`);
  req.onProgress?.('download');
  const { root } = await fetchTenantFiles({
    store: req.store,
    manifest,
    tenant,
    mirror: req.mirror,
    filesOnly: true,
    ...(signal ? { signal } : {}),
    onProgress: (n) => req.onProgress?.('download', n),
  });
  await req.filestore.ensureRoot();
  const dir = req.filestore.shadowDir(tenant, req.id);
  await removeShadowPartials(dir);
  await rm(dir, { recursive: true, force: true });
  await req.beforeRestore?.();
  const partial = shadowPartialDir(dir);
  // The files Odoo will serve get the owner of the tenant's files (or the data dir) as they are written.
  const owner = await req.filestore.ownerOf(tenant);
  const files = await restoreFilestore({
    indexFile: localPath(root, entry.filestore.index.path),
    identity: req.identity,
    destDir: partial,
    blobRoot: root,
    ...(signal ? { signal } : {}),
    onProgress: (n) => req.onProgress?.('filestore', n),
    ...(owner ? { owner } : {}),
  });
  if (files.problems.length) {
    await rm(partial, { recursive: true, force: true });
    throw new ArtifactCorruptedError(`the shadow filestore of ${tenant} does not verify: ${files.problems.slice(0, 5).join('; ')}`);
  }
  signal?.throwIfAborted();
  await rename(partial, dir);
  return { checks: [{ name: 'restore-filestore', status: 'pass', message: `${files.files} files restored and verified` }], bytes: entry.filestore.bytes };
}
