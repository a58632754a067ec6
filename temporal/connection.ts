/**
 * Temporal connection settings, following Temporal's own conventions (TEMPORAL_ADDRESS,
 * TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS*, profiles in temporal.toml) through
 * @temporalio/envconfig. TEMPORAL_* lines in the odoo-dr env file count too; the process environment wins.
 */
import { Client, Connection } from '@temporalio/client';
import { loadClientConnectConfig, type ClientConnectConfig } from '@temporalio/envconfig';
import type { NativeConnection } from '@temporalio/worker';
import type { DrConfig } from '../src/config';

export function temporalSettings(config: DrConfig, env: NodeJS.ProcessEnv = process.env): ClientConnectConfig & { namespace: string } {
  const merged: Record<string, string> = { ...config.temporalEnv };
  for (const [k, v] of Object.entries(env)) if (v !== undefined) merged[k] = v;
  const loaded = loadClientConnectConfig({ overrideEnvVars: merged });
  loaded.connectionOptions.address ??= '127.0.0.1:7233';
  return { ...loaded, namespace: loaded.namespace ?? 'default' };
}

/** A client for starting, signalling and querying workflows. Close its connection when done. */
export async function connectClient(config: DrConfig): Promise<Client> {
  const { connectionOptions, namespace } = temporalSettings(config);
  const connection = await Connection.connect(connectionOptions).catch((err: unknown) => {
    throw new Error(
      `cannot reach Temporal at ${connectionOptions.address} (namespace ${namespace}): ${(err as Error).message}. ` +
        'Is the server running? For the local stack: npm run stack:up',
    );
  });
  return new Client({ connection, namespace });
}

/** The worker's connection (the native one used by @temporalio/worker). */
export async function connectWorker(config: DrConfig): Promise<{ connection: NativeConnection; namespace: string }> {
  const { connectionOptions, namespace } = temporalSettings(config);
  // Loaded here, not at start-up: the CLI's other commands never need the worker's native code.
  const { NativeConnection } = await import('@temporalio/worker');
  const connection = await NativeConnection.connect(connectionOptions).catch((err: unknown) => {
    throw new Error(`cannot reach Temporal at ${connectionOptions.address} (namespace ${namespace}): ${(err as Error).message}`);
  });
  return { connection, namespace };
}
