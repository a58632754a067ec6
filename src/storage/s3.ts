/**
 * The S3 side of backups: resumable, verified uploads with bounded memory, verified downloads,
 * listing, deletion and clean-up of abandoned multipart uploads.
 *
 * Keys and prefixes passed to these functions are full keys inside the bucket: build them with
 * `cloudKey(cloud, …)`, which adds the configured prefix.
 *
 * Integrity, end to end:
 *  - the bytes handed to the SDK are re-hashed on the way (SHA-256 and byte count) and compared with
 *    what was recorded when the local artifact was written; on a mismatch nothing is completed (the
 *    single PUT is never sent, CompleteMultipartUpload never called, the multipart upload is aborted)
 *    and ArtifactCorruptedError names the file;
 *  - every request carries an S3 SHA-256 checksum (`ChecksumAlgorithm: 'SHA256'`), so the server
 *    verifies each part on receipt (BadDigest otherwise); after completion the server's object
 *    checksum (full-object for a single PUT, composite `base64(sha256(part digests))-N` for multipart)
 *    is compared with the one computed locally from the same bytes;
 *  - the whole-file SHA-256 is stored as user metadata `x-amz-meta-sha256`, so `verifyObject` can
 *    compare the cloud copy with a manifest without the local file.
 *
 * Memory: a single upload holds at most `queueSize × partSize` bytes of the file (plus one part being
 * read on the resume path); downloads stream.
 *
 * Bandwidth: `cloud.bandwidthLimit` (bytes/s) is enforced by a token bucket on the request bodies as
 * they go onto the wire (PUT and UploadPart), shared by every upload of this process with the same
 * limit, so parallel tenant backups together stay under it. Downloads are not throttled.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pipeline as pipelineCallback, Readable, Transform, type TransformCallback } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
  type Part,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { DrConfig } from '../config';
import {
  ArtifactCorruptedError,
  BucketNotFoundError,
  CloudAuthError,
  CloudUnavailableError,
  DiskFullError,
  DrError,
  InvalidInputError,
  scrubSecrets,
} from '../errors';

// The SDK's "Node 20 will not be supported by releases after …" notice is noise for operators.
// It is emitted when the first client is constructed, which is after this line.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export type CloudSettings = NonNullable<DrConfig['cloud']>;

const MiB = 1024 * 1024;
/** S3's minimum part size (every part but the last). */
export const MIN_PART_SIZE = 5 * MiB;
export const DEFAULT_PART_SIZE = 8 * MiB;
export const DEFAULT_QUEUE_SIZE = 4;
const MAX_PARTS = 10_000;
/** User metadata key (`x-amz-meta-sha256`) holding the whole-object SHA-256 (hex). */
export const SHA256_METADATA_KEY = 'sha256';

// ------------------------------------------------------------------------------------------------
// Client

/** Token buckets by rate: every client of this process with the same limit shares one. */
const tokenBuckets = new Map<number, TokenBucket>();

/**
 * Token bucket with debt: each consumer reserves what it is about to send and waits until the
 * bucket would have held it. Burst capacity is a tenth of a second of traffic, so the limit holds
 * over any window longer than that.
 */
class TokenBucket {
  private tokens: number;
  private last = performance.now();
  readonly capacity: number;
  constructor(readonly rate: number) {
    this.capacity = Math.max(16 * 1024, Math.floor(rate / 10));
    this.tokens = this.capacity;
  }
  /** Takes `n` bytes' worth of tokens and returns how long to wait (ms) before sending them. */
  reserve(n: number): number {
    const now = performance.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) * this.rate) / 1000);
    this.last = now;
    this.tokens -= n;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.rate) * 1000;
  }
}

/** A request body (the bytes of a PUT or a part) paced by the token bucket. */
function throttledBody(data: Uint8Array, bucket: TokenBucket): Readable {
  const slice = Math.min(64 * 1024, bucket.capacity);
  let offset = 0;
  let timer: NodeJS.Timeout | undefined;
  return new Readable({
    highWaterMark: slice,
    read() {
      if (offset >= data.byteLength) {
        this.push(null);
        return;
      }
      const n = Math.min(slice, data.byteLength - offset);
      const chunk = Buffer.from(data.buffer, data.byteOffset + offset, n);
      offset += n;
      const wait = bucket.reserve(n);
      if (wait <= 0) this.push(chunk);
      else
        timer = setTimeout(() => {
          timer = undefined;
          this.push(chunk);
        }, wait);
    },
    destroy(err, callback) {
      if (timer) clearTimeout(timer);
      callback(err);
    },
  });
}

/**
 * An S3 client for the configured endpoint: path-style when configured, static credentials when
 * both keys are set (else the SDK's default chain), 5 attempts with the standard retry strategy,
 * a 10 s connection timeout and a 120 s idle-socket timeout (no total-request cap: a throttled
 * upload of a large part may legitimately take minutes). With `bandwidthLimit`, request bodies are
 * paced by a token bucket shared by all clients of the process with the same limit.
 */
export function createS3Client(cloud: CloudSettings): S3Client {
  const credentials =
    cloud.accessKeyId && cloud.secretAccessKey
      ? { accessKeyId: cloud.accessKeyId, secretAccessKey: cloud.secretAccessKey }
      : undefined;
  const client = new S3Client({
    region: cloud.region,
    endpoint: cloud.endpoint,
    forcePathStyle: cloud.forcePathStyle,
    credentials,
    maxAttempts: 5,
    retryMode: 'standard',
    requestHandler: {
      connectionTimeout: 10_000,
      socketTimeout: 120_000,
      httpAgent: { keepAlive: true, maxSockets: 64 },
      httpsAgent: { keepAlive: true, maxSockets: 64 },
    },
  });
  const limit = cloud.bandwidthLimit;
  if (limit !== undefined && limit > 0) {
    let bucket = tokenBuckets.get(limit);
    if (!bucket) tokenBuckets.set(limit, (bucket = new TokenBucket(limit)));
    const paced = bucket;
    // Innermost step (after signing and checksums, which saw the original bytes): only the pace of
    // the bytes on the wire changes. The original request is not mutated, so retries resend it whole.
    client.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { body?: unknown } | undefined;
        if (request && request.body instanceof Uint8Array && request.body.byteLength > 0) {
          const copy = Object.assign(Object.create(Object.getPrototypeOf(request) as object) as object, request, {
            body: throttledBody(request.body, paced),
          });
          return next({ ...args, request: copy });
        }
        return next(args);
      },
      { step: 'deserialize', priority: 'low', name: 'odooDrBandwidthLimit' },
    );
  }
  return client;
}

