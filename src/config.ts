/**
 * Configuration: the seed-compatible env file (`config/dr-config.env`), validated with zod.
 *
 * Every problem is reported at once, each naming its variable. Secret values never appear in
 * errors, warnings or the printable form of the configuration.
 */
import { closeSync, fstatSync, openSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { expand as expandDotenv } from 'dotenv-expand';
import { z } from 'zod';
import { ageRecipientProblem } from './crypto/age-keys';
import { DRILL_CADENCES, parseTimeOfDay, type AutomationSettings } from './automation/schedules';
import { ConfigError, hideUrlCredentials, looksLikePrivateKey, scrubSecrets } from './errors';

/**
 * Variables whose values are secrets: never printed, never put into workflow inputs. Beside these,
 * isSecretVariable treats as secret every TEMPORAL_GRPC_META_* header and every name containing KEY,
 * SECRET, TOKEN, PASSWORD or PASSWD, except NON_SECRET_VARIABLES and names of files (see there).
 */
export const SECRET_VARIABLES = new Set([
  'POSTGRES_PASSWORD',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'DR_SMTP_PASSWORD',
  'DR_WEBHOOK_URL', // Slack-style webhook URLs embed their token
  'TEMPORAL_API_KEY',
  'TEMPORAL_TLS_CLIENT_KEY_DATA', // the TLS client's private key itself (PEM)
  'TEMPORAL_CODEC_AUTH', // Authorization header sent to the remote codec server
]);

/**
 * Names that look secret but hold none, so they stay readable in errors and `config check`:
 * - `AWS_ACCESS_KEY_ID`: the public half of an S3 key pair (AWS prints it in its own errors and
 *   CloudTrail); operators need it to see which key is configured.
 * - `DR_ENCRYPTION_KEY`: the seed's name of DR_ENCRYPTION_KEY_FILE, a file name. (A key pasted there
 *   by mistake is still hidden: values shaped like private keys are hidden whatever their name.)
 * - every name ending in `_FILE`, `_PATH` or `_DIR` (DR_ENCRYPTION_KEY_FILE, POSTGRES_PASSWORD_FILE,
 *   DR_SIGNING_KEY_FILE, TEMPORAL_TLS_CLIENT_KEY_PATH, the seed's GDRIVE_TOKEN_FILE…): they name the file
 *   holding the secret, which is what an operator must see to fix it. A value that is not an absolute
 *   path (the secret itself, set in the wrong variable) is hidden all the same (printableValue).
 */
export const NON_SECRET_VARIABLES = new Set(['AWS_ACCESS_KEY_ID', 'DR_ENCRYPTION_KEY']);
const FILE_NAME_VARIABLE = /_(FILE|PATH|DIR)$/i;
const SECRET_NAME = /KEY|SECRET|TOKEN|PASSWORD|PASSWD/i;
const TEMPORAL_GRPC_META = /^TEMPORAL_GRPC_META_/i;
const HIDDEN = '(set, hidden)';

/** The one rule deciding whether a variable's value is a secret (never printed, only its length). */
export function isSecretVariable(name: string): boolean {
  if (SECRET_VARIABLES.has(name) || TEMPORAL_GRPC_META.test(name)) return true;
  if (NON_SECRET_VARIABLES.has(name) || FILE_NAME_VARIABLE.test(name)) return false;
  return SECRET_NAME.test(name);
}

/** A value that must be hidden whatever the variable's name: a private key, or what should be a file name but is not. */
function secretByValue(name: string, value: string): boolean {
  if (looksLikePrivateKey(value)) return true;
  // `POSTGRES_PASSWORD_FILE=hunter2`: the secret itself in a variable meant for its file name.
  return FILE_NAME_VARIABLE.test(name) && SECRET_NAME.test(name.replace(FILE_NAME_VARIABLE, '')) && !path.isAbsolute(value.trim());
}

/** How a value appears in an error message: quoted, or only its length when it is secret. */
export function printableValue(name: string, raw: string): string {
  if (isSecretVariable(name) || secretByValue(name, raw)) return `a value of ${raw.length} characters (hidden)`;
  const shown = hideUrlCredentials(raw);
  // Userinfo a URL parser would not recognise (e.g. an unencoded "/" in the password): hide the whole value.
  if (/:\/\/[^\s]*@/.test(shown.replace(/:\/\/\*\*\*@/g, ''))) return `a value of ${raw.length} characters (hidden: it looks like a URL with credentials)`;
  return JSON.stringify(shown);
}

/** Scheme and host of a webhook URL, enough to recognise it; its path and query (the token) are hidden. */
function webhookShown(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}/… ${HIDDEN}`;
  } catch {
    return HIDDEN;
  }
}

/** How a value appears in `config check --json`: the same rule as printableValue. */
export function redactValue(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (name === 'DR_WEBHOOK_URL') return webhookShown(value);
  if (isSecretVariable(name) || secretByValue(name, value)) return HIDDEN;
  return hideUrlCredentials(value);
}

/**
 * Variables of the seed's `dr-config.env` that odoo-dr accepts and ignores (their job is done
 * differently here, e.g. Google Drive is not a destination, encryption is always age).
 */
const SEED_VARIABLES_IGNORED = new Set([
  'DR_SESSION_DIR', 'PROJECT_ROOT', 'DR_BACKUP_DESTINATIONS', 'GDRIVE_FOLDER_NAME', 'GDRIVE_CREDENTIALS_FILE',
  'GDRIVE_TOKEN_FILE', 'GDRIVE_CLIENT_ID', 'GDRIVE_CLIENT_SECRET', 'GDRIVE_UPLOAD_CHUNK_SIZE', 'GCS_BUCKET',
  'GOOGLE_APPLICATION_CREDENTIALS', 'DR_ENCRYPTION_CIPHER', 'DR_VERIFY_BACKUPS', 'SHARED_ADDONS_PATH', 'DR_PARALLEL_RESTORE',
  'DR_AUTO_START_SERVICES', 'DR_POST_RECOVERY_HEALTH_CHECK', 'DR_SECURE_DELETE', 'DR_AUDIT_LOGGING',
  'DR_ACCESS_LOG', 'DR_AUDIT_LOG', 'DR_DEBUG_MODE', 'DR_VERBOSE_LOGGING', 'DR_KEEP_TEMP_FILES',
]);

/** Temporal connection variables: read by temporal/connection.ts through @temporalio/envconfig. */
const TEMPORAL_VARIABLE = /^TEMPORAL_/;

type Check = z.ZodType<unknown, string>;

const describeValue = printableValue;

/** Returned by a parser to report specific problems (each naming the variable) instead of "must be …". */
class Refused {
  constructor(readonly problems: string[]) {}
}

/** A field: its zod schema over the raw string, a default, and whether it is optional. */
interface Field {
  schema: (name: string) => Check;
  default?: string;
  doc: string;
}

function custom<T>(
  what: string,
  parse: (raw: string, name: string) => T | Refused | undefined,
): (name: string) => z.ZodType<T, string> {
  return (name) =>
    z.string().transform((raw, ctx) => {
      const value = parse(raw.trim(), name);
      if (value instanceof Refused) {
        for (const message of value.problems) ctx.addIssue({ code: 'custom', message });
        return z.NEVER;
      }
      if (value === undefined) {
        ctx.addIssue({ code: 'custom', message: `${name} must be ${what}, got ${describeValue(name, raw)}` });
        return z.NEVER;
      }
      return value;
    });
}

/** A NUL or a line break in a path: refused (the path would be cut short, or split in two by a shell or a log line). */
function pathCharacterProblem(what: string, name: string, value: string): string | undefined {
  if (value.includes('\0')) return `${what} must not contain a NUL character, got ${describeValue(name, value)}`;
  if (/[\n\r]/.test(value)) return `${what} must not contain a line break, got ${describeValue(name, value)}`;
  return undefined;
}

const wholeNumber = (min: number, max: number) =>
  custom(`a whole number from ${min} to ${max}`, (raw) => {
    if (!/^\d+$/.test(raw)) return undefined;
    const n = Number(raw);
    return n >= min && n <= max ? n : undefined;
  });

const boolean = custom('true or false', (raw) => {
  const v = raw.toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  return undefined;
});

/** `DAILY/WEEKLY/MONTHLY` counts (e.g. `7/4/3`), or empty for none. */
const gfsRule = custom('DAILY/WEEKLY/MONTHLY counts such as 7/4/3, or empty for none', (raw): { daily: number; weekly: number; monthly: number } | null | undefined => {
  if (raw === '') return null;
  const m = /^(\d{1,4})\/(\d{1,4})\/(\d{1,4})$/.exec(raw);
  return m ? { daily: Number(m[1]), weekly: Number(m[2]), monthly: Number(m[3]) } : undefined;
});

const text = custom('a non-empty text', (raw) => (raw === '' ? undefined : raw));
const optionalText = custom('a text', (raw) => raw);

const absolutePath = custom('an absolute path', (raw, name) => {
  const bad = pathCharacterProblem(name, name, raw);
  if (bad) return new Refused([bad]);
  return path.isAbsolute(raw) ? path.normalize(raw) : undefined;
});

const list = custom('a comma- or space-separated list', (raw) => raw.split(/[\s,]+/).filter(Boolean));

const pathList = custom('a comma-separated list of absolute paths', (raw, name) => {
  const items = raw.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = items.flatMap((p, i) => pathCharacterProblem(`${name} entry #${i + 1}`, name, p) ?? []);
  if (bad.length) return new Refused(bad);
  return items.every((p) => path.isAbsolute(p)) ? items.map((p) => path.normalize(p)) : undefined;
});

