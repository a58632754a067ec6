/**
 * Temporal Schedules of odoo-dr, client side: turns the automation plan (src/automation/schedules.ts)
 * into Schedules, applies it idempotently (create when absent, update only when spec, action or
 * policies differ, so a re-apply changes nothing), lists them with their last run's result,
 * and pauses, unpauses, triggers and removes them — only ours, by ID (scheduleId()).
 */
import {
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  WorkflowFailedError,
  type Client,
  type ScheduleDescription,
  type ScheduleOptions,
  type ScheduleOptionsStartWorkflowAction,
  type Range,
  DAYS_OF_WEEK,
  MONTHS,
} from '@temporalio/client';
import type { Workflow } from '@temporalio/common';
import {
  SCHEDULE_KINDS,
  formatMinutes,
  type AutomationPlan,
  type AutomationSettings,
  type PlannedSchedule,
  type ScheduleKind,
} from '../src/automation/schedules';
import type { DrConfig } from '../src/config';
import { WorkflowNames, scheduleId, scheduledWorkflowId } from '../workflows/definitions';

/** The workflow each schedule starts (names from workflows/definitions.ts). */
export const SCHEDULED_WORKFLOW: Record<ScheduleKind, string> = {
  backup: WorkflowNames.backup,
  validation: WorkflowNames.validation,
  drill: WorkflowNames.drill,
  monitor: WorkflowNames.monitor,
  cleanup: WorkflowNames.retention,
};

/** The planner's settings from a configuration. */
export function automationSettings(config: DrConfig): AutomationSettings {
  return { ...config.automation, rpoHours: config.objectives.rpoHours, cloud: config.cloud !== undefined };
}

type Options = ScheduleOptions<ScheduleOptionsStartWorkflowAction<Workflow>>;

/** The Temporal Schedule for one planned schedule on a task queue. */
export function scheduleOptions(p: PlannedSchedule, taskQueue: string): Options {
  const id = scheduleId(p.name, taskQueue);
  const when = p.when;
  return {
    scheduleId: id,
    spec: {
      ...(when.kind === 'calendar'
        ? {
            calendars: [
              {
                hour: when.hours,
                minute: when.minute,
                ...(when.dayOfWeek ? { dayOfWeek: when.dayOfWeek } : {}),
                ...(when.dayOfMonth ? { dayOfMonth: when.dayOfMonth } : {}),
                comment: p.summary,
              },
            ],
          }
        : { intervals: [{ every: `${when.everyMinutes}m` }] }),
      timezone: p.timezone,
      ...(p.jitterSeconds > 0 ? { jitter: `${p.jitterSeconds}s` } : {}),
    },
    action: {
      type: 'startWorkflow',
      workflowType: SCHEDULED_WORKFLOW[p.name],
      taskQueue,
      workflowId: scheduledWorkflowId(p.name, taskQueue),
      // The run's audit line and notifications name the schedule that started it.
      args: [{ ...p.input, startedBy: `schedule:${id}` }],
      ...(p.executionTimeoutMinutes ? { workflowExecutionTimeout: `${p.executionTimeoutMinutes}m` } : {}),
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: `${p.catchupMinutes}m`, pauseOnFailure: false },
    memo: { managedBy: 'odoo-dr' },
  };
}

/** JSON with sorted keys: the same value always prints the same. */
function stable(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) : v,
  );
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

function expand<T>(ranges: Range<T>[], index: (v: T) => number): number[] {
  const out = new Set<number>();
  for (const r of ranges) for (let v = index(r.start); v <= index(r.end); v += r.step || 1) out.add(v);
  return [...out].sort((a, b) => a - b);
}

/** What decides when and what a schedule runs, in one comparable shape. */
interface Canonical {
  calendars: string[];
  intervals: string[];
  timezone: string;
  jitterMs: number;
  workflowType: string;
  workflowId: string;
  taskQueue: string;
  args: string;
  executionTimeoutMs: number;
  overlap: string;
  catchupWindowMs: number;
  pauseOnFailure: boolean;
}

