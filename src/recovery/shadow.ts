/**
 * The shadow copy of a recovery: the tenant's backup restored beside the live tenant, as the real
 * tenant (a "move": not neutralized, `database.uuid` and `database.secret` kept), invisible to Odoo
 * until the swap:
 *
 * - the database `<tenant>_dr_shadow_<id>` is owned by the DR role (Odoo lists only databases owned
 *   by its role), its objects keep their dumped owners (the Odoo role), and it carries the scratch
 *   marker (purpose `recovery-shadow`) from its first moment, so a crash leaves a sweepable copy and
 *   nothing unmarked;
 * - the filestore is restored into `<shadowDir>.partial` and renamed to `<shadowDir>` only once every
 *   file is in: the shadow folder exists only when the database restore (done first) and the
 *   filestore restore are both complete. A half-done restore is redone, never swapped in.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { DrConfig } from '../config';
import { InvalidInputError } from '../errors';
import { withClient, type PostgresSettings } from '../postgres';
import { createRestoreRole, dropRestoreRole, restoreRolesOfDeadProcesses } from '../restore/restore-role';
import type { Check } from '../odoo/checks';
import { odooChecks } from '../odoo/checks';
import type { OdooFacts } from '../odoo/facts';
import { restoreDump } from '../restore/database';
import { restoreFilestore } from '../restore/filestore';
import { dropScratchDatabase, readScratchMarker } from '../restore/scratch';
import { filestoreDir, filestoreShadowDir, shadowName } from './names';
import { ownershipOf } from '../restore/ownership';

export const SHADOW_PURPOSE = 'recovery-shadow';

export interface RestoreShadowOptions {
  config: DrConfig;
  tenant: string;
  /** Recovery id (letters and digits), e.g. from the workflow id. */
  id: string;
  /** The session's `database.dump.zst.age`. */
  encryptedDump: string;
  /** The session's `filestore.jsonl`. */
  indexFile: string;
  /** Folder in the session layout holding the blobs (default DR_BACKUP_DIR). */
  blobRoot?: string;
  /** age private key text. */
  identity: string;
  /** Major version of the pg_dump that made the dump (manifest). */
  dumpPgMajor?: number;
  signal?: AbortSignal;
  onProgress?: (phase: 'decrypt' | 'restore' | 'filestore', amount?: number) => void;
  /**
   * `backup` (default): the filestore comes from the session. `live`: a hard-linked copy of the
   * tenant's current filestore (database-only recovery keeps today's files; no data is copied).
   */
  filestoreFrom?: 'backup' | 'live';
}