/** One client per settings object (the worker's configuration), reused by the short operations. */
const clients = new WeakMap<CloudSettings, S3Client>();
/** Clients whose credentials and bucket were proven good by a listing (see headObject). */
const accessConfirmed = new WeakSet<S3Client>();

function clientFor(cloud: CloudSettings): S3Client {
  let client = clients.get(cloud);
  if (!client) clients.set(cloud, (client = createS3Client(cloud)));
  return client;
}

/**
 * Joins the configured prefix and `parts` with '/': no leading slash, no empty segment ('//'). A
 * trailing '/' on the last part is kept, so `cloudKey(cloud, 'sessions/')` is a listing prefix.
 * `.` and `..` segments are refused (they would escape the prefix on file-backed servers).
 */
export function cloudKey(cloud: CloudSettings, ...parts: string[]): string {
  const segments = [cloud.prefix, ...parts].flatMap((p) => p.split('/')).filter((s) => s !== '');
  const bad = segments.find((s) => s === '.' || s === '..');
  if (bad !== undefined) {
    throw new InvalidInputError(`S3 key parts must not contain '${bad}' segments, got ${JSON.stringify(parts)}`);
  }
  const trailing = parts.length > 0 && parts[parts.length - 1]!.endsWith('/') && segments.length > 0 ? '/' : '';
  return segments.join('/') + trailing;
}

function s3Url(cloud: CloudSettings, key: string): string {
  return `s3://${cloud.bucket}/${key}`;
}

function describeService(cloud: CloudSettings): string {
  return `endpoint ${cloud.endpoint ?? `AWS S3 (${cloud.region})`}, bucket ${cloud.bucket}`;
}

// ------------------------------------------------------------------------------------------------
// Errors

interface S3ErrorLike {
  name?: unknown;
  Code?: unknown;
  code?: unknown;
  message?: unknown;
  $metadata?: { httpStatusCode?: number; requestId?: string };
}

function errorCode(err: unknown): string {
  if (typeof err !== 'object' || err === null) return String(err);
  const e = err as S3ErrorLike;
  if (typeof e.Code === 'string') return e.Code;
  if (typeof e.code === 'string') return e.code;
  return typeof e.name === 'string' ? e.name : 'Error';
}

function httpStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  return (err as S3ErrorLike).$metadata?.httpStatusCode;
}

function errorMessage(err: unknown): string {
  if (typeof err === 'object' && err !== null && typeof (err as S3ErrorLike).message === 'string') {
    return (err as { message: string }).message;
  }
  return String(err);
}

function isAbortError(err: unknown): boolean {
  const code = errorCode(err);
  return code === 'AbortError' || code === 'ABORT_ERR' || (err instanceof Error && err.name === 'AbortError');
}

const AUTH_CODES = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'AccessDenied',
  'InvalidToken',
  'ExpiredToken',
  'TokenRefreshRequired',
  'AuthorizationHeaderMalformed',
  'AuthorizationQueryParametersError',
  'InvalidSecurity',
  'AccountProblem',
  'AllAccessDisabled',
  'CredentialsProviderError',
  'XAdminUserNotFound', // versitygw: unknown access key id (HTTP 404!)
  'InvalidAccessKeyID',
]);
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTDOWN',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'SlowDown',
  'ServiceUnavailable',
  'InternalError',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'BadDigest', // bytes damaged in transit: sending them again can succeed
  'XAmzContentSHA256Mismatch',
  'IncompleteBody',
]);

/**
 * Maps an SDK, network or file-system error to the catalogue. `what` says what was being done
 * ("upload of /x to s3://b/k"). Messages name the endpoint and bucket, never the secret key; the
 * SDK error is summarized (code, HTTP status, request id), not attached, so nothing it carries
 * (canonical request, string to sign) leaks into logs or Temporal failures.
 */
export function mapS3Error(err: unknown, cloud: CloudSettings, what: string): Error {
  if (err instanceof DrError) return err;
  if (isAbortError(err)) return err instanceof Error ? err : new Error(String(err));
  const code = errorCode(err);
  const status = httpStatus(err);
  const requestId = typeof err === 'object' && err !== null ? (err as S3ErrorLike).$metadata?.requestId : undefined;
  const detail = [
    code,
    status !== undefined ? `HTTP ${status}` : undefined,
    requestId ? `request id ${requestId}` : undefined,
  ]
    .filter(Boolean)
    .join(', ');
  const sdkMessage = errorMessage(err);
  const service = describeService(cloud);
  const clean = (m: string) => scrubSecrets(m, [cloud.secretAccessKey]);

  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new DiskFullError(clean(`${what} failed: the local disk is full (${code})`));
  }
  if (AUTH_CODES.has(code) || status === 401 || status === 403) {
    return new CloudAuthError(
      clean(
        `${what} failed: S3 refused the credentials (${service}, access key ${cloud.accessKeyId ?? '(SDK default chain)'}): ` +
          `${detail}. Check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY and the key's permissions on the bucket.`,
      ),
    );
  }
  if (code === 'NoSuchBucket') {
    return new BucketNotFoundError(
      clean(`${what} failed: bucket ${cloud.bucket} does not exist at ${cloud.endpoint ?? `AWS S3 (${cloud.region})`} (${detail}). Check DR_CLOUD_BUCKET.`),
    );
  }
  if (code === 'NoSuchKey' || code === 'NotFound') {
    return new ArtifactCorruptedError(clean(`${what} failed: the object is missing (${service}; ${detail})`));
  }
  if (NETWORK_CODES.has(code) || (status !== undefined && status >= 500 && status !== 501)) {
    return new CloudUnavailableError(
      clean(`${what} failed: S3 is unavailable (${service}): ${detail}${sdkMessage && sdkMessage !== code ? `: ${sdkMessage}` : ''}`),
    );
  }
  return new Error(clean(`${what} failed (${service}): ${detail}${sdkMessage && sdkMessage !== code ? `: ${sdkMessage}` : ''}`));
}

/** The server refused the requested server-side encryption as unsupported (not as forbidden). */
function isSseUnsupported(err: unknown): boolean {
  const code = errorCode(err);
  const status = httpStatus(err);
  // A client error (4xx) or HTTP 501 (feature missing on the server); never an outage, never a network error.
  if (status === undefined || (status >= 500 && status !== 501)) return false;
  if (code === 'NotImplemented') return true;
  const mentionsSse = /encrypt|\bsse\b|kms/i.test(`${code} ${errorMessage(err)}`);
  return (
    mentionsSse &&
    ['InvalidArgument', 'InvalidRequest', 'InvalidEncryptionAlgorithmError', 'UnsupportedEncryption', 'KMS.NotConfigured', 'NotImplemented'].includes(code)
  );
}

