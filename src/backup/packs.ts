/**
 * Filestore packs: many filestore files in one stored object.
 *
 * A pack is a tar of `<aa>/<sha1>` entries (Odoo's own filestore layout, the SHA-1 of each file's
 * content), compressed with zstd and encrypted as one age stream, stored once under
 * `packs/<aa>/<sha256>.tar.zst.age` where the name is the SHA-256 of the stored bytes. Break-glass is
 * `age -d -i key PACK | zstd -d | tar -x -C <filestore>`: the result is an Odoo filestore.
 *
 * Why packs (measured, see README "Filestore packs"): one encrypted object per file cost one
 * X25519 key wrap per file (pure JS, ~8 ms of CPU on the event loop) and one S3 request per file,
 * each way. A pack of ~8 MiB costs one of each for hundreds of files. Packs are shared between
 * sessions: a session's `filestore.jsonl` says which pack holds each file, and the next backup of
 * the tenant reuses them (reads no file, uploads nothing) for files it already holds.
 *
 * Reading a pack trusts nothing in it: only regular-file entries named `<aa>/<sha1>` are accepted,
 * and each file's content is hashed by the reader against the SHA-1 the (signed) index expects.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, mkdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import * as tar from 'tar';
import { openAgeStream, type AgeDecrypter } from '../crypto/age';
import { ArtifactCorruptedError, DiskFullError, EncryptionKeyError, SourceChangedError } from '../errors';
import { ageEncryptStage, filterThrough, runPipeline, zstdStage } from '../pipeline';
import { localPath, rel } from './layout';

/** Plaintext bytes after which a pack is closed (a larger file makes a larger pack). */
export const PACK_TARGET_BYTES = 8 * 1024 * 1024;
/** Files up to this size are read into memory before they are packed; larger ones stream from an open handle. */
export const SMALL_FILE_BYTES = 1024 * 1024;

const BLOCK = 512;
const ZERO_BLOCKS = Buffer.alloc(2 * BLOCK);
const MEMBER_NAME = /^([0-9a-f]{2})\/([0-9a-f]{40})$/;
export const PACK_ID = /^[0-9a-f]{64}$/;
const SHA1 = /^[0-9a-f]{40}$/;

/** One line of `filestore.jsonl`: a file of the tenant's filestore. `pack` absent: a session from before packs (one blob per file). */
export interface FileEntry {
  path: string;
  sha1: string;
  size: number;
  pack?: string;
}

/** One line of `filestore.jsonl`: a pack the index refers to, with the size of its stored bytes. */
export interface PackRecord {
  pack: string;
  bytes: number;
}

export type IndexLine = { kind: 'file'; entry: FileEntry } | { kind: 'pack'; record: PackRecord };

/** Parses one index line strictly (the index is read back from storage: nothing in it is trusted beyond its shape). */
export function parseIndexLine(line: string, where: string): IndexLine {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new ArtifactCorruptedError(`${where} is not valid JSON (the index is damaged)`);
  }
  const v = value as Record<string, unknown>;
  if (typeof v === 'object' && v !== null && typeof v.path === 'string' && typeof v.sha1 === 'string' && typeof v.size === 'number') {
    if (v.pack !== undefined && (typeof v.pack !== 'string' || !PACK_ID.test(v.pack))) throw new ArtifactCorruptedError(`${where} names an invalid pack`);
    if (!Number.isSafeInteger(v.size) || v.size < 0) throw new ArtifactCorruptedError(`${where} gives an invalid size`);
    return { kind: 'file', entry: { path: v.path, sha1: v.sha1, size: v.size, ...(typeof v.pack === 'string' ? { pack: v.pack } : {}) } };
  }
  if (typeof v === 'object' && v !== null && typeof v.pack === 'string' && typeof v.bytes === 'number' && v.path === undefined) {
    if (!PACK_ID.test(v.pack) || !Number.isSafeInteger(v.bytes) || v.bytes <= 0) throw new ArtifactCorruptedError(`${where} is not a valid pack record`);
    return { kind: 'pack', record: { pack: v.pack, bytes: v.bytes } };
  }
  throw new ArtifactCorruptedError(`${where} is neither a {path, sha1, size} file entry nor a {pack, bytes} record (the index is damaged)`);
}

// --- writing ---------------------------------------------------------------------------------------

/** A file to pack: its content in memory, or an open handle read (exactly `size` bytes) while the pack is written. */
export interface PackMember {
  sha1: string;
  size: number;
  mtime: Date;
  data?: Buffer;
  handle?: FileHandle;
  /** Where the file came from (messages). */
  source: string;
}

