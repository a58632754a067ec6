/**
 * Maps catalogued domain errors to Temporal failures in one place: permanent errors become
 * non-retryable ApplicationFailures whose type is the error's stable name.
 */
import { ApplicationFailure } from '@temporalio/common';
import { DrError, scrubSecrets } from '../src/errors';

export function toFailure(err: unknown, secrets: Array<string | undefined>): Error {
  if (err instanceof ApplicationFailure) return err;
  const e = err instanceof Error ? err : new Error(String(err));
  const message = scrubSecrets(e.message, secrets);
  if (err instanceof DrError) {
    return err.permanent ? ApplicationFailure.nonRetryable(message, err.name) : ApplicationFailure.retryable(message, err.name);
  }
  return ApplicationFailure.retryable(message, e.name || 'Error');
}

/** Wraps an activity so every thrown error goes through toFailure. */
export function mapped<A extends unknown[], R>(secrets: Array<string | undefined>, fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A) => {
    try {
      return await fn(...args);
    } catch (err) {
      throw toFailure(err, secrets);
    }
  };
}
