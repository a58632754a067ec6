/**
 * How a command that ended with an error reports it: one line on stderr and the exit code, taken
 * from the error catalogue (src/errors.ts): a DrError's `exitClass`, a failed workflow's failure
 * type in WORKFLOW_FAILURES. Only a service that could not be reached gives 3: a retryable error is
 * not an unreachable service.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { DrError, WORKFLOW_FAILURES, scrubSecrets, type ExitClass } from '../../src/errors';
import { CliExit, EXIT } from './common';
import { isTemporalUnavailable } from './wait';

/** The exit class of a workflow that ended with this failure type: its catalogue entry's, else `failed` (the workflow ran and failed). */
export function workflowFailureExitClass(type: string | undefined): ExitClass {
  return type !== undefined && Object.hasOwn(WORKFLOW_FAILURES, type) ? WORKFLOW_FAILURES[type as keyof typeof WORKFLOW_FAILURES].exit : 'failed';
}

/** What a command prints (after `odoo-dr: `) and exits with when it ends with `err`. */
export function commandFailure(err: unknown): { code: number; message: string } {
  if (err instanceof CliExit) return { code: err.code, message: scrubSecrets(err.message, []) };
  if (err instanceof DrError) return { code: EXIT[err.exitClass], message: `${err.name}: ${scrubSecrets(err.message, [])}` };
  if (err instanceof WorkflowFailedError) {
    // The operator needs the root cause (an activity's error), not "Workflow execution failed".
    let cause: unknown = err.cause;
    while (cause instanceof Error && cause.cause instanceof Error && !(cause instanceof ApplicationFailure)) cause = cause.cause;
    const root = cause as { type?: string; message?: string } | undefined;
    return {
      code: EXIT[workflowFailureExitClass(root?.type)],
      message: `workflow failed: ${root?.type ? `${root.type}: ` : ''}${scrubSecrets(root?.message ?? err.message, [])}`,
    };
  }
  if (isTemporalUnavailable(err)) {
    // Temporal went away between connecting and an answer (start, signal, query).
    const cause = (err as Error).cause instanceof Error ? `: ${((err as Error).cause as Error).message}` : '';
    return { code: EXIT.unavailable, message: `Temporal unreachable: ${scrubSecrets(`${(err as Error).message}${cause}`, [])}` };
  }
  return { code: EXIT.failed, message: scrubSecrets((err as Error).message ?? String(err), []) };
}
