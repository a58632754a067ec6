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

/** Reads the facts with `client` (inside the dump's snapshot transaction). */
export async function readOdooFacts(client: pg.ClientBase): Promise<OdooFacts> {
  const server = (await client.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v.split(' ')[0]!;
  const present = new Set(
    (
      await client.query<{ t: string }>(
        `SELECT c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname = ANY($1)`,
        [MAIN_TABLES as unknown as string[]],
      )
    ).rows.map((r) => r.t),
  );
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
  for (const table of MAIN_TABLES) {
    if (!present.has(table)) continue;
    const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM public.${table}`);
    facts.tables[table] = Number(rows[0]!.n);
  }
  if (facts.isOdoo) {
    // Odoo 16–18 name the column latest_version; some newer revisions db_version.
    const { rows: cols } = await client.query<{ c: string }>(
      `SELECT column_name AS c FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name = 'ir_module_module' AND column_name IN ('latest_version', 'db_version')`,
    );
    const versionColumn = cols.some((c) => c.c === 'latest_version') ? 'latest_version' : cols[0]?.c;
    if (versionColumn) {
      const { rows } = await client.query<{ name: string; v: string | null }>(
        `SELECT name, ${versionColumn} AS v FROM public.ir_module_module
          WHERE state IN ('installed', 'to upgrade', 'to remove') ORDER BY name`,
      );
      for (const r of rows) facts.modules[r.name] = r.v ?? '';
      facts.baseVersion = facts.modules.base || undefined;
      facts.series = facts.baseVersion?.split('.').slice(0, 2).join('.');
    }
  }
  if (present.has('ir_config_parameter')) {
    const { rows } = await client.query<{ value: string }>("SELECT value FROM public.ir_config_parameter WHERE key = 'database.uuid'");
    facts.databaseUuid = rows[0]?.value;
  }
  if (present.has('ir_attachment')) {
    const { rows } = await client.query<{ rows: string; file: string; db: string; bytes: string | null; distinct: string }>(
      `SELECT count(*) AS rows,
              count(*) FILTER (WHERE store_fname IS NOT NULL) AS file,
              count(*) FILTER (WHERE db_datas IS NOT NULL) AS db,
              (SELECT sum(file_size) FROM (SELECT DISTINCT ON (store_fname) store_fname, file_size FROM public.ir_attachment
                 WHERE store_fname IS NOT NULL) d) AS bytes,
              count(DISTINCT store_fname) AS distinct
         FROM public.ir_attachment`,
    );
    const r = rows[0]!;
    facts.attachments = {
      rows: Number(r.rows),
      inFilestore: Number(r.file),
      inDatabase: Number(r.db),
      filestoreBytes: Number(r.bytes ?? 0),
      distinctFiles: Number(r.distinct),
    };
  }
  return facts;
}
