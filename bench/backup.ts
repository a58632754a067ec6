/**
 * Backup benchmark: odoo-dr against the bare tools, measured in the same run, printed as ratios.
 *
 *   node dist/bench/backup.js [--move-lines 1000000] [--files 200] [--large-factor 10] [--fleet 50] [--skip-large]
 *
 * Figures (issue "Backup"): tenant database backup (dump + compress + encrypt + local write) vs
 * `pg_dump -Fc -Z0 -f /dev/null` and vs default `pg_dump -Fc`; output size vs default pg_dump;
 * second filestore backup vs the first; peak RSS of the process doing the work, for a tenant and
 * for a larger one; orchestration overhead per tenant for a fleet of tiny tenants. Also the real
 * Odoo 17 tenant. Uses the local stack (npm run stack:up).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { backupFilestore } from '../src/backup/filestore';
import { dumpDatabase } from '../src/backup/database';
import { loadConfig, type DrConfig } from '../src/config';
import { recipientsFor } from '../src/crypto/age';
import { findClientTools } from '../src/pgtools';
import { serverVersion } from '../src/postgres';
import { createTenant, dropTenant, type PgAdminConnection } from '../test/fixtures/odoo-tenants';
import { loadRealOdooTenant } from '../test/fixtures/real-odoo';
import { REPO_ROOT } from '../test/helpers/config';
import { benchFleet } from './fleet';

const { values: args } = parseArgs({
  options: {
    'move-lines': { type: 'string', default: '1000000' },
    files: { type: 'string', default: '200' },
    'file-size': { type: 'string', default: '65536' },
    'large-factor': { type: 'string', default: '10' },
    'skip-large': { type: 'boolean', default: false },
    'only-rss': { type: 'string' },
    fleet: { type: 'string', default: '50' },
    repeat: { type: 'string', default: '3' },
    levels: { type: 'string', default: '1,3,6,9' },
  },
});

const MiB = 1024 * 1024;
const fmt = (n: number, d = 2) => n.toFixed(d);

function configFor(backupDir: string): DrConfig {
  return loadConfig({
    path: path.join(REPO_ROOT, 'config/dr-config.local.env'),
    env: { DR_BACKUP_DIR: backupDir, DR_LOG_DIR: path.join(backupDir, 'logs') },
  });
}

function admin(config: DrConfig): PgAdminConnection {
  const { host, port, user, password } = config.postgres;
  return { host, port, user, ...(password ? { password } : {}) };
}

/** Wall time of a command, best of `repeat`. */
async function timeCommand(cmd: string, argv: string[], env: NodeJS.ProcessEnv, repeat: number): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      const child = spawn(cmd, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}`))));
    });
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

async function best<T>(repeat: number, fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  let ms = Infinity;
  let value: T | undefined;
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    value = await fn();
    ms = Math.min(ms, performance.now() - t0);
  }
  return { ms, value: value! };
}

/** Runs this script again in a child process for one tenant, to measure that process's peak RSS alone. */
function peakRssOfBackup(tenant: string): number {
  const out = execFileSync(process.execPath, [__filename, '--only-rss', tenant], { encoding: 'utf8', maxBuffer: 1 << 20 });
  return Number(/peak-rss-bytes=(\d+)/.exec(out)![1]);
}

async function backupOnce(config: DrConfig, tenant: string, session: string) {
  const server = await serverVersion(config.postgres);
  const tools = await findClientTools(server.major);
  const recipients = await recipientsFor(config);
  const dump = await dumpDatabase({ config, tools, session, tenant, recipients });
  const fs = await backupFilestore({ config, session, tenant, recipients, cloud: false });
  return { dump, fs };
}

async function benchTenant(label: string, config: DrConfig, tenant: string, repeat: number): Promise<void> {
  const server = await serverVersion(config.postgres);
  const tools = await findClientTools(server.major);
  const recipients = await recipientsFor(config);
  const env = { PGHOST: config.postgres.host, PGPORT: String(config.postgres.port), PGUSER: config.postgres.user, PGPASSWORD: config.postgres.password ?? '' };
  const scratch = mkdtempSync(path.join(tmpdir(), 'odoo-dr-bench-out-'));
  const plainDefault = path.join(scratch, 'default.dump');

  const z0 = await timeCommand(tools.pgDump, ['-Fc', '-Z0', '--no-sync', '-f', '/dev/null', `--dbname=${tenant}`], env, repeat);
  const dflt = await timeCommand(tools.pgDump, ['-Fc', '-f', plainDefault, `--dbname=${tenant}`], env, repeat);
  const defaultSize = statSync(plainDefault).size;
  let n = 0;
  const levels = String(args.levels).split(',').map(Number);
  const runs: Array<{ level: number; ms: number; bytes: number }> = [];
  for (const level of levels) {
    const cfg = { ...config, encryption: { ...config.encryption, compressionLevel: level } };
    const r = await best(repeat, () => dumpDatabase({ config: cfg, tools, session: `backup_20260101_000000_bench${n++}`, tenant, recipients }));
    runs.push({ level, ms: r.ms, bytes: r.value.artifact.bytes });
  }
  const dbBytes = Number(
    execFileSync(tools.psql, ['-Atc', `SELECT pg_database_size('${tenant.replace(/'/g, "''")}')`, '--dbname=postgres'], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
    }).trim(),
  );

  const fs1 = await best(1, () => backupFilestore({ config, session: 'backup_20260101_000000_benchfs1', tenant, recipients, cloud: false }));
  const fs2 = await best(1, () => backupFilestore({ config, session: 'backup_20260101_000000_benchfs2', tenant, recipients, cloud: false }));
  rmSync(scratch, { recursive: true, force: true });

  console.log(`\n== ${label}: database ${fmt(dbBytes / MiB, 1)} MiB, filestore ${fs1.value.files} files (${fmt(fs1.value.bytes / MiB, 1)} MiB)`);
  console.log(`pg_dump -Fc -Z0 -f /dev/null --no-sync ${fmt(z0 / 1000)} s`);
  console.log(`pg_dump -Fc (default gzip)        ${fmt(dflt / 1000)} s, ${fmt(defaultSize / MiB, 1)} MiB`);
  console.log('odoo-dr pg_dump -Z0 | zstd -L | age > file (fsync):      time   vs -Z0 (<=1.3)  vs default (<=0.5)  size   vs default (<=1.0)');
  for (const r of runs) {
    console.log(
      `  zstd level ${String(r.level).padEnd(2)}                                       ${fmt(r.ms / 1000)} s  ${fmt(r.ms / z0).padStart(6)}          ${fmt(r.ms / dflt).padStart(6)}             ${fmt(r.bytes / MiB, 1).padStart(5)} MiB  ${fmt(r.bytes / defaultSize).padStart(5)}`,
    );
  }
  console.log(`filestore first backup            ${fmt(fs1.ms / 1000)} s, blobs stored ${fs1.value.blobsStored}`);
  console.log(`filestore second backup           ${fmt(fs2.ms / 1000)} s, blobs stored ${fs2.value.blobsStored}, reused ${fs2.value.blobsReused}`);
  console.log(`  ratio second / first            ${fmt(fs2.ms / fs1.ms)}   (target < 0.10)`);
}

