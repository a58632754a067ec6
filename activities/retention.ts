/**
 * Retention activities (retentionWorkflow, `odoo-dr cleanup`): one per place plus the leftovers,
 * each a thin adapter over src/retention/run.ts, heartbeating while it walks thousands of packs.
 */
import { Context } from '@temporalio/activity';
import type { DrConfig } from '../src/config';
import { cleanLeftovers, retainCloud, retainLocal, type LeftoversReport, type PlaceReport } from '../src/retention/run';
import { InvalidInputError } from '../src/errors';
import { mapped } from './errors';
import { whileHeartbeating } from './heartbeat';

export type { LeftoversReport, PlaceReport } from '../src/retention/run';

/** Fault injection for tests only. */
export interface RetentionTestHooks {
  /** Called with a pack's or blob's layout path right before the local sweep moves it to the trash. */
  beforeTrash?: (relPath: string) => Promise<void>;
}

export interface RetainPlaceInput {
  dryRun: boolean;
  /** The workflow's time (ISO): ages are measured from it. */
  now: string;
}

export interface RetainCloudInput extends RetainPlaceInput {
  /** Sessions the local step deleted (or, in a dry run, would have). */
  localRemoved: string[];
  /** The caller asked for the bucket explicitly: no DR_CLOUD_BUCKET is an error, not a skip. */
  required?: boolean;
}

export function createRetentionActivities(config: DrConfig, secrets: Array<string | undefined>, hooks: RetentionTestHooks = {}) {
  const progress = () => {
    let where = '';
    return {
      onProgress: (what: string) => {
        where = what;
      },
      details: () => ({ at: where }),
    };
  };
  return {
    retainLocalSessions: mapped(secrets, async (input: RetainPlaceInput): Promise<PlaceReport> => {
      const p = progress();
      return whileHeartbeating(
        () =>
          retainLocal(config, {
            now: new Date(input.now),
            dryRun: input.dryRun,
            signal: Context.current().cancellationSignal,
            onProgress: p.onProgress,
            ...(hooks.beforeTrash ? { beforeTrash: hooks.beforeTrash } : {}),
          }),
        p.details,
      );
    }),

    /** null: no bucket is configured (and none was asked for). */
    retainCloudSessions: mapped(secrets, async (input: RetainCloudInput): Promise<PlaceReport | null> => {
      if (!config.cloud) {
        if (input.required) throw new InvalidInputError('retention of the bucket was asked for, but DR_CLOUD_BUCKET is not set');
        return null;
      }
      const p = progress();
      return whileHeartbeating(
        () =>
          retainCloud(config, {
            now: new Date(input.now),
            dryRun: input.dryRun,
            localRemoved: input.localRemoved,
            signal: Context.current().cancellationSignal,
            onProgress: p.onProgress,
          }),
        p.details,
      );
    }),

    cleanRetentionLeftovers: mapped(secrets, async (input: RetainPlaceInput): Promise<LeftoversReport> =>
      whileHeartbeating(() => cleanLeftovers(config, { now: new Date(input.now), dryRun: input.dryRun })),
    ),
  };
}
