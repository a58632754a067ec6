/**
 * Stubbed activities for the fast tier: plain functions that record every call (name and input) and
 * fail on demand with the failure the real activity's error mapping (activities/errors.ts) would
 * send for a catalogued error. The workflows run unchanged on the time-skipping server.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Activities } from '../../activities';
import { toFailure } from '../../activities/errors';
import type { DrError } from '../../src/errors';
import { HISTORIES_DIR } from '../helpers/replay';
import { ownTimeSkippingServer } from '../helpers/temporal';

export type ActivityName = keyof Activities;
export type StubImpls = Partial<{ [K in ActivityName]: (...args: Parameters<Activities[K]>) => ReturnType<Activities[K]> }>;

export interface Call {
  name: ActivityName;
  input: unknown;
}

export interface Stubs {
  activities: object;
  calls: Call[];
  /**
   * Calls of `name` whose input matches `when` (default: every call) throw `error`, mapped like the
   * real activity's; only the first `times` of them when given (a step that fails, then works).
   */
  failOn(name: ActivityName, error: DrError | Error, opts?: { when?: (input: never) => boolean; times?: number }): void;
  /** Calls of `name` wait until the returned `release` is called; `entered` resolves at the first call. */
  hold(name: ActivityName): { entered: Promise<void>; release: () => void };
  /** The names of the calls made, in order, leaving out `ignore` (audit lines and alerts by default). */
  names(ignore?: ActivityName[]): string[];
  inputsOf<K extends ActivityName>(name: K): Array<Parameters<Activities[K]>[0]>;
  /** Releases every held call (a test that failed half-way must not leave the worker waiting). */
  releaseAll(): void;
}

export const NOTIFICATIONS: ActivityName[] = ['appendAuditRecord', 'sendAlert'];

export function stubActivities(impls: StubImpls): Stubs {
  const calls: Call[] = [];
  const faults: Array<{ name: ActivityName; error: Error; when: (input: never) => boolean; left: number }> = [];
  const holds = new Map<ActivityName, { entered: () => void; gate: Promise<void>; release: () => void }>();
  const activities = Object.fromEntries(
    Object.entries(impls).map(([name, impl]) => [
      name,
      async (...args: unknown[]) => {
        calls.push({ name: name as ActivityName, input: args[0] });
        const held = holds.get(name as ActivityName);
        if (held) {
          held.entered();
          await held.gate;
        }
        const fault = faults.find((f) => f.name === name && f.left > 0 && f.when(args[0] as never));
        if (fault) {
          fault.left--;
          throw toFailure(fault.error, []);
        }
        return (impl as (...a: unknown[]) => Promise<unknown>)(...args);
      },
    ]),
  );
  return {
    activities,
    calls,
    failOn: (name, error, { when = () => true, times = Infinity } = {}) => {
      faults.push({ name, error, when, left: times });
    },
    hold: (name) => {
      let entered!: () => void;
      let release!: () => void;
      const enteredP = new Promise<void>((r) => (entered = r));
      const gate = new Promise<void>((r) => (release = r));
      holds.set(name, { entered, gate, release });
      return { entered: enteredP, release };
    },
    names: (ignore = NOTIFICATIONS) => calls.filter((c) => !ignore.includes(c.name)).map((c) => c.name),
    inputsOf: <K extends ActivityName>(name: K) => calls.filter((c) => c.name === name).map((c) => c.input as Parameters<Activities[K]>[0]),
    releaseAll: () => {
      for (const h of holds.values()) h.release();
    },
  };
}

/** Calls of `name` in `calls`, as `name(tenant)` when the input names a tenant: the order an operator reads in the history. */
export function steps(calls: Call[], ignore: ActivityName[] = NOTIFICATIONS): string[] {
  return calls
    .filter((c) => !ignore.includes(c.name))
    .map((c) => {
      const tenant = (c.input as { tenant?: unknown } | undefined)?.tenant;
      return typeof tenant === 'string' ? `${c.name}(${tenant})` : c.name;
    });
}

/**
 * With ODOO_DR_RECORD_HISTORIES=1, writes the history of a finished run to
 * test/fixtures/histories/<file> (how the replay fixtures of the current code are made); otherwise nothing.
 */
export async function recordHistory(handle: WorkflowHandle, file: string): Promise<void> {
  if (process.env.ODOO_DR_RECORD_HISTORIES !== '1') return;
  const history = temporal.api.history.v1.History.fromObject(await handle.fetchHistory());
  writeFileSync(path.join(HISTORIES_DIR, file), `${JSON.stringify(history.toJSON(), null, 1)}\n`);
}

/** Mocha hooks of a `describe` whose tests run on a server of their own: `swap` swaps it in, then back. */
export function onServerOfItsOwn(swap: (env: TestWorkflowEnvironment) => TestWorkflowEnvironment): void {
  // After these tests the shared server no longer skipped time for later ones (a workflow cancelled
  // while an activity runs; batch children and the locks they hold).
  const own = ownTimeSkippingServer();
  let shared: TestWorkflowEnvironment | undefined;
  before(async () => {
    shared = swap(await own());
  });
  after(() => {
    if (shared) swap(shared);
  });
}
