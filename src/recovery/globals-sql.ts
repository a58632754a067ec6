/**
 * Parser for `pg_dumpall --globals-only` output. The file comes back from a bucket an attacker may
 * have written, so nothing in it is ever executed: each statement is tokenized (strings, quoted
 * identifiers, dollar quotes and comments understood, so a `;` inside a literal cannot start a new
 * statement) and matched against the few forms pg_dumpall writes; the restore builds its own SQL
 * from the result. Everything else lands in `unrecognised`.
 */
import { Cursor, ParseProblem, splitStatements, type Unrecognised } from './sql-tokens';

/** Role attributes as written in CREATE/ALTER ROLE; undefined = not mentioned. */
export interface RoleAttributes {
  superuser?: boolean;
  inherit?: boolean;
  createRole?: boolean;
  createDb?: boolean;
  login?: boolean;
  replication?: boolean;
  bypassRls?: boolean;
  connectionLimit?: number;
  /** The saved hash (`SCRAM-SHA-256$…`, `md5…`), or null for `PASSWORD NULL`. */
  password?: string | null;
  validUntil?: string;
}

export interface ParsedRole {
  name: string;
  attributes: RoleAttributes;
  /** `COMMENT ON ROLE … IS …`; null for `IS NULL`. */
  comment?: string | null;
}

export interface ParsedMembership {
  role: string;
  member: string;
  admin: boolean;
  /** PostgreSQL 16+ `WITH INHERIT TRUE|FALSE`, `WITH SET TRUE|FALSE`. */
  inherit?: boolean;
  set?: boolean;
  /** Parsed for reporting only: the grantor may not exist on the new cluster. */
  grantedBy?: string;
}

export interface ParsedRoleSetting {
  role: string;
  /** `ALTER ROLE … IN DATABASE d SET …`. */
  database?: string;
  name: string;
  values: string[];
}

export interface ParsedGlobals {
  /** In order of first appearance (CREATE ROLE, or ALTER ROLE alone for the dumping user). */
  roles: ParsedRole[];
  memberships: ParsedMembership[];
  settings: ParsedRoleSetting[];
  tablespaces: string[];
  /** Statements that are not applied. `text` is shortened, and literals are hidden when it mentions a password. */
  unrecognised: Unrecognised[];
}

function checkRoleName(name: string): string {
  if (name.startsWith('pg_')) throw new ParseProblem('role names starting with pg_ are reserved');
  return name;
}

const FLAGS: Record<string, keyof RoleAttributes> = {
  superuser: 'superuser',
  inherit: 'inherit',
  createrole: 'createRole',
  createdb: 'createDb',
  login: 'login',
  replication: 'replication',
  bypassrls: 'bypassRls',
};

const ROLE_OPTIONS = new Set([...Object.keys(FLAGS), ...Object.keys(FLAGS).map((k) => `no${k}`), 'connection', 'encrypted', 'password', 'valid']);

function roleOptions(c: Cursor, into: RoleAttributes): void {
  c.accept('with');
  while (!c.done) {
    const t = c.word();
    if (!ROLE_OPTIONS.has(t)) throw new ParseProblem(`unsupported role option ${t.toUpperCase()}`);
    if (t === 'connection') {
      c.expect('limit');
      const n = Number(c.value());
      if (!Number.isInteger(n) || n < -1 || n > 2 ** 31 - 1) throw new ParseProblem('invalid CONNECTION LIMIT');
      into.connectionLimit = n;
    } else if (t === 'encrypted' || t === 'password') {
      if (t === 'encrypted') c.expect('password');
      into.password = c.accept('null') ? null : c.string();
    } else if (t === 'valid') {
      c.expect('until');
      into.validUntil = c.string();
    } else if (t in FLAGS) (into as Record<string, boolean>)[FLAGS[t]!] = true;
    else (into as Record<string, boolean>)[FLAGS[t.slice(2)]!] = false;
  }
}

function boolOption(c: Cursor): boolean {
  const v = c.expect('true', 'false', 'on', 'off', 'option');
  return v !== 'false' && v !== 'off';
}

