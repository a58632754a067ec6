/**
 * `odoo-dr setup`'s PostgreSQL checks: the server answers, the DR role has the rights backups and
 * restores need (README, Threat model: least-privilege restores), tenants can be listed and read,
 * and a pg_dump at least as new as the server is installed.
 */
import type { DrConfig } from '../config';
import { TenantNotFoundError } from '../errors';
import { findClientTools } from '../pgtools';
import { quoteIdent, serverVersion, withClient } from '../postgres';
import { discoverTenants } from '../tenants';
import { firstLine, ok, problem, skipped, warning, type SetupCheck } from './report';

const S = 'postgresql';
/** Tenants whose tables are checked for SELECT; enough to catch a missing grant without a long wait on a big fleet. */
const READ_SAMPLE = 20;

interface RoleRow {
  rolname: string;
  rolsuper: boolean;
  rolcreatedb: boolean;
  rolcreaterole: boolean;
}

export async function checkPostgres(config: DrConfig): Promise<SetupCheck[]> {
  const pgc = config.postgres;
  const where = `${pgc.host}:${pgc.port}`;
  const checks: SetupCheck[] = [];
  let major: number;
  try {
    const v = await serverVersion(pgc);
    major = v.major;
    checks.push(ok(S, 'server', `PostgreSQL ${v.full} at ${where}, connected as "${pgc.user}" to "${pgc.maintenanceDb}"`));
  } catch (err) {
    checks.push(
      problem(
        S,
        'server',
        firstLine(err),
        `check POSTGRES_HOST/POSTGRES_PORT (${where}), POSTGRES_USER and POSTGRES_PASSWORD_FILE, and that pg_hba.conf lets "${pgc.user}" in from this host`,
      ),
    );
    return checks;
  }

  const roles = await withClient(pgc, pgc.maintenanceDb, async (client) => {
    const { rows } = await client.query<RoleRow>('SELECT rolname, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = ANY($1::text[])', [
      [pgc.user, config.odoo.dbUser],
    ]);
    return new Map(rows.map((r) => [r.rolname, r]));
  });
  const dr = roles.get(pgc.user)!;
  const missing = [!dr.rolsuper && !dr.rolcreatedb ? 'CREATEDB' : undefined, !dr.rolsuper && !dr.rolcreaterole ? 'CREATEROLE' : undefined].filter(Boolean);
  if (missing.length) {
    checks.push(
      problem(
        S,
        'DR role',
        `"${pgc.user}" lacks ${missing.join(' and ')}: restores create scratch databases and one-time restore roles`,
        `ALTER ROLE ${quoteIdent(pgc.user)} ${missing.join(' ')};`,
      ),
    );
  } else if (!dr.rolsuper) {
    checks.push(
      warning(
        S,
        'DR role',
        `"${pgc.user}" is not a superuser: the cluster roles backup reads pg_authid (password hashes), which needs one; tenants are backed up all the same`,
        `ALTER ROLE ${quoteIdent(pgc.user)} SUPERUSER; (or accept backups without role passwords)`,
      ),
    );
  } else {
    checks.push(ok(S, 'DR role', `"${pgc.user}" is a superuser (creates and drops databases and roles, reads pg_authid)`));
  }

  const odoo = roles.get(config.odoo.dbUser);
  if (!odoo) {
    checks.push(
      problem(
        S,
        'Odoo role',
        `role "${config.odoo.dbUser}" (ODOO_DB_USER) does not exist: no database can be a tenant`,
        'set ODOO_DB_USER to the db_user of odoo.conf',
      ),
    );
  } else if (odoo.rolsuper && config.odoo.dbUser !== pgc.user) {
    checks.push(
      problem(
        S,
        'Odoo role',
        `"${odoo.rolname}" (ODOO_DB_USER) is a superuser: recovery refuses to replay dumps with superuser rights`,
        `ALTER ROLE ${quoteIdent(odoo.rolname)} NOSUPERUSER CREATEDB;`,
      ),
    );
  } else if (odoo.rolsuper) {
    checks.push(
      warning(
        S,
        'Odoo role',
        `ODOO_DB_USER is the DR role "${odoo.rolname}", a superuser: recovery refuses to replay dumps with superuser rights`,
        'give Odoo its own role (db_user in odoo.conf) and set ODOO_DB_USER to it',
      ),
    );
  } else {
    checks.push(ok(S, 'Odoo role', `"${odoo.rolname}" owns the tenant databases${odoo.rolcreatedb ? ' (CREATEDB)' : ''}`));
  }

  try {
    const found = await discoverTenants(config);
    const blocked = found.tenants.filter((t) => !t.connectable).map((t) => t.name);
    if (blocked.length) {
      checks.push(
        problem(
          S,
          'tenants',
          `${found.tenants.length} tenant(s); "${pgc.user}" may not connect to ${blocked.join(', ')}`,
          blocked.map((b) => `GRANT CONNECT ON DATABASE ${quoteIdent(b)} TO ${quoteIdent(pgc.user)};`).join(' '),
        ),
      );
      const open = found.tenants.filter((t) => t.connectable).map((t) => t.name);
      if (open.length) checks.push(await checkReadable(config, open.slice(0, READ_SAMPLE), open.length));
    } else if (!found.tenants.length) {
      checks.push(
        warning(
          S,
          'tenants',
          `no database is owned by "${found.odooRole}"${found.missing.length ? ` (DR_TENANTS names ${found.missing.join(', ')}, which are not tenants)` : ''}`,
          'check ODOO_DB_USER (the db_user of odoo.conf) and DR_TENANTS',
        ),
      );
    } else {
      const names = found.tenants.map((t) => t.name);
      checks.push(ok(S, 'tenants', `${names.length} tenant(s) owned by "${found.odooRole}": ${names.slice(0, 5).join(', ')}${names.length > 5 ? ', …' : ''}`));
      if (found.missing.length)
        checks.push(warning(S, 'tenants', `DR_TENANTS names ${found.missing.join(', ')}, which are not tenants`, 'remove them from DR_TENANTS'));
      checks.push(await checkReadable(config, names.slice(0, READ_SAMPLE), names.length));
    }
  } catch (err) {
    checks.push(problem(S, 'tenants', `cannot list tenants: ${firstLine(err)}`, `GRANT pg_read_all_data TO ${quoteIdent(pgc.user)}; or make it a superuser`));
  }

  try {
    const tools = await findClientTools(major, pgc.binDir ? { binDir: pgc.binDir } : {});
    checks.push(ok(S, 'pg_dump', `pg_dump ${tools.version.full} (${tools.pgDump}) for a PostgreSQL ${major} server`));
  } catch (err) {
    checks.push(problem(S, 'pg_dump', firstLine(err), `apt-get install postgresql-client-${major} (PGDG repository), or set DR_PG_BIN_DIR to its bin folder`));
  }
  return checks;
}

