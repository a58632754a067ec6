/**
 * The retention a backup applies when it ends (its phase `retention`), so that a site that never
 * applied the schedules does not fill its disk: the policy of src/retention/policy.ts in both
 * places, the local folder's unreferenced packs collected (safe while backups run, see
 * src/retention/collect.ts), expired pre-recovery copies dropped. The bucket's packs are collected by
 * retentionWorkflow (`odoo-dr cleanup`, the daily `odoo-dr/cleanup` schedule) only: a sweep of the
 * bucket is deferred while any backup is being written there, and this one is.
 */
import type { DrConfig } from '../config';
import { dropPreRecovery } from '../recovery/pre-recovery';
import { SessionCatalog } from '../sessions/catalog';
import { retainCloud, retainLocal } from './run';

export interface RetentionResult {
  localDeleted: string[];
  cloudDeleted: string[];
  kept: string[];
  /** Multipart uploads left behind by crashed workers, aborted. */
  staleUploadsAborted: number;
  /** Pre-recovery copies (databases, folders) older than DR_PRE_RECOVERY_RETENTION_DAYS, dropped. */
  preRecoveryDropped: string[];
  /** Local packs and blobs collected, and the bytes they and the deleted sessions freed. */
  packsDeleted?: number;
  blobsDeleted?: number;
  bytesFreed?: number;
}

export async function applyRetention(config: DrConfig, opts: { now: Date; cloud: boolean; protect?: string[] }): Promise<RetentionResult> {
  const local = await retainLocal(config, { now: opts.now, dryRun: false, protect: opts.protect ?? [] });
  const result: RetentionResult = {
    localDeleted: local.sessionsDeleted,
    cloudDeleted: [],
    kept: [],
    staleUploadsAborted: 0,
    preRecoveryDropped: [],
    packsDeleted: local.collection.packsDeleted,
    blobsDeleted: local.collection.blobsDeleted,
    bytesFreed: local.sessionBytes + local.collection.bytesFreed,
  };
  if (opts.cloud && config.cloud) {
    const cloud = await retainCloud(config, { now: opts.now, dryRun: false, protect: opts.protect ?? [], collect: false });
    result.cloudDeleted = cloud.sessionsDeleted;
    result.staleUploadsAborted = cloud.staleUploadsAborted;
  }
  // Recovered tenants' old state: kept for DR_PRE_RECOVERY_RETENTION_DAYS, then dropped (only marked copies).
  result.preRecoveryDropped = await dropPreRecovery(config, undefined, config.retention.preRecoveryDays, opts.now);
  result.kept = await SessionCatalog.fromConfig(config).local.sessionNames();
  return result;
}
