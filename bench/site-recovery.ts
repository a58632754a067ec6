/**
 * Site-loss benchmark: N generated tenants are backed up to an isolated bucket prefix; then a
 * fresh host (empty PostgreSQL cluster with only `postgres`, new Temporal dev server, empty folders)
 * is recovered from the bucket with odoo-dr (`recoveryWorkflow` mode full, site, from the cloud:
 * roles, configuration, every tenant shadow-restored, verified and swapped,
 * DR_MAX_PARALLEL_BACKUPS at a time), against the same restores done with the bare tools in the
 * same run on another fresh cluster (S3 GetObject, `age -d | zstd -d`, `createdb -O odoo`,
 * `pg_restore -j2`, every filestore blob through `age -d`; 3 tenants at a time, no verification,
 * no shadow/swap, no orchestration). Prints the ratio and the RTO projected for 100 tenants of
 * 1 GiB from the rate odoo-dr measured.
 *
 *   node dist/bench/site-recovery.js [--tenants 20] [--move-lines 18000] [--files 20] [--runs 1]
 *
 * The two sides are in bench/site-recovery/ (odoo-dr.ts with phases.ts, bare.ts), with the check
 * both pass through (restored.ts); this file generates and backs up the tenants and prints the figures.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import type { DrConfig } from '../src/config';
import { deleteObjects, listObjects } from '../src/storage/s3';
import { temporalSettings } from '../temporal/connection';
import { createWorker, WORKFLOWS_PATH } from '../temporal/worker';
import type { BackupInput, BackupResult } from '../workflows/backup';
import { backupSessionName } from '../workflows/definitions';
import type { RecoveryResult } from '../workflows/recovery';
import { createTenant, dropTenant, type PgAdminConnection, type TenantInfo } from '../test/fixtures/odoo-tenants';
import { stackConfig } from '../test/helpers/config';
import { median, MiB } from './harness';
import { bareRecovery, STACK_DIR } from './site-recovery/bare';
import { odooDrRecovery } from './site-recovery/odoo-dr';
import { PARALLEL } from './site-recovery/restored';

const { values: args } = parseArgs({
  options: {
    tenants: { type: 'string', default: '20' },
    // ≈ 14.4 MiB per tenant (pg_database_size; ~10 MiB of it is the empty schema): 20 tenants ≈ 290 MiB.
    'move-lines': { type: 'string', default: '18000' },
    files: { type: 'string', default: '20' },
    runs: { type: 'string', default: '1' },
  },
});
const GiB = 1024 * MiB;

interface Measured {
  odooDrMs: number;
  bareMs: number;
  report: RecoveryResult['report'];
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const count = Number(args.tenants);
  const moveLines = Number(args['move-lines']);
  const files = Number(args.files);
  const runs = Number(args.runs);
  const s = randomBytes(4).toString('hex');
  mkdirSync(STACK_DIR, { recursive: true });
  const root = mkdtempSync(path.join(STACK_DIR, 'bench-site-'));
  const dataDir = path.join(root, 'odoo-data');
  const backupDir = path.join(root, 'backups');
  const etcDir = path.join(root, 'etc-odoo');
  mkdirSync(etcDir, { recursive: true });
  writeFileSync(path.join(etcDir, 'odoo.conf'), '[options]\ndb_user = odoo\n');
  const bucket = stackConfig().cloud?.bucket;
  if (!bucket) throw new Error('the local stack configuration has no DR_CLOUD_BUCKET');
  const bucketUrl = `s3://${bucket}/bench-site-${s}`;
  const taskQueue = `bench-site-backup-${s}`;
  const stack = stackConfig({
    DR_BACKUP_DIR: backupDir,
    DR_LOG_DIR: path.join(backupDir, 'logs'),
    ODOO_DATA_DIR: dataDir,
    DR_CONFIG_PATHS: etcDir,
    DR_CLOUD_BUCKET: bucketUrl,
    DR_TASK_QUEUE: taskQueue,
    DR_MAX_PARALLEL_BACKUPS: String(PARALLEL),
  });
  const { host, port, user, password } = stack.postgres;
  const admin: PgAdminConnection = { host, port, user, ...(password ? { password } : {}) };
  const names = Array.from({ length: count }, (_, i) => `bench-site-${s}-${String(i).padStart(2, '0')}`);
  const infos: TenantInfo[] = [];
  console.log(`odoo-dr site-recovery benchmark, ${new Date().toISOString()}, ${count} tenants × ${moveLines} move lines + ${files} files, ${runs} run(s)`);

  try {
    const tc = performance.now();
    for (const name of names) infos.push(await createTenant(admin, dataDir, { name, moveLines, files }));
    const dbBytes = infos.reduce((a, t) => a + (t.dbSizeBytes ?? 0), 0);
    const fsBytes = infos.reduce((a, t) => a + t.filestoreBytes, 0);
    const fileCount = infos.reduce((a, t) => a + t.fileCount, 0);
    console.log(
      `tenants created in ${((performance.now() - tc) / 1000).toFixed(1)} s: databases ${(dbBytes / MiB).toFixed(1)} MiB (pg_database_size), filestores ${fileCount} files (${(fsBytes / MiB).toFixed(2)} MiB)`,
    );

    const workflowBundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('WARN') });
    const { connectionOptions, namespace } = temporalSettings(stack, {});
    const native = await NativeConnection.connect(connectionOptions);
    const connection = await Connection.connect(connectionOptions);
    const session = backupSessionName(new Date(), randomBytes(4).toString('hex'));
    try {
      const client = new Client({ connection, namespace });
      const worker = await createWorker({ config: stack, connection: native, namespace, taskQueue, workflowBundle });
      const tb = performance.now();
      const backup = await worker.runUntil(
        client.workflow.execute<(i: BackupInput) => Promise<BackupResult>>('backupWorkflow', {
          taskQueue,
          workflowId: `bench/site-backup/${session}`,
          args: [{ tenants: names, cloud: true, retention: false, session }],
        }),
      );
      if (backup.status !== 'complete') throw new Error(`backup ${session} ended ${backup.status}: ${JSON.stringify(backup)}`);
      console.log(`backed up to ${bucketUrl} (session ${session}) in ${((performance.now() - tb) / 1000).toFixed(1)} s`);
    } finally {
      await connection.close();
      await native.close();
    }
    // Nothing of the old host's backup folder is used from here on.
    rmSync(backupDir, { recursive: true, force: true });

    const measured: Measured[] = [];
    for (let i = 0; i < runs; i++) {
      // Alternate the order, so that neither side always runs on a warmer machine.
      let ours: Awaited<ReturnType<typeof odooDrRecovery>> | undefined;
      let bareMs = 0;
      if (i % 2 === 0) {
        ours = await odooDrRecovery({ bucketUrl, etcDir, infos, workflowBundle });
        bareMs = await bareRecovery({ stack, session, infos });
      } else {
        bareMs = await bareRecovery({ stack, session, infos });
        ours = await odooDrRecovery({ bucketUrl, etcDir, infos, workflowBundle });
      }
      measured.push({ odooDrMs: ours.ms, bareMs, report: ours.result.report });
      const r = ours.result.report;
      console.log(
        `run ${i + 1}: odoo-dr ${(ours.ms / 1000).toFixed(2)} s, bare tools ${(bareMs / 1000).toFixed(2)} s, ratio ${(ours.ms / bareMs).toFixed(2)}; ` +
          `report: ${r?.tenantsRecovered} recovered, ${r?.tenantsFailed} failed, ${((r?.bytes ?? 0) / MiB).toFixed(1)} MiB restored (databases as restored + files), ` +
          `achieved RTO ${r?.achievedRtoMinutes.toFixed(2)} min of ${r?.rtoMinutes} (met: ${r?.rtoMet}), roles created: ${ours.result.globals?.created.join(' ') || 'none'}, config files: ${ours.result.config?.restored.length ?? 0}`,
      );
      const p = ours.phases;
      const sec = (x: number) => `${(x / 1000).toFixed(2)} s`;
      console.log(
        `  odoo-dr phases: plan+roles+config ${sec(p.beforeShadowsMs)}, shadows ${sec(p.shadowsMs)} (Σ shadow activities / ${PARALLEL} = ${sec(p.shadowActivityMs / PARALLEL)}), ` +
          `swaps+health+markers ${sec(p.afterShadowsMs)} [${Object.entries(p.after)
            .map(([t, a]) => `${t} ${a.n}× ${sec(a.ms)}`)
            .join(', ')}]`,
      );
    }

    const oursMs = median(measured.map((m) => m.odooDrMs));
    const bareMs = median(measured.map((m) => m.bareMs));
    const tenantBytes = dbBytes + fsBytes;
    const rate = tenantBytes / (oursMs / 1000);
    const bareRate = tenantBytes / (bareMs / 1000);
    const projected = (100 * GiB) / rate / 60;
    const bareProjected = (100 * GiB) / bareRate / 60;
    const rto = stack.objectives.rtoMinutes;
    const label = runs > 1 ? `median of ${runs} runs` : 'one run';
    console.log(`\n== site recovery from the bucket onto a fresh host, ${PARALLEL} tenants at a time (${label})`);
    console.log(`tenants                                   ${count}`);
    console.log(`databases (pg_database_size)              ${(dbBytes / MiB).toFixed(1)} MiB`);
    console.log(`filestores                                ${fileCount} files, ${(fsBytes / MiB).toFixed(2)} MiB`);
    console.log(`odoo-dr recover -m full -c --all          ${(oursMs / 1000).toFixed(2)} s`);
    console.log(`bare tools (S3 get, age|zstd, pg_restore) ${(bareMs / 1000).toFixed(2)} s`);
    const ratios = measured.map((m) => m.odooDrMs / m.bareMs);
    console.log(
      `ratio                                     ${(oursMs / bareMs).toFixed(2)}   (aim <= 1.5)` +
        (runs > 1 ? `; per run ${ratios.map((r) => r.toFixed(2)).join(', ')}, median ${median(ratios).toFixed(2)}` : ''),
    );
    console.log(`odoo-dr rate                              ${(rate / MiB).toFixed(1)} MiB/s of tenant data (bare tools ${(bareRate / MiB).toFixed(1)} MiB/s)`);
    console.log(
      `projected RTO, 100 tenants × 1 GiB        ${projected.toFixed(1)} min vs DR_RTO_MINUTES ${rto}: ${projected <= rto ? 'within' : 'OVER'} (bare tools ${bareProjected.toFixed(1)} min)`,
    );
    console.log('  (linear in bytes from this run; per-tenant fixed costs and the ~10 MiB empty schema of each small tenant are counted as data)');
  } finally {
    await cleanUp({ admin, dataDir, names, cloud: stack.cloud!, prefix: `bench-site-${s}`, root });
  }
}

/** Drops the tenants, empties this run's bucket prefix (never another one) and deletes the folders. */
async function cleanUp(opts: {
  admin: PgAdminConnection;
  dataDir: string;
  names: string[];
  cloud: NonNullable<DrConfig['cloud']>;
  prefix: string;
  root: string;
}): Promise<void> {
  const { cloud } = opts;
  for (const name of opts.names)
    await dropTenant(opts.admin, opts.dataDir, name).catch((err: unknown) => console.error(`drop ${name}: ${(err as Error).message}`));
  if (cloud.prefix === opts.prefix) {
    try {
      const keys: string[] = [];
      for await (const o of listObjects(cloud, `${cloud.prefix}/`)) keys.push(o.key);
      if (keys.length) await deleteObjects(cloud, keys);
    } catch (err) {
      console.error(`emptying s3://${cloud.bucket}/${cloud.prefix}: ${(err as Error).message}`);
    }
  } else {
    console.error(`not emptying s3://${cloud.bucket}/${cloud.prefix}: not this run's prefix`);
  }
  rmSync(opts.root, { recursive: true, force: true });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
