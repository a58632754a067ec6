/**
 * The tar of one pack while it is written: filled by the backup's readers, read by `writePack`.
 * Small files are copied once, straight from the file into a chunk of tar entries (header, content,
 * padding); a full chunk goes to the pack's `zstd`. Memory is bounded by `MAX_QUEUED` bytes waiting
 * plus the chunk being filled, whatever the pack size: a pack is never held whole in memory.
 */
import { readSync } from 'node:fs';
import { BLOCK, tarEntryBytes, writeTarEntryHeader, type PackMember } from './packs';

/** A chunk's size (one pipe write, as `writePack` batches); an entry that does not fit starts the next one. */
const CHUNK_BYTES = 1024 * 1024;
/** Bytes queued for the pack (chunks, and files streamed from a handle, counted with their size) before readers wait. */
const MAX_QUEUED = 4 * 1024 * 1024;

export class PackFeed implements AsyncIterable<PackMember | Buffer> {
  private readonly queue: Array<PackMember | Buffer> = [];
  private queued = 0;
  private chunk: Buffer | undefined;
  private used = 0;
  private ended = false;
  private failure: Error | undefined;
  private wakeReader: (() => void) | undefined;
  private wakeWriters: Array<() => void> = [];

  /** Whether another file may be added now. */
  get hasRoom(): boolean {
    return this.queued < MAX_QUEUED;
  }

  /** Resolves once there is room for another file, or the pack ended or failed (the caller checks again). */
  async room(): Promise<void> {
    if (this.queued >= MAX_QUEUED && !this.failure && !this.ended) await new Promise<void>((resolve) => this.wakeWriters.push(resolve));
  }

  /**
   * Reads `size` bytes of `fd` (a file of at most SMALL_FILE_BYTES) into the chunk after the room
   * for its header, with one read of one byte more: the content read, its length being what the
   * file holds now (`size + 1`: it grew). Nothing is added until `commit`; no other read may come
   * between.
   */
  read(fd: number, size: number): Buffer {
    const chunk = this.roomFor(size + 1);
    const at = this.used + BLOCK;
    const n = readSync(fd, chunk, at, size + 1, 0);
    return chunk.subarray(at, at + n);
  }

  /** Adds the file just `read` as a tar entry. */
  commit(sha1: string, size: number, mtime: Date): void {
    const chunk = this.chunk!;
    const end = this.used + tarEntryBytes(size);
    writeTarEntryHeader(chunk, this.used, sha1, size, mtime);
    chunk.fill(0, this.used + BLOCK + size, end);
    this.used = end;
  }

  /** Adds a file held in memory (at most SMALL_FILE_BYTES) as a tar entry. */
  add(data: Buffer, sha1: string, mtime: Date): void {
    const chunk = this.roomFor(data.length);
    data.copy(chunk, this.used + BLOCK);
    this.commit(sha1, data.length, mtime);
  }

  /** Adds a file `writePack` streams from its handle (after the entries before it). */
  stream(member: PackMember): void {
    this.flush();
    this.push(member, member.size);
  }

  /** No more files: the pack's tar ends after what was added. */
  end(): void {
    this.flush();
    this.ended = true;
    this.wake();
  }

  /** Stops the pack: `writePack` fails with `err`, waiting readers go on (and see the failure). */
  fail(err: Error): void {
    this.failure ??= err;
    this.queue.length = 0;
    this.queued = 0;
    this.chunk = undefined;
    this.wake();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<PackMember | Buffer> {
    for (;;) {
      if (this.failure) throw this.failure;
      const next = this.queue.shift();
      if (next !== undefined) {
        this.queued -= Buffer.isBuffer(next) ? next.length : next.size;
        this.wake();
        yield next;
      } else if (this.ended) return;
      else await new Promise<void>((resolve) => (this.wakeReader = resolve));
    }
  }

  /** The chunk, with room for an entry of `size` bytes of content after what it holds (a full one is sent first). */
  private roomFor(size: number): Buffer {
    const needed = tarEntryBytes(size);
    if (this.chunk && this.used + needed > this.chunk.length) {
      this.flush();
      this.chunk = undefined; // (an empty one too small for this entry)
    }
    // Chunks are filled to the end (a file of up to SMALL_FILE_BYTES gets one of its own if need be).
    return (this.chunk ??= Buffer.allocUnsafe(Math.max(CHUNK_BYTES, needed)));
  }

  private flush(): void {
    if (!this.chunk || this.used === 0) return;
    const full = this.chunk.subarray(0, this.used);
    this.chunk = undefined;
    this.used = 0;
    this.push(full, full.length);
  }

  private push(item: PackMember | Buffer, bytes: number): void {
    if (this.failure) return;
    this.queue.push(item);
    this.queued += bytes;
    this.wake();
  }

  private wake(): void {
    const reader = this.wakeReader;
    this.wakeReader = undefined;
    reader?.();
    if (this.queued < MAX_QUEUED || this.failure || this.ended) {
      const writers = this.wakeWriters;
      this.wakeWriters = [];
      for (const w of writers) w();
    }
  }
}