async function main(): Promise<void> {
  if (args['only-rss']) {
    const backupDir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-bench-rss-'));
    await backupOnce(configFor(backupDir), args['only-rss'], 'backup_20260101_000000_benchrss');
    rmSync(backupDir, { recursive: true, force: true });
    console.log(`peak-rss-bytes=${process.resourceUsage().maxRSS * 1024}`);
    return;
  }
  const repeat = Number(args.repeat);
  const backupDir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-bench-'));
  const config = configFor(backupDir);
  const dataDir = config.odoo.dataDir;
  const lines = Number(args['move-lines']);
  const files = Number(args.files);
  const fileSize = Number(args['file-size']);
  console.log(`odoo-dr backup benchmark, ${new Date().toISOString()}, zstd level ${config.encryption.compressionLevel}, best of ${repeat}`);

  const big = 'bench-tenant';
  const t0 = performance.now();
  await createTenant(admin(config), dataDir, { name: big, moveLines: lines, files, fileSize });
  console.log(`(created ${big}: ${lines} move lines, ${files} files, in ${fmt((performance.now() - t0) / 1000, 1)} s)`);
  await benchTenant(`generated tenant, ${lines} move lines`, config, big, repeat);

  const real = 'bench-odoo17';
  await loadRealOdooTenant(admin(config), dataDir, { name: real });
  await benchTenant('real Odoo 17 tenant (shared/fixtures)', config, real, repeat);

  console.log('\n== peak RSS of a process backing up one tenant (dump + filestore)');
  const rss1 = peakRssOfBackup(big);
  console.log(`${lines} move lines                  ${fmt(rss1 / MiB, 0)} MiB   (target < 300)`);
  if (!args['skip-large']) {
    const factor = Number(args['large-factor']);
    const large = 'bench-tenant-large';
    await createTenant(admin(config), dataDir, { name: large, moveLines: lines * factor, files: files * 2, fileSize: fileSize * 4 });
    const rssL = peakRssOfBackup(large);
    console.log(`${lines * factor} move lines (x${factor})           ${fmt(rssL / MiB, 0)} MiB   (target: no more than the x1 tenant)`);
    await dropTenant(admin(config), dataDir, large);
  }
  console.log(`(real Odoo tenant                 ${fmt(peakRssOfBackup(real) / MiB, 0)} MiB)`);

  await dropTenant(admin(config), dataDir, big);
  await dropTenant(admin(config), dataDir, real);
  rmSync(backupDir, { recursive: true, force: true });

  const fleet = Number(args.fleet);
  if (fleet > 0) {
    await benchFleet(fleet);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
