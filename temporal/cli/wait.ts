/**
 * Waiting for a workflow's result from the CLI (`--wait`): reconnects while Temporal is restarting
 * or unreachable (up to --reconnect-timeout), with one status line on stderr.
 */
import { Client, Connection, isGrpcServiceError, isRetryableError, type WorkflowHandle } from '@temporalio/client';
import { NamespaceNotFoundError, type Workflow, type WorkflowResultType } from '@temporalio/common';
import type { DrConfig } from '../../src/config';
import { scrubSecrets } from '../../src/errors';
import { temporalSettings } from '../connection';
import { CliExit, EXIT, formatDuration, type GlobalOptions } from './common';

/** Default of --reconnect-timeout: how long Temporal may stay unreachable while the CLI waits for a workflow. */
export const DEFAULT_RECONNECT_TIMEOUT_MINUTES = 30;

/** --reconnect-timeout in milliseconds (exit 2 when it is not a positive number of minutes). */
export function reconnectTimeoutMs(opts: GlobalOptions): number {
  if (opts.reconnectTimeout === undefined) return DEFAULT_RECONNECT_TIMEOUT_MINUTES * 60_000;
  const minutes = Number(opts.reconnectTimeout);
  if (!Number.isFinite(minutes) || minutes <= 0) {
    throw new CliExit(EXIT.usage, `--reconnect-timeout must be a positive number of minutes, got "${opts.reconnectTimeout}"`);
  }
  return minutes * 60_000;
}

/** While waiting, a connection that worked this long ends an outage (see waitForWorkflow). */
const STABLE_CONNECTION_MS = 10_000;

/** gRPC status DEADLINE_EXCEEDED (@grpc/grpc-js is not a direct dependency). */
const GRPC_DEADLINE_EXCEEDED = 4;

/**
 * True when `err` means the Temporal server could not be reached or dropped the call (worth
 * reconnecting), as opposed to an answer (workflow failed, not found, permission denied). The gRPC
 * codes are the SDK's own list of retryable ones (`isRetryableError`: UNAVAILABLE, UNKNOWN,
 * RESOURCE_EXHAUSTED, ABORTED, transient INTERNAL…) plus DEADLINE_EXCEEDED; a connection that never
 * became ready fails with a plain error from grpc-js.
 */
export function isTemporalUnavailable(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; e instanceof Error && depth < 8; depth++, e = e.cause) {
    if (isGrpcServiceError(e)) return (e.code as number) === GRPC_DEADLINE_EXCEEDED || isRetryableError(e);
    if (/Failed to connect before the deadline|Channel has been shut down/i.test(e.message)) return true;
  }
  return false;
}

/** One status line on stderr: redrawn in place on a terminal, printed when it changes otherwise; notes go above it. */
class StatusLine {
  private readonly tty = Boolean(process.stderr.isTTY);
  private last = '';
  private drawn = false;

  show(text: string): void {
    if (text === this.last) return;
    this.last = text;
    process.stderr.write(this.tty ? `\r\x1b[2K${text}` : `${text}\n`);
    this.drawn = this.tty;
  }

  /** A line of its own; the progress line is drawn again (below it) at its next update. */
  note(text: string): void {
    process.stderr.write(`${this.drawn ? '\r\x1b[2K' : ''}${text}\n`);
    this.drawn = false;
    this.last = '';
  }

  end(): void {
    if (this.drawn) process.stderr.write('\n');
    this.drawn = false;
  }
}

export interface WaitSettings<T extends Workflow> {
  config: DrConfig;
  /** Stop waiting (exit 3) once Temporal has been unreachable this long. */
  reconnectTimeoutMs: number;
  /** odoo-dr commands that show the workflow's outcome, printed when giving up (besides the `temporal` CLI). */
  follow?: string[];
  /** One line of progress, asked about every second (a query). */
  progress?: (handle: WorkflowHandle<T>) => Promise<string>;
}

