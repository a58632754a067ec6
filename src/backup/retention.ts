/**
 * Session retention: local sessions older than DR_LOCAL_RETENTION_DAYS and cloud sessions older
 * than DR_RETENTION_DAYS are deleted, but never the newest complete session of either place, and
 * never a session still being written. Filestore blobs are shared between sessions and are not
 * collected here (that needs a reference sweep that knows about running backups).
 */
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { DrConfig } from '../config';
import { abortStaleUploads } from '../storage/s3';
import { dropPreRecovery } from '../recovery/swap';
import { SessionCatalog } from '../sessions/catalog';
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

export async function applyRetention(config: DrConfig, opts: { now: Date; cloud: boolean; protect?: string[] }): Promise<RetentionResult> {
  const protect = new Set(opts.protect ?? []);
  const result: RetentionResult = { localDeleted: [], cloudDeleted: [], kept: [], staleUploadsAborted: 0, preRecoveryDropped: [] };

  const catalog = SessionCatalog.fromConfig(config);
  const local = await catalog.list(catalog.local);
  const newestComplete = local.find((s) => s.status === 'complete')?.session;
  const localCutoff = opts.now.getTime() - config.retention.localDays * DAY;
  for (const s of local) {
    const old = sessionTime(s.session).getTime() < localCutoff;
    // An incomplete session may be running: only remove it once it is older than the retention too.
    if (!old || s.session === newestComplete || protect.has(s.session)) continue;
    await catalog.local.deleteSession(s.session);
    result.localDeleted.push(s.session);
  }
  // Encrypted blob temp files of crashed runs.
  const tmpDir = path.join(config.backupDir, 'blobs', '.tmp');
  for (const f of await readdir(tmpDir).catch(() => [] as string[])) {
    const file = path.join(tmpDir, f);
    const st = await stat(file).catch(() => undefined);
    if (st && st.mtimeMs < opts.now.getTime() - DAY) await rm(file, { force: true });
  }

  if (opts.cloud && config.cloud && catalog.cloud) {
    const cloud = config.cloud;
    const sessions = await catalog.list(catalog.cloud);
    // The newest *complete* session (verified manifest), never merely the newest with a manifest.
    const newestCloud = sessions.find((s) => s.status === 'complete')?.session;
    const cutoff = opts.now.getTime() - config.retention.cloudDays * DAY;
    for (const { session } of sessions) {
      if (sessionTime(session).getTime() >= cutoff || session === newestCloud || protect.has(session)) continue;
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
