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
import { lstat, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import type { DrConfig } from '../config';
import { DrError, InvalidInputError } from '../errors';
import { quoteIdent, withClient } from '../postgres';
import { parseScratchMarker, scratchMarker } from '../restore/scratch';
import { filestoreDir, parseFilestorePreRecoveryDir, stampTime } from './names';
import { SHADOW_PURPOSE } from './shadow';

export const PRE_RECOVERY_MARKER_PREFIX = 'odoo-dr-pre-recovery:';

export interface SwapPlan {
  tenant: string;
  shadowDb: string;
  shadowDir: string;
  preRecoveryDb: string;
  preRecoveryDir: string;
  /** The tenant database existed when the recovery was planned (false: recovered directly under its name). */
  tenantExisted: boolean;
  /** The tenant's filestore folder existed when the recovery was planned. */
  tenantDirExisted: boolean;
}

export interface PreRecoveryMarker {
  database: string;
  tenant: string;
  createdAt: string;
  original: { comment: string | null; allowConnections: boolean };
}

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

interface DbRow {
  comment: string | null;
  allowConn: boolean;
  owner: string;
  template: boolean;
}

interface DbState {
  t: DbRow | undefined;
  p: DbRow | undefined;
  s: DbRow | undefined;
}

// --- markers --------------------------------------------------------------------------------------------

export function preRecoveryMarker(m: PreRecoveryMarker): string {
  return `${PRE_RECOVERY_MARKER_PREFIX}${JSON.stringify(m)}`;
}

export function parsePreRecoveryMarker(comment: string | null | undefined): PreRecoveryMarker | undefined {
  if (!comment?.startsWith(PRE_RECOVERY_MARKER_PREFIX)) return undefined;
  try {
    const d = JSON.parse(comment.slice(PRE_RECOVERY_MARKER_PREFIX.length)) as Partial<PreRecoveryMarker>;
    if (
      typeof d.database !== 'string' ||
      typeof d.tenant !== 'string' ||
      typeof d.createdAt !== 'string' ||
      Number.isNaN(Date.parse(d.createdAt)) ||
      typeof d.original !== 'object' ||
      d.original === null ||
      typeof d.original.allowConnections !== 'boolean' ||
      !(d.original.comment === null || typeof d.original.comment === 'string')
    ) {
      return undefined;
    }
    return { database: d.database, tenant: d.tenant, createdAt: d.createdAt, original: { comment: d.original.comment, allowConnections: d.original.allowConnections } };
  } catch {
    return undefined;
  }
}

/** The pre-recovery marker on `row` written for this plan. */
function preMarkerOf(row: DbRow | undefined, plan: SwapPlan): PreRecoveryMarker | undefined {
  const m = parsePreRecoveryMarker(row?.comment);
  return m && m.database === plan.preRecoveryDb && m.tenant === plan.tenant ? m : undefined;
}

/** `row` carries the scratch marker of this plan's shadow. */
function isShadowMarked(row: DbRow | undefined, plan: SwapPlan): boolean {
  const m = parseScratchMarker(row?.comment);
  return m !== undefined && m.database === plan.shadowDb && m.purpose === SHADOW_PURPOSE && m.tenant === plan.tenant;
}

// --- state ----------------------------------------------------------------------------------------------

async function readDbState(client: pg.ClientBase, plan: SwapPlan): Promise<DbState> {
  const { rows } = await client.query<{ datname: string; c: string | null; allow: boolean; owner: string; tmpl: boolean }>(
    `SELECT datname, shobj_description(oid, 'pg_database') AS c, datallowconn AS allow,
            pg_get_userbyid(datdba) AS owner, datistemplate AS tmpl
       FROM pg_database WHERE datname = ANY($1)`,
    [[plan.tenant, plan.preRecoveryDb, plan.shadowDb]],
  );
  const get = (name: string): DbRow | undefined => {
    const r = rows.find((x) => x.datname === name);
    return r && { comment: r.c, allowConn: r.allow, owner: r.owner, template: r.tmpl };
  };
  return { t: get(plan.tenant), p: get(plan.preRecoveryDb), s: get(plan.shadowDb) };
}

async function pathExists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Which database currently named `<tenant>` this is: the original tenant (not yet moved aside), the
 * recovered copy, or absent. `foreign`: a database of that name that is neither (refused).
 */
function tenantRole(st: DbState, plan: SwapPlan): 'original' | 'recovered' | 'absent' | 'foreign' {
  if (!st.t) return 'absent';
  if (isShadowMarked(st.t, plan)) return 'recovered';
  if (preMarkerOf(st.p, plan)) return 'recovered'; // the original is already under its pre-recovery name
  if (plan.tenantExisted) return 'original';
  // The tenant did not exist: a database of its name is the recovered copy once the shadow is gone.
  return st.s ? 'foreign' : 'recovered';
}

function checkPlan(config: DrConfig, plan: SwapPlan): void {
  const names = [plan.tenant, plan.shadowDb, plan.preRecoveryDb];
  if (new Set(names).size !== 3) throw new InvalidInputError(`swap plan for "${plan.tenant}": the three database names must differ`);
  const root = path.resolve(config.odoo.filestoreRoot);
  const dirs = [filestoreDir(config, plan.tenant), plan.shadowDir, plan.preRecoveryDir];
  for (const d of dirs) {
    if (path.dirname(path.resolve(d)) !== root) {
      throw new InvalidInputError(`swap plan for "${plan.tenant}": ${d} is not directly under the filestore root ${root} (the swap must be a rename on one filesystem)`);
    }
  }
  if (new Set(dirs.map((d) => path.resolve(d))).size !== 3) throw new InvalidInputError(`swap plan for "${plan.tenant}": the three filestore folders must differ`);
}

const terminate = (client: pg.ClientBase, db: string) =>
  client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [db]);

