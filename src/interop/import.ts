/**
 * `odoo-dr import FILE --tenant NEWDB [--copy|--move]`: brings an Odoo backup zip (`dump.sql`,
 * `filestore/`, `manifest.json`), a plain SQL dump or a pg_dump custom-format dump into the platform
 * as a new tenant, through the recovery's shadow path:
 *
 * 1. checks first (nothing created): the name (Odoo's rule), that neither the database nor the
 *    filestore folder exists, every zip entry (only Odoo's shapes; no `..`, absolute path, link or
 *    special file: classifyZipEntry), the manifest, a psql able to refuse meta-commands;
 * 2. the shadow database `<db>_dr_shadow_<id>` (owned by the DR role, marked as a shadow from its
 *    first moment, so no Odoo process lists it and a crash leaves a sweepable copy) is filled by
 *    psql connected as a one-time role that owns nothing else and is a member of nothing (psql.ts:
 *    not even of the Odoo role, which owns every other tenant), the filestore into
 *    `<root>/.<db>.dr-shadow-<id>.partial-…`, each file checked against its SHA-1 name;
 * 3. `--copy` (default) neutralizes the copy and gives it a new `database.uuid` and
 *    `database.secret`, as Odoo's restore "copy" does; `--move` keeps them (the tenant itself moved);
 * 4. verification (installed modules against the zip's manifest, attachments ↔ filestore, an active
 *    administrator, neutralization or identity). Neutralization and checks run as that same role
 *    (a trigger or view of the dump fires with its rights, not the Odoo role's); only then are the
 *    objects handed to the Odoo role (REASSIGN OWNED) and the swap puts the copy in place under
 *    NEWDB, owned by the Odoo role. Any failure drops the shadow: nothing is left under NEWDB.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import pg from 'pg';
import type { DrConfig } from '../config';
import { DrError, InvalidInputError, PipelineError } from '../errors';
import { odooChecks, type Check } from '../odoo/checks';
import { readOdooFacts } from '../odoo/facts';
import { neutralizationState, neutralizeDatabase } from '../odoo/neutralize';
import { findClientTools } from '../pgtools';
import { quoteIdent, serverVersion, withClient } from '../postgres';
import { filestoreDir, filestorePreRecoveryDir, filestoreShadowDir, preRecoveryName, recoveryStamp, shadowName } from '../recovery/names';
import { SHADOW_PURPOSE, dropShadow, shadowPartialDir } from '../recovery/shadow';
import { swapIn } from '../recovery/swap';
import { applyOwnership, ownershipOf } from '../restore/ownership';
import { createRestoreRole, dropRestoreRole, type RestoreRole } from '../restore/restore-role';
import { scratchMarker } from '../restore/scratch';
import { ODOO_DB_NAME } from '../tenants';
import { classifyZipEntry } from './odoo-format';
import { runRestrictedPsql } from './psql';
import { type ImportFormat, detectFormat, entries, extractFile, messageOf, openZip, scanZip } from './zip-read';

export type { ImportFormat } from './zip-read';
export type ImportMode = 'copy' | 'move';

export interface ImportOptions {
  config: DrConfig;
  file: string;
  tenant: string;
  mode: ImportMode;
  signal?: AbortSignal;
  onProgress?: (phase: 'check' | 'database' | 'filestore' | 'verify' | 'swap', detail?: string) => void;
}

export interface ImportResult {
  tenant: string;
  file: string;
  format: ImportFormat;
  mode: ImportMode;
  /** The zip's manifest (Odoo version, source database name), when there was one. */
  source?: { dbName: string; version: string; pgVersion: string; modules: number };
  files: number;
  bytes: number;
  checklist: number;
  checks: Check[];
  /** What neutralization did (copy). */
  neutralization: string[];
  warnings: string[];
  durationMs: number;
}

