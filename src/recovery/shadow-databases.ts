/** The ShadowDatabases port over the configured PostgreSQL cluster (src/recovery/shadow.ts). */
import type { DrConfig } from '../config';
import type { ShadowDatabases } from '../ports';
import { withClient } from '../postgres';
import { dropShadow, restoreShadow, verifyShadow } from './shadow';

export function clusterShadowDatabases(config: DrConfig): ShadowDatabases {
  return {
    restore: (req) => restoreShadow({ config, ...req }),
    verify: (req) => verifyShadow({ config, ...req }),
    sizeOf: (database) =>
      withClient(config.postgres, config.postgres.maintenanceDb, async (c) =>
        Number((await c.query<{ s: string }>('SELECT pg_database_size($1) AS s', [database])).rows[0]!.s),
      ),
    drop: (tenant, id) => dropShadow(config, tenant, id),
  };
}
