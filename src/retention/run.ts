/**
 * Retention use cases, one per place plus the leftovers: each applies the policy (./policy.ts),
 * deletes the expired sessions, then collects the packs and blobs nothing kept references
 * (./collect.ts). A dry run deletes nothing and reports the same figures.
 */
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { DrConfig } from '../config';
import { localPath, rel } from '../backup/layout';
import { SessionCatalog } from '../sessions/catalog';
import type { SessionStore } from '../sessions/store';
import { abortStaleUploads, cloudKey, listObjects } from '../storage/s3';
import { dropPreRecovery } from '../recovery/pre-recovery';
import { ensureScratchRoot, scratchFolderName, sweepScratch } from '../restore/scratch';
import { planRetention, withValidationsThatMatter, type KeepReason } from './policy';
import {
  cloudSessionInProgress,
  emptyReferences,
  emptySweep,
  markCloud,
  markLocal,
  sweepCloud,
  sweepLocal,
  type SweepOptions,
  type SweepResult,
} from './collect';
import { rotateLogs, type LogRotation } from './logs';

const DAY = 86_400_000;

export interface PlaceReport {
  place: 'local' | 'cloud';
  dryRun: boolean;
  sessionsDeleted: string[];
  sessionsKept: number;
  /** Sessions older than the age limit kept anyway, with why (newest complete of a tenant, GFS…). */
  keptPastAge: Record<string, KeepReason[]>;
  /** Bytes of the deleted sessions' own files (dumps, indexes). */
  sessionBytes: number;
  collection: SweepResult;
  /** Multipart uploads left behind by crashed workers, aborted (bucket only). */
  staleUploadsAborted: number;
}

export interface LeftoversReport {
  preRecoveryDropped: string[];
  scratchDropped: string[];
  logs: LogRotation;
}

export interface PlaceOptions {
  now: Date;
  dryRun: boolean;
  /** Never deleted (the session a backup is writing). */
  protect?: string[];
  /** Collect packs and blobs too (default true). */
  collect?: boolean;
  signal?: AbortSignal;
  onProgress?: (what: string) => void;
  /** Test hook, see SweepOptions.beforeTrash. */
  beforeTrash?: (relPath: string) => Promise<void>;
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const p = path.join(dir, name);
    const st = await stat(p).catch(() => undefined);
    if (st?.isDirectory()) total += await folderBytes(p);
    else if (st) total += st.size;
  }
  return total;
}

/** The newest mtime in a session's folder, its `tenants/` and each tenant's folder (where a backup writes). */
async function lastWritten(dir: string): Promise<number> {
  let newest = 0;
  const look = async (d: string, depth: number): Promise<void> => {
    for (const name of await readdir(d).catch(() => [] as string[])) {
      const st = await stat(path.join(d, name)).catch(() => undefined);
      if (!st) continue;
      newest = Math.max(newest, st.mtimeMs);
      if (st.isDirectory() && depth > 0) await look(path.join(d, name), depth - 1);
    }
  };
  await look(dir, 3);
  return newest;
}

function sweepOptions(config: DrConfig, opts: PlaceOptions): SweepOptions {
  return {
    graceMs: config.retention.collectGraceHours * 3_600_000,
    now: opts.now,
    dryRun: opts.dryRun,
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    ...(opts.beforeTrash ? { beforeTrash: opts.beforeTrash } : {}),
  };
}

function keptPastAge(keep: Map<string, KeepReason[]>): Record<string, KeepReason[]> {
  return Object.fromEntries([...keep].filter(([, why]) => !why.includes('age') && !why.includes('protected') && !why.includes('in-progress')));
}

/** A place's sessions, with only the validations the policy can need (each looks in both places). */
async function listForRetention(catalog: SessionCatalog, store: SessionStore, maxAgeDays: number, now: Date) {
  const sessions = await catalog.list(store, { validation: false });
  return withValidationsThatMatter(sessions, maxAgeDays, now, (session) => catalog.validationOf(session));
}

/** The local folder: expired sessions, temp files of crashed runs, unreferenced packs and blobs. */
export async function retainLocal(config: DrConfig, opts: PlaceOptions): Promise<PlaceReport> {
  const catalog = SessionCatalog.fromConfig(config);
  const sessions = await listForRetention(catalog, catalog.local, config.retention.localDays, opts.now);
  const recent = opts.now.getTime() - config.retention.collectGraceHours * 3_600_000;
  const writing: string[] = [];
  for (const s of sessions) {
    if (s.status === 'incomplete' && (await lastWritten(localPath(config.backupDir, rel.session(s.session)))) >= recent) writing.push(s.session);
  }
  // GFS is for the long-term copy: the bucket, or this folder when there is no bucket.
  const plan = planRetention(
    sessions,
    { maxAgeDays: config.retention.localDays, gfs: config.cloud ? null : config.retention.gfs, protect: opts.protect ?? [], writing },
    opts.now,
  );
  const report = emptyReport('local', opts.dryRun, plan.keep);
  for (const name of plan.remove) {
    report.sessionBytes += await folderBytes(localPath(config.backupDir, rel.session(name)));
    if (!opts.dryRun) await catalog.local.deleteSession(name);
    report.sessionsDeleted.push(name);
  }
  if (!opts.dryRun) {
    // Pack (and, from older versions, blob) temp files of crashed runs.
    for (const tmpDir of [path.join(config.backupDir, 'packs', '.tmp'), path.join(config.backupDir, 'blobs', '.tmp')]) {
      for (const f of await readdir(tmpDir).catch(() => [] as string[])) {
        const file = path.join(tmpDir, f);
        const st = await stat(file).catch(() => undefined);
        if (st && st.mtimeMs < opts.now.getTime() - DAY) await rm(file, { force: true });
      }
    }
  }
  if (opts.collect ?? true) {
    const refs = emptyReferences();
    await markLocal(config.backupDir, new Set(opts.dryRun ? plan.remove : []), refs);
    report.collection = await sweepLocal(config.backupDir, refs, sweepOptions(config, opts));
  }
  return report;
}

