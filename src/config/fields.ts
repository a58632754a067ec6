/** The catalogue of variables odoo-dr reads (value type, default, documentation), and the names it knows. */
import type { z } from 'zod';
import { DRILL_CADENCES } from '../automation/schedules';
import { s3Location } from './s3-location';
import {
  absolutePath,
  ageRecipients,
  bandwidth,
  boolean,
  emails,
  gfsRule,
  httpUrl,
  list,
  monitoringSeconds,
  oneOf,
  optionalText,
  pathList,
  pgName,
  scratchSuffix,
  sshPublicKeys,
  text,
  timeOfDay,
  timeZone,
  wholeNumber,
  zstdParameters,
  type Check,
} from './values';

/** A field: its zod schema over the raw string, a default, and whether it is optional. */
export interface Field {
  schema: (name: string) => Check;
  default?: string;
  doc: string;
}

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
  DR_LOG_RETENTION_DAYS: {
    schema: wholeNumber(1, 36500),
    default: '30',
    doc: 'Days files in DR_LOG_DIR (rotated audit logs, drill reports) are kept; the status report and the current audit log never go.',
  },
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
  DR_CONFIG_PATHS: {
    schema: pathList,
    doc: 'Files and folders of the configuration archive (odoo.conf, compose files, nginx…). Default: the seed variables DOCKER_COMPOSE_FILE, NGINX_CONFIG_PATH, SSL_CERTS_PATH that are set.',
  },
  DOCKER_COMPOSE_FILE: { schema: absolutePath, doc: 'Seed variable; part of the configuration archive when DR_CONFIG_PATHS is unset.' },
  NGINX_CONFIG_PATH: { schema: absolutePath, doc: 'Seed variable; part of the configuration archive when DR_CONFIG_PATHS is unset.' },
  SSL_CERTS_PATH: { schema: absolutePath, doc: 'Seed variable; part of the configuration archive when DR_CONFIG_PATHS is unset.' },
  DR_ODOO_STOP_CMD: { schema: optionalText, doc: 'Shell command that stops Odoo before a recovery swap.' },
  DR_ODOO_START_CMD: { schema: optionalText, doc: 'Shell command that starts Odoo after a recovery swap.' },
  DR_ODOO_HEALTH_URL: { schema: httpUrl, doc: 'Odoo health URL, e.g. http://127.0.0.1:8069/web/health.' },
  // --- Encryption (age)
  DR_AGE_RECIPIENTS: {
    schema: ageRecipients,
    doc: 'age public recipients (age1…) backups are encrypted to. Default: the recipient of DR_ENCRYPTION_KEY_FILE.',
  },
  DR_SIGNING_KEY_FILE: {
    schema: absolutePath,
    doc: 'Ed25519 key (PKCS#8 PEM, mode 0600) the backup host signs session manifests with; create it with `odoo-dr keys signing FILE --create`. Unset: sessions are not signed (readers refuse them).',
  },
  DR_TRUSTED_SIGNERS: {
    schema: sshPublicKeys,
    doc: 'Public keys (ssh-ed25519 AAAA…, comma-separated) whose signatures validation, drills and recovery accept. Default: the public key of DR_SIGNING_KEY_FILE.',
  },
  DR_ENCRYPTION_KEY_FILE: {
    schema: absolutePath,
    doc: 'age identity file (private key, mode 0600); needed only to validate and restore. Seed name: DR_ENCRYPTION_KEY.',
  },
  DR_COMPRESSION_LEVEL: {
    schema: wholeNumber(1, 19),
    default: '1',
    doc: 'zstd compression level (1 fastest … 19 smallest). The seed used 9 for gzip; zstd 1 is faster than gzip -6 at a similar size (README, Performance).',
  },
  DR_DUMP_ZSTD_PARAMETERS: {
    schema: zstdParameters,
    default: 'strategy=5,windowLog=18,chainLog=12,hashLog=13,searchLog=1,minMatch=6',
    doc: 'zstd parameters for database dumps, over DR_COMPRESSION_LEVEL (zstd --zstd=…): lazy matching in a 256 KiB window makes pg_dump -Z0 dumps smaller than pg_dump -Fc (gzip) where zstd -1 does not (README, Performance); none = the level alone.',
  },
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
  DR_PRE_RECOVERY_RETENTION_DAYS: {
    schema: wholeNumber(0, 3650),
    default: '7',
    doc: 'Days the pre-recovery copy of a recovered tenant (database and filestore) is kept before retention drops it.',
  },
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
  DR_BACKUP_INTERVAL_HOURS: {
    schema: wholeNumber(1, 24),
    doc: 'Hours between two backups, from DR_BACKUP_TIME. Default: DR_RPO_HOURS (at most 24, less the jitter); a cadence that breaks the RPO is refused unless --force.',
  },
  DR_VALIDATION_TIME: { schema: timeOfDay, default: '03:00', doc: 'Daily validation of the latest session (HH:MM).' },
  DR_VALIDATION_RESTORE_TEST: {
    schema: boolean,
    default: 'false',
    doc: 'Daily validation also restores every tenant into a neutralized scratch copy (heavy; the drill already does it).',
  },
  DR_TEST_ENABLED: { schema: boolean, default: 'true', doc: 'Schedule disaster-recovery drills (seed variable); false removes the drill schedule.' },
  DR_TEST_SCHEDULE: {
    schema: oneOf(...DRILL_CADENCES),
    default: 'weekly',
    doc: 'Drill cadence (seed variable): daily, weekly (Sundays) or monthly (the 1st).',
  },
  DR_TEST_TIME: { schema: timeOfDay, default: '04:00', doc: 'Time of the drill (HH:MM).' },
  DR_MONITORING_ENABLED: { schema: boolean, default: 'true', doc: 'Schedule the monitoring check (seed variable); false removes the monitor schedule.' },
  DR_MONITORING_INTERVAL: {
    schema: monitoringSeconds,
    default: '3600',
    doc: 'Seconds between two monitoring checks (seed variable, in seconds as in the seed; whole minutes, 60 to 86400). `schedules apply --monitor-interval` takes minutes.',
  },
  DR_CLEANUP_TIME: { schema: timeOfDay, default: '05:00', doc: 'Daily retention and pack collection (HH:MM).' },
  DR_SCHEDULE_TIMEZONE: { schema: timeZone, default: 'UTC', doc: 'IANA time zone of the times above (e.g. Europe/Brussels).' },
  DR_SCHEDULE_JITTER_MINUTES: {
    schema: wholeNumber(0, 60),
    default: '0',
    doc: 'Start each scheduled run up to this many minutes late, at random, so large fleets do not all start at once.',
  },
  DR_ALERT_REPEAT_HOURS: {
    schema: wholeNumber(1, 720),
    default: '24',
    doc: 'A warning or critical check that persists is alerted again at most this often (hours); a recovery message is sent when it clears.',
  },
  DR_DRILL_MAX_AGE_DAYS: {
    schema: wholeNumber(1, 3650),
    default: '35',
    doc: 'Drill cadence: the monitor warns when the last drill is older (days), critical at twice that.',
  },
  DR_PROMETHEUS_TEXTFILE: {
    schema: absolutePath,
    doc: 'Also write the monitor figures here in Prometheus text format (node_exporter textfile collector, e.g. /var/lib/node_exporter/textfile/odoo_dr.prom).',
  },
  // --- Temporal
  DR_TASK_QUEUE: { schema: text, default: 'odoo-dr', doc: 'Task queue of the odoo-dr worker.' },
} satisfies Record<string, Field>;

