/**
 * Backup activities: thin adapters over src/backup. Long ones heartbeat their progress; the
 * upload resumes from its last heartbeat after a worker crash. A tenant's own work is in
 * backup-tenant.ts.
 */
import { readFile } from 'node:fs/promises';
import { activityInfo, ApplicationFailure, Context } from '@temporalio/activity';
import { appendAudit, type AuditRecord } from '../src/audit';
import { archiveConfiguration, dumpGlobals } from '../src/backup/cluster';
import { assertSessionName, assertTenantName, localPath, rel } from '../src/backup/layout';
import type { Artifact, Manifest, TenantEntry } from '../src/backup/manifest';
import { applyRetention, type RetentionResult } from '../src/retention/after-backup';
import { finalizeSession, prepareSession, type FinalizeRequest, type PreparedSession } from '../src/backup/session';
import type { DrConfig } from '../src/config';
import { InvalidInputError, SupersededError } from '../src/errors';
import { configNotifier, type Alert, type AlertDelivery } from '../src/notify';
import { SessionCatalog } from '../src/sessions/catalog';
import {
  createTenantBackup,
  tenantEntryRel,
  type BackupTestHooks,
  type TenantBackupDone,
  type TenantBackupProgress,
  type TenantBackupTask,
  type TenantBatchOutcome,
  type TenantsBackupDone,
  type TenantsBackupProgress,
  type TenantsBackupTask,
  type TenantTaskInput,
} from './backup-tenant';
import { mapped, toFailure } from './errors';
import { asPartOfActivity, whileHeartbeating } from './heartbeat';

export interface PrepareBackupInput {
  session: string;
  /** Copy to the bucket; default (undefined): whenever DR_CLOUD_BUCKET is set. */
  cloud?: boolean;
  workflowId: string;
}

export interface FilestoreInput extends TenantTaskInput {
  cloud: boolean;
}

export interface UploadArtifactInput {
  artifact: Artifact;
}

export interface SessionTaskInput {
  session: string;
  recipients: string[];
}

export interface RecordTenantInput {
  session: string;
  tenant: string;
  entry: TenantEntry;
}

export interface FinalizeInput extends Omit<FinalizeRequest, 'tenants'> {
  /** Tenants and their status; entries of complete tenants are read from the session folder. */
  tenants: Record<string, { status: 'complete' | 'failed'; error?: string; durationMs: number }>;
}

export interface ManifestSummary {
  session: string;
  status: Manifest['status'];
  manifestPath: string;
  tenants: Record<string, { status: 'complete' | 'failed'; error?: string }>;
  warnings: string[];
}

