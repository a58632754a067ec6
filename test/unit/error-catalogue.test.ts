/**
 * The error catalogue (src/errors.ts) is the one list of failure types: every type a workflow fails
 * with is in it (and documented in the README), and the CLI's exit code follows from it: 3 only
 * when a service could not be reached, 1 for a workflow that failed, 2 for bad input.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, RetryState } from '@temporalio/common';
import * as errors from '../../src/errors';
import { WORKFLOW_FAILURES } from '../../src/errors';
import { CliExit, EXIT } from '../../temporal/cli/common';
import { commandFailure } from '../../temporal/cli/exit-codes';
import { REPO_ROOT } from '../helpers/config';

const WORKFLOWS = path.join(REPO_ROOT, 'workflows');
const sources = readdirSync(WORKFLOWS)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => ({ file: f, text: readFileSync(path.join(WORKFLOWS, f), 'utf8') }));

/** The failure types thrown in workflows/: the first argument of every `fail(…)` call. */
function thrownTypes(): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const { file, text } of sources) {
    for (const m of text.matchAll(/\bfail\(\s*(['"`])([^'"`]*)\1/g)) found.set(m[2]!, [...(found.get(m[2]!) ?? []), file]);
  }
  return found;
}

function workflowFailed(cause: Error): WorkflowFailedError {
  return new WorkflowFailedError('Workflow execution failed', cause, RetryState.NON_RETRYABLE_FAILURE);
}

describe('error catalogue', () => {
  it('has every failure type thrown in workflows/, and no type nobody throws', () => {
    const thrown = thrownTypes();
    assert.ok(thrown.size >= 8, `only ${thrown.size} fail(…) calls found: the scan is broken`);
    for (const [type, files] of thrown)
      assert.ok(Object.hasOwn(WORKFLOW_FAILURES, type), `${type} (thrown in ${files.join(', ')}) is not in WORKFLOW_FAILURES`);
    for (const type of Object.keys(WORKFLOW_FAILURES)) assert.ok(thrown.has(type), `WORKFLOW_FAILURES.${type} is thrown by no workflow`);
  });

  it('is the only way workflows fail on purpose (no ApplicationFailure built by hand outside workflows/failures.ts)', () => {
    for (const { file, text } of sources) {
      if (file === 'failures.ts') continue;
      assert.doesNotMatch(
        text,
        /ApplicationFailure\.(nonRetryable|retryable|create|fromError)\(|new ApplicationFailure\(/,
        `${file} builds an ApplicationFailure: use fail() from workflows/failures.ts`,
      );
    }
  });

  it('is documented: the README lists every workflow failure type', () => {
    const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    for (const type of Object.keys(WORKFLOW_FAILURES)) assert.match(readme, new RegExp(`^\\| \`${type}\` \\|`, 'm'), `README has no table row for ${type}`);
  });
});

describe('CLI exit codes from the catalogue', () => {
  const codeOf = (err: unknown) => commandFailure(err).code;

  it('gives 3 only for a service that could not be reached, whatever is retryable', () => {
    for (const [name, value] of Object.entries(errors)) {
      if (typeof value !== 'function' || !(value.prototype instanceof errors.DrError)) continue;
      const err = new (value as new (message: string) => errors.DrError)('boom');
      const expected = name === 'ConfigError' ? EXIT.usage : /UnavailableError$/.test(name) ? EXIT.unavailable : EXIT.failed;
      assert.equal(codeOf(err), expected, `${name} (permanent: ${err.permanent})`);
    }
  });

  it('maps representative errors', () => {
    assert.equal(codeOf(new errors.PipelineError('pg_dump exited with code 1')), EXIT.failed, 'retryable, but no service is unreachable');
    assert.equal(codeOf(new errors.ServiceCommandError('systemctl stop odoo failed')), EXIT.failed);
    assert.equal(codeOf(new errors.DatabaseUnavailableError('server unreachable')), EXIT.unavailable);
    assert.equal(codeOf(new errors.CloudUnavailableError('S3 is unavailable')), EXIT.unavailable);
    assert.equal(codeOf(new errors.ConfigError('invalid configuration')), EXIT.usage);
    assert.equal(codeOf(new errors.InvalidInputError('session does not exist')), EXIT.failed, 'refused: the operation ran');
    assert.equal(codeOf(new CliExit(EXIT.usage, '--mode must be one of …')), EXIT.usage);
    assert.equal(codeOf(new Error('anything else')), EXIT.failed);
    assert.equal(codeOf(new Error('Failed to connect before the deadline')), EXIT.unavailable, 'Temporal unreachable');
  });

  it('gives 1 for a workflow that failed, with its root cause on stderr', () => {
    const space = commandFailure(
      workflowFailed(ApplicationFailure.nonRetryable('not enough space: /var/lib/postgresql needs 2 GiB more', 'InsufficientSpace')),
    );
    assert.deepEqual(space, { code: EXIT.failed, message: 'workflow failed: InsufficientSpace: not enough space: /var/lib/postgresql needs 2 GiB more' });
    // An activity that kept failing because PostgreSQL was down: the workflow failed (1), the cause is named.
    const activity = new ActivityFailure(
      'Activity task failed',
      'planRecovery',
      '1',
      RetryState.MAXIMUM_ATTEMPTS_REACHED,
      'worker',
      ApplicationFailure.retryable('server unreachable', 'DatabaseUnavailableError'),
    );
    const down = commandFailure(workflowFailed(activity));
    assert.deepEqual(down, { code: EXIT.failed, message: 'workflow failed: DatabaseUnavailableError: server unreachable' });
    for (const type of Object.keys(WORKFLOW_FAILURES)) assert.equal(codeOf(workflowFailed(ApplicationFailure.nonRetryable('x', type))), EXIT.failed, type);
  });
});
