/**
 * What an upload is asked and answers (request, progress, result), how a file is cut into parts,
 * and the integrity checks of an upload:
 *  - the bytes handed to the SDK are re-hashed on the way (SHA-256 and byte count) and compared with
 *    what was recorded when the local artifact was written; on a mismatch nothing is completed (the
 *    single PUT is never sent, CompleteMultipartUpload never called, the multipart upload is aborted)
 *    and ArtifactCorruptedError names the file;
 *  - after completion the server's object checksum (full-object for a single PUT, composite
 *    `base64(sha256(part digests))-N` for multipart) is compared with the one computed locally from
 *    the same bytes.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ArtifactCorruptedError } from '../../errors';
import { MiB, s3Url, type CloudSettings } from './client';

/** S3's minimum part size (every part but the last). */
export const MIN_PART_SIZE = 5 * MiB;
export const DEFAULT_PART_SIZE = 8 * MiB;
export const DEFAULT_QUEUE_SIZE = 4;
export const MAX_PARTS = 10_000;
/** User metadata key (`x-amz-meta-sha256`) holding the whole-object SHA-256 (hex). */
export const SHA256_METADATA_KEY = 'sha256';

export function sha256Base64(hex: string): string {
  return Buffer.from(hex, 'hex').toString('base64');
}

/** S3's composite checksum of a multipart object: base64(sha256(concat(part digests)))-N. */
export function compositeSha256(partDigests: Buffer[]): string {
  return `${createHash('sha256').update(Buffer.concat(partDigests)).digest('base64')}-${partDigests.length}`;
}

/** The size of part `n` (1-based) of an object of `total` bytes cut in `partSize` parts. */
export function partLength(n: number, partSize: number, total: number): number {
  return Math.max(0, Math.min(partSize, total - (n - 1) * partSize));
}

export function partCount(total: number, partSize: number): number {
  return Math.max(1, Math.ceil(total / partSize));
}

export function corrupted(req: Pick<UploadRequest, 'file' | 'expectedBytes' | 'expectedSha256' | 'cloud' | 'key'>, found: string): ArtifactCorruptedError {
  return new ArtifactCorruptedError(
    `local artifact ${req.file} no longer matches what was recorded when it was written ` +
      `(${req.expectedBytes} bytes, sha256 ${req.expectedSha256}): ${found}; refusing to upload it to ${s3Url(req.cloud, req.key)}`,
  );
}

/**
 * Passes the bytes through unchanged while hashing them (whole stream, and `partSize` slices if given) and
 * counting them. Fails the stream when they do not match the expected size and SHA-256, before its
 * end reaches the uploader: the last chunk is held back until the whole was checked, so a body
 * streamed into a PUT never reaches its Content-Length with bytes that were not verified.
 */
export class VerifyingHasher extends Transform {
  private readonly whole = createHash('sha256');
  private part: Hash | undefined;
  private partFill = 0;
  readonly partDigests: Buffer[] = [];
  bytes = 0;
  sha256: string | undefined;
  private held: Buffer | undefined;

  constructor(
    private readonly target: Pick<UploadRequest, 'file' | 'expectedBytes' | 'expectedSha256' | 'cloud' | 'key'>,
    /** Undefined: no part digests (a single PUT). */
    private readonly partSize?: number,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.byteLength;
    if (this.bytes > this.target.expectedBytes) {
      callback(corrupted(this.target, `it has more than ${this.target.expectedBytes} bytes`));
      return;
    }
    this.whole.update(chunk);
    if (this.partSize !== undefined) this.hashParts(chunk, this.partSize);
    const previous = this.held;
    this.held = chunk;
    callback(null, previous);
  }

  private hashParts(chunk: Buffer, partSize: number): void {
    let offset = 0;
    while (offset < chunk.byteLength) {
      const n = Math.min(partSize - this.partFill, chunk.byteLength - offset);
      (this.part ??= createHash('sha256')).update(chunk.subarray(offset, offset + n));
      this.partFill += n;
      offset += n;
      if (this.partFill === partSize) {
        this.partDigests.push(this.part.digest());
        this.part = undefined;
        this.partFill = 0;
      }
    }
  }