const emails = custom('a comma-separated list of e-mail addresses', (raw) => {
  const items = raw.split(/[\s,]+/).filter(Boolean);
  return items.every((e) => /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(e)) ? items : undefined;
});

const httpUrl = custom('an http(s) URL', (raw) => {
  if (raw === '') return '';
  try {
    const url = new URL(raw);
    return url.protocol === 'http:' || url.protocol === 'https:' ? raw : undefined;
  } catch {
    return undefined;
  }
});

const S3_BUCKET_RULES = 'S3 bucket names are 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit';

/** What is wrong with an S3 bucket name (AWS general-purpose bucket naming rules), or undefined. */
function s3BucketProblem(bucket: string): string | undefined {
  const problems: string[] = [];
  if (bucket.length < 3 || bucket.length > 63) problems.push(`has ${bucket.length} characters`);
  const bad = [...new Set(bucket.replace(/[a-z0-9.-]/g, ''))];
  if (bad.length) problems.push(`contains ${bad.map((c) => JSON.stringify(c)).join(', ')}`);
  if (bucket !== '' && (!/^[a-z0-9]/.test(bucket) || !/[a-z0-9]$/.test(bucket))) problems.push('does not start and end with a letter or digit');
  if (bucket.includes('..')) problems.push('has two dots in a row');
  if (/^\d+\.\d+\.\d+\.\d+$/.test(bucket)) problems.push('is formatted like an IP address');
  const reservedPrefix = ['xn--', 'sthree-', 'amzn-s3-demo-'].find((x) => bucket.startsWith(x));
  if (reservedPrefix) problems.push(`starts with the reserved prefix "${reservedPrefix}"`);
  const reservedSuffix = ['-s3alias', '--ol-s3', '.mrap', '--x-s3', '--table-s3'].find((x) => bucket.endsWith(x));
  if (reservedSuffix) problems.push(`ends with the reserved suffix "${reservedSuffix}"`);
  return problems.length ? problems.join(', ') : undefined;
}

/**
 * `s3://bucket/optional/prefix` → bucket and prefix (no leading or trailing slash). The prefix is a
 * folder-like key prefix: empty segments (`//`), `.` and `..` segments and control characters are
 * refused, since S3 keeps them literally and listings, the console and `aws s3 sync` disagree about them.
 */
const s3Location = custom('empty or an S3 location like s3://bucket/prefix', (raw, name) => {
  if (raw === '') return null;
  const m = /^s3:\/\/([^/]*)(?:\/([\s\S]*))?$/.exec(raw);
  if (!m) return undefined;
  const bucket = m[1]!;
  const rest = m[2] ?? '';
  const problems: string[] = [];
  if (bucket === '') problems.push(`${name} has no bucket name, got ${describeValue(name, raw)} (expected s3://bucket/prefix)`);
  else {
    const problem = s3BucketProblem(bucket);
    if (problem) problems.push(`${name} bucket name ${JSON.stringify(bucket)} ${problem} (${S3_BUCKET_RULES})`);
  }
  const prefix = rest.endsWith('/') ? rest.slice(0, -1) : rest; // one trailing slash is harmless
  if (prefix !== '') {
    const segments = prefix.split('/');
    if (segments.includes('')) {
      problems.push(`${name} prefix ${JSON.stringify(rest)} has an empty segment (a leading "/" or "//"); write it without`);
    }
    const dots = [...new Set(segments.filter((x) => x === '.' || x === '..'))];
    if (dots.length) {
      problems.push(
        `${name} prefix ${JSON.stringify(rest)} has ${dots.map((d) => `a "${d}" segment`).join(' and ')}; S3 keys are not paths (the dots are kept literally), write the prefix without them`,
      );
    }
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(prefix)) problems.push(`${name} prefix must not contain control characters (line breaks, NUL, tabs…), got ${describeValue(name, raw)}`);
  }
  return problems.length ? new Refused(problems) : { bucket, prefix };
});

/** `10M`, `512K`, `1G`, `1048576` (bytes per second); empty = unlimited. */
const bandwidth = custom('empty (unlimited) or a rate in bytes per second like 10M, 512K or 1G', (raw) => {
  if (raw === '' || raw === '0') return null;
  const m = /^(\d+(?:\.\d+)?)\s*([KMG]?)(?:i?B)?(?:\/s)?$/i.exec(raw);
  if (!m) return undefined;
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G'];
  const value = Math.round(Number(m[1]) * unit);
  return value > 0 ? value : undefined;
});