export function createBackupActivities(config: DrConfig, secrets: Array<string | undefined>, hooks: BackupTestHooks = {}, workerQueue?: string) {
  const catalog = SessionCatalog.fromConfig(config);
  const { clientTools, upload, tenantEntryPath, backupOneTenant, discardTenant } = createTenantBackup(config, catalog, hooks);
  const notifier = configNotifier(config);

  return {
    /** Creates the session folder; fails early on what would fail every tenant (tools, keys, server). */
    prepareBackupSession: mapped(secrets, async (input: PrepareBackupInput): Promise<PreparedSession & { workerQueue?: string }> => {
      assertSessionName(input.session);
      if (input.cloud && !config.cloud) {
        throw new InvalidInputError('a cloud copy was requested but DR_CLOUD_BUCKET is not set');
      }
      // Started with {} (Temporal UI, `temporal` CLI, a schedule): the bucket whenever it is configured.
      const cloud = input.cloud ?? config.cloud !== undefined;
      const { tools: _tools, ...prepared } = await prepareSession(config, input.session, { cloud, workflowId: input.workflowId });
      // Without a cloud copy the session lives on this worker's disk: the workflow pins the rest here.
      return { ...prepared, ...(workerQueue ? { workerQueue } : {}) };
    }),

    /**
     * One tenant, whole, in one activity so that no local file crosses workers: the dump (with the
     * Odoo facts of its snapshot), the filestore blobs, the cloud copies, and the tenant's manifest
     * entry (kept beside its artifacts, locally and in the bucket, where the finalizer reads it).
     * A retry on the same host keeps a dump whose bytes still verify and resumes its multipart
     * upload; on another host it starts the tenant over.
     */
    backupTenant: mapped(secrets, async (input: TenantBackupTask): Promise<TenantBackupDone> => {
      assertSessionName(input.session);
      assertTenantName(input.tenant);
      if (input.cloud && !config.cloud) throw new InvalidInputError('a cloud copy was requested but DR_CLOUD_BUCKET is not set');
      try {
        return await backupOneTenant(input);
      } catch (err) {
        // A permanent failure is not retried: what this tenant left in the session goes now.
        await discardTenant(input.session, input.tenant, err);
        throw err;
      }
    }),

    /**
     * Several small tenants, one after the other, each exactly as backupTenant does it (its own
     * heartbeats and resume point, inside this activity's). A tenant's failure is recorded and the
     * next one goes on; the workflow retries a transiently failed tenant alone. Each finished tenant
     * is in the heartbeat details: a retry of the activity (a dead worker) skips those and resumes
     * the one in progress where backupTenant would. An attempt that finds itself superseded by its
     * retry (each tenant's fence, see takeFence) stops at once.
     */
    backupTenants: mapped(secrets, async (input: TenantsBackupTask): Promise<TenantsBackupDone> => {
      assertSessionName(input.session);
      for (const tenant of input.tenants) assertTenantName(tenant);
      if (input.cloud && !config.cloud) throw new InvalidInputError('a cloud copy was requested but DR_CLOUD_BUCKET is not set');
      const resume = activityInfo().heartbeatDetails as TenantsBackupProgress | undefined;
      const done: Record<string, TenantBatchOutcome> = { ...resume?.done };
      const signal = Context.current().cancellationSignal;
      for (const tenant of input.tenants) {
        if (done[tenant]) continue;
        signal.throwIfAborted();
        const task: TenantBackupTask = { session: input.session, tenant, recipients: input.recipients, cloud: input.cloud };
        const resumeAt = resume?.current?.tenant === tenant ? resume.current.progress : undefined;
        try {
          const result = await asPartOfActivity(
            resumeAt,
            (progress) => ({ done, current: { tenant, progress: progress as TenantBackupProgress } }) satisfies TenantsBackupProgress,
            () => backupOneTenant(task),
          );
          done[tenant] = { status: 'complete', done: result };
        } catch (err) {
          // Cancelled, or superseded (this attempt timed out and its retry took the tenant over):
          // the attempt stops here, touching no further tenant (the retry does them).
          if (signal.aborted || err instanceof SupersededError) throw err;
          await discardTenant(input.session, tenant, err);
          const failure = toFailure(err, secrets);
          const typed = failure instanceof ApplicationFailure ? failure : undefined;
          done[tenant] = {
            status: 'failed',
            error: typed?.type ? `${typed.type}: ${typed.message}` : failure.message,
            retryable: !typed?.nonRetryable,
          };
        }
        Context.current().heartbeat({ done } satisfies TenantsBackupProgress);
      }
      return { tenants: Object.fromEntries(input.tenants.map((t) => [t, done[t]!])) };
    }),

    /** pg_dumpall --globals-only, encrypted, and its cloud copy (with `cloud`), in one activity. */
    backupClusterGlobals: mapped(secrets, async (input: SessionTaskInput & { cloud?: boolean }) => {
      assertSessionName(input.session);
      const tools = await clientTools();
      const artifact = (
        await dumpGlobals({ config, tools, session: input.session, recipients: input.recipients, signal: Context.current().cancellationSignal })
      ).artifact;
      if (input.cloud) await upload(artifact);
      return artifact;
    }),

    /** The DR_CONFIG_PATHS archive, encrypted, and its cloud copy (with `cloud`), in one activity. */
    backupConfiguration: mapped(secrets, async (input: SessionTaskInput & { cloud?: boolean }) => {
      assertSessionName(input.session);
      const archived = await archiveConfiguration({
        config,
        session: input.session,
        recipients: input.recipients,
        signal: Context.current().cancellationSignal,
      });
      if (input.cloud && archived.artifact) await upload(archived.artifact);
      return archived;
    }),

    /** Verifies every artifact (local and cloud), writes the manifest last, uploads it last. */
    finalizeBackupSession: mapped(secrets, async (input: FinalizeInput): Promise<ManifestSummary> =>
      whileHeartbeating(async () => {
        assertSessionName(input.session);
        const entryOf = async (tenant: string, s: FinalizeInput['tenants'][string]): Promise<TenantEntry> => {
          if (s.status !== 'complete') return { status: 'failed', ...(s.error ? { error: s.error } : {}), durationMs: s.durationMs };
          // This host's copy, else the bucket's (the tenant may have been backed up by another worker).
          const local = await readFile(tenantEntryPath(input.session, tenant), 'utf8').catch(() => undefined);
          const entry =
            local !== undefined
              ? (JSON.parse(local) as TenantEntry)
              : ((await catalog.cloud?.getDocument(tenantEntryRel(input.session, tenant))) as TenantEntry | undefined);
          return (
            entry ?? {
              status: 'failed',
              error: `its manifest entry is neither in ${config.backupDir} nor in the bucket: without a cloud copy, a session lives on one disk (run one worker, or share DR_BACKUP_DIR between workers)`,
              durationMs: s.durationMs,
            }
          );
        };
        // Read several at once (small files, or small objects from the bucket), kept in the input's order.
        const listed = Object.entries(input.tenants);
        const read: TenantEntry[] = new Array<TenantEntry>(listed.length);
        let next = 0;
        await Promise.all(
          Array.from({ length: Math.min(8, listed.length) }, async () => {
            for (let i = next++; i < listed.length; i = next++) read[i] = await entryOf(listed[i]![0], listed[i]![1]);
          }),
        );
        const tenants: Record<string, TenantEntry> = Object.fromEntries(listed.map(([tenant], i) => [tenant, read[i]!]));
        const { manifest, localCopy, kept } = await finalizeSession(config, { ...input, tenants });
        return {
          session: manifest.session,
          status: manifest.status,
          manifestPath: !kept
            ? '(none: nothing was backed up, the session was removed)'
            : localCopy
              ? localPath(config.backupDir, rel.manifest(manifest.session))
              : `${catalog.cloud!.description}/${rel.manifest(manifest.session)}`,
          tenants: Object.fromEntries(Object.entries(manifest.tenants).map(([k, v]) => [k, { status: v.status, ...(v.error ? { error: v.error } : {}) }])),
          warnings: manifest.warnings,
        };
      }),
    ),

    applyBackupRetention: mapped(secrets, async (input: { protect: string[]; cloud: boolean }): Promise<RetentionResult> =>
      whileHeartbeating(() => applyRetention(config, { now: new Date(), cloud: input.cloud, protect: input.protect })),
    ),

    appendAuditRecord: mapped(secrets, async (record: AuditRecord): Promise<void> => appendAudit(config, record)),

    sendAlert: mapped(secrets, async (alert: Alert): Promise<AlertDelivery> => notifier.send(alert)),
  };
}
