/**
 * The error catalogue. Every error odoo-dr raises on purpose has a stable name (used as the
 * Temporal failure type) and says whether retrying can help. activities/ maps them to
 * non-retryable ApplicationFailures from this one table; workflows fail with the types of
 * WORKFLOW_FAILURES; the CLI's exit code follows each one's ExitClass.
 */

/**
 * What an error means for the command that met it, hence its exit code (temporal/cli/common.ts
 * EXIT, README "Exit codes"): `failed` the operation ran and failed or was refused; `usage` a bad
 * command line or configuration, nothing was started; `unavailable` a service could not be reached.
 */
export type ExitClass = 'failed' | 'usage' | 'unavailable';

export abstract class DrError extends Error {
  /** Retrying the same call cannot succeed (bad input, bad credentials, missing object). */
  abstract readonly permanent: boolean;
  /** Only a service that could not be reached is `unavailable`; retryable is not the same thing. */
  readonly exitClass: ExitClass = 'failed';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The configuration is invalid; `problems` lists each one, naming its variable. */
export class ConfigError extends DrError {
  readonly permanent = true;
  override readonly exitClass = 'usage';
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
  override readonly exitClass = 'unavailable';
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
  override readonly exitClass = 'unavailable';
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

/**
 * An activity attempt found that a newer attempt of the same work has started (it timed out while
 * stalled): it stops without replacing anything. Not permanent: it says nothing of the work itself.
 */
export class SupersededError extends DrError {
  readonly permanent = false;
}

/** A file changed while it was being backed up (Odoo's files never do; a retry reads it again). */
export class SourceChangedError extends DrError {
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

/**
 * The failure types workflows end with on purpose (workflows/failures.ts `fail`), besides the
 * activities' errors they pass on: what each means for the operator and its exit class. A workflow
 * that failed is an operation that failed (exit 1): none of them says a service was unreachable.
 * The names are stable: histories and alerts carry them.
 */
export const WORKFLOW_FAILURES = {
  BackupNotStarted: {
    meaning: 'backupWorkflow could not discover the tenants or prepare the session (the message names why); an alert was sent, no session exists',
    exit: 'failed',
  },
  TenantNotFoundError: {
    meaning:
      'backupWorkflow was asked for names that are not tenants (absent, not owned by the Odoo role, templates): refused before a session was created, nothing backed up',
    exit: 'failed',
  },
  BackupNotFinalized: {
    meaning: 'the tenants ran but the manifest could not be written: the session is incomplete (listed as such) and an alert was sent',
    exit: 'failed',
  },
  InsufficientSpace: {
    meaning: 'recoveryWorkflow: the plan found too little free space for the shadow copies; nothing was changed',
    exit: 'failed',
  },
  RecoveryNotPrepared: {
    meaning: "recoveryWorkflow: no tenant's shadow copy could be restored and verified (each one's reason in the message); Odoo was not touched",
    exit: 'failed',
  },
  PreRecoveryBackupFailed: {
    meaning: "recoveryWorkflow with --backup-first: the backup of today's state failed, so nothing was swapped (shadows dropped)",
    exit: 'failed',
  },
  TenantLocked: {
    meaning: "another backup or recovery holds the tenant's lock (one writer per tenant); the message names it",
    exit: 'failed',
  },
  ObservationNotReceived: {
    meaning: 'alertsWorkflow: an observation sent by a monitor run was not processed within 10 minutes (the update fails, the monitor run reports it)',
    exit: 'failed',
  },
} as const satisfies Record<string, { meaning: string; exit: ExitClass }>;

/** A failure type a workflow may end with (workflows/failures.ts checks it at compile time). */
export type WorkflowFailureType = keyof typeof WORKFLOW_FAILURES;

/**
 * `scheme://user:password@host…` → `scheme://***@host…`, wherever it occurs in a text. The userinfo runs to
 * the last `@` before the end of the authority (`/ ? #`, whitespace or a quote), as URL parsers read it.
 */
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#"'<>`]*@/gi;
/** Private keys recognisable by their shape, whatever variable or file they came from. */
const PRIVATE_KEY_TEXTS: Array<[RegExp, string]> = [
  [/AGE-SECRET-KEY-[0-9A-Z-]+/gi, 'AGE-SECRET-KEY-***'],
  [/-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[\s\S]*?(?:-----END \1PRIVATE KEY-----|$)/g, '-----BEGIN $1PRIVATE KEY----- *** -----END $1PRIVATE KEY-----'],
];

/** Replaces the userinfo (`user:password@`) of every URL in a text by `***@`. */
export function hideUrlCredentials(text: string): string {
  return text.replace(URL_USERINFO, '$1***@');
}

/** True when a text holds something shaped like a private key (age identity, PEM private key). */
export function looksLikePrivateKey(text: string): boolean {
  return PRIVATE_KEY_TEXTS.some(([re]) => {
    re.lastIndex = 0;
    return re.test(text);
  });
}

/**
 * Removes secrets from a message (defence in depth for logs, failures and printed errors): the given
 * secret values (also in their URL-encoded form, longest first so a secret containing another is
 * removed whole), the userinfo of every URL, and anything shaped like a private key. Values shorter
 * than 4 characters are not searched for (they would blank out ordinary words).
 */
export function scrubSecrets(message: string, secrets: Iterable<string | undefined>): string {
  const values = new Set<string>();
  for (const secret of secrets) {
    if (!secret || secret.length < 4) continue;
    values.add(secret);
    const encoded = encodeURIComponent(secret);
    if (encoded !== secret) values.add(encoded);
  }
  let out = message;
  for (const value of [...values].sort((a, b) => b.length - a.length)) out = out.split(value).join('***');
  out = hideUrlCredentials(out);
  for (const [re, replacement] of PRIVATE_KEY_TEXTS) out = out.replace(re, replacement);
  return out;
}
