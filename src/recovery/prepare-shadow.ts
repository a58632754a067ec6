/**
 * A recovery's first half for one tenant: its shadow copy, restored from a session and verified like
 * the real tenant (not neutralized, same `database.uuid`, modules, rows, attachments), before
 * anything of the tenant is touched. `files` scope: the filestore alone (files-only.ts);
 * `database`: the database, with a hard-linked copy of today's files; `both`: both from the session.
 * A shadow that does not verify is dropped and the failure is permanent (ArtifactCorruptedError).
 */
import { localPath } from '../backup/layout';
import type { Manifest } from '../backup/manifest';
import { ArtifactCorruptedError, InvalidInputError } from '../errors';
import { parseToolVersion } from '../pgtools';
import type { SessionStore, ShadowDatabases, TenantFilestore } from '../ports';
import { fetchTenantFiles } from '../validate/cloud';
import { restoreFilesOnly } from './files-only';

export interface PrepareShadowRequest {
  /** Where the session is read (its manifest already verified). */
  store: SessionStore;
  manifest: Manifest;
  databases: ShadowDatabases;
  filestore: TenantFilestore;
  tenant: string;
  /** The recovery's id (names the shadow database and folder). */
  id: string;
  /** `both`: database and files from the session; `database`: today's files kept; `files`: the filestore alone. */
  scope: 'both' | 'database' | 'files';
  /** age private key text. */
  identity: string;
  /** A folder of this attempt alone for downloads from the bucket (the caller removes it). */
  mirror: string;
  signal?: AbortSignal;
  onProgress?: (phase: string, amount?: number) => void;
  /** Test hook (files scope): runs just before the files are restored. */
  beforeRestoreFiles?: () => Promise<void> | void;
}

export interface PrepareShadowResult {
  checks: Array<{ name: string; status: string; message: string }>;
  /** What comes back, as it will sit on the server: the restored database and the files. */
  bytes: number;
}

export async function prepareShadow(req: PrepareShadowRequest): Promise<PrepareShadowResult> {
  const { store, manifest, tenant, id, signal, identity, mirror } = req;
  const beat = (phase: string, amount?: number) => req.onProgress?.(phase, amount);
  if (req.scope === 'files') {
    return restoreFilesOnly({
      store,
      manifest,
      filestore: req.filestore,
      tenant,
      id,
      identity,
      mirror,
      ...(signal ? { signal } : {}),
      onProgress: beat,
      ...(req.beforeRestoreFiles ? { beforeRestore: req.beforeRestoreFiles } : {}),
    });
  }
  const entry = manifest.tenants[tenant];
  if (!entry?.database || !entry.filestore || !entry.odoo) throw new InvalidInputError(`session ${manifest.session} has no complete backup of ${tenant}`);
  beat('download');
  const { root } = await fetchTenantFiles({ store, manifest, tenant, mirror, ...(signal ? { signal } : {}), onProgress: (n) => beat('download', n) });
  await req.filestore.ensureRoot();
  const dumpMajor = parseToolVersion(`(PostgreSQL) ${entry.database.pgDump}`)?.major;
  const shadow = await req.databases.restore({
    tenant,
    id,
    encryptedDump: localPath(root, entry.database.path),
    indexFile: localPath(root, entry.filestore.index.path),
    blobRoot: root,
    identity,
    ...(signal ? { signal } : {}),
    onProgress: (phase, amount) => beat(phase, amount),
    // database-only keeps today's files: the shadow folder is a hard-linked copy of them.
    filestoreFrom: req.scope === 'database' ? 'live' : 'backup',
    ...(dumpMajor !== undefined ? { dumpPgMajor: dumpMajor } : {}),
  });
  const checks = await req.databases.verify({ database: shadow.database, filestoreDir: shadow.filestoreDir, expected: entry.odoo });
  const bytes = (await req.databases.sizeOf(shadow.database)) + entry.filestore.bytes;
  const failed = [...checks.filter((c) => c.status === 'fail').map((c) => `${c.name}: ${c.message}`), ...shadow.problems];
  if (failed.length) {
    await req.databases.drop(tenant, id);
    throw new ArtifactCorruptedError(`the shadow copy of ${tenant} does not verify: ${failed.slice(0, 5).join('; ')}`);
  }
  return { checks, bytes };
}
