/**
 * The recovery swap: the verified shadow replaces the live tenant by renames, the live tenant is
 * kept under its pre-recovery name. Odoo is stopped by the caller before and started after.
 *
 * Every sub-step reads the current state first and acts only if it still has to, so `swapIn` and
 * `swapBack` can be re-run after a crash at any point and continue correctly. What tells the
 * copies apart, at every moment:
 *
 * - the original tenant database gets, before anything else, a comment marker
 *   `odoo-dr-pre-recovery:{database: <preRecoveryDb>, tenant, createdAt, original: {comment,
 *   allowConnections}}` recording what `swapBack` must put back. It keeps the marker under its
 *   pre-recovery name, with ALLOW_CONNECTIONS false: Odoo (`list_dbs`, cron workers) never sees it,
 *   and retention (`dropPreRecovery`) drops only databases carrying that marker;
 * - the shadow carries the scratch marker naming the shadow (`restoreShadow`) until, once renamed to
 *   the tenant and given to the Odoo role, the marker is replaced by the original comment;
 * - filestore folders: the shadow folder exists until it is renamed into place, the pre-recovery
 *   folder exists once the original was moved aside.
 *
 * swapIn: mark-tenant, fence-tenant (ALLOW_CONNECTIONS false, terminate sessions), rename-tenant
 * (→ pre-recovery), fence-shadow, rename-shadow (→ tenant), own-tenant (OWNER → Odoo role),
 * unmark-tenant, open-tenant (ALLOW_CONNECTIONS true), move-filestore (→ pre-recovery folder),
 * move-shadow-filestore (→ tenant folder).
 * swapBack: the inverse, database renames first, then the folders, then the tenant's comment and
 * connections (the database steps are the ones that fail when PostgreSQL is down: until they
 * succeed the tenant stays whole as recovered, never the backup's database with the old files; the
 * marker goes last, so an interrupted swap-back is always found); the recovered copy becomes the shadow again (marked, owned by the DR
 * role, connectable, its folder back at the shadow folder): `dropShadow` removes it, or a new
 * `swapIn` puts it back. The tenant ends exactly as before: name, owner, comment, ALLOW_CONNECTIONS,
 * content, filestore folder.
 */
import { rename } from 'node:fs/promises';
import type { DrConfig } from '../config';
import { DrError, InvalidInputError } from '../errors';
import { quoteIdent, withClient } from '../postgres';
import { scratchMarker } from '../restore/scratch';
import { filestoreDir } from './names';
import { SHADOW_PURPOSE } from './shadow';
import {
  checkPlan,
  isShadowMarked,
  pathExists,
  preMarkerOf,
  preRecoveryMarker,
  readDbState,
  renameDatabase,
  setAllowConn,
  setComment,
  tenantRole,
  terminate,
  type PreRecoveryMarker,
  type SwapPlan,
} from './swap-state';

export const SWAP_IN_STEPS = [
  'mark-tenant',
  'fence-tenant',
  'rename-tenant',
  'fence-shadow',
  'rename-shadow',
  'own-tenant',
  'unmark-tenant',
  'open-tenant',
  'move-filestore',
  'move-shadow-filestore',
] as const;
export type SwapInStep = (typeof SWAP_IN_STEPS)[number];

export const SWAP_BACK_STEPS = [
  'fence-recovered',
  'remark-shadow',
  'disown-shadow',
  'rename-back-shadow',
  'open-shadow',
  'rename-back-tenant',
  'unmove-shadow-filestore',
  'unmove-filestore',
  'restore-tenant',
] as const;
export type SwapBackStep = (typeof SWAP_BACK_STEPS)[number];

/** Test hook: stop (as if the process died) right after the named sub-step. */
export interface SwapHooks<S extends string> {
  stopAfter?: S;
}

/** The test hook's simulated crash (a DrError, so withClient passes it through unchanged). */
class Stopped extends DrError {
  readonly permanent = true;
}

// --- swapIn ---------------------------------------------------------------------------------------------

/**
 * Puts the shadow in place of the tenant (see the module comment). `downtimeMs`: from fencing the
 * tenant to the recovered tenant and its filestore being in place.
 */