export type VariableName = keyof typeof FIELDS;
export type Parsed = { [K in VariableName]: z.output<ReturnType<(typeof FIELDS)[K]['schema']>> | undefined };

export const KNOWN = new Set<string>([...Object.keys(FIELDS), 'DR_ENCRYPTION_KEY', 'DR_CONFIG', 'AWS_SESSION_TOKEN']);

/**
 * Variables of the seed's `dr-config.env` that odoo-dr accepts and ignores (their job is done
 * differently here, e.g. Google Drive is not a destination, encryption is always age).
 */
export const SEED_VARIABLES_IGNORED = new Set([
  'DR_SESSION_DIR',
  'PROJECT_ROOT',
  'DR_BACKUP_DESTINATIONS',
  'GDRIVE_FOLDER_NAME',
  'GDRIVE_CREDENTIALS_FILE',
  'GDRIVE_TOKEN_FILE',
  'GDRIVE_CLIENT_ID',
  'GDRIVE_CLIENT_SECRET',
  'GDRIVE_UPLOAD_CHUNK_SIZE',
  'GCS_BUCKET',
  'GOOGLE_APPLICATION_CREDENTIALS',
  'DR_ENCRYPTION_CIPHER',
  'DR_VERIFY_BACKUPS',
  'SHARED_ADDONS_PATH',
  'DR_PARALLEL_RESTORE',
  'DR_AUTO_START_SERVICES',
  'DR_POST_RECOVERY_HEALTH_CHECK',
  'DR_SECURE_DELETE',
  'DR_AUDIT_LOGGING',
  'DR_ACCESS_LOG',
  'DR_AUDIT_LOG',
  'DR_DEBUG_MODE',
  'DR_VERBOSE_LOGGING',
  'DR_KEEP_TEMP_FILES',
]);

/** Temporal connection variables: read by temporal/connection.ts through @temporalio/envconfig. */
export const TEMPORAL_VARIABLE = /^TEMPORAL_/;

/** Levenshtein distance, to suggest the known variable an unknown one is probably a typo of. */
export function editDistance(a: string, b: string): number {
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