export interface WrittenPack {
  id: string;
  bytes: number;
}

function tarHeader(sha1: string, size: number, mtime: Date): Buffer {
  const header = new tar.Header({
    path: `${sha1.slice(0, 2)}/${sha1}`,
    mode: 0o640,
    uid: 0,
    gid: 0,
    size,
    mtime,
    type: 'File',
    uname: '',
    gname: '',
  });
  const block = Buffer.alloc(BLOCK);
  header.encode(block, 0);
  return block;
}

const padding = (size: number) => Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);

/**
 * Writes `members` as one pack under `root` (DR_BACKUP_DIR): tar → zstd → age, to a temporary file
 * of this call alone, then linked to its content-addressed name (an existing pack of that name is
 * the same bytes: kept). Handles of streamed members are closed here.
 */
export async function writePack(opts: {
  root: string;
  members: PackMember[];
  recipients: string[];
  compressionLevel: number;
  signal?: AbortSignal;
}): Promise<WrittenPack> {
  const { members } = opts;
  async function* tarBytes(): AsyncGenerator<Buffer> {
    // Small members are gathered into ~1 MiB writes: one pipe write per file cost more than zstd.
    let batch: Buffer[] = [];
    let batched = 0;
    const flush = () => {
      const out = Buffer.concat(batch, batched);
      batch = [];
      batched = 0;
      return out;
    };
    for (const m of members) {
      opts.signal?.throwIfAborted();
      if (m.data) {
        batch.push(tarHeader(m.sha1, m.data.length, m.mtime), m.data, padding(m.data.length));
        batched += BLOCK + m.data.length + ((BLOCK - (m.data.length % BLOCK)) % BLOCK);
        if (batched >= 1024 * 1024) yield flush();
        continue;
      }
      if (batched) yield flush();
      yield tarHeader(m.sha1, m.size, m.mtime);
      const hash = createHash('sha1');
      let left = m.size;
      while (left > 0) {
        const buf = Buffer.allocUnsafe(Math.min(left, 1024 * 1024));
        const { bytesRead } = await m.handle!.read(buf, 0, buf.length, m.size - left);
        if (bytesRead === 0) {
          throw new SourceChangedError(`${m.source} shrank while it was being backed up (${m.size - left} of ${m.size} bytes): the backup of this tenant is retried`);
        }
        const chunk = buf.subarray(0, bytesRead);
        hash.update(chunk);
        left -= bytesRead;
        yield chunk;
      }
      yield padding(m.size);
      const actual = hash.digest('hex');
      if (actual !== m.sha1) throw new SourceChangedError(`${m.source} changed while it was being backed up (SHA-1 ${actual}, ${m.sha1} when first read): the backup of this tenant is retried`);
    }
    batch.push(ZERO_BLOCKS);
    batched += ZERO_BLOCKS.length;
    yield flush();
  }
  const tmpDir = path.join(opts.root, 'packs', '.tmp');
  await mkdir(tmpDir, { recursive: true });
  const tmp = path.join(tmpDir, `${randomBytes(8).toString('hex')}.tar.zst.age`);
  try {
    const result = await runPipeline({
      source: Readable.from(tarBytes(), { objectMode: false }),
      // One zstd thread per pack: packs are written one after another while files are read.
      stages: [zstdStage(opts.compressionLevel, 1), ageEncryptStage(opts.recipients)],
      dest: tmp,
      uniquePartial: true,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const id = result.sha256;
    const final = localPath(opts.root, rel.pack(id));
    await mkdir(path.dirname(final), { recursive: true });
    await link(tmp, final).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
      // The same name is the same bytes, unless the stored copy was damaged since: replace it then.
      const there = await stat(final);
      if (there.size !== result.bytes) await rename(tmp, final);
    });
    return { id, bytes: result.bytes };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOSPC') throw new DiskFullError(`no space left on the backup disk writing a filestore pack in ${tmpDir}`, { cause: err });
    throw err;
  } finally {
    await rm(tmp, { force: true }).catch(() => undefined);
    for (const m of members) await m.handle?.close().catch(() => undefined);
  }
}

// --- reading ---------------------------------------------------------------------------------------

/** Exact reads over a stream of buffers. */
class ByteReader {
  private pending: Buffer[] = [];
  private size = 0;
  private done = false;
  constructor(private readonly source: AsyncIterator<Buffer>) {}

