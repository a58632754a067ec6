/**
 * Odoo-aware checks of a restored copy against the facts its manifest recorded (read in the very
 * snapshot the dump was taken from, so they must match exactly):
 *
 * - `modules`: installed modules and their versions;
 * - `row-counts`: exact row counts of the manifest's tables (rows neutralization adds are allowed:
 *   the dummy mail server and the neutralization parameters, and only when the copy is neutralized);
 * - `attachments`: every `ir_attachment.store_fname` exists in the restored filestore with the
 *   SHA-1 of its `checksum` column and the size of its `file_size` column (streamed, a page of rows
 *   and a few files at a time: memory does not grow with the filestore; files the caller has just
 *   restored and verified against the signed index are compared with what was verified, not re-read);
 * - `admin-user`: someone can still administer the copy.
 *
 * A check that cannot run fails with the reason; only a lost connection is thrown.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { DUMMY_MAIL_SERVER } from './neutralize';
import { readOdooFacts, type OdooFacts } from './facts';

export interface Check {
  name: string;
  status: 'pass' | 'fail' | 'warn';
  message: string;
}

export interface OdooChecksOptions {
  client: pg.ClientBase;
  /** The tenant's facts from the manifest. */
  expected: OdooFacts;
  /** The restored filestore folder (`<data_dir>/filestore/<db>` or a scratch folder). */
  filestoreDir: string;
  /** Files hashed at once (default 4). */
  concurrency?: number;
  /**
   * Files this process restored into `filestoreDir` moments ago and verified against the signed
   * index (SHA-1 and size) before writing them: their content is known and not read again.
   */
  verifiedFiles?: KnownFiles;
}

/** Content (SHA-1, size) of files by their path relative to a filestore folder. */
export interface KnownFiles {
  lookup(relativePath: string): { sha1: string; size: number } | undefined;
}

/** How many names a message quotes. */
const FIRST = 5;
/** Rows of ir_attachment read per query (a round trip each; a page is a few hundred KiB at most). */
const PAGE = 2000;
const SAFE_TABLE = /^[a-z_][a-z0-9_]*$/;
/** ir_config_parameter keys neutralization may add to a copy. */
const NEUTRALIZATION_KEYS = ['database.is_neutralized', 'database.uuid', 'database.secret'];

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A lost connection is not a failed check: it is thrown (the caller may retry). */
function isConnectionLoss(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code ?? '';
  return (
    code.startsWith('08') ||
    ['57P01', '57P02', '57P03', 'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT'].includes(code) ||
    /Connection terminated|Client was closed|not queryable/i.test(messageOf(err))
  );
}

function list(items: string[], total = items.length): string {
  const shown = items.slice(0, FIRST).join(', ');
  return total > FIRST ? `${shown}, … (${total} in all)` : shown;
}

async function tableExists(client: pg.ClientBase, table: string): Promise<boolean> {
  const { rows } = await client.query<{ r: string | null }>('SELECT to_regclass($1) AS r', [`public.${table}`]);
  return rows[0]?.r != null;
}

function modulesCheck(expected: OdooFacts, actual: OdooFacts): Check {
  const name = 'modules';
  if (!expected.isOdoo && !actual.isOdoo) return { name, status: 'pass', message: 'not an Odoo database (no ir_module_module), as in the backup' };
  if (expected.isOdoo !== actual.isOdoo) {
    return {
      name,
      status: 'fail',
      message: expected.isOdoo ? 'the copy has no ir_module_module table' : 'the copy has an ir_module_module table the backup did not have',
    };
  }
  const missing: string[] = [];
  const extra: string[] = [];
  const changed: string[] = [];
  for (const [mod, version] of Object.entries(expected.modules)) {
    if (!(mod in actual.modules)) missing.push(`${mod} ${version}`);
    else if (actual.modules[mod] !== version) changed.push(`${mod} ${version} → ${actual.modules[mod]}`);
  }
  for (const [mod, version] of Object.entries(actual.modules)) if (!(mod in expected.modules)) extra.push(`${mod} ${version}`);
  const n = Object.keys(expected.modules).length;
  if (!missing.length && !extra.length && !changed.length) {
    return { name, status: 'pass', message: `${n} installed modules and versions as in the backup (base ${actual.baseVersion ?? '?'})` };
  }
  const parts = [
    missing.length ? `missing ${list(missing)}` : '',
    extra.length ? `not in the backup ${list(extra)}` : '',
    changed.length ? `other version ${list(changed)}` : '',
  ].filter(Boolean);
  return { name, status: 'fail', message: `installed modules differ from the backup: ${parts.join('; ')}` };
}

