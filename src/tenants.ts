/**
 * Tenant discovery. A tenant is what Odoo itself would list (odoo/service/db.py list_dbs): a
 * database owned by the Odoo role, not a template, accepting connections, other than the
 * maintenance databases; then DR_TENANTS restricts and DR_EXCLUDE_TENANTS removes.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { DrConfig } from './config';
import { ODOO_DB_NAME } from './odoo/db-name';
import { withClient } from './postgres';

export { ODOO_DB_NAME };

export interface Tenant {
  name: string;
  /** pg_database_size, bytes. */
  databaseBytes: number;
  /** `<filestore root>/<name>`; Odoo creates it lazily, so it may not exist yet. */
  filestoreDir: string;
  filestoreExists: boolean;
  /** Whether POSTGRES_USER may connect (a tenant we cannot read must be reported, not skipped). */
  connectable: boolean;
}

export interface DiscoveryRequest {
  /** Only these tenants; replaces DR_TENANTS when given. */
  include?: string[];
  /** Excluded in addition to DR_EXCLUDE_TENANTS. */
  exclude?: string[];
}

export interface DiscoveryResult {
  tenants: Tenant[];
  /** Tenants Odoo would list that were left out by an exclusion. */
  excluded: string[];
  /** Requested tenants that are not tenants (absent, not owned by the Odoo role, template…). */
  missing: string[];
  /** Databases owned by the Odoo role whose name Odoo itself would refuse (unsafe as a folder name). */
  invalidNames: string[];
  odooRole: string;
}

export async function discoverTenants(config: DrConfig, request: DiscoveryRequest = {}): Promise<DiscoveryResult> {
  const { postgres, odoo } = config;
  const include = request.include?.length ? request.include : config.tenants.include;
  const rows = await withClient(postgres, postgres.maintenanceDb, async (client) => {
    const result = await client.query<{ datname: string; size: string | null; can_connect: boolean }>(
      `SELECT d.datname,
              has_database_privilege(current_user, d.oid, 'CONNECT') AS can_connect,
              -- pg_database_size needs CONNECT (or pg_read_all_stats); do not fail discovery over it.
              -- Only for the databases asked for (it reads every file of a database).
              CASE WHEN has_database_privilege(current_user, d.oid, 'CONNECT')
                        AND (cardinality($3::text[]) = 0 OR d.datname = ANY($3::text[]))
                   THEN pg_database_size(d.oid) END AS size
         FROM pg_database d
         JOIN pg_roles r ON r.oid = d.datdba
        WHERE r.rolname = $1
          AND NOT d.datistemplate
          AND d.datallowconn
          AND d.datname NOT IN ('postgres', 'template0', 'template1', $2)
        ORDER BY d.datname`,
      [odoo.dbUser, postgres.maintenanceDb, include],
    );
    return result.rows;
  });

  const exclude = new Set([...config.tenants.exclude, ...(request.exclude ?? [])]);
  const invalidNames = rows.map((r) => r.datname).filter((n) => !ODOO_DB_NAME.test(n));
  const listed = rows.filter((r) => ODOO_DB_NAME.test(r.datname));
  const listedNames = new Set(listed.map((r) => r.datname));

  const selected = include.length ? listed.filter((r) => include.includes(r.datname)) : listed;
  const excluded = selected.filter((r) => exclude.has(r.datname)).map((r) => r.datname);
  const kept = selected.filter((r) => !exclude.has(r.datname));
  const missing = include.filter((n) => !listedNames.has(n));

  const tenants = await Promise.all(
    kept.map(async (r): Promise<Tenant> => {
      const filestoreDir = path.join(odoo.filestoreRoot, r.datname);
      const exists = await stat(filestoreDir).then(
        (s) => s.isDirectory(),
        () => false,
      );
      return {
        name: r.datname,
        databaseBytes: r.size === null ? 0 : Number(r.size),
        filestoreDir,
        filestoreExists: exists,
        connectable: r.can_connect,
      };
    }),
  );
  return { tenants, excluded, missing, invalidNames, odooRole: odoo.dbUser };
}
