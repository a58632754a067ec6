/**
 * Backup activities: thin adapters over src/backup. Long ones heartbeat their progress; the
 * upload resumes from its last heartbeat after a worker crash.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { activityInfo, Context } from '@temporalio/activity';
import { appendAudit, type AuditRecord } from '../src/audit';
import { archiveConfiguration, dumpGlobals } from '../src/backup/cluster';
import { dumpDatabase } from '../src/backup/database';
import { backupFilestore, type FilestoreResult } from '../src/backup/filestore';
import { assertSessionName, assertTenantName, localPath, rel } from '../src/backup/layout';
import type { Artifact, Manifest, TenantEntry } from '../src/backup/manifest';
import { applyRetention, type RetentionResult } from '../src/backup/retention';
import { finalizeSession, prepareSession, type FinalizeRequest, type PreparedSession } from '../src/backup/session';
import type { DrConfig } from '../src/config';
import { InvalidInputError } from '../src/errors';
import { sendAlert, type Alert, type AlertDelivery } from '../src/notify';
import type { OdooFacts } from '../src/odoo/facts';
import { findClientTools } from '../src/pgtools';
import { serverVersion } from '../src/postgres';
import { cloudKey, uploadFile, type UploadProgress, type UploadResult } from '../src/storage/s3';
import { mapped } from './errors';

/** Heartbeats at most every `ms` (progress callbacks can fire thousands of times a second). */
function throttledHeartbeat(ms = 2_000): (details: unknown) => void {
  let last = 0;
  return (details) => {
    const now = Date.now();
    if (now - last >= ms) {
      last = now;
      Context.current().heartbeat(details);
    }
  };
}

export interface PrepareBackupInput {
  session: string;
  cloud: boolean;
  workflowId: string;
}

export interface TenantTaskInput {
  session: string;
  tenant: string;
  recipients: string[];
}

