/**
 * Restores the cluster's roles from a session's globals artifact (`pg_dumpall --globals-only`,
 * zstd, age) into a new cluster, before tenant databases are restored with their owners.
 *
 * The file is read back from a bucket an attacker may have written, so (least privilege):
 * - nothing in it is executed: statements are parsed (globals-sql.ts) and the SQL is built here;
 * - only missing roles are created; existing ones (and the connecting role) are never altered;
 * - SUPERUSER, REPLICATION, BYPASSRLS and CREATEROLE are never restored (reported as warnings);
 * - memberships are added only to roles this restore created, never in a privileged role or in the
 *   predefined roles that give server-level power; `GRANTED BY` is dropped (the grantor may not exist);
 * - `ALTER ROLE … SET` is applied only for parameters a role could set itself (context `user`):
 *   a superuser-only one such as `session_preload_libraries` would run code at the role's next login.
 * Everything runs in one transaction; each statement in a savepoint, so a statement the server
 * refuses (e.g. a membership cycle) is reported and the rest still applies. A dry run does the same
 * and rolls back: it reports exactly what the server would accept, and changes nothing.
 */
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import type { DrConfig } from '../config';
import { decryptStream } from '../crypto/age';
import { ArtifactCorruptedError, DatabaseAuthError, DrError, PipelineError, scrubSecrets } from '../errors';
import { quoteIdent, withClient } from '../postgres';
import { RESTORE_ROLE_PREFIX } from '../restore/restore-role';
import { parseGlobalsSql, type RoleAttributes } from './globals-sql';

export { parseGlobalsSql, type ParsedGlobals, type ParsedMembership, type ParsedRole, type ParsedRoleSetting, type RoleAttributes } from './globals-sql';

export interface GlobalsRestoreResult {
  /** Roles created. */
  created: string[];
  /** Roles in the backup that already existed: kept unchanged. */
  existing: string[];
  /** "member → role" applied. */
  memberships: string[];
  /** Things not applied, each a readable sentence. */
  skipped: string[];
  /** Dropped attributes, refused memberships and settings, tablespaces, unparseable lines. */
  warnings: string[];
  /** Created roles that got their saved password hash. */
  passwordsRestored: number;
}

/** Memberships that confer server-level power (files, programs, other sessions): never restored. */
export const REFUSED_MEMBERSHIPS = new Set([
  'pg_execute_server_program',
  'pg_read_server_files',
  'pg_write_server_files',
  'pg_signal_backend',
  'pg_checkpoint',
  'pg_create_subscription',
]);
const DROPPED: Array<[keyof RoleAttributes, string]> = [
  ['superuser', 'SUPERUSER'],
  ['replication', 'REPLICATION'],
  ['bypassRls', 'BYPASSRLS'],
  ['createRole', 'CREATEROLE'],
];
/** The globals of a cluster are KBs; anything near this is not a globals dump. */
const MAX_GLOBALS_BYTES = 64 * 1024 * 1024;

interface ServerRole {
  rolname: string;
  rolsuper: boolean;
  rolinherit: boolean;
  rolcreaterole: boolean;
  rolcreatedb: boolean;
  rolcanlogin: boolean;
  rolreplication: boolean;
  rolbypassrls: boolean;
  rolconnlimit: number;
}
const ATTR_COLUMNS: Array<[keyof RoleAttributes, keyof ServerRole, string]> = [
  ['superuser', 'rolsuper', 'SUPERUSER'],
  ['inherit', 'rolinherit', 'INHERIT'],
  ['createRole', 'rolcreaterole', 'CREATEROLE'],
  ['createDb', 'rolcreatedb', 'CREATEDB'],
  ['login', 'rolcanlogin', 'LOGIN'],
  ['replication', 'rolreplication', 'REPLICATION'],
  ['bypassRls', 'rolbypassrls', 'BYPASSRLS'],
];

const q = quoteIdent;
const lit = (s: string) => pg.escapeLiteral(s);

