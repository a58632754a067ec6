/**
 * PostgreSQL client binaries. pg_dump must be at least the server's major version (an older one
 * refuses, or worse, misses newer objects) and pg_restore cannot read a dump from a newer pg_dump.
 * On Debian each major has its own `/usr/lib/postgresql/<major>/bin`: pick the one that matches.
 */
import { execFile } from 'node:child_process';
import { access, readdir } from 'node:fs/promises';
import { constants } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ToolVersionError } from './errors';

const run = promisify(execFile);

export const DEBIAN_PG_ROOT = '/usr/lib/postgresql';

export interface PgTools {
  /** Directory of the chosen binaries (undefined: found on PATH). */
  binDir: string | undefined;
  pgDump: string;
  pgDumpAll: string;
  pgRestore: string;
  psql: string;
  /** Version of the chosen pg_dump, e.g. { major: 15, full: '15.18' }. */
  version: { major: number; full: string };
}

/** Parses `pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)` → { major: 15, full: '15.18' }. */
export function parseToolVersion(output: string): { major: number; full: string } | undefined {
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(output);
  if (!m) return undefined;
  const major = Number(m[1]);
  // Before 10 the major was two numbers (9.6).
  const full = [m[1], m[2], m[3]].filter((x) => x !== undefined).join('.');
  return { major, full };
}

async function executable(file: string): Promise<boolean> {
  return access(file, constants.X_OK).then(
    () => true,
    () => false,
  );
}

async function versionOf(pgDump: string): Promise<{ major: number; full: string } | undefined> {
  try {
    const { stdout } = await run(pgDump, ['--version'], { timeout: 10_000 });
    return parseToolVersion(stdout);
  } catch {
    return undefined;
  }
}

async function candidateDirs(root: string): Promise<string[]> {
  try {
    const entries = await readdir(root);
    return entries
      .filter((e) => /^\d+(\.\d+)?$/.test(e))
      .sort((a, b) => Number(a) - Number(b))
      .map((e) => path.join(root, e, 'bin'));
  } catch {
    return [];
  }
}

function toolsIn(binDir: string | undefined, version: { major: number; full: string }): PgTools {
  const at = (name: string) => (binDir ? path.join(binDir, name) : name);
  return {
    binDir,
    pgDump: at('pg_dump'),
    pgDumpAll: at('pg_dumpall'),
    pgRestore: at('pg_restore'),
    psql: at('psql'),
    version,
  };
}

/**
 * Chooses client binaries for a server of `serverMajor`: the configured directory if any (it must
 * be new enough), else the Debian directory of the same major, else the closest newer one, else PATH.
 */
export async function findClientTools(serverMajor: number, opts: { binDir?: string; debianRoot?: string } = {}): Promise<PgTools> {
  const seen: string[] = [];
  const consider = async (binDir: string | undefined): Promise<PgTools | undefined> => {
    const pgDump = binDir ? path.join(binDir, 'pg_dump') : 'pg_dump';
    if (binDir && !(await executable(pgDump))) return undefined;
    const version = await versionOf(pgDump);
    if (!version) return undefined;
    seen.push(`${pgDump} ${version.full}`);
    return version.major >= serverMajor ? toolsIn(binDir, version) : undefined;
  };

  if (opts.binDir) {
    const chosen = await consider(opts.binDir);
    if (chosen) return chosen;
    throw new ToolVersionError(
      `DR_PG_BIN_DIR=${opts.binDir} has ${seen[0] ?? 'no usable pg_dump'}, but the server is PostgreSQL ${serverMajor}: ` +
        `pg_dump must be version ${serverMajor} or newer`,
    );
  }
  const dirs = await candidateDirs(opts.debianRoot ?? DEBIAN_PG_ROOT);
  const same = dirs.find((d) => path.basename(path.dirname(d)) === String(serverMajor));
  const ordered = [...(same ? [same] : []), ...dirs.filter((d) => Number(path.basename(path.dirname(d))) > serverMajor)];
  for (const dir of ordered) {
    const chosen = await consider(dir);
    if (chosen) return chosen;
  }
  const fromPath = await consider(undefined);
  if (fromPath) return fromPath;
  throw new ToolVersionError(
    `no pg_dump of version ${serverMajor} or newer for this PostgreSQL ${serverMajor} server ` +
      `(found: ${seen.length ? seen.join(', ') : 'none'}); install postgresql-client-${serverMajor} or set DR_PG_BIN_DIR`,
  );
}

const chosen = new Map<string, { at: number; tools: Promise<PgTools> }>();

/**
 * findClientTools, remembered by this process for `maxAgeMs` (default 5 minutes): a backup of many
 * tenants chooses its binaries once instead of running `pg_dump --version` for each. A failure is
 * not remembered; a package upgrade is seen within `maxAgeMs`.
 */
export function findClientToolsCached(serverMajor: number, opts: { binDir?: string; debianRoot?: string } = {}, maxAgeMs = 5 * 60_000): Promise<PgTools> {
  const key = JSON.stringify([serverMajor, opts.binDir ?? null, opts.debianRoot ?? null]);
  const now = Date.now();
  const known = chosen.get(key);
  if (known && now - known.at <= maxAgeMs) return known.tools;
  const tools = findClientTools(serverMajor, opts);
  chosen.set(key, { at: now, tools });
  tools.catch(() => {
    if (chosen.get(key)?.tools === tools) chosen.delete(key);
  });
  return tools;
}

/**
 * Checks that a pg_restore can read a dump made by `dumpMajor`'s pg_dump (archives from a newer
 * pg_dump use a format version an older pg_restore refuses).
 */
export function assertCanRestore(tools: PgTools, dumpMajor: number): void {
  if (tools.version.major < dumpMajor) {
    throw new ToolVersionError(
      `this dump was made by pg_dump ${dumpMajor}; ${tools.pgRestore} is version ${tools.version.full} and cannot read it: ` +
        `install postgresql-client-${dumpMajor} or set DR_PG_BIN_DIR`,
    );
  }
}
