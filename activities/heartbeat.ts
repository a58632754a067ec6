/** Heartbeats for activities whose single steps (hashing a large artifact, a service command) can take minutes. */
import { asyncLocalStorage, Context } from '@temporalio/activity';

/**
 * Runs `work`, heartbeating every 5 s while it runs (with the latest `details()` when given): a
 * worker that dies mid-step is noticed within the heartbeat timeout instead of the start-to-close one.
 */
export async function whileHeartbeating<T>(work: () => Promise<T>, details?: () => unknown): Promise<T> {
  const ctx = Context.current();
  const beat = () => ctx.heartbeat(details?.());
  beat();
  const timer = setInterval(beat, 5_000);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

/**
 * Runs `work` as one part of the current activity: in a copy of its context whose heartbeats are
 * sent as `wrap(details)` and whose `info.heartbeatDetails` (where a retry resumes) is `resume`. A
 * step written as a whole activity (it heartbeats its progress and resumes from it by itself) can
 * so run several times in one activity, each part with its own resume point inside the details of
 * the whole. Cancellation, logger and client are the activity's own.
 */
export function asPartOfActivity<T>(resume: unknown, wrap: (details: unknown) => unknown, work: () => Promise<T>): Promise<T> {
  const outer = Context.current();
  const part: Context = Object.create(outer, {
    info: { value: { ...outer.info, heartbeatDetails: resume }, enumerable: true },
    heartbeat: { value: (details?: unknown) => outer.heartbeat(wrap(details)), enumerable: true },
  }) as Context;
  return asyncLocalStorage.run(part, work);
}
