/**
 * PostgreSQL access for odoo-dr: connections with errors mapped to the catalogue, and safe quoting.
 */
import pg from 'pg';
import type { DrConfig } from './config';
import { findClientTools, type PgTools } from './pgtools';
import { DatabaseAuthError, DatabaseUnavailableError, DrError, TenantNotFoundError, scrubSecrets } from './errors';

export type PostgresSettings = DrConfig['postgres'];

/** SQLSTATEs meaning "your credentials or role are wrong": retrying cannot help. */
const AUTH_SQLSTATES = new Set(['28P01', '28000', '42501']);
/** Network-level failures: the server may come back. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EPIPE']);

/** Turns a driver error into a catalogued one, naming the server and database, never the password. */
export function mapPostgresError(err: unknown, settings: PostgresSettings, database: string): Error {
  if (err instanceof DrError) return err;
  const e = err as { code?: string; message?: string };
  const where = `PostgreSQL ${settings.host}:${settings.port} database "${database}" as "${settings.user}"`;
  const detail = scrubSecrets(e.message ?? String(err), [settings.password]);
  if (e.code === '3D000') return new TenantNotFoundError(`database "${database}" does not exist on ${settings.host}:${settings.port}`);
  if (e.code && AUTH_SQLSTATES.has(e.code)) return new DatabaseAuthError(`${where}: authentication or permission refused (${detail})`);
  if (e.code && (NETWORK_CODES.has(e.code) || e.code.startsWith('08') || e.code === '57P03')) {
    return new DatabaseUnavailableError(`${where}: server unreachable (${detail})`);
  }
  if (/timeout|terminated unexpectedly|Connection terminated/i.test(detail)) {
    return new DatabaseUnavailableError(`${where}: server unreachable (${detail})`);
  }
  const mapped = new Error(`${where}: ${detail}`);
  mapped.name = 'PostgresError';
  return mapped;
}

/**
 * A connection terminated by the server while no query runs (DROP DATABASE … WITH (FORCE), a
 * restart, pg_terminate_backend) makes node-postgres emit 'error' on the client; unhandled, that
 * kills the whole worker. The next query on it fails and reports the error where it belongs.
 */
export function guardIdleErrors(client: pg.Client): void {
  client.on('error', () => undefined);
}

/** Runs `fn` with a connected client to `database` and always closes it. */
export async function withClient<T>(settings: PostgresSettings, database: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    host: settings.host,
    port: settings.port,
    user: settings.user,
    password: settings.password,
    database,
    connectionTimeoutMillis: 10_000,
    application_name: 'odoo-dr',
  });
  guardIdleErrors(client);
  try {
    await client.connect();
  } catch (err) {
    // A failed connect leaves a socket behind; end() is safe to call.
    await client.end().catch(() => undefined);
    throw mapPostgresError(err, settings, database);
  }
  try {
    return await fn(client);
  } catch (err) {
    throw mapPostgresError(err, settings, database);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Quotes an identifier (database or role name) for SQL, e.g. names with `-` and `.`. */
export function quoteIdent(name: string): string {
  return pg.escapeIdentifier(name);
}

/** Server version as reported by the server, e.g. { major: 15, full: '15.18' }. */
export async function serverVersion(settings: PostgresSettings): Promise<{ major: number; full: string; num: number }> {
  return withClient(settings, settings.maintenanceDb, async (client) => {
    const { rows } = await client.query<{ v: string; n: string }>("SELECT current_setting('server_version') AS v, current_setting('server_version_num') AS n");
    const num = Number(rows[0]!.n);
    return { major: Math.floor(num / 10000), full: rows[0]!.v.split(' ')[0]!, num };
  });
}

/** The client tools (pg_dump, pg_restore, psql) of the server's major version, from DR_PG_BIN_DIR when set. */
export async function clientToolsForServer(settings: PostgresSettings): Promise<PgTools> {
  const server = await serverVersion(settings);
  return findClientTools(server.major, settings.binDir ? { binDir: settings.binDir } : {});
}