export interface DumpDatabaseResult {
  artifact: Artifact & { pgDump: string };
  facts: OdooFacts;
  durationMs: number;
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

export function createBackupActivities(config: DrConfig, secrets: Array<string | undefined>) {
  const tenantEntryPath = (session: string, tenant: string) =>
    path.join(localPath(config.backupDir, rel.tenantDir(session, tenant)), 'entry.json');

  return {
    /** Creates the session folder; fails early on what would fail every tenant (tools, keys, server). */
    prepareBackupSession: mapped(secrets, async (input: PrepareBackupInput): Promise<PreparedSession> => {
      assertSessionName(input.session);
      if (input.cloud && !config.cloud) {
        throw new InvalidInputError('a cloud copy was requested but DR_CLOUD_BUCKET is not set');
      }
      const { tools: _tools, ...prepared } = await prepareSession(config, input.session, input);
      return prepared;
    }),

    /** pg_dump | zstd | age into the session folder, with the Odoo facts of the same snapshot. */
    backupTenantDatabase: mapped(secrets, async (input: TenantTaskInput): Promise<DumpDatabaseResult> => {
      assertSessionName(input.session);
      assertTenantName(input.tenant);
      const server = await serverVersion(config.postgres);
      const tools = await findClientTools(server.major, config.postgres.binDir ? { binDir: config.postgres.binDir } : {});
      const beat = throttledHeartbeat();
      return dumpDatabase({
        config,
        tools,
        session: input.session,
        tenant: input.tenant,
        recipients: input.recipients,
        signal: Context.current().cancellationSignal,
        onProgress: (bytes) => beat({ phase: 'dump', bytes }),
      });
    }),

    /** Content-addressed filestore backup (and blob upload when `cloud`). Idempotent. */
    backupTenantFilestore: mapped(secrets, async (input: FilestoreInput): Promise<FilestoreResult> => {
      assertSessionName(input.session);
      assertTenantName(input.tenant);
      const beat = throttledHeartbeat();
      return backupFilestore({
        config,
        session: input.session,
        tenant: input.tenant,
        recipients: input.recipients,
        cloud: input.cloud,
        signal: Context.current().cancellationSignal,
        onProgress: (p) => beat({ phase: 'filestore', ...p }),
      });
    }),

    /**
     * Uploads one session artifact to the bucket (multipart, bounded memory). After a worker crash
     * the retry continues the same multipart upload from the last heartbeat's parts.
     */
    uploadArtifact: mapped(secrets, async ({ artifact }: UploadArtifactInput): Promise<UploadResult> => {
      if (!config.cloud) throw new InvalidInputError('uploadArtifact needs DR_CLOUD_BUCKET');
      const resume = activityInfo().heartbeatDetails as UploadProgress | undefined;
      return uploadFile({
        cloud: config.cloud,
        key: cloudKey(config.cloud, artifact.path),
        file: localPath(config.backupDir, artifact.path),
        expectedBytes: artifact.bytes,
        expectedSha256: artifact.sha256,
        ...(resume?.uploadId ? { resume } : {}),
        // Every part: the resume point must be as fresh as possible.
        onProgress: (p) => Context.current().heartbeat(p),
        signal: Context.current().cancellationSignal,
      });
    }),

    backupClusterGlobals: mapped(secrets, async (input: SessionTaskInput) => {
      assertSessionName(input.session);
      const server = await serverVersion(config.postgres);
      const tools = await findClientTools(server.major, config.postgres.binDir ? { binDir: config.postgres.binDir } : {});
      return (await dumpGlobals({ config, tools, session: input.session, recipients: input.recipients, signal: Context.current().cancellationSignal })).artifact;
    }),

    backupConfiguration: mapped(secrets, async (input: SessionTaskInput) => {
      assertSessionName(input.session);
      return archiveConfiguration({ config, session: input.session, recipients: input.recipients, signal: Context.current().cancellationSignal });
    }),

    /** Stores a tenant's manifest entry in the session folder (keeps big facts out of the parent's history). */
    recordTenantEntry: mapped(secrets, async (input: RecordTenantInput): Promise<void> => {
      assertSessionName(input.session);
      assertTenantName(input.tenant);
      const file = tenantEntryPath(input.session, input.tenant);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, JSON.stringify(input.entry));
    }),

    /** Verifies every artifact (local and cloud), writes the manifest last, uploads it last. */
    finalizeBackupSession: mapped(secrets, async (input: FinalizeInput): Promise<ManifestSummary> => {
      assertSessionName(input.session);
      const tenants: Record<string, TenantEntry> = {};
      for (const [tenant, s] of Object.entries(input.tenants)) {
        if (s.status === 'complete') {
          tenants[tenant] = JSON.parse(await readFile(tenantEntryPath(input.session, tenant), 'utf8')) as TenantEntry;
        } else {
          tenants[tenant] = { status: 'failed', ...(s.error ? { error: s.error } : {}), durationMs: s.durationMs };
        }
      }
      const manifest = await finalizeSession(config, { ...input, tenants });
      return {
        session: manifest.session,
        status: manifest.status,
        manifestPath: localPath(config.backupDir, rel.manifest(manifest.session)),
        tenants: Object.fromEntries(
          Object.entries(manifest.tenants).map(([k, v]) => [k, { status: v.status, ...(v.error ? { error: v.error } : {}) }]),
        ),
        warnings: manifest.warnings,
      };
    }),

    applyBackupRetention: mapped(secrets, async (input: { protect: string[]; cloud: boolean }): Promise<RetentionResult> => {
      return applyRetention(config, { now: new Date(), cloud: input.cloud, protect: input.protect });
    }),

    appendAuditRecord: mapped(secrets, async (record: AuditRecord): Promise<void> => appendAudit(config, record)),

    sendAlert: mapped(secrets, async (alert: Alert): Promise<AlertDelivery> => sendAlert(config, alert)),
  };
}
