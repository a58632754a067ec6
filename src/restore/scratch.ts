/**
 * Scratch databases and folders of restore tests and drills.
 *
 * A scratch database carries a marker in its comment (`COMMENT ON DATABASE … IS
 * 'odoo-dr-scratch:{"database":…,"tenant":…,"purpose":…,"createdAt":…}'`). Only a database whose
 * marker names the database itself can be dropped here: a production tenant has no marker, and a
 * marked copy that was later renamed (a recovery swap) no longer matches its marker, so neither
 * can ever be dropped through this module. The sweep removes what a dead worker left behind.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import type { DrConfig } from '../config';
import { InvalidInputError } from '../errors';
import { quoteIdent, withClient } from '../postgres';
import { ODOO_DB_NAME } from '../tenants';
import { PROCESS_OWNER, deadOwnerHere } from './process-owner';
import { dropRestoreRole, restoreRolesOfDeadProcesses } from './restore-role';

export const SCRATCH_MARKER_PREFIX = 'odoo-dr-scratch:';
/** PostgreSQL's identifier limit (NAMEDATALEN - 1). */
const MAX_NAME_BYTES = 63;
const SCRATCH_ID = /^[A-Za-z0-9]{1,24}$/;

export interface ScratchInfo {
  tenant: string;
  purpose: string;
  createdAt: string;
}

export interface ScratchMarker extends ScratchInfo {
  database: string;
  /** `<host>.<pid>` of the worker process that made it (start-up sweeps of dead processes). */
  owner?: string;
}

/** `<DR_BACKUP_DIR>/scratch`: temporary decrypted dumps and scratch filestores live below it. */
export function scratchRoot(config: DrConfig): string {
  return path.join(config.backupDir, 'scratch');
}

/**
 * `<DR_BACKUP_DIR>/scratch/<host>.<pid>` (mode 0700: decrypted tenant data goes below it), this
 * process's own: the next worker on this host removes it at start-up once this process is gone.
 */
export async function ensureScratchRoot(config: DrConfig): Promise<string> {
  await mkdir(scratchRoot(config), { recursive: true, mode: 0o700 });
  const own = path.join(scratchRoot(config), PROCESS_OWNER);
  await mkdir(own, { recursive: true, mode: 0o700 });
  return own;
}

/**
 * At worker start-up: what dead worker processes of this host left — their scratch folders
 * (decrypted dumps, scratch filestores, downloads) and their restore-test copies — is removed now,
 * not after DR_TEST_RETENTION_HOURS. Recovery shadows are kept: their recovery goes on and redoes
 * or swaps them. Returns what was removed.
 */
export async function sweepDeadProcesses(config: DrConfig): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(scratchRoot(config)).catch(() => [] as string[])) {
    if (!deadOwnerHere(name)) continue;
    await rm(path.join(scratchRoot(config), name), { recursive: true, force: true });
    removed.push(path.join(scratchRoot(config), name));
  }
  await withClient(config.postgres, config.postgres.maintenanceDb, async (client) => {
    const { rows } = await client.query<{ datname: string; c: string | null }>(
      `SELECT datname, shobj_description(oid, 'pg_database') AS c FROM pg_database WHERE shobj_description(oid, 'pg_database') LIKE $1`,
      [`${SCRATCH_MARKER_PREFIX}%`],
    );
    for (const row of rows) {
      const marker = parseScratchMarker(row.c);
      if (!marker || marker.database !== row.datname || marker.purpose === 'recovery-shadow' || !deadOwnerHere(marker.owner)) continue;
      if (await dropMarked(client, config, row.datname)) removed.push(row.datname);
    }
  });
  // Their one-time restore roles last (what they owned went with the databases).
  for (const role of await restoreRolesOfDeadProcesses(config)) {
    if (
      await dropRestoreRole(config, role).then(
        () => true,
        () => false,
      )
    )
      removed.push(`role ${role}`);
  }
  return removed;
}

/** Cuts a string to at most `max` UTF-8 bytes without splitting a character. */
function truncateBytes(text: string, max: number): string {
  let out = '';
  let bytes = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > max) break;
    out += ch;
    bytes += n;
  }
  return out;
}

