/**
 * Orchestration overhead of backupWorkflow on a fleet of tiny tenants, through a real worker and
 * the local dev server. Overhead = session wall time − (Σ tenant activity time)/P − Σ session-level
 * activity time; per tenant = overhead × P / N (P = DR_MAX_PARALLEL_BACKUPS, N = tenants).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { loadConfig } from '../src/config';
import { createWorker } from '../temporal/worker';
import { temporalSettings } from '../temporal/connection';
import type { BackupInput, BackupResult } from '../workflows/backup';
import { backupSessionName } from '../workflows/definitions';
import { createTenant, dropTenant } from '../test/fixtures/odoo-tenants';
import { REPO_ROOT } from '../test/helpers/config';

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;

function ms(t: { seconds?: unknown; nanos?: number | null } | null | undefined): number {
  return Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;
}

const TENANT_ACTIVITIES = new Set(['backupTenant', 'backupTenants']);

/** Σ (completed − started) of the activities in a history: the tenants' ones, and the others. */
function activityTime(history: History): { tenants: number; other: number } {
  const types = new Map<string, string>();
  const started = new Map<string, number>();
  const total = { tenants: 0, other: 0 };
  for (const e of history.events ?? []) {
    if (e.activityTaskScheduledEventAttributes) types.set(String(e.eventId), e.activityTaskScheduledEventAttributes.activityType?.name ?? '');
    if (e.activityTaskStartedEventAttributes) started.set(String(e.activityTaskStartedEventAttributes.scheduledEventId), ms(e.eventTime));
    const done = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes;
    if (done) {
      const d = ms(e.eventTime) - (started.get(String(done.scheduledEventId)) ?? ms(e.eventTime));
      if (TENANT_ACTIVITIES.has(types.get(String(done.scheduledEventId)) ?? '')) total.tenants += d;
      else total.other += d;
    }
  }
  return total;
}

/** The histories of the children a backup started for its tenants (batches; one per tenant before). */
async function tenantChildren(client: Client, parent: History): Promise<History[]> {
  const out: History[] = [];
  for (const e of parent.events ?? []) {
    const c = e.childWorkflowExecutionStartedEventAttributes;
    if (c && c.workflowType?.name !== 'tenantLockWorkflow' && c.workflowExecution?.workflowId) {
      out.push(await client.workflow.getHandle(c.workflowExecution.workflowId, c.workflowExecution.runId ?? undefined).fetchHistory());
    }
  }
  return out;
}

export async function benchFleet(count: number): Promise<void> {
  const backupDir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-bench-fleet-'));
  const config = loadConfig({
    path: path.join(REPO_ROOT, 'config/dr-config.local.env'),
    env: { DR_BACKUP_DIR: backupDir, DR_LOG_DIR: path.join(backupDir, 'logs') },
  });
  const { host, port, user, password } = config.postgres;
  const admin = { host, port, user, ...(password ? { password } : {}) };
  const tenants = Array.from({ length: count }, (_, i) => `bench-fleet-${String(i).padStart(3, '0')}`);
  for (const name of tenants) await createTenant(admin, config.odoo.dataDir, { name, moveLines: 20, files: 2, fileSize: 512, partners: 4 });

  const { connectionOptions, namespace } = temporalSettings(config, {});
  const native = await NativeConnection.connect(connectionOptions);
  const connection = await Connection.connect(connectionOptions);
  const client = new Client({ connection, namespace });
  const taskQueue = `bench-fleet-${Date.now()}`;
  const worker = await createWorker({ config, connection: native, namespace, taskQueue });
  const session = backupSessionName(new Date(), Math.random().toString(36).slice(2, 10));
  const P = config.performance.maxParallelBackups;

  const t0 = Date.now();
  const result = await worker.runUntil(
    client.workflow.execute<(i: BackupInput) => Promise<BackupResult>>('backupWorkflow', {
      taskQueue,
      workflowId: `bench/${session}`,
      args: [{ session, tenants, cloud: false, retention: false }],
    }),
  );
  const wall = Date.now() - t0;
  const parent = await client.workflow.getHandle(`bench/${session}`).fetchHistory();
  const own = activityTime(parent);
  const sessionLevel = own.other;
  let tenantActivities = own.tenants;
  for (const child of await tenantChildren(client, parent)) tenantActivities += activityTime(child).tenants;
  // Session steps (globals, configuration, retention) overlap the last tenants now but are subtracted
  // whole: the overhead below may be understated by up to their time.
  const overhead = wall - tenantActivities / P - sessionLevel;

  console.log(`\n== fleet of ${count} tiny tenants, parallelism ${P} (status ${result.status})`);
  console.log(`session wall time                 ${(wall / 1000).toFixed(2)} s`);
  console.log(`Σ tenant activity time / P        ${(tenantActivities / P / 1000).toFixed(2)} s`);
  console.log(`Σ session-level activity time     ${(sessionLevel / 1000).toFixed(2)} s`);
  console.log(`orchestration overhead per tenant ${((overhead * P) / count).toFixed(0)} ms   (target < 150; = overhead × P / N)`);

  await connection.close();
  await native.close();
  for (const name of tenants) await dropTenant(admin, config.odoo.dataDir, name);
  rmSync(backupDir, { recursive: true, force: true });
}
