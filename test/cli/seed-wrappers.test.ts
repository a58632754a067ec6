/**
 * Two of the seed's scripts for real: `enhanced-backup.sh` then `validate-backup.sh SESSION_DIR`,
 * through bin/odoo-dr, a worker process and the local stack. Also the CLI's own seed-compatible
 * defaults: `drill` is a full drill without -m, `recover` takes the session as an argument.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createTenant, dropTenant } from '../fixtures/odoo-tenants';
import { runCli, startCliWorker } from '../helpers/cli';
import { LOCAL_CONFIG_PATH, REPO_ROOT, stackConfig, uniqueSuffix } from '../helpers/config';
import { devServer } from '../helpers/temporal';
import { adminConnection } from '../helpers/pg';

/** A script of scripts/ with the real CLI (ODOO_DR unset), the stack's configuration file and `env` over it. */
function script(name: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  const { ODOO_DR: _unset, ...base } = process.env;
  const child = spawn('bash', [path.join(REPO_ROOT, 'scripts', name), ...args], { cwd: '/', env: { ...base, DR_CONFIG: LOCAL_CONFIG_PATH, ...env } });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out })));
}

describe("the seed's scripts against the real CLI and stack", function () {
  this.timeout(600_000);
  const s = uniqueSuffix();
  const tenant = `seed-${s}`;
  const backupDir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-seed-e2e-'));
  const taskQueue = `seed-${s}`;
  const env = { DR_BACKUP_DIR: backupDir, DR_LOG_DIR: path.join(backupDir, 'logs'), DR_CLOUD_BUCKET: '', DR_TASK_QUEUE: taskQueue };
  let worker: Awaited<ReturnType<typeof startCliWorker>> | undefined;

  before(async function () {
    this.timeout(300_000);
    await createTenant(adminConnection(), stackConfig().odoo.dataDir, { name: tenant, moveLines: 200, files: 5 });
    worker = await startCliWorker(env, ['--task-queue', taskQueue]);
  });
  after(async () => {
    if (worker) {
      worker.child.kill('SIGTERM');
      await worker.result;
    }
    await dropTenant(adminConnection(), stackConfig().odoo.dataDir, tenant);
    rmSync(backupDir, { recursive: true, force: true });
  });

  let session = '';

  it('enhanced-backup.sh --tenant DB backs up and waits; exit 0 once the session is complete', async () => {
    const r = await script('enhanced-backup.sh', ['--tenant', tenant], env);
    assert.equal(r.code, 0, r.out);
    const m = /session (backup_\d{8}_\d{6}_[a-z0-9]+): COMPLETE/.exec(r.out);
    assert.ok(m, r.out);
    session = m[1]!;
  });

  it('validate-backup.sh SESSION_DIR validates that session by its folder name; exit 0 when every check passes', async () => {
    assert.ok(session, 'the backup above made a session');
    const r = await script('validate-backup.sh', [path.join(backupDir, 'sessions', session) + '/'], env);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`validation of ${session}: PASS`));
  });

  it('disaster-recovery.sh -m database-only -t latest prints the plan of the latest session and changes nothing', async () => {
    const r = await script('disaster-recovery.sh', ['-m', 'database-only', '--tenant', tenant, '-t', 'latest'], env);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /recovery: planned/);
    assert.match(r.out, new RegExp(`plan: database-only from ${session}`));
  });

  it('`recover` takes the session as an argument, and refuses it given twice (exit 2)', async () => {
    const plan = await runCli(['--json', 'recover', '-m', 'database-only', session, '--tenant', tenant, '-t'], env).result;
    assert.equal(plan.code, 0, plan.out);
    assert.equal((JSON.parse(plan.stdout) as { plan: { session: string } }).plan.session, session);
    const twice = await runCli(['recover', '-m', 'database-only', 'latest', '-s', session, '-t'], env).result;
    assert.equal(twice.code, 2);
    assert.match(twice.stderr, new RegExp(`the session is given twice \\("latest" and -s "${session}"\\)`));
    assert.doesNotMatch(twice.out, /started/);
  });

  it('`drill` without -m is a full drill, as dr-test.sh was', async () => {
    // Started without --wait on a queue no worker polls: its ID says the mode; then it is ended unrun.
    const r = await runCli(['--json', 'drill', '--tenant', tenant], { ...env, DR_TASK_QUEUE: `seed-idle-${s}` }, { config: LOCAL_CONFIG_PATH }).result;
    assert.equal(r.code, 0, r.out);
    const { workflowId } = JSON.parse(r.stdout) as { workflowId: string };
    assert.match(workflowId, /^drill\/full\//);
    await (await devServer()).client.workflow.getHandle(workflowId).terminate('test: the mode was all that was checked');
  });
});
