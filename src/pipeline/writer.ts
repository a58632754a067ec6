/** Writing a pipeline's output to its file: batched, one write in flight, bounded memory. */
import type { FileHandle } from 'node:fs/promises';

/**
 * Writes chunks in batches (writev) while the next ones are being read: one write in flight, at most
 * MAX_QUEUED bytes waiting behind it, then `push` waits (backpressure, bounded memory).
 */
export class BatchWriter {
  written = 0;
  private queue: Buffer[] = [];
  private queued = 0;
  private inflight: Promise<void> | undefined;
  private error: Error | undefined;
  private static readonly MAX_QUEUED = 4 * 1024 * 1024;
  private static readonly MAX_BUFFERS = 256;

  constructor(private readonly fh: FileHandle) {}

  async push(buf: Buffer): Promise<void> {
    this.check();
    if (buf.length === 0) return;
    this.queue.push(buf);
    this.queued += buf.length;
    if (this.inflight === undefined) this.next();
    else if (this.queued >= BatchWriter.MAX_QUEUED || this.queue.length >= BatchWriter.MAX_BUFFERS) await this.inflight;
    this.check();
  }

  /** Waits until everything pushed is written; rejects with the first write error. */
  async flush(): Promise<void> {
    while (this.inflight !== undefined) await this.inflight;
    this.check();
  }

  private check(): void {
    if (this.error !== undefined) throw this.error;
  }

  /** Waits until no write is running, ignoring errors. */
  async settle(): Promise<void> {
    while (this.inflight !== undefined) await this.inflight;
  }

  private next(): void {
    if (this.queue.length === 0 || this.error !== undefined) {
      this.inflight = undefined;
      return;
    }
    const batch = this.queue;
    this.queue = [];
    this.queued = 0;
    this.inflight = writevAll(this.fh, batch).then(
      (n) => {
        this.written += n;
        this.next();
      },
      (err: unknown) => {
        this.error = err instanceof Error ? err : new Error(String(err));
        this.queue = [];
        this.inflight = undefined;
      },
    );
  }
}

/** Writes all buffers (a regular file may accept less than asked, e.g. just before ENOSPC). */
async function writevAll(fh: FileHandle, buffers: Buffer[]): Promise<number> {
  let pending = buffers;
  let total = 0;
  while (pending.length > 0) {
    const { bytesWritten } = await fh.writev(pending);
    if (bytesWritten === 0) throw Object.assign(new Error('write returned 0 bytes'), { code: 'EIO', syscall: 'write' });
    total += bytesWritten;
    let skip = bytesWritten;
    const rest: Buffer[] = [];
    for (const b of pending) {
      if (skip >= b.length) skip -= b.length;
      else {
        rest.push(skip > 0 ? b.subarray(skip) : b);
        skip = 0;
      }
    }
    pending = rest;
  }
  return total;
}
