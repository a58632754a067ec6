/**
 * Stopping and starting Odoo around a recovery swap, and the health check after it.
 *
 * Service commands are operator-provided shell lines (`DR_ODOO_STOP_CMD`, `DR_ODOO_START_CMD`, e.g.
 * `systemctl stop odoo` or `docker compose -f … stop odoo`), run with `sh -c` in their own process
 * group so a timeout or an abort kills everything they started.
 *
 * The health check asks Odoo's health URL (2xx and, when JSON, `status: "pass"`, as `/web/health`
 * answers) and, per tenant, asks the database what Odoo asks when it loads a tenant and logs a
 * user in: is it listed by Odoo (owned by the Odoo role, connectable, not a template), is `base`
 * installed, is there an active user to log in with.
 */
import { spawn } from 'node:child_process';
import { mkdir, open, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DrConfig } from '../config';
import { ServiceCommandError, TenantNotFoundError } from '../errors';
import { withClient } from '../postgres';

const DEFAULT_COMMAND_TIMEOUT_MS = 5 * 60_000;
const OUTPUT_TAIL_CHARS = 4_000;
const MESSAGE_TAIL_CHARS = 1_000;
const KILL_GRACE_MS = 5_000;

export interface ServiceCommandResult {
  /** false when no command is configured. */
  ran: boolean;
  /** Tail of stdout and stderr, interleaved. */
  output: string;
  durationMs: number;
}

function tail(text: string, max: number): string {
  return text.length > max ? `…${text.slice(-max)}` : text;
}

/** Runs a service command with `sh -c` (see the module comment). */
export async function runServiceCommand(
  command: string | undefined,
  what: 'stop' | 'start',
  opts: { timeoutMs?: number; signal?: AbortSignal; outputFile?: string } = {},
): Promise<ServiceCommandResult> {
  const started = Date.now();
  if (command === undefined || command.trim() === '') return { ran: false, output: '', durationMs: 0 };
  opts.signal?.throwIfAborted();
  const timeoutMs = opts.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  const variable = what === 'stop' ? 'DR_ODOO_STOP_CMD' : 'DR_ODOO_START_CMD';
  // The command's output goes to a file, not a pipe: a daemon it starts (an init script,
  // `odoo-bin … &`) may keep the inherited stdout for ever, and must neither hang us nor die of a
  // closed pipe. We resolve on the command's own exit and read what it wrote.
  const outputFile = opts.outputFile ?? path.join(tmpdir(), `odoo-dr-${what}-${process.pid}-${Date.now()}.out`);
  await mkdir(path.dirname(outputFile), { recursive: true });
  const out = await open(outputFile, 'w', 0o600);
  const readOutput = async () => tail((await readFile(outputFile, 'utf8').catch(() => '')).trim(), OUTPUT_TAIL_CHARS);
  return new Promise<ServiceCommandResult>((resolve, reject) => {
    const child = spawn('sh', ['-c', command], { stdio: ['ignore', out.fd, out.fd], detached: true });
    void out.close();
    let reason: 'timeout' | 'abort' | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const killGroup = (sig: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, sig);
      } catch {
        // already gone
      }
    };
    // Only while the command itself runs: what it left running after it exited is never killed.
    const stop = (why: 'timeout' | 'abort') => {
      if (reason) return;
      reason = why;
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS);
    };
    const timer = setTimeout(() => stop('timeout'), timeoutMs);
    const onAbort = () => stop('abort');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const finish = () => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', onAbort);
    };
    child.on('error', (err) => {
      finish();
      reject(new ServiceCommandError(`the Odoo ${what} command (${variable}) \`${command}\` could not be started: ${err.message}`, { cause: err }));
    });
    child.on('exit', (code, sig) => {
      finish();
      const durationMs = Date.now() - started;
      void readOutput().then((output) => {
        const quoted = output ? `; output: ${tail(output, MESSAGE_TAIL_CHARS)}` : '; no output';
        if (reason === 'abort') {
          reject(opts.signal?.reason instanceof Error ? opts.signal.reason : new ServiceCommandError(`the Odoo ${what} command \`${command}\` was cancelled`));
          return;
        }
        if (reason === 'timeout') {
          reject(
            new ServiceCommandError(
              `the Odoo ${what} command (${variable}) \`${command}\` did not finish within ${Math.round(timeoutMs / 1000)} s and was killed${quoted}`,
            ),
          );
          return;
        }
        if (code !== 0) {
          const how = sig ? `was killed by ${sig}` : `exited with code ${code}`;
          reject(new ServiceCommandError(`the Odoo ${what} command (${variable}) \`${command}\` ${how}${quoted}`));
          return;
        }
        resolve({ ran: true, output, durationMs });
      });
    });
  });
}

