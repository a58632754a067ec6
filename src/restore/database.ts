/**
 * Restores one encrypted tenant dump (`pg_dump -Fc | zstd | age`) into a new database.
 *
 * 1. Checks first what would make the restore fail anyway: the name, a pg_restore able to read the
 *    dump's format (ToolVersionError), the identity, the artifact, a database of that name.
 * 2. Decrypts (in-process age, authenticated) and decompresses (`zstd -d`, writing the file itself)
 *    into `<DR_BACKUP_DIR>/scratch/restore-<db>-<random>/database.dump` (folder 0700, file 0600):
 *    parallel pg_restore needs a seekable file. Nothing is created in PostgreSQL before the whole
 *    artifact has decrypted and authenticated.
 * 3. Creates the database like Odoo does (TEMPLATE template0, UTF8, LC_COLLATE 'C'), marked as an
 *    odoo-dr scratch database from its first moment, then `pg_restore -j N --exit-on-error`.
 * 4. Any failure or abort drops the half-restored database; a killed process leaves a marked
 *    database that `sweepScratch` removes. The decrypted file is always removed.
 *
 * The PostgreSQL password reaches pg_restore only through its environment (libpq), never argv.
 */
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { chmod, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import type { DrConfig } from '../config';
import { decryptStream } from '../crypto/age';
import {
  ArtifactCorruptedError,
  DatabaseAuthError,
  DatabaseUnavailableError,
  DiskFullError,
  DrError,
  EncryptionKeyError,
  InvalidInputError,
  PipelineError,
  ToolVersionError,
} from '../errors';
import { runPipeline, type Stage } from '../pipeline';
import { assertCanRestore, findClientTools, type PgTools } from '../pgtools';
import { quoteIdent, serverVersion, withClient } from '../postgres';
import { ODOO_DB_NAME } from '../tenants';
import { libpqEnv, niced } from '../backup/database';
import { ensureScratchRoot, scratchMarker, unmarkScratch } from './scratch';
import { createRestoreRole, dropRestoreRole, extensionsInToc, prepareDatabaseFor, tocWithoutExtensions, type RestoreRole } from './restore-role';

export interface RestoreDbResult {
  database: string;
  durationMs: number;
  /** Size of the encrypted artifact. */
  dumpBytes: number;
  /** Version of the pg_restore used, e.g. "15.18". */
  pgRestore: string;
  /** Size of the decrypted, decompressed custom-format dump. */
  plainBytes: number;
  /** Time spent decrypting and decompressing, then in CREATE DATABASE + pg_restore. */
  decryptMs: number;
  restoreMs: number;
}

export interface RestoreDbOptions {
  config: DrConfig;
  /** Local `.dump.zst.age` file. */
  encryptedDump: string;
  /** age private key text (one or more AGE-SECRET-KEY-1… lines). */
  identity: string;
  /** Must not exist yet: created here. */
  database: string;
  /** Role owning the new database. Scratch copies: config.postgres.user (never the Odoo role). */
  owner: string;
  /** false: `pg_restore --no-owner` (objects owned by the connecting role); true: owners as dumped. */
  keepOwnership: boolean;
  /** pg_restore -j (default 2). */
  jobs?: number;
  /** Major version of the pg_dump that made the dump (manifest): checked before anything is done. */
  dumpPgMajor?: number;
  /**
   * Keep the database marked as a scratch copy after success (no window where a crash would leave
   * an unmarked copy). Without it the in-progress marker is removed once the restore succeeded.
   */
  scratch?: { tenant: string; purpose: string };
  /** Run pg_restore under ionice/nice (DR_IO_NICE_LEVEL, DR_CPU_NICE_LEVEL). Default: false. */
  lowPriority?: boolean;
  /**
   * The non-superuser role pg_restore connects as (see restore-role.ts), for a caller that goes on
   * using the copy with it (neutralization, checks) and drops it afterwards. Default: one made for
   * this restore alone — a member of the Odoo role with `keepOwnership`, of nothing otherwise —
   * and dropped at the end.
   */
  asRole?: RestoreRole;
  signal?: AbortSignal;
  /** Called once the whole dump decrypted (authenticated), decompressed and pg_restore listed its table of contents. */
  onArchiveRead?: (archive: { plainBytes: number; listing: string }) => void;
  /** 'decrypt' with plaintext bytes written so far; 'restore' at its start and then with the database size. */
  onProgress?: (phase: 'decrypt' | 'restore', bytes?: number) => void;
}

const RESTORE_PROGRESS_MS = 5_000;

/** What pg_restore prints for an archive it cannot read because it is damaged. */
const CORRUPT_ARCHIVE =
  /did not find magic string|could not read (?:from )?input file|unexpected end of file|input file is too short|input file does not appear to be a valid archive|could not find block ID|could not uncompress|corrupt|invalid (?:compression|OID|dumpId|data block)|bad dumpId|unrecognized data block type|could not find header for file|file offset in dump file is too large/i;
/** A dump from a newer pg_dump than this pg_restore. */
const NEWER_ARCHIVE = /unsupported version \([\d.]+\) in file header/i;
const SPACE = /No space left on device|could not extend file|disk full/i;
const UNREACHABLE =
  /could not connect to server|connection to server .* failed|server closed the connection unexpectedly|terminating connection due to administrator command|Connection refused/i;
const PRIVILEGE = /must be superuser|permission denied|must be owner of|must be member of|must have privileges of/i;
const AUTH = /password authentication failed|no pg_hba\.conf entry|permission denied to create database|must be owner of database/i;

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function decompressStage(dest: string): Stage {
  // zstd writes the file itself: the plaintext never passes through node (no copy, no hashing).
  return { name: 'zstd', command: 'zstd', args: ['-d', '-q', '-f', '-o', dest] };
}

/** What would make CREATE DATABASE fail: the name is taken, the owner role does not exist. */
async function preflight(config: DrConfig, database: string, owner: string, artifact: string): Promise<void> {
  await withClient(config.postgres, config.postgres.maintenanceDb, async (client) => {
    const { rows } = await client.query<{ taken: boolean; role: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS taken,
              EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2) AS role`,
      [database, owner],
    );
    if (rows[0]!.taken) {
      throw new InvalidInputError(`cannot restore ${artifact} into "${database}": that database already exists (restores never overwrite)`);
    }
    if (!rows[0]!.role) {
      throw new InvalidInputError(`cannot restore ${artifact} into "${database}": the owner role "${owner}" does not exist`);
    }
  });
}

async function dropDatabase(config: DrConfig, database: string): Promise<void> {
  await withClient(config.postgres, config.postgres.maintenanceDb, async (client) => {
    await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [database]);
    await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(database)} WITH (FORCE)`);
  });
}

