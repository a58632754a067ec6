/**
 * What every `odoo-dr` command shares: exit codes, global options, loading the configuration, the
 * Temporal client, names checks and table/size/duration formatting. Commands live beside it.
 */
import { hostname, userInfo } from 'node:os';
import type { Client } from '@temporalio/client';
import { assertSessionName, assertTenantName } from '../../src/backup/layout';
import { loadConfig, type DrConfig } from '../../src/config';
import { ConfigError, type ExitClass } from '../../src/errors';
import { connectClient } from '../connection';

/** Exit codes (README "Exit codes"): one per ExitClass of the error catalogue (src/errors.ts), and 0. */
export const EXIT = {
  ok: 0,
  /** The operation ran and failed (or found a problem). */
  failed: 1,
  /** Bad command line or configuration: nothing was started. */
  usage: 2,
  /** A service (Temporal, PostgreSQL, S3) could not be reached. */
  unavailable: 3,
} as const satisfies Record<ExitClass | 'ok', number>;

export interface GlobalOptions {
  config?: string;
  json?: boolean;
  reconnectTimeout?: string;
}

export class CliExit extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export function load(opts: GlobalOptions): DrConfig {
  try {
    return loadConfig(opts.config ? { path: opts.config } : {});
  } catch (err) {
    if (err instanceof ConfigError) throw new CliExit(EXIT.usage, err.message);
    throw err;
  }
}

export function printWarnings(config: DrConfig): void {
  for (const w of config.warnings) process.stderr.write(`warning: ${w}\n`);
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** Runs `fn` with a Temporal client (exit code 3 when Temporal is unreachable) and always closes it. */
export async function withTemporal<T>(config: DrConfig, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = await connectClient(config).catch((err: Error) => {
    throw new CliExit(EXIT.unavailable, err.message);
  });
  try {
    return await fn(client);
  } finally {
    await client.connection.close();
  }
}

/** Tenant and session names are checked before anything starts (exit 2): they become workflow IDs and paths. */
export function checkNames(opts: { tenants?: string[]; session?: string }): void {
  try {
    for (const t of opts.tenants ?? []) assertTenantName(t);
    if (opts.session !== undefined && opts.session !== 'latest') assertSessionName(opts.session);
  } catch (err) {
    throw new CliExit(EXIT.usage, (err as Error).message);
  }
}

/** `--allow-unsigned` is a loud, explicit choice: say what it means every time. */
export function warnUnsigned(): true {
  process.stderr.write(
    'WARNING: --allow-unsigned: an unsigned session is accepted. Anyone who could write to the backup folder or the bucket could have made it. ' +
      'Use it only for sessions made before signing was set up.\n',
  );
  return true;
}

/** Who started something, for the audit trail and workflow memo. */
export function operatorIdentity(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    /* no passwd entry (containers) */
  }
  return `${user}@${hostname()}`;
}

export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return `${[header, ...rows].map(line).join('\n')}\n`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}
