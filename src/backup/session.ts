/**
 * A backup session's life: prepared (folder + `.incomplete` marker, tools and keys checked), filled
 * by the tenant backups, then finalized: every artifact is re-read and its checksum verified on
 * local disk and against the uploaded object before the manifest is written, last. Nothing is
 * marked complete that was not verified.
 */
import { hostname } from 'node:os';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { DrConfig } from '../config';
import { recipientsFor } from '../crypto/age';
import { hashFile, unchangedSinceWritten } from '../pipeline';
import { findClientToolsCached, type PgTools } from '../pgtools';
import { serverVersion } from '../postgres';
import { abortStaleUploads, cloudKey, deleteObjects, listObjects, verifyObject } from '../storage/s3';
import { S3SessionStore } from '../sessions/s3-store';
import { LocalSessionStore } from '../sessions/local-store';
import { readSigningKey, signMessage } from '../crypto/signing';
import { assertSessionName, INCOMPLETE_MARKER, localPath, rel } from './layout';
import { blobSound, readIndexLines } from './filestore';
import { MANIFEST_FORMAT, MANIFEST_VERSION, sealManifest, type Artifact, type Manifest, type SessionStatus, type TenantEntry } from './manifest';

export interface PreparedSession {
  session: string;
  postgres: { server: string; serverMajor: number; pgDump: string };
  recipients: string[];
  cloud: { bucket: string; prefix: string } | null;
  maxParallel: number;
}

/** Creates the session folder and checks, before any work, what would make every tenant fail. */
export async function prepareSession(
  config: DrConfig,
  session: string,
  opts: { cloud: boolean; workflowId: string },
): Promise<PreparedSession & { tools: PgTools }> {
  const recipients = await recipientsFor(config);
  const server = await serverVersion(config.postgres);
  // The tenants' activities on this worker reuse the same choice (see findClientToolsCached).
  const tools = await findClientToolsCached(server.major, config.postgres.binDir ? { binDir: config.postgres.binDir } : {}, 60_000);
  if (opts.cloud && config.cloud) {
    // Bad credentials or a missing bucket would fail every upload: say so now, once.
    await listObjects(config.cloud, cloudKey(config.cloud, 'sessions/'), { maxKeys: 1 })[Symbol.asyncIterator]().next();
  }
  const dir = localPath(config.backupDir, rel.session(session));
  await mkdir(dir, { recursive: true, mode: 0o750 });
  await writeFile(path.join(dir, INCOMPLETE_MARKER), `${JSON.stringify({ workflowId: opts.workflowId, host: hostname() })}\n`);
  return {
    session,
    postgres: { server: server.full, serverMajor: server.major, pgDump: tools.version.full },
    recipients,
    cloud: opts.cloud && config.cloud ? { bucket: config.cloud.bucket, prefix: config.cloud.prefix } : null,
    maxParallel: config.performance.maxParallelBackups,
    tools,
  };
}

export interface FinalizeRequest {
  session: string;
  startedAt: string;
  startedBy: string;
  workflowId: string;
  postgres: { server: string; pgDump: string };
  recipients: string[];
  cloud: boolean;
  tenants: Record<string, TenantEntry>;
  globals?: Artifact & { warnings: string[] };
  config?: Artifact & { paths: string[]; missing: string[] };
  warnings: string[];
  /**
   * The bucket could not be reached to finalise (every attempt failed): keep what this disk holds,
   * verified, with a manifest saying it has no cloud copy, rather than no usable session at all.
   */
  localOnly?: boolean;
}

/**
 * Verifies one artifact locally (and in the bucket); returns the problem, if any, naming it. With a
 * cloud copy, an artifact made by another worker (not on this host's disk) is checked in the bucket
 * alone and `notHere` records that this host's copy of the session is not whole.
 *
 * Locally: size and SHA-256 of the file against what was recorded when it was written. A file this
 * process wrote and hashed on the way out is not read again when it is provably untouched since
 * (same inode, size, mtime and ctime: see `unchangedSinceWritten`); any other file is read and hashed
 * (written by another worker process, or before a restart, or changed since). In the bucket: the
 * object's size, the server's checksum and the SHA-256 recorded with it (a HEAD, no download).
 */
