/**
 * What both sides of the site-recovery benchmark share: how many tenants are restored at once, and
 * the check (outside the timing) that a restored tenant has the original's move lines and files.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Client as PgClient } from 'pg';
import type { TenantInfo } from '../../test/fixtures/odoo-tenants';

/** Tenants restored at once, by odoo-dr (DR_MAX_PARALLEL_BACKUPS) and by the bare baseline. */
export const PARALLEL = 3;

export interface PgLogin {
  host: string;
  port: number;
  user: string;
  password: string;
}

async function pgCount(conn: PgLogin, database: string, sql: string): Promise<number> {
  const c = new PgClient({ ...conn, database });
  await c.connect();
  try {
    const { rows } = await c.query<{ n: string }>(sql);
    return Number(rows[0]!.n);
  } finally {
    await c.end();
  }
}

/** Regular files under a filestore folder, Odoo's `checklist/` markers excluded. */
function countFiles(dir: string, top = true): number {
  if (!existsSync(dir)) return 0;
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (top && e.name === 'checklist') continue;
    n += e.isDirectory() ? countFiles(path.join(dir, e.name), false) : 1;
  }
  return n;
}

/** Throws unless every tenant was restored (by `who`) with the original's move lines and filestore files. */
export async function assertRestored(who: string, conn: PgLogin, filestoreRoot: string, infos: TenantInfo[]): Promise<void> {
  for (const t of infos) {
    const lines = await pgCount(conn, t.name, 'SELECT count(*) AS n FROM account_move_line');
    const files = countFiles(path.join(filestoreRoot, t.name));
    if (lines !== t.tables.account_move_line || files !== t.fileCount) {
      throw new Error(`${who} restored ${t.name} with ${lines} move lines and ${files} files, expected ${t.tables.account_move_line} and ${t.fileCount}`);
    }
  }
}
