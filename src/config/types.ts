/** The validated configuration's shape, and how loadConfig is called. */
import type { AutomationSettings } from '../automation/schedules';

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
  encryption: { recipients: string[]; identityFile: string | undefined; compressionLevel: number; dumpZstdParameters: string };
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
    smtp: { host: string; port: number; user: string | undefined; password: string | undefined; from: string | undefined } | undefined;
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
