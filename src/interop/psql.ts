/**
 * Replays plain SQL from outside (an Odoo zip's `dump.sql`, a `.sql` file, or a custom-format dump
 * turned into SQL by `pg_restore -f -`) with no more rights than the tenant's own role, and with no
 * client-side commands:
 *
 * - psql connects as a one-time restore role (restore-role.ts) that is a member of nothing and owns
 *   nothing outside the database being filled: the file's SQL cannot reach another tenant (the
 *   shared Odoo role owns every tenant database and may create databases; this role may not), and
 *   `ALTER ROLE … SUPERUSER`, `COPY … TO PROGRAM`, untrusted extensions, `SET ROLE`,
 *   `SET SESSION AUTHORIZATION`, `DROP DATABASE` are refused by the server. The caller hands the
 *   objects to the tenant role afterwards (REASSIGN OWNED);
 * - psql meta-commands run on *this* host (`\!` runs a shell, `\copy … to program`, `\o |cmd`,
 *   `\i /file`, `\connect`): the stream is prefixed with `\restrict <random key>` (psql ≥ 13.22,
 *   14.19, 15.14, 16.10, 17.6), after which psql refuses every backslash command except
 *   `\unrestrict <that key>`, which the file cannot know. The file's own `\restrict`/`\unrestrict`
 *   lines (recent pg_dump writes them) are dropped so that they do not stop the replay.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ArtifactCorruptedError, DatabaseUnavailableError, DiskFullError, InvalidInputError, PipelineError, ToolVersionError, scrubSecrets } from '../errors';
import type { PostgresSettings } from '../postgres';

/** First releases of each major whose psql knows `\restrict` (CVE-2025-8714 fix). */
const RESTRICT_SINCE: Record<number, number> = { 13: 22, 14: 19, 15: 14, 16: 10, 17: 6 };

export function psqlSupportsRestrict(version: string): boolean {
  const m = /^(\d+)(?:\.(\d+))?/.exec(version);
  if (!m) return false;
  const major = Number(m[1]);
  const minor = Number(m[2] ?? 0);
  if (major >= 18) return true;
  const since = RESTRICT_SINCE[major];
  return since !== undefined && minor >= since;
}

const RESTRICT_LINE = /^\\(?:un)?restrict[ \t]+[A-Za-z0-9]+[ \t]*\r?$/;
/** Lines starting with a backslash longer than this cannot be a `\restrict` line: passed through. */
const MAX_HELD = 256;

/** Drops whole `\restrict KEY` / `\unrestrict KEY` lines; holds at most MAX_HELD bytes of a line. */
export class DropRestrictLines extends Transform {
  private atLineStart = true;
  private held: string | null = null;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    // latin1 maps bytes 1:1, so multi-byte characters split across chunks pass through unchanged.
    const s = chunk.toString('latin1');
    const out: string[] = [];
    let i = 0;
    if (this.held !== null) {
      const nl = s.indexOf('\n');
      if (nl < 0) {
        this.held += s;
        if (this.held.length > MAX_HELD) {
          out.push(this.held);
          this.held = null;
          this.atLineStart = false;
        }
        return done(null, Buffer.from(out.join(''), 'latin1'));
      }
      const line = this.held + s.slice(0, nl);
      if (!RESTRICT_LINE.test(line)) out.push(`${line}\n`);
      this.held = null;
      this.atLineStart = true;
      i = nl + 1;
    }
    while (i < s.length) {
      const nl = s.indexOf('\n', i);
      if (this.atLineStart && s[i] === '\\') {
        if (nl < 0) {
          this.held = s.slice(i);
          if (this.held.length > MAX_HELD) {
            out.push(this.held);
            this.held = null;
            this.atLineStart = false;
          }
          break;
        }
        const line = s.slice(i, nl);
        if (!RESTRICT_LINE.test(line)) out.push(`${line}\n`);
        i = nl + 1;
        continue;
      }
      if (nl < 0) {
        out.push(s.slice(i));
        this.atLineStart = false;
        break;
      }
      out.push(s.slice(i, nl + 1));
      this.atLineStart = true;
      i = nl + 1;
    }
    done(null, Buffer.from(out.join(''), 'latin1'));
  }

  override _flush(done: TransformCallback): void {
    if (this.held !== null && !RESTRICT_LINE.test(this.held)) return done(null, Buffer.from(this.held, 'latin1'));
    done();
  }
}

