/**
 * Histories recorded with earlier code still replay: a backup that was running when the worker was
 * upgraded goes on with the code path it started with (workflows/backup.ts branches on `patched()`).
 *
 * test/fixtures/histories/, recorded on the local dev server:
 * - backup-v1-*.json: the code before the inline tenants path (one child `tenantBackupWorkflow` per
 *   tenant, each with its lock child and its `backupTenant` activity): two tenants without a cloud
 *   copy, a partial session (a tenant dropped after discovery) and a session with a cloud copy, each
 *   with the history of one tenant's child;
 * - backup-v2-*.json: the inline path (patch `backup-inline-tenants`): five small tenants in two
 *   batches (`backupBatchWorkflow`, the second started ahead and sent `go`) with one slot, a partial
 *   session (a batch and a tenant alone), a tenant alone with a cloud copy; with the batches' histories.
 * A change to the workflows that breaks one of them breaks sessions in flight: keep the old path
 * (a new patch) and add histories of the new one here.
 * Histories are replayed in full and cut short (a workflow in flight when the new worker takes over).
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { Worker } from '@temporalio/worker';
import { cutHistory, HISTORIES_DIR, loadHistory, type History } from '../helpers/replay';
import { workflowBundle } from '../helpers/temporal';

function workflowIdOf(history: History): string {
  // The recorded parent's ID is in the start event of a child; a parent's own ID is not in its history.
  return `replay/${history.events[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name ?? 'workflow'}`;
}

describe('replay of recorded backup histories (earlier code paths)', function () {
  this.timeout(120_000);
  const files = readdirSync(HISTORIES_DIR)
    .filter((f) => f.startsWith('backup-') && f.endsWith('.json'))
    .sort();

  it('has the recorded histories', () => {
    assert.ok(files.filter((f) => f.startsWith('backup-v1-')).length >= 6 && files.filter((f) => f.startsWith('backup-v2-')).length >= 6, files.join(', '));
  });

  for (const file of files) {
    it(`${file} replays with the current workflow code`, async () => {
      const history = loadHistory(file);
      await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, workflowIdOf(history));
    });
  }

  it('the same histories replay when cut short after each workflow task (a session in flight during an upgrade)', async () => {
    const bundle = await workflowBundle();
    // One replay worker for all of them (a worker per replay costs more than the replay).
    const runs = files.flatMap((file) => {
      const history = loadHistory(file);
      const tasks = history.events.filter((e) => e.workflowTaskCompletedEventAttributes).length;
      return Array.from({ length: Math.max(0, tasks - 1) }, (_, i) => ({
        workflowId: `${workflowIdOf(history)}/${file}/cut-before-task-${i + 2}`,
        history: cutHistory(history, i + 2),
      }));
    });
    assert.ok(runs.length > files.length);
    for await (const r of Worker.runReplayHistories({ workflowBundle: bundle }, runs)) {
      if (r.error) throw new Error(`${r.workflowId}: ${r.error.message}`);
    }
  });
});
