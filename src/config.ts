/**
 * Configuration: the seed-compatible env file (`config/dr-config.env`), validated with zod.
 *
 * Every problem is reported at once, each naming its variable. Secret values never appear in
 * errors, warnings or the printable form of the configuration.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { expand as expandDotenv } from 'dotenv-expand';
import { z } from 'zod';
import { ConfigError } from './errors';

/** Variables whose values are secrets: never printed, never put into workflow inputs. */
export const SECRET_VARIABLES = new Set([
  'POSTGRES_PASSWORD',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'DR_SMTP_PASSWORD',
  'DR_WEBHOOK_URL', // Slack-style webhook URLs embed their token
  'TEMPORAL_API_KEY',
]);

/**
 * Variables of the seed's `dr-config.env` that odoo-dr accepts and ignores (their job is done
 * differently here, e.g. Google Drive is not a destination, encryption is always age).
 */
const SEED_VARIABLES_IGNORED = new Set([
  'DR_SESSION_DIR', 'PROJECT_ROOT', 'DR_BACKUP_DESTINATIONS', 'GDRIVE_FOLDER_NAME', 'GDRIVE_CREDENTIALS_FILE',
  'GDRIVE_TOKEN_FILE', 'GDRIVE_CLIENT_ID', 'GDRIVE_CLIENT_SECRET', 'GDRIVE_UPLOAD_CHUNK_SIZE', 'GCS_BUCKET',
  'GOOGLE_APPLICATION_CREDENTIALS', 'DR_ENCRYPTION_CIPHER', 'DR_VERIFY_BACKUPS', 'DR_MONITORING_ENABLED',
  'DR_MONITORING_INTERVAL', 'DR_TEST_ENABLED', 'DR_TEST_SCHEDULE', 'SHARED_ADDONS_PATH', 'DR_PARALLEL_RESTORE',
  'DR_AUTO_START_SERVICES', 'DR_POST_RECOVERY_HEALTH_CHECK', 'DR_SECURE_DELETE', 'DR_AUDIT_LOGGING',
  'DR_ACCESS_LOG', 'DR_AUDIT_LOG', 'DR_DEBUG_MODE', 'DR_VERBOSE_LOGGING', 'DR_KEEP_TEMP_FILES',
]);

/** Temporal connection variables: read by temporal/connection.ts through @temporalio/envconfig. */
const TEMPORAL_VARIABLE = /^TEMPORAL_/;

type Check = z.ZodType<unknown, string>;

function describeValue(name: string, raw: string): string {
  return SECRET_VARIABLES.has(name) ? `a value of ${raw.length} characters (hidden)` : JSON.stringify(raw);
}

/** A field: its zod schema over the raw string, a default, and whether it is optional. */
interface Field {
  schema: (name: string) => Check;
  default?: string;
  doc: string;
}

function custom<T>(what: string, parse: (raw: string) => T | undefined): (name: string) => z.ZodType<T, string> {
  return (name) =>
    z.string().transform((raw, ctx) => {
      const value = parse(raw.trim());
      if (value === undefined) {
        ctx.addIssue({ code: 'custom', message: `${name} must be ${what}, got ${describeValue(name, raw)}` });
        return z.NEVER;
      }
      return value;
    });
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

const text = custom('a non-empty text', (raw) => (raw === '' ? undefined : raw));
const optionalText = custom('a text', (raw) => raw);

const absolutePath = custom('an absolute path', (raw) => (path.isAbsolute(raw) ? path.normalize(raw) : undefined));

const list = custom('a comma- or space-separated list', (raw) => raw.split(/[\s,]+/).filter(Boolean));

const pathList = custom('a comma-separated list of absolute paths', (raw) => {
  const items = raw.split(',').map((s) => s.trim()).filter(Boolean);
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

/** `s3://bucket/optional/prefix` → bucket and prefix (no leading or trailing slash). */
const s3Location = custom('empty or an S3 location like s3://bucket/prefix', (raw) => {
  if (raw === '') return null;
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(raw);
  if (!m) return undefined;
  return { bucket: m[1]!, prefix: (m[2] ?? '').replace(/^\/+|\/+$/g, '') };
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

/** age X25519 recipients (`age1…`, bech32). */
const ageRecipients = custom('a comma- or space-separated list of age recipients (age1…)', (raw) => {
  const items = raw.split(/[\s,]+/).filter(Boolean);
  return items.every((r) => /^age1[02-9ac-hj-np-z]{58}$/.test(r)) ? items : undefined;
});

const oneOf = <T extends string>(...values: T[]) =>
  custom(`one of ${values.join(', ')}`, (raw) => (values.includes(raw as T) ? (raw as T) : undefined));

/** PostgreSQL identifiers as Odoo uses them for database names and roles. */
const pgName = custom('a PostgreSQL name of at most 63 bytes', (raw) =>
  raw !== '' && Buffer.byteLength(raw) <= 63 && !raw.includes('\0') ? raw : undefined,
);

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
  DR_TEST_DATABASE_SUFFIX: { schema: pgName, default: '_dr_test', doc: 'Suffix of scratch databases of restore tests.' },
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
  retention: { cloudDays: number; localDays: number; scratchHours: number; preRecoveryDays: number };
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
  };
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
    try {
      postgresPassword = readFileSync(p.POSTGRES_PASSWORD_FILE, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      problems.push(
        `POSTGRES_PASSWORD_FILE must name a readable file, got ${JSON.stringify(p.POSTGRES_PASSWORD_FILE)} (${(err as NodeJS.ErrnoException).code})`,
      );
    }
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
  if (p.DR_NOTIFICATION_EMAIL?.length && !p.DR_SMTP_HOST) {
    warnings.push('DR_NOTIFICATION_EMAIL is set but DR_SMTP_HOST is not: no alert e-mail can be sent');
  }

  if (problems.length) {
    throw new ConfigError(
      `invalid configuration (${source}), ${problems.length} problem${problems.length > 1 ? 's' : ''}:\n` +
        problems.map((m) => `  - ${m}`).join('\n'),
      problems,
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

  return {
    source,
    backupDir,
    sessionsDir: path.join(backupDir, 'sessions'),
    logDir: p.DR_LOG_DIR ?? path.join(backupDir, 'logs'),
    retention: {
      cloudDays: p.DR_RETENTION_DAYS!,
      localDays: p.DR_LOCAL_RETENTION_DAYS!,
      scratchHours: p.DR_TEST_RETENTION_HOURS!,
      preRecoveryDays: p.DR_PRE_RECOVERY_RETENTION_DAYS!,
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
    },
    taskQueue: p.DR_TASK_QUEUE!,
    temporalEnv,
    warnings,
  };
}

/** The configuration with secrets replaced, safe to print or log. */
export function redactConfig(config: DrConfig): unknown {
  const hidden = (v: string | undefined) => (v === undefined ? undefined : '(set, hidden)');
  return {
    ...config,
    postgres: { ...config.postgres, password: hidden(config.postgres.password) },
    cloud: config.cloud && { ...config.cloud, secretAccessKey: hidden(config.cloud.secretAccessKey) },
    alerts: {
      ...config.alerts,
      smtp: config.alerts.smtp && { ...config.alerts.smtp, password: hidden(config.alerts.smtp.password) },
      webhookUrl: hidden(config.alerts.webhookUrl),
    },
    temporalEnv: Object.fromEntries(
      Object.entries(config.temporalEnv).map(([k, v]) => [k, SECRET_VARIABLES.has(k) ? '(set, hidden)' : v]),
    ),
  };
}
