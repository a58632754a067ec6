/**
 * What a fault case measures: the tenant's data (every table's rows, every filestore file) before
 * and after, and what odoo-dr left behind. Shared by the fault cases.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import type { DrConfig } from '../../src/config';
import { withClient } from '../../src/postgres';
import { deadOwnerHere } from '../../src/restore/process-owner';
import { createS3Client } from '../../src/storage/s3';
import { filestoreFiles } from '../helpers/files';
import { adminQuery } from '../helpers/pg';

export interface TenantData {
  /** md5 of every row of every table, per table. */
  tables: Record<string, string>;
  /** sha1 of every filestore file, by path. */
  files: Record<string, string>;
}

export async function tenantData(config: DrConfig, tenant: string): Promise<TenantData> {
  const tables: Record<string, string> = {};
  await withClient(config.postgres, tenant, async (c) => {
    const { rows } = await c.query<{ t: string }>(
      "SELECT quote_ident(table_name) AS t FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
    );
    for (const { t } of rows) {
      const r = await c.query<{ h: string | null }>(`SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) AS h FROM ${t} x`);
      tables[t] = r.rows[0]?.h ?? 'empty';
    }
  });
  const dir = path.join(config.odoo.filestoreRoot, tenant);
  const files: Record<string, string> = {};
  for (const entry of filestoreFiles(dir)) {
    const at = entry.lastIndexOf(':');
    files[entry.slice(0, at)] = entry.slice(at + 1);
  }
  return { tables, files };
}

/** How many tables and files differ (missing, extra or changed): the data lost, 0 when equal. */
export function dataLost(before: TenantData, after: TenantData): number {
  let lost = 0;
  for (const k of new Set([...Object.keys(before.tables), ...Object.keys(after.tables)])) if (before.tables[k] !== after.tables[k]) lost++;
  for (const k of new Set([...Object.keys(before.files), ...Object.keys(after.files)])) if (before.files[k] !== after.files[k]) lost++;
  return lost;
}

function walk(dir: string, keep: (file: string) => boolean, out: string[] = []): string[] {
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, keep, out);
    else if (keep(p)) out.push(p);
  }
  return out;
}

/**
 * What odoo-dr left behind for `tenant`: shadow/test databases, one-time restore roles, shadow
 * folders, files in scratch folders, `.partial` files, blob temp files, the tenant's multipart uploads.
 * Intentional copies (pre-recovery databases and folders, kept for retention) are not leftovers.
 */
export async function leftovers(config: DrConfig, tenant: string, opts: { killedPids?: number[] } = {}): Promise<string[]> {
  const found: string[] = [];
  const dbs = (await adminQuery(
    "SELECT datname FROM pg_database WHERE datname LIKE $1 AND (datname LIKE '%\\_dr\\_shadow\\_%' OR datname LIKE '%\\_dr\\_test\\_%')",
    [`${tenant}%`],
  )) as Array<{ datname: string }>;
  found.push(...dbs.map((d) => `database ${d.datname}`));
  // A restore role in use by a live process (another run's restore) is not a leftover; one of a dead
  // process, or one that cannot be traced to a process, is.
  const roles = (await adminQuery(
    "SELECT rolname, shobj_description(oid, 'pg_authid') AS c FROM pg_roles WHERE rolname LIKE 'odoo\\_dr\\_restore\\_%'",
  )) as Array<{ rolname: string; c: string | null }>;
  // With `killedPids`, only the roles of the processes this case killed (another run's may die meanwhile).
  const ours = (owner: string) => deadOwnerHere(owner) && (!opts.killedPids || opts.killedPids.some((pid) => owner.endsWith(`.${pid}`)));
  found.push(...roles.filter((r) => !r.c?.startsWith('odoo-dr-restore:') || ours(r.c.slice('odoo-dr-restore:'.length))).map((r) => `role ${r.rolname}`));
  if (existsSync(config.odoo.filestoreRoot)) {
    for (const d of readdirSync(config.odoo.filestoreRoot))
      if (d.startsWith(`.${tenant}.dr-shadow-`) || d.startsWith(`.${tenant}.recovered-`)) found.push(`folder ${d}`);
  }
  found.push(...walk(path.join(config.backupDir, 'scratch'), () => true).map((f) => `scratch file ${path.relative(config.backupDir, f)}`));
  found.push(...walk(config.backupDir, (f) => f.endsWith('.partial')).map((f) => `partial file ${path.relative(config.backupDir, f)}`));
  for (const tmp of ['packs', 'blobs'])
    found.push(
      ...walk(path.join(config.backupDir, tmp, '.tmp'), () => true).map((f) => `${tmp.slice(0, -1)} temp file ${path.basename(f)} (${statSync(f).size} bytes)`),
    );
  if (config.cloud) {
    const client = createS3Client(config.cloud);
    const page = await client.send(
      new ListMultipartUploadsCommand({ Bucket: config.cloud.bucket, Prefix: config.cloud.prefix ? `${config.cloud.prefix}/` : undefined }),
    );
    found.push(...(page.Uploads ?? []).filter((u) => u.Key?.includes(`/${tenant}/`)).map((u) => `multipart upload ${u.Key}`));
  }
  return found;
}
