/**
 * Validation activities: thin adapters over src/validate. Long checks heartbeat; a restore test
 * always drops its scratch copy, and the sweep removes what a dead worker left.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { DrConfig } from '../src/config';
import { readIdentity } from '../src/crypto/age';
import { InvalidInputError } from '../src/errors';
import { assertSessionName } from '../src/backup/layout';
import { clientToolsForServer } from '../src/postgres';
import { sweepScratch } from '../src/restore/scratch';
import { SessionCatalog, type SessionResult, type SessionSource } from '../src/sessions/catalog';
import { ensureScratchRoot, removeScratch, scratchFolderName } from '../src/restore/scratch';
import { restoreTestTenant, type RestoreTestResult } from '../src/validate/restore-test';
import { planSessionChecks } from '../src/validate/plan';
import { ageCheck, artifactCheck, dumpIntegrityCheck, filestoreBlobsCheck, type CheckResult } from '../src/validate/session';
import { discoverTenants } from '../src/tenants';
import { drillOutcome, type DrillFacts, type DrillOutcome, type DrillSettings } from '../src/drill/report';
import { fetchTenantFiles } from '../src/validate/cloud';
import { mapped } from './errors';
import { whileHeartbeating } from './heartbeat';

export interface SessionChecksInput {
  session: string;
  tenant?: string;
  /** Where to read the session: `auto` (default) the local copy when this host has it, else the bucket. */
  source?: SessionSource;
  /** Accept an unsigned session (made before signing was set up); reported loudly. */
  allowUnsigned?: boolean;
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
  /** Where the manifest was read from. */
  readFrom?: 'local' | 'cloud';
}

export interface TenantChecksInput {
  session: string;
  tenant: string;
  source?: SessionSource;
  allowUnsigned?: boolean;
  /** The dump only: a restore test that follows reads and verifies every filestore file (and reports `filestore-blobs`). */
  skipFilestore?: boolean;
}

export interface RestoreTestInput {
  session: string;
  tenant: string;
  /** Unique part of the scratch database name (from the workflow). */
  id: string;
  /** Download the tenant's artifacts from the bucket and restore from those, not from local disk. */
  fromCloud?: boolean;
  source?: SessionSource;
  allowUnsigned?: boolean;
  /** Report the `filestore-blobs` check from the filestore restore (checkTenantArchives skipped it). */
  filestoreBlobsCheck?: boolean;
  /** Report the `dump-integrity` check from the database restore (checkTenantArchives was not run). */
  dumpIntegrityCheck?: boolean;
}

export interface DrillReportInput {
  facts: DrillFacts;
  settings: DrillSettings;
}

export interface SaveReportInput {
  kind: 'validation' | 'drill';
  name: string;
  report: unknown;
  /** Kept with the session too (both places), so that `latest` means the same after the host is gone. */
  result?: SessionResult;
}

