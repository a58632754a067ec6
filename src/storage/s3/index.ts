/**
 * The S3 side of backups: resumable, verified uploads with bounded memory, verified downloads,
 * listing, deletion and clean-up of abandoned multipart uploads.
 *
 * Keys and prefixes passed to these functions are full keys inside the bucket: build them with
 * `cloudKey(cloud, …)`, which adds the configured prefix.
 *
 *   client.ts  the client (retries, timeouts, bandwidth limit), keys
 *   errors.ts  SDK and network errors mapped to the catalogue of src/errors.ts
 *   parts.ts   an upload's request and result, its parts, the integrity checks of the bytes sent
 *   upload.ts  uploadFile (one PUT or multipart), putSmallObject
 *   resume.ts  the resume of an earlier attempt's multipart upload
 *   read.ts    HEAD, verification, downloads, small documents, listings
 *   delete.ts  deletions, aborted and abandoned multipart uploads
 */
export { cloudKey, createS3Client, type CloudSettings } from './client';
export { deleteObjects, abortStaleUploads, abortUpload } from './delete';
export { mapS3Error } from './errors';
export {
  compositeSha256,
  DEFAULT_PART_SIZE,
  DEFAULT_QUEUE_SIZE,
  MIN_PART_SIZE,
  SHA256_METADATA_KEY,
  type UploadProgress,
  type UploadRequest,
  type UploadResult,
} from './parts';
export { downloadFile, getSmallObject, headObject, listFolders, listObjects, verifyObject, type ObjectInfo } from './read';
export { putSmallObject, uploadFile } from './upload';