/** age X25519 recipients (`age1…`, bech32 with a valid checksum); each bad one is reported with its position. */
const ageRecipients = custom('a comma- or space-separated list of age recipients (age1…)', (raw, name) => {
  const items = raw.split(/[\s,]+/).filter(Boolean);
  const problems = items.flatMap((r, i) => {
    const problem = ageRecipientProblem(r);
    if (!problem) return [];
    // Recipients are public, so the bad one is quoted; something shaped like a private key never is.
    const shown = /^AGE-/i.test(r) || looksLikePrivateKey(r) ? '' : ` ${JSON.stringify(r)}`;
    return [`${name} recipient #${i + 1} of ${items.length}${shown} ${problem}`];
  });
  return problems.length ? new Refused(problems) : items;
});

/** OpenSSH Ed25519 public keys (`ssh-ed25519 AAAA… [comment]`), separated by commas or newlines. */
const sshPublicKeys = custom('a comma-separated list of public keys like "ssh-ed25519 AAAAC3Nza… comment"', (raw) => {
  const items = raw.split(/[,\n]+/).map((k) => k.trim()).filter(Boolean);
  return items.length > 0 && items.every((k) => /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43}=?(?: .*)?$/.test(k)) ? items : undefined;
});

const oneOf = <T extends string>(...values: T[]) =>
  custom(`one of ${values.join(', ')}`, (raw) => (values.includes(raw as T) ? (raw as T) : undefined));

/** `HH:MM` on a 24-hour clock. */
const timeOfDay = custom('a time of day HH:MM from 00:00 to 23:59', (raw, name) => {
  try {
    return parseTimeOfDay(raw, name);
  } catch (err) {
    return new Refused([(err as Error).message]);
  }
});

/** An IANA time zone (`Europe/Brussels`, `UTC`), in its canonical spelling (Temporal's server is case-sensitive). */
const timeZone = custom('an IANA time zone name like UTC or Europe/Brussels', (raw) => {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: raw }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
});

/** The seed's DR_MONITORING_INTERVAL is in seconds; schedules work in whole minutes. */
const monitoringSeconds = custom('a whole number of seconds from 60 to 86400', (raw, name) => {
  if (!/^\d+$/.test(raw)) return undefined;
  const n = Number(raw);
  if (n < 60 || n > 86400) return undefined;
  if (n % 60 !== 0) return new Refused([`${name} must be a whole number of minutes in seconds (a multiple of 60), got ${describeValue(name, raw)}`]);
  return n;
});

/** PostgreSQL identifiers as Odoo uses them for database names and roles. */
const pgName = custom('a PostgreSQL name of at most 63 bytes', (raw) =>
  raw !== '' && Buffer.byteLength(raw) <= 63 && !raw.includes('\0') ? raw : undefined,
);

/** Longest scratch suffix: `<tenant><suffix>_<id>` (id up to 24) must leave the tenant name room in 63 bytes. */
const MAX_SCRATCH_SUFFIX = 32;

/** The scratch database suffix: only the characters Odoo accepts in database names (odoo/service/db.py DB_NAME_RE). */
const scratchSuffix = custom('a database name suffix', (raw, name) => {
  const problems: string[] = [];
  const bad = [...new Set(raw.replace(/[A-Za-z0-9_.-]/g, ''))];
  if (raw === '') return undefined;
  if (bad.length) {
    problems.push(
      `${name} may contain only letters, digits, "_", "." and "-" (Odoo refuses other characters in database names), ` +
        `got ${describeValue(name, raw)} with ${bad.map((c) => JSON.stringify(c)).join(', ')}`,
    );
  }
  if (Buffer.byteLength(raw) > MAX_SCRATCH_SUFFIX) {
    problems.push(
      `${name} must be at most ${MAX_SCRATCH_SUFFIX} characters (scratch databases are named <tenant><suffix>_<id> within PostgreSQL's 63 bytes), got ${Buffer.byteLength(raw)}`,
    );
  }
  return problems.length ? new Refused(problems) : raw;
});

/**
 * Every variable odoo-dr reads, with the seed's defaults. The order here is the order of
 * `config/dr-config.env.example` and of error reports.
 */
