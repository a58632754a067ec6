/**
 * One tenant's database: `pg_dump -Fc -Z0 | zstd`, encrypted in process (age format) and streamed to
 * the session folder, hashed in the same pass. The Odoo facts are read in the very snapshot pg_dump
 * uses (exported snapshot), while it runs, so the manifest's row counts are exactly what the dump holds.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import type { DrConfig } from '../config';
import { readOdooFacts, type OdooFacts } from '../odoo/facts';
import { ageSealer } from '../crypto/age';
import { runPipeline, zstdHasRowMatchFinderFlag, zstdStage, type Stage } from '../pipeline';
import type { PgTools } from '../pgtools';
import { guardIdleErrors, mapPostgresError } from '../postgres';
import { localPath, rel } from './layout';
import type { Artifact } from './manifest';

export interface DumpRequest {
  config: DrConfig;
  tools: PgTools;
  session: string;
  tenant: string;
  recipients: string[];
  signal?: AbortSignal;
  onProgress?: (bytesWritten: number) => void;
  /** Checked just before the finished dump is renamed into place; throws when this attempt was superseded. */
  fence?: () => Promise<void>;
}

export interface DumpResult {
  artifact: Artifact & { pgDump: string };
  facts: OdooFacts;
  durationMs: number;
}

/** Runs `command` at the configured CPU and I/O priority (ionice/nice when installed). */
export function niced(config: DrConfig, command: string, args: string[]): { command: string; args: string[] } {
  const { ioNiceLevel, cpuNiceLevel } = config.performance;
  const nice = ['nice', '-n', String(cpuNiceLevel), command, ...args];
  if (existsSync('/usr/bin/ionice') || existsSync('/bin/ionice')) {
    return { command: 'ionice', args: ['-c2', '-n', String(ioNiceLevel), ...nice] };
  }
  return { command: nice[0]!, args: nice.slice(1) };
}

/** libpq environment for a child process: the password only ever goes here, never in argv. */
export function libpqEnv(config: DrConfig, database?: string): NodeJS.ProcessEnv {
  const { host, port, user, password } = config.postgres;
  return {
    PGHOST: host,
    PGPORT: String(port),
    PGUSER: user,
    ...(password !== undefined ? { PGPASSWORD: password } : {}),
    ...(database ? { PGDATABASE: database } : {}),
    PGAPPNAME: 'odoo-dr',
    PGCONNECT_TIMEOUT: '15',
  };
}

export async function dumpDatabase(req: DumpRequest): Promise<DumpResult> {
  const { config, tools, session, tenant } = req;
  const started = Date.now();
  const relative = rel.database(session, tenant);
  const dest = localPath(config.backupDir, relative);
  await mkdir(path.dirname(dest), { recursive: true });

  // A REPEATABLE READ transaction exports its snapshot; pg_dump joins it and the facts are read in it.
  const client = new pg.Client({
    host: config.postgres.host,
    port: config.postgres.port,
    user: config.postgres.user,
    password: config.postgres.password,
    database: tenant,
    application_name: 'odoo-dr',
    connectionTimeoutMillis: 15_000,
  });
  guardIdleErrors(client);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw mapPostgresError(err, config.postgres, tenant);
  }
  try {
    let snapshot: string;
    try {
      // One round trip: both statements in one simple query (no parameters), each with its result.
      const results = (await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT pg_export_snapshot() AS s')) as unknown as pg.QueryResult[];
      snapshot = (results[1]!.rows[0] as { s: string }).s;
    } catch (err) {
      throw mapPostgresError(err, config.postgres, tenant);
    }
    const dump = niced(config, tools.pgDump, [
      '--format=custom',
      '--compress=0', // zstd compresses better and faster, in its own process (DR_DUMP_ZSTD_PARAMETERS)
      `--snapshot=${snapshot}`,
      '--lock-wait-timeout=300000',
      '--no-password',
      `--dbname=${tenant}`,
    ]);
    const source: Stage = { name: 'pg_dump', command: dump.command, args: dump.args, env: libpqEnv(config) };
    // The facts (exact row counts: a scan of the biggest tables) are read in the exported snapshot
    // while pg_dump runs, not before it: the transaction stays open until both are done.
    const factsFailed = new AbortController();
    const reading = readOdooFacts(client).catch((err: unknown) => {
      const mapped = mapPostgresError(err, config.postgres, tenant);
      factsFailed.abort(mapped);
      throw mapped;
    });
    const dumping = runPipeline({
      source,
      stages: [
        zstdStage(config.encryption.compressionLevel, 0, {
          parameters: config.encryption.dumpZstdParameters,
          noRowMatchFinder: await zstdHasRowMatchFinderFlag(),
        }),
      ],
      sealOutput: ageSealer(req.recipients),
      dest,
      // Each attempt writes its own partial file; a superseded attempt never renames its dump into place.
      uniquePartial: true,
      ...(req.fence ? { beforeRename: req.fence } : {}),
      signal: req.signal ? AbortSignal.any([req.signal, factsFailed.signal]) : factsFailed.signal,
      onProgress: req.onProgress,
      secrets: [config.postgres.password ?? ''].filter(Boolean),
      remember: true,
    });
    const [factsRead, dumped] = await Promise.allSettled([reading, dumping]);
    if (factsRead.status === 'rejected') throw factsRead.reason;
    if (dumped.status === 'rejected') throw dumped.reason;
    const facts = factsRead.value;
    const result = dumped.value;
    // The read-only transaction ends with the connection (no COMMIT round trip: it changed nothing).
    return {
      artifact: { path: relative, bytes: result.bytes, sha256: result.sha256, pgDump: tools.version.full },
      facts,
      durationMs: Date.now() - started,
    };
  } finally {
    await client.end().catch(() => undefined);
  }
}
