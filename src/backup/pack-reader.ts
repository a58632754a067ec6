/**
 * Reading filestore packs (written by src/backup/packs.ts): decrypt, decompress and walk the tar,
 * trusting nothing in it — only regular-file entries named `<aa>/<sha1>` are accepted, and each
 * consumer hashes a file's content against the SHA-1 the (signed) index expects before it counts.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { openAgeStream, type AgeDecrypter } from '../crypto/age';
import { ArtifactCorruptedError, EncryptionKeyError } from '../errors';
import { filterThrough } from '../pipeline';
import { rel } from './layout';
import { BLOCK, type FileEntry, type PackRecord } from './packs';

const MEMBER_NAME = /^([0-9a-f]{2})\/([0-9a-f]{40})$/;

/**
 * The fields of a tar header block that a pack member needs (packs.ts writes ustar headers with
 * node-tar): its path (ustar prefix included), size (octal, or base-256 for 8 GiB and more), type
 * flag (`0`, or NUL as in old tars, is a regular file) and whether the block's checksum holds. Read directly: node-tar's Header decodes every field
 * of every block (dates, owners, modes), a tenth of a restore's time for small files.
 */
export function packHeader(block: Buffer): { path: string; size: number; type: string; cksumValid: boolean } {
  const text = (from: number, length: number) => {
    const raw = block.subarray(from, from + length);
    const nul = raw.indexOf(0);
    return raw.toString('utf8', 0, nul < 0 ? raw.length : nul);
  };
  const octal = (from: number, length: number) => {
    const digits = text(from, length).trim();
    return /^[0-7]+$/.test(digits) ? parseInt(digits, 8) : -1;
  };
  let sum = 8 * 0x20; // the checksum field counts as spaces
  for (let i = 0; i < 148; i++) sum += block[i]!;
  for (let i = 156; i < BLOCK; i++) sum += block[i]!;
  let size = -1;
  if (block[124] === 0x80) {
    size = 0;
    for (let i = 125; i < 136; i++) size = size * 256 + block[i]!;
  } else if (!(block[124]! & 0x80)) size = octal(124, 12);
  const name = text(0, 100);
  const ustar = block.toString('latin1', 257, 263) === 'ustar\0';
  const prefix = ustar ? text(345, 155) : '';
  return {
    path: prefix ? `${prefix}/${name}` : name,
    size,
    type: block[156] === 0x30 || block[156] === 0 ? 'File' : `type ${JSON.stringify(String.fromCharCode(block[156]!))}`,
    cksumValid: sum === octal(148, 8),
  };
}

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

  /** Up to `n` bytes (fewer only at the end of the stream); copied only when they span two buffers, and then only they. */
  async take(n: number): Promise<Buffer> {
    await this.fill(n);
    const want = Math.min(n, this.size);
    const first = this.pending[0];
    if (first === undefined || want === 0) return Buffer.alloc(0);
    this.size -= want;
    if (first.length >= want) {
      if (first.length === want) this.pending.shift();
      else this.pending[0] = first.subarray(want);
      return first.subarray(0, want);
    }
    const out = Buffer.allocUnsafe(want);
    for (let off = 0; off < want;) {
      const head = this.pending[0]!;
      const k = Math.min(head.length, want - off);
      head.copy(out, off, 0, k);
      off += k;
      if (k === head.length) this.pending.shift();
      else this.pending[0] = head.subarray(k);
    }
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
  /** The member's whole content in one buffer (instead of `content`, for small members: no copy when it lies in one decompressed chunk). */
  whole: () => Promise<Buffer>;
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
      const header = packHeader(block);
      if (!header.cksumValid) throw new ArtifactCorruptedError(`${opts.name}: tar header #${members + 1} has a bad checksum`);
      const name = header.path;
      const size = header.size;
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
      const whole = async (): Promise<Buffer> => {
        if (left !== size) throw new Error(`${name}: whole() after its content was read`);
        const data = await reader.take(size);
        if (data.length < size) throw new ArtifactCorruptedError(`${opts.name} is truncated inside ${name}`);
        left = 0;
        return data;
      };
      await opts.onMember({ sha1: match[2]!, size, content, whole });
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

// --- reading the files of an index, pack by pack ------------------------------------------------------

/**
 * What an index wants of one content (SHA-1) in a pack: its size alone when a single file holds it
 * under Odoo's name for it (`<aa>/<sha1>`, nearly every file of a filestore: the path is derived,
 * not kept), else its size and every path that holds it.
 */
type Wanted = number | { size: number; paths: string[] };

/** What an index wants from one pack: each content (SHA-1) once. */
export interface PackGroup {
  bytes?: number;
  wanted: Map<string, Wanted>;
}

function odooPath(sha1: string): string {
  return `${sha1.slice(0, 2)}/${sha1}`;
}

function wantedFiles(sha1: string, wanted: Wanted): { sha1: string; size: number; paths: string[] } {
  return typeof wanted === 'number' ? { sha1, size: wanted, paths: [odooPath(sha1)] } : { sha1, ...wanted };
}

/** The packed files of an index, grouped by pack (memory: a size, or a small record, per content). */
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
    const known = g.wanted.get(entry.sha1);
    if (known === undefined) {
      g.wanted.set(entry.sha1, entry.path === odooPath(entry.sha1) ? entry.size : { size: entry.size, paths: [entry.path] });
    } else {
      const want = wantedFiles(entry.sha1, known);
      if (want.size !== entry.size) return `${entry.path}: the index gives two sizes for content ${entry.sha1}, not restored`;
      want.paths.push(entry.path);
      if (typeof known === 'number') g.wanted.set(entry.sha1, { size: want.size, paths: want.paths });
    }
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
      for (const [sha1, wanted] of group.wanted) for (const p of wantedFiles(sha1, wanted).paths) opts.problem(`${p}: ${why} (content ${sha1})`);
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
          const wanted = group.wanted.get(member.sha1);
          if (wanted === undefined) return; // another session's file
          group.wanted.delete(member.sha1);
          const want = wantedFiles(member.sha1, wanted);
          if (member.size !== want.size) {
            for (const p of want.paths) opts.problem(`${p}: pack ${packRel} holds ${member.size} bytes for it, the index says ${want.size}`);
            return;
          }
          await opts.onFile(want, member, packRel);
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
