/** Finding and reading the env file, as the seed's `source dr-config.env` would. */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { expand as expandDotenv } from 'dotenv-expand';
import { ConfigError } from '../errors';

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

export function defaultConfigPath(env: NodeJS.ProcessEnv, cwd: string): string | undefined {
  if (env.DR_CONFIG) return path.resolve(cwd, env.DR_CONFIG);
  const candidate = path.resolve(cwd, 'config/dr-config.env');
  try {
    statSync(candidate);
    return candidate;
  } catch {
    return undefined;
  }
}