export const FIELDS = {
  // --- Backup storage and retention
  DR_BACKUP_DIR: { schema: absolutePath, default: '/var/lib/odoo-dr/backups', doc: 'Local backup root; sessions go to <dir>/sessions/.' },
  DR_RETENTION_DAYS: { schema: wholeNumber(1, 36500), default: '90', doc: 'Days cloud (S3) sessions are kept.' },
  DR_LOCAL_RETENTION_DAYS: { schema: wholeNumber(1, 36500), default: '7', doc: 'Days local sessions are kept.' },
  DR_LOG_DIR: { schema: absolutePath, doc: 'Audit log, status report and drill reports. Default: <DR_BACKUP_DIR>/logs.' },
  DR_RETENTION_GFS: {
    schema: gfsRule,
    default: '',
    doc: 'Grandfather-father-son keeping on top of the age limits, DAILY/WEEKLY/MONTHLY (Odoo.sh keeps 7/4/3): the newest complete session of each of that many latest days, ISO weeks and months (UTC) is kept whatever its age. Applies to the bucket (to the local folder when there is no bucket). Empty: off.',
  },
  DR_COLLECT_GRACE_HOURS: {
    schema: wholeNumber(1, 720),
    default: '24',
    doc: 'Filestore packs and blobs that no kept session references are deleted once untouched for this long (a running backup may be about to list them).',
  },
  DR_LOG_RETENTION_DAYS: { schema: wholeNumber(1, 36500), default: '30', doc: 'Days files in DR_LOG_DIR (rotated audit logs, drill reports) are kept; the status report and the current audit log never go.' },
  // --- PostgreSQL
  POSTGRES_HOST: { schema: text, default: 'localhost', doc: 'PostgreSQL host (or socket directory).' },
  POSTGRES_PORT: { schema: wholeNumber(1, 65535), default: '5432', doc: 'PostgreSQL port.' },
  POSTGRES_USER: { schema: pgName, default: 'odoo', doc: 'Role odoo-dr connects as; needs to read every tenant database and create databases.' },
  POSTGRES_PASSWORD: { schema: optionalText, doc: 'Password of POSTGRES_USER (secret). Prefer POSTGRES_PASSWORD_FILE.' },
  POSTGRES_PASSWORD_FILE: { schema: absolutePath, doc: 'File holding the password of POSTGRES_USER (mode 0600).' },
  POSTGRES_MASTER_DB: { schema: pgName, default: 'postgres', doc: 'Maintenance database used for discovery and CREATE/DROP DATABASE.' },
  DR_PG_BIN_DIR: { schema: absolutePath, doc: 'Directory of pg_dump/pg_restore/psql. Default: /usr/lib/postgresql/<server major>/bin, else PATH.' },
  // --- Odoo
  ODOO_DB_USER: { schema: pgName, doc: 'Role that owns tenant databases (Odoo db_user). Default: POSTGRES_USER.' },
  ODOO_DATA_DIR: { schema: absolutePath, default: '/var/lib/odoo', doc: 'Odoo data_dir; filestores are in <dir>/filestore/<db>/.' },
  ODOO_FILESTORE_PATH: { schema: absolutePath, doc: 'Filestore root, if not <ODOO_DATA_DIR>/filestore (seed variable).' },
  DR_TENANTS: { schema: list, doc: 'Only these tenants (database names). Default: every database Odoo would list.' },
  DR_EXCLUDE_TENANTS: { schema: list, doc: 'Tenants never backed up (database names).' },
  DR_CONFIG_PATHS: { schema: pathList, doc: 'Files and folders of the configuration archive (odoo.conf, compose files, nginx…). Default: the seed variables DOCKER_COMPOSE_FILE, NGINX_CONFIG_PATH, SSL_CERTS_PATH that are set.' },
  DOCKER_COMPOSE_FILE: { schema: absolutePath, doc: 'Seed variable; part of the configuration archive when DR_CONFIG_PATHS is unset.' },
  NGINX_CONFIG_PATH: { schema: absolutePath, doc: 'Seed variable; part of the configuration archive when DR_CONFIG_PATHS is unset.' },
  SSL_CERTS_PATH: { schema: absolutePath, doc: 'Seed variable; part of the configuration archive when DR_CONFIG_PATHS is unset.' },
  DR_ODOO_STOP_CMD: { schema: optionalText, doc: 'Shell command that stops Odoo before a recovery swap.' },
  DR_ODOO_START_CMD: { schema: optionalText, doc: 'Shell command that starts Odoo after a recovery swap.' },
  DR_ODOO_HEALTH_URL: { schema: httpUrl, doc: 'Odoo health URL, e.g. http://127.0.0.1:8069/web/health.' },
  // --- Encryption (age)
  DR_AGE_RECIPIENTS: { schema: ageRecipients, doc: 'age public recipients (age1…) backups are encrypted to. Default: the recipient of DR_ENCRYPTION_KEY_FILE.' },
  DR_SIGNING_KEY_FILE: { schema: absolutePath, doc: 'Ed25519 key (PKCS#8 PEM, mode 0600) the backup host signs session manifests with; create it with `odoo-dr keys signing FILE --create`. Unset: sessions are not signed (readers refuse them).' },
  DR_TRUSTED_SIGNERS: { schema: sshPublicKeys, doc: 'Public keys (ssh-ed25519 AAAA…, comma-separated) whose signatures validation, drills and recovery accept. Default: the public key of DR_SIGNING_KEY_FILE.' },
  DR_ENCRYPTION_KEY_FILE: { schema: absolutePath, doc: 'age identity file (private key, mode 0600); needed only to validate and restore. Seed name: DR_ENCRYPTION_KEY.' },
  DR_COMPRESSION_LEVEL: { schema: wholeNumber(1, 19), default: '1', doc: 'zstd compression level (1 fastest … 19 smallest). The seed used 9 for gzip; zstd 1 is faster than gzip -6 at a similar size (README, Performance).' },
  // --- Cloud copy (S3 or compatible)
  DR_CLOUD_BUCKET: { schema: s3Location, default: '', doc: 'S3 location s3://bucket/prefix; empty = local only.' },
  DR_CLOUD_REGION: { schema: text, default: 'us-east-1', doc: 'S3 region.' },
  DR_CLOUD_ENCRYPTION: { schema: oneOf('AES256', 'aws:kms', 'none'), default: 'AES256', doc: 'Server-side encryption requested on upload (on top of age).' },
  DR_S3_ENDPOINT: { schema: httpUrl, doc: 'S3-compatible endpoint (MinIO, versitygw, Ceph…). Default: AWS.' },
  DR_S3_FORCE_PATH_STYLE: { schema: boolean, doc: 'Path-style bucket addressing. Default: true when DR_S3_ENDPOINT is set.' },
  AWS_ACCESS_KEY_ID: { schema: optionalText, doc: 'S3 access key. Default: the AWS SDK credential chain.' },
  AWS_SECRET_ACCESS_KEY: { schema: optionalText, doc: 'S3 secret key (secret).' },
  DR_BANDWIDTH_LIMIT: { schema: bandwidth, default: '', doc: 'Upload rate limit, e.g. 10M (bytes/s); empty = unlimited.' },
  // --- Objectives and performance
  DR_RTO_MINUTES: { schema: wholeNumber(1, 10080), default: '120', doc: 'Recovery-time objective.' },
  DR_RPO_HOURS: { schema: wholeNumber(1, 720), default: '4', doc: 'Recovery-point objective; backups must be at least this frequent.' },
  DR_MAX_PARALLEL_BACKUPS: { schema: wholeNumber(1, 64), default: '3', doc: 'Tenants backed up at once.' },
  DR_IO_NICE_LEVEL: { schema: wholeNumber(0, 7), default: '7', doc: 'ionice best-effort level of pg_dump (0 highest … 7 lowest).' },
  DR_CPU_NICE_LEVEL: { schema: wholeNumber(0, 19), default: '19', doc: 'CPU nice level of pg_dump and compression.' },
  DR_TEST_DATABASE_SUFFIX: { schema: scratchSuffix, default: '_dr_test', doc: 'Suffix of scratch databases of restore tests.' },
  DR_TEST_RETENTION_HOURS: { schema: wholeNumber(1, 720), default: '24', doc: 'Leftover scratch databases older than this are dropped.' },
  DR_PRE_RECOVERY_RETENTION_DAYS: { schema: wholeNumber(0, 3650), default: '7', doc: 'Days the pre-recovery copy of a recovered tenant (database and filestore) is kept before retention drops it.' },
  DR_APPROVAL_TIMEOUT_MINUTES: { schema: wholeNumber(1, 10080), default: '60', doc: 'Minutes a recovery waits for approval before ending without changes.' },
  // --- Alerts
  DR_NOTIFICATION_EMAIL: { schema: emails, doc: 'Alert recipients.' },
  DR_SMTP_HOST: { schema: optionalText, doc: 'SMTP server for alerts; empty = no e-mail.' },
  DR_SMTP_PORT: { schema: wholeNumber(1, 65535), default: '587', doc: 'SMTP port.' },
  DR_SMTP_USER: { schema: optionalText, doc: 'SMTP user.' },
  DR_SMTP_PASSWORD: { schema: optionalText, doc: 'SMTP password (secret).' },
  DR_SMTP_FROM: { schema: optionalText, doc: 'Sender address. Default: odoo-dr@<hostname>.' },
  DR_WEBHOOK_URL: { schema: httpUrl, doc: 'Slack-style webhook for alerts (secret: it embeds a token).' },
  DR_ALERT_ON_BACKUP_AGE: { schema: wholeNumber(60, 31_536_000), default: '86400', doc: 'Alert when the newest complete backup is older (seconds).' },
  DR_ALERT_ON_DISK_USAGE: { schema: wholeNumber(1, 100), default: '90', doc: 'Alert when the backup disk is fuller (percent).' },
  // --- Automation (Temporal Schedules; `odoo-dr schedules apply`)
  DR_BACKUP_TIME: { schema: timeOfDay, default: '02:00', doc: 'Time of the first backup of the day (HH:MM in DR_SCHEDULE_TIMEZONE).' },
  DR_BACKUP_INTERVAL_HOURS: { schema: wholeNumber(1, 24), doc: 'Hours between two backups, from DR_BACKUP_TIME. Default: DR_RPO_HOURS (at most 24, less the jitter); a cadence that breaks the RPO is refused unless --force.' },
  DR_VALIDATION_TIME: { schema: timeOfDay, default: '03:00', doc: 'Daily validation of the latest session (HH:MM).' },
  DR_VALIDATION_RESTORE_TEST: { schema: boolean, default: 'false', doc: 'Daily validation also restores every tenant into a neutralized scratch copy (heavy; the drill already does it).' },
  DR_TEST_ENABLED: { schema: boolean, default: 'true', doc: 'Schedule disaster-recovery drills (seed variable); false removes the drill schedule.' },
  DR_TEST_SCHEDULE: { schema: oneOf(...DRILL_CADENCES), default: 'weekly', doc: 'Drill cadence (seed variable): daily, weekly (Sundays) or monthly (the 1st).' },
  DR_TEST_TIME: { schema: timeOfDay, default: '04:00', doc: 'Time of the drill (HH:MM).' },
  DR_MONITORING_ENABLED: { schema: boolean, default: 'true', doc: 'Schedule the monitoring check (seed variable); false removes the monitor schedule.' },
  DR_MONITORING_INTERVAL: { schema: monitoringSeconds, default: '3600', doc: 'Seconds between two monitoring checks (seed variable, in seconds as in the seed; whole minutes, 60 to 86400). `schedules apply --monitor-interval` takes minutes.' },
  DR_CLEANUP_TIME: { schema: timeOfDay, default: '05:00', doc: 'Daily retention and pack collection (HH:MM).' },
  DR_SCHEDULE_TIMEZONE: { schema: timeZone, default: 'UTC', doc: 'IANA time zone of the times above (e.g. Europe/Brussels).' },
  DR_SCHEDULE_JITTER_MINUTES: { schema: wholeNumber(0, 60), default: '0', doc: 'Start each scheduled run up to this many minutes late, at random, so large fleets do not all start at once.' },
  DR_ALERT_REPEAT_HOURS: { schema: wholeNumber(1, 720), default: '24', doc: 'A warning or critical check that persists is alerted again at most this often (hours); a recovery message is sent when it clears.' },
  DR_DRILL_MAX_AGE_DAYS: { schema: wholeNumber(1, 3650), default: '35', doc: 'Drill cadence: the monitor warns when the last drill is older (days), critical at twice that.' },
  DR_PROMETHEUS_TEXTFILE: { schema: absolutePath, doc: 'Also write the monitor figures here in Prometheus text format (node_exporter textfile collector, e.g. /var/lib/node_exporter/textfile/odoo_dr.prom).' },
  // --- Temporal
  DR_TASK_QUEUE: { schema: text, default: 'odoo-dr', doc: 'Task queue of the odoo-dr worker.' },
} satisfies Record<string, Field>;

