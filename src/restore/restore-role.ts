/**
 * Least-privilege restores. A dump read back from disk or a bucket may have been written by an
 * attacker, and pg_restore replays its SQL: a function called by a CHECK constraint, a trigger or
 * a view then runs with the rights of whoever is connected. `pg_restore --role` is no boundary (the
 * dump's own SQL can `RESET ROLE`), so the restore, the neutralization and the checks *connect* as
 * a role of their own: `odoo_dr_restore_<random>`, LOGIN with a random password, never SUPERUSER,
 * CREATEDB, CREATEROLE, REPLICATION or BYPASSRLS, expiring within a day, and dropped afterwards.
 * For a shadow (the real tenant) it is a member of the tenant's owner role, so it has exactly the
 * tenant role's rights and nothing more; for a scratch copy it is a member of nothing.
 *
 * What only a superuser can do is done by odoo-dr itself from a short allow-list: the extensions
 * Odoo uses are created before the restore, and the dump's own EXTENSION entries are skipped.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { DrConfig } from '../config';
import { ArtifactCorruptedError, InvalidInputError } from '../errors';
import { quoteIdent, withClient, type PostgresSettings } from '../postgres';
import { PROCESS_OWNER, deadOwnerHere } from './process-owner';

const ROLE_COMMENT_PREFIX = 'odoo-dr-restore:';

export const RESTORE_ROLE_PREFIX = 'odoo_dr_restore_';
/** Extensions Odoo (and its common modules) create; anything else in a dump is refused. */
export const ALLOWED_EXTENSIONS = ['plpgsql', 'pg_trgm', 'unaccent', 'btree_gin', 'btree_gist', 'fuzzystrmatch'];

export interface RestoreRole {
  name: string;
  /** The tenant owner role it is a member of (shadows). */
  memberOf?: string;
  /** Connection settings for this role (same server, the role's one-time password). */
  settings: PostgresSettings;
}

/** Creates the role; `memberOf` (the tenant owner) must not be a superuser. */
export async function createRestoreRole(config: DrConfig, opts: { memberOf?: string } = {}): Promise<RestoreRole> {
  const name = `${RESTORE_ROLE_PREFIX}${randomBytes(6).toString('hex')}`;
  const password = randomBytes(24).toString('base64url');
  const until = new Date(Date.now() + 24 * 3_600_000).toISOString();
  await withClient(config.postgres, config.postgres.maintenanceDb, async (client) => {
    if (opts.memberOf) {
      const { rows } = await client.query<{ rolsuper: boolean }>('SELECT rolsuper FROM pg_roles WHERE rolname = $1', [opts.memberOf]);
      if (!rows[0]) throw new InvalidInputError(`the tenant owner role "${opts.memberOf}" does not exist: restore the cluster's roles first (recover -m full)`);
      if (rows[0].rolsuper) {
        throw new InvalidInputError(
          `the tenant owner role "${opts.memberOf}" is a superuser: odoo-dr never replays a dump with superuser rights; make it a plain role (ALTER ROLE ${opts.memberOf} NOSUPERUSER)`,
        );
      }
    }
    // One transaction: a process killed half-way leaves no role it cannot be traced to (no comment).
    await client.query('BEGIN');
    await client.query(
      `CREATE ROLE ${quoteIdent(name)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT CONNECTION LIMIT 16 PASSWORD ${pg.escapeLiteral(password)} VALID UNTIL ${pg.escapeLiteral(until)}`,
    );
    // Which process made it: a worker started after that process died drops it.
    await client.query(`COMMENT ON ROLE ${quoteIdent(name)} IS ${pg.escapeLiteral(`${ROLE_COMMENT_PREFIX}${PROCESS_OWNER}`)}`);
    if (opts.memberOf) await client.query(`GRANT ${quoteIdent(opts.memberOf)} TO ${quoteIdent(name)}`);
    await client.query('COMMIT');
  });
  return { name, ...(opts.memberOf ? { memberOf: opts.memberOf } : {}), settings: { ...config.postgres, user: name, password } };
}

