/**
 * One tenant's backup, as backupTenant and backupTenants run it: the dump, the filestore packs, the
 * cloud copies and the tenant's manifest entry, under a fence that stops a superseded attempt.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { activityInfo, Context } from '@temporalio/activity';
import { dumpDatabase } from '../src/backup/database';
import { backupFilestore, type FilestoreResult } from '../src/backup/filestore';
import { previousFilestoreIndex } from '../src/backup/reuse';
import { ensureScratchRoot, scratchFolderName } from '../src/restore/scratch';
import { localPath, rel } from '../src/backup/layout';
import type { Artifact, TenantEntry } from '../src/backup/manifest';
import type { DrConfig } from '../src/config';
import { DrError, SupersededError } from '../src/errors';
import type { OdooFacts } from '../src/odoo/facts';
import { findClientToolsCached } from '../src/pgtools';
import { serverVersion } from '../src/postgres';
import { cloudKey, uploadFile, type UploadProgress, type UploadResult } from '../src/storage/s3';
import { hashFile } from '../src/pipeline';
import type { SessionCatalog } from '../src/sessions/catalog';

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

export interface TenantBackupTask extends TenantTaskInput {
  cloud: boolean;
}

/** Heartbeat details of backupTenant: where a retry on the same host can resume. */
export interface TenantBackupProgress {
  phase: 'dump' | 'filestore' | 'upload' | 'entry';
  dump?: DumpDatabaseResult;
  upload?: UploadProgress;
  bytes?: number;
  files?: number;
  /** The filestore index this attempt has written so far (every file in it is in a stored pack). */
  partialIndex?: string;
}

export interface TenantBackupDone {
  entry: Pick<TenantEntry, 'status' | 'durationMs'>;
  databaseBytes: number;
  filestore: Omit<FilestoreResult, 'index'>;
  /** The dump's upload (cloud copy), for the record: resumed after a crash, parts reused. */
  upload?: Pick<UploadResult, 'resumed' | 'partsReused' | 'uploadId'>;
}

/** Several small tenants in one activity (backupTenants). */
export interface TenantsBackupTask {
  session: string;
  tenants: string[];
  recipients: string[];
  cloud: boolean;
}

/** One tenant of a batch: done, or failed (`retryable`: a transient error, worth another attempt alone). */
export type TenantBatchOutcome = { status: 'complete'; done: TenantBackupDone } | { status: 'failed'; error: string; retryable: boolean };

/** Heartbeat details of backupTenants: the tenants finished (a retry skips them) and where the current one is. */
export interface TenantsBackupProgress {
  done: Record<string, TenantBatchOutcome>;
  current?: { tenant: string; progress?: TenantBackupProgress };
}

