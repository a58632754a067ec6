/**
 * The bare tools `npm run bench` measures odoo-dr against: what an operator with a shell would run
 * for the same job, each timed through bash (bench/harness.ts `sh`). The figures' labels name them.
 */
import { execFileSync } from 'node:child_process';
import type { PgTools } from '../../src/pgtools';
import { sh } from '../harness';

/** The PostgreSQL client tools matching the server, and the environment that points them at it. */
export interface BarePostgres {
  tools: PgTools;
  pgEnv: NodeJS.ProcessEnv;
}

/** The first line of `cmd args` (its version), or "missing". */
export function versionLine(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
      .split('\n')[0]!
      .trim();
  } catch {
    return 'missing';
  }
}

/** `pg_dump -Fc -Z0 -f FILE -d DB`: no compression. */
export function pgDumpUncompressed(pg: BarePostgres, db: string, file: string): Promise<{ ms: number }> {
  return sh('"$1" -Fc -Z0 -f "$2" -d "$3"', [pg.tools.pgDump, file, db], pg.pgEnv);
}

/** `pg_dump -Fc -f FILE -d DB`: its default compression (gzip 6). */
export function pgDumpDefault(pg: BarePostgres, db: string, file: string): Promise<{ ms: number }> {
  return sh('"$1" -Fc -f "$2" -d "$3"', [pg.tools.pgDump, file, db], pg.pgEnv);
}

/** `CREATE DATABASE` + `pg_restore -j2` of a custom-format dump. */
export function createAndRestore(pg: BarePostgres, db: string, dump: string): Promise<{ ms: number }> {
  return sh(
    `"$1" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE \\"$3\\" ENCODING 'UTF8' LC_COLLATE 'C' TEMPLATE template0"\n"$2" --jobs=2 --exit-on-error --no-owner -d "$3" "$4"`,
    [pg.tools.psql, pg.tools.pgRestore, db, dump],
    pg.pgEnv,
  );
}

/** `xargs -P3 pg_dump -Fc -Z0` of every database into DIR/<db>.dump. */
export function pgDumpFleet(pg: BarePostgres, dir: string, dbs: string[]): Promise<{ ms: number }> {
  return sh('printf \'%s\\n\' "${@:3}" | xargs -P3 -I{} "$1" -Fc -Z0 -f "$2/{}.dump" -d {}', [pg.tools.pgDump, dir, ...dbs], pg.pgEnv);
}

/** `tar -cf - . | zstd -1 | age -r R > FILE` of a folder; with `snapshot`, GNU tar's `-g` incremental (level 0, or 1 on a copy of an earlier snapshot). */
export function tarZstdAge(dir: string, recipient: string, archive: string, snapshot?: string): Promise<{ ms: number }> {
  return snapshot === undefined
    ? sh('"$1" -C "$2" -cf - . | zstd -1 -q | age -r "$3" > "$4"', ['tar', dir, recipient, archive])
    : sh('"$1" -C "$2" -g "$3" -cf - . | zstd -1 -q | age -r "$4" > "$5"', ['tar', dir, snapshot, recipient, archive]);
}

/** `age -d -i KEY FILE | zstd -d | tar -x` into `dest` (created). */
export function ageZstdUntar(identityFile: string, archive: string, dest: string): Promise<{ ms: number }> {
  return sh('mkdir -p "$3"\nage -d -i "$1" "$2" | zstd -d -q | tar -x -C "$3"', [identityFile, archive, dest]);
}