// ------------------------------------------------------------------------------------------------
// Hashing

function sha256Base64(hex: string): string {
  return Buffer.from(hex, 'hex').toString('base64');
}

/** S3's composite checksum of a multipart object: base64(sha256(concat(part digests)))-N. */
export function compositeSha256(partDigests: Buffer[]): string {
  return `${createHash('sha256').update(Buffer.concat(partDigests)).digest('base64')}-${partDigests.length}`;
}

/** The size of part `n` (1-based) of an object of `total` bytes cut in `partSize` parts. */
function partLength(n: number, partSize: number, total: number): number {
  return Math.max(0, Math.min(partSize, total - (n - 1) * partSize));
}

function partCount(total: number, partSize: number): number {
  return Math.max(1, Math.ceil(total / partSize));
}

function corrupted(
  req: Pick<UploadRequest, 'file' | 'expectedBytes' | 'expectedSha256' | 'cloud' | 'key'>,
  found: string,
): ArtifactCorruptedError {
  return new ArtifactCorruptedError(
    `local artifact ${req.file} no longer matches what was recorded when it was written ` +
      `(${req.expectedBytes} bytes, sha256 ${req.expectedSha256}): ${found}; refusing to upload it to ${s3Url(req.cloud, req.key)}`,
  );
}

/**
 * Passes the bytes through unchanged while hashing them (whole stream and `partSize` slices) and
 * counting them. Fails the stream — before its end reaches the uploader — when they do not match
 * the expected size and SHA-256.
 */
class VerifyingHasher extends Transform {
  private readonly whole = createHash('sha256');
  private part: Hash | undefined;
  private partFill = 0;
  readonly partDigests: Buffer[] = [];
  bytes = 0;
  sha256: string | undefined;

  constructor(
    private readonly target: Pick<UploadRequest, 'file' | 'expectedBytes' | 'expectedSha256' | 'cloud' | 'key'>,
    private readonly partSize: number,
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
    let offset = 0;
    while (offset < chunk.byteLength) {
      const n = Math.min(this.partSize - this.partFill, chunk.byteLength - offset);
      (this.part ??= createHash('sha256')).update(chunk.subarray(offset, offset + n));
      this.partFill += n;
      offset += n;
      if (this.partFill === this.partSize) {
        this.partDigests.push(this.part.digest());
        this.part = undefined;
        this.partFill = 0;
      }
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.part) this.partDigests.push(this.part.digest());
    this.part = undefined;
    this.sha256 = this.whole.digest('hex');
    if (this.bytes !== this.target.expectedBytes || this.sha256 !== this.target.expectedSha256) {
      callback(corrupted(this.target, `read ${this.bytes} bytes with sha256 ${this.sha256}`));
      return;
    }
    callback();
  }
}

// ------------------------------------------------------------------------------------------------
// Upload

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
   * (`abortUpload` discards it, `abortStaleUploads` collects forgotten ones). Parts already in
   * flight may still complete in the background (they are then reused).
   */
  signal?: AbortSignal;
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

function progressOf(uploadId: string, key: string, partSize: number, total: number, done: Iterable<number>): UploadProgress {
  const partsDone = [...done].sort((a, b) => a - b);
  return {
    uploadId,
    key,
    partSize,
    partsDone,
    bytesSent: partsDone.reduce((sum, n) => sum + partLength(n, partSize, total), 0),
  };
}

function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : Object.assign(new Error(`upload aborted: ${String(reason)}`), { name: 'AbortError' });
}

function effectivePartSize(requested: number, total: number): number {
  const needed = Math.ceil(total / MAX_PARTS);
  return needed > requested ? Math.ceil(needed / MiB) * MiB : requested;
}

/**
 * Uploads a local file to `key`, verifying on the way that its bytes are the ones recorded when it
 * was written. Resumes `resume` when that multipart upload still exists. See the module comment.
 */
export async function uploadFile(req: UploadRequest): Promise<UploadResult> {
  const { cloud, key } = req;
  const what = `upload of ${req.file} to ${s3Url(cloud, key)}`;
  if (!/^[0-9a-f]{64}$/.test(req.expectedSha256)) {
    throw new InvalidInputError(`${what}: expectedSha256 must be 64 lowercase hex digits, got ${JSON.stringify(req.expectedSha256)}`);
  }
  if (!Number.isSafeInteger(req.expectedBytes) || req.expectedBytes < 0) {
    throw new InvalidInputError(`${what}: expectedBytes must be a whole number of bytes, got ${req.expectedBytes}`);
  }
  if (req.partSize !== undefined && req.partSize < MIN_PART_SIZE) {
    throw new InvalidInputError(`${what}: partSize must be at least ${MIN_PART_SIZE} bytes (S3 minimum), got ${req.partSize}`);
  }
  if (req.queueSize !== undefined && (!Number.isInteger(req.queueSize) || req.queueSize < 1)) {
    throw new InvalidInputError(`${what}: queueSize must be a whole number of at least 1, got ${req.queueSize}`);
  }
  if (req.signal?.aborted) throw abortReason(req.signal);

  // Cheap early refusal when the file is gone or its size changed.
  try {
    const st = await stat(req.file);
    if (st.size !== req.expectedBytes) throw corrupted(req, `it now has ${st.size} bytes`);
  } catch (err) {
    if (err instanceof DrError) throw err;
    throw corrupted(req, `it cannot be read (${errorCode(err)})`);
  }

  const notes: string[] = [];
  // The shared client: filestores upload thousands of blobs, each must not pay a new connection.
  const client = clientFor(cloud);
  try {
    if (req.resume) {
      const resumed = await resumeUpload(client, req, notes);
      if (resumed) return resumed;
    }
    try {
      return await freshUpload(client, req, cloud.serverSideEncryption, notes);
    } catch (err) {
      if (cloud.serverSideEncryption && !req.signal?.aborted && isSseUnsupported(err)) {
        notes.push(
          `the server refused server-side encryption ${cloud.serverSideEncryption} as unsupported ` +
            `(${errorCode(err)}: ${errorMessage(err)}); uploaded again without it (the artifact itself is age-encrypted)`,
        );
        return await freshUpload(client, req, undefined, notes);
      }
      throw err;
    }
  } catch (err) {
    if (req.signal?.aborted) throw abortReason(req.signal);
    throw mapS3Error(err, cloud, what);
  }
}