  private async fill(n: number): Promise<void> {
    while (this.size < n && !this.done) {
      const next = await this.source.next();
      if (next.done) this.done = true;
      else if (next.value.length) {
        this.pending.push(next.value);
        this.size += next.value.length;
      }
    }
  }

  /** Up to `n` bytes (fewer only at the end of the stream). */
  async take(n: number): Promise<Buffer> {
    await this.fill(n);
    const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    const out = all.subarray(0, Math.min(n, all.length));
    const rest = all.subarray(out.length);
    this.pending = rest.length ? [rest] : [];
    this.size = rest.length;
    return out;
  }

  /** Up to `max` bytes, whatever is available first (at least one byte unless the stream ended). */
  async some(max: number): Promise<Buffer> {
    if (this.size === 0) await this.fill(1);
    return this.take(Math.min(max, this.size));
  }
}

export interface PackMemberReader {
  sha1: string;
  size: number;
  /** The member's content; must be consumed (or `skip`ped) before the next member is read. */
  content: () => AsyncGenerator<Buffer>;
}

/**
 * Reads a pack: decrypts (`decrypter`), decompresses (`zstd -d`) and walks its tar entries, calling
 * `onMember` for each; whatever `onMember` does not read of a member is skipped. Throws
 * ArtifactCorruptedError on anything that is not a pack as written here (any entry but a regular
 * file named `<aa>/<sha1>`, a truncated archive, a failed authentication).
 */
export async function readPack(opts: {
  source: AsyncIterable<Buffer>;
  decrypter: AgeDecrypter;
  name: string;
  signal?: AbortSignal;
  onMember: (member: PackMemberReader) => Promise<void>;
}): Promise<number> {
  const plain = openAgeStream(opts.decrypter, opts.source, opts.name);
  const tarStream = filterThrough({ name: 'zstd', command: 'zstd', args: ['-d', '-q', '-c'] }, plain, opts.signal);
  const reader = new ByteReader(tarStream[Symbol.asyncIterator]());
  let members = 0;
  try {
    for (;;) {
      opts.signal?.throwIfAborted();
      const block = await reader.take(BLOCK);
      if (block.length < BLOCK) throw new ArtifactCorruptedError(`${opts.name} is truncated: its tar ends without the end-of-archive blocks`);
      if (block.every((b) => b === 0)) break;
      const header = new tar.Header(block);
      if (!header.cksumValid) throw new ArtifactCorruptedError(`${opts.name}: tar header #${members + 1} has a bad checksum`);
      const name = header.path ?? '';
      const size = header.size ?? -1;
      const match = MEMBER_NAME.exec(name);
      if (header.type !== 'File' || !match || match[1] !== match[2]!.slice(0, 2) || !Number.isSafeInteger(size) || size < 0) {
        throw new ArtifactCorruptedError(`${opts.name}: entry ${JSON.stringify(name.slice(0, 80))} (${header.type}) is not a filestore file <aa>/<sha1>`);
      }
      members++;
      let left = size;
      const content = async function* (): AsyncGenerator<Buffer> {
        while (left > 0) {
          const chunk = await reader.some(Math.min(left, 1024 * 1024));
          if (chunk.length === 0) throw new ArtifactCorruptedError(`${opts.name} is truncated inside ${name}`);
          left -= chunk.length;
          yield chunk;
        }
      };
      await opts.onMember({ sha1: match[2]!, size, content });
      // What the consumer did not read of the member, and the padding.
      while (left > 0) {
        const chunk = await reader.some(Math.min(left, 1024 * 1024));
        if (chunk.length === 0) throw new ArtifactCorruptedError(`${opts.name} is truncated inside ${name}`);
        left -= chunk.length;
      }
      const pad = (BLOCK - (size % BLOCK)) % BLOCK;
      if (pad && (await reader.take(pad)).length < pad) throw new ArtifactCorruptedError(`${opts.name} is truncated after ${name}`);
    }
    // Drain: the age stream is authenticated to its last chunk only when it is read to the end.
    for (;;) {
      const rest = await reader.some(1024 * 1024);
      if (rest.length === 0) break;
    }
  } finally {
    await tarStream.return(undefined).catch(() => undefined);
  }
  return members;
}

export { SHA1 as SHA1_HEX };

// --- reading the files of an index, pack by pack ------------------------------------------------------

/** What an index wants from one pack: each content (SHA-1) once, with its size and every path that holds it. */
export interface PackGroup {
  bytes?: number;
  wanted: Map<string, { size: number; paths: string[] }>;
}