function createRoleSql(name: string, a: RoleAttributes): string {
  let sql = `CREATE ROLE ${q(name)} WITH NOSUPERUSER ${a.inherit === false ? 'NOINHERIT' : 'INHERIT'} NOCREATEROLE`;
  sql += ` ${a.createDb ? 'CREATEDB' : 'NOCREATEDB'} ${a.login ? 'LOGIN' : 'NOLOGIN'} NOREPLICATION NOBYPASSRLS`;
  if (a.connectionLimit !== undefined) sql += ` CONNECTION LIMIT ${a.connectionLimit}`;
  if (typeof a.password === 'string') sql += ` PASSWORD ${lit(a.password)}`;
  if (a.validUntil !== undefined) sql += ` VALID UNTIL ${lit(a.validUntil)}`;
  return sql;
}

/** How an existing role differs from the backup, e.g. "the backup has LOGIN, the server NOLOGIN". */
function differences(a: RoleAttributes, s: ServerRole): string | undefined {
  const backup: string[] = [];
  const server: string[] = [];
  for (const [attr, col, word] of ATTR_COLUMNS) {
    if (a[attr] === undefined || a[attr] === s[col]) continue;
    backup.push(a[attr] ? word : `NO${word}`);
    server.push(s[col] ? word : `NO${word}`);
  }
  if (a.connectionLimit !== undefined && a.connectionLimit !== s.rolconnlimit) {
    backup.push(`CONNECTION LIMIT ${a.connectionLimit}`);
    server.push(`CONNECTION LIMIT ${s.rolconnlimit}`);
  }
  return backup.length ? `the backup has ${backup.join(' ')}, the server ${server.join(' ')}` : undefined;
}