export function createValidationActivities(config: DrConfig, secrets: Array<string | undefined>) {
  const identity = async () => {
    if (!config.encryption.identityFile) {
      throw new InvalidInputError('DR_ENCRYPTION_KEY_FILE is not set: the private identity is needed to validate and restore');
    }
    return readIdentity(config.encryption.identityFile);
  };
  const catalog = SessionCatalog.fromConfig(config);
  const permissive = SessionCatalog.fromConfig(config, { allowUnsigned: true });
  /** `--allow-unsigned` (sessions made before signing) is the caller's explicit, reported choice. */
  const catalogFor = (input: { allowUnsigned?: boolean }) => (input.allowUnsigned ? permissive : catalog);
  const open = (session: string, source: SessionSource | undefined, allowUnsigned?: boolean) => catalogFor({ allowUnsigned }).open(session, source ?? 'auto');
  const scratchDir = async (purpose: string) => path.join(await ensureScratchRoot(config), scratchFolderName(purpose));
  const beat = (details: unknown) => Context.current().heartbeat(details);

  return {
    /** `latest` (or nothing) → the newest complete session that did not fail validation; a name is checked. */
    resolveBackupSession: mapped(secrets, async (input: { session?: string; source?: SessionSource; allowUnsigned?: boolean }): Promise<string> => {
      // A named session is only checked for shape here: what is wrong with it is the checks' to report.
      if (input.session && input.session !== 'latest') {
        assertSessionName(input.session);
        return input.session;
      }
      return (await catalogFor(input).resolve('latest', input.source ?? 'auto')).session;
    }),

    /** Manifest, every artifact's size and SHA-256 where the session is read (and in the bucket), age against the RPO. */
    checkBackupSession: mapped(secrets, async (input: SessionChecksInput): Promise<SessionChecksResult> =>
      whileHeartbeating(async () => {
        let opened;
        try {
          opened = await open(input.session, input.source, input.allowUnsigned);
        } catch (err) {
          const e = err as Error;
          return {
            checks: [
              {
                name: 'manifest',
                status: 'fail',
                artifact: `sessions/${input.session}/manifest.json`,
                message: `${e.name === 'Error' ? '' : `${e.name}: `}${e.message}`,
              },
            ],
            tenants: [],
            manifestOk: false,
            sessionCloud: false,
          };
        }
        const { manifest, store } = opened;
        const checks: CheckResult[] = [
          {
            name: 'manifest',
            status: manifest.status === 'complete' && opened.signedBy ? 'pass' : 'warn',
            artifact: `sessions/${input.session}/manifest.json`,
            message:
              `manifest version ${manifest.version} read from ${store.description}, ` +
              `${opened.signedBy ? `signature by ${opened.signedBy} verified` : 'NOT SIGNED (accepted because of --allow-unsigned)'}, checksum verified, session ${manifest.status}`,
          },
        ];
        const base = { manifestOk: true, sessionCloud: manifest.cloud !== null, readFrom: store.location };
        const plan = planSessionChecks(manifest, input, { readFrom: store.location, bucket: catalog.cloud !== undefined });
        for (const planned of plan.checks) {
          if (planned.kind === 'verdict') checks.push(planned.result);
          else if (planned.kind === 'age') checks.push(ageCheck(config, input.session, new Date()));
          else checks.push(await artifactCheck(planned.copy === 'cloud' ? catalog.cloud! : store, planned.artifact, planned.tenant));
        }
        return { ...base, checks, tenants: plan.tenants };
      }),
    ),

    /** Decryption and archive integrity of the dump; every filestore blob decrypted and verified. */
    checkTenantArchives: mapped(secrets, async (input: TenantChecksInput): Promise<CheckResult[]> => {
      const { manifest, store } = await open(input.session, input.source, input.allowUnsigned);
      const entry = manifest.tenants[input.tenant];
      if (!entry?.database || !entry.filestore) {
        return [{ name: 'tenant', status: 'fail', tenant: input.tenant, message: `tenant ${input.tenant} has no complete backup in ${input.session}` }];
      }
      const key = await identity();
      const tools = await clientToolsForServer(config.postgres);
      const signal = Context.current().cancellationSignal;
      // Downloads from the bucket go to a scratch folder of this attempt alone, removed at the end.
      const scratch = await scratchDir(`check-${input.tenant}`);
      try {
        const database = entry.database;
        const index = entry.filestore.index;
        // Fetching and reading a big dump takes minutes: heartbeat meanwhile (a dead worker is noticed, a live one is not killed).
        const checks = [
          await whileHeartbeating(
            () => dumpIntegrityCheck(tools, key, database, () => store.fetchArtifact(database, scratch, signal), input.tenant, signal),
            () => ({ phase: 'dump' }),
          ),
        ];
        if (input.skipFilestore) return checks;
        checks.push(
          await filestoreBlobsCheck(
            key,
            index,
            {
              index: () => store.fetchArtifact(index, scratch, signal),
              blob: async (sha1) => {
                const got = await store.blobFile(sha1, scratch, signal);
                if (!got) return undefined;
                return { file: got.file, done: store.location === 'local' ? () => Promise.resolve() : () => rm(got.file, { force: true }) };
              },
              pack: async (id, bytes) => {
                const got = await store.packFile(id, bytes, scratch, signal);
                if (!got) return undefined;
                return { file: got.file, done: store.location === 'local' ? () => Promise.resolve() : () => rm(got.file, { force: true }) };
              },
            },
            input.tenant,
            { signal, onProgress: (n) => beat({ phase: 'filestore', files: n }) },
          ),
        );
        return checks;
      } finally {
        await removeScratch(scratch);
      }
    }),

    /** Restores the tenant into a neutralized scratch copy, runs the Odoo checks, drops the copy. */
    restoreTestTenant: mapped(secrets, async (input: RestoreTestInput): Promise<RestoreTestResult> => {
      const signal = Context.current().cancellationSignal;
      const onProgress = (phase: string) => beat({ phase });
      // fromCloud: a mirror of the session's layout, filled from the bucket only: proves the cloud copy alone restores.
      const { manifest, store } = await open(input.session, input.fromCloud ? 'cloud' : input.source, input.allowUnsigned);
      const mirror = await scratchDir(`restore-test-${input.id}`);
      try {
        onProgress('download');
        const files = await fetchTenantFiles({
          store,
          manifest,
          tenant: input.tenant,
          mirror,
          signal,
          onProgress: (n) => beat({ phase: 'download', blobs: n }),
        });
        return await restoreTestTenant({
          config,
          backupRoot: files.root,
          manifest,
          tenant: input.tenant,
          identity: await identity(),
          id: input.id,
          signal,
          onProgress,
          ...(input.filestoreBlobsCheck ? { filestoreBlobsCheck: true } : {}),
          ...(input.dumpIntegrityCheck ? { dumpIntegrityCheck: true } : {}),
        });
      } finally {
        await removeScratch(mirror);
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

    /** The drill's verdict from what it observed (pure: the drill runs it as a local activity). */
    drillReport: mapped(secrets, (input: DrillReportInput): Promise<DrillOutcome> => Promise.resolve(drillOutcome(input.facts, input.settings))),

    /** Current size of the fleet to recover: database sizes now, filestore sizes of the session. */
    fleetSize: mapped(
      secrets,
      async (input: { session: string; source?: SessionSource; allowUnsigned?: boolean }): Promise<{ tenants: number; bytes: number }> => {
        const { manifest } = await open(input.session, input.source, input.allowUnsigned);
        const discovered = await discoverTenants(config);
        let bytes = 0;
        const names = new Set([...discovered.tenants.map((t) => t.name), ...Object.keys(manifest.tenants)]);
        for (const name of names) {
          bytes += discovered.tenants.find((t) => t.name === name)?.databaseBytes ?? 0;
          bytes += manifest.tenants[name]?.filestore?.bytes ?? 0;
        }
        return { tenants: names.size, bytes };
      },
    ),

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
      if (input.result) await catalog.saveResult(input.result);
      return file;
    }),
  };
}