/**
 * `<tenant><DR_TEST_DATABASE_SUFFIX>_<id>`, at most 63 bytes: the tenant part is shortened when
 * needed, the suffix and id are always kept whole (they make the name unique and recognisable).
 */
export function scratchName(config: DrConfig, tenant: string, id: string): string {
  if (!SCRATCH_ID.test(id)) {
    throw new InvalidInputError(`scratch id ${JSON.stringify(id)} must be 1 to 24 letters or digits`);
  }
  if (!ODOO_DB_NAME.test(tenant)) throw new InvalidInputError(`"${tenant}" is not a valid Odoo database name`);
  const tail = `${config.scratchSuffix}_${id}`;
  const room = MAX_NAME_BYTES - Buffer.byteLength(tail);
  if (room < 1) {
    throw new InvalidInputError(`DR_TEST_DATABASE_SUFFIX "${config.scratchSuffix}" with id "${id}" leaves no room for the tenant name in 63 bytes`);
  }
  const name = `${truncateBytes(tenant, room)}${tail}`;
  if (!ODOO_DB_NAME.test(name)) {
    throw new InvalidInputError(`scratch name "${name}" is not a valid database name (check DR_TEST_DATABASE_SUFFIX)`);
  }
  return name;
}

/** The marker's comment text. */
export function scratchMarker(database: string, info: ScratchInfo): string {
  const marker: ScratchMarker = { database, tenant: info.tenant, purpose: info.purpose, createdAt: info.createdAt, owner: PROCESS_OWNER };
  return `${SCRATCH_MARKER_PREFIX}${JSON.stringify(marker)}`;
}

/** Parses a database comment; undefined unless it is a well-formed odoo-dr scratch marker. */
export function parseScratchMarker(comment: string | null | undefined): ScratchMarker | undefined {
  if (!comment?.startsWith(SCRATCH_MARKER_PREFIX)) return undefined;
  let data: unknown;
  try {
    data = JSON.parse(comment.slice(SCRATCH_MARKER_PREFIX.length));
  } catch {
    return undefined;
  }
  if (typeof data !== 'object' || data === null) return undefined;
  const m = data as Record<string, unknown>;
  if (typeof m.database !== 'string' || typeof m.tenant !== 'string' || typeof m.purpose !== 'string' || typeof m.createdAt !== 'string') {
    return undefined;
  }
  if (Number.isNaN(Date.parse(m.createdAt))) return undefined;
  return { database: m.database, tenant: m.tenant, purpose: m.purpose, createdAt: m.createdAt, ...(typeof m.owner === 'string' ? { owner: m.owner } : {}) };
}

/** Marks `database` as an odoo-dr scratch copy (replaces any previous comment). */
export async function markScratch(config: DrConfig, database: string, info: ScratchInfo): Promise<void> {
  if (Number.isNaN(Date.parse(info.createdAt))) {
    throw new InvalidInputError(`scratch marker createdAt must be an ISO date, got ${JSON.stringify(info.createdAt)}`);
  }
  await withClient(config.postgres, config.postgres.maintenanceDb, async (client) => {
    await client.query(`COMMENT ON DATABASE ${quoteIdent(database)} IS ${pg.escapeLiteral(scratchMarker(database, info))}`);
  });
}

/** Removes the scratch marker (a copy promoted to a real database must not stay droppable). */
export async function unmarkScratch(config: DrConfig, database: string): Promise<void> {
  await withClient(config.postgres, config.postgres.maintenanceDb, async (client) => {
    await client.query(`COMMENT ON DATABASE ${quoteIdent(database)} IS NULL`);
  });
}

/** The scratch marker of `database`, undefined if it has none; null if the database does not exist. */
export async function readScratchMarker(config: DrConfig, database: string): Promise<ScratchMarker | undefined | null> {
  return withClient(config.postgres, config.postgres.maintenanceDb, async (client) => {
    const { rows } = await client.query<{ c: string | null }>("SELECT shobj_description(oid, 'pg_database') AS c FROM pg_database WHERE datname = $1", [
      database,
    ]);
    if (rows.length === 0) return null;
    return parseScratchMarker(rows[0]!.c);
  });
}