export async function swapIn(config: DrConfig, plan: SwapPlan, hooks: SwapHooks<SwapInStep> = {}): Promise<{ downtimeMs: number }> {
  checkPlan(config, plan);
  const started = Date.now();
  const tenantDir = filestoreDir(config, plan.tenant);
  const done = (step: SwapInStep) => {
    if (hooks.stopAfter === step) throw new Stopped(step);
  };
  try {
    await withClient(config.postgres, config.postgres.maintenanceDb, async (client) => {
      let st = await readDbState(client, plan);
      const where = `swap of "${plan.tenant}"`;
      // A shadow not yet renamed must be complete: its folder exists only after a finished restore.
      if (st.s && !(await pathExists(plan.shadowDir))) {
        throw new InvalidInputError(
          `${where}: the shadow filestore ${plan.shadowDir} does not exist (the shadow restore did not finish); restore the shadow again`,
        );
      }
      if (st.s && !isShadowMarked(st.s, plan)) {
        throw new InvalidInputError(`${where}: database "${plan.shadowDb}" is not marked as this recovery's shadow; refusing to swap it in`);
      }
      let role = tenantRole(st, plan);
      if (role === 'foreign') {
        throw new InvalidInputError(`${where}: a database "${plan.tenant}" appeared since the plan (the tenant did not exist); refusing to replace it`);
      }
      if (plan.tenantExisted && role === 'absent' && !st.p) {
        throw new InvalidInputError(`${where}: the tenant database "${plan.tenant}" no longer exists and was not moved aside by this recovery`);
      }
      if (st.p && !preMarkerOf(st.p, plan)) {
        throw new InvalidInputError(`${where}: a database "${plan.preRecoveryDb}" exists that this recovery did not make; refusing to continue`);
      }

      // mark-tenant: record what swapBack must restore, before changing anything.
      if (role === 'original' && !preMarkerOf(st.t, plan)) {
        const marker: PreRecoveryMarker = {
          database: plan.preRecoveryDb,
          tenant: plan.tenant,
          createdAt: new Date().toISOString(),
          original: { comment: st.t!.comment, allowConnections: st.t!.allowConn },
        };
        await setComment(client, plan.tenant, preRecoveryMarker(marker));
      }
      done('mark-tenant');

      // fence-tenant: no new sessions, the remaining ones terminated.
      if (role === 'original') {
        await setAllowConn(client, plan.tenant, false);
        await terminate(client, plan.tenant);
      }
      done('fence-tenant');

      // rename-tenant
      if (role === 'original') {
        await renameDatabase(client, plan.tenant, plan.preRecoveryDb);
      }
      done('rename-tenant');

      st = await readDbState(client, plan);
      role = tenantRole(st, plan);
      // fence-shadow: verification sessions closed, no new ones until the tenant is opened.
      if (st.s) {
        await setAllowConn(client, plan.shadowDb, false);
        await terminate(client, plan.shadowDb);
      }
      done('fence-shadow');

      // rename-shadow
      if (st.s) {
        if (st.t) throw new InvalidInputError(`${where}: "${plan.tenant}" still exists; cannot rename the shadow to it`);
        await renameDatabase(client, plan.shadowDb, plan.tenant);
      } else if (role !== 'recovered') {
        throw new InvalidInputError(`${where}: the shadow database "${plan.shadowDb}" does not exist and "${plan.tenant}" is not the recovered copy`);
      }
      done('rename-shadow');

      st = await readDbState(client, plan);
      // own-tenant: the Odoo role owns it (Odoo lists only its own databases).
      if (st.t!.owner !== config.odoo.dbUser) {
        await client.query(`ALTER DATABASE ${quoteIdent(plan.tenant)} OWNER TO ${quoteIdent(config.odoo.dbUser)}`);
      }
      done('own-tenant');

      // unmark-tenant: a promoted copy must not stay droppable; it gets the original's comment.
      if (isShadowMarked(st.t, plan)) {
        await setComment(client, plan.tenant, preMarkerOf(st.p, plan)?.original.comment ?? null);
      }
      done('unmark-tenant');

      // open-tenant
      if (!st.t!.allowConn) await setAllowConn(client, plan.tenant, true);
      done('open-tenant');
    });

    // move-filestore: the shadow folder still exists ⇒ whatever is at the tenant's folder is the original.
    if ((await pathExists(plan.shadowDir)) && (await pathExists(tenantDir))) {
      if (await pathExists(plan.preRecoveryDir)) {
        throw new InvalidInputError(
          `swap of "${plan.tenant}": ${tenantDir}, ${plan.shadowDir} and ${plan.preRecoveryDir} all exist; refusing to overwrite a pre-recovery filestore`,
        );
      }
      await rename(tenantDir, plan.preRecoveryDir);
    }
    done('move-filestore');

    // move-shadow-filestore
    if (await pathExists(plan.shadowDir)) {
      await rename(plan.shadowDir, tenantDir);
    } else if (!(await pathExists(tenantDir))) {
      throw new InvalidInputError(`swap of "${plan.tenant}": neither the shadow filestore ${plan.shadowDir} nor ${tenantDir} exists`);
    }
    done('move-shadow-filestore');
  } catch (err) {
    if (err instanceof Stopped) return { downtimeMs: Date.now() - started };
    throw err;
  }
  return { downtimeMs: Date.now() - started };
}

