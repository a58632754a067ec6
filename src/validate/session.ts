/**
 * Validation of a backup session without restoring it: the manifest, every artifact's size and
 * SHA-256 (local and cloud copies, equal to each other through the manifest), decryption with the
 * private identity, archive integrity (the whole dump decrypted and decompressed, its table of
 * contents read by pg_restore), the filestore blobs (decrypted, SHA-1 and size), and the age of
 * the session against the RPO. Every problem is a failed check naming the artifact, never a crash.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { DrConfig } from '../config';
import { ageDecrypter, decryptStream } from '../crypto/age';
import { readIndexLines } from '../backup/filestore';
import { PackPlan, visitPackedFiles } from '../backup/pack-reader';
import { SMALL_FILE_BYTES } from '../backup/packs';
import { rel, sessionTime } from '../backup/layout';
import type { Artifact, Manifest } from '../backup/manifest';
import type { PgTools } from '../pgtools';
import type { SessionStore } from '../sessions/store';

export type CheckStatus = 'pass' | 'fail' | 'warn' | 'skip';

export interface CheckResult {
  name: string;
  status: CheckStatus;
  message: string;
  tenant?: string;
  artifact?: string;
  durationMs?: number;
}

const messageOf = (err: unknown) => (err instanceof Error ? `${err.name === 'Error' ? '' : `${err.name}: `}${err.message}` : String(err));

/** Runs a check, turning any exception into a failed check (validation never crashes). */
export async function runCheck(name: string, fn: () => Promise<Omit<CheckResult, 'name'>>, context: Partial<CheckResult> = {}): Promise<CheckResult> {
  const started = Date.now();
  try {
    return { name, ...context, ...(await fn()), durationMs: Date.now() - started };
  } catch (err) {
    return { name, ...context, status: 'fail', message: messageOf(err), durationMs: Date.now() - started };
  }
}

/** Every artifact of the manifest (optionally one tenant's), with the tenant it belongs to. */
export function artifactsOf(manifest: Manifest, tenant?: string): Array<{ artifact: Artifact; tenant?: string }> {
  const out: Array<{ artifact: Artifact; tenant?: string }> = [];
  for (const [name, entry] of Object.entries(manifest.tenants)) {
    if (tenant && name !== tenant) continue;
    if (entry.database) out.push({ artifact: entry.database, tenant: name });
    if (entry.filestore) out.push({ artifact: entry.filestore.index, tenant: name });
  }
  if (!tenant) {
    if (manifest.globals) out.push({ artifact: manifest.globals });
    if (manifest.config) out.push({ artifact: manifest.config });
  }
  return out;
}

/** `artifact-local` or `artifact-cloud`: the stored artifact's size and SHA-256 against the manifest. */
export async function artifactCheck(store: SessionStore, artifact: Artifact, tenant?: string, signal?: AbortSignal): Promise<CheckResult> {
  return runCheck(
    store.location === 'local' ? 'artifact-local' : 'artifact-cloud',
    async () => {
      const check = await store.checkArtifact(artifact, signal);
      return { status: check.ok ? 'pass' : 'fail', message: store.location === 'local' ? check.message : `${store.description}: ${check.message}` };
    },
    { artifact: artifact.path, ...(tenant ? { tenant } : {}) },
  );
}

export function ageCheck(config: DrConfig, session: string, now: Date): CheckResult {
  const ageHours = (now.getTime() - sessionTime(session).getTime()) / 3_600_000;
  const rpo = config.objectives.rpoHours;
  return {
    name: 'age',
    status: ageHours <= rpo ? 'pass' : 'fail',
    message: `session is ${ageHours.toFixed(1)} h old; RPO is ${rpo} h${ageHours <= rpo ? '' : ': a newer backup is needed'}`,
  };
}

