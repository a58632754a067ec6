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
 * each way. A pack of ~16 MiB costs one of each for thousands of small files. Packs are shared between
 * sessions: a session's `filestore.jsonl` says which pack holds each file, and the next backup of
 * the tenant reuses them (reads no file, uploads nothing) for files it already holds.
 *
 * Reading a pack trusts nothing in it (src/backup/pack-reader.ts): only regular-file entries named
 * `<aa>/<sha1>` are accepted, and each file's content is hashed by the reader against the SHA-1 the
 * (signed) index expects.
 */
import { createHash, randomBytes } from 'node:crypto';
import { link, mkdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import * as tar from 'tar';
import { ArtifactCorruptedError, DiskFullError, SourceChangedError } from '../errors';
import { ageSealer } from '../crypto/age';
import { runPipeline, zstdStage, zstdStoredFrame } from '../pipeline';
import { localPath, rel } from './layout';

/**
 * Plaintext bytes after which a pack is closed (a larger file makes a larger pack). Each pack costs
 * a process start (zstd: ~15 ms of CPU, a fork of the worker; age runs in process) and one request each way:
 * 16 MiB packs cost a fifth less CPU than 8 MiB ones for a filestore of small files (measured,
 * README "Filestore packs"); older sessions' smaller packs read the same.
 */
export const PACK_TARGET_BYTES = 16 * 1024 * 1024;
/** Files up to this size are read into memory before they are packed; larger ones stream from an open handle. */
export const SMALL_FILE_BYTES = 1024 * 1024;

/** tar's block: headers and content padding. */
export const BLOCK = 512;
const ZERO_BLOCKS = Buffer.alloc(2 * BLOCK);
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

/** Bytes of the tar entry of a file of `size` bytes held in memory: header, content, padding. */
export const tarEntryBytes = (size: number) => BLOCK + size + ((BLOCK - (size % BLOCK)) % BLOCK);

/** Largest value of a 12-byte octal header field (larger ones are base-256, left to node-tar). */
const MAX_OCTAL_12 = 0o77777777777;

/** A pack member's header with every field that does not depend on the file (node-tar's encoding). */
const HEADER_TEMPLATE = (() => {
  const block = Buffer.alloc(BLOCK);
  new tar.Header({ path: '', mode: 0o640, uid: 0, gid: 0, size: 0, mtime: new Date(0), type: 'File', uname: '', gname: '' }).encode(block, 0);
  block.fill(0, 0, 100); // name
  block.fill(0, 148, 156); // checksum, computed per header
  return block;
})();

/** node-tar's octal field: `size - 2` zero-padded digits, a space and a NUL, or `size - 1` digits and a NUL. */
function writeOctal(block: Buffer, offset: number, size: number, value: number): void {
  const digits = value.toString(8);
  const text = digits.length === size - 1 ? `${digits}\0` : `${digits.padStart(size - 2, '0')} \0`;
  block.write(text, offset, size, 'latin1');
}

/**
 * Writes the tar header of a pack member (`<aa>/<sha1>`, mode 0640, owner 0, the file's size and
 * mtime) at `offset` of `block`, byte for byte what node-tar writes: built by hand because
 * `tar.Header` cost ~9 µs per file, as much as reading an 8 KiB file.
 */
export function writeTarEntryHeader(block: Buffer, offset: number, sha1: string, size: number, mtime: Date): void {
  const seconds = Math.floor(mtime.getTime() / 1000);
  if (size > MAX_OCTAL_12 || seconds < 0 || seconds > MAX_OCTAL_12) {
    block.fill(0, offset, offset + BLOCK); // node-tar writes only its fields
    new tar.Header({ path: `${sha1.slice(0, 2)}/${sha1}`, mode: 0o640, uid: 0, gid: 0, size, mtime, type: 'File', uname: '', gname: '' }).encode(block, offset);
    return;
  }
  HEADER_TEMPLATE.copy(block, offset);
  block.write(`${sha1.slice(0, 2)}/${sha1}`, offset, 100, 'latin1');
  writeOctal(block, offset + 124, 12, size);
  writeOctal(block, offset + 136, 12, seconds);
  let sum = 8 * 0x20; // the checksum field counts as spaces
  for (let i = offset; i < offset + 148; i++) sum += block[i]!;
  for (let i = offset + 156; i < offset + BLOCK; i++) sum += block[i]!;
  writeOctal(block, offset + 148, 8, sum);
}

function tarHeader(sha1: string, size: number, mtime: Date): Buffer {
  const block = Buffer.alloc(BLOCK);
  writeTarEntryHeader(block, 0, sha1, size, mtime);
  return block;
}

const padding = (size: number) => Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);