export interface TenantsBackupDone {
  tenants: Record<string, TenantBatchOutcome>;
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

/** Fault injection for tests only. */
export interface BackupTestHooks {
  /** Called with the dump file right after it was written. */
  afterDump?: (file: string) => Promise<void> | void;
  /** Called before the filestore phase with the attempt number (a test stalls an attempt here). */
  beforeFilestore?: (attempt: number) => Promise<void> | void;
  /** Called before a stored pack is checked for reuse (a test runs a collection there). */
  beforePackReuse?: (pack: string) => Promise<void>;
}

/** A tenant's manifest entry, beside its artifacts (session-relative). */
export function tenantEntryRel(session: string, tenant: string): string {
  return `${rel.tenantDir(session, tenant)}/entry.json`;
}

/** What backupTenant and backupTenants do for each tenant, with the worker's caches (see there). */
export function createTenantBackup(config: DrConfig, catalog: SessionCatalog, hooks: BackupTestHooks) {
  const tenantEntryPath = (session: string, tenant: string) => localPath(config.backupDir, tenantEntryRel(session, tenant));
  // The server's version and the client binaries that fit it, found once a minute by this worker,
  // not once per tenant (a connection and a `pg_dump --version` each). A server upgraded meanwhile
  // makes pg_dump refuse (a transient failure): the retry a minute later finds the new binaries.
  let serverKnown: { at: number; major: Promise<number> } | undefined;
  const clientTools = async () => {
    const now = Date.now();
    if (!serverKnown || now - serverKnown.at > 60_000) {
      const major = serverVersion(config.postgres).then((v) => v.major);
      serverKnown = { at: now, major };
      major.catch(() => {
        if (serverKnown?.major === major) serverKnown = undefined;
      });
    }
    return findClientToolsCached(await serverKnown.major, config.postgres.binDir ? { binDir: config.postgres.binDir } : {}, 60_000);
  };
  const dumpTenant = async (input: TenantTaskInput, onBytes: (bytes: number) => void, fence: () => Promise<void>): Promise<DumpDatabaseResult> => {
    const tools = await clientTools();
    return dumpDatabase({
      config,
      tools,
      session: input.session,
      tenant: input.tenant,
      recipients: input.recipients,
      signal: Context.current().cancellationSignal,
      onProgress: onBytes,
      fence,
    });
  };
  const upload = (artifact: Artifact, resume?: UploadProgress, dump?: DumpDatabaseResult) => {
    const activity = Context.current();
    return uploadFile({
      cloud: config.cloud!,
      key: cloudKey(config.cloud!, artifact.path),
      file: localPath(config.backupDir, artifact.path),
      expectedBytes: artifact.bytes,
      expectedSha256: artifact.sha256,
      ...(resume?.uploadId ? { resume } : {}),
      // Every part: the resume point must be as fresh as possible.
      onProgress: (p) => activity.heartbeat({ phase: 'upload', upload: p, ...(dump ? { dump } : {}) } satisfies TenantBackupProgress),
      signal: activity.cancellationSignal,
      // A retry resumes the upload by its id after a timeout, a shutdown or a pause: only an explicit cancellation discards it.
      discardOnAbort: () => activity.cancellationDetails?.cancelRequested === true,
    });
  };

  /**
   * The fence of one attempt at a tenant: each attempt writes its own token into the tenant's
   * folder when it starts, and checks it before anything it made replaces something in place (the
   * dump, the index, the manifest entry). An attempt that timed out (stalled past its heartbeat
   * timeout) but still runs finds the token of its retry there and stops: it never replaces what
   * the retry made. Its other writes are its own (unique partial files, content-addressed packs).
   */
  const takeFence = async (session: string, tenant: string) => {
    const token = `${randomBytes(8).toString('hex')}`;
    const file = localPath(config.backupDir, `${rel.tenantDir(session, tenant)}/.attempt`);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, token);
    const check = async () => {
      const signal = Context.current().cancellationSignal;
      if (signal.aborted) throw new SupersededError(`this attempt at ${tenant} was cancelled (${String(signal.reason)}): it stops without replacing anything`);
      const now = await readFile(file, 'utf8').catch(() => '');
      if (now !== token) throw new SupersededError(`a newer attempt at ${tenant} has started: this one (timed out) stops without replacing anything`);
    };
    const release = async () => {
      if ((await readFile(file, 'utf8').catch(() => '')) === token) await rm(file, { force: true });
    };
    return { token, check, release };
  };

