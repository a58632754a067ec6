/**
 * Recovery activities: thin adapters over src/recovery. Each is idempotent: a retried or resumed
 * step checks the current state first (a half-done shadow is redone, a half-done swap continues).
 */
import path from 'node:path';
import { activityInfo, Context } from '@temporalio/activity';
import type { DrConfig } from '../src/config';
import { readIdentity } from '../src/crypto/age';
import { InvalidInputError } from '../src/errors';
import { restoreConfigArchive } from '../src/recovery/config-files';
import { filestorePreRecoveryDir, filestoreShadowDir, preRecoveryName, shadowName } from '../src/recovery/names';
import { checkHealth, runServiceCommand, type HealthCheck } from '../src/recovery/odoo-service';
import { prepareShadow } from '../src/recovery/prepare-shadow';
import { clusterShadowDatabases } from '../src/recovery/shadow-databases';
import { swapFilestoreBack, swapFilestoreIn } from '../src/recovery/files-swap';
import { localTenantFilestore } from '../src/recovery/tenant-filestore';
import { decryptGlobals, restoreGlobals, type GlobalsRestoreResult } from '../src/recovery/globals';
import { planRecovery, type PlanRequest, type RecoveryPlan } from '../src/recovery/plan';
import { markRecovered } from '../src/recovery/recovered';
import { SessionCatalog } from '../src/sessions/catalog';
import { ensureScratchRoot, removeScratch, scratchFolderName } from '../src/restore/scratch';
import { dropShadow } from '../src/recovery/shadow';
import { swapBack, swapIn } from '../src/recovery/swap';
import type { SwapPlan } from '../src/recovery/swap-state';
import { mapped } from './errors';
import { whileHeartbeating } from './heartbeat';

export type RecoveryScope = 'both' | 'database' | 'files';

export type PlanRecoveryInput = PlanRequest;

export interface ShadowInput {
  allowUnsigned?: boolean;
  session: string;
  tenant: string;
  id: string;
  scope: RecoveryScope;
  fromCloud: boolean;
}

export interface SwapInput {
  tenant: string;
  id: string;
  stamp: string;
  scope: RecoveryScope;
  /** As planned, before anything changed (a re-run after a crash must not re-derive them). */
  tenantExisted: boolean;
  tenantDirExisted: boolean;
}

/** Fault injection for tests only. */
export interface RecoveryTestHooks {
  /** Called before a files-only shadow is restored, with the attempt number (a test stalls an attempt here). */
  beforeRestoreFiles?: (attempt: number) => Promise<void> | void;
}

