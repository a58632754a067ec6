/**
 * Validation activities: thin adapters over src/validate. Long checks heartbeat; a restore test
 * always drops its scratch copy, and the sweep removes what a dead worker left.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { localPath, rel } from '../src/backup/layout';
import type { DrConfig } from '../src/config';
import { readIdentity } from '../src/crypto/age';
import { InvalidInputError } from '../src/errors';
import { findClientTools } from '../src/pgtools';
import { serverVersion } from '../src/postgres';
import { sweepScratch } from '../src/restore/scratch';
import { restoreTestTenant, type RestoreTestResult } from '../src/validate/restore-test';
import {
  ageCheck,
  artifactsOf,
  cloudArtifactCheck,
  dumpIntegrityCheck,
  filestoreBlobsCheck,
  localArtifactCheck,
  manifestCheck,
  resolveSession,
  type CheckResult,
} from '../src/validate/session';
import { readManifest } from '../src/backup/manifest';
import { discoverTenants } from '../src/tenants';
import { fetchTenantFromCloud } from '../src/validate/cloud';
import { mapped } from './errors';

export interface SessionChecksInput {
  session: string;
  tenant?: string;
  /** Also check the cloud copy of every artifact (default: when the session was copied and a bucket is configured). */
  cloud?: boolean;
}

export interface SessionChecksResult {
  checks: CheckResult[];
  /** Tenants of the session that can be checked further (complete in the manifest). */
  tenants: string[];
  /** Whether the manifest was readable (later checks need it). */
  manifestOk: boolean;
  sessionCloud: boolean;
}

export interface TenantChecksInput {
  session: string;
  tenant: string;
}

export interface RestoreTestInput {
  session: string;
  tenant: string;
  /** Unique part of the scratch database name (from the workflow). */
  id: string;
  /** Download the tenant's artifacts from the bucket and restore from those, not from local disk. */
  fromCloud?: boolean;
}

export interface SaveReportInput {
  kind: 'validation' | 'drill';
  name: string;
  report: unknown;
}