/** `pg_restore --no-owner -f - FILE`: a custom-format dump as plain SQL, to be replayed like any other. */
function customToSql(pgRestore: string, file: string): { sql: Readable; done: Promise<void> } {
  const child = spawn(pgRestore, ['--no-owner', '-f', '-', file], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' } });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    stderr = (stderr + d).slice(-8192);
  });
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve()
        : reject(
            new InvalidInputError(
              `${file}: pg_restore cannot read it as a custom-format dump (exit ${code}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`,
            ),
          ),
    );
  });
  return { sql: child.stdout, done };
}

/** Imports `file` as the new tenant (see the module comment). */
export async function importArchive(opts: ImportOptions): Promise<ImportResult> {
  const { config, file, tenant, mode, signal } = opts;
  const started = Date.now();
  const progress = opts.onProgress ?? (() => undefined);
  if (!ODOO_DB_NAME.test(tenant) || Buffer.byteLength(tenant) > 63) {
    throw new InvalidInputError(`"${tenant}" is not a valid Odoo database name (letters, digits, _ . -, starting with a letter or digit, at most 63 bytes)`);
  }
  // --- 1. checks ------------------------------------------------------------------------------------
  progress('check');
  const format = await detectFormat(file);
  const scan = format === 'odoo-zip' ? await scanZip(file) : { files: 0, warnings: [] as string[] };
  const manifest = 'manifest' in scan ? scan.manifest : undefined;
  const warnings = [...scan.warnings];
  const liveDir = filestoreDir(config, tenant);
  if (await stat(liveDir).catch(() => undefined)) {
    throw new InvalidInputError(
      `cannot import into "${tenant}": its filestore folder ${liveDir} already exists (imports never overwrite; remove it or choose another name)`,
    );
  }
  const server = await serverVersion(config.postgres);
  await withClient(config.postgres, config.postgres.maintenanceDb, async (c) => {
    const { rows } = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [tenant]);
    if (rows.length) throw new InvalidInputError(`cannot import into "${tenant}": that database already exists (imports never overwrite; choose another name)`);
  });
  if (manifest?.pg_version) {
    const dumped = Number(manifest.pg_version.split('.')[0]);
    if (dumped > server.major)
      warnings.push(`the backup comes from PostgreSQL ${manifest.pg_version}, this server is ${server.full}: its SQL may use what this server lacks`);
  }
  const tools = await findClientTools(server.major, { ...(config.postgres.binDir ? { binDir: config.postgres.binDir } : {}) });

  // --- 2. shadow --------------------------------------------------------------------------------------
  const id = randomBytes(6).toString('hex');
  const shadowDb = shadowName(tenant, id);
  const shadowDir = filestoreShadowDir(config, tenant, id);
  const partial = shadowPartialDir(shadowDir);
  const odooRole = config.odoo.dbUser;
  let role: RestoreRole | undefined;
  let swapped = false;
  const result: ImportResult = {
    tenant,
    file,
    format,
    mode,
    ...(manifest
      ? { source: { dbName: manifest.db_name, version: manifest.version, pgVersion: manifest.pg_version, modules: Object.keys(manifest.modules).length } }
      : {}),
    files: 0,
    bytes: 0,
    checklist: 0,
    checks: [],
    neutralization: [],
    warnings,
    durationMs: 0,
  };
  try {
    // A member of nothing: the SQL's rights end at this database (see psql.ts).
    role = await createRestoreRole(config);
    await withClient(config.postgres, config.postgres.maintenanceDb, async (c) => {
      // The tenant role must exist and not be a superuser: it will own the imported objects.
      const { rows } = await c.query<{ rolsuper: boolean }>('SELECT rolsuper FROM pg_roles WHERE rolname = $1', [odooRole]);
      if (!rows[0]) throw new InvalidInputError(`the Odoo role "${odooRole}" (ODOO_DB_USER) does not exist`);
      if (rows[0].rolsuper)
        throw new InvalidInputError(
          `the Odoo role "${odooRole}" is a superuser: odoo-dr never makes a superuser own imported objects; make it a plain role (ALTER ROLE ${odooRole} NOSUPERUSER)`,
        );
    });
    await withClient(config.postgres, config.postgres.maintenanceDb, async (c) => {
      await c.query(`CREATE DATABASE ${quoteIdent(shadowDb)} OWNER ${quoteIdent(config.postgres.user)} ENCODING 'UTF8' LC_COLLATE 'C' TEMPLATE template0`);
      await c.query(
        `COMMENT ON DATABASE ${quoteIdent(shadowDb)} IS ${pg.escapeLiteral(scratchMarker(shadowDb, { tenant, purpose: SHADOW_PURPOSE, createdAt: new Date().toISOString() }))}`,
      );
    });
    await withClient(config.postgres, shadowDb, async (c) => {
      // What an owner has in its database (Odoo's restore runs as the database's owner): create
      // trusted extensions (pg_trgm, unaccent…) and objects. Untrusted extensions stay refused.
      await c.query(`GRANT CREATE, TEMPORARY ON DATABASE ${quoteIdent(shadowDb)} TO ${quoteIdent(role!.name)}`);
      await c.query(`GRANT ALL ON SCHEMA public TO ${quoteIdent(role!.name)}`);
    });
    await mkdir(config.odoo.filestoreRoot, { recursive: true });
    await mkdir(partial, { recursive: true, mode: 0o750 });
    const psqlOpts = { psql: tools.psql, psqlVersion: tools.version.full, settings: role.settings, database: shadowDb, ...(signal ? { signal } : {}) };

    progress('database');
    if (format === 'odoo-zip') {
      const zip = await openZip(file);
      try {
        const made = new Set<string>();
        for await (const entry of entries(zip, file)) {
          signal?.throwIfAborted();
          const kind = classifyZipEntry(entry.fileName, entry.externalFileAttributes >>> 16);
          if (kind.kind === 'dump') {
            await runRestrictedPsql({ ...psqlOpts, sql: await zip.openReadStreamPromise(entry), what: `dump.sql of ${file}` });
            progress('filestore');
          } else if (kind.kind === 'file' || kind.kind === 'checklist') {
            const dest = path.join(partial, ...kind.rel.split('/'));
            const dir = path.dirname(dest);
            if (!made.has(dir)) await mkdir(dir, { recursive: true, mode: 0o750 });
            made.add(dir);
            if (kind.kind === 'checklist') {
              // Odoo's GC markers are empty files: whatever the entry holds is not kept.
              await (await open(dest, 'wx', 0o640)).close();
              result.checklist++;
            } else {
              result.bytes += await extractFile(await zip.openReadStreamPromise(entry), dest, kind.sha1, entry.fileName);
              result.files++;
              if (result.files % 200 === 0) progress('filestore', `${result.files}/${scan.files} files`);
            }
          }
        }
      } finally {
        if (zip.isOpen) zip.close();
      }
    } else if (format === 'custom') {
      const { sql, done } = customToSql(tools.pgRestore, file);
      const replay = runRestrictedPsql({ ...psqlOpts, sql, what: file });
      // pg_restore's own failure names the real cause (unreadable archive, newer format).
      const [r, d] = await Promise.allSettled([replay, done]);
      if (d.status === 'rejected') throw d.reason;
      if (r.status === 'rejected') throw r.reason;
    } else {
      await runRestrictedPsql({ ...psqlOpts, sql: createReadStream(file), what: file });
    }

    // --- 3 and 4. neutralization, verification (as the tenant's own role) ----------------------------
    progress('verify');
    await withClient(role.settings, shadowDb, async (client) => {
      const facts = await readOdooFacts(client);
      if (!facts.isOdoo) throw new InvalidInputError(`${file} does not hold an Odoo database (no ir_module_module table)`);
      if (manifest?.major_version && facts.series && manifest.major_version !== facts.series) {
        warnings.push(`manifest.json says Odoo ${manifest.major_version}, the database's base module is ${facts.baseVersion}`);
      }
      if (mode === 'copy') result.neutralization = (await neutralizeDatabase(client, { newUuid: true })).actions;
      const expected = { ...facts, modules: manifest?.modules ?? facts.modules };
      // row-counts would compare the copy with itself (a zip records none): not run.
      const checks = (await odooChecks({ client, expected, filestoreDir: partial })).filter((c) => c.name !== 'row-counts');
      if (format !== 'odoo-zip') {
        for (const c of checks) {
          if (c.name === 'attachments' && c.status === 'fail') {
            c.status = 'warn';
            c.message = `${c.message} (a ${format === 'sql' ? 'plain SQL' : 'custom-format'} dump carries no filestore: copy the files to ${liveDir})`;
          }
        }
      }
      const state = await neutralizationState(client);
      if (mode === 'copy') {
        const ok = state.isNeutralized && state.uuid !== undefined && state.uuid !== facts.databaseUuid;
        checks.push({
          name: 'neutralize',
          status: ok ? 'pass' : 'fail',
          message: ok
            ? `neutralized (${state.activeCrons.length} active cron, mail servers ${state.activeMailServers.map((m) => m.host).join(', ') || 'none'}), new database.uuid ${state.uuid}`
            : `the copy is not neutralized as required (is_neutralized ${state.isNeutralized}, uuid ${state.uuid ?? '(none)'})`,
        });
      } else {
        const ok = state.uuid === facts.databaseUuid;
        checks.push({
          name: 'identity',
          status: ok ? 'pass' : 'fail',
          message: ok ? `database.uuid ${state.uuid ?? '(none)'} kept (move)` : 'database.uuid changed during a move',
        });
      }
      result.checks = checks;
    });
    const failed = result.checks.filter((c) => c.status === 'fail');
    if (failed.length) {
      throw new InvalidInputError(
        `the imported copy of ${file} does not verify, nothing was put in place: ${failed.map((c) => `${c.name}: ${c.message}`).join('; ')}`,
      );
    }
    // Verified: the objects become the tenant role's (as after Odoo's own restore), the one-time role goes.
    await withClient(config.postgres, shadowDb, (c) => c.query(`REASSIGN OWNED BY ${quoteIdent(role!.name)} TO ${quoteIdent(odooRole)}`));
    await dropRestoreRole(config, role.name, [shadowDb]);
    role = undefined;

    // --- 5. in place -------------------------------------------------------------------------------------
    progress('swap');
    const owner = await ownershipOf([config.odoo.filestoreRoot, config.odoo.dataDir]);
    if (owner) await applyOwnership(partial, owner);
    signal?.throwIfAborted();
    await rename(partial, shadowDir);
    if (await stat(liveDir).catch(() => undefined))
      throw new InvalidInputError(`cannot import into "${tenant}": ${liveDir} appeared meanwhile; nothing was put in place`);
    const stamp = recoveryStamp(new Date());
    await swapIn(config, {
      tenant,
      shadowDb,
      shadowDir,
      preRecoveryDb: preRecoveryName(tenant, stamp),
      preRecoveryDir: filestorePreRecoveryDir(config, tenant, stamp),
      tenantExisted: false,
      tenantDirExisted: false,
    });
    swapped = true;
    result.durationMs = Date.now() - started;
    return result;
  } catch (err) {
    if (!swapped) {
      if (role) await dropRestoreRole(config, role.name, [shadowDb]).catch(() => undefined);
      try {
        await dropShadow(config, tenant, id);
      } catch (dropErr) {
        const note = ` (and the shadow "${shadowDb}" could not be removed: ${messageOf(dropErr)})`;
        if (err instanceof DrError) throw Object.assign(err, { message: `${err.message}${note}` });
        throw new PipelineError(`${messageOf(err)}${note}`, { cause: err });
      }
    }
    throw err;
  }
}
