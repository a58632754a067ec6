/**
 * retentionWorkflow (ID `retention/<stamp>`; daily by the `odoo-dr/cleanup` schedule; `odoo-dr
 * cleanup`): the retention policy in the local folder, then in the bucket, each followed by the
 * collection of the packs and blobs nothing kept references; then expired pre-recovery copies,
 * leftover scratch databases and old logs. Every step runs even when an earlier one failed (a
 * bucket that is down must not stop the local disk from being freed); one audit line per run.
 */
import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities, LeftoversReport, PlaceReport } from '../activities';
import type { RetentionInput } from './definitions';
import { longActivity, quickActivity, sessionActivity } from './options';

const quick = proxyActivities<Activities>(quickActivity);
const session = proxyActivities<Activities>(sessionActivity);
const long = proxyActivities<Activities>(longActivity);

export interface RetentionReport {
  workflowId: string;
  startedAt: string;
  finishedAt: string;
  dryRun: boolean;
  status: 'ok' | 'failed';
  local: PlaceReport | null;
  /** null: no bucket configured, or `cloud: false`. */
  cloud: PlaceReport | null;
  leftovers: LeftoversReport | null;
  /** Sessions' files, packs, blobs and logs deleted (or, in a dry run, that would be). */
  bytesFreed: number;
  /** Steps that failed, readable. */
  errors: string[];
}

function message(err: unknown): string {
  const e = err as { cause?: { message?: string }; message?: string };
  return e.cause?.message ?? e.message ?? String(err);
}

export async function retentionWorkflow(input: RetentionInput = {}): Promise<RetentionReport> {
  const info = workflowInfo();
  const startedAt = new Date(Date.now()).toISOString();
  const dryRun = input.dryRun ?? false;
  const errors: string[] = [];
  const step = async <T>(what: string, run: () => Promise<T>): Promise<T | null> => {
    try {
      return await run();
    } catch (err) {
      errors.push(`${what}: ${message(err)}`);
      return null;
    }
  };
  const local = await step('local folder', () => session.retainLocalSessions({ dryRun, now: startedAt }));
  const cloud =
    input.cloud === false
      ? null
      : await step('bucket', () =>
          long.retainCloudSessions({ dryRun, now: startedAt, localRemoved: local?.sessionsDeleted ?? [], ...(input.cloud === true ? { required: true } : {}) }),
        );
  const leftovers = await step('leftovers', () => session.cleanRetentionLeftovers({ dryRun, now: startedAt }));
  const placeBytes = (p: PlaceReport | null) => (p ? p.sessionBytes + p.collection.bytesFreed : 0);
  const report: RetentionReport = {
    workflowId: info.workflowId,
    startedAt,
    finishedAt: new Date(Date.now()).toISOString(),
    dryRun,
    status: errors.length ? 'failed' : 'ok',
    local,
    cloud,
    leftovers,
    bytesFreed: placeBytes(local) + placeBytes(cloud) + (leftovers?.logs.bytesFreed ?? 0),
    errors,
  };
  const count = (p: PlaceReport | null) =>
    p
      ? {
          sessions: p.sessionsDeleted.length,
          packs: p.collection.packsDeleted,
          blobs: p.collection.blobsDeleted,
          ...(p.collection.deferred ? { deferred: p.collection.deferred } : {}),
        }
      : null;
  await quick.appendAuditRecord({
    at: report.finishedAt,
    action: dryRun ? 'retention (dry run)' : 'retention',
    startedBy: input.startedBy ?? 'temporal',
    workflowId: info.workflowId,
    result: errors.length ? `failed: ${errors.join('; ')}`.slice(0, 2000) : 'ok',
    local: count(local),
    cloud: count(cloud),
    preRecoveryDropped: leftovers?.preRecoveryDropped.length ?? 0,
    scratchDropped: leftovers?.scratchDropped.length ?? 0,
    logsDeleted: leftovers?.logs.deleted.length ?? 0,
    bytesFreed: report.bytesFreed,
  });
  return report;
}