async function verifyArtifact(config: DrConfig, artifact: Artifact, cloud: boolean, notHere: string[]): Promise<string | undefined> {
  const file = localPath(config.backupDir, artifact.path);
  let local;
  try {
    local = (await unchangedSinceWritten(file, artifact)) ? { bytes: artifact.bytes, sha256: artifact.sha256 } : await hashFile(file);
  } catch (err) {
    if (!(cloud && (err as NodeJS.ErrnoException).code === 'ENOENT')) {
      return `${artifact.path}: cannot be read back (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
    }
    notHere.push(artifact.path);
  }
  if (local && (local.bytes !== artifact.bytes || local.sha256 !== artifact.sha256)) {
    return `${artifact.path}: local copy does not match what was written (${local.bytes} bytes, sha256 ${local.sha256.slice(0, 12)}…; expected ${artifact.bytes} bytes, ${artifact.sha256.slice(0, 12)}…)`;
  }
  if (cloud && config.cloud) {
    const key = cloudKey(config.cloud, artifact.path);
    const check = await verifyObject(config.cloud, key, { bytes: artifact.bytes, sha256: artifact.sha256 });
    artifact.cloud = { key, verified: check.ok };
    if (!check.ok) return `${artifact.path}: cloud copy s3://${config.cloud.bucket}/${key} ${check.message}`;
  }
  return undefined;
}

/**
 * What failed tenants left in the session (a dump finished before the failure, a partial upload's
 * finished objects), on this disk and in the bucket: once the manifest says "failed" nothing will
 * read them, and a big dump left behind would fill the disk for the next backup. Best effort: the
 * manifest is written; what cannot be removed now is removed by retention with the session.
 */
async function discardFailedTenants(config: DrConfig, manifest: Manifest, cloud: boolean): Promise<void> {
  for (const [tenant, entry] of Object.entries(manifest.tenants)) {
    if (entry.status === 'complete') continue;
    const dir = rel.tenantDir(manifest.session, tenant);
    await rm(localPath(config.backupDir, dir), { recursive: true, force: true }).catch(() => undefined);
    if (cloud && config.cloud) {
      try {
        const keys: string[] = [];
        for await (const obj of listObjects(config.cloud, `${cloudKey(config.cloud, dir)}/`)) keys.push(obj.key);
        await deleteObjects(config.cloud, keys);
      } catch {
        // Retention removes it with the session.
      }
    }
  }
}

/**
 * Every pack (and, for an index from before packs, every blob) the tenant's index lists is on this
 * disk with the size it was written with: a pack deleted or damaged since the tenant's backup
 * checked it (by hand, a disk fault, a concurrent cleanup) makes the tenant fail here, not at
 * restore time. An index made by another worker is not on this disk: its packs were checked in the
 * bucket (present, size) by that worker's backup of the tenant. Sizes only: the bytes were hashed
 * when written (a pack's name is its SHA-256), and validation decrypts them.
 */
async function verifyLocalBlobs(config: DrConfig, index: Artifact): Promise<string | undefined> {
  const file = localPath(config.backupDir, index.path);
  try {
    await stat(file);
  } catch {
    return undefined;
  }
  for await (const line of readIndexLines(file)) {
    if (line.kind === 'pack') {
      const packRel = rel.pack(line.record.pack);
      const st = await stat(localPath(config.backupDir, packRel)).catch(() => undefined);
      if (!st) return `filestore pack ${packRel} is missing`;
      if (st.size !== line.record.bytes) return `filestore pack ${packRel} is damaged (${st.size} bytes, written with ${line.record.bytes})`;
    } else if (line.entry.pack === undefined) {
      const entry = line.entry;
      const state = await blobSound(localPath(config.backupDir, rel.blob(entry.sha1)), entry.size);
      if (state !== 'sound')
        return `filestore blob ${rel.blob(entry.sha1)} (${entry.path}) is ${state === 'absent' ? 'missing' : 'damaged (its size does not fit the file)'}`;
    }
  }
  return undefined;
}

/** Tenants verified at once by finalizeSession. */
const VERIFY_PARALLEL = 8;

/**
 * `kept`: false when nothing was backed up (status failed): the session is removed, no manifest written.
 * `localCopy`: the whole session is on this host's disk and its manifest was written there too;
 * false when other workers made some of it (the bucket then holds the complete session).
 */
export async function finalizeSession(config: DrConfig, request: FinalizeRequest): Promise<{ manifest: Manifest; localCopy: boolean; kept: boolean }> {
  const req = request.localOnly ? { ...request, cloud: false } : request;
  const warnings = [...req.warnings];
  if (request.localOnly && request.cloud) {
    warnings.push('the bucket could not be reached to finalise this session: it has no verified cloud copy (this disk only); the next backup uploads again');
  }
  const notHere: string[] = [];
  const verifyTenant = async (entry: TenantEntry): Promise<TenantEntry> => {
    const copy: TenantEntry = structuredClone(entry);
    if (copy.status === 'complete') {
      const artifacts = [copy.database, copy.filestore?.index].filter((a): a is Artifact => a !== undefined);
      for (const a of artifacts) {
        const problem = await verifyArtifact(config, a, req.cloud, notHere);
        if (problem) {
          copy.status = 'failed';
          copy.error = `verification failed: ${problem}`;
          break;
        }
      }
      if (copy.status === 'complete' && copy.filestore?.index) {
        const problem = await verifyLocalBlobs(config, copy.filestore.index);
        if (problem) {
          copy.status = 'failed';
          copy.error = `verification failed: ${problem}`;
        }
      }
    }
    return copy;
  };
  // Several tenants at once (each is mostly waiting: small reads, stats, HEADs), in the manifest's order.
  const names = Object.keys(req.tenants);
  const verified: TenantEntry[] = new Array<TenantEntry>(names.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(VERIFY_PARALLEL, names.length) }, async () => {
      for (let i = next++; i < names.length; i = next++) verified[i] = await verifyTenant(req.tenants[names[i]!]!);
    }),
  );
  const tenants: Record<string, TenantEntry> = Object.fromEntries(names.map((n, i) => [n, verified[i]!]));
  let globals = req.globals && structuredClone(req.globals);
  if (globals) {
    const problem = await verifyArtifact(config, globals, req.cloud, notHere);
    if (problem) {
      warnings.push(`globals ${problem}`);
      globals = undefined;
    }
  } else warnings.push('cluster globals are missing from this session');
  let configArchive = req.config && structuredClone(req.config);
  if (configArchive) {
    const problem = await verifyArtifact(config, configArchive, req.cloud, notHere);
    if (problem) {
      warnings.push(`configuration archive ${problem}`);
      configArchive = undefined;
    }
  }
  const entries = Object.values(tenants);
  const ok = entries.filter((t) => t.status === 'complete').length;
  let status: SessionStatus;
  if (entries.length > 0 && ok === entries.length && globals) status = 'complete';
  else if (ok > 0) status = 'partial';
  else status = 'failed';

  const manifest = sealManifest({
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    session: req.session,
    status,
    startedAt: req.startedAt,
    finishedAt: new Date().toISOString(),
    startedBy: req.startedBy,
    workflowId: req.workflowId,
    host: hostname(),
    postgres: req.postgres,
    encryption: { format: 'age', recipients: req.recipients },
    compression: { format: 'zstd', level: config.encryption.compressionLevel },
    cloud: req.cloud && config.cloud ? { bucket: config.cloud.bucket, prefix: config.cloud.prefix } : null,
    tenants,
    ...(globals ? { globals } : {}),
    ...(configArchive ? { config: configArchive } : {}),
    warnings,
  });
  if (notHere.length) {
    manifest.warnings.push(
      `${notHere.length} artifact(s) were made by other workers and are not on ${hostname()}'s disk: the bucket holds the complete session (share DR_BACKUP_DIR between workers to keep a whole local copy)`,
    );
  }
  if (!config.signing.keyFile) {
    manifest.warnings.push('this session is not signed (DR_SIGNING_KEY_FILE is not set): validation, drills and recovery refuse it unless --allow-unsigned');
  }
  const sealed = sealManifest((({ checksum: _c, ...body }) => body)(manifest));
  if (status === 'failed') {
    // Nothing was backed up: no manifest, nothing kept (a signed "failed" session in the bucket would
    // only be listed, copied and retained). The workflow's result, the audit line and the alert say why.
    await rm(localPath(config.backupDir, rel.session(req.session)), { recursive: true, force: true });
    if (req.cloud && config.cloud) await new S3SessionStore(config.cloud).deleteSession(req.session).catch(() => undefined);
    return { manifest: sealed, localCopy: false, kept: false };
  }
  const text = `${JSON.stringify(sealed, null, 2)}\n`;
  // Signed by the backup host: readers verify the exact bytes before reading anything else.
  const signature = config.signing.keyFile ? signMessage(text, await readSigningKey(config.signing.keyFile)) : undefined;
  const dir = localPath(config.backupDir, rel.session(req.session));
  const localCopy = notHere.length === 0;
  // A local manifest only where the whole session is: a local reader never finds a manifest
  // whose artifacts are elsewhere.
  if (localCopy) await new LocalSessionStore(config.backupDir).putManifest(req.session, text, signature);
  if (req.cloud && config.cloud) {
    // The manifest goes up last: a cloud session without one is incomplete by definition.
    await new S3SessionStore(config.cloud).putManifest(req.session, text, signature);
  }
  await rm(path.join(dir, INCOMPLETE_MARKER), { force: true });
  await discardFailedTenants(config, sealed, req.cloud);
  return { manifest: sealed, localCopy, kept: true };
}

