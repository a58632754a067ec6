/**
 * Uploads: a verified file to a key (one PUT streamed from the file, or a multipart upload through
 * lib-storage, or the resume of an earlier attempt's), and small documents in one request.
 *
 * Every request carries an S3 SHA-256 checksum (`ChecksumAlgorithm: 'SHA256'`), so the server
 * verifies each part on receipt (BadDigest otherwise); the whole-file SHA-256 is stored as user
 * metadata `x-amz-meta-sha256`, so `verifyObject` can compare the cloud copy with a manifest
 * without the local file. See parts.ts for the checks on the bytes sent.
 *
 * Memory: a file that fits one part is streamed from disk (a few 1 MiB reads in flight); a multipart
 * upload holds at most `queueSize × partSize` bytes of the file (plus one part being read on the
 * resume path).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline as pipelineCallback, type Readable } from 'node:stream';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { DrError, InvalidInputError } from '../../errors';
import { clientFor, MiB, ReopenableBody, s3Url, type CloudSettings } from './client';
import { abortLostUploads, abortMultipart, discardUploads } from './delete';
import { abortReason, errorCode, errorMessage, isSseUnsupported, mapS3Error } from './errors';
import {
  checkServerChecksum,
  compositeSha256,
  confirmSse,
  corrupted,
  DEFAULT_PART_SIZE,
  DEFAULT_QUEUE_SIZE,
  effectivePartSize,
  MAX_PARTS,
  MIN_PART_SIZE,
  progressOf,
  sha256Base64,
  SHA256_METADATA_KEY,
  VerifyingHasher,
  type UploadRequest,
  type UploadResult,
} from './parts';
import { resumeUpload } from './resume';

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

/** A new upload: one PUT when the file fits one part, multipart through lib-storage otherwise. Throws raw errors. */
async function freshUpload(client: S3Client, req: UploadRequest, sse: CloudSettings['serverSideEncryption'], notes: string[]): Promise<UploadResult> {
  const requested = req.partSize ?? DEFAULT_PART_SIZE;
  const partSize = effectivePartSize(requested, req.expectedBytes);
  if (partSize !== requested) {
    notes.push(`part size raised from ${requested} to ${partSize} bytes to stay within ${MAX_PARTS} parts`);
  }
  return req.expectedBytes <= partSize ? await streamedPut(client, req, sse, notes) : await multipartUpload(client, req, partSize, sse, notes);
}

/**
 * One PUT whose body is read from the file as it goes onto the wire (lib-storage would first gather
 * the whole part in memory). Each attempt of the SDK's retries reads the file again through a
 * VerifyingHasher; the server checks the body against the recorded SHA-256 (x-amz-checksum-sha256)
 * and the hasher holds the last bytes back until the file matched it, so neither side can complete
 * an object from other bytes. Throws raw errors.
 */
async function streamedPut(client: S3Client, req: UploadRequest, sse: CloudSettings['serverSideEncryption'], notes: string[]): Promise<UploadResult> {
  const { cloud, key } = req;
  // The HTTP handler pipes the body and would wait for the rest of a body that failed: a refused
  // read stops the request (and its retries) through this signal.
  const refused = new AbortController();
  let lastRead: VerifyingHasher | undefined;
  const body = new ReopenableBody(() => {
    const hasher = new VerifyingHasher(req);
    hasher.once('error', (err) => refused.abort(err));
    lastRead = hasher;
    return pipelineCallback(createReadStream(req.file, { highWaterMark: MiB }), hasher, () => undefined);
  });
  let out;
  try {
    out = await client.send(
      new PutObjectCommand({
        Bucket: cloud.bucket,
        Key: key,
        // The SDK passes a streaming member's value through to the request: opened per attempt by the client.
        Body: body as unknown as Readable,
        ContentLength: req.expectedBytes,
        ContentType: req.contentType ?? 'application/octet-stream',
        Metadata: { ...req.metadata, [SHA256_METADATA_KEY]: req.expectedSha256 },
        ChecksumSHA256: sha256Base64(req.expectedSha256),
        ...(sse ? { ServerSideEncryption: sse } : {}),
      }),
      { abortSignal: req.signal ? AbortSignal.any([req.signal, refused.signal]) : refused.signal },
    );
  } catch (err) {
    if (req.signal?.aborted) throw abortReason(req.signal);
    if (refused.signal.aborted) throw refused.signal.reason;
    throw err;
  }
  if (lastRead?.sha256 !== req.expectedSha256) {
    // Only a server that completes an object short of its Content-Length could get here.
    throw corrupted(req, `the server answered before the file was read to its end (${lastRead?.bytes ?? 0} bytes read)`);
  }
  const s3Checksum = out.ChecksumSHA256;
  await checkServerChecksum(client, req, s3Checksum, sha256Base64(req.expectedSha256), notes);
  return {
    key,
    bytes: lastRead.bytes,
    sha256: lastRead.sha256,
    s3Checksum,
    resumed: false,
    partsReused: 0,
    uploadId: undefined,
    serverSideEncryption: confirmSse(out.ServerSideEncryption, sse, notes),
    notes,
  };
}

/** A multipart upload through lib-storage. Throws raw errors. */
async function multipartUpload(
  client: S3Client,
  req: UploadRequest,
  partSize: number,
  sse: CloudSettings['serverSideEncryption'],
  notes: string[],
): Promise<UploadResult> {
  const { cloud, key } = req;
  const queueSize = req.queueSize ?? DEFAULT_QUEUE_SIZE;

  const started = Date.now();
  const source = createReadStream(req.file, { highWaterMark: MiB });
  const hasher = new VerifyingHasher(req, partSize);
  // Errors of either stream destroy the other and surface through the uploader's reads.
  const body = pipelineCallback(source, hasher, () => undefined);
  const controller = new AbortController();
  const watched = watchedClient(client);
  const upload = new Upload({
    client: watched.client,
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
    // Parts are kept on abort (a retry resumes them) unless discarded; on any other failure they are aborted below.
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
      if (req.signal?.aborted) {
        if (req.discardOnAbort?.()) await discardUploads(client, cloud, key, () => [upload.uploadId, ...watched.uploadIds], watched.settled);
        throw abortReason(req.signal);
      }
      if (upload.uploadId !== undefined) await abortMultipart(client, cloud, key, upload.uploadId, err);
      await abortLostUploads(client, cloud, key, started, undefined);
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

/**
 * `client` as one lib-storage Upload sees it, with what that Upload has in flight: its requests not
 * answered yet, and the multipart upload ids the server gave it (one it had not learnt yet when it
 * was aborted included). lib-storage lets parts in flight finish after an abort and exposes neither.
 */
function watchedClient(client: S3Client): { client: S3Client; uploadIds: Set<string>; settled: () => Promise<void> } {
  const pending = new Set<Promise<unknown>>();
  const uploadIds = new Set<string>();
  const send = (command: unknown, options?: unknown): Promise<unknown> => {
    const sent = (client.send as (command: unknown, options?: unknown) => Promise<unknown>).call(client, command, options);
    pending.add(sent);
    sent.then(
      (out) => {
        const id = (out as { UploadId?: unknown } | undefined)?.UploadId;
        if (typeof id === 'string') uploadIds.add(id);
        pending.delete(sent);
      },
      () => pending.delete(sent),
    );
    return sent;
  };
  const watched = new Proxy(client, { get: (target, prop, receiver) => (prop === 'send' ? send : (Reflect.get(target, prop, receiver) as unknown)) });
  const settled = async () => {
    while (pending.size > 0) await Promise.allSettled([...pending]);
  };
  return { client: watched, uploadIds, settled };
}

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