export function createRecoveryActivities(config: DrConfig, secrets: Array<string | undefined>, hooks: RecoveryTestHooks = {}) {
  const identity = async () => {
    if (!config.encryption.identityFile) throw new InvalidInputError('DR_ENCRYPTION_KEY_FILE is not set: the private identity is needed to restore');
    return readIdentity(config.encryption.identityFile);
  };
  const catalog = SessionCatalog.fromConfig(config);
  const filestore = localTenantFilestore({ filestoreRoot: config.odoo.filestoreRoot, dataDir: config.odoo.dataDir });
  const databases = clusterShadowDatabases(config);
  const permissive = SessionCatalog.fromConfig(config, { allowUnsigned: true });
  const open = (session: string, fromCloud: boolean, allowUnsigned?: boolean) =>
    (allowUnsigned ? permissive : catalog).open(session, fromCloud ? 'cloud' : 'auto');
  const scratchDir = async (purpose: string) => path.join(await ensureScratchRoot(config), scratchFolderName(purpose));
  const swapPlan = (input: SwapInput): SwapPlan => ({
    tenant: input.tenant,
    shadowDb: shadowName(input.tenant, input.id),
    shadowDir: filestoreShadowDir(config, input.tenant, input.id),
    preRecoveryDb: preRecoveryName(input.tenant, input.stamp),
    preRecoveryDir: filestorePreRecoveryDir(config, input.tenant, input.stamp),
    tenantExisted: input.tenantExisted,
    tenantDirExisted: input.tenantDirExisted,
  });

  return {
    /** The plan: session, tenants, steps, space, expected duration. Changes nothing. */
    planRecovery: mapped(secrets, async (input: PlanRecoveryInput): Promise<RecoveryPlan> => planRecovery(config, input)),

    /**
     * Restores the tenant into its shadow (database and/or filestore, from disk or the bucket) and
     * verifies it like the real tenant (not neutralized, same database.uuid). Redone from scratch
     * on retry. A shadow that does not verify is dropped and the failure is permanent.
     */
    prepareRecoveryShadow: mapped(
      secrets,
      async (input: ShadowInput): Promise<{ checks: Array<{ name: string; status: string; message: string }>; bytes: number }> => {
        const signal = Context.current().cancellationSignal;
        const beat = (phase: string, amount?: number) => Context.current().heartbeat({ phase, ...(amount !== undefined ? { amount } : {}) });
        // A folder of this attempt alone: a retry never collides with a timed-out attempt still running.
        const mirror = await scratchDir(`recovery-${input.id}-${input.tenant}`);
        try {
          const { manifest, store } = await open(input.session, input.fromCloud, input.allowUnsigned);
          return await prepareShadow({
            store,
            manifest,
            databases,
            filestore,
            tenant: input.tenant,
            id: input.id,
            scope: input.scope,
            identity: await identity(),
            mirror,
            signal,
            onProgress: beat,
            beforeRestoreFiles: () => hooks.beforeRestoreFiles?.(activityInfo().attempt),
          });
        } finally {
          await removeScratch(mirror);
        }
      },
    ),

    /** Site recovery and full mode: the cluster's roles from the session (missing ones created, existing ones kept and reported). */
    restoreClusterGlobals: mapped(secrets, async (input: { session: string; fromCloud: boolean; allowUnsigned?: boolean }): Promise<GlobalsRestoreResult> => {
      const { manifest, store } = await open(input.session, input.fromCloud, input.allowUnsigned);
      if (!manifest.globals) throw new InvalidInputError(`session ${input.session} has no cluster globals`);
      const scratch = await scratchDir('globals');
      try {
        const file = await store.fetchArtifact(manifest.globals, scratch, Context.current().cancellationSignal);
        const sql = await decryptGlobals({ encryptedFile: file, identity: await identity(), signal: Context.current().cancellationSignal });
        return await restoreGlobals({ postgres: config.postgres, sql });
      } finally {
        await removeScratch(scratch);
      }
    }),

    /** Records on the tenant database that it holds this session's data, verified (a rerun skips it). */
    markTenantRecovered: mapped(secrets, async (input: { tenant: string; session: string; workflowId: string; site: boolean }): Promise<void> =>
      markRecovered(config, input.tenant, input),
    ),

    dropRecoveryShadow: mapped(secrets, async (input: { tenant: string; id: string }): Promise<void> => dropShadow(config, input.tenant, input.id)),

    /** DR_ODOO_STOP_CMD (nothing when unset). */
    stopOdoo: mapped(secrets, async (_: Record<string, never>) =>
      whileHeartbeating(() =>
        runServiceCommand(config.odoo.stopCommand, 'stop', {
          outputFile: path.join(config.logDir, 'odoo-stop.out'),
          signal: Context.current().cancellationSignal,
        }),
      ),
    ),

    /** DR_ODOO_START_CMD (nothing when unset). */
    startOdoo: mapped(secrets, async (_: Record<string, never>) =>
      whileHeartbeating(() =>
        runServiceCommand(config.odoo.startCommand, 'start', {
          outputFile: path.join(config.logDir, 'odoo-start.out'),
          signal: Context.current().cancellationSignal,
        }),
      ),
    ),

    /** The shadow takes the tenant's place by renames; the tenant is kept as the pre-recovery copy. Idempotent. */
    swapInTenant: mapped(secrets, async (input: SwapInput): Promise<{ downtimeMs: number }> =>
      input.scope === 'files' ? swapFilestoreIn(config, swapPlan(input)) : swapIn(config, swapPlan(input)),
    ),

    /** Exact inverse of swapInTenant; idempotent, safe after a partial swap. */
    swapBackTenant: mapped(secrets, async (input: SwapInput): Promise<void> =>
      input.scope === 'files' ? swapFilestoreBack(config, swapPlan(input)) : swapBack(config, swapPlan(input)),
    ),

    /** DR_ODOO_HEALTH_URL, and per tenant the queries Odoo makes. */
    checkRecoveryHealth: mapped(secrets, async (input: { tenants: string[] }): Promise<HealthCheck[]> => checkHealth(config, input.tenants)),

    /** config-only: the configuration archive back to DR_CONFIG_PATHS, replaced files kept. */
    restoreConfiguration: mapped(
      secrets,
      async (input: { session: string; stamp: string; fromCloud?: boolean; targetRoot?: string; allowUnsigned?: boolean }) => {
        const { manifest, store } = await open(input.session, input.fromCloud ?? false, input.allowUnsigned);
        if (!manifest.config) throw new InvalidInputError(`session ${input.session} has no configuration archive`);
        const scratch = await scratchDir('config');
        try {
          const file = await store.fetchArtifact(manifest.config, scratch, Context.current().cancellationSignal);
          const r = await restoreConfigArchive({
            config,
            encryptedArchive: file,
            identity: await identity(),
            stamp: input.stamp,
            ...(input.targetRoot ? { targetRoot: input.targetRoot } : {}),
          });
          return { restored: r.restored, keptAs: r.keptAs };
        } finally {
          await removeScratch(scratch);
        }
      },
    ),
  };
}