/** A place's report before anything is deleted. */
function emptyReport(place: PlaceReport['place'], dryRun: boolean, keep: Parameters<typeof keptPastAge>[0]): PlaceReport {
  return {
    place,
    dryRun,
    sessionsDeleted: [],
    sessionsKept: keep.size,
    keptPastAge: keptPastAge(keep),
    sessionBytes: 0,
    collection: emptySweep(),
    staleUploadsAborted: 0,
  };
}

/**
 * The bucket: expired sessions, stale multipart uploads, then (unless a backup is in progress
 * there) unreferenced packs and blobs. `localRemoved`: the sessions a dry run of the local step
 * would have deleted (this host's local indexes are marked too, see collect.ts).
 */
export async function retainCloud(config: DrConfig, opts: PlaceOptions & { localRemoved?: string[] }): Promise<PlaceReport> {
  const cloud = config.cloud;
  const catalog = SessionCatalog.fromConfig(config);
  if (!cloud || !catalog.cloud) throw new Error('retainCloud needs DR_CLOUD_BUCKET');
  const sessions = await listForRetention(catalog, catalog.cloud, config.retention.cloudDays, opts.now);
  const graceMs = config.retention.collectGraceHours * 3_600_000;
  const writing: string[] = [];
  for (const s of sessions) {
    if (s.status === 'incomplete' && (await cloudSessionInProgress(cloud, [s.session], { graceMs, now: opts.now }))) writing.push(s.session);
  }
  const plan = planRetention(sessions, { maxAgeDays: config.retention.cloudDays, gfs: config.retention.gfs, protect: opts.protect ?? [], writing }, opts.now);
  const report = emptyReport('cloud', opts.dryRun, plan.keep);
  for (const name of plan.remove) {
    for await (const obj of listObjects(cloud, `${cloudKey(cloud, rel.session(name))}/`)) report.sessionBytes += obj.bytes;
    // deleteSession removes the manifest first: a half-deleted session never looks complete.
    if (!opts.dryRun) await catalog.cloud.deleteSession(name);
    report.sessionsDeleted.push(name);
  }
  // A worker killed mid-upload leaves its parts for the retry to resume; after a day nobody will.
  if (!opts.dryRun) report.staleUploadsAborted = await abortStaleUploads(cloud, cloud.prefix ? `${cloud.prefix}/` : '', DAY);
  if (!(opts.collect ?? true)) return report;

  // Only now, after the expired sessions are gone (see collect.ts for why the order matters): a fresh
  // listing, so that a backup that started since the first one is seen.
  const removed = new Set(plan.remove);
  const finished = new Set(sessions.filter((s) => s.status !== 'incomplete').map((s) => s.session));
  const present = (await catalog.cloud.sessionNames()).filter((n) => !removed.has(n));
  const running = await cloudSessionInProgress(
    cloud,
    present.filter((n) => !finished.has(n)),
    { graceMs, now: opts.now },
  );
  if (running) {
    report.collection = { ...emptySweep(), deferred: `backup session ${running} is being written to the bucket: packs are collected by a later run` };
    return report;
  }
  const refs = emptyReferences();
  const scratch = path.join(await ensureScratchRoot(config), scratchFolderName('collect'));
  try {
    await markCloud(cloud, present, removed, scratch, refs, opts.signal);
  } finally {
    await rm(scratch, { recursive: true, force: true }).catch(() => undefined);
  }
  await markLocal(config.backupDir, new Set(opts.localRemoved ?? []), refs);
  report.collection = await sweepCloud(cloud, refs, sweepOptions(config, opts));
  return report;
}

/** Pre-recovery copies past DR_PRE_RECOVERY_RETENTION_DAYS, leftover scratch databases and folders, logs. */
export async function cleanLeftovers(config: DrConfig, opts: { now: Date; dryRun: boolean }): Promise<LeftoversReport> {
  return {
    preRecoveryDropped: await dropPreRecovery(config, undefined, config.retention.preRecoveryDays, opts.now, { dryRun: opts.dryRun }),
    scratchDropped: await sweepScratch(config, { olderThanHours: config.retention.scratchHours, now: opts.now, dryRun: opts.dryRun }),
    logs: await rotateLogs(config.logDir, { keepDays: config.retention.logDays, now: opts.now, dryRun: opts.dryRun }),
  };
}