/** The `dump-integrity` verdict on a dump decrypted and decompressed into `bytes`, whose table of contents pg_restore listed. */
export function archiveVerdict(artifact: Artifact, bytes: number, listing: string): Omit<CheckResult, 'name'> {
  const entries = listing.split('\n').filter((l) => /^\d+;/.test(l));
  if (entries.length === 0) return { status: 'fail', message: `${artifact.path}: pg_restore cannot read the archive (no entries in its table of contents)` };
  const tables = entries.filter((l) => / TABLE DATA /.test(l)).length;
  return {
    status: 'pass',
    message: `${artifact.path}: decrypted and decompressed (${bytes} bytes), ${entries.length} archive entries, ${tables} tables with data`,
  };
}

/**
 * Decrypts and decompresses the whole dump (age authenticates every chunk, zstd checks its frame
 * checksum) while pg_restore reads its table of contents from the same stream.
 */
export async function dumpIntegrityCheck(
  tools: PgTools,
  identity: string,
  artifact: Artifact,
  /** Where the artifact's bytes are, locally (a download for the bucket). */
  fetch: () => Promise<string>,
  tenant: string,
  signal?: AbortSignal,
): Promise<CheckResult> {
  return runCheck(
    'dump-integrity',
    async () => {
      const file = await fetch();
      const plain = decryptStream(identity, file);
      const zstd = spawn('zstd', ['-d', '-q', '-c'], { stdio: ['pipe', 'pipe', 'pipe'], signal });
      const list = spawn(tools.pgRestore, ['--list'], { stdio: ['pipe', 'pipe', 'pipe'], signal });
      let listing = '';
      let listErr = '';
      let zstdErr = '';
      let bytes = 0;
      let listOpen = true;
      list.stdout.on('data', (d: Buffer) => (listing += d.toString()));
      list.stderr.on('data', (d: Buffer) => (listErr += d.toString()));
      zstd.stderr.on('data', (d: Buffer) => (zstdErr += d.toString()));
      list.stdin.on('error', () => (listOpen = false)); // pg_restore stops reading after the TOC
      list.on('close', () => (listOpen = false));
      const decryptDone = new Promise<void>((resolve, reject) => {
        plain.on('error', reject);
        zstd.stdin.on('error', () => undefined);
        plain.pipe(zstd.stdin);
        plain.on('end', () => resolve());
      });
      zstd.stdout.on('data', (d: Buffer) => {
        bytes += d.length;
        if (listOpen && !list.stdin.write(d)) {
          zstd.stdout.pause();
          list.stdin.once('drain', () => zstd.stdout.resume());
          list.once('close', () => zstd.stdout.resume());
        }
      });
      zstd.stdout.on('end', () => {
        if (listOpen) list.stdin.end();
      });
      const zstdExit = new Promise<number | null>((r) => zstd.on('close', r));
      const listExit = new Promise<number | null>((r) => list.on('close', r));
      try {
        await decryptDone;
      } catch (err) {
        zstd.kill('SIGKILL');
        list.kill('SIGKILL');
        throw new Error(`${artifact.path}: cannot be decrypted: ${messageOf(err)}`);
      }
      const zcode = await zstdExit;
      if (zcode !== 0) return { status: 'fail', message: `${artifact.path}: decompression failed (zstd: ${zstdErr.trim() || `exit ${zcode}`})` };
      const lcode = await listExit;
      if (lcode !== 0) return { status: 'fail', message: `${artifact.path}: pg_restore cannot read the archive (${listErr.trim() || `exit ${lcode}`})` };
      return archiveVerdict(artifact, bytes, listing);
    },
    { tenant, artifact: artifact.path },
  );
}