async function rowCountsCheck(client: pg.ClientBase, expected: OdooFacts, actual: OdooFacts): Promise<Check> {
  const name = 'row-counts';
  // Rows neutralization adds, allowed only if the copy says it is neutralized.
  const allowance: Record<string, number> = {};
  if ('ir_config_parameter' in expected.tables && (await tableExists(client, 'ir_config_parameter'))) {
    const { rows } = await client.query<{ key: string; value: string }>('SELECT key, value FROM ir_config_parameter WHERE key = ANY($1)', [
      NEUTRALIZATION_KEYS,
    ]);
    const neutralized = rows.some((r) => r.key === 'database.is_neutralized' && r.value.trim().toLowerCase() === 'true');
    if (neutralized) {
      allowance.ir_config_parameter = rows.length;
      if ('ir_mail_server' in expected.tables && (await tableExists(client, 'ir_mail_server'))) {
        const dummy = await client.query<{ n: string }>('SELECT count(*) AS n FROM ir_mail_server WHERE name = $1 AND smtp_host = $2', [
          DUMMY_MAIL_SERVER.name,
          DUMMY_MAIL_SERVER.host,
        ]);
        allowance.ir_mail_server = Number(dummy.rows[0]!.n);
      }
    }
  }
  const differences: string[] = [];
  const explained: string[] = [];
  for (const [table, want] of Object.entries(expected.tables)) {
    let got = actual.tables[table];
    if (got === undefined) {
      if (!SAFE_TABLE.test(table) || !(await tableExists(client, table))) {
        differences.push(`${table} missing (${want} rows expected)`);
        continue;
      }
      got = Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM public."${table}"`)).rows[0]!.n);
    }
    if (got === want) continue;
    const extra = got - want;
    if (extra > 0 && extra <= (allowance[table] ?? 0)) {
      explained.push(`${table} +${extra}`);
      continue;
    }
    differences.push(`${table} ${got} rows, expected ${want}`);
  }
  const n = Object.keys(expected.tables).length;
  if (differences.length) return { name, status: 'fail', message: `row counts differ from the backup: ${list(differences)}` };
  return {
    name,
    status: 'pass',
    message: `${n} tables have exactly the rows of the backup${explained.length ? ` (besides the rows neutralization added: ${explained.join(', ')})` : ''}`,
  };
}

function isSafeStoreFname(p: string): boolean {
  if (p === '' || p.includes('\0') || p.includes('\\') || p.startsWith('/')) return false;
  return p.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
}

async function sha1Of(file: string): Promise<string> {
  const hash = createHash('sha1');
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function attachmentsCheck(
  client: pg.ClientBase,
  expected: OdooFacts,
  filestoreDir: string,
  concurrency: number,
  known: KnownFiles | undefined,
): Promise<Check> {
  const name = 'attachments';
  if (!(await tableExists(client, 'ir_attachment'))) {
    return expected.attachments.rows > 0
      ? { name, status: 'fail', message: `the copy has no ir_attachment table (the backup had ${expected.attachments.rows} attachments)` }
      : { name, status: 'pass', message: 'no ir_attachment table, as in the backup' };
  }
  const missing: string[] = [];
  const wrong: string[] = [];
  let missingCount = 0;
  let wrongCount = 0;
  let checked = 0;
  let after = '';
  const root = path.resolve(filestoreDir);

  const checkFile = async (row: { f: string; checksum: string | null; size: number | null }): Promise<void> => {
    checked++;
    if (!isSafeStoreFname(row.f)) {
      wrongCount++;
      if (wrong.length < FIRST) wrong.push(`${JSON.stringify(row.f)} (unsafe store_fname)`);
      return;
    }
    const verified = known?.lookup(row.f);
    if (verified) {
      if (row.size !== null && verified.size !== row.size) {
        wrongCount++;
        if (wrong.length < FIRST) wrong.push(`${row.f} (${verified.size} bytes, file_size ${row.size})`);
      } else if (row.checksum && verified.sha1 !== row.checksum.trim().toLowerCase()) {
        wrongCount++;
        if (wrong.length < FIRST) wrong.push(`${row.f} (SHA-1 ${verified.sha1}, checksum ${row.checksum})`);
      }
      return;
    }
    const file = path.join(root, ...row.f.split('/'));
    let size: number;
    try {
      const st = await stat(file);
      if (!st.isFile()) throw Object.assign(new Error('not a file'), { code: 'ENOENT' });
      size = st.size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ENOTDIR') throw err;
      missingCount++;
      if (missing.length < FIRST) missing.push(row.f);
      return;
    }
    if (row.size !== null && size !== row.size) {
      wrongCount++;
      if (wrong.length < FIRST) wrong.push(`${row.f} (${size} bytes, file_size ${row.size})`);
      return;
    }
    if (row.checksum) {
      const sha1 = await sha1Of(file);
      if (sha1 !== row.checksum.trim().toLowerCase()) {
        wrongCount++;
        if (wrong.length < FIRST) wrong.push(`${row.f} (SHA-1 ${sha1}, checksum ${row.checksum})`);
      }
    }
  };

  for (;;) {
    // One row per file (rows sharing a file share its content), in pages, keyset on the indexed column.
    const { rows } = await client.query<{ f: string; checksum: string | null; size: number | null }>(
      `SELECT DISTINCT ON (store_fname) store_fname AS f, checksum, file_size AS size
         FROM ir_attachment WHERE store_fname IS NOT NULL AND store_fname > $1
        ORDER BY store_fname, id LIMIT ${PAGE}`,
      [after],
    );
    if (rows.length === 0) break;
    after = rows[rows.length - 1]!.f;
    let next = 0;
    const worker = async () => {
      while (next < rows.length) await checkFile(rows[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, rows.length) }, worker));
    if (rows.length < PAGE) break;
  }

  const { rows: counts } = await client.query<{ refs: string; files: string }>(
    'SELECT count(store_fname) AS refs, count(DISTINCT store_fname) AS files FROM ir_attachment',
  );
  const refs = Number(counts[0]!.refs);
  const files = Number(counts[0]!.files);
  const problems: string[] = [];
  if (missingCount) problems.push(`${missingCount} missing (${list(missing, missingCount)})`);
  if (wrongCount) problems.push(`${wrongCount} wrong (${list(wrong, wrongCount)})`);
  if (files !== expected.attachments.distinctFiles || refs !== expected.attachments.inFilestore) {
    problems.push(
      `the copy references ${files} files from ${refs} attachments, the backup ${expected.attachments.distinctFiles} files from ${expected.attachments.inFilestore}`,
    );
  }
  const summary = `checked ${checked} files referenced by ${refs} attachments in ${filestoreDir}`;
  if (problems.length) return { name, status: 'fail', message: `${summary}: ${problems.join('; ')}` };
  return { name, status: 'pass', message: `${summary}: 0 missing, 0 wrong (SHA-1 and size as recorded)` };
}

async function adminUserCheck(client: pg.ClientBase): Promise<Check> {
  const name = 'admin-user';
  if (!(await tableExists(client, 'res_users'))) return { name, status: 'warn', message: 'no res_users table: not an Odoo database' };
  if ((await tableExists(client, 'res_groups_users_rel')) && (await tableExists(client, 'ir_model_data'))) {
    const group = await client.query<{ id: number }>(
      "SELECT res_id AS id FROM ir_model_data WHERE module = 'base' AND name = 'group_system' AND model = 'res.groups' AND res_id IS NOT NULL",
    );
    if (group.rows.length > 0) {
      const { rows } = await client.query<{ id: number; login: string }>(
        `SELECT DISTINCT u.id, u.login FROM res_users u JOIN res_groups_users_rel r ON r.uid = u.id
          WHERE r.gid = ANY($1::int[]) AND u.active AND u.share IS NOT TRUE ORDER BY u.id`,
        [group.rows.map((r) => r.id)],
      );
      if (rows.length > 0) {
        const who = rows.map((r) => `${r.login} (id ${r.id})`);
        return { name, status: 'pass', message: `active internal administrators (base.group_system): ${list(who)}` };
      }
      return { name, status: 'fail', message: 'no active internal user is in base.group_system (Settings): nobody could administer this copy' };
    }
  }
  const { rows } = await client.query<{ login: string; active: boolean | null }>('SELECT login, active FROM res_users WHERE id = 2');
  if (rows[0]?.active) {
    return { name, status: 'pass', message: `groups cannot be resolved (no base.group_system); user id 2 "${rows[0].login}" is active` };
  }
  return {
    name,
    status: 'fail',
    message: `groups cannot be resolved (no base.group_system) and user id 2 ${rows[0] ? `"${rows[0].login}" is inactive` : 'does not exist'}`,
  };
}

/** Runs the four checks on a restored copy (see the module comment). */
export async function odooChecks(opts: OdooChecksOptions): Promise<Check[]> {
  const { client, expected, filestoreDir } = opts;
  const concurrency = opts.concurrency ?? 4;
  const guard = async (name: string, fn: () => Promise<Check> | Check): Promise<Check> => {
    try {
      return await fn();
    } catch (err) {
      if (isConnectionLoss(err)) throw err;
      return { name, status: 'fail', message: `could not check: ${messageOf(err)}` };
    }
  };
  let actual: OdooFacts | undefined;
  let factsError: unknown;
  try {
    actual = await readOdooFacts(client);
  } catch (err) {
    if (isConnectionLoss(err)) throw err;
    factsError = err;
  }
  const noFacts = (name: string): Check => ({ name, status: 'fail', message: `could not read the copy's facts: ${messageOf(factsError)}` });
  return [
    await guard('modules', () => (actual ? modulesCheck(expected, actual) : noFacts('modules'))),
    await guard('row-counts', () => (actual ? rowCountsCheck(client, expected, actual) : noFacts('row-counts'))),
    await guard('attachments', () => attachmentsCheck(client, expected, filestoreDir, concurrency, opts.verifiedFiles)),
    await guard('admin-user', () => adminUserCheck(client)),
  ];
}