function canonicalOfDescription(d: ScheduleDescription): Canonical {
  const num = (v: number) => v;
  const calendars = (d.spec.calendars ?? []).map((c) =>
    stable({
      second: expand(c.second, num),
      minute: expand(c.minute, num),
      hour: expand(c.hour, num),
      dayOfMonth: expand(c.dayOfMonth, num),
      month: expand(c.month, (m) => MONTHS.indexOf(m) + 1),
      year: expand(c.year, num),
      dayOfWeek: expand(c.dayOfWeek, (w) => DAYS_OF_WEEK.indexOf(w)),
      comment: c.comment ?? '',
    }),
  );
  return {
    calendars,
    intervals: (d.spec.intervals ?? []).map((i) => `${i.every}/${i.offset ?? 0}`),
    timezone: d.spec.timezone || 'UTC',
    jitterMs: d.spec.jitter ?? 0,
    workflowType: d.action.workflowType,
    workflowId: d.action.workflowId ?? '',
    taskQueue: d.action.taskQueue,
    args: stable(d.action.args ?? []),
    executionTimeoutMs: Number(d.action.workflowExecutionTimeout ?? 0),
    overlap: d.policies.overlap ?? 'SKIP',
    catchupWindowMs: d.policies.catchupWindow,
    pauseOnFailure: d.policies.pauseOnFailure,
  };
}

function canonicalOfPlan(p: PlannedSchedule, taskQueue: string): Canonical {
  const o = scheduleOptions(p, taskQueue);
  const when = p.when;
  return {
    calendars:
      when.kind === 'calendar'
        ? [
            stable({
              second: [0],
              minute: [when.minute],
              hour: [...when.hours].sort((a, b) => a - b),
              dayOfMonth: when.dayOfMonth ? [when.dayOfMonth] : range(1, 31),
              month: range(1, 12),
              year: [],
              dayOfWeek: when.dayOfWeek ? [DAYS_OF_WEEK.indexOf(when.dayOfWeek)] : range(0, 6),
              comment: p.summary,
            }),
          ]
        : [],
    intervals: when.kind === 'interval' ? [`${when.everyMinutes * 60_000}/0`] : [],
    timezone: p.timezone || 'UTC',
    jitterMs: p.jitterSeconds * 1000,
    workflowType: o.action.workflowType as string,
    workflowId: o.action.workflowId!,
    taskQueue,
    args: stable(o.action.args),
    executionTimeoutMs: (p.executionTimeoutMinutes ?? 0) * 60_000,
    overlap: 'SKIP',
    catchupWindowMs: p.catchupMinutes * 60_000,
    pauseOnFailure: false,
  };
}

/** Names of the canonical fields that differ (empty: the schedule is as planned). */
export function scheduleDifferences(d: ScheduleDescription, p: PlannedSchedule, taskQueue: string): string[] {
  const have = canonicalOfDescription(d);
  const want = canonicalOfPlan(p, taskQueue);
  return (Object.keys(want) as (keyof Canonical)[]).filter((k) => stable(have[k]) !== stable(want[k]));
}

export type ScheduleChange = 'create' | 'update' | 'unchanged' | 'remove' | 'absent';

export interface AppliedSchedule {
  name: ScheduleKind;
  scheduleId: string;
  change: ScheduleChange;
  /** False for --dry-run: the change was only planned. */
  applied: boolean;
  summary?: string;
  /** What differed, for an update (e.g. `calendars`, `catchupWindowMs`). */
  differences?: string[];
}

async function describeOrUndefined(client: Client, id: string): Promise<ScheduleDescription | undefined> {
  try {
    return await client.schedule.getHandle(id).describe();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return undefined;
    throw err;
  }
}

