/** The local stack's configuration, as written by `npm run stack:up`. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { loadConfig, type DrConfig } from '../../src/config';

/** Repository root, from dist/test/helpers or test/helpers alike. */
export const REPO_ROOT = (() => {
  let dir = __dirname;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${__dirname}`);
    dir = up;
  }
  return dir;
})();

export const LOCAL_CONFIG_PATH = process.env.ODOO_DR_TEST_CONFIG ?? path.join(REPO_ROOT, 'config/dr-config.local.env');

let cached: DrConfig | undefined;

/** Loads the local stack configuration; fails loudly (never skips) when the stack is not set up. */
export function stackConfig(overrides: NodeJS.ProcessEnv = {}): DrConfig {
  if (!existsSync(LOCAL_CONFIG_PATH)) {
    throw new Error(`${LOCAL_CONFIG_PATH} is missing: start the local stack first (npm run stack:up)`);
  }
  // Only the file and explicit overrides: a developer's shell must not change what tests see.
  if (Object.keys(overrides).length === 0) {
    cached ??= loadConfig({ path: LOCAL_CONFIG_PATH, env: {} });
    return cached;
  }
  return loadConfig({ path: LOCAL_CONFIG_PATH, env: overrides });
}

/** A short random suffix for names that must not collide between runs. */
export function uniqueSuffix(): string {
  return Math.random().toString(36).slice(2, 8);
}