export interface RestoreShadowResult {
  database: string;
  filestoreDir: string;
  databaseMs: number;
  filestoreMs: number;
  /** Filestore files restored and their bytes. */
  files: number;
  bytes: number;
  /** Bad filestore files (missing or damaged blobs), one line each. */
  problems: string[];
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

/** `cp -al`: the live filestore as hard links (same filesystem, no data copied); empty if there is none. */
async function linkLiveFilestore(live: string, dest: string): Promise<{ files: number; bytes: number; problems: string[] }> {
  await rm(dest, { recursive: true, force: true });
  if (!(await exists(live))) {
    await mkdir(dest, { recursive: true });
    return { files: 0, bytes: 0, problems: [] };
  }
  await new Promise<void>((resolve, reject) => {
    execFile('cp', ['-al', live, dest], (err, _out, stderr) => (err ? reject(new Error(`cp -al ${live} ${dest}: ${stderr || err.message}`)) : resolve()));
  });
  return { files: 0, bytes: 0, problems: [] };
}

/** Drops the shadow database (only if marked as this shadow) and removes the shadow folders. Idempotent. */
export async function dropShadow(config: DrConfig, tenant: string, id: string): Promise<void> {
  const database = shadowName(tenant, id);
  const dir = filestoreShadowDir(config, tenant, id);
  const marker = await readScratchMarker(config, database);
  if (marker !== null) {
    if (!marker || marker.purpose !== SHADOW_PURPOSE || marker.tenant !== tenant) {
      throw new InvalidInputError(
        `refusing to drop database "${database}": it is not marked as the recovery shadow of "${tenant}"` +
          (marker ? ` (its marker says purpose "${marker.purpose}", tenant "${marker.tenant}")` : ' (it has no odoo-dr marker)'),
      );
    }
    // dropScratchDatabase re-checks the marker names this very database, in the session that drops it.
    await dropScratchDatabase(config, database);
    // The one-time restore role of a dead attempt owned objects in that database only: it can go now
    // (the worker start-up sweep could not drop it while the shadow existed).
    for (const role of await restoreRolesOfDeadProcesses(config)) await dropRestoreRole(config, role).catch(() => undefined);
  }
  await removeShadowPartials(dir);
  await rm(dir, { recursive: true, force: true });
}

/**
 * A folder for one attempt to fill before it is renamed to `dir`: an attempt that timed out but
 * still runs writes into its own, never into its retry's.
 */
export function shadowPartialDir(dir: string): string {
  return `${dir}.partial-${randomBytes(4).toString('hex')}`;
}

/** Removes every attempt's partial folder of `dir` (a stale attempt still writing then fails on its own). */
export async function removeShadowPartials(dir: string): Promise<void> {
  const prefix = `${path.basename(dir)}.partial`;
  const names = await readdir(path.dirname(dir)).catch(() => [] as string[]);
  for (const name of names) if (name.startsWith(prefix)) await rm(path.join(path.dirname(dir), name), { recursive: true, force: true });
}

/** Restores the tenant's backup into its shadow database and shadow folder (see the module comment). */
export async function restoreShadow(opts: RestoreShadowOptions): Promise<RestoreShadowResult> {
  const { config, tenant, id, signal } = opts;
  const database = shadowName(tenant, id);
  const dir = filestoreShadowDir(config, tenant, id);
  signal?.throwIfAborted();
  // Idempotent: whatever an earlier attempt left (complete or not) is removed and redone. The folder
  // goes first: its existence says "complete", so it must never outlive a database being redone.
  await dropShadow(config, tenant, id);

  const dbStarted = Date.now();
  await restoreDump({
    config,
    encryptedDump: opts.encryptedDump,
    identity: opts.identity,
    database,
    owner: config.postgres.user,
    keepOwnership: true,
    scratch: { tenant, purpose: SHADOW_PURPOSE },
    ...(opts.dumpPgMajor !== undefined ? { dumpPgMajor: opts.dumpPgMajor } : {}),
    ...(signal ? { signal } : {}),
    ...(opts.onProgress ? { onProgress: (phase: 'decrypt' | 'restore', bytes?: number) => opts.onProgress?.(phase, bytes) } : {}),
  });
  const databaseMs = Date.now() - dbStarted;

  const fsStarted = Date.now();
  const partial = shadowPartialDir(dir);
  // The files Odoo will serve belong to whoever owned the tenant's files (or the data dir) before:
  // given as each file is written (a second walk of the folder cost seconds per 20,000 files).
  const owner = opts.filestoreFrom === 'live' ? undefined : await ownershipOf([filestoreDir(config, tenant), config.odoo.filestoreRoot, config.odoo.dataDir]);
  const files =
    opts.filestoreFrom === 'live'
      ? await linkLiveFilestore(filestoreDir(config, tenant), partial)
      : await restoreFilestore({
          config,
          indexFile: opts.indexFile,
          identity: opts.identity,
          destDir: partial,
          ...(opts.blobRoot ? { blobRoot: opts.blobRoot } : {}),
          ...(signal ? { signal } : {}),
          ...(opts.onProgress ? { onProgress: (n: number) => opts.onProgress?.('filestore', n) } : {}),
          ...(owner ? { owner } : {}),
        });
  signal?.throwIfAborted();
  await rename(partial, dir);
  return {
    database,
    filestoreDir: dir,
    databaseMs,
    filestoreMs: Date.now() - fsStarted,
    files: files.files,
    bytes: files.bytes,
    problems: files.problems,
  };
}

export interface VerifyShadowOptions {
  config: DrConfig;
  database: string;
  filestoreDir: string;
  /** The tenant's facts from the manifest. */
  expected: OdooFacts;
}

/**
 * Odoo checks of the shadow against the manifest (modules, row counts, attachments ↔ filestore,
 * admin user), plus `identity`: the copy is the real tenant — same `database.uuid` as the backup
 * and not neutralized — and `complete`: the shadow folder exists (the filestore restore finished).
 */
export async function verifyShadow(opts: VerifyShadowOptions): Promise<Check[]> {
  const { config, database, filestoreDir, expected } = opts;
  const complete: Check = (await exists(filestoreDir))
    ? { name: 'complete', status: 'pass', message: `the shadow filestore ${filestoreDir} is complete` }
    : { name: 'complete', status: 'fail', message: `the shadow filestore ${filestoreDir} does not exist (the restore did not finish)` };
  // Read as the tenant's own role, never as a superuser: a view or function in the copy runs with its rights.
  const role = await createRestoreRole(config, { memberOf: config.odoo.dbUser });
  try {
    return await verifyAs(role.settings, database, filestoreDir, expected, complete);
  } finally {
    await dropRestoreRole(config, role.name).catch(() => undefined);
  }
}

async function verifyAs(settings: PostgresSettings, database: string, filestoreDir: string, expected: OdooFacts, complete: Check): Promise<Check[]> {
  return withClient(settings, database, async (client) => {
    const checks = await odooChecks({ client, expected, filestoreDir });
    let identity: Check;
    const table = await client.query<{ r: string | null }>("SELECT to_regclass('public.ir_config_parameter') AS r");
    if (table.rows[0]?.r == null) {
      identity =
        expected.databaseUuid === undefined
          ? { name: 'identity', status: 'pass', message: 'no ir_config_parameter table and no database.uuid in the backup' }
          : { name: 'identity', status: 'fail', message: `the copy has no ir_config_parameter table (database.uuid ${expected.databaseUuid} expected)` };
    } else {
      const { rows } = await client.query<{ key: string; value: string | null }>(
        "SELECT key, value FROM ir_config_parameter WHERE key IN ('database.uuid', 'database.is_neutralized')",
      );
      const uuid = rows.find((r) => r.key === 'database.uuid')?.value ?? undefined;
      const neutralized = rows.some((r) => r.key === 'database.is_neutralized' && (r.value ?? '').trim().toLowerCase() === 'true');
      if (uuid !== expected.databaseUuid) {
        identity = {
          name: 'identity',
          status: 'fail',
          message: `database.uuid is ${uuid ?? '(none)'}, the backup's is ${expected.databaseUuid ?? '(none)'}: this is not the tenant's own database`,
        };
      } else if (neutralized) {
        identity = { name: 'identity', status: 'fail', message: 'the copy is neutralized (database.is_neutralized = true): it cannot replace the real tenant' };
      } else {
        identity = { name: 'identity', status: 'pass', message: `database.uuid ${uuid ?? '(none)'} as in the backup, not neutralized` };
      }
    }
    return [...checks, identity, complete];
  });
}
