/**
 * Configuration: the seed-compatible env file (`config/dr-config.env`), validated with zod (see
 * load.ts). The public API; the files behind it are the variable catalogue (fields.ts), their value
 * types (values.ts, s3-location.ts), the env file (env-file.ts), secrets (secrets.ts, secret-files.ts,
 * redact.ts) and the configuration's shape (types.ts).
 */
export { readEnvFile } from './env-file';
export { FIELDS, type VariableName } from './fields';
export { loadConfig } from './load';
export { configSecrets, redactConfig } from './redact';
export { secretFileModeProblem } from './secret-files';
export { isSecretVariable, NON_SECRET_VARIABLES, printableValue, redactValue, SECRET_VARIABLES } from './secrets';
export type { DrConfig, LoadConfigOptions } from './types';
