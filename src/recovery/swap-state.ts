/**
 * What a recovery swap reads and the database operations it is made of: the swap plan, the
 * pre-recovery marker, the state of the three databases (tenant, pre-recovery copy, shadow) and
 * folders, which copy is which (see swap.ts for the sequence), and `swapState` for callers.
 */
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import type { DrConfig } from '../config';
import { InvalidInputError } from '../errors';
import { quoteIdent, withClient } from '../postgres';
import { parseScratchMarker } from '../restore/scratch';
import { filestoreDir } from './names';
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
    return {
      database: d.database,
      tenant: d.tenant,
      createdAt: d.createdAt,
      original: { comment: d.original.comment, allowConnections: d.original.allowConnections },
    };
  } catch {
    return undefined;
  }
}

/** The pre-recovery marker on `row` written for this plan. */
export function preMarkerOf(row: DbRow | undefined, plan: SwapPlan): PreRecoveryMarker | undefined {
  const m = parsePreRecoveryMarker(row?.comment);
  return m && m.database === plan.preRecoveryDb && m.tenant === plan.tenant ? m : undefined;
}

/** `row` carries the scratch marker of this plan's shadow. */
export function isShadowMarked(row: DbRow | undefined, plan: SwapPlan): boolean {
  const m = parseScratchMarker(row?.comment);
  return m !== undefined && m.database === plan.shadowDb && m.purpose === SHADOW_PURPOSE && m.tenant === plan.tenant;
}

// --- state ----------------------------------------------------------------------------------------------

export async function readDbState(client: pg.ClientBase, plan: SwapPlan): Promise<DbState> {
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

export async function pathExists(p: string): Promise<boolean> {
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
export function tenantRole(st: DbState, plan: SwapPlan): 'original' | 'recovered' | 'absent' | 'foreign' {
  if (!st.t) return 'absent';
  if (isShadowMarked(st.t, plan)) return 'recovered';
  if (preMarkerOf(st.p, plan)) return 'recovered'; // the original is already under its pre-recovery name
  if (plan.tenantExisted) return 'original';
  // The tenant did not exist: a database of its name is the recovered copy once the shadow is gone.
  return st.s ? 'foreign' : 'recovered';
}

export function checkPlan(config: DrConfig, plan: SwapPlan): void {
  const names = [plan.tenant, plan.shadowDb, plan.preRecoveryDb];
  if (new Set(names).size !== 3) throw new InvalidInputError(`swap plan for "${plan.tenant}": the three database names must differ`);
  const root = path.resolve(config.odoo.filestoreRoot);
  const dirs = [filestoreDir(config, plan.tenant), plan.shadowDir, plan.preRecoveryDir];
  for (const d of dirs) {
    if (path.dirname(path.resolve(d)) !== root) {
      throw new InvalidInputError(
        `swap plan for "${plan.tenant}": ${d} is not directly under the filestore root ${root} (the swap must be a rename on one filesystem)`,
      );
    }
  }
  if (new Set(dirs.map((d) => path.resolve(d))).size !== 3)
    throw new InvalidInputError(`swap plan for "${plan.tenant}": the three filestore folders must differ`);
}

export const terminate = (client: pg.ClientBase, db: string) =>
  client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [db]);

/**
 * ALTER DATABASE … RENAME fails while a session is connected (even one being terminated, until it
 * has exited): terminate, then retry briefly.
 */
export async function renameDatabase(client: pg.ClientBase, from: string, to: string): Promise<void> {
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

export const setComment = (client: pg.ClientBase, db: string, comment: string | null) =>
  client.query(`COMMENT ON DATABASE ${quoteIdent(db)} IS ${comment === null ? 'NULL' : pg.escapeLiteral(comment)}`);

export const setAllowConn = (client: pg.ClientBase, db: string, allow: boolean) =>
  client.query(`ALTER DATABASE ${quoteIdent(db)} ALLOW_CONNECTIONS ${allow ? 'true' : 'false'}`);

// --- the swap as a whole ----------------------------------------------------------------------------------

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