// --- swapBack -------------------------------------------------------------------------------------------

/**
 * The exact inverse of swapIn, from any state it can leave (see the module comment). Idempotent.
 * The recovered copy becomes the shadow again (marked, DR-owned, connectable); the caller drops it
 * with dropShadow.
 */
export async function swapBack(config: DrConfig, plan: SwapPlan, hooks: SwapHooks<SwapBackStep> = {}): Promise<void> {
  checkPlan(config, plan);
  const tenantDir = filestoreDir(config, plan.tenant);
  const done = (step: SwapBackStep) => {
    if (hooks.stopAfter === step) throw new Stopped(step);
  };
  try {
    await withClient(config.postgres, config.postgres.maintenanceDb, async (client) => {
      let st = await readDbState(client, plan);
      const role = tenantRole(st, plan);
      const where = `swap-back of "${plan.tenant}"`;
      if (st.p && !preMarkerOf(st.p, plan)) {
        throw new InvalidInputError(`${where}: a database "${plan.preRecoveryDb}" exists that this recovery did not make; refusing to touch it`);
      }
      const recovered = role === 'recovered' && !st.s;
      if (role === 'recovered' && st.s) {
        throw new InvalidInputError(`${where}: both "${plan.tenant}" (recovered) and the shadow "${plan.shadowDb}" exist; refusing to continue`);
      }

      // fence-recovered
      if (recovered) {
        if (st.t!.allowConn) await setAllowConn(client, plan.tenant, false);
        await terminate(client, plan.tenant);
      }
      done('fence-recovered');

      // remark-shadow: marked before the rename, so a crash never leaves an unmarked shadow.
      if (recovered && !isShadowMarked(st.t, plan)) {
        await setComment(
          client,
          plan.tenant,
          scratchMarker(plan.shadowDb, { tenant: plan.tenant, purpose: SHADOW_PURPOSE, createdAt: new Date().toISOString() }),
        );
      }
      done('remark-shadow');

      // disown-shadow: back to the DR role, so no Odoo process lists it.
      if (recovered && st.t!.owner !== config.postgres.user) {
        await client.query(`ALTER DATABASE ${quoteIdent(plan.tenant)} OWNER TO ${quoteIdent(config.postgres.user)}`);
      }
      done('disown-shadow');

      // rename-back-shadow
      if (recovered) await renameDatabase(client, plan.tenant, plan.shadowDb);
      done('rename-back-shadow');

      st = await readDbState(client, plan);
      // open-shadow: as restoreShadow left it.
      if (st.s && isShadowMarked(st.s, plan) && !st.s.allowConn) await setAllowConn(client, plan.shadowDb, true);
      done('open-shadow');

      // rename-back-tenant
      if (st.p && !st.t) {
        await renameDatabase(client, plan.preRecoveryDb, plan.tenant);
      } else if (st.p && st.t) {
        throw new InvalidInputError(`${where}: "${plan.tenant}" exists beside the pre-recovery "${plan.preRecoveryDb}"; refusing to rename it back`);
      }
      done('rename-back-tenant');
    });

    // The folders after the database: they are renames on a local disk, the database steps are what can
    // fail (PostgreSQL down). Until the database is back, the tenant stays whole as recovered.
    // unmove-shadow-filestore: the tenant's folder is the recovered one if the original was moved aside,
    // or if there was none and the shadow folder is gone.
    if (!(await pathExists(plan.shadowDir)) && (await pathExists(tenantDir))) {
      const recovered = (await pathExists(plan.preRecoveryDir)) || !plan.tenantDirExisted;
      if (recovered) await rename(tenantDir, plan.shadowDir);
    }
    done('unmove-shadow-filestore');

    // unmove-filestore
    if ((await pathExists(plan.preRecoveryDir)) && !(await pathExists(tenantDir))) {
      await rename(plan.preRecoveryDir, tenantDir);
    }
    done('unmove-filestore');

    // restore-tenant, last: the marker stays until database and files are both back, so a swap-back
    // interrupted for good is found and finished at the next worker start (reconciliation).
    await withClient(config.postgres, config.postgres.maintenanceDb, async (client) => {
      const st = await readDbState(client, plan);
      const marker = preMarkerOf(st.t, plan);
      if (marker) {
        if (st.t!.allowConn !== marker.original.allowConnections) await setAllowConn(client, plan.tenant, marker.original.allowConnections);
        await setComment(client, plan.tenant, marker.original.comment);
      }
    });
    done('restore-tenant');
  } catch (err) {
    if (err instanceof Stopped) return;
    throw err;
  }
}
