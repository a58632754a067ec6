/** Every secret value of a loaded configuration, and its printable form with them hidden. */
import { scrubSecrets } from '../errors';
import { isSecretVariable, redactValue, secretByValue, urlSecrets } from './secrets';
import type { DrConfig } from './types';

/** Secrets found while loading (from the file and the environment), by configuration. */
const LOADED_SECRETS = new WeakMap<DrConfig, string[]>();

/** Called by loadConfig: the secrets it saw, for configSecrets. */
export function rememberSecrets(config: DrConfig, secrets: string[]): void {
  LOADED_SECRETS.set(config, secrets);
}

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