  /** backupTenant's work (see there): dump, filestore, uploads, manifest entry. */
  const backupOneTenant = async (input: TenantBackupTask): Promise<TenantBackupDone> => {
    const started = Date.now();
    const beat = throttledHeartbeat();
    const resume = activityInfo().heartbeatDetails as TenantBackupProgress | undefined;
    const fence = await takeFence(input.session, input.tenant);
    let kept: DumpDatabaseResult | undefined;
    if (resume?.dump) {
      // Same host and the dump still reads back as written: keep it (and resume its upload).
      const file = localPath(config.backupDir, resume.dump.artifact.path);
      const got = await hashFile(file).catch(() => undefined);
      if (got && got.bytes === resume.dump.artifact.bytes && got.sha256 === resume.dump.artifact.sha256) kept = resume.dump;
    }
    const dump = kept ?? (await dumpTenant(input, (bytes) => beat({ phase: 'dump', bytes } satisfies TenantBackupProgress), fence.check));
    await hooks.afterDump?.(localPath(config.backupDir, dump.artifact.path));
    Context.current().heartbeat({ phase: 'filestore', dump } satisfies TenantBackupProgress);
    // Packs to reuse: the tenant's previous session's, and those an interrupted attempt stored here.
    const scratch = path.join(await ensureScratchRoot(config), scratchFolderName(`reuse-${input.tenant}`));
    const reuseFrom: string[] = [];
    const interrupted =
      resume?.partialIndex && path.dirname(resume.partialIndex) === path.dirname(localPath(config.backupDir, rel.filestoreIndex(input.session, input.tenant)))
        ? resume.partialIndex
        : undefined;
    if (interrupted) reuseFrom.push(interrupted);
    let filestore: FilestoreResult;
    let partialIndex: string | undefined;
    try {
      // The lease (src/retention/collect.ts): in the bucket before any pack is looked for, so that a
      // collection of the bucket either sees this session in progress or ran before the lookup.
      if (input.cloud)
        await catalog.cloud!.putDocument(`${rel.session(input.session)}/leases/${input.tenant}.json`, {
          tenant: input.tenant,
          attempt: fence.token,
          at: new Date().toISOString(),
        });
      const previous = await previousFilestoreIndex({
        config,
        catalog,
        tenant: input.tenant,
        session: input.session,
        scratchDir: scratch,
        signal: Context.current().cancellationSignal,
      });
      if (previous) reuseFrom.push(previous.file);
      await hooks.beforeFilestore?.(activityInfo().attempt);
      filestore = await backupFilestore({
        config,
        session: input.session,
        tenant: input.tenant,
        recipients: input.recipients,
        cloud: input.cloud,
        reuseFrom,
        attempt: fence.token,
        fence: fence.check,
        signal: Context.current().cancellationSignal,
        onProgress: (p) => beat({ phase: 'filestore', dump, ...p, ...(partialIndex ? { partialIndex } : {}) } satisfies TenantBackupProgress),
        onCheckpoint: (file) => {
          partialIndex = file;
        },
        ...(hooks.beforePackReuse ? { beforeReuse: hooks.beforePackReuse } : {}),
      });
    } finally {
      await rm(scratch, { recursive: true, force: true }).catch(() => undefined);
    }
    // Partial files of earlier attempts (a killed one, a stale one still running): never read again.
    const tenantDir = path.dirname(localPath(config.backupDir, filestore.index.path));
    for (const name of await readdir(tenantDir).catch(() => [] as string[])) {
      if (name.endsWith('.partial')) await rm(path.join(tenantDir, name), { force: true }).catch(() => undefined);
    }
    let uploaded: UploadResult | undefined;
    if (input.cloud) {
      await fence.check();
      uploaded = await upload(dump.artifact, kept ? resume?.upload : undefined, dump);
      await upload(filestore.index, undefined, dump);
    }
    const { index, missing: _missing, ...counts } = filestore;
    const entry: TenantEntry = {
      status: 'complete',
      durationMs: Date.now() - started,
      database: dump.artifact,
      filestore: { index, ...counts },
      odoo: dump.facts,
    };
    // Beside the tenant's artifacts, in both places: whichever worker finalizes finds it.
    const entryFile = tenantEntryPath(input.session, input.tenant);
    await mkdir(path.dirname(entryFile), { recursive: true });
    await fence.check();
    await writeFile(entryFile, JSON.stringify(entry));
    if (input.cloud) await catalog.cloud!.putDocument(tenantEntryRel(input.session, input.tenant), entry);
    // Done: the fence goes (a stale attempt finding no token stops too); it is not part of the session.
    await fence.release();
    return {
      entry: { status: 'complete', durationMs: entry.durationMs },
      databaseBytes: dump.artifact.bytes,
      filestore: { ...counts, missing: filestore.missing },
      ...(uploaded ? { upload: { resumed: uploaded.resumed, partsReused: uploaded.partsReused, uploadId: uploaded.uploadId } } : {}),
    };
  };

  /** A permanent failure (full disk, missing database…) leaves nothing: a finished dump would only fill the disk for the next tenant. */
  const discardTenant = async (session: string, tenant: string, err: unknown) => {
    if (err instanceof DrError && err.permanent) {
      await rm(localPath(config.backupDir, rel.tenantDir(session, tenant)), { recursive: true, force: true }).catch(() => undefined);
    }
  };

  return { clientTools, upload, tenantEntryPath, backupOneTenant, discardTenant };
}