/** A redacted, shortened copy of a statement for reports: never a password hash. */
function shown(text: string): string {
  let t = text.replace(/\s+/g, ' ');
  if (/password/i.test(t)) t = t.replace(/'(?:[^']|'')*'/g, "'…'");
  return t.length > 160 ? `${t.slice(0, 157)}…` : t;
}

/** Parses the globals SQL into roles, memberships and settings (pure; see the module comment). */
export function parseGlobalsSql(sql: string): ParsedGlobals {
  const result: ParsedGlobals = { roles: [], memberships: [], settings: [], tablespaces: [], unrecognised: [] };
  const roles = new Map<string, ParsedRole>();
  const role = (name: string): ParsedRole => {
    checkRoleName(name);
    let r = roles.get(name);
    if (!r) roles.set(name, (r = { name, attributes: {} }));
    return r;
  };
  for (const st of splitStatements(sql, result.unrecognised)) {
    const c = new Cursor(st.tokens);
    try {
      if (st.problem) throw new ParseProblem(st.problem);
      if (c.accept('set', 'reset')) continue; // session settings of the dump itself
      if (c.accept('create')) {
        if (c.accept('tablespace')) {
          result.tablespaces.push(c.name());
          continue;
        }
        c.expect('role');
        const name = c.name();
        const attrs: RoleAttributes = {};
        roleOptions(c, attrs);
        Object.assign(role(name).attributes, attrs);
      } else if (c.accept('alter')) {
        if (c.peekWord('tablespace')) throw new ParseProblem('tablespace statement');
        c.expect('role', 'user');
        const name = c.name();
        if (c.peekWord('in', 'set')) {
          let database: string | undefined;
          if (c.accept('in')) {
            c.expect('database');
            database = c.name();
          }
          c.expect('set');
          const setting = c.name().toLowerCase();
          if (!c.acceptPunct('=')) c.expect('to');
          const values = [c.value()];
          while (c.acceptPunct(',')) values.push(c.value());
          c.end();
          checkRoleName(name);
          result.settings.push({ role: name, ...(database !== undefined ? { database } : {}), name: setting, values });
        } else {
          const attrs: RoleAttributes = {};
          roleOptions(c, attrs);
          Object.assign(role(name).attributes, attrs);
        }
      } else if (c.accept('grant')) {
        const granted = [c.name()];
        while (c.acceptPunct(',')) granted.push(c.name());
        if (c.peekWord('on')) throw new ParseProblem('privilege grant (GRANT … ON …)');
        c.expect('to');
        const members = [c.name()];
        while (c.acceptPunct(',')) members.push(c.name());
        const opts: Pick<ParsedMembership, 'admin' | 'inherit' | 'set'> = { admin: false };
        if (c.accept('with')) {
          do {
            const o = c.expect('admin', 'inherit', 'set') as 'admin' | 'inherit' | 'set';
            opts[o] = boolOption(c);
          } while (c.acceptPunct(','));
        }
        let grantedBy: string | undefined;
        if (c.accept('granted')) {
          c.expect('by');
          grantedBy = c.name();
        }
        c.end();
        for (const r of granted) {
          for (const m of members) {
            result.memberships.push({ role: r, member: m, ...opts, ...(grantedBy !== undefined ? { grantedBy } : {}) });
          }
        }
      } else if (c.accept('comment')) {
        c.expect('on');
        if (c.peekWord('tablespace')) throw new ParseProblem('tablespace statement');
        c.expect('role');
        const name = c.name();
        c.expect('is');
        const comment = c.accept('null') ? null : c.string();
        c.end();
        role(name).comment = comment;
      } else throw new ParseProblem('not a statement odoo-dr restores');
    } catch (err) {
      if (!(err instanceof ParseProblem)) throw err;
      result.unrecognised.push({ line: st.line, text: shown(st.text), reason: err.message });
    }
  }
  result.roles = [...roles.values()];
  result.unrecognised.sort((a, b) => a.line - b.line);
  return result;
}
