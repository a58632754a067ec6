/**
 * Odoo's own backup format (the database manager's "zip (includes filestore)", `odoo-bin db dump`):
 * `dump.sql` (plain `pg_dump --no-owner`), `filestore/<aa>/<sha1>` (+ `filestore/checklist/…` GC
 * markers) and `manifest.json` as written by `dump_db_manifest` (reference odoo.md §1.2).
 *
 * What is decided here, without any I/O: the manifest odoo-dr writes, and which zip entries an
 * import accepts. Zip entries are untrusted: only the shapes Odoo itself writes are accepted.
 */
import type { OdooFacts } from '../odoo/facts';

/** Odoo's manifest.json (odoo/service/db.py `dump_db_manifest`). */
export interface OdooZipManifest {
  odoo_dump: string;
  db_name: string;
  version: string;
  version_info: Array<number | string>;
  major_version: string;
  pg_version: string;
  modules: Record<string, string>;
}

/**
 * Odoo writes `"%d.%d" % divmod(server_version / 100, 100)`: from PostgreSQL 10 on that is
 * `<major>.0` ("15.0" for 15.18), before it `<major>.<minor>` ("9.6").
 */
export function odooPgVersion(server: string): string {
  const m = /^(\d+)(?:\.(\d+))?/.exec(server.trim());
  if (!m) throw new Error(`cannot read the PostgreSQL version ${JSON.stringify(server)}`);
  const major = Number(m[1]);
  return major >= 10 ? `${major}.0` : `${major}.${Number(m[2] ?? 0)}`;
}

/**
 * The manifest for a tenant whose facts odoo-dr recorded. The Odoo build (`release.version`, e.g.
 * "17.0-20240709") is not stored in the database, so `version` is the series from the `base` module
 * ("17.0"), and `version_info` the series as a final release (`[17, 0, 0, "final", 0, ""]`): what
 * Odoo's restore and every tool reading these zips use (the series) is exact.
 */
export function odooManifest(dbName: string, facts: OdooFacts): OdooZipManifest {
  if (!facts.isOdoo || !facts.series) {
    throw new Error(`${dbName} is not an Odoo database (no installed base module recorded): it cannot be exported in Odoo's format`);
  }
  const [major, minor] = facts.series.split('.');
  // saas~17.2 style series keep their text; numbers otherwise, as Odoo's version_info has them.
  const num = (s: string | undefined): number | string => (s !== undefined && /^\d+$/.test(s) ? Number(s) : (s ?? 0));
  return {
    odoo_dump: '1',
    db_name: dbName,
    version: facts.series,
    version_info: [num(major), num(minor), 0, 'final', 0, ''],
    major_version: facts.series,
    pg_version: odooPgVersion(facts.postgres.server),
    modules: { ...facts.modules },
  };
}

/** What an import does with a zip entry. */
export type ZipEntryKind =
  | { kind: 'dump' }
  | { kind: 'manifest' }
  | { kind: 'directory' }
  | { kind: 'file'; sha1: string; rel: string }
  | { kind: 'checklist'; rel: string }
  | { kind: 'ignored' };

const SHA1 = /^[0-9a-f]{40}$/;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;

/** Throws (a message naming the entry) unless the name is a plain relative path. */
function assertSafeName(name: string): void {
  const bad =
    name.length === 0 ||
    name.includes('\\') ||
    name.includes('\0') ||
    name.startsWith('/') ||
    /^[a-zA-Z]:/.test(name) ||
    name.split('/').some((seg, i, all) => seg === '..' || seg === '.' || (seg === '' && i < all.length - 1));
  if (bad) throw new Error(`zip entry ${JSON.stringify(name)} has an unsafe path (absolute, "..", or a backslash)`);
}

/**
 * Classifies one entry of an Odoo zip; throws naming the entry when it is refused: unsafe path,
 * symbolic link or other special file, or under `filestore/` something other than Odoo's
 * `<aa>/<sha1>` files, `checklist/<aa>/<sha1>` markers and their folders. `mode` is the entry's
 * Unix mode (`externalFileAttributes >>> 16`; 0 when the zip was made elsewhere).
 */
export function classifyZipEntry(name: string, mode: number): ZipEntryKind {
  assertSafeName(name);
  const type = mode & S_IFMT;
  const isDir = name.endsWith('/');
  if (type !== 0 && type !== S_IFREG && !(isDir && type === S_IFDIR)) {
    const what = type === 0o120000 ? 'a symbolic link' : `a special file (mode ${mode.toString(8)})`;
    throw new Error(`zip entry ${JSON.stringify(name)} is ${what}: an Odoo backup holds regular files only`);
  }
  if (isDir) {
    if (type === S_IFREG) throw new Error(`zip entry ${JSON.stringify(name)} is a file named like a folder`);
    if (name === 'filestore/' || /^filestore\/(checklist\/)?([0-9a-f]{2}\/)?$/.test(name)) return { kind: 'directory' };
    if (!name.startsWith('filestore/')) return { kind: 'ignored' };
    throw new Error(`zip entry ${JSON.stringify(name)} is not a folder of an Odoo filestore (<aa>/ or checklist/<aa>/)`);
  }
  if (name === 'dump.sql') return { kind: 'dump' };
  if (name === 'manifest.json') return { kind: 'manifest' };
  if (!name.startsWith('filestore/')) return { kind: 'ignored' };
  const rel = name.slice('filestore/'.length);
  const parts = rel.split('/');
  if (parts.length === 2 && SHA1.test(parts[1]!) && parts[0] === parts[1]!.slice(0, 2)) return { kind: 'file', sha1: parts[1]!, rel };
  if (parts.length === 3 && parts[0] === 'checklist' && SHA1.test(parts[2]!) && parts[1] === parts[2]!.slice(0, 2)) return { kind: 'checklist', rel };
  throw new Error(`zip entry ${JSON.stringify(name)} is not an Odoo filestore file (filestore/<aa>/<sha1> or filestore/checklist/<aa>/<sha1>)`);
}

/** Parses and checks an Odoo manifest.json (size-limited by the caller). */
export function parseOdooManifest(text: string, where: string): OdooZipManifest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error(`${where}: manifest.json is not JSON (${(err as Error).message})`);
  }
  const m = parsed as Partial<OdooZipManifest> | null;
  if (!m || typeof m !== 'object' || Array.isArray(m)) throw new Error(`${where}: manifest.json is not an object`);
  if (m.odoo_dump !== '1') throw new Error(`${where}: manifest.json has odoo_dump=${JSON.stringify(m.odoo_dump)}, expected "1" (not an Odoo backup)`);
  if (m.modules !== undefined && (typeof m.modules !== 'object' || m.modules === null || Array.isArray(m.modules))) {
    throw new Error(`${where}: manifest.json "modules" is not an object of module → version`);
  }
  for (const [k, v] of Object.entries(m.modules ?? {})) {
    if (typeof v !== 'string') throw new Error(`${where}: manifest.json gives module ${JSON.stringify(k)} a version that is not text`);
  }
  return {
    odoo_dump: '1',
    db_name: typeof m.db_name === 'string' ? m.db_name : '',
    version: typeof m.version === 'string' ? m.version : '',
    version_info: Array.isArray(m.version_info) ? m.version_info : [],
    major_version: typeof m.major_version === 'string' ? m.major_version : '',
    pg_version: typeof m.pg_version === 'string' ? m.pg_version : '',
    modules: { ...(m.modules ?? {}) },
  };
}
