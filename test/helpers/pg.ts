/** Direct PostgreSQL set-up for tests (as the stack's superuser). */
import type { DrConfig } from '../../src/config';
import { withClient, quoteIdent } from '../../src/postgres';
import type { PgAdminConnection } from '../fixtures/odoo-tenants';
import { stackConfig } from './config';

export async function adminQuery(sql: string, params: unknown[] = []): Promise<unknown[]> {
  const { postgres } = stackConfig();
  return withClient(postgres, postgres.maintenanceDb, async (c) => {
    const { rows }: { rows: unknown[] } = await c.query(sql, params);
    return rows;
  });
}

export async function createDatabase(name: string, opts: { owner?: string; template?: boolean; allowConnections?: boolean } = {}): Promise<void> {
  await dropDatabase(name);
  await adminQuery(`CREATE DATABASE ${quoteIdent(name)} OWNER ${quoteIdent(opts.owner ?? 'odoo')} TEMPLATE template0`);
  if (opts.template) await adminQuery(`ALTER DATABASE ${quoteIdent(name)} IS_TEMPLATE true`);
  if (opts.allowConnections === false) await adminQuery(`ALTER DATABASE ${quoteIdent(name)} ALLOW_CONNECTIONS false`);
}

export async function dropDatabase(name: string): Promise<void> {
  const exists = await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
  if (!exists.length) return;
  await adminQuery(`ALTER DATABASE ${quoteIdent(name)} IS_TEMPLATE false`);
  await adminQuery(`DROP DATABASE ${quoteIdent(name)} WITH (FORCE)`);
}

export async function ensureRole(name: string, password?: string): Promise<void> {
  await adminQuery(
    `DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ${pgLiteral(name)}) THEN
       CREATE ROLE ${quoteIdent(name)} ${password ? 'LOGIN' : 'NOLOGIN'}; END IF; END $$`,
  );
  if (password) await adminQuery(`ALTER ROLE ${quoteIdent(name)} LOGIN PASSWORD ${pgLiteral(password)}`);
}

function pgLiteral(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** The stack's superuser connection settings (or another configuration's DR role), as the src/ helpers take them. */
export function adminConnection(config: DrConfig = stackConfig()): PgAdminConnection {
  const { host, port, user, password } = config.postgres;
  return { host, port, user, ...(password ? { password } : {}) };
}

/**
 * Whether a restore into a database named LIKE `pattern` is under way: the database exists and
 * already holds `table` (pg_restore creates the tables before it loads them). Tests that kill a
 * worker mid-restore wait for this rather than for a fixed time.
 */
export async function restoreUnderWay(pattern: string, table: string): Promise<boolean> {
  const { postgres } = stackConfig();
  const rows = (await adminQuery('SELECT datname FROM pg_database WHERE datname LIKE $1', [pattern])) as Array<{ datname: string }>;
  for (const { datname } of rows) {
    const found = await withClient(postgres, datname, async (c) => {
      const { rows: r } = await c.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [table]);
      return r[0]?.t !== null && r[0]?.t !== undefined;
    }).catch(() => false);
    if (found) return true;
  }
  return false;
}
