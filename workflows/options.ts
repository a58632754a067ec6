/** Timeouts and retry policies of activities, by kind. */
import type { ActivityOptions } from '@temporalio/workflow';

/** Short metadata calls (catalog queries, listings). */
export const quickActivity: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 6,
  },
};