/**
 * Writes `members` as one pack under `root` (DR_BACKUP_DIR): tar → zstd → age, to a temporary file
 * of this call alone, then linked to its content-addressed name (an existing pack of that name is
 * the same bytes: kept). Handles of streamed members of an array are closed here; whoever feeds an
 * iterable closes those it fed once this settles.
 *
 * `members` may be an iterable fed while the pack is written, mixing members and Buffers of whole
 * tar entries the caller built (`writeTarEntryHeader`, content, zero padding): the backup streams
 * each pack as it reads the files instead of holding it in memory.
 */
export async function writePack(opts: {
  root: string;
  members: PackMember[] | AsyncIterable<PackMember | Buffer>;
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
      const out = batch.length === 1 ? batch[0]! : Buffer.concat(batch, batched);
      batch = [];
      batched = 0;
      return out;
    };
    for await (const m of members) {
      opts.signal?.throwIfAborted();
      if (Buffer.isBuffer(m)) {
        batch.push(m);
        batched += m.length;
        if (batched >= 1024 * 1024) yield flush();
        continue;
      }
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
          throw new SourceChangedError(
            `${m.source} shrank while it was being backed up (${m.size - left} of ${m.size} bytes): the backup of this tenant is retried`,
          );
        }
        const chunk = buf.subarray(0, bytesRead);
        hash.update(chunk);
        left -= bytesRead;
        yield chunk;
      }
      yield padding(m.size);
      const actual = hash.digest('hex');
      if (actual !== m.sha1)
        throw new SourceChangedError(
          `${m.source} changed while it was being backed up (SHA-1 ${actual}, ${m.sha1} when first read): the backup of this tenant is retried`,
        );
    }
    batch.push(ZERO_BLOCKS);
    batched += ZERO_BLOCKS.length;
    yield flush();
  }
  const tmpDir = path.join(opts.root, 'packs', '.tmp');
  await mkdir(tmpDir, { recursive: true });
  const tmp = path.join(tmpDir, `${randomBytes(8).toString('hex')}.tar.zst.age`);
  try {
    const tar = tarBytes();
    const head = await tarHead(tar, SMALL_PACK_BYTES);
    const result = await runPipeline({
      // A tiny pack (a small tenant's filestore, a few new files) is framed here: a zstd process
      // start saved (see SMALL_PACK_BYTES). Otherwise the tar streams through zstd.
      ...(head.whole
        ? { source: Readable.from([zstdStoredFrame(head.bytes)], { objectMode: false }), stages: [] }
        : {
            source: Readable.from(prepend(head.bytes, tar), { objectMode: false }),
            // One zstd thread per pack: packs are written one after another while files are read.
            stages: [zstdStage(opts.compressionLevel, 1)],
          }),
      sealOutput: ageSealer(opts.recipients),
      dest: tmp,
      uniquePartial: true,
      // Not fsync'd one by one (two syncs per pack cost more than packing on a busy disk): the
      // backup syncs the file system once before the index that names its packs is written.
      durable: false,
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
    if ((err as NodeJS.ErrnoException).code === 'ENOSPC')
      throw new DiskFullError(`no space left on the backup disk writing a filestore pack in ${tmpDir}`, { cause: err });
    throw err;
  } finally {
    await rm(tmp, { force: true }).catch(() => undefined);
    if (Array.isArray(members)) for (const m of members) await m.handle?.close().catch(() => undefined);
  }
}

/**
 * A pack whose whole tar is at most this many bytes is stored uncompressed (a zstd frame of raw
 * blocks, written in-process): starting zstd (a fork of the worker, ~10 ms of its event loop, and
 * the process's own start-up) costs more than compressing a few KiB saves. Any reader (`zstd -d`,
 * this code, break-glass) reads it like any other pack.
 */
export const SMALL_PACK_BYTES = 64 * 1024;

/** The tar's first bytes, up to just past `limit`; `whole` when the tar ended within them. */
async function tarHead(tar: AsyncGenerator<Buffer>, limit: number): Promise<{ bytes: Buffer; whole: boolean }> {
  const parts: Buffer[] = [];
  let bytes = 0;
  while (bytes <= limit) {
    const next = await tar.next();
    if (next.done) return { bytes: Buffer.concat(parts, bytes), whole: true };
    parts.push(next.value);
    bytes += next.value.length;
  }
  return { bytes: Buffer.concat(parts, bytes), whole: false };
}

async function* prepend(first: Buffer, rest: AsyncGenerator<Buffer>): AsyncGenerator<Buffer> {
  yield first;
  yield* rest;
}

export { SHA1 as SHA1_HEX };