/** Lets the role create objects in `database` (owned by the DR role) and creates the allowed extensions. */
export async function prepareDatabaseFor(config: DrConfig, database: string, role: RestoreRole, extensions: string[]): Promise<void> {
  const refused = extensions.filter((e) => !ALLOWED_EXTENSIONS.includes(e));
  if (refused.length) {
    throw new ArtifactCorruptedError(
      `the dump needs extension(s) ${refused.join(', ')}, which odoo-dr does not create (allowed: ${ALLOWED_EXTENSIONS.join(', ')}): ` +
        'only a superuser could, and a restore never runs as one',
    );
  }
  await withClient(config.postgres, database, async (client) => {
    for (const e of extensions) await client.query(`CREATE EXTENSION IF NOT EXISTS ${quoteIdent(e)}`);
    await client.query(`GRANT ALL ON SCHEMA public TO ${quoteIdent(role.name)}`);
    // Objects handed to the tenant owner need it to hold CREATE on their schema (as it does in its own database).
    if (role.memberOf) await client.query(`GRANT ALL ON SCHEMA public TO ${quoteIdent(role.memberOf)}`);
  });
}

/**
 * Drops the role. In `databases` that still exist, what it created (a `--no-owner` restore) passes
 * to the database's owner and what it was granted is revoked first. Idempotent.
 */
export async function dropRestoreRole(config: DrConfig, name: string, databases: string[] = []): Promise<void> {
  if (!name.startsWith(RESTORE_ROLE_PREFIX)) throw new InvalidInputError(`refusing to drop role "${name}": not an odoo-dr restore role`);
  for (const db of databases) {
    await withClient(config.postgres, db, async (c) => {
      const owner = (await c.query<{ o: string }>('SELECT pg_get_userbyid(datdba) AS o FROM pg_database WHERE datname = current_database()')).rows[0]!.o;
      await c.query(`REASSIGN OWNED BY ${quoteIdent(name)} TO ${quoteIdent(owner)}`);
      await c.query(`DROP OWNED BY ${quoteIdent(name)}`);
    }).catch((err: Error) => {
      if (!/does not exist/.test(err.message)) throw err;
    });
  }
  await withClient(config.postgres, config.postgres.maintenanceDb, async (client) => {
    await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [name]);
    await client.query(`DROP ROLE IF EXISTS ${quoteIdent(name)}`);
  });
}

/** Drops restore roles a killed worker left (they expire anyway); returns their names. */
export async function sweepRestoreRoles(config: DrConfig): Promise<string[]> {
  const roles = await withClient(config.postgres, config.postgres.maintenanceDb, async (c) =>
    (
      await c.query<{ rolname: string }>(
        "SELECT rolname FROM pg_roles WHERE rolname LIKE 'odoo\\_dr\\_restore\\_%' AND (rolvaliduntil IS NULL OR rolvaliduntil < now() + interval '12 hours')",
      )
    ).rows.map((r) => r.rolname),
  );
  const dropped: string[] = [];
  for (const r of roles) {
    try {
      await dropRestoreRole(config, r);
      dropped.push(r);
    } catch {
      // still owns something (a scratch copy not yet swept): the next sweep drops it
    }
  }
  return dropped;
}

/** Restore roles made by processes of this host that are gone. */
export async function restoreRolesOfDeadProcesses(config: DrConfig): Promise<string[]> {
  const rows = await withClient(
    config.postgres,
    config.postgres.maintenanceDb,
    async (c) =>
      (
        await c.query<{ rolname: string; c: string | null }>(
          "SELECT rolname, shobj_description(oid, 'pg_authid') AS c FROM pg_roles WHERE rolname LIKE 'odoo\\_dr\\_restore\\_%'",
        )
      ).rows,
  );
  return rows.filter((r) => r.c?.startsWith(ROLE_COMMENT_PREFIX) && deadOwnerHere(r.c.slice(ROLE_COMMENT_PREFIX.length))).map((r) => r.rolname);
}

/** Extensions named in a custom-format dump's table of contents (`pg_restore --list`). */
export function extensionsInToc(listing: string): string[] {
  const out: string[] = [];
  for (const line of listing.split('\n')) {
    const m = /^\d+;\s*\d+\s+\d+\s+EXTENSION\s+-\s+(\S+)/.exec(line);
    if (m) out.push(m[1]!);
  }
  return out;
}

/** The TOC with the EXTENSION entries (and their comments) commented out: odoo-dr created them. */
export function tocWithoutExtensions(listing: string): string {
  return listing
    .split('\n')
    .map((line) => (/^\d+;\s*\d+\s+\d+\s+(EXTENSION|COMMENT)\s+-\s+(EXTENSION\s+)?\S+/.test(line) && /EXTENSION/.test(line) ? `;${line}` : line))
    .join('\n');
}