async function dropMarked(client: pg.ClientBase, config: DrConfig, database: string): Promise<boolean> {
  // Lock-free re-check right before the drop, in the same session.
  const { rows } = await client.query<{ c: string | null; tmpl: boolean }>(
    "SELECT shobj_description(oid, 'pg_database') AS c, datistemplate AS tmpl FROM pg_database WHERE datname = $1",
    [database],
  );
  if (rows.length === 0) return false; // already gone: dropping is idempotent
  const marker = parseScratchMarker(rows[0]!.c);
  if (!marker) {
    throw new InvalidInputError(
      `refusing to drop database "${database}": it has no odoo-dr scratch marker (only scratch copies made by odoo-dr can be dropped this way)`,
    );
  }
  if (marker.database !== database) {
    throw new InvalidInputError(
      `refusing to drop database "${database}": its scratch marker was written for "${marker.database}" (renamed since, e.g. promoted by a recovery)`,
    );
  }
  if (rows[0]!.tmpl || [config.postgres.maintenanceDb, 'postgres', 'template0', 'template1'].includes(database)) {
    throw new InvalidInputError(`refusing to drop database "${database}": it is a maintenance or template database`);
  }
  await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [database]);
  await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(database)} WITH (FORCE)`);
  return true;
}

/**
 * Drops a scratch database (its connections are terminated first). Refuses, with
 * InvalidInputError, a database without an odoo-dr scratch marker naming it. No error if the
 * database does not exist.
 */
export async function dropScratchDatabase(config: DrConfig, database: string): Promise<void> {
  await withClient(config.postgres, config.postgres.maintenanceDb, async (client) => {
    await dropMarked(client, config, database);
  });
}

/**
 * Drops marked scratch databases whose marker is older than `olderThanHours`, and entries of
 * `<DR_BACKUP_DIR>/scratch` (decrypted dumps, scratch filestores) last modified before that.
 * Returns what it removed: database names and folder paths.
 */
export async function sweepScratch(config: DrConfig, opts: { olderThanHours: number; now: Date; dryRun?: boolean }): Promise<string[]> {
  if (!(opts.olderThanHours >= 0)) throw new InvalidInputError(`olderThanHours must be 0 or more, got ${opts.olderThanHours}`);
  const cutoff = opts.now.getTime() - opts.olderThanHours * 3_600_000;
  const removed: string[] = [];

  await withClient(config.postgres, config.postgres.maintenanceDb, async (client) => {
    const { rows } = await client.query<{ datname: string; c: string | null }>(
      `SELECT datname, shobj_description(oid, 'pg_database') AS c FROM pg_database
        WHERE shobj_description(oid, 'pg_database') LIKE $1 ORDER BY datname`,
      [`${SCRATCH_MARKER_PREFIX}%`],
    );
    for (const row of rows) {
      const marker = parseScratchMarker(row.c);
      if (!marker || marker.database !== row.datname) continue;
      if (Date.parse(marker.createdAt) >= cutoff) continue;
      if (opts.dryRun) removed.push(row.datname);
      else if (await dropMarked(client, config, row.datname)) removed.push(row.datname);
    }
  });

  const root = scratchRoot(config);
  let entries: string[];
  try {
    entries = await readdir(root);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return removed;
    throw err;
  }
  for (const name of entries.sort()) {
    const entry = path.join(root, name);
    let mtime: number;
    try {
      mtime = (await lstat(entry)).mtimeMs;
    } catch {
      continue; // removed meanwhile
    }
    if (mtime >= cutoff) continue;
    if (!opts.dryRun) await rm(entry, { recursive: true, force: true });
    removed.push(entry);
  }
  return removed;
}

/** A scratch folder name unique to one use (downloads of one check, one restore). */
export function scratchFolderName(purpose: string): string {
  return `${purpose}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

/** Removes a scratch folder, ignoring errors (it is scratch). */
export async function removeScratch(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true }).catch(() => undefined);
}
