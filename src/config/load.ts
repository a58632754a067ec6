/**
 * Configuration: the seed-compatible env file (`config/dr-config.env`), validated with zod.
 *
 * Every problem is reported at once, each naming its variable. Secret values never appear in
 * errors, warnings or the printable form of the configuration.
 */
import path from 'node:path';
import { ConfigError, hideUrlCredentials, scrubSecrets } from '../errors';
import { defaultConfigPath, readEnvFile } from './env-file';
import { editDistance, FIELDS, KNOWN, SEED_VARIABLES_IGNORED, TEMPORAL_VARIABLE, type Field, type Parsed, type VariableName } from './fields';
import { rememberSecrets } from './redact';
import { checkSecretFile, readSecretFile, SECRET_FILES_USED_ELSEWHERE } from './secret-files';
import { isSecretVariable, secretByValue, urlSecrets } from './secrets';
import type { DrConfig, LoadConfigOptions } from './types';

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
      `invalid configuration (${source}), ${scrubbed.length} problem${scrubbed.length > 1 ? 's' : ''}:\n` + scrubbed.map((m) => `  - ${m}`).join('\n'),
      scrubbed,
    );
  }

  const backupDir = p.DR_BACKUP_DIR!;
  const dataDir = p.ODOO_DATA_DIR!;
  const configPaths = p.DR_CONFIG_PATHS ?? [p.DOCKER_COMPOSE_FILE, p.NGINX_CONFIG_PATH, p.SSL_CERTS_PATH].filter((x): x is string => x !== undefined);
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
      dumpZstdParameters: p.DR_DUMP_ZSTD_PARAMETERS ?? '',
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
  rememberSecrets(config, [...secrets]);
  return config;
}
