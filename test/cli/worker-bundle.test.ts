/**
 * The workflow bundle built ahead of time (`npm run bundle`, temporal/bundle.ts): the worker uses it
 * only when it matches the compiled workflows, and a worker started with it runs workflows.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BUNDLE_PATH, prebuiltWorkflowBundle, WORKFLOWS_DIR, writeWorkflowBundle } from '../../temporal/bundle';
import { runCli, startCliWorker } from '../helpers/cli';
import { REPO_ROOT, uniqueSuffix } from '../helpers/config';

describe('prebuilt workflow bundle', function () {
  this.timeout(300_000);
  // Inside the checkout: webpack resolves @temporalio/workflow from the copied workflows' folder.
  const work = mkdtempSync(path.join(REPO_ROOT, 'dist', '.bundle-test-'));
  after(() => rmSync(work, { recursive: true, force: true }));

  it('is used only while it matches the compiled workflows', async () => {
    const dir = path.join(work, 'workflows');
    cpSync(WORKFLOWS_DIR, dir, { recursive: true });
    const bundle = path.join(work, 'bundle.js');
    assert.match((prebuiltWorkflowBundle(bundle, dir) as { reason: string }).reason, /no prebuilt workflow bundle .*`npm run bundle`/);
    await writeWorkflowBundle(bundle, dir);
    assert.equal((prebuiltWorkflowBundle(bundle, dir) as { codePath: string }).codePath, bundle);
    // A rebuilt workflow file (a new release) makes the bundle stale: never run other code than deployed.
    const file = path.join(dir, 'backup.js');
    writeFileSync(file, `${readFileSync(file, 'utf8')}\n// changed\n`);
    assert.match((prebuiltWorkflowBundle(bundle, dir) as { reason: string }).reason, /does not match the compiled workflows/);
  });

  it('`npm run bundle` output: the worker starts with it and runs workflows', async () => {
    execFileSync(process.execPath, [path.join(REPO_ROOT, 'dist/temporal/bundle.js')], { stdio: 'pipe' });
    assert.ok(existsSync(BUNDLE_PATH));
    const taskQueue = `bundle-${uniqueSuffix()}`;
    const worker = await startCliWorker({}, ['--task-queue', taskQueue]);
    try {
      assert.match(worker.out(), new RegExp(`odoo-dr worker: prebuilt workflow bundle ${BUNDLE_PATH.replace(/[.]/g, '\\.')}`));
      const tenants = await runCli(['--json', 'tenants'], { DR_TASK_QUEUE: taskQueue }).result;
      assert.equal(tenants.code, 0, tenants.out);
      assert.ok(Array.isArray((JSON.parse(tenants.stdout) as { tenants: unknown[] }).tenants), tenants.stdout);
    } finally {
      worker.child.kill('SIGTERM');
      await worker.result;
    }
  });
});