/** pg_dump reads every table: SELECT on each of them, in a sample of tenants. */
async function checkReadable(config: DrConfig, sample: string[], total: number): Promise<SetupCheck> {
  const pgc = config.postgres;
  const denied: string[] = [];
  let checked = 0;
  for (const db of sample) {
    try {
      const n = await withClient(pgc, db, async (client) => {
        const { rows } = await client.query<{ n: string }>(
          `SELECT count(*) AS n FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p', 'S') AND s.nspname NOT IN ('pg_catalog', 'information_schema') AND s.nspname NOT LIKE 'pg_toast%'
              AND NOT has_table_privilege(c.oid, 'SELECT')`,
        );
        return Number(rows[0]!.n);
      });
      checked++;
      if (n > 0) denied.push(`${db} (${n} tables)`);
    } catch (err) {
      // Dropped since it was listed: not this check's business.
      if (err instanceof TenantNotFoundError) continue;
      denied.push(`${db} (${firstLine(err)})`);
    }
  }
  if (!checked && !denied.length) return skipped(S, 'tenant tables', 'the tenants were dropped while being checked');
  const scope = total > sample.length ? `${checked} of ${total} tenants checked` : `${checked} tenant(s)`;
  if (denied.length) {
    return problem(
      S,
      'tenant tables',
      `"${pgc.user}" cannot read every table of ${denied.join(', ')}: pg_dump would fail`,
      `GRANT pg_read_all_data TO ${quoteIdent(pgc.user)}; (PostgreSQL 14+) or make it a superuser`,
    );
  }
  return ok(S, 'tenant tables', `every table readable by "${pgc.user}" (${scope})`);
}