export interface RestrictedPsqlOptions {
  psql: string;
  /** psql's version ("15.18"): must know `\restrict`. */
  psqlVersion: string;
  /** The restore role's connection settings (never a superuser's). */
  settings: PostgresSettings;
  database: string;
  sql: Readable;
  /** Names what is replayed in errors (`dump.sql of FILE`). */
  what: string;
  signal?: AbortSignal;
}

function mapPsqlError(stderr: string, what: string, database: string): Error {
  const tail = stderr.trim().split('\n').slice(-4).join(' | ');
  const where = `replaying ${what} into "${database}" failed`;
  if (/backslash commands are restricted/.test(stderr)) {
    return new InvalidInputError(
      `${where}: the SQL contains a psql meta-command (a backslash command such as \\! or \\copy, which would run on this host), refused: ${tail}`,
    );
  }
  if (/must be superuser|permission denied|must be owner of|must be member of|must have privileges of|only superuser/i.test(stderr)) {
    return new InvalidInputError(
      `${where}: the SQL does something only a superuser or another role may do (it runs with the rights of a role that owns only the new database), refused: ${tail}`,
    );
  }
  if (/No space left on device|could not extend file/i.test(stderr)) return new DiskFullError(`${where}: the PostgreSQL server ran out of disk space: ${tail}`);
  if (/could not connect to server|connection to server .* failed|server closed the connection unexpectedly/i.test(stderr)) {
    return new DatabaseUnavailableError(`${where}: ${tail}`);
  }
  if (/invalid command \\restrict/.test(stderr)) return new ToolVersionError(`${where}: this psql does not know \\restrict: ${tail}`);
  return new ArtifactCorruptedError(`${where}: the SQL does not load: ${tail}`);
}

/** Replays `sql` (see the module comment); throws a catalogue error naming what was refused. */
export async function runRestrictedPsql(opts: RestrictedPsqlOptions): Promise<void> {
  if (!psqlSupportsRestrict(opts.psqlVersion)) {
    throw new ToolVersionError(
      `${opts.psql} is version ${opts.psqlVersion}, which cannot refuse psql meta-commands (\\restrict): plain SQL from outside is replayed only ` +
        'with psql 13.22, 14.19, 15.14, 16.10, 17.6 or newer; upgrade the PostgreSQL client or set DR_PG_BIN_DIR',
    );
  }
  const { settings } = opts;
  const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LANG: 'C.UTF-8' };
  Object.assign(env, {
    PGHOST: settings.host,
    PGPORT: String(settings.port),
    PGUSER: settings.user,
    PGDATABASE: opts.database,
    PGAPPNAME: 'odoo-dr-import',
    PGCONNECT_TIMEOUT: '15',
    ...(settings.password !== undefined ? { PGPASSWORD: settings.password } : {}),
  });
  const key = randomBytes(24).toString('hex');
  const child = spawn(opts.psql, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', '-'], { env, stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    stderr = (stderr + d).slice(-16_384);
  });
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
  const onAbort = () => child.kill('SIGTERM');
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  let pipeError: unknown;
  try {
    child.stdin.write(`\\restrict ${key}\n`);
    await pipeline(opts.sql, new DropRestrictLines(), child.stdin);
  } catch (err) {
    pipeError = err;
    opts.sql.destroy();
  }
  const code = await exited.finally(() => opts.signal?.removeEventListener('abort', onAbort));
  opts.signal?.throwIfAborted();
  const clean = scrubSecrets(stderr, [settings.password, key]);
  if (code !== 0) throw mapPsqlError(clean, opts.what, opts.database);
  if (pipeError) {
    const msg = pipeError instanceof Error ? pipeError.message : JSON.stringify(pipeError);
    throw new PipelineError(`replaying ${opts.what} into "${opts.database}" failed while reading it: ${msg}`, { cause: pipeError });
  }
}
