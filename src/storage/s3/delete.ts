/**
 * Deleting objects and discarding multipart uploads: an upload's own (aborted on failure or on a
 * cancellation for good), the ones a lost CreateMultipartUpload answer left, and the stale ones
 * the daily clean-up collects.
 */
import { AbortMultipartUploadCommand, DeleteObjectsCommand, ListMultipartUploadsCommand, ListPartsCommand, type S3Client } from '@aws-sdk/client-s3';
import { clientFor, s3Url, type CloudSettings } from './client';
import { errorCode, mapS3Error } from './errors';

/**
 * Multipart uploads of `key` this upload created without knowing it: when the answer to a
 * CreateMultipartUpload is lost (the connection reset after the server created the upload), the
 * SDK asks again and the first upload is never used. They are the uploads of the same key,
 * initiated since this one started (5 minutes of clock skew allowed), other than `keep`, holding no
 * part; they are aborted now instead of waiting for abortStaleUploads. With `all` (this upload
 * completed): every other upload of the key, whatever it holds. Best effort.
 */
export async function abortLostUploads(
  client: S3Client,
  cloud: CloudSettings,
  key: string,
  since: number,
  keep: string | undefined,
  opts: { all?: boolean } = {},
): Promise<void> {
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

export async function abortMultipart(client: S3Client, cloud: CloudSettings, key: string, uploadId: string, cause?: unknown): Promise<void> {
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

/**
 * Discards an upload cancelled for good: its multipart upload(s) are aborted at once, and again once
 * its requests still in flight (`settled`) are over, since a part the server was still receiving can
 * outlive the first abort (S3 documents that an upload may have to be aborted more than once).
 * Best effort: what cannot be aborted is left for abortStaleUploads.
 */
export async function discardUploads(
  client: S3Client,
  cloud: CloudSettings,
  key: string,
  uploadIds: () => Iterable<string | undefined>,
  settled: () => Promise<void>,
): Promise<void> {
  const abortAll = async () => {
    for (const id of new Set(uploadIds())) if (id !== undefined) await abortMultipart(client, cloud, key, id);
  };
  await abortAll();
  await settled();
  await abortAll();
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

/** Deletes keys (1000 per request); keys that do not exist are not an error. */
export async function deleteObjects(cloud: CloudSettings, keys: string[]): Promise<void> {
  const client = clientFor(cloud);
  for (let i = 0; i < keys.length; i += 1000) {
    const batch = keys.slice(i, i + 1000);
    const what = `deletion of ${batch.length} object(s) under ${s3Url(cloud, '')}`;
    let out;
    try {
      out = await client.send(new DeleteObjectsCommand({ Bucket: cloud.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
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
