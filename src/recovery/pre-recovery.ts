/**
 * The pre-recovery copies a swap leaves behind (the original database under its marked
 * pre-recovery name, the folder `.<tenant>.pre-recovery-<stamp>`): dropped by retention once old,
 * and put back at worker start-up when their swap was interrupted for good.
 */
import { readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import type { DrConfig } from '../config';
import { InvalidInputError } from '../errors';
import { quoteIdent, withClient } from '../postgres';
import { parseScratchMarker } from '../restore/scratch';
import { filestoreDir, parseFilestorePreRecoveryDir, stampTime } from './names';
import { SHADOW_PURPOSE } from './shadow';
import {
  parsePreRecoveryMarker,
  pathExists,
  PRE_RECOVERY_MARKER_PREFIX,
  renameDatabase,
  setAllowConn,
  setComment,
  terminate,
  type PreRecoveryMarker,
} from './swap-state';

// --- retention ------------------------------------------------------------------------------------------

/**
 * Drops pre-recovery databases and folders of `tenant` (every tenant if undefined) older than
 * `olderThanDays`: only databases carrying a pre-recovery marker naming themselves (so an unmarked
 * database is never dropped, whatever its name), and only folders named
 * `.<tenant>.pre-recovery-<YYYYMMDDHHMMSS>` directly under the filestore root. Returns what it removed.
 */
export async function dropPreRecovery(
  config: DrConfig,
  tenant: string | undefined,
  olderThanDays: number,
  now: Date,
  opts: { dryRun?: boolean } = {},
): Promise<string[]> {
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
      const again = await client.query<{ c: string | null }>("SELECT shobj_description(oid, 'pg_database') AS c FROM pg_database WHERE datname = $1", [
        row.datname,
      ]);
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
    if (marker.database === row.datname && !names.has(marker.tenant) && shadowed.has(marker.tenant))
      found.push({ tenant: marker.tenant, kind: 'moved-aside', database: row.datname, marker });
    else if (marker.tenant === row.datname && marker.database !== row.datname)
      found.push({ tenant: marker.tenant, kind: 'fenced', database: row.datname, marker });
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
