/**
 * Neutralization of a restored copy, as raw SQL, leaving what Odoo 17's `odoo-bin neutralize` leaves
 * (the `data/neutralize.sql` files of base, web, mail, payment, iap, delivery, website; reference
 * odoo.md §2), without Odoo's code: no process ever has to load the copy before it is inert.
 *
 * Only tables and columns that exist are touched, in one transaction (all or nothing). Call it on a
 * connection that is not inside a transaction. Running it again is harmless (the dummy mail server
 * is not inserted twice).
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';

/** Name and host of the dummy outgoing server Odoo inserts so that odoo.conf's SMTP is never used. */
export const DUMMY_MAIL_SERVER = { name: 'neutralization - disable emails', host: 'invalid', port: 1025 } as const;
export const NEUTRALIZED_WEBHOOK = 'neutralization - disable webhook';

export interface NeutralizeResult {
  /** What was done, one line each (row counts included). */
  actions: string[];
}

export interface NeutralizationState {
  /** Names of the active crons. */
  activeCrons: string[];
  activeMailServers: Array<{ name: string; host: string }>;
  activeFetchmail: number;
  /** `database.is_neutralized` is true (any case). */
  isNeutralized: boolean;
  uuid: string | undefined;
}

async function columnsOf(client: pg.ClientBase, table: string): Promise<Set<string> | undefined> {
  const { rows } = await client.query<{ c: string }>(
    `SELECT a.attname AS c FROM pg_attribute a
       JOIN pg_class t ON t.oid = a.attrelid JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE n.nspname = 'public' AND t.relname = $1 AND t.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped`,
    [table],
  );
  if (rows.length === 0) {
    const exists = await client.query(
      `SELECT 1 FROM pg_class t JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = 'public' AND t.relname = $1 AND t.relkind IN ('r', 'p')`,
      [table],
    );
    return exists.rows.length ? new Set() : undefined;
  }
  return new Set(rows.map((r) => r.c));
}

/** Text columns of a table (for credentials of payment providers). */
async function textColumnsOf(client: pg.ClientBase, table: string): Promise<string[]> {
  const { rows } = await client.query<{ c: string }>(
    `SELECT column_name AS c FROM information_schema.columns
      WHERE table_schema = 'public' AND table_name = $1 AND data_type IN ('character varying', 'text')`,
    [table],
  );
  return rows.map((r) => r.c);
}

function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

const UTC_NOW = "(now() AT TIME ZONE 'UTC')";
/** payment_<provider> credential columns (Odoo's per-provider neutralize.sql blanks them). */
const PROVIDER_SECRET = /^[a-z0-9]+_.*(secret|key|token|password|passwd|hmac|signature)/;

/**
 * Neutralizes the connected database (see the module comment). With `newUuid` (default true) the
 * copy also gets a new `database.uuid` and `database.secret`, as Odoo's "copy" restore does:
 * it is a different database to odoo.com and does not accept the original's sessions or signed
 * links. `web.base.url` is left as it is.
 */
