import assert from 'node:assert/strict';
import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { loadConfig } from '../../src/config';
import { tenantDiscoveryWorkflow } from '../../workflows';
import { LOCAL_CONFIG_PATH, uniqueSuffix } from '../helpers/config';
import { createDatabase, dropDatabase } from '../helpers/pg';
import { historyText } from '../helpers/history';
import { devServer, timeSkippingServer, withWorker } from '../helpers/temporal';

const servers: Array<[string, () => Promise<TestWorkflowEnvironment>]> = [
  ['dev server', devServer],
  ['time-skipping server', timeSkippingServer],
];

describe('tenantDiscoveryWorkflow', () => {
  const s = uniqueSuffix();
  const tenants = [`wf_${s}`, `wf-${s}.eu`];
  const foreign = `wf_${s}_foreign`;

  before(async () => {
    for (const t of tenants) await createDatabase(t);
    await createDatabase(foreign, { owner: 'postgres' });
  });
  after(async () => {
    for (const t of [...tenants, foreign]) await dropDatabase(t);
  });

  for (const [label, server] of servers) {
    describe(`on the ${label}`, () => {
      it('discovers the requested tenants with the real activity', async () => {
        const env = await server();
        const result = await withWorker({ env }, (taskQueue) =>
          env.client.workflow.execute(tenantDiscoveryWorkflow, {
            taskQueue,
            workflowId: `test/discovery/${uniqueSuffix()}`,
            args: [{ include: [...tenants, foreign] }],
          }),
        );
        assert.deepEqual(result.tenants.map((t) => t.name).sort(), [...tenants].sort());
        assert.deepEqual(result.missing, [foreign]);
      });

      it('fails at once (no retries) on bad credentials, and no history event holds the password', async () => {
        const env = await server();
        const wrong = `Wrong-${uniqueSuffix()}-pw`;
        const config = loadConfig({ path: LOCAL_CONFIG_PATH, env: { POSTGRES_PASSWORD: wrong, POSTGRES_PASSWORD_FILE: '' } });
        const workflowId = `test/discovery-bad-auth/${uniqueSuffix()}`;
        await withWorker({ env, config }, async (taskQueue) => {
          const err = await env.client.workflow.execute(tenantDiscoveryWorkflow, { taskQueue, workflowId, args: [{}] }).then(
            () => assert.fail('expected the workflow to fail'),
            (e: unknown) => e,
          );
          assert.ok(err instanceof WorkflowFailedError);
          assert.ok(err.cause instanceof ActivityFailure);
          const cause = err.cause.cause;
          assert.ok(cause instanceof ApplicationFailure);
          assert.equal(cause.type, 'DatabaseAuthError');
          assert.equal(cause.nonRetryable, true);
        });
        const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
        const attempts = history.events?.filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt);
        assert.deepEqual(attempts, [1], 'a permanent error is not retried');
        const text = historyText(history);
        assert.match(text, /DatabaseAuthError|authentication or permission refused/, 'the history was decoded');
        assert.ok(!text.includes(wrong), 'the password is in the history');
      });
    });
  }
});