/**
 * ALTER DATABASE … RENAME fails while a session is connected (even one being terminated, until it
 * has exited): terminate, then retry briefly.
 */
async function renameDatabase(client: pg.ClientBase, from: string, to: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    await terminate(client, from);
    try {
      await client.query(`ALTER DATABASE ${quoteIdent(from)} RENAME TO ${quoteIdent(to)}`);
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== '55006' || attempt >= 50) throw err; // object_in_use
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const setComment = (client: pg.ClientBase, db: string, comment: string | null) =>
  client.query(`COMMENT ON DATABASE ${quoteIdent(db)} IS ${comment === null ? 'NULL' : pg.escapeLiteral(comment)}`);

const setAllowConn = (client: pg.ClientBase, db: string, allow: boolean) =>
  client.query(`ALTER DATABASE ${quoteIdent(db)} ALLOW_CONNECTIONS ${allow ? 'true' : 'false'}`);

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
        throw new InvalidInputError(`${where}: the shadow filestore ${plan.shadowDir} does not exist (the shadow restore did not finish); restore the shadow again`);
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

// --- state ----------------------------------------------------------------------------------------------

/**
 * 'before': nothing of the swap done (the shadow and its folder in place, the tenant untouched);
 * 'swapped': everything done; 'partial': anything in between (re-run swapIn or swapBack).
 */
export async function swapState(config: DrConfig, plan: SwapPlan): Promise<'before' | 'partial' | 'swapped'> {
  checkPlan(config, plan);
  const tenantDir = filestoreDir(config, plan.tenant);
  const st = await withClient(config.postgres, config.postgres.maintenanceDb, (client) => readDbState(client, plan));
  const shadowDir = await pathExists(plan.shadowDir);
  const preDir = await pathExists(plan.preRecoveryDir);
  const liveDir = await pathExists(tenantDir);

  const before =
    st.s !== undefined &&
    isShadowMarked(st.s, plan) &&
    st.s.allowConn &&
    st.p === undefined &&
    (plan.tenantExisted ? st.t !== undefined && parsePreRecoveryMarker(st.t.comment)?.database !== plan.preRecoveryDb : st.t === undefined) &&
    shadowDir &&
    !preDir;
  if (before) return 'before';
  const swapped =
    st.s === undefined &&
    st.t !== undefined &&
    !isShadowMarked(st.t, plan) &&
    st.t.allowConn &&
    st.t.owner === config.odoo.dbUser &&
    (plan.tenantExisted ? preMarkerOf(st.p, plan) !== undefined : true) &&
    !shadowDir &&
    liveDir &&
    (plan.tenantDirExisted ? preDir : true);
  return swapped ? 'swapped' : 'partial';
}

// --- retention ------------------------------------------------------------------------------------------

/**
 * Drops pre-recovery databases and folders of `tenant` (every tenant if undefined) older than
 * `olderThanDays`: only databases carrying a pre-recovery marker naming themselves (so an unmarked
 * database is never dropped, whatever its name), and only folders named
 * `.<tenant>.pre-recovery-<YYYYMMDDHHMMSS>` directly under the filestore root. Returns what it removed.
 */
export async function dropPreRecovery(config: DrConfig, tenant: string | undefined, olderThanDays: number, now: Date, opts: { dryRun?: boolean } = {}): Promise<string[]> {
  if (!(olderThanDays >= 0)) throw new InvalidInputError(`olderThanDays must be 0 or more, got ${olderThanDays}`);
  const cutoff = now.getTime() - olderThanDays * 86_400_000;
  const removed: string[] = [];
  await withClient(config.postgres, config.postgres.maintenanceDb, async (client) => {
    const { rows } = await client.query<{ datname: string; c: string | null }>(
      `SELECT datname, shobj_description(oid, 'pg_database') AS c FROM pg_database
        WHERE shobj_description(oid, 'pg_database') LIKE $1 ORDER BY datname`,
      [`${PRE_RECOVERY_MARKER_PREFIX}%`],
    );
    for (const row of rows) {
      const m = parsePreRecoveryMarker(row.c);
      if (!m || m.database !== row.datname) continue; // a tenant still carrying the marker mid-swap: never
      if (tenant !== undefined && m.tenant !== tenant) continue;
      if (Date.parse(m.createdAt) >= cutoff) continue;
      if (opts.dryRun) {
        removed.push(row.datname);
        continue;
      }
      // Re-check in the same session right before the drop.
      const again = await client.query<{ c: string | null }>("SELECT shobj_description(oid, 'pg_database') AS c FROM pg_database WHERE datname = $1", [row.datname]);
      const m2 = parsePreRecoveryMarker(again.rows[0]?.c);
      if (!m2 || m2.database !== row.datname) continue;
      await terminate(client, row.datname);
      await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(row.datname)} WITH (FORCE)`);
      removed.push(row.datname);
    }
  });
  let entries: string[];
  try {
    entries = await readdir(config.odoo.filestoreRoot);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return removed;
    throw err;
  }
  for (const name of entries.sort()) {
    const parsed = parseFilestorePreRecoveryDir(name);
    if (!parsed || (tenant !== undefined && parsed.tenant !== tenant)) continue;
    if (stampTime(parsed.stamp).getTime() >= cutoff) continue;
    const full = path.join(config.odoo.filestoreRoot, name);
    if (!opts.dryRun) await rm(full, { recursive: true, force: true });
    removed.push(full);
  }
  return removed;
}

// --- start-up reconciliation ----------------------------------------------------------------------------

/**
 * A swap whose recovery is gone (its workflow terminated or reset) and that left the tenant offline:
 * `fenced`, the original still under its name but carrying the pre-recovery marker (maybe closed to
 * connections); `moved-aside`, the original under its pre-recovery name and no database under the
 * tenant's. A completed swap (recovered copy under the name, original aside) is not interrupted.
 */
export interface InterruptedSwap {
  tenant: string;
  kind: 'fenced' | 'moved-aside';
  /** Where the original database is now. */
  database: string;
  marker: PreRecoveryMarker;
}

export async function findInterruptedSwaps(config: DrConfig): Promise<InterruptedSwap[]> {
  return withClient(config.postgres, config.postgres.maintenanceDb, readInterruptedSwaps);
}

async function readInterruptedSwaps(client: pg.ClientBase): Promise<InterruptedSwap[]> {
  const { rows } = await client.query<{ datname: string; c: string | null }>(
    `SELECT datname, shobj_description(oid, 'pg_database') AS c FROM pg_database ORDER BY datname`,
  );
  const names = new Set(rows.map((r) => r.datname));
  // Whenever a swap is interrupted with its tenant's name free (between the renames, either way),
  // that recovery's shadow exists, marked. Without one, the swap finished and the tenant was dropped
  // since (removed on purpose): its pre-recovery copy must not come back under the name.
  const shadowed = new Set<string>();
  for (const row of rows) {
    const m = parseScratchMarker(row.c);
    if (m?.purpose === SHADOW_PURPOSE && m.database === row.datname && m.tenant) shadowed.add(m.tenant);
  }
  const found: InterruptedSwap[] = [];
  for (const row of rows) {
    const marker = parsePreRecoveryMarker(row.c);
    if (!marker) continue;
    if (marker.database === row.datname && !names.has(marker.tenant) && shadowed.has(marker.tenant)) found.push({ tenant: marker.tenant, kind: 'moved-aside', database: row.datname, marker });
    else if (marker.tenant === row.datname && marker.database !== row.datname) found.push({ tenant: marker.tenant, kind: 'fenced', database: row.datname, marker });
  }
  return found;
}

/**
 * Puts an interrupted swap's tenant back exactly as it was before the recovery: the original
 * database under its name with its comment and ALLOW_CONNECTIONS, and its original filestore folder
 * (kept as `.<tenant>.pre-recovery-<stamp>`) back in place; a folder found at the tenant's place
 * meanwhile is the recovered one, kept as `.<tenant>.recovered-<stamp>`. Re-reads the state first:
 * does nothing if it changed since `findInterruptedSwaps`. Returns what it did.
 */
export async function undoInterruptedSwap(config: DrConfig, swap: InterruptedSwap): Promise<string | undefined> {
  const stamp = /(\d{14})$/.exec(swap.marker.database)?.[1];
  const did = await withClient(config.postgres, config.postgres.maintenanceDb, async (client) => {
    const now = (await readInterruptedSwaps(client)).find((s) => s.database === swap.database && s.kind === swap.kind && s.tenant === swap.tenant);
    if (!now) return undefined;
    if (now.kind === 'moved-aside') await renameDatabase(client, now.database, now.tenant);
    await setAllowConn(client, now.tenant, now.marker.original.allowConnections);
    await setComment(client, now.tenant, now.marker.original.comment);
    return `${now.tenant}: interrupted recovery undone (database ${now.kind === 'moved-aside' ? `${now.database} renamed back` : 'reopened'})`;
  });
  if (!did || !stamp) return did;
  const tenantDir = filestoreDir(config, swap.tenant);
  const preDir = path.join(config.odoo.filestoreRoot, `.${swap.tenant}.pre-recovery-${stamp}`);
  if (await pathExists(preDir)) {
    if (await pathExists(tenantDir)) await rename(tenantDir, path.join(config.odoo.filestoreRoot, `.${swap.tenant}.recovered-${stamp}`));
    await rename(preDir, tenantDir);
    return `${did}, filestore put back`;
  }
  return did;
}