  override _flush(callback: TransformCallback): void {
    if (this.part) this.partDigests.push(this.part.digest());
    this.part = undefined;
    this.sha256 = this.whole.digest('hex');
    if (this.bytes !== this.target.expectedBytes || this.sha256 !== this.target.expectedSha256) {
      callback(corrupted(this.target, `read ${this.bytes} bytes with sha256 ${this.sha256}`));
      return;
    }
    callback(null, this.held);
    this.held = undefined;
  }
}

export interface UploadProgress {
  uploadId: string;
  key: string;
  partSize: number;
  /** Part numbers known to be on the server (sorted). */
  partsDone: number[];
  /** Bytes of the parts in `partsDone` (sent by this attempt or reused from an earlier one). */
  bytesSent: number;
}

export interface UploadRequest {
  cloud: CloudSettings;
  key: string;
  file: string;
  /** Size and hex SHA-256 of the whole local file, recorded when it was written. */
  expectedBytes: number;
  expectedSha256: string;
  /** From the activity's last heartbeat: continue that multipart upload if it still exists. */
  resume?: UploadProgress;
  /** Called after each part is on the server (the activity heartbeats this). Not called for a single PUT. */
  onProgress?: (p: UploadProgress) => void;
  /**
   * Aborting stops the upload like a killed worker would: no new part is started, the call rejects
   * at once with the signal's reason, and the multipart upload is KEPT so that a retry can resume it
   * (`discardOnAbort` and `abortUpload` discard it, `abortStaleUploads` collects forgotten ones).
   * Parts already in flight may still complete in the background (they are then reused).
   */
  signal?: AbortSignal;
  /**
   * Asked when `signal` aborts: true discards the multipart upload instead of keeping it (the
   * caller knows whether the abort is for good or a retry will resume). It is aborted at once and
   * again once the parts in flight are over; the call rejects after that.
   */
  discardOnAbort?: () => boolean;
  /** Default 8 MiB; at least 5 MiB; raised automatically if the file would need more than 10,000 parts. */
  partSize?: number;
  /** Parts in flight at once; memory is bounded by queueSize × partSize. Default 4. */
  queueSize?: number;
  contentType?: string;
  metadata?: Record<string, string>;
}

export interface UploadResult {
  key: string;
  bytes: number;
  /** Hex SHA-256 of the bytes sent (equal to expectedSha256, or the upload would have failed). */
  sha256: string;
  /** The server's SHA-256 checksum of the object (base64; composite `…-N` for multipart), if it returned one. */
  s3Checksum: string | undefined;
  resumed: boolean;
  partsReused: number;
  /** Multipart upload id, undefined for a single PUT. */
  uploadId: string | undefined;
  /** Server-side encryption the server confirmed (undefined: none confirmed). */
  serverSideEncryption: string | undefined;
  /** What an operator may want to know: SSE fallback, no server checksum, resume decisions. */
  notes: string[];
}

export function progressOf(uploadId: string, key: string, partSize: number, total: number, done: Iterable<number>): UploadProgress {
  const partsDone = [...done].sort((a, b) => a - b);
  return {
    uploadId,
    key,
    partSize,
    partsDone,
    bytesSent: partsDone.reduce((sum, n) => sum + partLength(n, partSize, total), 0),
  };
}

export function effectivePartSize(requested: number, total: number): number {
  const needed = Math.ceil(total / MAX_PARTS);
  return needed > requested ? Math.ceil(needed / MiB) * MiB : requested;
}

export function confirmSse(reported: string | undefined, requested: string | undefined, notes: string[]): string | undefined {
  if (requested && !reported) {
    notes.push(
      `server-side encryption ${requested} was requested but the server did not confirm it ` +
        '(some S3-compatible servers, versitygw among them, accept the header and ignore it)',
    );
  }
  return reported;
}

/** Compares the server's object checksum with ours; a mismatch deletes the object. */
export async function checkServerChecksum(
  client: S3Client,
  req: UploadRequest,
  s3Checksum: string | undefined,
  expected: string,
  notes: string[],
): Promise<void> {
  if (s3Checksum === undefined) {
    notes.push('the server returned no SHA-256 checksum; the upload was verified by the local re-hash only');
    return;
  }
  if (s3Checksum === expected) return;
  await client.send(new DeleteObjectCommand({ Bucket: req.cloud.bucket, Key: req.key })).catch(() => undefined);
  throw new ArtifactCorruptedError(
    `the server's checksum of ${s3Url(req.cloud, req.key)} is ${s3Checksum} but the bytes sent from ${req.file} give ${expected}; ` + 'the object was deleted',
  );
}
