/**
 * A backup session's life: prepared (folder + `.incomplete` marker, tools and keys checked), filled
 * by the tenant backups, then finalized: every artifact is re-read and its checksum verified on
 * local disk and against the uploaded object before the manifest is written, last. Nothing is
 * marked complete that was not verified.
 */
import { hostname } from 'node:os';
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { DrConfig } from '../config';
import { recipientsFor } from '../crypto/age';
import { hashFile } from '../pipeline';
import { findClientTools, type PgTools } from '../pgtools';
import { serverVersion } from '../postgres';
import { cloudKey, listObjects, uploadFile, verifyObject } from '../storage/s3';
import { INCOMPLETE_MARKER, MANIFEST_FILE, SESSION_NAME, localPath, rel, sessionTime } from './layout';
import {
  MANIFEST_FORMAT,
  MANIFEST_VERSION,
  readManifest,
  sealManifest,
  writeManifest,
  type Artifact,
  type Manifest,
  type SessionStatus,
  type TenantEntry,
} from './manifest';

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
  const tools = await findClientTools(server.major, config.postgres.binDir ? { binDir: config.postgres.binDir } : {});
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
}

/** Verifies one artifact locally (and in the bucket); returns the problem, if any, naming it. */
async function verifyArtifact(config: DrConfig, artifact: Artifact, cloud: boolean): Promise<string | undefined> {
  const file = localPath(config.backupDir, artifact.path);
  let local;
  try {
    local = await hashFile(file);
  } catch (err) {
    return `${artifact.path}: cannot be read back (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
  }
  if (local.bytes !== artifact.bytes || local.sha256 !== artifact.sha256) {
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

export async function finalizeSession(config: DrConfig, req: FinalizeRequest): Promise<Manifest> {
  const warnings = [...req.warnings];
  const tenants: Record<string, TenantEntry> = {};
  for (const [name, entry] of Object.entries(req.tenants)) {
    const copy: TenantEntry = structuredClone(entry);
    if (copy.status === 'complete') {
      const artifacts = [copy.database, copy.filestore?.index].filter((a): a is Artifact => a !== undefined);
      for (const a of artifacts) {
        const problem = await verifyArtifact(config, a, req.cloud);
        if (problem) {
          copy.status = 'failed';
          copy.error = `verification failed: ${problem}`;
          break;
        }
      }
    }
    tenants[name] = copy;
  }
  let globals = req.globals && structuredClone(req.globals);
  if (globals) {
    const problem = await verifyArtifact(config, globals, req.cloud);
    if (problem) {
      warnings.push(`globals ${problem}`);
      globals = undefined;
    }
  } else warnings.push('cluster globals are missing from this session');
  let configArchive = req.config && structuredClone(req.config);
  if (configArchive) {
    const problem = await verifyArtifact(config, configArchive, req.cloud);
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
  const dir = localPath(config.backupDir, rel.session(req.session));
  const file = path.join(dir, MANIFEST_FILE);
  await writeManifest(file, manifest);
  if (req.cloud && config.cloud) {
    // The manifest goes up last: a cloud session without one is incomplete by definition.
    const { bytes, sha256 } = await hashFile(file);
    const key = cloudKey(config.cloud, rel.manifest(req.session));
    await uploadFile({ cloud: config.cloud, key, file, expectedBytes: bytes, expectedSha256: sha256, contentType: 'application/json' });
    const check = await verifyObject(config.cloud, key, { bytes, sha256 });
    if (!check.ok) throw new Error(`manifest upload to s3://${config.cloud.bucket}/${key} did not verify: ${check.message}`);
  }
  await rm(path.join(dir, INCOMPLETE_MARKER), { force: true });
  return manifest;
}

export interface SessionSummary {
  session: string;
  startedAt: string;
  /** From a verified manifest; `incomplete` = no manifest (running or crashed); `corrupt` = manifest does not verify. */
  status: SessionStatus | 'incomplete' | 'corrupt';
  tenants: Record<string, 'complete' | 'failed'>;
  problem?: string;
  location: 'local' | 'cloud';
}

/** Local sessions, newest first. Only a verified manifest with status complete means complete. */
export async function listLocalSessions(config: DrConfig): Promise<SessionSummary[]> {
  let names: string[];
  try {
    names = (await readdir(config.sessionsDir)).filter((n) => SESSION_NAME.test(n));
  } catch {
    return [];
  }
  names.sort().reverse();
  const out: SessionSummary[] = [];
  for (const session of names) {
    const dir = path.join(config.sessionsDir, session);
    const base = { session, startedAt: sessionTime(session).toISOString(), location: 'local' as const };
    const hasManifest = await stat(path.join(dir, MANIFEST_FILE)).then(() => true, () => false);
    if (!hasManifest) {
      out.push({ ...base, status: 'incomplete', tenants: {} });
      continue;
    }
    try {
      const m = await readManifest(path.join(dir, MANIFEST_FILE));
      out.push({ ...base, status: m.status, tenants: Object.fromEntries(Object.entries(m.tenants).map(([k, v]) => [k, v.status])) });
    } catch (err) {
      out.push({ ...base, status: 'corrupt', tenants: {}, problem: (err as Error).message });
    }
  }
  return out;
}

/** Session names present in the bucket with whether their manifest exists (not verified here). */
export async function listCloudSessionNames(config: DrConfig): Promise<Map<string, { hasManifest: boolean }>> {
  const found = new Map<string, { hasManifest: boolean }>();
  if (!config.cloud) return found;
  const prefix = cloudKey(config.cloud, 'sessions/');
  for await (const obj of listObjects(config.cloud, prefix)) {
    const rest = obj.key.slice(prefix.length);
    const [session, ...tail] = rest.split('/');
    if (!session || !SESSION_NAME.test(session)) continue;
    const entry = found.get(session) ?? { hasManifest: false };
    if (tail.join('/') === MANIFEST_FILE) entry.hasManifest = true;
    found.set(session, entry);
  }
  return found;
}
