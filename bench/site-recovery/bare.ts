/**
 * The bare-tools side of the site-recovery benchmark: what a person with the bucket, the key and a
 * shell would run on a fresh PostgreSQL cluster (S3 GetObject, `age -d | zstd -d`, `createdb -O odoo`,
 * `pg_restore -j2`, every filestore pack through `age -d | zstd -d | tar -x`), 3 tenants at a time,
 * without verification, shadow/swap or orchestration.
 */
import { execFile, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { DrConfig } from '../../src/config';
import type { TenantInfo } from '../../test/fixtures/odoo-tenants';
import { startFreshPostgres, type FreshPostgres } from '../../test/helpers/fresh-site';
import { MiB } from '../harness';
import { assertRestored, PARALLEL } from './restored';

export const STACK_DIR = path.resolve(process.env.ODOO_DR_STACK_DIR ?? '/var/tmp/odoo-dr-stack');
const PG_BIN = `/usr/lib/postgresql/${process.env.ODOO_DR_PG_MAJOR ?? '15'}/bin`;
/** Filestore packs in flight per tenant: odoo-dr's restore reads two at a time, the baseline too. */
const PACK_CONCURRENCY = 2;
const run = promisify(execFile);

/** Runs `fn` over `items`, `limit` at a time; the first error wins (after the running ones settle). */
async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const lane = async () => {
    while (next < items.length && errors.length === 0) {
      const item = items[next++]!;
      await fn(item).catch((err: unknown) => void errors.push(err));
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (errors.length) throw errors[0];
}

async function sh(file: string, argv: string[], env?: NodeJS.ProcessEnv): Promise<void> {
  try {
    await run(file, argv, { env: env ?? process.env, maxBuffer: 16 * MiB });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`${path.basename(file)} ${argv.slice(0, 3).join(' ')}… failed: ${e.stderr?.trim() || e.message}`);
  }
}

/** `age -d | zstd -d | tar -x` of a stream into `dest` (the README's break-glass for a pack). */
function unpackInto(body: Readable, identityFile: string, dest: string): Promise<void> {
  const child = spawn('bash', ['-c', 'set -o pipefail; age -d -i "$1" | zstd -d -q | tar -x -C "$2"', 'x', identityFile, dest], {
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`age -d | zstd -d | tar -x into ${dest} exited ${code}: ${stderr.trim()}`))));
  });
  return Promise.all([pipeline(body, child.stdin), exited]).then(() => undefined);
}

/** The bare tools: what a person with the bucket, the key and a shell would run, 3 tenants at a time. */
export async function bareRecovery(opts: { stack: DrConfig; session: string; infos: TenantInfo[] }): Promise<number> {
  const cloud = opts.stack.cloud!;
  const identity = opts.stack.encryption.identityFile!;
  const s3 = new S3Client({
    region: cloud.region,
    endpoint: cloud.endpoint,
    forcePathStyle: cloud.forcePathStyle,
    ...(cloud.accessKeyId && cloud.secretAccessKey ? { credentials: { accessKeyId: cloud.accessKeyId, secretAccessKey: cloud.secretAccessKey } } : {}),
  });
  const key = (...parts: string[]) => [cloud.prefix, ...parts].filter((p) => p !== '').join('/');
  const get = async (k: string) => (await s3.send(new GetObjectCommand({ Bucket: cloud.bucket, Key: k }))).Body as Readable;
  let pg: FreshPostgres | undefined;
  let work: string | undefined;
  try {
    pg = await startFreshPostgres();
    work = mkdtempSync(path.join(STACK_DIR, 'bench-site-bare-'));
    const password = readFileSync(pg.passwordFile, 'utf8').trim();
    const env = { ...process.env, PGHOST: pg.host, PGPORT: String(pg.port), PGUSER: 'postgres', PGPASSWORD: password, PGDATABASE: 'postgres' };
    const tenantDir = (t: string) => `sessions/${opts.session}/tenants/${t}`;
    const scratch = work;

    const t0 = performance.now();
    await sh(path.join(PG_BIN, 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', 'CREATE ROLE odoo LOGIN'], env);
    await pool(opts.infos, PARALLEL, async ({ name }) => {
      const encrypted = path.join(scratch, `${name}.dump.zst.age`);
      const plain = path.join(scratch, `${name}.dump`);
      await pipeline(await get(key(tenantDir(name), 'database.dump.zst.age')), createWriteStream(encrypted));
      await sh('bash', ['-c', 'set -o pipefail; age -d -i "$1" "$2" | zstd -d -q > "$3"', 'x', identity, encrypted, plain]);
      await sh(path.join(PG_BIN, 'createdb'), ['-O', 'odoo', name], env);
      await sh(path.join(PG_BIN, 'pg_restore'), ['-j2', '--exit-on-error', '-d', name, plain], env);
      rmSync(encrypted);
      rmSync(plain);
      const chunks: Buffer[] = [];
      for await (const chunk of await get(key(tenantDir(name), 'filestore.jsonl'))) chunks.push(chunk as Buffer);
      // The index lists files ({path, sha1, size, pack}) and packs ({pack, bytes}); a pack unpacks to
      // Odoo's own `<aa>/<sha1>` layout. Every pack is extracted whole (no selection, no checks).
      const packs = Buffer.concat(chunks)
        .toString('utf8')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as { pack?: string; path?: string })
        .filter((e): e is { pack: string } => e.pack !== undefined && e.path === undefined)
        .map((e) => e.pack);
      const dest = path.join(scratch, 'filestore', name);
      mkdirSync(dest, { recursive: true });
      await pool(packs, PACK_CONCURRENCY, async (pack) => unpackInto(await get(key('packs', pack.slice(0, 2), `${pack}.tar.zst.age`)), identity, dest));
    });
    const ms = performance.now() - t0;

    await assertRestored('bare tools', { host: pg.host, port: pg.port, user: 'postgres', password }, path.join(scratch, 'filestore'), opts.infos);
    return ms;
  } finally {
    s3.destroy();
    await pg?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  }
}