/** The packed files of an index, grouped by pack (memory: one small record per file). */
export class PackPlan {
  readonly packs = new Map<string, PackGroup>();
  files = 0;

  private group(id: string): PackGroup {
    let g = this.packs.get(id);
    if (!g) this.packs.set(id, (g = { wanted: new Map() }));
    return g;
  }

  record(r: PackRecord): void {
    this.group(r.pack).bytes = r.bytes;
  }

  /** Adds a file entry with a pack; returns a problem when the index contradicts itself. */
  add(entry: FileEntry & { pack: string }): string | undefined {
    const g = this.group(entry.pack);
    const want = g.wanted.get(entry.sha1);
    if (want && want.size !== entry.size) return `${entry.path}: the index gives two sizes for content ${entry.sha1}, not restored`;
    if (want) want.paths.push(entry.path);
    else g.wanted.set(entry.sha1, { size: entry.size, paths: [entry.path] });
    this.files++;
    return undefined;
  }
}

/**
 * Reads every pack of `plan` once, start to end (`concurrency` at a time), and calls `onFile` for
 * each wanted content with the member to read. Every wanted file that cannot be had (pack missing,
 * of the wrong size, unreadable, not holding it, holding another size) is reported through
 * `problem`, naming the file and the pack; systemic errors (disk, abort) throw.
 */
export async function visitPackedFiles(opts: {
  plan: PackPlan;
  /** A local file holding the pack (checked against `bytes` here), or undefined when it is not stored; `done` releases it. */
  open: (id: string, bytes: number) => Promise<{ file: string; done?: () => Promise<void> } | undefined>;
  decrypter: AgeDecrypter;
  problem: (text: string) => void;
  onFile: (want: { sha1: string; size: number; paths: string[] }, member: PackMemberReader, packRel: string) => Promise<void>;
  concurrency?: number;
  signal?: AbortSignal;
}): Promise<void> {
  const visitPack = async (id: string, group: PackGroup) => {
    const packRel = rel.pack(id);
    const unrestored = (why: string) => {
      for (const [sha1, want] of group.wanted) for (const p of want.paths) opts.problem(`${p}: ${why} (content ${sha1})`);
      group.wanted.clear();
    };
    if (group.bytes === undefined) return unrestored(`the index names pack ${packRel} without its size (the index is damaged)`);
    let got;
    try {
      got = await opts.open(id, group.bytes);
    } catch (err) {
      if (err instanceof ArtifactCorruptedError) return unrestored(`pack ${packRel} cannot be fetched (${err.message})`);
      throw err;
    }
    if (!got) return unrestored(`pack ${packRel} is missing`);
    try {
      const st = await stat(got.file).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      });
      if (!st) return unrestored(`pack ${packRel} is missing`);
      if (st.size !== group.bytes) return unrestored(`pack ${packRel} is damaged (${st.size} bytes, the index says ${group.bytes})`);
      await readPack({
        source: createReadStream(got.file, { highWaterMark: 1024 * 1024 }),
        decrypter: opts.decrypter,
        name: packRel,
        ...(opts.signal ? { signal: opts.signal } : {}),
        onMember: async (member) => {
          const want = group.wanted.get(member.sha1);
          if (!want) return; // another session's file
          group.wanted.delete(member.sha1);
          if (member.size !== want.size) {
            for (const p of want.paths) opts.problem(`${p}: pack ${packRel} holds ${member.size} bytes for it, the index says ${want.size}`);
            return;
          }
          await opts.onFile({ sha1: member.sha1, ...want }, member, packRel);
        },
      });
    } catch (err) {
      if (err instanceof ArtifactCorruptedError || err instanceof EncryptionKeyError) return unrestored(`pack ${packRel} cannot be read (${err.message})`);
      throw err;
    } finally {
      await got.done?.();
    }
    unrestored(`not in pack ${packRel}`);
  };
  const queue = [...opts.plan.packs.entries()].filter(([, g]) => g.wanted.size > 0);
  let failure: Error | undefined;
  const workers = Array.from({ length: Math.min(opts.concurrency ?? 2, queue.length) }, async () => {
    for (let next = queue.shift(); next && failure === undefined; next = queue.shift()) {
      opts.signal?.throwIfAborted();
      await visitPack(next[0], next[1]).catch((err: unknown) => {
        failure ??= err instanceof Error ? err : new Error(String(err));
      });
    }
  });
  await Promise.all(workers);
  if (failure !== undefined) throw failure;
}