/** A new upload through lib-storage (PUT when the file fits one part, multipart otherwise). Throws raw errors. */
async function freshUpload(
  client: S3Client,
  req: UploadRequest,
  sse: CloudSettings['serverSideEncryption'],
  notes: string[],
): Promise<UploadResult> {
  const { cloud, key } = req;
  const requested = req.partSize ?? DEFAULT_PART_SIZE;
  const partSize = effectivePartSize(requested, req.expectedBytes);
  if (partSize !== requested) {
    notes.push(`part size raised from ${requested} to ${partSize} bytes to stay within ${MAX_PARTS} parts`);
  }
  const queueSize = req.queueSize ?? DEFAULT_QUEUE_SIZE;

  const started = Date.now();
  const source = createReadStream(req.file, { highWaterMark: MiB });
  const hasher = new VerifyingHasher(req, partSize);
  // Errors of either stream destroy the other and surface through the uploader's reads.
  const body = pipelineCallback(source, hasher, () => undefined);
  const controller = new AbortController();
  const upload = new Upload({
    client,
    params: {
      Bucket: cloud.bucket,
      Key: key,
      Body: body,
      ContentLength: req.expectedBytes,
      ContentType: req.contentType ?? 'application/octet-stream',
      Metadata: { ...req.metadata, [SHA256_METADATA_KEY]: req.expectedSha256 },
      ChecksumAlgorithm: 'SHA256',
      ...(sse ? { ServerSideEncryption: sse } : {}),
    },
    partSize,
    queueSize,
    // Parts are kept on abort (a retry resumes them); on any other failure they are aborted below.
    leavePartsOnError: true,
    abortController: controller,
  });
  const partsDone = new Set<number>();
  upload.on('httpUploadProgress', (p) => {
    // In Node, lib-storage reports a multipart part once it is on the server.
    if (upload.uploadId === undefined || p.part === undefined) return;
    partsDone.add(p.part);
    req.onProgress?.(progressOf(upload.uploadId, key, partSize, req.expectedBytes, partsDone));
  });
  // Stop reading and starting parts; done() rejects at once. Parts already in flight (at most
  // queueSize) finish in the background and are reused by the resume.
  const onAbort = () => {
    controller.abort();
    body.destroy();
  };
  req.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    let out;
    try {
      out = await upload.done();
    } catch (err) {
      if (req.signal?.aborted) throw abortReason(req.signal);
      if (upload.uploadId !== undefined) await abortMultipart(client, cloud, key, upload.uploadId, err);
      if (req.expectedBytes > partSize) await abortLostUploads(client, cloud, key, started, undefined);
      throw err;
    }
    // Ours is complete: any other upload of this key (a failed attempt whose abort did not reach a
    // stopped server, a superseded attempt still sending parts) can only leave parts or overwrite it.
    if (upload.uploadId !== undefined) await abortLostUploads(client, cloud, key, started, upload.uploadId, { all: true });
    const multipart = upload.uploadId !== undefined;
    const expectedChecksum = multipart ? compositeSha256(hasher.partDigests) : sha256Base64(req.expectedSha256);
    const s3Checksum = out.ChecksumSHA256;
    await checkServerChecksum(client, req, s3Checksum, expectedChecksum, notes);
    return {
      key,
      bytes: hasher.bytes,
      sha256: hasher.sha256 ?? req.expectedSha256,
      s3Checksum,
      resumed: false,
      partsReused: 0,
      uploadId: upload.uploadId,
      serverSideEncryption: confirmSse(out.ServerSideEncryption, sse, notes),
      notes,
    };
  } finally {
    req.signal?.removeEventListener('abort', onAbort);
  }
}

function confirmSse(reported: string | undefined, requested: string | undefined, notes: string[]): string | undefined {
  if (requested && !reported) {
    notes.push(
      `server-side encryption ${requested} was requested but the server did not confirm it ` +
        '(some S3-compatible servers, versitygw among them, accept the header and ignore it)',
    );
  }
  return reported;
}

/** Compares the server's object checksum with ours; a mismatch deletes the object. */
async function checkServerChecksum(
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
    `the server's checksum of ${s3Url(req.cloud, req.key)} is ${s3Checksum} but the bytes sent from ${req.file} give ${expected}; ` +
      'the object was deleted',
  );
}

/**
 * Multipart uploads of `key` this upload created without knowing it: when the answer to a
 * CreateMultipartUpload is lost (the connection reset after the server created the upload), the
 * SDK asks again and the first upload is never used. They are the uploads of the same key,
 * initiated since this one started (5 minutes of clock skew allowed), other than `keep`, holding no
 * part; they are aborted now instead of waiting for abortStaleUploads. With `all` (this upload
 * completed): every other upload of the key, whatever it holds. Best effort.
 */
async function abortLostUploads(client: S3Client, cloud: CloudSettings, key: string, since: number, keep: string | undefined, opts: { all?: boolean } = {}): Promise<void> {
  try {
    const page = await client.send(new ListMultipartUploadsCommand({ Bucket: cloud.bucket, Prefix: key }));
    for (const u of page.Uploads ?? []) {
      if (u.Key !== key || u.UploadId === undefined || u.UploadId === keep) continue;
      if (opts.all) {
        await abortMultipart(client, cloud, key, u.UploadId);
        continue;
      }
      if (u.Initiated !== undefined && u.Initiated.getTime() < since - 5 * 60_000) continue;
      const parts = await client.send(new ListPartsCommand({ Bucket: cloud.bucket, Key: key, UploadId: u.UploadId, MaxParts: 1 }));
      if ((parts.Parts ?? []).length === 0) await abortMultipart(client, cloud, key, u.UploadId);
    }
  } catch {
    // Left for abortStaleUploads (retention).
  }
}

async function abortMultipart(client: S3Client, cloud: CloudSettings, key: string, uploadId: string, cause?: unknown): Promise<void> {
  try {
    await client.send(new AbortMultipartUploadCommand({ Bucket: cloud.bucket, Key: key, UploadId: uploadId }));
  } catch (err) {
    if (errorCode(err) === 'NoSuchUpload') return;
    // Keep the original failure; say that parts may be left for abortStaleUploads.
    if (cause instanceof Error) {
      cause.message += ` (and aborting multipart upload ${uploadId} failed: ${errorCode(err)}; abortStaleUploads will remove it)`;
    }
  }
}

