/**
 * Reading the bucket: HEAD and verification against a manifest, streamed downloads that resume a
 * body cut short, small documents read whole, and listings.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { ArtifactCorruptedError, CloudUnavailableError } from '../../errors';
import { accessConfirmations, clientFor, MiB, s3Url, type CloudSettings } from './client';
import { abortReason, errorCode, httpStatus, isMissingObject, mapS3Error } from './errors';
import { sha256Base64, SHA256_METADATA_KEY } from './parts';

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
 * once per client by a listing (concurrent HEADs share it), because some servers (versitygw) also answer an unknown access key
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
    // One listing per client, shared by the HEADs that wait for it (a failed one is tried again next time).
    let confirmation = accessConfirmations.get(client);
    if (!confirmation) {
      const listing = client.send(new ListObjectsV2Command({ Bucket: cloud.bucket, Prefix: key, MaxKeys: 1 }));
      accessConfirmations.set(client, (confirmation = listing));
      listing.catch(() => {
        if (accessConfirmations.get(client) === listing) accessConfirmations.delete(client);
      });
    }
    try {
      await confirmation;
    } catch (listErr) {
      throw mapS3Error(listErr, cloud, what);
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
      page = await client.send(new ListObjectsV2Command({ Bucket: cloud.bucket, Prefix: prefix, ContinuationToken: token, MaxKeys: pageSize }));
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
        for (let done = 0; done < chunk.length;) done += (await fh.write(chunk, done, chunk.length - done, offset + done)).bytesWritten;
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
        if ((announced ?? 0) > maxBytes)
          throw new ArtifactCorruptedError(`${s3Url(cloud, key)} has ${announced} bytes, more than the ${maxBytes} expected at most`);
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
