/** Heartbeats for activities whose single steps (hashing a large artifact, a service command) can take minutes. */
import { Context } from '@temporalio/activity';

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
