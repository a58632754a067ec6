import assert from 'node:assert/strict';
import { workflowListQuery } from '../../temporal/cli/workflows';

describe('workflows list: the visibility query', () => {
  it('names the task queue, the types and, with --running, the state; quotes are escaped', () => {
    assert.equal(workflowListQuery('odoo-dr', {}), "TaskQueue = 'odoo-dr'");
    assert.equal(
      workflowListQuery("o'dr", { running: true, types: ['backupWorkflow', 'recoveryWorkflow'] }),
      "TaskQueue = 'o\\'dr' AND WorkflowType IN ('backupWorkflow', 'recoveryWorkflow') AND ExecutionStatus = 'Running'",
    );
  });
});
