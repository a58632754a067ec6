/**
 * `odoo-dr export --tenant DB [-s SESSION] [-c] -o FILE.zip`: a tenant's backup as the zip Odoo's
 * database manager restores (`dump.sql`, `manifest.json`, `filestore/<aa>/<sha1>`), so an operator
 * can hand a customer their backup or move a tenant to any stock Odoo.
 *
 * Streaming, memory bounded: the session's dump is decrypted (age, authenticated) → `zstd -d` →
 * `pg_restore --no-owner -f -` (custom → plain SQL, as Odoo's `pg_dump --no-owner`) → zip entry
 * `dump.sql`; the filestore comes from the session's packs, one pack read start to end at a time,
 * each file's content checked against its SHA-1 before it ends in the zip (yazl, deflate, zip64
 * where sizes need it). Every byte read from the session is verified (signed manifest, SHA-256 of
 * artifacts and packs). The zip is written to `FILE.partial-<random>`, fsync'd, then renamed: FILE
 * exists only complete. A file that cannot be had fails the export (a zip missing files is not a
 * backup).
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import * as yazl from 'yazl';
import type { DrConfig } from '../config';
import { ageDecrypter, decryptStream } from '../crypto/age';
import { readIndexLines } from '../backup/filestore';
import { localPath, rel } from '../backup/layout';
import type { Manifest } from '../backup/manifest';
import { PackPlan, visitPackedFiles } from '../backup/pack-reader';
import { ArtifactCorruptedError, InvalidInputError, PipelineError } from '../errors';
import { findClientTools, parseToolVersion } from '../pgtools';
import { ensureScratchRoot } from '../restore/scratch';
import { SessionCatalog, type SessionSource } from '../sessions/catalog';
import type { SessionStore } from '../sessions/store';
import { ODOO_DB_NAME } from '../tenants';
import { fetchTenantFiles } from '../validate/cloud';
import { classifyZipEntry, odooManifest, type OdooZipManifest } from './odoo-format';

export interface ExportOptions {
  config: DrConfig;
  tenant: string;
  /** A session name; undefined: the newest complete session of the tenant that did not fail validation. */
  session?: string;
  source: SessionSource;
  out: string;
  /** age private key text. */
  identity: string;
  /** Use a session that failed validation. */
  force?: boolean;
  allowUnsigned?: boolean;
  signal?: AbortSignal;
  onProgress?: (phase: 'download' | 'database' | 'filestore' | 'finish', detail?: string) => void;
}

export interface ExportResult {
  tenant: string;
  session: string;
  /** Where the session was read: the local folder or the bucket. */
  location: string;
  out: string;
  zipBytes: number;
  sqlBytes: number;
  files: number;
  fileBytes: number;
  manifest: OdooZipManifest;
  warnings: string[];
  durationMs: number;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The session to export from: the one named, or the newest where the tenant is complete. */
async function chooseSession(catalog: SessionCatalog, opts: ExportOptions, warnings: string[]): Promise<{ manifest: Manifest; store: SessionStore }> {
  if (opts.session) {
    const opened = await catalog.open(opts.session, opts.source);
    if ((await catalog.validationOf(opts.session)) === 'fail') {
      if (!opts.force) throw new InvalidInputError(`session ${opts.session} failed validation: refused (use --force to export from it anyway)`);
      warnings.push(`session ${opts.session} FAILED validation; exported anyway because --force was given`);
    }
    if (opened.manifest.tenants[opts.tenant]?.status !== 'complete') {
      throw new InvalidInputError(`session ${opts.session} has no complete backup of "${opts.tenant}"`);
    }
    return opened;
  }
  const names = new Set<string>();
  for (const store of catalog.stores(opts.source)) for (const n of await store.sessionNames()) names.add(n);
  for (const name of [...names].sort().reverse()) {
    let opened;
    try {
      opened = await catalog.open(name, opts.source);
    } catch {
      continue; // in progress, crashed or corrupt
    }
    if (opened.manifest.tenants[opts.tenant]?.status !== 'complete') continue;
    if ((await catalog.validationOf(name)) === 'fail') {
      warnings.push(`skipped ${name}: it failed validation`);
      continue;
    }
    return opened;
  }
  throw new InvalidInputError(
    `no session in ${opts.source === 'cloud' ? 'the bucket' : 'the backups'} holds a complete backup of "${opts.tenant}" (odoo-dr sessions list)`,
  );
}

/** Spawns `command`, its stdin fed from `input`; its stdout, and a promise of its clean exit. */
function stage(command: string, args: string[], input: NodeJS.ReadableStream, what: string): { out: Readable; done: Promise<void> } {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LANG: 'C.UTF-8' } });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    stderr = (stderr + d).slice(-8192);
  });
  const fed = pipeline(input, child.stdin).catch((err: unknown) => err);
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (err) => reject(new PipelineError(`${what}: cannot start ${command}: ${err.message}`)));
    child.on('close', (code) => {
      void fed.then((feedErr) => {
        if (code === 0 && !feedErr) return resolve();
        if (feedErr instanceof ArtifactCorruptedError) return reject(feedErr);
        const detail = stderr.trim().split('\n').slice(-3).join(' | ') || (feedErr ? messageOf(feedErr) : '');
        reject(new PipelineError(`${what}: ${path.basename(command)} exited with code ${code}: ${detail}`));
      });
    });
  });
  return { out: child.stdout, done };
}

