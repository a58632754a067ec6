/**
 * The S3 client: one per settings object, with its retry and timeout policy and the process-wide
 * bandwidth limit; keys under the configured prefix.
 *
 * Bandwidth: `cloud.bandwidthLimit` (bytes/s) is enforced by a token bucket on the request bodies as
 * they go onto the wire (PUT and UploadPart), shared by every upload of this process with the same
 * limit, so parallel tenant backups together stay under it. Downloads are not throttled.
 */
import { performance } from 'node:perf_hooks';
import { pipeline as pipelineCallback, Readable, Transform } from 'node:stream';
import { S3Client } from '@aws-sdk/client-s3';
import type { DrConfig } from '../../config';
import { InvalidInputError } from '../../errors';

// The SDK's "Node 20 will not be supported by releases after …" notice is noise for operators.
// It is emitted when the first client is constructed, which is after this line.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export type CloudSettings = NonNullable<DrConfig['cloud']>;

export const MiB = 1024 * 1024;

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

/** A request body (the bytes of a PUT or a part, whole or streamed) paced by the token bucket. */
function throttledBody(body: Uint8Array | Readable, bucket: TokenBucket): Readable {
  const source = body instanceof Readable ? body : Readable.from([Buffer.from(body.buffer, body.byteOffset, body.byteLength)]);
  const slice = Math.min(64 * 1024, bucket.capacity);
  let timer: NodeJS.Timeout | undefined;
  const paced = new Transform({
    highWaterMark: slice,
    transform(chunk: Buffer, _encoding, callback) {
      let offset = 0;
      const sendRest = () => {
        while (offset < chunk.byteLength) {
          const piece = chunk.subarray(offset, offset + Math.min(slice, chunk.byteLength - offset));
          offset += piece.byteLength;
          const wait = bucket.reserve(piece.byteLength);
          if (wait > 0) {
            timer = setTimeout(() => {
              timer = undefined;
              this.push(piece);
              sendRest();
            }, wait);
            return;
          }
          this.push(piece);
        }
        callback();
      };
      sendRest();
    },
    destroy(err, callback) {
      if (timer) clearTimeout(timer);
      callback(err);
    },
  });
  // A failing source fails the paced body (and a destroyed one stops the source).
  pipelineCallback(source, paced, () => undefined);
  return paced;
}

/**
 * A request body that each attempt of the request reads afresh, from `open()`. The SDK retries
 * buffer bodies but never a stream (it cannot rewind one): a PUT streamed from a file passes one
 * of these instead, so a failed attempt is retried like any other (see createS3Client).
 */
export class ReopenableBody {
  constructor(readonly open: () => Readable) {}
}

/** `request` with another body; the original is not mutated, so every attempt starts from it. */
function withBody<R extends object>(request: R, body: unknown): R {
  const copy: R = Object.create(Object.getPrototypeOf(request) as object) as R;
  return Object.assign(copy, request, { body });
}

/**
 * An S3 client for the configured endpoint: path-style when configured, static credentials when
 * both keys are set (else the SDK's default chain), 5 attempts with the standard retry strategy,
 * a 10 s connection timeout and a 120 s idle-socket timeout (no total-request cap: a throttled
 * upload of a large part may legitimately take minutes). A ReopenableBody is opened afresh by each
 * attempt. With `bandwidthLimit`, request bodies are paced by a token bucket shared by all clients
 * of the process with the same limit.
 */
export function createS3Client(cloud: CloudSettings): S3Client {
  const credentials = cloud.accessKeyId && cloud.secretAccessKey ? { accessKeyId: cloud.accessKeyId, secretAccessKey: cloud.secretAccessKey } : undefined;
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
  // Per attempt (the deserialize step runs inside the retry loop): a reopenable body is opened
  // here, and the stream is destroyed once the attempt is over (read to its end or not).
  client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { body?: unknown } | undefined;
      if (!request || !(request.body instanceof ReopenableBody)) return next(args);
      const body = request.body.open();
      try {
        return await next({ ...args, request: withBody(request, body) });
      } finally {
        body.destroy();
      }
    },
    { step: 'deserialize', priority: 'high', name: 'odooDrReopenableBody' },
  );
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
        const body = request?.body;
        if (request && ((body instanceof Uint8Array && body.byteLength > 0) || body instanceof Readable)) {
          return next({ ...args, request: withBody(request, throttledBody(body, paced)) });
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
/** Per client, the listing that proves its credentials and bucket good (see headObject). */
export const accessConfirmations = new WeakMap<S3Client, Promise<unknown>>();

export function clientFor(cloud: CloudSettings): S3Client {
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

export function s3Url(cloud: CloudSettings, key: string): string {
  return `s3://${cloud.bucket}/${key}`;
}

export function describeService(cloud: CloudSettings): string {
  return `endpoint ${cloud.endpoint ?? `AWS S3 (${cloud.region})`}, bucket ${cloud.bucket}`;
}
