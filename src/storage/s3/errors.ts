/**
 * SDK, network and file-system errors of the S3 calls, mapped to the catalogue of src/errors.ts,
 * and the small questions the other S3 files ask of an error (its code, an abort, a refused SSE).
 */
import { ArtifactCorruptedError, BucketNotFoundError, CloudAuthError, CloudUnavailableError, DiskFullError, DrError, scrubSecrets } from '../../errors';
import { describeService, type CloudSettings } from './client';

interface S3ErrorLike {
  name?: unknown;
  Code?: unknown;
  code?: unknown;
  message?: unknown;
  $metadata?: { httpStatusCode?: number; requestId?: string };
}

export function errorCode(err: unknown): string {
  if (typeof err !== 'object' || err === null) return String(err);
  const e = err as S3ErrorLike;
  if (typeof e.Code === 'string') return e.Code;
  if (typeof e.code === 'string') return e.code;
  return typeof e.name === 'string' ? e.name : 'Error';
}

export function httpStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  return (err as S3ErrorLike).$metadata?.httpStatusCode;
}

export function errorMessage(err: unknown): string {
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
  const detail = [code, status !== undefined ? `HTTP ${status}` : undefined, requestId ? `request id ${requestId}` : undefined].filter(Boolean).join(', ');
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
export function isSseUnsupported(err: unknown): boolean {
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

export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : Object.assign(new Error(`upload aborted: ${String(reason)}`), { name: 'AbortError' });
}

export function isMissingObject(err: unknown): boolean {
  return errorCode(err) === 'NoSuchKey' || (httpStatus(err) === 404 && errorCode(err) !== 'NoSuchBucket');
}
