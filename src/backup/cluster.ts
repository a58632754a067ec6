/**
 * Once per session: the cluster's globals (roles, memberships, password hashes: encrypted) and the
 * configuration archive of DR_CONFIG_PATHS (odoo.conf, compose files, nginx…).
 */
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import * as tar from 'tar';
import type { DrConfig } from '../config';
import { PipelineError } from '../errors';
import { ageSealer } from '../crypto/age';
import { runPipeline, zstdStage } from '../pipeline';
import type { PgTools } from '../pgtools';
import { libpqEnv } from './database';
import { localPath, rel } from './layout';
import type { Artifact } from './manifest';

export interface GlobalsResult {
  artifact: Artifact & { warnings: string[] };
}

export async function dumpGlobals(opts: {
  config: DrConfig;
  tools: PgTools;
  session: string;
  recipients: string[];
  signal?: AbortSignal;
}): Promise<GlobalsResult> {
  const { config, tools, session } = opts;
  const relative = rel.globals(session);
  const dest = localPath(config.backupDir, relative);
  await mkdir(path.dirname(dest), { recursive: true });
  const warnings: string[] = [];
  const attempt = (extra: string[]) =>
    runPipeline({
      source: {
        name: 'pg_dumpall',
        command: tools.pgDumpAll,
        args: ['--globals-only', '--no-password', `--database=${config.postgres.maintenanceDb}`, ...extra],
        env: libpqEnv(config),
      },
      stages: [zstdStage(config.encryption.compressionLevel)],
      sealOutput: ageSealer(opts.recipients),
      dest,
      signal: opts.signal,
      secrets: [config.postgres.password ?? ''].filter(Boolean),
      remember: true,
    });
  let result;
  try {
    result = await attempt([]);
  } catch (err) {
    // Only superusers may read password hashes (pg_authid); a DR role without it still saves the roles.
    if (err instanceof PipelineError && /permission denied/i.test(err.message)) {
      warnings.push(`${config.postgres.user} may not read role passwords (not a superuser): globals saved without password hashes`);
      result = await attempt(['--no-role-passwords']);
    } else throw err;
  }
  return { artifact: { path: relative, bytes: result.bytes, sha256: result.sha256, warnings } };
}

export interface ConfigArchiveResult {
  artifact: (Artifact & { paths: string[]; missing: string[] }) | undefined;
  warnings: string[];
}

export async function archiveConfiguration(opts: {
  config: DrConfig;
  session: string;
  recipients: string[];
  signal?: AbortSignal;
}): Promise<ConfigArchiveResult> {
  const { config, session } = opts;
  if (config.configPaths.length === 0) {
    return { artifact: undefined, warnings: ['DR_CONFIG_PATHS is empty: no configuration archive in this session'] };
  }
  const present: string[] = [];
  const missing: string[] = [];
  for (const p of config.configPaths) {
    if (
      await stat(p).then(
        () => true,
        () => false,
      )
    )
      present.push(p);
    else missing.push(p);
  }
  const warnings = missing.map((m) => `configuration path ${m} does not exist: not in the archive`);
  const relative = rel.config(session);
  const dest = localPath(config.backupDir, relative);
  await mkdir(path.dirname(dest), { recursive: true });
  // Paths are stored relative to / so that `tar -x -C /` puts them back where they were.
  const archive = tar.c(
    { cwd: '/', portable: false, follow: false, noDirRecurse: false },
    present.map((p) => p.replace(/^\/+/, '')),
  );
  const result = await runPipeline({
    source: archive as unknown as NodeJS.ReadableStream,
    stages: [zstdStage(config.encryption.compressionLevel)],
    sealOutput: ageSealer(opts.recipients),
    dest,
    signal: opts.signal,
    remember: true,
  });
  return {
    artifact: { path: relative, bytes: result.bytes, sha256: result.sha256, paths: present, missing },
    warnings,
  };
}