export type VariableName = keyof typeof FIELDS;
type Parsed = { [K in VariableName]: z.output<ReturnType<(typeof FIELDS)[K]['schema']>> | undefined };

/** The validated configuration. Secret values are only here, for activities to use at run time. */
export interface DrConfig {
  /** Where the configuration was read from, for messages. */
  source: string;
  backupDir: string;
  sessionsDir: string;
  logDir: string;
  retention: {
    cloudDays: number;
    localDays: number;
    scratchHours: number;
    preRecoveryDays: number;
    /** DR_RETENTION_GFS; null: off. */
    gfs: { daily: number; weekly: number; monthly: number } | null;
    collectGraceHours: number;
    logDays: number;
  };
  approvalTimeoutMinutes: number;
  postgres: { host: string; port: number; user: string; password: string | undefined; maintenanceDb: string; binDir: string | undefined };
  odoo: {
    dbUser: string;
    dataDir: string;
    filestoreRoot: string;
    stopCommand: string | undefined;
    startCommand: string | undefined;
    healthUrl: string | undefined;
  };
  tenants: { include: string[]; exclude: string[] };
  configPaths: string[];
  encryption: { recipients: string[]; identityFile: string | undefined; compressionLevel: number };
  /** Session signatures: the key the backup host signs with, the public keys readers trust. */
  signing: { keyFile: string | undefined; trusted: string[] };
  cloud:
    | {
        bucket: string;
        prefix: string;
        region: string;
        endpoint: string | undefined;
        forcePathStyle: boolean;
        serverSideEncryption: 'AES256' | 'aws:kms' | undefined;
        accessKeyId: string | undefined;
        secretAccessKey: string | undefined;
        bandwidthLimit: number | undefined;
      }
    | undefined;
  objectives: { rtoMinutes: number; rpoHours: number };
  performance: { maxParallelBackups: number; ioNiceLevel: number; cpuNiceLevel: number };
  scratchSuffix: string;
  alerts: {
    emails: string[];
    smtp:
      | { host: string; port: number; user: string | undefined; password: string | undefined; from: string | undefined }
      | undefined;
    webhookUrl: string | undefined;
    backupAgeSeconds: number;
    diskUsagePercent: number;
    repeatHours: number;
  };
  /** What `odoo-dr schedules apply` schedules (src/automation/schedules.ts). */
  automation: Omit<AutomationSettings, 'rpoHours' | 'cloud'>;
  monitor: { drillMaxAgeDays: number; prometheusTextfile: string | undefined };
  taskQueue: string;
  /** TEMPORAL_* variables from the file, for @temporalio/envconfig (process env wins). */
  temporalEnv: Record<string, string>;
  /** Non-fatal findings: unknown variables (likely typos), seed variables ignored. */
  warnings: string[];
}

export interface LoadConfigOptions {
  /** Env file to read. Default: `DR_CONFIG`, else `config/dr-config.env` if it exists, else none. */
  path?: string;
  /** Process environment; it overrides the file, as in the seed's shell scripts. */
  env?: NodeJS.ProcessEnv;
  /** Directory relative default paths are resolved against (the checkout). */
  cwd?: string;
}

