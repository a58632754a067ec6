/**
 * How an observation reaches the alerts workflow (activities/monitor.ts handObservation): two
 * reporters starting the workflow at the same instant must both get their outcome, not an error.
 */
import assert from 'node:assert/strict';
import { handObservation } from '../../activities/monitor';
import type { Observation } from '../../src/monitor/alerts';

class WorkflowExecutionAlreadyStartedError extends Error {
  override name = 'WorkflowExecutionAlreadyStartedError';
}

/** A client that records its calls; its signalWithStart fails with `failures` in turn. */
function recordingClient(failures: Error[]) {
  const calls: string[] = [];
  const workflow = {
    signalWithStart: async (type: string, opts: { workflowId: string; args: unknown[] }) => {
      calls.push(`signalWithStart ${type} ${opts.workflowId} ${JSON.stringify(opts.args)}`);
      const failure = failures.shift();
      if (failure) throw failure;
      return Promise.resolve();
    },
    getHandle: (id: string) => ({
      executeUpdate: async (name: string, opts: { args: [string] }) => {
        calls.push(`executeUpdate ${id} ${name} ${opts.args[0]}`);
        return Promise.resolve({ id: opts.args[0], sent: ['CRITICAL backup-age/acme'], active: ['backup-age/acme'], channels: {} });
      },
    }),
  };
  return { calls, client: { workflow } as unknown as Parameters<typeof handObservation>[0] };
}

const observation: Observation = { id: 'monitor/1', source: 'test', complete: true, checks: [] };
const target = { workflowId: 'odoo-dr/alerts', taskQueue: 'odoo-dr' };

describe('handing an observation to the alerts workflow', () => {
  it('signals (starting the workflow if needed), then waits for the outcome of that observation', async () => {
    const { calls, client } = recordingClient([]);
    const outcome = await handObservation(client, target, observation);
    assert.deepEqual(outcome.sent, ['CRITICAL backup-age/acme']);
    assert.deepEqual(calls, ['signalWithStart alertsWorkflow odoo-dr/alerts [{}]', 'executeUpdate odoo-dr/alerts observationOutcome monitor/1']);
  });

  it('a start lost to a concurrent reporter is retried as a signal, and the outcome still comes', async () => {
    const { calls, client } = recordingClient([new WorkflowExecutionAlreadyStartedError('Workflow execution already started')]);
    const outcome = await handObservation(client, target, observation);
    assert.equal(outcome.id, 'monitor/1');
    assert.equal(calls.filter((c) => c.startsWith('signalWithStart')).length, 2);
    assert.equal(calls.at(-1), 'executeUpdate odoo-dr/alerts observationOutcome monitor/1');
  });

  it('any other failure is not swallowed', async () => {
    const { calls, client } = recordingClient([Object.assign(new Error('connection refused'), { name: 'ServiceError' })]);
    await assert.rejects(handObservation(client, target, observation), /connection refused/);
    assert.equal(calls.length, 1);
  });
});
