/**
 * Validations and drills in flight during an upgrade keep their code path: histories recorded with
 * the code before audit lines and alerts (test/fixtures/histories/validation-v1-*.json,
 * drill-v1-*.json: a passing validation of one tenant's session, a validation-only drill, recorded on
 * the local dev server) replay with the current code, whole and cut after each workflow task
 * (workflows/validation.ts and drill.ts branch on `patched('validation-audit-and-alerts')` and
 * `patched('drill-audit-and-alerts')`).
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { Worker } from '@temporalio/worker';
import { cutHistory, HISTORIES_DIR, loadHistory } from '../helpers/replay';
import { workflowBundle } from '../helpers/temporal';

describe('replay of recorded validation and drill histories (before audit lines and alerts)', function () {
  this.timeout(120_000);
  const files = readdirSync(HISTORIES_DIR)
    .filter((f) => /^(validation|drill)-v1-.*\.json$/.test(f))
    .sort();

  it('has the recorded histories', () => {
    assert.deepEqual(files, ['drill-v1-validation-only.json', 'validation-v1-pass.json']);
  });

  for (const file of files) {
    it(`${file} replays with the current workflow code, whole and cut after each workflow task`, async () => {
      const bundle = await workflowBundle();
      const history = loadHistory(file);
      const type = history.events[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name;
      assert.ok(type === 'validationWorkflow' || type === 'drillWorkflow', String(type));
      await Worker.runReplayHistory({ workflowBundle: bundle }, history, `replay/${type}`);
      const tasks = history.events.filter((e) => e.workflowTaskCompletedEventAttributes).length;
      assert.ok(tasks >= 2);
      for (let n = 2; n <= tasks; n++) {
        await Worker.runReplayHistory({ workflowBundle: bundle }, cutHistory(history, n), `replay/${type}`).catch((err: Error) => {
          throw new Error(`${file} cut before workflow task ${n}: ${err.message}`);
        });
      }
    });
  }
});
