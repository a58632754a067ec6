/**
 * Resuming a multipart upload left by an earlier attempt (its id comes from the activity's last
 * heartbeat): the parts the server still has with the right size and checksum are reused, the
 * others sent again.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { CompleteMultipartUploadCommand, ListPartsCommand, UploadPartCommand, type CompletedPart, type Part, type S3Client } from '@aws-sdk/client-s3';
import { s3Url, type CloudSettings } from './client';
import { abortMultipart } from './delete';
import { abortReason, errorCode, errorMessage } from './errors';
import {
  checkServerChecksum,
  compositeSha256,
  confirmSse,
  corrupted,
  DEFAULT_QUEUE_SIZE,
  MIN_PART_SIZE,
  partCount,
  partLength,
  progressOf,
  type UploadRequest,
  type UploadResult,
} from './parts';
import { headObject } from './read';

async function listAllParts(client: S3Client, cloud: CloudSettings, key: string, uploadId: string): Promise<Map<number, Part>> {
  const parts = new Map<number, Part>();
  let marker: string | undefined;
  for (;;) {
    const page = await client.send(new ListPartsCommand({ Bucket: cloud.bucket, Key: key, UploadId: uploadId, PartNumberMarker: marker }));
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
export async function resumeUpload(client: S3Client, req: UploadRequest, notes: string[]): Promise<UploadResult | null> {
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
        (have.ChecksumSHA256 !== undefined ? have.ChecksumSHA256 === checksum : etagIsMd5Of(have.ETag, createHash('md5').update(buf).digest('hex')));
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

  if (req.signal?.aborted) {
    // The parts in flight were cancelled and are over: one abort discards the upload.
    if (req.discardOnAbort?.()) await abortMultipart(client, cloud, key, uploadId);
    throw abortReason(req.signal); // else keep the parts, as a crash would
  }
  const sha256 = whole.digest('hex');
  if (failure === undefined && sha256 !== req.expectedSha256) failure = corrupted(req, `read ${total} bytes with sha256 ${sha256}`);
  if (failure !== undefined) {
    await abortMultipart(client, cloud, key, uploadId, failure);
    throw failure instanceof Error ? failure : new Error(errorMessage(failure));
  }

  const parts = [...completed.values()].sort((a, b) => a.PartNumber! - b.PartNumber!);
  let out;
  try {
    out = await client.send(new CompleteMultipartUploadCommand({ Bucket: cloud.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }), {
      abortSignal: req.signal,
    });
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
