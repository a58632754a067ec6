/**
 * Uploads: a verified file to a key (one PUT, or a multipart upload through lib-storage, or the
 * resume of an earlier attempt's), and small documents in one request.
 *
 * Every request carries an S3 SHA-256 checksum (`ChecksumAlgorithm: 'SHA256'`), so the server
 * verifies each part on receipt (BadDigest otherwise); the whole-file SHA-256 is stored as user
 * metadata `x-amz-meta-sha256`, so `verifyObject` can compare the cloud copy with a manifest
 * without the local file. See parts.ts for the checks on the bytes sent.
 *
 * Memory: a single upload holds at most `queueSize × partSize` bytes of the file (plus one part being
 * read on the resume path).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline as pipelineCallback } from 'node:stream';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { DrError, InvalidInputError } from '../../errors';
import { clientFor, MiB, s3Url, type CloudSettings } from './client';
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

/** A new upload through lib-storage (PUT when the file fits one part, multipart otherwise). Throws raw errors. */
async function freshUpload(client: S3Client, req: UploadRequest, sse: CloudSettings['serverSideEncryption'], notes: string[]): Promise<UploadResult> {
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
        // A single PUT (the file fits one part) leaves nothing to discard.
        if (req.expectedBytes > partSize && req.discardOnAbort?.())
          await discardUploads(client, cloud, key, () => [upload.uploadId, ...watched.uploadIds], watched.settled);
        throw abortReason(req.signal);
      }
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