export function createValidationActivities(config: DrConfig, secrets: Array<string | undefined>) {
  const identity = async () => {
    if (!config.encryption.identityFile) {
      throw new InvalidInputError('DR_ENCRYPTION_KEY_FILE is not set: the private identity is needed to validate and restore');
    }
    return readIdentity(config.encryption.identityFile);
  };
  const manifestOf = (session: string) => readManifest(localPath(config.backupDir, rel.manifest(session)));

  return {
    /** `latest` (or nothing) → the newest complete session; a name is checked for shape. */
    resolveBackupSession: mapped(secrets, async (input: { session?: string }): Promise<string> => resolveSession(config, input.session)),

    /** Manifest, every artifact's size and SHA-256 locally (and in the bucket), age against the RPO. */
    checkBackupSession: mapped(secrets, async (input: SessionChecksInput): Promise<SessionChecksResult> => {
      const { check, manifest } = await manifestCheck(config, input.session);
      const checks: CheckResult[] = [check];
      if (!manifest) return { checks, tenants: [], manifestOk: false, sessionCloud: false };
      if (input.tenant && !manifest.tenants[input.tenant]) {
        checks.push({ name: 'tenant', status: 'fail', tenant: input.tenant, message: `tenant ${input.tenant} is not in session ${input.session}` });
        return { checks, tenants: [], manifestOk: true, sessionCloud: manifest.cloud !== null };
      }
      for (const [name, entry] of Object.entries(manifest.tenants)) {
        if (input.tenant && name !== input.tenant) continue;
        if (entry.status !== 'complete') checks.push({ name: 'tenant', status: 'fail', tenant: name, message: `tenant ${name} failed in this session: ${entry.error ?? 'no detail'}` });
      }
      const cloud = input.cloud ?? (manifest.cloud !== null && config.cloud !== undefined);
      for (const { artifact, tenant } of artifactsOf(manifest, input.tenant)) {
        Context.current().heartbeat({ artifact: artifact.path });
        checks.push(await localArtifactCheck(config, artifact, tenant));
        if (cloud) {
          checks.push(
            manifest.cloud
              ? await cloudArtifactCheck(config, artifact, tenant)
              : { name: 'artifact-cloud', status: 'fail', artifact: artifact.path, ...(tenant ? { tenant } : {}), message: 'this session was not copied to the bucket' },
          );
        }
      }
      checks.push(ageCheck(config, input.session, new Date()));
      const tenants = Object.entries(manifest.tenants)
        .filter(([name, e]) => e.status === 'complete' && (!input.tenant || name === input.tenant))
        .map(([name]) => name);
      return { checks, tenants, manifestOk: true, sessionCloud: manifest.cloud !== null };
    }),

    /** Decryption and archive integrity of the dump; every filestore blob decrypted and verified. */
    checkTenantArchives: mapped(secrets, async (input: TenantChecksInput): Promise<CheckResult[]> => {
      const manifest = await manifestOf(input.session);
      const entry = manifest.tenants[input.tenant];
      if (!entry?.database || !entry.filestore) {
        return [{ name: 'tenant', status: 'fail', tenant: input.tenant, message: `tenant ${input.tenant} has no complete backup in ${input.session}` }];
      }
      const key = await identity();
      const server = await serverVersion(config.postgres).catch(() => ({ major: 15 }));
      const tools = await findClientTools(server.major, config.postgres.binDir ? { binDir: config.postgres.binDir } : {});
      const signal = Context.current().cancellationSignal;
      const checks = [await dumpIntegrityCheck(config, tools, key, entry.database, input.tenant, signal)];
      checks.push(
        await filestoreBlobsCheck(config, key, entry.filestore.index, input.tenant, {
          signal,
          onProgress: (n) => Context.current().heartbeat({ phase: 'filestore', files: n }),
        }),
      );
      return checks;
    }),

    /** Restores the tenant into a neutralized scratch copy, runs the Odoo checks, drops the copy. */
    restoreTestTenant: mapped(secrets, async (input: RestoreTestInput): Promise<RestoreTestResult> => {
      const signal = Context.current().cancellationSignal;
      const onProgress = (phase: string) => Context.current().heartbeat({ phase });
      if (!input.fromCloud) {
        const manifest = await manifestOf(input.session);
        return restoreTestTenant({ config, manifest, tenant: input.tenant, identity: await identity(), id: input.id, signal, onProgress });
      }
      // A mirror of the session's layout, filled from the bucket only: proves the cloud copy alone restores.
      const mirror = path.join(config.backupDir, 'scratch', `cloud-${input.id}`);
      try {
        onProgress('download');
        const manifest = await fetchTenantFromCloud(config, input.session, input.tenant, mirror, signal);
        const mirrored: DrConfig = { ...config, backupDir: mirror, sessionsDir: path.join(mirror, 'sessions') };
        return await restoreTestTenant({ config: mirrored, manifest, tenant: input.tenant, identity: await identity(), id: input.id, signal, onProgress });
      } finally {
        await rm(mirror, { recursive: true, force: true });
      }
    }),

    /** Objectives and parallelism a drill measures against. */
    drillSettings: mapped(secrets, (_: Record<string, never>) =>
      Promise.resolve({
        rpoHours: config.objectives.rpoHours,
        rtoMinutes: config.objectives.rtoMinutes,
        maxParallel: config.performance.maxParallelBackups,
      }),
    ),

    /** Current size of the fleet to recover: database sizes now, filestore sizes of the session. */
    fleetSize: mapped(secrets, async (input: { session: string }): Promise<{ tenants: number; bytes: number }> => {
      const manifest = await manifestOf(input.session);
      const discovered = await discoverTenants(config);
      let bytes = 0;
      const names = new Set([...discovered.tenants.map((t) => t.name), ...Object.keys(manifest.tenants)]);
      for (const name of names) {
        bytes += discovered.tenants.find((t) => t.name === name)?.databaseBytes ?? 0;
        bytes += manifest.tenants[name]?.filestore?.bytes ?? 0;
      }
      return { tenants: names.size, bytes };
    }),

    /** Drops scratch databases and folders left by restore tests older than DR_TEST_RETENTION_HOURS. */
    sweepScratchCopies: mapped(secrets, async (input: { olderThanHours?: number }): Promise<string[]> =>
      sweepScratch(config, { olderThanHours: input.olderThanHours ?? config.retention.scratchHours, now: new Date() }),
    ),

    /** Keeps a report as JSON under DR_LOG_DIR; returns its path. */
    saveReport: mapped(secrets, async (input: SaveReportInput): Promise<string> => {
      await mkdir(config.logDir, { recursive: true });
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      const file = path.join(config.logDir, `${input.kind}-${input.name}-${stamp}.json`);
      await writeFile(file, `${JSON.stringify(input.report, null, 2)}\n`, { mode: 0o640 });
      return file;
    }),
  };
}