export interface HealthCheck {
  name: string;
  status: 'pass' | 'fail' | 'skip';
  message: string;
}

function messageOf(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  const cause = e.cause?.code ?? e.cause?.message;
  return `${e.message ?? String(err)}${cause ? ` (${cause})` : ''}`;
}

async function httpCheck(url: string | undefined, timeoutMs: number): Promise<HealthCheck> {
  const name = 'odoo-http';
  if (!url) return { name, status: 'skip', message: 'DR_ODOO_HEALTH_URL is not set: Odoo itself was not checked' };
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
    const body = await res.text();
    if (res.status < 200 || res.status >= 300) {
      return { name, status: 'fail', message: `${url} answered HTTP ${res.status}${body ? `: ${tail(body.trim(), 200)}` : ''}` };
    }
    if ((res.headers.get('content-type') ?? '').includes('json')) {
      let status: unknown;
      try {
        status = (JSON.parse(body) as { status?: unknown }).status;
      } catch {
        return { name, status: 'fail', message: `${url} answered HTTP ${res.status} with invalid JSON` };
      }
      if (status !== undefined && status !== 'pass') {
        return { name, status: 'fail', message: `${url} answered HTTP ${res.status} with status ${JSON.stringify(status)}` };
      }
    }
    return { name, status: 'pass', message: `${url} answered HTTP ${res.status}` };
  } catch (err) {
    return { name, status: 'fail', message: `${url} cannot be reached: ${messageOf(err)}` };
  }
}

async function tenantCheck(config: DrConfig, tenant: string): Promise<HealthCheck> {
  const name = `tenant:${tenant}`;
  try {
    const listed = await withClient(config.postgres, config.postgres.maintenanceDb, async (c) => {
      const { rows } = await c.query<{ owner: string; allow: boolean; tmpl: boolean }>(
        'SELECT pg_get_userbyid(datdba) AS owner, datallowconn AS allow, datistemplate AS tmpl FROM pg_database WHERE datname = $1',
        [tenant],
      );
      return rows[0];
    });
    if (!listed) return { name, status: 'fail', message: `database "${tenant}" does not exist` };
    const hidden = [
      listed.owner !== config.odoo.dbUser ? `owned by "${listed.owner}", not the Odoo role "${config.odoo.dbUser}"` : '',
      listed.allow ? '' : 'it does not accept connections',
      listed.tmpl ? 'it is a template' : '',
    ].filter(Boolean);
    if (hidden.length) return { name, status: 'fail', message: `Odoo does not list "${tenant}": ${hidden.join(', ')}` };
    return await withClient(config.postgres, tenant, async (c) => {
      // What Odoo reads when it loads the registry and logs a user in.
      const base = await c.query<{ v: string | null }>("SELECT latest_version AS v FROM ir_module_module WHERE name = 'base' AND state = 'installed'");
      if (!base.rows[0]) return { name, status: 'fail' as const, message: `"${tenant}": module base is not installed` };
      const users = await c.query<{ n: string }>('SELECT count(*) AS n FROM res_users WHERE active');
      const n = Number(users.rows[0]!.n);
      if (n === 0) return { name, status: 'fail' as const, message: `"${tenant}": no active user can log in` };
      return { name, status: 'pass' as const, message: `"${tenant}" is listed by Odoo, base ${base.rows[0].v ?? '?'} installed, ${n} active users` };
    });
  } catch (err) {
    if (err instanceof TenantNotFoundError) return { name, status: 'fail', message: `database "${tenant}" does not exist` };
    return { name, status: 'fail', message: `"${tenant}" cannot be queried: ${messageOf(err)}` };
  }
}

/** Health after a recovery (see the module comment): one entry for Odoo's URL, one per tenant. */
export async function checkHealth(config: DrConfig, tenants: string[], opts: { timeoutMs?: number } = {}): Promise<HealthCheck[]> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const results: HealthCheck[] = [await httpCheck(config.odoo.healthUrl, timeoutMs)];
  for (const tenant of tenants) results.push(await tenantCheck(config, tenant));
  return results;
}