/** Maps a failure of the decrypt | zstd step to the catalogue, naming the artifact and the step. */
function decryptError(err: unknown, artifact: string, database: string): Error {
  const where = `restoring ${artifact} into "${database}" failed while decrypting and decompressing it`;
  if (err instanceof ArtifactCorruptedError) return new ArtifactCorruptedError(`${where}: ${err.message}`, { cause: err });
  if (err instanceof EncryptionKeyError) return new EncryptionKeyError(`${where}: ${err.message}`, { cause: err });
  if (err instanceof DiskFullError) return new DiskFullError(`${where}: ${err.message}`, { cause: err });
  const message = messageOf(err);
  if (SPACE.test(message)) return new DiskFullError(`${where}: no space left for the decrypted dump (${message})`, { cause: err });
  if (err instanceof PipelineError && /stage "zstd"/.test(message) && !/not installed|cannot start/.test(message)) {
    // The age layer authenticated every byte: zstd refusing them means the artifact was made broken.
    return new ArtifactCorruptedError(`${where}: the decrypted data is not a valid zstd stream (${message})`, { cause: err });
  }
  return new PipelineError(`${where}: ${message}`, { cause: err });
}

/** Maps a pg_restore failure to the catalogue, naming the artifact and the step. */
function restoreError(err: unknown, artifact: string, database: string, tools: PgTools): Error {
  const message = messageOf(err);
  const where = `restoring ${artifact} into "${database}" failed in pg_restore`;
  if (NEWER_ARCHIVE.test(message)) {
    return new ToolVersionError(`${where}: ${tools.pgRestore} (${tools.version.full}) cannot read this dump: ${message}`, { cause: err });
  }
  if (CORRUPT_ARCHIVE.test(message)) return new ArtifactCorruptedError(`${where}: the archive is truncated or damaged: ${message}`, { cause: err });
  if (SPACE.test(message)) return new DiskFullError(`${where}: the PostgreSQL server ran out of disk space: ${message}`, { cause: err });
  if (AUTH.test(message)) return new DatabaseAuthError(`${where}: ${message}`, { cause: err });
  if (PRIVILEGE.test(message)) {
    // The dump asked for more than the tenant's own rights (restores never run as a superuser).
    return new ArtifactCorruptedError(`${where}: the dump does something only a superuser or another role may do, refused: ${message}`, { cause: err });
  }
  if (UNREACHABLE.test(message)) return new DatabaseUnavailableError(`${where}: ${message}`, { cause: err });
  if (err instanceof DrError && !(err instanceof PipelineError)) return err;
  return new PipelineError(`${where}: ${message}`, { cause: err });
}

