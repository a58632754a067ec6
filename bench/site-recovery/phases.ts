/**
 * Where odoo-dr's wall time went in a site recovery, read from the recovery workflow's history
 * (server timestamps): before the shadow restores, the shadows, and what follows them.
 */
import type { WorkflowHandle } from '@temporalio/client';

export type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;

/** Where odoo-dr's wall time went, from the workflow's history (server timestamps). */
export interface Phases {
  /** Start to the first shadow restore scheduled: plan, approval, roles, configuration. */
  beforeShadowsMs: number;
  /** First shadow scheduled to last shadow completed. */
  shadowsMs: number;
  /** Σ prepareRecoveryShadow time (started to completed). */
  shadowActivityMs: number;
  /** Last shadow completed to the workflow's end: stop Odoo, swaps, start, health, markers, report. */
  afterShadowsMs: number;
  /** Activities after the shadows, by type: count and Σ scheduled-to-completed time. */
  after: Record<string, { n: number; ms: number }>;
}

function eventMs(t: { seconds?: unknown; nanos?: number | null } | null | undefined): number {
  return Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;
}

export function phasesOf(history: History): Phases {
  const events = history.events ?? [];
  const scheduled = new Map<string, { type: string; at: number }>();
  const started = new Map<string, number>();
  let start = Infinity;
  let end = 0;
  let firstShadow = Infinity;
  let lastShadow = 0;
  let shadowActivityMs = 0;
  const done: Array<{ type: string; scheduledAt: number; at: number }> = [];
  for (const e of events) {
    const at = eventMs(e.eventTime);
    start = Math.min(start, at);
    end = Math.max(end, at);
    const sch = e.activityTaskScheduledEventAttributes;
    if (sch) {
      const type = sch.activityType?.name ?? '?';
      scheduled.set(String(e.eventId), { type, at });
      if (type === 'prepareRecoveryShadow') firstShadow = Math.min(firstShadow, at);
    }
    if (e.activityTaskStartedEventAttributes) started.set(String(e.activityTaskStartedEventAttributes.scheduledEventId), at);
    const fin = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes;
    if (fin) {
      const s = scheduled.get(String(fin.scheduledEventId));
      if (!s) continue;
      done.push({ type: s.type, scheduledAt: s.at, at });
      if (s.type === 'prepareRecoveryShadow') {
        lastShadow = Math.max(lastShadow, at);
        shadowActivityMs += at - (started.get(String(fin.scheduledEventId)) ?? s.at);
      }
    }
  }
  const after: Phases['after'] = {};
  for (const d of done) {
    if (d.scheduledAt < lastShadow) continue;
    const a = (after[d.type] ??= { n: 0, ms: 0 });
    a.n++;
    a.ms += d.at - d.scheduledAt;
  }
  return { beforeShadowsMs: firstShadow - start, shadowsMs: lastShadow - firstShadow, shadowActivityMs, afterShadowsMs: end - lastShadow, after };
}
