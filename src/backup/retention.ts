/**
 * Session retention: local sessions older than DR_LOCAL_RETENTION_DAYS and cloud sessions older
 * than DR_RETENTION_DAYS are deleted, but never the newest complete session of either place, and
 * never a session still being written. Filestore blobs are shared between sessions and are not
 * collected here (that needs a reference sweep that knows about running backups).
 */
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { DrConfig } from '../config';
import { abortStaleUploads, cloudKey, deleteObjects, listObjects } from '../storage/s3';
import { dropPreRecovery } from '../recovery/swap';
import { rel, sessionTime } from './layout';
import { listCloudSessionNames, listLocalSessions } from './session';

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

  const local = await listLocalSessions(config);
  const newestComplete = local.find((s) => s.status === 'complete')?.session;
  const localCutoff = opts.now.getTime() - config.retention.localDays * DAY;
  for (const s of local) {
    const old = sessionTime(s.session).getTime() < localCutoff;
    // An incomplete session may be running: only remove it once it is older than the retention too.
    if (!old || s.session === newestComplete || protect.has(s.session)) continue;
    await rm(path.join(config.sessionsDir, s.session), { recursive: true, force: true });
    result.localDeleted.push(s.session);
  }
  // Encrypted blob temp files of crashed runs.
  const tmpDir = path.join(config.backupDir, 'blobs', '.tmp');
  for (const f of await readdir(tmpDir).catch(() => [] as string[])) {
    const file = path.join(tmpDir, f);
    const st = await stat(file).catch(() => undefined);
    if (st && st.mtimeMs < opts.now.getTime() - DAY) await rm(file, { force: true });
  }

  if (opts.cloud && config.cloud) {
    const cloud = config.cloud;
    const sessions = [...(await listCloudSessionNames(config)).entries()].sort(([a], [b]) => (a < b ? 1 : -1));
    const newestCloud = sessions.find(([, v]) => v.hasManifest)?.[0];
    const cutoff = opts.now.getTime() - config.retention.cloudDays * DAY;
    for (const [session] of sessions) {
      if (sessionTime(session).getTime() >= cutoff || session === newestCloud || protect.has(session)) continue;
      const keys: string[] = [];
      for await (const obj of listObjects(cloud, cloudKey(cloud, rel.session(session)) + '/')) keys.push(obj.key);
      // The manifest first: a half-deleted session must never look complete.
      const manifestKey = cloudKey(cloud, rel.manifest(session));
      await deleteObjects(cloud, keys.filter((k) => k === manifestKey));
      await deleteObjects(cloud, keys.filter((k) => k !== manifestKey));
      result.cloudDeleted.push(session);
    }
    // A worker killed mid-upload leaves its parts for the retry to resume; after a day nobody will.
    result.staleUploadsAborted = await abortStaleUploads(cloud, cloud.prefix ? `${cloud.prefix}/` : '', DAY);
  }
  // Recovered tenants' old state: kept for DR_PRE_RECOVERY_RETENTION_DAYS, then dropped (only marked copies).
  result.preRecoveryDropped = await dropPreRecovery(config, undefined, config.retention.preRecoveryDays, opts.now);
  result.kept = (await listLocalSessions(config)).map((s) => s.session);
  return result;
}