/** Restores the roles of a globals dump (see the module comment). Idempotent. */
export async function restoreGlobals(opts: { postgres: DrConfig['postgres']; sql: string; dryRun?: boolean }): Promise<GlobalsRestoreResult> {
  const { postgres } = opts;
  const all = parseGlobalsSql(opts.sql);
  // odoo-dr's own one-time restore roles (a backup taken while a restore ran) are never recreated.
  const own = (name: string) => name.startsWith(RESTORE_ROLE_PREFIX);
  const parsed = {
    ...all,
    roles: all.roles.filter((r) => !own(r.name)),
    memberships: all.memberships.filter((m) => !own(m.member) && !own(m.role)),
    settings: all.settings.filter((x) => !own(x.role)),
  };
  const result: GlobalsRestoreResult = { created: [], existing: [], memberships: [], skipped: [], warnings: [], passwordsRestored: 0 };
  for (const r of all.roles.filter((x) => own(x.name))) result.skipped.push(`${q(r.name)} is a one-time odoo-dr restore role: not recreated`);
  for (const u of parsed.unrecognised) result.warnings.push(`line ${u.line} skipped (${u.reason}): ${u.text}`);
  for (const t of parsed.tablespaces) {
    result.warnings.push(`tablespace ${q(t)} not restored: its location is a folder of the old server; create it by hand if tenants need it`);
  }
  const secrets = [postgres.password, ...parsed.roles.map((r) => r.attributes.password ?? undefined)];

  return withClient(postgres, postgres.maintenanceDb, async (client) => {
    const me = await client.query<ServerRole>('SELECT * FROM pg_roles WHERE rolname = current_user');
    if (!me.rows[0]?.rolsuper && !me.rows[0]?.rolcreaterole) {
      throw new DatabaseAuthError(`${postgres.user} may not create roles (needs SUPERUSER or CREATEROLE) on ${postgres.host}:${postgres.port}`);
    }
    const serverNum = Number((await client.query<{ n: string }>("SELECT current_setting('server_version_num') AS n")).rows[0]!.n);
    const server = new Map(
      (
        await client.query<ServerRole>(
          'SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls, rolconnlimit FROM pg_roles',
        )
      ).rows.map((r) => [r.rolname, r]),
    );
    const pairs = (rows: Array<{ a: string; b: string }>) => new Set(rows.map((r) => `${r.a}\0${r.b}`));
    const members = pairs(
      (
        await client.query<{ a: string; b: string }>(
          'SELECT r.rolname AS a, m.rolname AS b FROM pg_auth_members x JOIN pg_roles r ON r.oid = x.roleid JOIN pg_roles m ON m.oid = x.member',
        )
      ).rows,
    );
    const userSettings = new Set((await client.query<{ name: string }>("SELECT name FROM pg_settings WHERE context = 'user'")).rows.map((r) => r.name));
    const roleSettings = pairs(
      (
        await client.query<{ a: string; b: string }>(
          "SELECT r.rolname AS a, lower(split_part(c, '=', 1)) AS b FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole CROSS JOIN unnest(s.setconfig) c WHERE s.setdatabase = 0",
        )
      ).rows,
    );

    /** Runs one statement in a savepoint; a refusal by the server is reported, not fatal. */
    const apply = async (sql: string, what: string): Promise<boolean> => {
      await client.query('SAVEPOINT globals_step');
      try {
        await client.query(sql);
        await client.query('RELEASE SAVEPOINT globals_step');
        return true;
      } catch (err) {
        const code = (err as { code?: string }).code;
        // Only statement-level refusals (data, syntax/access, grant, object state); anything else (connection) aborts.
        if (!(err instanceof pg.DatabaseError) || !code || !/^(22|42|0L|0P|55|2B)/.test(code)) throw err;
        await client.query('ROLLBACK TO SAVEPOINT globals_step');
        result.skipped.push(`${what}: refused by the server (${scrubSecrets(err.message, secrets)})`);
        return false;
      }
    };

    await client.query('BEGIN');
    try {
      const created = new Set<string>();
      for (const role of parsed.roles) {
        const a = role.attributes;
        const existing = server.get(role.name);
        if (existing || role.name === postgres.user) {
          result.existing.push(role.name);
          const diff = existing && differences(a, existing);
          if (diff) result.skipped.push(`role ${q(role.name)} already exists and was kept unchanged (${diff})`);
          continue;
        }
        if (!(await apply(createRoleSql(role.name, a), `role ${q(role.name)} not created`))) continue;
        created.add(role.name);
        result.created.push(role.name);
        if (typeof a.password === 'string') result.passwordsRestored++;
        for (const [attr, word] of DROPPED) {
          if (a[attr]) {
            result.warnings.push(
              `role ${q(role.name)} was created without ${word} (the backup had it; attributes this powerful are never restored from a backup): grant it by hand if it is really needed`,
            );
          }
        }
        if (role.comment !== undefined) {
          await apply(`COMMENT ON ROLE ${q(role.name)} IS ${role.comment === null ? 'NULL' : lit(role.comment)}`, `comment on role ${q(role.name)}`);
        }
      }

      for (const s of parsed.settings) {
        const what = `setting ${s.name} of role ${q(s.role)}`;
        if (s.database !== undefined) {
          result.skipped.push(`${what} in database ${q(s.database)} not applied: databases are restored later; set it by hand afterwards`);
        } else if (!created.has(s.role)) {
          if (!roleSettings.has(`${s.role}\0${s.name}`)) result.skipped.push(`${what} not applied: the role already existed and is never altered`);
        } else if (!userSettings.has(s.name)) {
          result.warnings.push(`${what} not applied: only parameters a role may set itself are restored from a backup; set it by hand if it is really needed`);
        } else {
          await apply(`ALTER ROLE ${q(s.role)} SET ${q(s.name)} TO ${s.values.map(lit).join(', ')}`, what);
        }
      }

      const seen = new Set<string>();
      for (const m of parsed.memberships) {
        const key = `${m.role}\0${m.member}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const what = `membership ${m.member} → ${m.role}`;
        const target = server.get(m.role);
        if (!created.has(m.member)) {
          if (!server.has(m.member)) result.skipped.push(`${what} not applied: role ${q(m.member)} does not exist`);
          else if (!members.has(key)) result.skipped.push(`${what} not applied: ${q(m.member)} already existed and is never altered`);
        } else if (REFUSED_MEMBERSHIPS.has(m.role)) {
          result.warnings.push(`${what} refused: ${q(m.role)} gives server-level power; grant it by hand if it is really needed`);
        } else if (target && (target.rolsuper || target.rolcreaterole || target.rolreplication || target.rolbypassrls)) {
          result.warnings.push(
            `${what} refused: ${q(m.role)} is a privileged role (SUPERUSER, CREATEROLE, REPLICATION or BYPASSRLS); grant it by hand if it is really needed`,
          );
        } else if (m.role === postgres.user) {
          result.warnings.push(`${what} refused: ${q(m.role)} is the role odoo-dr connects as; grant it by hand if it is really needed`);
        } else if (!target && !created.has(m.role)) {
          result.skipped.push(`${what} not applied: role ${q(m.role)} does not exist`);
        } else if (serverNum < 160000 && (m.inherit === false || m.set === false)) {
          result.warnings.push(
            `${what} not applied: the backup restricts it (INHERIT/SET FALSE), which PostgreSQL ${Math.floor(serverNum / 10000)} cannot express`,
          );
        } else {
          const options = [
            ...(m.admin ? ['ADMIN OPTION'] : []),
            ...(serverNum >= 160000 && m.inherit !== undefined ? [`INHERIT ${m.inherit ? 'TRUE' : 'FALSE'}`] : []),
            ...(serverNum >= 160000 && m.set !== undefined ? [`SET ${m.set ? 'TRUE' : 'FALSE'}`] : []),
          ];
          const sql = `GRANT ${q(m.role)} TO ${q(m.member)}${options.length ? ` WITH ${options.join(', ')}` : ''}`;
          if (await apply(sql, what)) result.memberships.push(`${m.member} → ${m.role}`);
        }
      }
      await client.query(opts.dryRun ? 'ROLLBACK' : 'COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
    return result;
  });
}

/** Decrypts (age) and decompresses (`zstd -d`) a globals artifact into memory, refusing more than 64 MiB. */
export async function decryptGlobals(opts: { encryptedFile: string; identity: string; signal?: AbortSignal }): Promise<string> {
  const { encryptedFile, signal } = opts;
  signal?.throwIfAborted();
  const plain = decryptStream(opts.identity, encryptedFile) as Readable;
  const zstd = spawn('zstd', ['-d', '-q', '-c'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  let bytes = 0;
  let tooLarge = false;
  let stderr = '';
  zstd.stdout.on('data', (d: Buffer) => {
    bytes += d.length;
    if (bytes > MAX_GLOBALS_BYTES) {
      tooLarge = true;
      zstd.kill('SIGKILL');
    } else chunks.push(d);
  });
  zstd.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const exited = new Promise<number | null>((resolve, reject) => {
    zstd.on('error', reject);
    zstd.on('close', resolve);
  });
  const onAbort = () => zstd.kill('SIGKILL');
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const fed = (signal ? pipeline(plain, zstd.stdin, { signal }) : pipeline(plain, zstd.stdin)).then(
      () => undefined,
      (err: unknown) => err,
    );
    let code: number | null;
    try {
      code = await exited;
    } catch (err) {
      plain.destroy();
      throw new PipelineError(`cannot run zstd to decompress ${encryptedFile}: ${(err as Error).message}`, { cause: err });
    }
    const feedError = await fed;
    signal?.throwIfAborted();
    if (tooLarge) throw new ArtifactCorruptedError(`${encryptedFile} decompresses to more than ${MAX_GLOBALS_BYTES} bytes: not a globals dump`);
    if (feedError instanceof DrError) throw feedError;
    if (feedError) throw new ArtifactCorruptedError(`${encryptedFile} cannot be decrypted: ${(feedError as Error).message}`, { cause: feedError });
    if (code !== 0) throw new ArtifactCorruptedError(`${encryptedFile}: decompression failed (zstd: ${stderr.trim() || `exit ${code}`})`);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new ArtifactCorruptedError(`${encryptedFile} is not UTF-8 text: not a globals dump written by odoo-dr`);
  }
}
