/**
 * Activities: thin adapters over src/. Created from a factory so tests and the worker inject the
 * configuration (which holds the secrets: they stay in the worker process, never in histories).
 */
import { configSecrets, type DrConfig } from '../src/config';
import { discoverTenants as discover, type DiscoveryRequest, type DiscoveryResult } from '../src/tenants';
import { createBackupActivities } from './backup';
import type { BackupTestHooks } from './backup-tenant';
import { createRecoveryActivities, type RecoveryTestHooks } from './recovery';
import { createValidationActivities } from './validation';
import { createMonitorActivities } from './monitor';
import { createRetentionActivities, type RetentionTestHooks } from './retention';
import { mapped } from './errors';

export type * from './backup';
export type * from './backup-tenant';
export type * from './validation';
export type * from './recovery';
export type * from './monitor';
export type * from './retention';

export interface ActivityDeps {
  config: DrConfig;
  /** Fault injection (tests only). */
  backupHooks?: BackupTestHooks;
  recoveryHooks?: RecoveryTestHooks;
  retentionHooks?: RetentionTestHooks;
  /** This worker process's own task queue (see temporal/worker.ts), for sessions pinned to one disk. */
  workerQueue?: string;
}

export type DiscoverTenantsInput = DiscoveryRequest;
export type DiscoverTenantsResult = DiscoveryResult;

export function createActivities({ config, backupHooks, recoveryHooks, retentionHooks, workerQueue }: ActivityDeps) {
  const secrets = configSecrets(config);
  return {
    /** Lists the tenants to work on, by Odoo's own rule plus the configured filters. */
    discoverTenants: mapped(secrets, async (input: DiscoverTenantsInput): Promise<DiscoverTenantsResult> => {
      return discover(config, input);
    }),
    ...createBackupActivities(config, secrets, backupHooks, workerQueue),
    ...createValidationActivities(config, secrets),
    ...createRecoveryActivities(config, secrets, recoveryHooks),
    ...createMonitorActivities(config, secrets),
    ...createRetentionActivities(config, secrets, retentionHooks),
  };
}

export type Activities = ReturnType<typeof createActivities>;
