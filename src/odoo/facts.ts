/**
 * Odoo facts recorded in the manifest, read in the same snapshot as the dump so that a restore
 * test can compare them exactly: Odoo version, installed modules, row counts of the main tables,
 * attachments. `database.secret` is never read.
 */
import type pg from 'pg';

/** Tables whose row counts the manifest records (those that exist in the tenant). */
export const MAIN_TABLES = [
  'res_company',
  'res_partner',
  'res_users',
  'res_groups',
  'ir_module_module',
  'ir_config_parameter',
  'ir_cron',
  'ir_attachment',
  'ir_mail_server',
  'mail_message',
  'account_move',
  'account_move_line',
  'account_payment',
  'sale_order',
  'sale_order_line',
  'purchase_order',
  'product_template',
  'product_product',
  'stock_move',
  'stock_picking',
  'crm_lead',
  'project_task',
  'hr_employee',
] as const;

export interface OdooFacts {
  /** False when the database has no ir_module_module (not (yet) an Odoo database). */
  isOdoo: boolean;
  /** base module version, e.g. "17.0.1.3", and its series "17.0". */
  baseVersion: string | undefined;
  series: string | undefined;
  /** Installed modules (state installed, to upgrade, to remove) → version. */
  modules: Record<string, string>;
  /** Exact row counts of the main tables present. */
  tables: Record<string, number>;
  attachments: { rows: number; inFilestore: number; inDatabase: number; filestoreBytes: number; distinctFiles: number };
  /** `database.uuid` (not a secret: it identifies the database to odoo.com). */
  databaseUuid: string | undefined;
  postgres: { server: string };
}

/**
 * Reads the facts with `client` (inside the dump's snapshot transaction): two round trips, the tables
 * present, then every count and fact in one statement (one query per table cost a tiny tenant more
 * than its dump's catalogue reads).
 */
export async function readOdooFacts(client: pg.ClientBase): Promise<OdooFacts> {
  const { rows: known } = await client.query<{ v: string; present: string[]; cols: string[] }>(
    `SELECT current_setting('server_version') AS v,
            ARRAY(SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname = ANY($1)) AS present,
            ARRAY(SELECT column_name::text FROM information_schema.columns
                   WHERE table_schema = 'public' AND table_name = 'ir_module_module' AND column_name IN ('latest_version', 'db_version')) AS cols`,
    [MAIN_TABLES],
  );
  const server = known[0]!.v.split(' ')[0]!;
  const present = new Set(known[0]!.present);
  const facts: OdooFacts = {
    isOdoo: present.has('ir_module_module'),
    baseVersion: undefined,
    series: undefined,
    modules: {},
    tables: {},
    attachments: { rows: 0, inFilestore: 0, inDatabase: 0, filestoreBytes: 0, distinctFiles: 0 },
    databaseUuid: undefined,
    postgres: { server },
  };
  // Odoo 16–18 name the column latest_version; some newer revisions db_version.
  const cols = known[0]!.cols;
  const versionColumn = facts.isOdoo ? (cols.includes('latest_version') ? 'latest_version' : cols[0]) : undefined;
  // Table and column names come from MAIN_TABLES and the two names above: never from the database's content.
  const tables = MAIN_TABLES.filter((t) => present.has(t));
  const selects = tables.map((t, i) => `(SELECT count(*) FROM public.${t}) AS n${i}`);
  if (versionColumn)
    selects.push(`(SELECT json_agg(json_build_array(name, ${versionColumn}) ORDER BY name) FROM public.ir_module_module
                    WHERE state IN ('installed', 'to upgrade', 'to remove')) AS modules`);
  if (present.has('ir_config_parameter')) selects.push(`(SELECT value FROM public.ir_config_parameter WHERE key = 'database.uuid' LIMIT 1) AS uuid`);
  if (present.has('ir_attachment'))
    selects.push(`(SELECT json_build_object('rows', count(*),
                          'file', count(*) FILTER (WHERE store_fname IS NOT NULL),
                          'db', count(*) FILTER (WHERE db_datas IS NOT NULL),
                          'bytes', (SELECT sum(file_size) FROM (SELECT DISTINCT ON (store_fname) store_fname, file_size FROM public.ir_attachment
                                     WHERE store_fname IS NOT NULL) d),
                          'distinct', count(DISTINCT store_fname))
                     FROM public.ir_attachment) AS attachments`);
  if (selects.length === 0) return facts;
  const { rows } = await client.query<Record<string, unknown>>(`SELECT ${selects.join(',\n       ')}`);
  const r = rows[0]!;
  tables.forEach((t, i) => (facts.tables[t] = Number(r[`n${i}`])));
  if (versionColumn) {
    for (const [name, v] of (r.modules as Array<[string, string | null]> | null) ?? []) facts.modules[name] = v ?? '';
    facts.baseVersion = facts.modules.base || undefined;
    facts.series = facts.baseVersion?.split('.').slice(0, 2).join('.');
  }
  if (present.has('ir_config_parameter')) facts.databaseUuid = (r.uuid as string | null) ?? undefined;
  if (present.has('ir_attachment')) {
    const a = r.attachments as { rows: number; file: number; db: number; bytes: number | string | null; distinct: number };
    facts.attachments = {
      rows: Number(a.rows),
      inFilestore: Number(a.file),
      inDatabase: Number(a.db),
      filestoreBytes: Number(a.bytes ?? 0),
      distinctFiles: Number(a.distinct),
    };
  }
  return facts;
}
