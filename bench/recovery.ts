/**
 * database-only recovery benchmark: the recovery's own steps (decrypt, shadow restore with owners,
 * verification, swap) against `CREATE DATABASE` + `pg_restore -j2` of the same decrypted dump,
 * measured in the same run; the swap (Odoo's downtime, without its stop/start) printed apart.
 *
 *   node dist/bench/recovery.js [--move-lines 1000000] [--repeat 2]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { dumpDatabase } from '../src/backup/database';
import { localPath, rel } from '../src/backup/layout';
import { loadConfig, type DrConfig } from '../src/config';
import { readIdentity, recipientsFor } from '../src/crypto/age';
import { findClientTools } from '../src/pgtools';
import { quoteIdent, serverVersion, withClient } from '../src/postgres';
import { filestorePreRecoveryDir, filestoreShadowDir, preRecoveryName, recoveryStamp, shadowName } from '../src/recovery/names';
import { dropPreRecovery } from '../src/recovery/pre-recovery';
import { restoreShadow, verifyShadow } from '../src/recovery/shadow';
import { swapIn } from '../src/recovery/swap';
import { createTenant, dropTenant, type PgAdminConnection } from '../test/fixtures/odoo-tenants';
import { loadRealOdooTenant } from '../test/fixtures/real-odoo';
import { REPO_ROOT } from '../test/helpers/config';

const { values: args } = parseArgs({
  options: { 'move-lines': { type: 'string', default: '1000000' }, repeat: { type: 'string', default: '2' } },
});

async function bench(label: string, config: DrConfig, tenant: string, repeat: number): Promise<void> {
  const session = 'backup_20260101_000000_benchrec';
  const tools = await findClientTools((await serverVersion(config.postgres)).major);
  const dump = await dumpDatabase({ config, tools, session, tenant, recipients: await recipientsFor(config) });
  const encrypted = localPath(config.backupDir, rel.database(session, tenant));
  const identity = await readIdentity(config.encryption.identityFile!);
  const plain = path.join(config.backupDir, `${tenant}.dump`);
  execFileSync('bash', ['-c', 'age -d -i "$1" "$2" | zstd -d -q -o "$3"', 'x', config.encryption.identityFile!, encrypted, plain]);
  const env = {
    ...process.env,
    PGHOST: config.postgres.host,
    PGPORT: String(config.postgres.port),
    PGUSER: config.postgres.user,
    PGPASSWORD: config.postgres.password ?? '',
  };
  let bare = Infinity;
  let ours = Infinity;
  let swap = Infinity;
  for (let i = 0; i < repeat; i++) {
    const target = `bench_rec_bare_${i}`;
    const t0 = performance.now();
    await withClient(config.postgres, 'postgres', (c) => c.query(`CREATE DATABASE ${quoteIdent(target)} ENCODING 'UTF8' LC_COLLATE 'C' TEMPLATE template0`));
    execFileSync(tools.pgRestore, ['--jobs=2', '--exit-on-error', `--dbname=${target}`, plain], { env, stdio: 'ignore' });
    bare = Math.min(bare, performance.now() - t0);
    await withClient(config.postgres, 'postgres', (c) => c.query(`DROP DATABASE ${quoteIdent(target)} WITH (FORCE)`));

    const id = `bench${i}`;
    const stamp = recoveryStamp(new Date(Date.now() + i * 1000));
    const t1 = performance.now();
    const shadow = await restoreShadow({ config, tenant, id, encryptedDump: encrypted, indexFile: '', identity, filestoreFrom: 'live' });
    const checks = await verifyShadow({ config, database: shadow.database, filestoreDir: shadow.filestoreDir, expected: dump.facts });
    const bad = checks.filter((c) => c.status === 'fail');
    if (bad.length) throw new Error(`shadow does not verify: ${JSON.stringify(bad)}`);
    const swapped = await swapIn(config, {
      tenant,
      shadowDb: shadowName(tenant, id),
      shadowDir: filestoreShadowDir(config, tenant, id),
      preRecoveryDb: preRecoveryName(tenant, stamp),
      preRecoveryDir: filestorePreRecoveryDir(config, tenant, stamp),
      tenantExisted: true,
      tenantDirExisted: true,
    });
    ours = Math.min(ours, performance.now() - t1);
    swap = Math.min(swap, swapped.downtimeMs);
    await dropPreRecovery(config, tenant, 0, new Date(Date.now() + 60_000));
  }
  rmSync(plain);
  console.log(`\n== ${label}`);
  console.log(`CREATE DATABASE + pg_restore -j2 (decrypted dump)          ${(bare / 1000).toFixed(2)} s`);
  console.log(`odoo-dr database-only (decrypt, shadow, verify, swap)     ${(ours / 1000).toFixed(2)} s   ratio ${(ours / bare).toFixed(2)}   (aim <= 1.5)`);
  console.log(`  of which the swap (Odoo down, stop/start not included)  ${swap.toFixed(0)} ms   (aim < 5000)`);
}

async function main(): Promise<void> {
  const backupDir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-bench-rec-'));
  const dataDir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-bench-rec-data-'));
  const config = loadConfig({ path: path.join(REPO_ROOT, 'config/dr-config.local.env'), env: { DR_BACKUP_DIR: backupDir, ODOO_DATA_DIR: dataDir } });
  const { host, port, user, password } = config.postgres;
  const admin: PgAdminConnection = { host, port, user, ...(password ? { password } : {}) };
  const repeat = Number(args.repeat);
  console.log(`odoo-dr recovery benchmark, ${new Date().toISOString()}, best of ${repeat}`);
  await createTenant(admin, dataDir, { name: 'bench-recovery', moveLines: Number(args['move-lines']), files: 50 });
  await bench(`generated tenant, ${args['move-lines']} move lines`, config, 'bench-recovery', repeat);
  await dropTenant(admin, dataDir, 'bench-recovery');
  await loadRealOdooTenant(admin, dataDir, { name: 'bench-recovery-odoo17' });
  await bench('real Odoo 17 tenant (shared/fixtures)', config, 'bench-recovery-odoo17', repeat + 1);
  await dropTenant(admin, dataDir, 'bench-recovery-odoo17');
  rmSync(backupDir, { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