export async function neutralizeDatabase(client: pg.ClientBase, opts: { newUuid?: boolean } = {}): Promise<NeutralizeResult> {
  const newUuid = opts.newUuid ?? true;
  const actions: string[] = [];
  const run = async (sql: string, params: unknown[] = []): Promise<number> => (await client.query(sql, params)).rowCount ?? 0;

  await client.query('BEGIN');
  try {
    // --- base: outgoing mail servers off, one active dummy (so odoo.conf's smtp_server is never used)
    const mailCols = await columnsOf(client, 'ir_mail_server');
    if (mailCols) {
      const off = await run(
        `UPDATE ir_mail_server SET active = false WHERE active IS DISTINCT FROM false
                               AND NOT (name = $1 AND coalesce(smtp_host, '') = $2)`,
        [DUMMY_MAIL_SERVER.name, DUMMY_MAIL_SERVER.host],
      );
      actions.push(`ir_mail_server: ${off} outgoing mail servers deactivated`);
      const dummy = await client.query<{ id: number; active: boolean | null }>(
        'SELECT id, active FROM ir_mail_server WHERE name = $1 AND smtp_host = $2 ORDER BY id',
        [DUMMY_MAIL_SERVER.name, DUMMY_MAIL_SERVER.host],
      );
      if (dummy.rows.length > 0) {
        const keep = dummy.rows[0]!.id;
        await run('UPDATE ir_mail_server SET active = (id = $1) WHERE name = $2 AND smtp_host = $3', [keep, DUMMY_MAIL_SERVER.name, DUMMY_MAIL_SERVER.host]);
        actions.push(`ir_mail_server: dummy server "${DUMMY_MAIL_SERVER.name}" (host ${DUMMY_MAIL_SERVER.host}) already present, kept active`);
      } else {
        const values: Record<string, string> = {
          name: `'${DUMMY_MAIL_SERVER.name}'`,
          smtp_host: `'${DUMMY_MAIL_SERVER.host}'`,
          smtp_port: String(DUMMY_MAIL_SERVER.port),
          smtp_encryption: "'none'",
          smtp_authentication: "'login'",
          active: 'true',
          sequence: '10',
          smtp_debug: 'false',
          create_date: UTC_NOW,
          write_date: UTC_NOW,
        };
        const cols = Object.keys(values).filter((c) => mailCols.has(c));
        await run(`INSERT INTO ir_mail_server (${cols.map(ident).join(', ')}) VALUES (${cols.map((c) => values[c]).join(', ')})`);
        actions.push(
          `ir_mail_server: active dummy server "${DUMMY_MAIL_SERVER.name}" inserted (host ${DUMMY_MAIL_SERVER.host}, port ${DUMMY_MAIL_SERVER.port})`,
        );
      }
    }

    // --- base: every cron off except base.autovacuum_job
    const cronCols = await columnsOf(client, 'ir_cron');
    if (cronCols?.has('active')) {
      const hasXmlids = (await columnsOf(client, 'ir_model_data'))?.has('res_id') ?? false;
      const autovacuum = hasXmlids
        ? (
            await client.query<{ res_id: number }>(
              "SELECT res_id FROM ir_model_data WHERE module = 'base' AND name = 'autovacuum_job' AND model = 'ir.cron' AND res_id IS NOT NULL",
            )
          ).rows.map((r) => r.res_id)
        : [];
      if (autovacuum.length > 0) {
        const off = await run('UPDATE ir_cron SET active = false WHERE active IS DISTINCT FROM false AND NOT (id = ANY($1::int[]))', [autovacuum]);
        actions.push(`ir_cron: ${off} crons deactivated, base.autovacuum_job (id ${autovacuum.join(', ')}) left as it was`);
      } else {
        const off = await run('UPDATE ir_cron SET active = false WHERE active IS DISTINCT FROM false');
        actions.push(`ir_cron: ${off} crons deactivated; no base.autovacuum_job xmlid found, so every cron is off (autovacuum included)`);
      }
    }

    // --- base (recent 17.0 builds): server actions calling webhooks
    const actCols = await columnsOf(client, 'ir_act_server');
    if (actCols?.has('webhook_url')) {
      const where = actCols.has('state') ? "(state = 'webhook' OR webhook_url IS NOT NULL)" : 'webhook_url IS NOT NULL';
      const n = await run(`UPDATE ir_act_server SET webhook_url = $1 WHERE ${where} AND webhook_url IS DISTINCT FROM $1`, [NEUTRALIZED_WEBHOOK]);
      actions.push(`ir_act_server: ${n} webhook URLs neutralized`);
    }

    // --- mail: templates forced to a server, incoming mail servers
    if ((await columnsOf(client, 'mail_template'))?.has('mail_server_id')) {
      const n = await run('UPDATE mail_template SET mail_server_id = NULL WHERE mail_server_id IS NOT NULL');
      actions.push(`mail_template: ${n} templates no longer bound to a mail server`);
    }
    if ((await columnsOf(client, 'fetchmail_server'))?.has('active')) {
      const n = await run('UPDATE fetchmail_server SET active = false WHERE active IS DISTINCT FROM false');
      actions.push(`fetchmail_server: ${n} incoming mail servers deactivated`);
    }

    // --- payment: live providers disabled, their credentials blanked
    const payCols = await columnsOf(client, 'payment_provider');
    if (payCols?.has('state')) {
      const n = await run("UPDATE payment_provider SET state = 'disabled' WHERE state NOT IN ('test', 'disabled')");
      actions.push(`payment_provider: ${n} live providers disabled`);
      const secrets = (await textColumnsOf(client, 'payment_provider')).filter((c) => PROVIDER_SECRET.test(c)).sort();
      if (secrets.length > 0) {
        const m = await run(
          `UPDATE payment_provider SET ${secrets.map((c) => `${ident(c)} = NULL`).join(', ')}
            WHERE ${secrets.map((c) => `${ident(c)} IS NOT NULL`).join(' OR ')}`,
        );
        actions.push(`payment_provider: credentials (${secrets.join(', ')}) blanked on ${m} providers`);
      }
    }

    // --- iap: account tokens made unusable (Odoo appends "+disabled")
    if ((await columnsOf(client, 'iap_account'))?.has('account_token')) {
      const n = await run(
        `UPDATE iap_account SET account_token = regexp_replace(account_token, '(\\+.*)?$', '+disabled')
          WHERE account_token IS NOT NULL AND account_token NOT LIKE '%+disabled'`,
      );
      actions.push(`iap_account: ${n} IAP tokens disabled`);
    }

    // --- delivery: carriers to test environment
    if ((await columnsOf(client, 'delivery_carrier'))?.has('prod_environment')) {
      const n = await run('UPDATE delivery_carrier SET prod_environment = false WHERE prod_environment');
      actions.push(`delivery_carrier: ${n} carriers switched to their test environment`);
    }

    // --- website: no domain (not reachable under the production name), no CDN
    const siteCols = await columnsOf(client, 'website');
    if (siteCols) {
      if (siteCols.has('domain')) actions.push(`website: ${await run('UPDATE website SET domain = NULL WHERE domain IS NOT NULL')} domains removed`);
      if (siteCols.has('cdn_activated')) actions.push(`website: ${await run('UPDATE website SET cdn_activated = false WHERE cdn_activated')} CDNs deactivated`);
    }

    // --- web / website: the red "neutralized" banner and ribbon
    const viewCols = await columnsOf(client, 'ir_ui_view');
    if (viewCols?.has('key') && viewCols.has('active')) {
      const n = await run(
        "UPDATE ir_ui_view SET active = true WHERE key IN ('web.neutralize_banner', 'website.neutralize_ribbon') AND active IS DISTINCT FROM true",
      );
      actions.push(`ir_ui_view: ${n} neutralization banner views activated`);
    }

    // --- base: the flag, and a new identity for a copy
    const paramCols = await columnsOf(client, 'ir_config_parameter');
    if (paramCols) {
      const setParam = async (key: string, value: string): Promise<void> => {
        const dated = paramCols.has('write_date');
        // Very recent Odoo revisions add a `type` column (base/data/neutralize.sql writes 'str').
        const typed = paramCols.has('type');
        const updated = await run(
          `UPDATE ir_config_parameter SET value = $2${typed ? ", type = 'str'" : ''}${dated ? `, write_date = ${UTC_NOW}` : ''} WHERE key = $1`,
          [key, value],
        );
        if (updated === 0) {
          const cols = ['key', 'value', ...(typed ? ['type'] : []), ...(dated ? ['create_date', 'write_date'] : [])];
          const vals = ['$1', '$2', ...(typed ? ["'str'"] : []), ...(dated ? [UTC_NOW, UTC_NOW] : [])];
          await run(`INSERT INTO ir_config_parameter (${cols.join(', ')}) VALUES (${vals.join(', ')})`, [key, value]);
        }
      };
      await setParam('database.is_neutralized', 'true');
      actions.push('ir_config_parameter: database.is_neutralized = true');
      if (newUuid) {
        await setParam('database.uuid', randomUUID());
        await setParam('database.secret', randomUUID());
        actions.push('ir_config_parameter: new database.uuid and database.secret (a copy, not the original); web.base.url left as is');
      }
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
  return { actions };
}

/** What matters for safety in the connected database: active crons, mail servers, fetchmail, flag, uuid. */
export async function neutralizationState(client: pg.ClientBase): Promise<NeutralizationState> {
  const state: NeutralizationState = { activeCrons: [], activeMailServers: [], activeFetchmail: 0, isNeutralized: false, uuid: undefined };
  const cronCols = await columnsOf(client, 'ir_cron');
  if (cronCols?.has('active')) {
    const label = cronCols.has('cron_name') ? "coalesce(cron_name, 'ir_cron #' || id)" : "'ir_cron #' || id";
    const { rows } = await client.query<{ n: string }>(`SELECT ${label} AS n FROM ir_cron WHERE active ORDER BY id`);
    state.activeCrons = rows.map((r) => r.n);
  }
  const mailCols = await columnsOf(client, 'ir_mail_server');
  if (mailCols?.has('active')) {
    const { rows } = await client.query<{ name: string; host: string | null }>(
      'SELECT name, smtp_host AS host FROM ir_mail_server WHERE active ORDER BY sequence, id',
    );
    state.activeMailServers = rows.map((r) => ({ name: r.name, host: r.host ?? '' }));
  }
  if ((await columnsOf(client, 'fetchmail_server'))?.has('active')) {
    const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM fetchmail_server WHERE active');
    state.activeFetchmail = Number(rows[0]!.n);
  }
  if (await columnsOf(client, 'ir_config_parameter')) {
    const { rows } = await client.query<{ key: string; value: string }>(
      "SELECT key, value FROM ir_config_parameter WHERE key IN ('database.is_neutralized', 'database.uuid')",
    );
    for (const r of rows) {
      if (r.key === 'database.is_neutralized') state.isNeutralized = r.value.trim().toLowerCase() === 'true';
      if (r.key === 'database.uuid') state.uuid = r.value;
    }
  }
  return state;
}