/** A session folder on this disk that was never finalised (no manifest), and the workflow that wrote it. */
export interface UnfinishedSession {
  session: string;
  workflowId: string;
  host: string;
}

/**
 * Sessions on this disk that were started on this host and never finalised: their `.incomplete`
 * marker names the workflow. The caller removes those whose workflow is no longer running (a
 * terminated backup's dumps would otherwise stay until retention, days later).
 */
export async function unfinishedLocalSessions(config: DrConfig): Promise<UnfinishedSession[]> {
  const store = new LocalSessionStore(config.backupDir);
  const found: UnfinishedSession[] = [];
  for (const session of await store.sessionNames()) {
    if ((await store.manifestText(session)) !== undefined) continue;
    const text = await readFile(path.join(localPath(config.backupDir, rel.session(session)), INCOMPLETE_MARKER), 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    try {
      const m = JSON.parse(text) as { workflowId?: unknown; host?: unknown };
      if (typeof m.workflowId === 'string' && m.host === hostname()) found.push({ session, workflowId: m.workflowId, host: m.host });
    } catch {
      // An unreadable marker: left to retention.
    }
  }
  return found;
}

/**
 * Removes an unfinished session from this disk (never one with a manifest), and in the bucket what
 * it had uploaded without a manifest (objects and multipart uploads in progress).
 */
export async function removeUnfinishedSession(config: DrConfig, session: string): Promise<boolean> {
  assertSessionName(session);
  const store = new LocalSessionStore(config.backupDir);
  if ((await store.manifestText(session)) !== undefined) return false;
  await rm(localPath(config.backupDir, rel.session(session)), { recursive: true, force: true });
  if (config.cloud) {
    const cloud = new S3SessionStore(config.cloud);
    if ((await cloud.manifestText(session)) === undefined) {
      await abortStaleUploads(config.cloud, `${cloudKey(config.cloud, rel.session(session))}/`, 0);
      await cloud.deleteSession(session);
    }
  }
  return true;
}
