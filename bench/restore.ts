/**
 * Restore-test benchmark: odoo-dr's restore test (decrypt + decompress + pg_restore -j2, filestore
 * blobs, neutralization, Odoo checks) against `CREATE DATABASE` + `pg_restore -j2` of the same
 * already-decrypted dump, measured in the same run, printed as ratios (aim <= 1.3).
 *
 *   node dist/bench/restore.js [--move-lines 1000000] [--files 200] [--repeat 2]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { dumpDatabase } from '../src/backup/database';
import { backupFilestore } from '../src/backup/filestore';
import { localPath, rel } from '../src/backup/layout';
import type { Manifest, TenantEntry } from '../src/backup/manifest';
import { loadConfig, type DrConfig } from '../src/config';
import { readIdentity, recipientsFor } from '../src/crypto/age';
import { findClientTools } from '../src/pgtools';
import { quoteIdent, serverVersion, withClient } from '../src/postgres';
import { restoreTestTenant } from '../src/validate/restore-test';
import { createTenant, dropTenant, type PgAdminConnection } from '../test/fixtures/odoo-tenants';
import { loadRealOdooTenant } from '../test/fixtures/real-odoo';
import { REPO_ROOT } from '../test/helpers/config';

const { values: args } = parseArgs({
  options: {
    'move-lines': { type: 'string', default: '1000000' },
    files: { type: 'string', default: '200' },
    repeat: { type: 'string', default: '2' },
  },
});
const MiB = 1024 * 1024;

async function bench(label: string, config: DrConfig, tenant: string, repeat: number): Promise<void> {
  const session = 'backup_20260101_000000_benchrst';
  const server = await serverVersion(config.postgres);
  const tools = await findClientTools(server.major);
  const recipients = await recipientsFor(config);
  const dump = await dumpDatabase({ config, tools, session, tenant, recipients });
  const fs = await backupFilestore({ config, session, tenant, recipients, cloud: false });
  const entry: TenantEntry = {
    status: 'complete',
    durationMs: 0,
    database: dump.artifact,
    filestore: {
      index: fs.index,
      files: fs.files,
      bytes: fs.bytes,
      blobsStored: 0,
      blobsReused: 0,
      blobsUploaded: 0,
      blobsRepaired: 0,
      packsStored: 0,
      packsUploaded: 0,
      mismatched: [],
    },
    odoo: dump.facts,
  };
  const manifest = { session, tenants: { [tenant]: entry } } as unknown as Manifest;
  const identity = await readIdentity(config.encryption.identityFile!);
  const plain = path.join(config.backupDir, `${tenant}.dump`);
  execFileSync('bash', [
    '-c',
    'age -d -i "$1" "$2" | zstd -d -q -o "$3"',
    'x',
    config.encryption.identityFile!,
    localPath(config.backupDir, rel.database(session, tenant)),
    plain,
  ]);
  const env = {
    ...process.env,
    PGHOST: config.postgres.host,
    PGPORT: String(config.postgres.port),
    PGUSER: config.postgres.user,
    PGPASSWORD: config.postgres.password ?? '',
  };

  let bare = Infinity;
  let ours = Infinity;
  let oursDb = Infinity;
  for (let i = 0; i < repeat; i++) {
    const target = `bench_bare_${i}`;
    const t0 = performance.now();
    await withClient(config.postgres, 'postgres', (c) => c.query(`CREATE DATABASE ${quoteIdent(target)} ENCODING 'UTF8' LC_COLLATE 'C' TEMPLATE template0`));
    execFileSync(tools.pgRestore, ['--jobs=2', '--exit-on-error', '--no-owner', `--dbname=${target}`, plain], { env, stdio: 'ignore' });
    bare = Math.min(bare, performance.now() - t0);
    await withClient(config.postgres, 'postgres', (c) => c.query(`DROP DATABASE ${quoteIdent(target)} WITH (FORCE)`));

    const t1 = performance.now();
    const result = await restoreTestTenant({ config, manifest, tenant, identity, id: `bench${i}` });
    ours = Math.min(ours, performance.now() - t1);
    oursDb = Math.min(oursDb, result.databaseMs);
    const bad = result.checks.filter((c) => c.status === 'fail');
    if (bad.length) throw new Error(`restore test failed: ${JSON.stringify(bad)}`);
  }
  rmSync(plain);
  console.log(`\n== ${label}: encrypted dump ${(dump.artifact.bytes / MiB).toFixed(1)} MiB, filestore ${fs.files} files (${(fs.bytes / MiB).toFixed(1)} MiB)`);
  console.log(`CREATE DATABASE + pg_restore -j2 (decrypted dump)     ${(bare / 1000).toFixed(2)} s`);
  console.log(`odoo-dr restore test, database part                   ${(oursDb / 1000).toFixed(2)} s   ratio ${(oursDb / bare).toFixed(2)}`);
  console.log(`odoo-dr restore test, whole (+ filestore, neutralize, checks) ${(ours / 1000).toFixed(2)} s   ratio ${(ours / bare).toFixed(2)}   (aim <= 1.3)`);
}

async function main(): Promise<void> {
  const backupDir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-bench-restore-'));
  const config = loadConfig({ path: path.join(REPO_ROOT, 'config/dr-config.local.env'), env: { DR_BACKUP_DIR: backupDir } });
  const { host, port, user, password } = config.postgres;
  const admin: PgAdminConnection = { host, port, user, ...(password ? { password } : {}) };
  const repeat = Number(args.repeat);
  console.log(`odoo-dr restore benchmark, ${new Date().toISOString()}, best of ${repeat}`);
  const big = 'bench-restore';
  await createTenant(admin, config.odoo.dataDir, { name: big, moveLines: Number(args['move-lines']), files: Number(args.files) });
  await bench(`generated tenant, ${args['move-lines']} move lines`, config, big, repeat);
  await dropTenant(admin, config.odoo.dataDir, big);
  const real = 'bench-restore-odoo17';
  await loadRealOdooTenant(admin, config.odoo.dataDir, { name: real });
  await bench('real Odoo 17 tenant (shared/fixtures)', config, real, repeat + 1);
  await dropTenant(admin, config.odoo.dataDir, real);
  rmSync(backupDir, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