/** Restores an encrypted dump into a new database (see the module comment). */
export async function restoreDump(opts: RestoreDbOptions): Promise<RestoreDbResult> {
  const { config, encryptedDump, identity, database, owner, signal } = opts;
  const started = Date.now();
  const jobs = opts.jobs ?? 2;
  signal?.throwIfAborted();

  // --- 1. everything that would fail anyway, before anything is created -----------------------------
  if (!ODOO_DB_NAME.test(database) || Buffer.byteLength(database) > 63) {
    throw new InvalidInputError(`"${database}" is not a valid database name to restore into (Odoo's rule, at most 63 bytes)`);
  }
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > 64) throw new InvalidInputError(`pg_restore jobs must be 1 to 64, got ${jobs}`);
  const server = await serverVersion(config.postgres);
  const tools = await findClientTools(server.major, { ...(config.postgres.binDir ? { binDir: config.postgres.binDir } : {}) });
  if (opts.dumpPgMajor !== undefined) {
    try {
      assertCanRestore(tools, opts.dumpPgMajor);
    } catch (err) {
      throw err instanceof ToolVersionError ? new ToolVersionError(`cannot restore ${encryptedDump}: ${err.message}`) : err;
    }
  }
  let dumpBytes: number;
  try {
    const st = await stat(encryptedDump);
    if (!st.isFile()) throw new ArtifactCorruptedError(`${encryptedDump} is not a regular file`);
    dumpBytes = st.size;
  } catch (err) {
    if (err instanceof DrError) throw err;
    throw new ArtifactCorruptedError(
      `cannot restore ${encryptedDump}: the artifact is missing or unreadable (${(err as NodeJS.ErrnoException).code ?? messageOf(err)})`,
    );
  }
  await preflight(config, database, owner, encryptedDump);

  const root = await ensureScratchRoot(config);
  const work = path.join(root, `restore-${database}-${randomBytes(4).toString('hex')}`);
  await mkdir(work, { mode: 0o700 });
  const plain = path.join(work, 'database.dump');
  let created = false;
  let ownRole: RestoreRole | undefined;
  try {
    // --- 2. decrypt + decompress to a seekable file -------------------------------------------------
    const decryptStarted = Date.now();
    let progressTimer: NodeJS.Timeout | undefined;
    try {
      if (opts.onProgress) {
        progressTimer = setInterval(() => {
          stat(plain).then(
            (s) => opts.onProgress?.('decrypt', s.size),
            () => undefined,
          );
        }, 1_000);
      }
      await runPipeline({
        source: decryptStream(identity, encryptedDump),
        stages: [decompressStage(plain)],
        dest: path.join(work, 'zstd.out'),
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      if (signal?.aborted) throw err;
      throw decryptError(err, encryptedDump, database);
    } finally {
      clearInterval(progressTimer);
    }
    await chmod(plain, 0o600);
    const plainBytes = (await stat(plain)).size;
    opts.onProgress?.('decrypt', plainBytes);
    const decryptMs = Date.now() - decryptStarted;

    // --- 3. create (marked) and restore -------------------------------------------------------------
    signal?.throwIfAborted();
    const restoreStarted = Date.now();
    const createdAt = new Date().toISOString();
    const marker = scratchMarker(database, {
      tenant: opts.scratch?.tenant ?? database,
      purpose: opts.scratch?.purpose ?? 'restore in progress',
      createdAt,
    });
    await withClient(config.postgres, config.postgres.maintenanceDb, async (client) => {
      await client.query(`CREATE DATABASE ${quoteIdent(database)} OWNER ${quoteIdent(owner)} ENCODING 'UTF8' LC_COLLATE 'C' TEMPLATE template0`);
      created = true;
      // Marked at once, in the same session: a process killed from here on leaves a sweepable copy.
      await client.query(`COMMENT ON DATABASE ${quoteIdent(database)} IS ${pg.escapeLiteral(marker)}`);
    });
    signal?.throwIfAborted();
    opts.onProgress?.('restore');

    // Least privilege: the dump's SQL runs as a role that is never a superuser (restore-role.ts);
    // the extensions it needs come from odoo-dr's allow-list, created here, and are skipped in it.
    const role = opts.asRole ?? (ownRole = await createRestoreRole(config, opts.keepOwnership ? { memberOf: config.odoo.dbUser } : {}));
    let listing: string;
    try {
      listing = await new Promise<string>((resolve, reject) =>
        execFile(tools.pgRestore, ['--list', plain], { maxBuffer: 256 * 1024 * 1024 }, (err, out, errOut) =>
          err ? reject(new Error(errOut || err.message)) : resolve(out),
        ),
      );
    } catch (err) {
      throw restoreError(err, encryptedDump, database, tools);
    }
    opts.onArchiveRead?.({ plainBytes, listing });
    await prepareDatabaseFor(config, database, role, extensionsInToc(listing));
    const tocFile = path.join(work, 'toc.list');
    await writeFile(tocFile, tocWithoutExtensions(listing), { mode: 0o600 });

    const args = [
      `--dbname=${database}`,
      `--jobs=${jobs}`,
      '--exit-on-error',
      '--no-password',
      `--use-list=${tocFile}`,
      ...(opts.keepOwnership ? [] : ['--no-owner']),
      plain,
    ];
    const command = opts.lowPriority ? niced(config, tools.pgRestore, args) : { command: tools.pgRestore, args };
    let sizeTimer: NodeJS.Timeout | undefined;
    if (opts.onProgress) {
      sizeTimer = setInterval(() => {
        withClient(config.postgres, config.postgres.maintenanceDb, (c) => c.query<{ s: string }>('SELECT pg_database_size($1) AS s', [database])).then(
          (r) => opts.onProgress?.('restore', Number(r.rows[0]?.s ?? 0)),
          () => undefined,
        );
      }, RESTORE_PROGRESS_MS);
    }
    try {
      await runPipeline({
        source: { name: 'pg_restore', command: command.command, args: command.args, env: libpqEnv({ ...config, postgres: role.settings }) },
        stages: [],
        dest: path.join(work, 'pg_restore.out'),
        ...(signal ? { signal } : {}),
        secrets: [config.postgres.password ?? '', role.settings.password ?? ''].filter(Boolean),
      });
    } catch (err) {
      if (signal?.aborted) throw err;
      throw restoreError(err, encryptedDump, database, tools);
    } finally {
      clearInterval(sizeTimer);
    }
    signal?.throwIfAborted();
    if (!opts.scratch) await unmarkScratch(config, database);
    return {
      database,
      durationMs: Date.now() - started,
      dumpBytes,
      pgRestore: tools.version.full,
      plainBytes,
      decryptMs,
      restoreMs: Date.now() - restoreStarted,
    };
  } catch (err) {
    if (created) {
      try {
        await dropDatabase(config, database);
      } catch (dropErr) {
        const note =
          ` (and the half-restored database "${database}" could not be dropped: ${messageOf(dropErr)}; ` +
          'it is marked as an odoo-dr scratch database, so sweepScratch removes it)';
        if (err instanceof DrError) {
          const Ctor = err.constructor as new (message: string, options?: { cause?: unknown }) => DrError;
          throw new Ctor(`${err.message}${note}`, { cause: err });
        }
        throw new PipelineError(`${messageOf(err)}${note}`, { cause: err });
      }
    }
    throw err;
  } finally {
    await rm(work, { recursive: true, force: true });
    if (ownRole) await dropRestoreRole(config, ownRole.name, [database]).catch(() => undefined);
  }
}