/** Exports the tenant's backup as an Odoo zip (see the module comment). */
export async function exportTenant(opts: ExportOptions): Promise<ExportResult> {
  const { config, tenant, out, signal } = opts;
  const started = Date.now();
  const progress = opts.onProgress ?? (() => undefined);
  if (!ODOO_DB_NAME.test(tenant) || Buffer.byteLength(tenant) > 63) throw new InvalidInputError(`"${tenant}" is not a valid Odoo database name`);
  if (await stat(out).catch(() => undefined)) throw new InvalidInputError(`${out} already exists: exports never overwrite a file`);
  const outDir = path.dirname(path.resolve(out));
  if (!(await stat(outDir).catch(() => undefined))?.isDirectory()) throw new InvalidInputError(`cannot write ${out}: the folder ${outDir} does not exist`);

  const warnings: string[] = [];
  const catalog = SessionCatalog.fromConfig(config, { allowUnsigned: opts.allowUnsigned ?? false });
  const { manifest: session, store } = await chooseSession(catalog, opts, warnings);
  const entry = session.tenants[tenant]!;
  if (!entry.database || !entry.filestore || !entry.odoo) throw new InvalidInputError(`session ${session.session} has no complete backup of "${tenant}"`);
  const odoo = odooManifest(tenant, entry.odoo);
  const dumpMajor = parseToolVersion(`(PostgreSQL) ${entry.database.pgDump}`)?.major ?? 0;
  const tools = await findClientTools(dumpMajor, { ...(config.postgres.binDir ? { binDir: config.postgres.binDir } : {}) });

  const mirror = path.join(await ensureScratchRoot(config), `export-${tenant}-${randomBytes(4).toString('hex')}`);
  const partial = `${path.resolve(out)}.partial-${randomBytes(4).toString('hex')}`;
  const result: ExportResult = {
    tenant,
    session: session.session,
    location: store.description,
    out,
    zipBytes: 0,
    sqlBytes: 0,
    files: 0,
    fileBytes: 0,
    manifest: odoo,
    warnings,
    durationMs: 0,
  };
  const zip = new yazl.ZipFile();
  const written = pipeline(zip.outputStream, createWriteStream(partial, { flags: 'wx', mode: 0o600 }));
  try {
    progress('download');
    const { root } = await fetchTenantFiles({ store, manifest: session, tenant, mirror, ...(signal ? { signal } : {}) });
    signal?.throwIfAborted();

    // --- dump.sql: decrypt → zstd -d → pg_restore -f - → zip ------------------------------------------
    progress('database');
    const what = `exporting the dump of ${tenant} from ${session.session}`;
    const zstd = stage('zstd', ['-d', '-q', '-c'], decryptStream(opts.identity, localPath(root, entry.database.path)), what);
    const restore = stage(tools.pgRestore, ['--no-owner', '-f', '-'], zstd.out, what);
    const counted = new PassThrough();
    counted.on('data', (c: Buffer) => (result.sqlBytes += c.length));
    restore.out.pipe(counted);
    // Deflated text may exceed 4 GiB: zip64 headers for it from the start (Python's zipfile reads them).
    zip.addReadStream(counted, 'dump.sql', { forceZip64Format: true });
    await Promise.all([zstd.done, restore.done, finished(counted)]);
    zip.addBuffer(Buffer.from(`${JSON.stringify(odoo, null, 4)}`), 'manifest.json');

    // --- filestore/: every file of the session's index, verified -------------------------------------
    progress('filestore');
    const problems: string[] = [];
    const plan = new PackPlan();
    const old: Array<{ path: string; sha1: string; size: number }> = [];
    for await (const line of readIndexLines(localPath(root, entry.filestore.index.path))) {
      if (line.kind === 'pack') plan.record(line.record);
      else {
        try {
          classifyZipEntry(`filestore/${line.entry.path}`, 0);
        } catch (err) {
          problems.push(`the session's index names ${JSON.stringify(line.entry.path)}: ${messageOf(err)}`);
          continue;
        }
        if (line.entry.pack !== undefined) {
          const contradiction = plan.add({ ...line.entry, pack: line.entry.pack });
          if (contradiction) problems.push(contradiction);
        } else old.push(line.entry);
      }
    }
    const addVerified = async (content: AsyncIterable<Buffer>, paths: string[], sha1: string, size: number): Promise<void> => {
      // One entry at a time: yazl reads this stream now, the next file waits (bounded memory).
      const hash = createHash('sha1');
      let n = 0;
      let spool: string | undefined;
      const gen = async function* () {
        for await (const c of content) {
          hash.update(c);
          n += c.length;
          yield c;
        }
        if (hash.digest('hex') !== sha1 || n !== size)
          throw new ArtifactCorruptedError(`filestore/${paths[0]}: the session holds other content (${n} bytes) under ${sha1}`);
      };
      if (paths.length > 1) {
        spool = path.join(mirror, `spool-${sha1}`);
        await mkdir(mirror, { recursive: true, mode: 0o700 });
        await pipeline(Readable.from(gen()), createWriteStream(spool, { mode: 0o600 }));
        for (const p of paths) zip.addReadStream(createReadStream(spool), `filestore/${p}`, { size });
        await new Promise<void>((resolve) => setImmediate(resolve));
      } else {
        const s = Readable.from(gen());
        zip.addReadStream(s, `filestore/${paths[0]}`, { size });
        await finished(s);
      }
      result.files += paths.length;
      result.fileBytes += size * paths.length;
      if (result.files % 500 === 0) progress('filestore', `${result.files} files`);
    };
    if (plan.files > 0) {
      await visitPackedFiles({
        plan,
        open: (id) => Promise.resolve({ file: localPath(root, rel.pack(id)) }),
        decrypter: await ageDecrypter(opts.identity),
        problem: (t) => problems.push(t),
        concurrency: 1,
        ...(signal ? { signal } : {}),
        onFile: (want, member) => addVerified(member.content(), want.paths, want.sha1, want.size),
      });
    }
    for (const f of old) {
      // Sessions made before packs: one encrypted blob per file.
      const blob = localPath(root, rel.blob(f.sha1));
      if (!(await stat(blob).catch(() => undefined))) {
        problems.push(`filestore/${f.path}: blob ${rel.blob(f.sha1)} is missing`);
        continue;
      }
      await addVerified(decryptStream(opts.identity, blob) as AsyncIterable<Buffer>, [f.path], f.sha1, f.size);
    }
    if (problems.length) {
      throw new ArtifactCorruptedError(
        `the filestore of ${tenant} in ${session.session} is incomplete, no zip written: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? ` … and ${problems.length - 5} more` : ''}`,
      );
    }

    progress('finish');
    zip.end();
    await written;
    const fh = await open(partial, 'r+');
    await fh.sync().finally(() => fh.close());
    await rename(partial, out);
    result.zipBytes = (await stat(out)).size;
    result.durationMs = Date.now() - started;
    return result;
  } catch (err) {
    (zip.outputStream as Readable).destroy();
    await written.catch(() => undefined);
    await rm(partial, { force: true });
    throw err;
  } finally {
    await rm(mirror, { recursive: true, force: true });
  }
}