/**
 * Makes Temporal match the plan: creates missing schedules, updates those that differ (keeping
 * their paused state and note: an operator's pause survives a re-apply), removes those the
 * configuration switched off. With `dryRun` it only reports what it would do.
 */
export async function applySchedules(client: Client, plan: AutomationPlan, taskQueue: string, opts: { dryRun?: boolean } = {}): Promise<AppliedSchedule[]> {
  const applied = !opts.dryRun;
  const out: AppliedSchedule[] = [];
  for (const p of plan.schedules) {
    const options = scheduleOptions(p, taskQueue);
    const id = options.scheduleId;
    const current = await describeOrUndefined(client, id);
    if (!current) {
      if (applied) await client.schedule.create(options);
      out.push({ name: p.name, scheduleId: id, change: 'create', applied, summary: p.summary });
      continue;
    }
    const differences = scheduleDifferences(current, p, taskQueue);
    if (differences.length === 0) {
      out.push({ name: p.name, scheduleId: id, change: 'unchanged', applied: false, summary: p.summary });
      continue;
    }
    if (applied) {
      await client.schedule.getHandle(id).update((previous) => ({
        spec: options.spec,
        action: options.action,
        policies: options.policies!,
        state: { paused: previous.state.paused, ...(previous.state.note !== undefined ? { note: previous.state.note } : {}) },
      }));
    }
    out.push({ name: p.name, scheduleId: id, change: 'update', applied, summary: p.summary, differences });
  }
  for (const name of plan.disabled) {
    const id = scheduleId(name, taskQueue);
    const current = await describeOrUndefined(client, id);
    if (current && applied) await client.schedule.getHandle(id).delete();
    out.push({ name, scheduleId: id, change: current ? 'remove' : 'absent', applied: applied && current !== undefined });
  }
  return out;
}

export interface LastRun {
  scheduledAt: string;
  takenAt: string;
  workflowId: string;
  /** Temporal's status of the run: RUNNING, COMPLETED, FAILED, TIMED_OUT, TERMINATED, CANCELED… or UNKNOWN (gone). */
  status: string;
  /** The `status` field of the run's result when it has one (backup `complete|partial|failed`, validation `pass|fail`). */
  result?: string;
  /** Why it failed, when it did. */
  error?: string;
}

export interface ScheduleState {
  name: ScheduleKind;
  scheduleId: string;
  exists: boolean;
  paused?: boolean;
  note?: string;
  summary?: string;
  workflowType?: string;
  nextRuns?: string[];
  lastRun?: LastRun;
  running?: string[];
  actionsTaken?: number;
  skippedOverlap?: number;
  missedCatchupWindow?: number;
}

/** The run a schedule started, with its outcome. */
async function lastRunOf(client: Client, d: ScheduleDescription): Promise<LastRun | undefined> {
  const last = d.info.recentActions.at(-1);
  if (!last) return undefined;
  const { workflowId, firstExecutionRunId } = last.action.workflow;
  const run: LastRun = { scheduledAt: last.scheduledAt.toISOString(), takenAt: last.takenAt.toISOString(), workflowId, status: 'UNKNOWN' };
  const handle = client.workflow.getHandle(workflowId, undefined, { firstExecutionRunId });
  try {
    run.status = (await handle.describe()).status.name;
  } catch {
    return run; // removed by the namespace's retention
  }
  if (run.status === 'COMPLETED') {
    const result = (await handle.result().catch(() => undefined)) as { status?: unknown } | undefined;
    if (typeof result?.status === 'string') run.result = result.status;
  } else if (run.status === 'FAILED') {
    await handle.result().catch((err: unknown) => {
      let cause: unknown = err instanceof WorkflowFailedError ? err.cause : err;
      while (cause instanceof Error && cause.cause instanceof Error) cause = cause.cause;
      run.error = (cause as Error | undefined)?.message ?? String(err);
    });
  }
  return run;
}

