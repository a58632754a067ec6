/**
 * What a worker cleans when it starts: sessions this host started and never finalised whose backup
 * workflow is over. Real dev server, real disk.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { localPath, rel } from '../../src/backup/layout';
import { createWorker } from '../../temporal/worker';
import { backupWorkflow } from '../../workflows';
import { backupSessionName } from '../../workflows/definitions';
import { stackConfig, uniqueSuffix } from '../helpers/config';
import { devServer, workflowBundle } from '../helpers/temporal';

describe('worker start-up', function () {
  this.timeout(120_000);
  const work = mkdtempSync(path.join(tmpdir(), 'odoo-dr-startup-'));
  const config = stackConfig({ DR_BACKUP_DIR: path.join(work, 'backups'), DR_LOG_DIR: path.join(work, 'logs'), ODOO_DATA_DIR: path.join(work, 'data') });
  after(() => rmSync(work, { recursive: true, force: true }));

  const unfinished = (session: string, workflowId: string, host = hostname()) => {
    const dir = localPath(config.backupDir, rel.session(session));
    mkdirSync(path.join(dir, 'tenants', 't1'), { recursive: true });
    writeFileSync(path.join(dir, '.incomplete'), `${JSON.stringify({ workflowId, host })}\n`);
    writeFileSync(path.join(dir, 'tenants', 't1', 'database.dump.zst.age'), Buffer.alloc(4096));
    return dir;
  };

  it("removes this host's unfinished sessions whose workflow is over; keeps running ones, other hosts' and finished ones", async () => {
    const env = await devServer();
    const s = uniqueSuffix();
    const gone = unfinished(backupSessionName(new Date(Date.UTC(2026, 0, 1)), `ga${s}`), `backup/never-ran-${s}`);
    // A backup workflow that runs (nobody polls its queue, so it stays running).
    const runningId = `test/startup/running-${s}`;
    const handle = await env.client.workflow.start(backupWorkflow, { taskQueue: `nobody-${s}`, workflowId: runningId, args: [{}] });
    const running = unfinished(backupSessionName(new Date(Date.UTC(2026, 0, 2)), `ru${s}`), runningId);
    const otherHost = unfinished(backupSessionName(new Date(Date.UTC(2026, 0, 3)), `oh${s}`), `backup/never-ran-${s}`, 'another-host');
    const finished = unfinished(backupSessionName(new Date(Date.UTC(2026, 0, 4)), `fi${s}`), `backup/never-ran-${s}`);
    writeFileSync(path.join(finished, 'manifest.json'), '{}');
    try {
      const worker = await createWorker({
        config,
        connection: env.nativeConnection,
        namespace: 'default',
        taskQueue: `startup-${s}`,
        workflowBundle: await workflowBundle(),
      });
      await worker.runUntil(Promise.resolve());
      assert.equal(existsSync(gone), false, `swept: ${worker.swept.join('; ')}`);
      assert.ok(
        worker.swept.some((l) => l.includes(path.basename(gone)) && l.includes('removed')),
        worker.swept.join('; '),
      );
      assert.ok(existsSync(running), 'a running backup keeps its session');
      assert.ok(existsSync(otherHost), "another host's session is left to that host");
      assert.ok(existsSync(finished), 'a session with a manifest is never touched here');
    } finally {
      await handle.terminate('test over');
    }
  });
});
