/**
 * "Recovered from session S": a per-database setting (`odoo_dr.recovered_from`, a custom option
 * PostgreSQL stores in pg_db_role_setting and Odoo ignores) written once a tenant is swapped in and
 * healthy. A resumed recovery (`--resume`: the same recovery's workflow) and a new site recovery
 * from the same session skip the tenants that carry it: the cluster itself says what is done,
 * whichever worker or Temporal server ran the earlier attempt. A later single-tenant recovery never
 * skips (the tenant may have changed since).
 */
import pg from 'pg';
import type { DrConfig } from '../config';
import { quoteIdent, withClient } from '../postgres';

const SETTING = 'odoo_dr.recovered_from';

export interface RecoveredMark {
  session: string;
  workflowId: string;
  at: string;
  /** Recovered by a site recovery (`--all`). */
  site: boolean;
}

/** The tenant database's record of the recovery that put it in place, if any. */
export async function recoveredMark(config: DrConfig, tenant: string): Promise<RecoveredMark | undefined> {
  return withClient(config.postgres, config.postgres.maintenanceDb, async (client) => {
    const { rows } = await client.query<{ setconfig: string[] | null }>(
      `SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
        WHERE d.datname = $1 AND s.setrole = 0`,
      [tenant],
    );
    const value = rows[0]?.setconfig?.find((c) => c.startsWith(`${SETTING}=`))?.slice(SETTING.length + 1);
    if (!value) return undefined;
    const [session, workflowId, at, kind] = value.split('|');
    if (!session || !workflowId || !at) return undefined;
    return { session, workflowId, at, site: kind === 'site' };
  });
}

/** Records that `tenant` now holds `session`'s data, recovered and verified by `workflowId`. */
export async function markRecovered(config: DrConfig, tenant: string, mark: Omit<RecoveredMark, 'at'>): Promise<void> {
  const value = `${mark.session}|${mark.workflowId}|${new Date().toISOString()}|${mark.site ? 'site' : 'tenant'}`;
  await withClient(config.postgres, config.postgres.maintenanceDb, async (client) => {
    await client.query(`ALTER DATABASE ${quoteIdent(tenant)} SET ${SETTING} TO ${pg.escapeLiteral(value)}`);
  });
}
