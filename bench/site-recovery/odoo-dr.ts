/**
 * The odoo-dr side of the site-recovery benchmark: a fresh host (empty PostgreSQL cluster, new
 * Temporal dev server, empty folders: test/helpers/fresh-site.ts) recovered from the bucket alone by
 * recoveryWorkflow (mode full, site, from the cloud), with an in-process worker.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type bundleWorkflowCode } from '@temporalio/worker';
import { createWorker } from '../../temporal/worker';
import type { RecoveryInput, RecoveryResult } from '../../workflows/recovery';
import type { TenantInfo } from '../../test/fixtures/odoo-tenants';
import { startFreshSite, type FreshSite } from '../../test/helpers/fresh-site';
import { phasesOf, type Phases } from './phases';
import { assertRestored, PARALLEL } from './restored';

/** odoo-dr: site recovery of every tenant of the session onto a fresh host, from the bucket alone. */
export async function odooDrRecovery(opts: {
  bucketUrl: string;
  etcDir: string;
  infos: TenantInfo[];
  workflowBundle: Awaited<ReturnType<typeof bundleWorkflowCode>>;
}): Promise<{ ms: number; result: RecoveryResult; phases: Phases }> {
  let site: FreshSite | undefined;
  try {
    site = await startFreshSite();
    // The host is gone: its configuration too (it comes back from the archive, into DR_CONFIG_PATHS).
    rmSync(opts.etcDir, { recursive: true, force: true });
    const taskQueue = `bench-site-${randomBytes(3).toString('hex')}`;
    const env = {
      ...site.env,
      DR_CLOUD_BUCKET: opts.bucketUrl,
      DR_TASK_QUEUE: taskQueue,
      DR_CONFIG_PATHS: opts.etcDir,
      DR_MAX_PARALLEL_BACKUPS: String(PARALLEL),
    };
    const config = site.config(env);
    const native = await NativeConnection.connect({ address: site.temporal.address });
    const connection = await Connection.connect({ address: site.temporal.address });
    const client = new Client({ connection, namespace: 'default' });
    const worker = await createWorker({ config, connection: native, namespace: 'default', taskQueue, workflowBundle: opts.workflowBundle });
    const running = worker.run();
    let ms: number;
    let result: RecoveryResult;
    let phases: Phases;
    try {
      const input: RecoveryInput = { mode: 'full', site: true, fromCloud: true, approvedBy: 'bench', startedBy: 'bench' };
      const t0 = performance.now();
      result = await client.workflow.execute<(i: RecoveryInput) => Promise<RecoveryResult>>('recoveryWorkflow', {
        taskQueue,
        workflowId: `bench/site-recovery/${taskQueue}`,
        args: [input],
      });
      ms = performance.now() - t0;
      phases = phasesOf(await client.workflow.getHandle(`bench/site-recovery/${taskQueue}`).fetchHistory());
    } finally {
      worker.shutdown();
      await running;
      await connection.close();
      await native.close();
    }
    const bad = opts.infos.filter((t) => result.tenants[t.name]?.state !== 'recovered');
    if (bad.length) {
      throw new Error(
        `odoo-dr site recovery: ${bad.length} tenant(s) not recovered (workflow state ${result.state}): ` +
          bad.map((t) => `${t.name}: ${JSON.stringify(result.tenants[t.name])}`).join('; '),
      );
    }
    // Same data as the originals (outside the timing): move lines and filestore files.
    const conn = { host: config.postgres.host, port: config.postgres.port, user: config.postgres.user, password: config.postgres.password ?? '' };
    await assertRestored('odoo-dr', conn, config.odoo.filestoreRoot, opts.infos);
    return { ms, result, phases };
  } finally {
    await site?.stop();
  }
}