async function listAllParts(client: S3Client, cloud: CloudSettings, key: string, uploadId: string): Promise<Map<number, Part>> {
  const parts = new Map<number, Part>();
  let marker: string | undefined;
  for (;;) {
    const page = await client.send(
      new ListPartsCommand({ Bucket: cloud.bucket, Key: key, UploadId: uploadId, PartNumberMarker: marker }),
    );
    for (const p of page.Parts ?? []) if (p.PartNumber !== undefined) parts.set(p.PartNumber, p);
    if (!page.IsTruncated || !page.NextPartNumberMarker || page.NextPartNumberMarker === marker) break;
    marker = page.NextPartNumberMarker;
  }
  return parts;
}

function etagIsMd5Of(etag: string | undefined, md5hex: string): boolean {
  return etag !== undefined && etag.replace(/"/g, '').toLowerCase() === md5hex;
}

/**
 * Continues `req.resume` with client-s3 (lib-storage cannot continue an existing upload id):
 * re-reads the whole file in the same parts, reuses the parts the server has with the right size
 * and checksum, uploads the others, compares the whole-file SHA-256 and completes. Returns null
 * when the upload no longer exists (the caller starts over). Throws raw errors.
 */
async function resumeUpload(client: S3Client, req: UploadRequest, notes: string[]): Promise<UploadResult | null> {
  const resume = req.resume!;
  const { cloud, key } = req;
  if (resume.key !== key || !resume.uploadId || resume.partSize < MIN_PART_SIZE) {
    notes.push(`resume information ignored (it is for ${s3Url(cloud, resume.key)}, upload ${resume.uploadId}); started over`);
    return null;
  }
  const { uploadId, partSize } = resume;
  let existing: Map<number, Part>;
  try {
    existing = await listAllParts(client, cloud, key, uploadId);
  } catch (err) {
    if (errorCode(err) !== 'NoSuchUpload') throw err;
    // Completed by the attempt that crashed (only verified bytes are ever completed), or aborted.
    const head = await headObject(cloud, key);
    if (head && head.bytes === req.expectedBytes && head.sha256 === req.expectedSha256) {
      notes.push(`multipart upload ${uploadId} was already completed by an earlier attempt; nothing sent`);
      return {
        key,
        bytes: req.expectedBytes,
        sha256: req.expectedSha256,
        s3Checksum: head.s3Checksum,
        resumed: true,
        partsReused: 0,
        uploadId,
        serverSideEncryption: head.serverSideEncryption,
        notes,
      };
    }
    notes.push(`multipart upload ${uploadId} no longer exists; started over`);
    return null;
  }

  const total = req.expectedBytes;
  const nParts = partCount(total, partSize);
  const queueSize = req.queueSize ?? DEFAULT_QUEUE_SIZE;
  const whole = createHash('sha256');
  const digests: Buffer[] = [];
  const completed = new Map<number, CompletedPart>();
  let reused = 0;
  const inflight = new Set<Promise<void>>();
  let failure: unknown;
  const report = () => req.onProgress?.(progressOf(uploadId, key, partSize, total, completed.keys()));
  const stop = new AbortController();
  const onAbort = () => stop.abort(req.signal?.reason);
  req.signal?.addEventListener('abort', onAbort, { once: true });

  const fh = await open(req.file, 'r');
  try {
    for (let n = 1; n <= nParts && failure === undefined && !stop.signal.aborted; n++) {
      const len = partLength(n, partSize, total);
      const buf = Buffer.allocUnsafe(len);
      let got = 0;
      while (got < len) {
        const { bytesRead } = await fh.read(buf, got, len - got, (n - 1) * partSize + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      if (got < len) {
        failure = corrupted(req, `it ended after ${(n - 1) * partSize + got} bytes`);
        break;
      }
      whole.update(buf);
      const digest = createHash('sha256').update(buf).digest();
      digests.push(digest);
      const checksum = digest.toString('base64');
      const have = existing.get(n);
      const reusable =
        have !== undefined &&
        have.Size === len &&
        (have.ChecksumSHA256 !== undefined
          ? have.ChecksumSHA256 === checksum
          : etagIsMd5Of(have.ETag, createHash('md5').update(buf).digest('hex')));
      if (reusable) {
        completed.set(n, { PartNumber: n, ETag: have.ETag, ChecksumSHA256: have.ChecksumSHA256 });
        reused++;
        report();
        continue;
      }
      if (have !== undefined) notes.push(`part ${n} on the server did not match the file (size or checksum); sent again`);
      while (inflight.size >= queueSize) await Promise.race(inflight);
      if (failure !== undefined || stop.signal.aborted) break;
      const task = client
        .send(
          new UploadPartCommand({
            Bucket: cloud.bucket,
            Key: key,
            UploadId: uploadId,
            PartNumber: n,
            Body: buf,
            ContentLength: len,
            ChecksumAlgorithm: 'SHA256',
            ChecksumSHA256: checksum,
          }),
          { abortSignal: stop.signal },
        )
        .then((out) => {
          completed.set(n, { PartNumber: n, ETag: out.ETag, ChecksumSHA256: out.ChecksumSHA256 ?? undefined });
          report();
        })
        .catch((err: unknown) => {
          failure ??= err;
        })
        .finally(() => inflight.delete(task));
      inflight.add(task);
    }
    if (failure === undefined && !stop.signal.aborted) {
      const { bytesRead } = await fh.read(Buffer.alloc(1), 0, 1, total);
      if (bytesRead > 0) failure = corrupted(req, `it has more than ${total} bytes`);
    }
    await Promise.all(inflight);
  } finally {
    await fh.close();
    req.signal?.removeEventListener('abort', onAbort);
  }

  if (req.signal?.aborted) throw abortReason(req.signal); // keep the parts, as a crash would
  const sha256 = whole.digest('hex');
  if (failure === undefined && sha256 !== req.expectedSha256) failure = corrupted(req, `read ${total} bytes with sha256 ${sha256}`);
  if (failure !== undefined) {
    await abortMultipart(client, cloud, key, uploadId, failure);
    throw failure instanceof Error ? failure : new Error(errorMessage(failure));
  }

  const parts = [...completed.values()].sort((a, b) => a.PartNumber! - b.PartNumber!);
  let out;
  try {
    out = await client.send(
      new CompleteMultipartUploadCommand({ Bucket: cloud.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }),
      { abortSignal: req.signal },
    );
  } catch (err) {
    if (req.signal?.aborted) throw abortReason(req.signal);
    await abortMultipart(client, cloud, key, uploadId, err);
    throw err;
  }
  const s3Checksum = out.ChecksumSHA256;
  await checkServerChecksum(client, req, s3Checksum, compositeSha256(digests), notes);
  return {
    key,
    bytes: total,
    sha256,
    s3Checksum,
    resumed: true,
    partsReused: reused,
    uploadId,
    serverSideEncryption: confirmSse(out.ServerSideEncryption, undefined, notes),
    notes,
  };
}

/** Discards a multipart upload (e.g. when the activity is cancelled for good, not retried). */
export async function abortUpload(cloud: CloudSettings, key: string, uploadId: string): Promise<void> {
  try {
    await clientFor(cloud).send(new AbortMultipartUploadCommand({ Bucket: cloud.bucket, Key: key, UploadId: uploadId }));
  } catch (err) {
    if (errorCode(err) === 'NoSuchUpload') return;
    throw mapS3Error(err, cloud, `abort of multipart upload ${uploadId} of ${s3Url(cloud, key)}`);
  }
}

// ------------------------------------------------------------------------------------------------
// Reading

export interface ObjectInfo {
  bytes: number;
  /** `x-amz-meta-sha256` written by uploadFile (hex), if present. */
  sha256: string | undefined;
  /** The server's SHA-256 checksum (base64; `…-N` composite for multipart), if it keeps one. */
  s3Checksum: string | undefined;
  lastModified: Date | undefined;
  serverSideEncryption: string | undefined;
}

/**
 * Size and checksums of an object, or null when it does not exist. A bare 404 to HEAD is confirmed
 * once per client by a listing, because some servers (versitygw) also answer an unknown access key
 * with a bodiless 404 to HEAD, which must not read as "absent".
 */
export async function headObject(cloud: CloudSettings, key: string): Promise<ObjectInfo | null> {
  const client = clientFor(cloud);
  const what = `HEAD of ${s3Url(cloud, key)}`;
  try {
    const out = await client.send(new HeadObjectCommand({ Bucket: cloud.bucket, Key: key, ChecksumMode: 'ENABLED' }));
    return {
      bytes: out.ContentLength ?? 0,
      sha256: out.Metadata?.[SHA256_METADATA_KEY],
      s3Checksum: out.ChecksumSHA256,
      lastModified: out.LastModified,
      serverSideEncryption: out.ServerSideEncryption,
    };
  } catch (err) {
    const code = errorCode(err);
    if (code !== 'NotFound' && code !== 'NoSuchKey' && httpStatus(err) !== 404) throw mapS3Error(err, cloud, what);
    if (code === 'NoSuchBucket') throw mapS3Error(err, cloud, what);
    if (!accessConfirmed.has(client)) {
      try {
        await client.send(new ListObjectsV2Command({ Bucket: cloud.bucket, Prefix: key, MaxKeys: 1 }));
      } catch (listErr) {
        throw mapS3Error(listErr, cloud, what);
      }
      accessConfirmed.add(client);
    }
    return null;
  }
}

/**
 * Checks the cloud copy against the manifest: size from HEAD; content from `x-amz-meta-sha256`
 * (written only for uploads whose bytes were verified) and the server's SHA-256 checksum (a full
 * object checksum is compared with `expect.sha256`; a composite one cannot be, without the local
 * parts). `deep` downloads and hashes the object (no disk). `ok` is false when the content could
 * not be checked at all. Auth, bucket and availability problems throw.
 */
export async function verifyObject(
  cloud: CloudSettings,
  key: string,
  expect: { bytes: number; sha256: string },
  opts: { deep?: boolean; signal?: AbortSignal } = {},
): Promise<{ ok: boolean; bytes: number | undefined; message: string }> {
  const url = s3Url(cloud, key);
  const head = await headObject(cloud, key);
  if (!head) return { ok: false, bytes: undefined, message: `${url} is missing` };
  if (head.bytes !== expect.bytes) {
    return { ok: false, bytes: head.bytes, message: `${url} has ${head.bytes} bytes, expected ${expect.bytes}` };
  }
  const checked: string[] = [`size ${head.bytes}`];
  if (head.sha256 !== undefined) {
    if (head.sha256 !== expect.sha256) {
      return { ok: false, bytes: head.bytes, message: `${url} was uploaded with sha256 ${head.sha256}, expected ${expect.sha256}` };
    }
    checked.push('x-amz-meta-sha256');
  }
  if (head.s3Checksum !== undefined) {
    if (!head.s3Checksum.includes('-')) {
      if (head.s3Checksum !== sha256Base64(expect.sha256)) {
        return {
          ok: false,
          bytes: head.bytes,
          message: `${url} has server checksum ${head.s3Checksum}, expected ${sha256Base64(expect.sha256)} (sha256 ${expect.sha256})`,
        };
      }
      checked.push('server SHA-256 checksum');
    } else {
      checked.push(`server composite checksum present (${head.s3Checksum}; matched the parts at upload)`);
    }
  }
  if (opts.deep) {
    const got = await hashObject(cloud, key, opts.signal);
    if (got.bytes !== expect.bytes || got.sha256 !== expect.sha256) {
      return {
        ok: false,
        bytes: head.bytes,
        message: `${url} content is ${got.bytes} bytes with sha256 ${got.sha256}, expected ${expect.bytes} bytes with sha256 ${expect.sha256}`,
      };
    }
    checked.push('content downloaded and hashed');
  }
  const contentChecked = head.sha256 !== undefined || (head.s3Checksum !== undefined && !head.s3Checksum.includes('-')) || opts.deep;
  if (!contentChecked) {
    return {
      ok: false,
      bytes: head.bytes,
      message: `${url} has the right size but neither sha256 metadata nor a full-object checksum; verify it with deep: true`,
    };
  }
  return { ok: true, bytes: head.bytes, message: `${url} verified: ${checked.join(', ')}` };
}

/** Failures in a row, without a byte of progress between them, after which a download gives up. */
const DOWNLOAD_ATTEMPTS = 5;

function isMissingObject(err: unknown): boolean {
  return errorCode(err) === 'NoSuchKey' || (httpStatus(err) === 404 && errorCode(err) !== 'NoSuchBucket');
}

/**
 * Reads an object from its start to its end, handing each chunk and its offset to `sink`, and
 * hashes what it read (SHA-256). A body cut short (connection reset or closed before its
 * Content-Length; the SDK retries only the requests themselves) is retried with a backoff and
 * continues where it stopped (`Range: bytes=<received>-`, `If-Match` the
 * first response's ETag, so every byte comes from one version of the object); it gives up after
 * DOWNLOAD_ATTEMPTS failures in a row without progress. A server that ignores the range sends the
 * whole object again: `restart` is called and the sink gets it from offset 0. `first` sees the size
 * announced by the first response (and may refuse it by throwing). Errors come out as raised
 * (callers map them); with `missingOk`, a missing object gives undefined.
 *
 * The body is read as soon as the SDK returns it, before anything is awaited: an error it emitted
 * before it had a reader would be an unhandled 'error' event, which ends the process.
 */
async function streamObject(
  cloud: CloudSettings,
  key: string,
  what: string,
  opts: {
    signal?: AbortSignal;
    sink: (chunk: Buffer, offset: number) => Promise<void> | void;
    first?: (announcedBytes: number | undefined) => void;
    restart?: () => Promise<void> | void;
    /** Ask the server for the object's checksum and let the SDK check it (whole-object reads only). */
    verifyChecksum?: boolean;
    missingOk?: boolean;
  },
): Promise<{ bytes: number; sha256: string } | undefined> {
  const { signal } = opts;
  const client = clientFor(cloud);
  let hash = createHash('sha256');
  let received = 0;
  let etag: string | undefined;
  let failures = 0;
  let body: Readable | undefined;
  const onAbort = () => body?.destroy(abortReason(signal!));
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      if (signal?.aborted) throw abortReason(signal);
      const before = received;
      body = undefined;
      try {
        const resume = received > 0 ? { Range: `bytes=${received}-`, ...(etag ? { IfMatch: etag } : {}) } : undefined;
        const out = await client.send(
          new GetObjectCommand({
            Bucket: cloud.bucket,
            Key: key,
            // The object's checksum covers the whole object, never a range of it.
            ...(resume ?? (opts.verifyChecksum ? { ChecksumMode: 'ENABLED' as const } : {})),
          }),
          { abortSignal: signal },
        );
        if (!(out.Body instanceof Readable)) throw new Error(`${what}: the SDK returned no Node stream`);
        body = out.Body;
        // Reading starts at once; `next` is awaited below (the catch only marks it as handled).
        const reading = body[Symbol.asyncIterator]();
        let next = reading.next();
        next.catch(() => undefined);
        if (!resume) {
          etag = out.ETag;
          opts.first?.(out.ContentLength);
        } else if (!out.ContentRange?.startsWith(`bytes ${received}-`)) {
          // The range was ignored: this is the whole object again.
          hash = createHash('sha256');
          received = 0;
          await opts.restart?.();
        }
        for (let r = await next; !r.done; r = await (next = reading.next())) {
          const chunk = r.value as Buffer;
          await opts.sink(chunk, received);
          hash.update(chunk);
          received += chunk.length;
        }
        return { bytes: received, sha256: hash.digest('hex') };
      } catch (err) {
        body?.destroy();
        if (signal?.aborted) throw abortReason(signal);
        if (opts.missingOk && received === 0 && isMissingObject(err)) return undefined;
        failures = received > before ? 1 : failures + 1;
        // A refused request was retried by the SDK already; a body cut short never is.
        if (body === undefined || !(mapS3Error(err, cloud, what) instanceof CloudUnavailableError) || failures >= DOWNLOAD_ATTEMPTS) throw err;
        await sleep(Math.min(250 * 2 ** (failures - 1), 4_000), undefined, signal ? { signal } : {}).catch(() => {
          throw abortReason(signal!);
        });
      }
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

async function hashObject(cloud: CloudSettings, key: string, signal: AbortSignal | undefined): Promise<{ bytes: number; sha256: string }> {
  const what = `verification download of ${s3Url(cloud, key)}`;
  try {
    // Only the hash matters: nothing is kept.
    return (await streamObject(cloud, key, what, { ...(signal ? { signal } : {}), sink: () => undefined, verifyChecksum: true }))!;
  } catch (err) {
    if (signal?.aborted) throw abortReason(signal);
    throw mapS3Error(err, cloud, what);
  }
}

/**
 * Lists the objects under a key prefix (a full key prefix: use cloudKey), in key order, page by
 * page: `pageSize` (alias `maxKeys`, S3's name) keys per request, default 1000. It is the size of
 * each request, not a limit on what is listed: stop iterating to stop listing.
 */
export async function* listObjects(
  cloud: CloudSettings,
  prefix: string,
  opts: { pageSize?: number; maxKeys?: number } = {},
): AsyncIterable<{ key: string; bytes: number; lastModified: Date | undefined }> {
  const client = clientFor(cloud);
  const pageSize = opts.pageSize ?? opts.maxKeys;
  let token: string | undefined;
  do {
    let page;
    try {
      page = await client.send(
        new ListObjectsV2Command({ Bucket: cloud.bucket, Prefix: prefix, ContinuationToken: token, MaxKeys: pageSize }),
      );
    } catch (err) {
      throw mapS3Error(err, cloud, `listing of ${s3Url(cloud, prefix)}`);
    }
    for (const o of page.Contents ?? []) {
      if (o.Key !== undefined) yield { key: o.Key, bytes: o.Size ?? 0, lastModified: o.LastModified };
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
}

/**
 * Downloads an object to `dest`: streams to `dest.partial` (mode 0600), fsyncs, checks size and
 * SHA-256 when expected values are given, renames and fsyncs the folder. A body cut short or a 5xx
 * is retried from where it stopped (see streamObject). On any failure the partial file is removed.
 * A full disk throws DiskFullError; a mismatch ArtifactCorruptedError.
 */
export async function downloadFile(
  cloud: CloudSettings,
  key: string,
  dest: string,
  opts: { signal?: AbortSignal; expectedBytes?: number; expectedSha256?: string } = {},
): Promise<{ bytes: number; sha256: string }> {
  const url = s3Url(cloud, key);
  const what = `download of ${url} to ${dest}`;
  const partial = `${dest}.partial`;
  const { signal } = opts;
  if (signal?.aborted) throw abortReason(signal);
  await mkdir(path.dirname(dest), { recursive: true });
  let file: FileHandle | undefined;
  try {
    await rm(partial, { force: true }); // a stale one from a crashed attempt (never follow it)
    const fh = (file = await open(partial, 'wx', 0o600));
    const got = (await streamObject(cloud, key, what, {
      ...(signal ? { signal } : {}),
      verifyChecksum: true,
      first: (announced) => {
        if (opts.expectedBytes !== undefined && announced !== undefined && announced !== opts.expectedBytes) {
          throw new ArtifactCorruptedError(`${url} has ${announced} bytes, expected ${opts.expectedBytes}; not downloaded`);
        }
      },
      sink: async (chunk, offset) => {
        for (let done = 0; done < chunk.length; ) done += (await fh.write(chunk, done, chunk.length - done, offset + done)).bytesWritten;
      },
      restart: () => fh.truncate(0),
    }))!;
    await fh.sync();
    file = undefined;
    await fh.close();
    if (opts.expectedBytes !== undefined && got.bytes !== opts.expectedBytes) {
      throw new ArtifactCorruptedError(`${url} gave ${got.bytes} bytes, expected ${opts.expectedBytes}; download discarded`);
    }
    if (opts.expectedSha256 !== undefined && got.sha256 !== opts.expectedSha256) {
      throw new ArtifactCorruptedError(`${url} has sha256 ${got.sha256}, expected ${opts.expectedSha256}; download discarded`);
    }
    await rename(partial, dest);
    await syncDir(path.dirname(dest));
    return got;
  } catch (err) {
    await file?.close().catch(() => undefined);
    await rm(partial, { force: true }).catch(() => undefined);
    if (signal?.aborted) throw abortReason(signal);
    throw mapS3Error(err, cloud, what);
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch {
    // Some file systems refuse fsync on directories; the rename is still atomic.
  } finally {
    await fh.close();
  }
}

// ------------------------------------------------------------------------------------------------
// Deleting

/** Deletes keys (1000 per request); keys that do not exist are not an error. */
export async function deleteObjects(cloud: CloudSettings, keys: string[]): Promise<void> {
  const client = clientFor(cloud);
  for (let i = 0; i < keys.length; i += 1000) {
    const batch = keys.slice(i, i + 1000);
    const what = `deletion of ${batch.length} object(s) under ${s3Url(cloud, '')}`;
    let out;
    try {
      out = await client.send(
        new DeleteObjectsCommand({ Bucket: cloud.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
      );
    } catch (err) {
      throw mapS3Error(err, cloud, what);
    }
    const failed = (out.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
    if (failed.length) {
      const first = failed[0]!;
      throw mapS3Error(
        { name: first.Code ?? 'Error', message: first.Message ?? '' },
        cloud,
        `deletion of ${failed.length} object(s) (first: ${s3Url(cloud, first.Key ?? '?')})`,
      );
    }
  }
}

/** Aborts the multipart uploads under `prefix` started more than `olderThanMs` ago; returns how many. */
export async function abortStaleUploads(cloud: CloudSettings, prefix: string, olderThanMs: number): Promise<number> {
  const client = clientFor(cloud);
  const cutoff = Date.now() - olderThanMs;
  const what = `clean-up of abandoned multipart uploads under ${s3Url(cloud, prefix)}`;
  const stale: Array<{ key: string; uploadId: string }> = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  try {
    for (;;) {
      const page = await client.send(
        new ListMultipartUploadsCommand({ Bucket: cloud.bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
      );
      for (const u of page.Uploads ?? []) {
        if (u.Key === undefined || u.UploadId === undefined) continue;
        if (u.Initiated === undefined || u.Initiated.getTime() <= cutoff) stale.push({ key: u.Key, uploadId: u.UploadId });
      }
      if (!page.IsTruncated || (!page.NextKeyMarker && !page.NextUploadIdMarker)) break;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
    let aborted = 0;
    for (const u of stale) {
      try {
        await client.send(new AbortMultipartUploadCommand({ Bucket: cloud.bucket, Key: u.key, UploadId: u.uploadId }));
        aborted++;
      } catch (err) {
        if (errorCode(err) !== 'NoSuchUpload') throw err;
      }
    }
    return aborted;
  } catch (err) {
    throw mapS3Error(err, cloud, what);
  }
}

// ------------------------------------------------------------------------------------------------
// Small documents (validation results, tenant entries): one request each, checksummed.

/** Puts a small object in one request, with the server checking its SHA-256 and `x-amz-meta-sha256` set. */
export async function putSmallObject(cloud: CloudSettings, key: string, body: Buffer, contentType = 'application/json'): Promise<void> {
  const sha256 = createHash('sha256').update(body).digest('hex');
  try {
    await clientFor(cloud).send(
      new PutObjectCommand({
        Bucket: cloud.bucket,
        Key: key,
        Body: body,
        ContentType: contentType,
        ChecksumSHA256: sha256Base64(sha256),
        Metadata: { [SHA256_METADATA_KEY]: sha256 },
        ...(cloud.serverSideEncryption ? { ServerSideEncryption: cloud.serverSideEncryption } : {}),
      }),
    );
  } catch (err) {
    throw mapS3Error(err, cloud, `upload of ${s3Url(cloud, key)}`);
  }
}

/** Reads a small object whole (refused above `maxBytes`); undefined when it does not exist. A cut-short read is retried (see streamObject). */
export async function getSmallObject(cloud: CloudSettings, key: string, maxBytes = 16 * MiB, signal?: AbortSignal): Promise<Buffer | undefined> {
  const what = `download of ${s3Url(cloud, key)}`;
  let chunks: Buffer[] = [];
  let got;
  try {
    got = await streamObject(cloud, key, what, {
      ...(signal ? { signal } : {}),
      missingOk: true,
      first: (announced) => {
        if ((announced ?? 0) > maxBytes) throw new ArtifactCorruptedError(`${s3Url(cloud, key)} has ${announced} bytes, more than the ${maxBytes} expected at most`);
      },
      sink: (chunk, offset) => {
        if (offset + chunk.length > maxBytes) throw new ArtifactCorruptedError(`${s3Url(cloud, key)} is larger than the ${maxBytes} bytes expected at most`);
        chunks.push(chunk);
      },
      restart: () => {
        chunks = [];
      },
    });
  } catch (err) {
    throw mapS3Error(err, cloud, what);
  }
  return got === undefined ? undefined : Buffer.concat(chunks);
}

/** The "folders" directly under a key prefix (S3 common prefixes with delimiter '/'), names only. */
export async function listFolders(cloud: CloudSettings, prefix: string): Promise<string[]> {
  const client = clientFor(cloud);
  const out: string[] = [];
  let token: string | undefined;
  do {
    let page;
    try {
      page = await client.send(new ListObjectsV2Command({ Bucket: cloud.bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }));
    } catch (err) {
      throw mapS3Error(err, cloud, `listing of ${s3Url(cloud, prefix)}`);
    }
    for (const p of page.CommonPrefixes ?? []) if (p.Prefix) out.push(p.Prefix.slice(prefix.length).replace(/\/$/, ''));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}