/**
 * Waits for a workflow's result, surviving a Temporal server restart or a network cut: a lost
 * connection is re-created (Connection.connect checks the server answers) with a backoff of 1 s
 * doubling to 1 min, until the result is available or Temporal has been unreachable for
 * `reconnectTimeoutMs` (then CliExit 3 naming the workflow and how to follow it). The workflow's
 * own outcome (result, WorkflowFailedError) is returned or thrown unchanged.
 *
 * The wait has its own connection without the SDK's gRPC retry interceptor: that interceptor gives up
 * after about 20 s (WorkflowHandle.result() then throws "Failed to get Workflow execution history"),
 * and a retry it has scheduled crashes the process with "Channel has been shut down" when the
 * connection is closed meanwhile. Here the retrying is this loop's, so a connection can be closed at
 * any time.
 */
export async function waitForWorkflow<T extends Workflow>(workflowId: string, settings: WaitSettings<T>): Promise<WorkflowResultType<T>> {
  const { connectionOptions, namespace } = temporalSettings(settings.config);
  const address = connectionOptions.address ?? '127.0.0.1:7233';
  const line = new StatusLine();
  let connection: Connection | undefined;
  let handle: WorkflowHandle<T> | undefined;
  let outageStart: number | undefined;
  let connectedAt: number | undefined;
  let delay = 1000;
  let querying = false;
  const progress = settings.progress;
  const timer = progress
    ? setInterval(() => {
        if (!handle || querying) return;
        querying = true;
        progress(handle)
          .then(
            (text) => line.show(text),
            () => undefined,
          )
          .finally(() => (querying = false));
      }, 1000)
    : undefined;
  try {
    for (;;) {
      try {
        if (!handle) {
          // While reconnecting, one attempt may not outlast the time left before giving up.
          const left = outageStart === undefined ? 10_000 : settings.reconnectTimeoutMs - (Date.now() - outageStart);
          const fresh = Connection.lazy({ ...connectionOptions, interceptors: [], connectTimeout: Math.min(10_000, Math.max(1000, left)) });
          connection = fresh;
          await fresh.ensureConnected();
          handle = new Client({ connection: fresh, namespace }).workflow.getHandle<T>(workflowId);
          connectedAt = Date.now();
          if (outageStart !== undefined) {
            line.note(`reconnected to Temporal at ${address} after ${formatDuration(connectedAt - outageStart)}; still waiting for workflow ${workflowId}`);
          }
        }
        return await handle.result();
      } catch (err) {
        // Right after a restart the server may not serve the namespace yet.
        const transient = isTemporalUnavailable(err) || (outageStart !== undefined && err instanceof NamespaceNotFoundError);
        if (!transient) throw err;
        const now = Date.now();
        // The outage is over once a connection worked for a while; a server that answers the
        // connection check but fails the wait at once (still starting, a service behind it down)
        // continues it: the backoff keeps growing and the give-up clock keeps running.
        if (outageStart !== undefined && connectedAt !== undefined && now - connectedAt >= STABLE_CONNECTION_MS) {
          outageStart = undefined;
          delay = 1000;
        }
        connectedAt = undefined;
        if (outageStart === undefined) {
          outageStart = now;
          const reason = ((err as Error).cause as Error | undefined)?.message ?? (err as Error).message;
          line.note(
            `Temporal at ${address} unavailable (${scrubSecrets(reason.split('\n')[0] ?? '', [])}), reconnecting… (workflow ${workflowId} keeps running on the server)`,
          );
        } else if (delay >= 16_000) {
          line.note(`Temporal at ${address} still unavailable after ${formatDuration(now - outageStart)}; next attempt in ${formatDuration(delay)}`);
        }
        handle = undefined;
        await connection?.close();
        connection = undefined;
        const remaining = settings.reconnectTimeoutMs - (now - outageStart);
        if (remaining <= 0) {
          const follow = [`temporal workflow show -w ${workflowId} --address ${address} --namespace ${namespace}`, ...(settings.follow ?? [])];
          throw new CliExit(
            EXIT.unavailable,
            `Temporal at ${address} has been unreachable for ${formatDuration(now - outageStart)}: stopped waiting for workflow ${workflowId}, which keeps running on the server. ` +
              `Follow it with: ${follow.join(' or: ')}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(delay, remaining)));
        delay = Math.min(delay * 2, 60_000);
      }
    }
  } finally {
    if (timer) clearInterval(timer);
    line.end();
    await connection?.close();
  }
}