/** Reads and expands an env file the way the seed's `source dr-config.env` would. */
export function readEnvFile(file: string, env: NodeJS.ProcessEnv): Record<string, string> {
  let content: string;
  try {
    content = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read configuration file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const parsed = parseDotenv(content);
  // Strip the `export ` prefix a shell-sourced file may carry.
  for (const key of Object.keys(parsed)) {
    if (key.startsWith('export ')) {
      parsed[key.slice(7).trim()] = parsed[key]!;
      delete parsed[key];
    }
  }
  // Expand ${VAR} from the file itself and from the environment, without touching process.env.
  const processEnv: Record<string, string> = { ...(env as Record<string, string>) };
  const expanded = expandDotenv({ parsed, processEnv });
  return expanded.parsed ?? parsed;
}

function defaultConfigPath(env: NodeJS.ProcessEnv, cwd: string): string | undefined {
  if (env.DR_CONFIG) return path.resolve(cwd, env.DR_CONFIG);
  const candidate = path.resolve(cwd, 'config/dr-config.env');
  try {
    statSync(candidate);
    return candidate;
  } catch {
    return undefined;
  }
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

const KNOWN = new Set<string>([...Object.keys(FIELDS), 'DR_ENCRYPTION_KEY', 'DR_CONFIG', 'AWS_SESSION_TOKEN']);

/**
 * Secret files that other code reads at run time (here only checked): variable → what the file holds.
 * TEMPORAL_TLS_CLIENT_KEY_PATH is read by @temporalio/envconfig in temporal/connection.ts.
 */
const SECRET_FILES_USED_ELSEWHERE: Record<string, string> = {
  TEMPORAL_TLS_CLIENT_KEY_PATH: 'the private key of the Temporal TLS client certificate',
};

/** What each secret file read here holds, for the permission message. */
const SECRET_FILE_CONTENT: Record<string, string> = {
  POSTGRES_PASSWORD_FILE: 'the PostgreSQL password',
};

/**
 * The problem with a secret file's mode, worded like readIdentity's (src/crypto/age.ts): refused when
 * group or others may access it, as ssh refuses a private key, with the exact fix.
 */
export function secretFileModeProblem(name: string, file: string, mode: number, what: string): string | undefined {
  if ((mode & 0o077) === 0) return undefined;
  return (
    `${name} ${file} is accessible by group or others (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); ` +
    `it holds ${what}, so it must be private to its owner: run \`chmod 600 ${file}\``
  );
}

/** Checks a secret file exists, is a regular file and is private to its owner; true when it is fine. */
function checkSecretFile(name: string, file: string, what: string, problems: string[]): boolean {
  const bad = pathCharacterProblem(name, name, file);
  if (bad) {
    problems.push(bad);
    return false;
  }
  let st;
  try {
    st = statSync(file);
  } catch (err) {
    problems.push(`${name} must name a readable file, got ${JSON.stringify(file)} (${(err as NodeJS.ErrnoException).code})`);
    return false;
  }
  if (!st.isFile()) {
    problems.push(`${name} must name a regular file, got ${JSON.stringify(file)} (${st.isDirectory() ? 'a directory' : 'not a file'})`);
    return false;
  }
  const problem = secretFileModeProblem(name, file, st.mode, what);
  if (problem) problems.push(problem);
  return problem === undefined;
}

/** Reads a secret from a file (one trailing newline dropped), refusing a file group or others may access. */
function readSecretFile(name: string, file: string, problems: string[]): string | undefined {
  const what = SECRET_FILE_CONTENT[name] ?? 'a secret';
  if (!checkSecretFile(name, file, what, problems)) return undefined;
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    // Re-checked on the open file: the file may have been replaced since the stat.
    const problem = secretFileModeProblem(name, file, fstatSync(fd).mode, what);
    if (problem) {
      problems.push(problem);
      return undefined;
    }
    return readFileSync(fd, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    problems.push(`${name} must name a readable file, got ${JSON.stringify(file)} (${(err as NodeJS.ErrnoException).code})`);
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Secrets inside a URL: its userinfo, and for the webhook (whose path is its token) the path and query too. */
function urlSecrets(name: string, value: string | undefined): string[] {
  if (!value) return [];
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    return [];
  }
  let decoded = url.password;
  try {
    decoded = decodeURIComponent(url.password);
  } catch {
    // malformed escape: the raw form is enough
  }
  const out = [url.username, url.password, decoded];
  if (isSecretVariable(name)) {
    out.push(value.trim(), url.pathname + url.search, url.search);
    const last = url.pathname.split('/').filter(Boolean).pop();
    if (last) out.push(last);
  }
  return out.filter((s) => s.length >= 8 || (s.length >= 4 && (s === url.password || s === decoded)));
}

/** Secrets found while loading (from the file and the environment), by configuration. */
const LOADED_SECRETS = new WeakMap<DrConfig, string[]>();

/**
 * Every secret value of a configuration, for scrubSecrets: the passwords and keys it holds, the
 * webhook URL and its token, URL credentials, secret TEMPORAL_* values (API key, TLS key, codec
 * auth, gRPC metadata), and any other secret-named variable of the file or the environment seen by
 * loadConfig. Activities, notifications and the CLI scrub their messages with this one list.
 */
export function configSecrets(config: DrConfig): string[] {
  const out = new Set<string>(LOADED_SECRETS.get(config) ?? []);
  const add = (v: string | undefined) => {
    if (v && v.length >= 4) out.add(v);
  };
  add(config.postgres.password);
  add(config.cloud?.secretAccessKey);
  add(config.alerts.smtp?.password);
  for (const v of urlSecrets('DR_WEBHOOK_URL', config.alerts.webhookUrl)) add(v);
  for (const v of urlSecrets('DR_S3_ENDPOINT', config.cloud?.endpoint)) add(v);
  for (const v of urlSecrets('DR_ODOO_HEALTH_URL', config.odoo.healthUrl)) add(v);
  for (const [k, v] of Object.entries(config.temporalEnv)) if (isSecretVariable(k) || secretByValue(k, v)) add(v);
  return [...out];
}

/** Loads, validates and returns the configuration, or throws one ConfigError listing every problem. */
export function loadConfig(options: LoadConfigOptions = {}): DrConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const file = options.path ? path.resolve(cwd, options.path) : defaultConfigPath(env, cwd);
  const fromFile = file ? readEnvFile(file, env) : {};
  const source = file ?? 'environment';

  const warnings: string[] = [];
  for (const key of Object.keys(fromFile)) {
    if (KNOWN.has(key) || SEED_VARIABLES_IGNORED.has(key) || TEMPORAL_VARIABLE.test(key)) continue;
    const near = [...KNOWN].find((k) => editDistance(k, key) <= 2);
    warnings.push(`${key} in ${source} is not a variable odoo-dr knows${near ? ` (did you mean ${near}?)` : ''}; ignored`);
  }

  // The environment wins over the file, as when the seed's scripts sourced it.
  const lookup = (key: string): string | undefined => env[key] ?? fromFile[key];
  const raw: Record<string, string | undefined> = {};
  for (const key of Object.keys(FIELDS) as VariableName[]) raw[key] = lookup(key);
  // Seed name of the identity file.
  if (raw.DR_ENCRYPTION_KEY_FILE === undefined && lookup('DR_ENCRYPTION_KEY') !== undefined) {
    raw.DR_ENCRYPTION_KEY_FILE = lookup('DR_ENCRYPTION_KEY');
  }

  const problems: string[] = [];
  const parsed = {} as Record<VariableName, unknown>;
  for (const [key, field] of Object.entries(FIELDS) as [VariableName, Field][]) {
    const value = raw[key] === undefined || (raw[key] === '' && field.default !== undefined) ? field.default : raw[key];
    if (value === undefined) {
      parsed[key] = undefined;
      continue;
    }
    // An empty optional variable means "not set", as in the seed (`DR_WEBHOOK_URL=""`).
    if (value === '' && field.default === undefined) {
      parsed[key] = undefined;
      continue;
    }
    const result = field.schema(key).safeParse(value);
    if (result.success) parsed[key] = result.data;
    else problems.push(...result.error.issues.map((issue) => issue.message));
  }
  const p = parsed as Parsed;

  if (p.POSTGRES_PASSWORD !== undefined && p.POSTGRES_PASSWORD_FILE !== undefined) {
    problems.push('POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE are both set; set only one');
  }
  let postgresPassword = p.POSTGRES_PASSWORD;
  if (p.POSTGRES_PASSWORD_FILE !== undefined && postgresPassword === undefined) {
    postgresPassword = readSecretFile('POSTGRES_PASSWORD_FILE', p.POSTGRES_PASSWORD_FILE, problems);
  }
  // Secret files read by others at run time, checked here so a wrong mode fails `config check`, not a backup at 3 am.
  // (DR_ENCRYPTION_KEY_FILE and DR_SIGNING_KEY_FILE are checked by readIdentity / the signing code when used:
  // production hosts need not have them.)
  for (const [name, what] of Object.entries(SECRET_FILES_USED_ELSEWHERE)) {
    const file = lookup(name);
    if (file) checkSecretFile(name, file, what, problems);
  }
  if (p.AWS_SECRET_ACCESS_KEY !== undefined && p.AWS_ACCESS_KEY_ID === undefined) {
    problems.push('AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not; set both or neither');
  }
  if (p.AWS_ACCESS_KEY_ID !== undefined && p.AWS_SECRET_ACCESS_KEY === undefined) {
    problems.push('AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not; set both or neither');
  }
  const include = p.DR_TENANTS ?? [];
  const exclude = p.DR_EXCLUDE_TENANTS ?? [];
  const both = include.filter((t) => exclude.includes(t));
  if (both.length) problems.push(`DR_TENANTS and DR_EXCLUDE_TENANTS both name ${both.join(', ')}; a tenant cannot be both`);
  if (p.DR_BACKUP_INTERVAL_HOURS !== undefined && p.DR_RPO_HOURS !== undefined && p.DR_SCHEDULE_JITTER_MINUTES !== undefined) {
    // The planner's rule (src/automation/schedules.ts), said early: `schedules apply` refuses it without --force.
    if (p.DR_BACKUP_INTERVAL_HOURS * 60 + p.DR_SCHEDULE_JITTER_MINUTES > p.DR_RPO_HOURS * 60) {
      warnings.push(
        `DR_BACKUP_INTERVAL_HOURS=${p.DR_BACKUP_INTERVAL_HOURS}${p.DR_SCHEDULE_JITTER_MINUTES ? ` with DR_SCHEDULE_JITTER_MINUTES=${p.DR_SCHEDULE_JITTER_MINUTES}` : ''} ` +
          `leaves more than DR_RPO_HOURS=${p.DR_RPO_HOURS} between two backups: \`odoo-dr schedules apply\` refuses it without --force`,
      );
    }
  }
  if (p.DR_NOTIFICATION_EMAIL?.length && !p.DR_SMTP_HOST) {
    warnings.push('DR_NOTIFICATION_EMAIL is set but DR_SMTP_HOST is not: no alert e-mail can be sent');
  }

  // Every secret this configuration holds, whatever variable it came from: scrubbed from every
  // problem and warning (defence in depth: e.g. `DR_RPO_HOURS="${POSTGRES_PASSWORD}"` echoes it).
  const secrets = new Set<string>();
  for (const [k, v] of Object.entries(fromFile)) if (v && (isSecretVariable(k) || secretByValue(k, v))) secrets.add(v);
  for (const [k, v] of Object.entries(env)) {
    const ours = KNOWN.has(k) || SEED_VARIABLES_IGNORED.has(k) || TEMPORAL_VARIABLE.test(k);
    if (v && ours && (isSecretVariable(k) || secretByValue(k, v))) secrets.add(v);
  }
  if (postgresPassword) secrets.add(postgresPassword);
  for (const name of ['DR_S3_ENDPOINT', 'DR_ODOO_HEALTH_URL', 'DR_WEBHOOK_URL'] as const) {
    for (const secret of urlSecrets(name, raw[name])) secrets.add(secret);
  }
  if (p.DR_S3_ENDPOINT && hideUrlCredentials(p.DR_S3_ENDPOINT) !== p.DR_S3_ENDPOINT) {
    warnings.push(
      'DR_S3_ENDPOINT has credentials in its URL (hidden); S3 requests are signed with AWS_ACCESS_KEY_ID and ' +
        'AWS_SECRET_ACCESS_KEY, not URL credentials: remove them from the URL',
    );
  }
  const scrubbed = problems.map((m) => scrubSecrets(m, secrets));
  warnings.splice(0, warnings.length, ...warnings.map((w) => scrubSecrets(w, secrets)));

  if (scrubbed.length) {
    throw new ConfigError(
      `invalid configuration (${source}), ${scrubbed.length} problem${scrubbed.length > 1 ? 's' : ''}:\n` +
        scrubbed.map((m) => `  - ${m}`).join('\n'),
      scrubbed,
    );
  }

  const backupDir = p.DR_BACKUP_DIR!;
  const dataDir = p.ODOO_DATA_DIR!;
  const configPaths =
    p.DR_CONFIG_PATHS ??
    [p.DOCKER_COMPOSE_FILE, p.NGINX_CONFIG_PATH, p.SSL_CERTS_PATH].filter((x): x is string => x !== undefined);
  const cloudLocation = p.DR_CLOUD_BUCKET ?? null;
  const temporalEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(fromFile)) if (TEMPORAL_VARIABLE.test(k)) temporalEnv[k] = v;

  const config: DrConfig = {
    source,
    backupDir,
    sessionsDir: path.join(backupDir, 'sessions'),
    logDir: p.DR_LOG_DIR ?? path.join(backupDir, 'logs'),
    retention: {
      cloudDays: p.DR_RETENTION_DAYS!,
      localDays: p.DR_LOCAL_RETENTION_DAYS!,
      scratchHours: p.DR_TEST_RETENTION_HOURS!,
      preRecoveryDays: p.DR_PRE_RECOVERY_RETENTION_DAYS!,
      gfs: p.DR_RETENTION_GFS ?? null,
      collectGraceHours: p.DR_COLLECT_GRACE_HOURS!,
      logDays: p.DR_LOG_RETENTION_DAYS!,
    },
    approvalTimeoutMinutes: p.DR_APPROVAL_TIMEOUT_MINUTES!,
    postgres: {
      host: p.POSTGRES_HOST!,
      port: p.POSTGRES_PORT!,
      user: p.POSTGRES_USER!,
      password: postgresPassword,
      maintenanceDb: p.POSTGRES_MASTER_DB!,
      binDir: p.DR_PG_BIN_DIR,
    },
    odoo: {
      dbUser: p.ODOO_DB_USER ?? p.POSTGRES_USER!,
      dataDir,
      filestoreRoot: p.ODOO_FILESTORE_PATH ?? path.join(dataDir, 'filestore'),
      stopCommand: p.DR_ODOO_STOP_CMD,
      startCommand: p.DR_ODOO_START_CMD,
      healthUrl: p.DR_ODOO_HEALTH_URL || undefined,
    },
    tenants: { include, exclude },
    configPaths,
    signing: { keyFile: p.DR_SIGNING_KEY_FILE, trusted: p.DR_TRUSTED_SIGNERS ?? [] },
    encryption: {
      recipients: p.DR_AGE_RECIPIENTS ?? [],
      identityFile: p.DR_ENCRYPTION_KEY_FILE,
      compressionLevel: p.DR_COMPRESSION_LEVEL!,
    },
    cloud: cloudLocation
      ? {
          bucket: cloudLocation.bucket,
          prefix: cloudLocation.prefix,
          region: p.DR_CLOUD_REGION!,
          endpoint: p.DR_S3_ENDPOINT || undefined,
          forcePathStyle: p.DR_S3_FORCE_PATH_STYLE ?? Boolean(p.DR_S3_ENDPOINT),
          serverSideEncryption: p.DR_CLOUD_ENCRYPTION === 'none' ? undefined : p.DR_CLOUD_ENCRYPTION,
          accessKeyId: p.AWS_ACCESS_KEY_ID,
          secretAccessKey: p.AWS_SECRET_ACCESS_KEY,
          bandwidthLimit: p.DR_BANDWIDTH_LIMIT ?? undefined,
        }
      : undefined,
    objectives: { rtoMinutes: p.DR_RTO_MINUTES!, rpoHours: p.DR_RPO_HOURS! },
    performance: {
      maxParallelBackups: p.DR_MAX_PARALLEL_BACKUPS!,
      ioNiceLevel: p.DR_IO_NICE_LEVEL!,
      cpuNiceLevel: p.DR_CPU_NICE_LEVEL!,
    },
    scratchSuffix: p.DR_TEST_DATABASE_SUFFIX!,
    alerts: {
      emails: p.DR_NOTIFICATION_EMAIL ?? [],
      smtp: p.DR_SMTP_HOST
        ? {
            host: p.DR_SMTP_HOST,
            port: p.DR_SMTP_PORT!,
            user: p.DR_SMTP_USER,
            password: p.DR_SMTP_PASSWORD,
            from: p.DR_SMTP_FROM,
          }
        : undefined,
      webhookUrl: p.DR_WEBHOOK_URL || undefined,
      backupAgeSeconds: p.DR_ALERT_ON_BACKUP_AGE!,
      diskUsagePercent: p.DR_ALERT_ON_DISK_USAGE!,
      repeatHours: p.DR_ALERT_REPEAT_HOURS!,
    },
    automation: {
      backupTime: p.DR_BACKUP_TIME!,
      backupIntervalHours: p.DR_BACKUP_INTERVAL_HOURS,
      validationTime: p.DR_VALIDATION_TIME!,
      validationRestoreTest: p.DR_VALIDATION_RESTORE_TEST!,
      drillEnabled: p.DR_TEST_ENABLED!,
      drillCadence: p.DR_TEST_SCHEDULE!,
      drillTime: p.DR_TEST_TIME!,
      monitoringEnabled: p.DR_MONITORING_ENABLED!,
      monitoringIntervalMinutes: p.DR_MONITORING_INTERVAL! / 60,
      cleanupTime: p.DR_CLEANUP_TIME!,
      timezone: p.DR_SCHEDULE_TIMEZONE!,
      jitterMinutes: p.DR_SCHEDULE_JITTER_MINUTES!,
    },
    monitor: { drillMaxAgeDays: p.DR_DRILL_MAX_AGE_DAYS!, prometheusTextfile: p.DR_PROMETHEUS_TEXTFILE },
    taskQueue: p.DR_TASK_QUEUE!,
    temporalEnv,
    warnings,
  };
  LOADED_SECRETS.set(config, [...secrets]);
  return config;
}

function scrubDeep(value: unknown, secrets: string[]): unknown {
  if (typeof value === 'string') return scrubSecrets(value, secrets);
  if (Array.isArray(value)) return value.map((v) => scrubDeep(v, secrets));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scrubDeep(v, secrets)]));
  }
  return value;
}

