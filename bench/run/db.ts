/**
 * The db scenario of `npm run bench`: a tenant of --db-mb MiB, `odoo-dr backup --no-cloud --wait`
 * against `pg_dump -Fc -Z0` and default `pg_dump -Fc` (time, and output size), then the restore
 * test and a database-only recovery against `CREATE DATABASE` + `pg_restore -j2`.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import { dirBytes, MiB } from '../harness';
import { createAndRestore, pgDumpDefault, pgDumpUncompressed } from './bare';
import type { Bench } from './bench';
import { AIMS } from './params';
import { benchTenant, moveLinesFor } from './tenants';

/** The db scenario (see bench/run.ts). */
export async function dbScenario(b: Bench): Promise<void> {
  const t = await benchTenant(b, 'db', { moveLines: moveLinesFor(b.p.dbMb), files: 0, dbAttachments: 2 });
  b.scenarioInfo.db = { tenant: t.name, databaseBytes: t.dbSizeBytes, moveLines: t.tables.account_move_line };
  const r = {
    z0: [] as number[],
    dflt: [] as number[],
    dfltBytes: [] as number[],
    ours: [] as number[],
    oursBytes: [] as number[],
    bareRestore: [] as number[],
    restoreTest: [] as number[],
    recovery: [] as number[],
  };
  // A failed run ends the scenario, but the runs done so far still make figures.
  const failure = await b.eachRun('db', 'db', async (i, w) => {
    const tmp = b.tmp('db');
    const z0File = path.join(tmp, 'z0.dump');
    const [bare, ours] = await b.alternate(
      i,
      async () => {
        const z0 = await pgDumpUncompressed(b, t.name, z0File);
        const dflt = await pgDumpDefault(b, t.name, path.join(tmp, 'default.dump'));
        return { z0: z0.ms, dflt: dflt.ms, dfltBytes: statSync(path.join(tmp, 'default.dump')).size };
      },
      () => b.cli('db', w, ['backup', '--tenant', t.name, '--no-cloud', '--wait']),
    );
    const session = String(ours.json.session);
    r.z0.push(bare.z0);
    r.dflt.push(bare.dflt);
    r.dfltBytes.push(bare.dfltBytes);
    r.ours.push(ours.ms);
    r.oursBytes.push(dirBytes(b.backupDir(w)));

    const bareDb = `${b.prefix}-bare`;
    const [bareRestore, restoreTest] = await b.alternate(
      i,
      async () => {
        const x = await createAndRestore(b, bareDb, z0File);
        await b.dropDatabase(bareDb);
        return x.ms;
      },
      async () => (await b.cli('db', w, ['validate', session, '--tenant', t.name, '--restore-test', '--no-cloud', '--wait'])).ms,
    );
    r.bareRestore.push(bareRestore);
    r.restoreTest.push(restoreTest);
    r.recovery.push((await b.cli('db', w, ['recover', '-m', 'database-only', '--tenant', t.name, '-s', session, '--yes', '--wait'])).ms);
    await b.sweep();
    console.log(
      `  run ${i + 1}: backup ${(ours.ms / 1000).toFixed(2)} s vs pg_dump -Z0 ${(bare.z0 / 1000).toFixed(2)} s / default ${(bare.dflt / 1000).toFixed(2)} s; ` +
        `restore test ${(restoreTest / 1000).toFixed(2)} s, database-only recovery ${(r.recovery.at(-1)! / 1000).toFixed(2)} s vs pg_restore -j2 ${(bareRestore / 1000).toFixed(2)} s`,
    );
  });
  const size = `${((t.dbSizeBytes ?? 0) / MiB).toFixed(0)} MiB`;
  const backup = {
    label: '`odoo-dr backup --tenant T --no-cloud --wait` (dump, zstd, age, fsync, manifest, globals, configuration)',
    unit: 'ms' as const,
    runs: r.ours,
  };
  b.pair({
    id: 'db-backup-vs-z0',
    name: `Tenant backup, ${size} database, vs \`pg_dump -Fc -Z0\``,
    scenario: 'db',
    ours: backup,
    bare: { label: '`pg_dump -Fc -Z0 -f FILE`', unit: 'ms', runs: r.z0 },
    aim: { of: 'ratio', op: '<=', value: AIMS.dbBackup },
  });
  b.pair({
    id: 'db-backup-vs-default',
    name: `Tenant backup, ${size} database, vs default \`pg_dump -Fc\``,
    scenario: 'db',
    ours: backup,
    bare: { label: '`pg_dump -Fc -f FILE` (gzip 6)', unit: 'ms', runs: r.dflt },
  });
  b.pair({
    id: 'db-backup-size',
    name: 'Tenant backup output size vs default `pg_dump -Fc`',
    scenario: 'db',
    ours: { label: 'every file in DR_BACKUP_DIR after the backup', unit: 'bytes', runs: r.oursBytes },
    bare: { label: '`pg_dump -Fc` output', unit: 'bytes', runs: r.dfltBytes },
    aim: { of: 'ratio', op: '<=', value: AIMS.dbSize },
  });
  const pgRestore = { label: '`CREATE DATABASE` + `pg_restore -j2` of the `-Z0` dump', unit: 'ms' as const, runs: r.bareRestore };
  b.pair({
    id: 'db-restore-test',
    name: `Restore test, ${size} database, vs \`pg_restore -j2\``,
    scenario: 'db',
    ours: {
      label: '`odoo-dr validate SESSION --tenant T --restore-test --no-cloud --wait` (all checks, restore, neutralization, Odoo checks)',
      unit: 'ms',
      runs: r.restoreTest,
    },
    bare: pgRestore,
    aim: { of: 'ratio', op: '<=', value: AIMS.restoreTest },
  });
  b.pair({
    id: 'db-recovery',
    name: `Database-only recovery, ${size} database, vs \`pg_restore -j2\``,
    scenario: 'db',
    ours: { label: '`odoo-dr recover -m database-only --tenant T -s SESSION --yes --wait` (shadow, verification, swap)', unit: 'ms', runs: r.recovery },
    bare: pgRestore,
    aim: { of: 'ratio', op: '<=', value: AIMS.dbRecovery },
  });
  if (failure) throw failure;
}