/** Every file of a tenant's filestore index: its blob exists, decrypts, and has the right SHA-1 and size. */
export async function filestoreBlobsCheck(
  identity: string,
  artifact: Artifact,
  files: {
    /** The index file, locally. */
    index: () => Promise<string>;
    /** A local file holding the blob, or undefined when the store has none; `done` releases it. */
    blob: (sha1: string) => Promise<{ file: string; done: () => Promise<void> } | undefined>;
    /** A local file holding the pack (size and, from the bucket, SHA-256 verified), or undefined; `done` releases it. */
    pack: (id: string, bytes: number) => Promise<{ file: string; done: () => Promise<void> } | undefined>;
  },
  tenant: string,
  opts: { concurrency?: number; signal?: AbortSignal; onProgress?: (n: number) => void } = {},
): Promise<CheckResult> {
  return runCheck(
    'filestore-blobs',
    async () => {
      const problems: string[] = [];
      let checked = 0;
      if (opts.signal) setMaxListeners(64, opts.signal);
      const verify = async (entry: { path: string; sha1: string; size: number }) => {
        let blob;
        try {
          blob = await files.blob(entry.sha1);
        } catch (err) {
          return problems.push(`${entry.path}: blob ${rel.blob(entry.sha1)} cannot be read (${messageOf(err)})`);
        }
        if (!blob) return problems.push(`${entry.path}: blob ${rel.blob(entry.sha1)} is missing`);
        const hash = createHash('sha1');
        let size = 0;
        try {
          for await (const chunk of decryptStream(identity, blob.file)) {
            hash.update(chunk as Buffer);
            size += (chunk as Buffer).length;
          }
        } catch (err) {
          return problems.push(`${entry.path}: blob ${rel.blob(entry.sha1)} cannot be decrypted (${messageOf(err)})`);
        } finally {
          await blob.done();
        }
        const sha1 = hash.digest('hex');
        if (sha1 !== entry.sha1) return problems.push(`${entry.path}: blob ${rel.blob(entry.sha1)} holds content with SHA-1 ${sha1}`);
        if (size !== entry.size) return problems.push(`${entry.path}: blob ${rel.blob(entry.sha1)} has ${size} bytes, index says ${entry.size}`);
        return undefined;
      };
      const running = new Set<Promise<unknown>>();
      const plan = new PackPlan();
      for await (const line of readIndexLines(await files.index())) {
        opts.signal?.throwIfAborted();
        if (line.kind === 'pack') {
          plan.record(line.record);
          continue;
        }
        const entry = line.entry;
        if (entry.pack !== undefined) {
          const contradiction = plan.add({ ...entry, pack: entry.pack });
          if (contradiction) problems.push(contradiction);
          continue;
        }
        const p: Promise<unknown> = verify(entry).finally(() => {
          running.delete(p);
          checked++;
          opts.onProgress?.(checked);
        });
        running.add(p);
        if (running.size >= (opts.concurrency ?? 4)) await Promise.race(running);
      }
      await Promise.all(running);
      if (plan.files > 0) {
        // Each pack decrypted and read through once; each file hashed against the index.
        let reported = checked;
        await visitPackedFiles({
          plan,
          open: (id, bytes) => files.pack(id, bytes),
          decrypter: await ageDecrypter(identity),
          problem: (text) => {
            problems.push(text);
            checked++;
          },
          ...(opts.signal ? { signal: opts.signal } : {}),
          onFile: async (want, member) => {
            const hash = createHash('sha1');
            if (member.size <= SMALL_FILE_BYTES) hash.update(await member.whole());
            else for await (const chunk of member.content()) hash.update(chunk);
            const sha1 = hash.digest('hex');
            if (sha1 !== want.sha1) for (const p of want.paths) problems.push(`${p}: its pack holds content with SHA-1 ${sha1}`);
            checked += want.paths.length;
            // Each report is a heartbeat: every few dozen files.
            if (checked - reported >= 64) {
              reported = checked;
              opts.onProgress?.(checked);
            }
          },
        });
      }
      if (problems.length) {
        return {
          status: 'fail',
          message: `${problems.length} of ${checked} files are not restorable: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? '; …' : ''}`,
        };
      }
      return { status: 'pass', message: `${checked} files: every pack and blob present, decrypted, SHA-1 and size match` };
    },
    { tenant, artifact: artifact.path },
  );
}
