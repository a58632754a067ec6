/**
 * The error catalogue. Every error odoo-dr raises on purpose has a stable name (used as the
 * Temporal failure type) and says whether retrying can help. activities/ maps them to
 * non-retryable ApplicationFailures from this one table; the CLI maps them to exit codes.
 */

export abstract class DrError extends Error {
  /** Retrying the same call cannot succeed (bad input, bad credentials, missing object). */
  abstract readonly permanent: boolean;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The configuration is invalid; `problems` lists each one, naming its variable. */
export class ConfigError extends DrError {
  readonly permanent = true;
  constructor(
    message: string,
    readonly problems: string[] = [message],
  ) {
    super(message);
  }
}

/** A PostgreSQL server cannot be reached (network, server down): worth retrying. */
export class DatabaseUnavailableError extends DrError {
  readonly permanent = false;
}

/** PostgreSQL refused our credentials or role: retrying will not help. */
export class DatabaseAuthError extends DrError {
  readonly permanent = true;
}

/** A named tenant database does not exist (or is not a tenant). */
export class TenantNotFoundError extends DrError {
  readonly permanent = true;
}

/** Client binaries are missing or too old for the server. */
export class ToolVersionError extends DrError {
  readonly permanent = true;
}

/** Input to a command or workflow is invalid. */
export class InvalidInputError extends DrError {
  readonly permanent = true;
}

/** The S3 service refused our credentials or permissions. */
export class CloudAuthError extends DrError {
  readonly permanent = true;
}

/** The configured bucket does not exist. */
export class BucketNotFoundError extends DrError {
  readonly permanent = true;
}

/** The S3 service cannot be reached or answered with a server error: worth retrying. */
export class CloudUnavailableError extends DrError {
  readonly permanent = false;
}

/** An artifact's bytes do not match their recorded size or checksum (local or cloud copy). */
export class ArtifactCorruptedError extends DrError {
  readonly permanent = true;
}

/** The disk holding the backups is full. Retrying without freeing space cannot help. */
export class DiskFullError extends DrError {
  readonly permanent = true;
}

/** A child process of a streaming pipeline (pg_dump, zstd, age…) failed. */
export class PipelineError extends DrError {
  readonly permanent = false;
}

/** The age identity (private key) file is missing, unreadable, or readable by others. */
export class EncryptionKeyError extends DrError {
  readonly permanent = true;
}

/** An Odoo service command (DR_ODOO_STOP_CMD / DR_ODOO_START_CMD) failed or timed out; the message names it and quotes its output. */
export class ServiceCommandError extends DrError {
  readonly permanent = false;
}

/** Names of all catalogued errors that must never be retried (Temporal nonRetryableErrorTypes). */
export const PERMANENT_ERROR_TYPES = [
  'ConfigError',
  'DatabaseAuthError',
  'TenantNotFoundError',
  'ToolVersionError',
  'InvalidInputError',
  'CloudAuthError',
  'BucketNotFoundError',
  'ArtifactCorruptedError',
  'DiskFullError',
  'EncryptionKeyError',
] as const;

/** Removes any of the given secret values from a message (defence in depth for logs and failures). */
export function scrubSecrets(message: string, secrets: Array<string | undefined>): string {
  let out = message;
  for (const secret of secrets) {
    if (secret && secret.length >= 4) out = out.split(secret).join('***');
  }
  return out;
}
