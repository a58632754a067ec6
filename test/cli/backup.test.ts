import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { localPath, rel } from '../../src/backup/layout';
import { readManifest } from '../../src/backup/manifest';
import type { SessionDescription } from '../../src/sessions/describe';
import type { UploadProgress } from '../../src/storage/s3';
import { cloudKey, deleteObjects, listObjects } from '../../src/storage/s3';
import type { BackupResult } from '../../workflows/backup';
import { backupSessionName } from '../../workflows/definitions';
import { createTenant, dropTenant } from '../fixtures/odoo-tenants';
import { pendingTenantActivityOf } from '../helpers/backup-activities';
import { runCli, startCliWorker } from '../helpers/cli';
import { stackConfig, uniqueSuffix } from '../helpers/config';
import { historyText } from '../helpers/history';
import { devServer } from '../helpers/temporal';
import { adminConnection } from '../helpers/pg';

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const startWorker = (taskQueue: string, env: NodeJS.ProcessEnv) => startCliWorker(env, ['--task-queue', taskQueue]);

describe('odoo-dr backup (CLI and worker processes)', function () {
  this.timeout(600_000);
  const s = uniqueSuffix();
  const tenant = `cli-bk-${s}`;
  const backupDir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-cli-backup-'));
  const prefix = `test-cli-${s}`;
  const env = {
    DR_BACKUP_DIR: backupDir,
    DR_LOG_DIR: path.join(backupDir, 'logs'),
    DR_CLOUD_BUCKET: `s3://odoo-dr-local/${prefix}`,
    DR_COMPRESSION_LEVEL: '1',
  };
  const config = stackConfig(env);

  before(async function () {
    this.timeout(300_000);
    // Big enough that its dump needs several 8 MiB parts: ~18 MiB compressed (400,000 lines made
    // ~9 MiB with zstd -1 and, with DR_DUMP_ZSTD_PARAMETERS' default, sometimes less than one part).
    await createTenant(adminConnection(), config.odoo.dataDir, { name: tenant, moveLines: 800_000, files: 20 });
  });
  after(async () => {
    await dropTenant(adminConnection(), config.odoo.dataDir, tenant);
    const keys: string[] = [];
    for await (const o of listObjects(config.cloud!, `${prefix}/`)) keys.push(o.key);
    if (keys.length) await deleteObjects(config.cloud!, keys);
  });

  it('`odoo-dr backup --wait --json` runs a session and prints its summary', async () => {
    const taskQueue = `cli-bk-${s}`;
    const worker = await startWorker(taskQueue, env);
    try {
      const run = runCli(['--json', 'backup', '--wait', '--tenant', tenant, '--no-cloud'], { ...env, DR_TASK_QUEUE: taskQueue });
      const { code, out } = await run.result;
      assert.equal(code, 0, out);
      const json = out.slice(out.indexOf('{'));
      const result = JSON.parse(json) as BackupResult;
      assert.equal(result.status, 'complete');
      assert.equal(result.tenants[0]!.tenant, tenant);
      assert.ok(result.tenants[0]!.databaseBytes > 1_000_000);
      assert.match(out, /started backup session backup_\d{8}_\d{6}_[a-z0-9]+ \(workflow backup\/backup_.*local only\)/);
      // Without a cloud copy the session lives on one disk: its steps ran on the worker's own queue.
      const history = await (await devServer()).client.workflow.getHandle(result.workflowId).fetchHistory();
      const scheduled = (history.events ?? []).map((e) => e.activityTaskScheduledEventAttributes).filter((a) => a !== undefined && a !== null);
      const tenantStep = scheduled.find((a) => a.activityType?.name === 'backupTenant');
      assert.equal(tenantStep?.activityId, `tenant/${tenant}`);
      assert.match(tenantStep?.taskQueue?.name ?? '', new RegExp(`^${taskQueue}/worker/`));
      for (const step of ['backupClusterGlobals', 'backupConfiguration', 'finalizeBackupSession', 'applyBackupRetention']) {
        assert.match(scheduled.find((a) => a.activityType?.name === step)?.taskQueue?.name ?? '', new RegExp(`^${taskQueue}/worker/`), step);
      }
      const audit = readFileSync(path.join(backupDir, 'logs/audit.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { session: string; result: string; startedBy: string; action: string });
      const line = audit.find((l) => l.session === result.session)!;
      assert.equal(line.result, 'complete');
      assert.equal(line.action, 'backup');
      assert.match(line.startedBy, /^[^@]+@.+$/, 'the operator who started it');

      // `sessions show`: the session as its verified manifest describes it.
      const cliEnv = { ...env, DR_TASK_QUEUE: taskQueue };
      const shown = await runCli(['--json', 'sessions', 'show', result.session], cliEnv).result;
      assert.equal(shown.code, 0, shown.out);
      const described = JSON.parse(shown.stdout) as SessionDescription;
      assert.equal(described.status, 'complete');
      assert.equal(described.location, 'local');
      assert.match(described.signedBy ?? '', /^SHA256:/, 'signed, and the signature verified');
      assert.equal(described.workflowId, result.workflowId);
      assert.equal(described.tenants[tenant]?.status, 'complete');
      assert.equal(described.tenants[tenant]?.database?.bytes, result.tenants[0]!.databaseBytes);
      assert.equal(described.tenants[tenant]?.filestore?.files, result.tenants[0]!.filestoreFiles);
      assert.equal(described.validation, 'never');
      assert.deepEqual(described.results, []);
      const text = await runCli(['sessions', 'show', result.session], cliEnv).result;
      assert.equal(text.code, 0, text.out);
      assert.match(text.stdout, new RegExp(`session ${result.session}: COMPLETE, read from .*, signed by SHA256:`));
      assert.match(text.stdout, new RegExp(`^${tenant.replace(/\./g, '\\.')} +complete `, 'm'));
      const unknown = await runCli(['--json', 'sessions', 'show', backupSessionName(new Date(0), 'nothere')], cliEnv).result;
      assert.equal(unknown.code, 1, unknown.out);
      assert.match((JSON.parse(unknown.stdout) as { error: { message: string } }).error.message, /does not exist in /);

      // `workflows list`: the backup, closed, on this task queue (visibility may lag a moment).
      let listed: Array<{ workflowId: string; type: string; status: string }> = [];
      await waitFor(
        'the backup in the workflow list',
        async () => {
          const r = await runCli(['--json', 'workflows', 'list'], cliEnv).result;
          assert.equal(r.code, 0, r.out);
          listed = (JSON.parse(r.stdout) as { workflows: typeof listed }).workflows;
          return listed.some((w) => w.workflowId === result.workflowId && w.status === 'COMPLETED');
        },
        30_000,
      );
      assert.equal(listed.find((w) => w.workflowId === result.workflowId)?.type, 'backupWorkflow');
      assert.ok(!listed.some((w) => w.type === 'tenantLockWorkflow'), 'locks only with --all');
      const running = await runCli(['--json', 'workflows', 'list', '--running'], cliEnv).result;
      assert.ok(!(JSON.parse(running.stdout) as { workflows: typeof listed }).workflows.some((w) => w.workflowId === result.workflowId));
    } finally {
      worker.child.kill('SIGTERM');
      await worker.result;
    }
  });

  it('a worker killed mid-upload: the next worker resumes the multipart upload and the session verifies', async () => {
    const taskQueue = `cli-crash-${s}`;
    // The first worker uploads slowly so that it can be killed between two parts.
    const slow = await startWorker(taskQueue, { ...env, DR_BANDWIDTH_LIMIT: '2M' });
    const testEnv = await devServer();
    const client: Client = testEnv.client;
    const session = backupSessionName(new Date(), uniqueSuffix());
    const handle = await client.workflow.start('backupWorkflow', {
      taskQueue,
      workflowId: `test/crash/${session}`,
      args: [{ session, tenants: [tenant], cloud: true, startedBy: 'test' }],
    });
    let progress: UploadProgress | undefined;
    await waitFor(
      'the dump upload to have sent a part',
      async () => {
        const pending = await pendingTenantActivityOf(client, handle.workflowId, tenant).catch(() => undefined);
        progress = pending?.progress?.upload as UploadProgress | undefined;
        return (progress?.partsDone.length ?? 0) >= 1;
      },
      240_000,
    );
    slow.child.kill('SIGKILL');
    await slow.result;
    const fast = await startWorker(taskQueue, env);
    try {
      const result = (await handle.result()) as BackupResult;
      assert.equal(result.status, 'complete', JSON.stringify(result));
      const manifest = await readManifest(localPath(backupDir, rel.manifest(session)));
      assert.equal(manifest.tenants[tenant]!.database!.cloud?.verified, true);
      assert.equal(manifest.tenants[tenant]!.database!.cloud?.key, cloudKey(config.cloud!, rel.database(session, tenant)));
      // The retry continued the same multipart upload instead of starting over.
      const history = historyText(await handle.fetchHistory());
      assert.match(history, new RegExp(`"uploadId":"${progress!.uploadId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"`));
      assert.match(history, /"resumed":true/);
      assert.match(history, /"partsReused":[1-9]/);
    } finally {
      fast.child.kill('SIGTERM');
      await fast.result;
    }
  });
});
