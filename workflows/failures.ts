/**
 * How a workflow fails on purpose: with a type from the error catalogue (src/errors.ts
 * WORKFLOW_FAILURES), so that a misspelt type does not compile and the CLI and the README know
 * every one of them.
 */
import { ApplicationFailure } from '@temporalio/workflow';
import type { WorkflowFailureType } from '../src/errors';

/** A non-retryable failure of a catalogued type: throw it. */
export function fail(type: WorkflowFailureType, message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, type);
}