/**
 * The configuration with secrets replaced, safe to print or log (`config check --json`). Each field
 * that comes from a variable goes through redactValue (the same rule as error messages: secrets
 * become "(set, hidden)", the webhook keeps only its scheme and host, URLs lose their userinfo); then
 * every string is scrubbed of every secret value of the configuration, so a secret that ends up in
 * another field (a command line, a new field) is hidden all the same.
 */
export function redactConfig(config: DrConfig): unknown {
  const shaped = {
    ...config,
    postgres: { ...config.postgres, password: redactValue('POSTGRES_PASSWORD', config.postgres.password) },
    odoo: {
      ...config.odoo,
      healthUrl: redactValue('DR_ODOO_HEALTH_URL', config.odoo.healthUrl),
      stopCommand: redactValue('DR_ODOO_STOP_CMD', config.odoo.stopCommand),
      startCommand: redactValue('DR_ODOO_START_CMD', config.odoo.startCommand),
    },
    cloud: config.cloud && {
      ...config.cloud,
      endpoint: redactValue('DR_S3_ENDPOINT', config.cloud.endpoint),
      accessKeyId: redactValue('AWS_ACCESS_KEY_ID', config.cloud.accessKeyId),
      secretAccessKey: redactValue('AWS_SECRET_ACCESS_KEY', config.cloud.secretAccessKey),
    },
    alerts: {
      ...config.alerts,
      smtp: config.alerts.smtp && { ...config.alerts.smtp, password: redactValue('DR_SMTP_PASSWORD', config.alerts.smtp.password) },
      webhookUrl: redactValue('DR_WEBHOOK_URL', config.alerts.webhookUrl),
    },
    temporalEnv: Object.fromEntries(Object.entries(config.temporalEnv).map(([k, v]) => [k, redactValue(k, v)])),
  };
  return scrubDeep(shaped, configSecrets(config));
}
