/**
 * Session retention: local sessions older than DR_LOCAL_RETENTION_DAYS and cloud sessions older
 * than DR_RETENTION_DAYS are deleted, but never, in either place, a tenant's newest complete (nor
 * newest validated) session, and never a session still being written. Filestore blobs are shared between sessions and are not
 * collected here (that needs a reference sweep that knows about running backups).
 */
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { DrConfig } from '../config';
import { abortStaleUploads } from '../storage/s3';
import { dropPreRecovery } from '../recovery/swap';
import { SessionCatalog, type SessionSummary } from '../sessions/catalog';
import { sessionTime } from './layout';

export interface RetentionResult {
  localDeleted: string[];
  cloudDeleted: string[];
  kept: string[];
  /** Multipart uploads left behind by crashed workers, aborted. */
  staleUploadsAborted: number;
  /** Pre-recovery copies (databases, folders) older than DR_PRE_RECOVERY_RETENTION_DAYS, dropped. */
  preRecoveryDropped: string[];
}

const DAY = 24 * 60 * 60 * 1000;

/**
 * The sessions retention never deletes, whatever their age: for every tenant, the newest session
 * (newest first in `sessions`) in which it is complete, and the newest such session whose newest
 * validation passed. A partial or unvalidated newer session never makes the last good one expire.
 */
export function sessionsToKeep(sessions: SessionSummary[]): Set<string> {
  const keep = new Set<string>();
  const newest = new Map<string, string>();
  const newestValidated = new Map<string, string>();
  for (const s of sessions) {
    if (s.status !== 'complete' && s.status !== 'partial') continue;
    for (const [tenant, state] of Object.entries(s.tenants)) {
      if (state !== 'complete') continue;
      if (!newest.has(tenant)) newest.set(tenant, s.session);
      if (s.validation === 'pass' && !newestValidated.has(tenant)) newestValidated.set(tenant, s.session);
    }
  }
  for (const v of [...newest.values(), ...newestValidated.values()]) keep.add(v);
  return keep;
}

export async function applyRetention(config: DrConfig, opts: { now: Date; cloud: boolean; protect?: string[] }): Promise<RetentionResult> {
  const protect = new Set(opts.protect ?? []);
  const result: RetentionResult = { localDeleted: [], cloudDeleted: [], kept: [], staleUploadsAborted: 0, preRecoveryDropped: [] };

  const catalog = SessionCatalog.fromConfig(config);
  const local = await catalog.list(catalog.local);
  const keepLocal = sessionsToKeep(local);
  const localCutoff = opts.now.getTime() - config.retention.localDays * DAY;
  for (const s of local) {
    const old = sessionTime(s.session).getTime() < localCutoff;
    // An incomplete session may be running: only remove it once it is older than the retention too.
    if (!old || keepLocal.has(s.session) || protect.has(s.session)) continue;
    await catalog.local.deleteSession(s.session);
    result.localDeleted.push(s.session);
  }
  // Pack (and, from older versions, blob) temp files of crashed runs.
  for (const tmpDir of [path.join(config.backupDir, 'packs', '.tmp'), path.join(config.backupDir, 'blobs', '.tmp')]) {
    for (const f of await readdir(tmpDir).catch(() => [] as string[])) {
      const file = path.join(tmpDir, f);
      const st = await stat(file).catch(() => undefined);
      if (st && st.mtimeMs < opts.now.getTime() - DAY) await rm(file, { force: true });
    }
  }

  if (opts.cloud && config.cloud && catalog.cloud) {
    const cloud = config.cloud;
    const sessions = await catalog.list(catalog.cloud);
    // Per tenant, the newest complete (and the newest validated) session: never merely the newest with a manifest.
    const keepCloud = sessionsToKeep(sessions);
    const cutoff = opts.now.getTime() - config.retention.cloudDays * DAY;
    for (const { session } of sessions) {
      if (sessionTime(session).getTime() >= cutoff || keepCloud.has(session) || protect.has(session)) continue;
      // deleteSession removes the manifest first: a half-deleted session never looks complete.
      await catalog.cloud.deleteSession(session);
      result.cloudDeleted.push(session);
    }
    // A worker killed mid-upload leaves its parts for the retry to resume; after a day nobody will.
    result.staleUploadsAborted = await abortStaleUploads(cloud, cloud.prefix ? `${cloud.prefix}/` : '', DAY);
  }
  // Recovered tenants' old state: kept for DR_PRE_RECOVERY_RETENTION_DAYS, then dropped (only marked copies).
  result.preRecoveryDropped = await dropPreRecovery(config, undefined, config.retention.preRecoveryDays, opts.now);
  result.kept = await catalog.local.sessionNames();
  return result;
}