function summaryOf(d: ScheduleDescription): string {
  const comment = d.spec.calendars?.[0]?.comment;
  if (comment) return comment;
  const every = d.spec.intervals?.[0]?.every;
  return every ? `every ${formatMinutes(Math.round(every / 60_000))}` : '';
}

/** Our schedules on a task queue, absent ones included, with next and last runs. */
export async function listSchedules(client: Client, taskQueue: string): Promise<ScheduleState[]> {
  const out: ScheduleState[] = [];
  for (const name of SCHEDULE_KINDS) {
    const id = scheduleId(name, taskQueue);
    const d = await describeOrUndefined(client, id);
    if (!d) {
      out.push({ name, scheduleId: id, exists: false });
      continue;
    }
    const lastRun = await lastRunOf(client, d);
    out.push({
      name,
      scheduleId: id,
      exists: true,
      paused: d.state.paused,
      ...(d.state.note ? { note: d.state.note } : {}),
      summary: summaryOf(d),
      workflowType: d.action.workflowType,
      nextRuns: d.state.paused ? [] : d.info.nextActionTimes.map((t) => t.toISOString()),
      ...(lastRun ? { lastRun } : {}),
      running: d.info.runningActions.map((a) => a.workflow.workflowId),
      actionsTaken: d.info.numActionsTaken,
      skippedOverlap: d.info.numActionsSkippedOverlap,
      missedCatchupWindow: d.info.numActionsMissedCatchupWindow,
    });
  }
  return out;
}

/** Pauses or unpauses one of our schedules, with a note shown in the UI and `schedules list`. */
export async function setPaused(client: Client, name: ScheduleKind, taskQueue: string, paused: boolean, note: string): Promise<string> {
  const id = scheduleId(name, taskQueue);
  const handle = client.schedule.getHandle(id);
  if (paused) await handle.pause(note);
  else await handle.unpause(note);
  return id;
}

export class ScheduleRunInProgressError extends Error {}

/**
 * Runs a schedule's action now. Refused while a run it started is still going (the schedule's
 * overlap policy would skip the trigger silently). Resolves to the started workflow's ID.
 */
export async function triggerSchedule(client: Client, name: ScheduleKind, taskQueue: string, waitMs = 30_000): Promise<string> {
  const id = scheduleId(name, taskQueue);
  const handle = client.schedule.getHandle(id);
  const before = await handle.describe();
  const running = before.info.runningActions.map((a) => a.workflow.workflowId);
  if (running.length) throw new ScheduleRunInProgressError(`${id} has a run in progress (${running.join(', ')}); not triggered`);
  const seen = new Set(before.info.recentActions.map((a) => a.action.workflow.firstExecutionRunId));
  await handle.trigger(ScheduleOverlapPolicy.SKIP);
  // The server takes the action asynchronously: wait until it shows in the schedule's recent actions.
  const until = Date.now() + waitMs;
  while (Date.now() < until) {
    const now = await handle.describe();
    const fresh = now.info.recentActions.find((a) => !seen.has(a.action.workflow.firstExecutionRunId));
    if (fresh) return fresh.action.workflow.workflowId;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${id} was triggered but no run appeared within ${waitMs / 1000} s; see: temporal schedule describe --schedule-id ${id}`);
}

/** Deletes our schedules (all, or the named ones) by ID; never anything else. */
export async function removeSchedules(client: Client, taskQueue: string, names: readonly ScheduleKind[] = SCHEDULE_KINDS): Promise<AppliedSchedule[]> {
  const out: AppliedSchedule[] = [];
  for (const name of names) {
    const id = scheduleId(name, taskQueue);
    const exists = (await describeOrUndefined(client, id)) !== undefined;
    if (exists) await client.schedule.getHandle(id).delete();
    out.push({ name, scheduleId: id, change: exists ? 'remove' : 'absent', applied: exists });
  }
  return out;
}
