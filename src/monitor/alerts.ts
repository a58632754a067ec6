/**
 * The alert state machine: given the previous state, new observations of checks and the time,
 * which messages to send and the new state. A check alerts when it enters warning or critical (or
 * changes between them), again at most every repeat interval while it persists, and once more with
 * a recovery message when it is ok again. Pure and deterministic: the state lives in the
 * alertsWorkflow (durable), this only decides.
 */
import type { CheckStatus, MonitorCheck } from './checks';

export type ObservedCheck = Pick<MonitorCheck, 'id' | 'status' | 'value' | 'threshold' | 'message' | 'action'> & { tenant?: string; unit?: string };

export interface Observation {
  /** Unique id (the reporting workflow's), so the sender can wait for its outcome. */
  id: string;
  /** Who reported (monitorWorkflow, validationWorkflow, drillWorkflow…) and its workflow ID. */
  source: string;
  checks: ObservedCheck[];
  /**
   * True for a monitor run, which reports every check: an alerting check it no longer reports (a
   * tenant that was dropped) is forgotten without a message. Validation and drill report one each.
   */
  complete: boolean;
}

export interface ActiveAlert {
  status: 'warning' | 'critical';
  since: string;
  lastSentAt: string;
  check: ObservedCheck;
}

export interface AlertState {
  active: Record<string, ActiveAlert>;
}

export interface AlertMessage {
  key: string;
  kind: 'fire' | 'repeat' | 'change' | 'recovery';
  severity: 'info' | 'warning' | 'critical';
  subject: string;
  text: string;
}

export function emptyAlertState(): AlertState {
  return { active: {} };
}

function alerting(s: CheckStatus): s is 'warning' | 'critical' {
  return s === 'warning' || s === 'critical';
}

function value(c: ObservedCheck): string {
  return c.value === null ? 'unknown' : `${c.value}${c.unit && typeof c.value === 'number' ? ` ${c.unit}` : ''}`;
}

/** Names the tenant, the check, the value, the threshold and what to do. */
export function formatAlert(
  kind: AlertMessage['kind'],
  c: ObservedCheck,
  extra: { since?: string; previous?: CheckStatus; source: string },
): Omit<AlertMessage, 'key' | 'kind'> {
  const who = c.tenant ? `tenant ${c.tenant}: ` : '';
  const head =
    kind === 'recovery'
      ? 'RESOLVED'
      : kind === 'repeat'
        ? `still ${c.status.toUpperCase()}`
        : kind === 'change'
          ? `${extra.previous?.toUpperCase()} → ${c.status.toUpperCase()}`
          : c.status.toUpperCase();
  const lines = [
    `${head}: ${who}${c.message}`,
    '',
    `Check:     ${c.id}`,
    ...(c.tenant ? [`Tenant:    ${c.tenant}`] : []),
    `Value:     ${value(c)}`,
    `Threshold: ${c.threshold}`,
    ...(extra.since ? [`Since:     ${extra.since}`] : []),
    ...(kind !== 'recovery' && c.action ? [`What to do: ${c.action}`] : []),
    `Reported by: ${extra.source}`,
  ];
  return {
    severity: kind === 'recovery' ? 'info' : (c.status as 'warning' | 'critical'),
    subject: `${head} ${c.id}${c.tenant && !c.id.includes(c.tenant) ? ` (${c.tenant})` : ''}`,
    text: lines.join('\n'),
  };
}

/**
 * Decides what to send. `repeatMs` is DR_ALERT_REPEAT_HOURS; `now` is the workflow's time. An
 * `unknown` check leaves its alert as it is (no news is not a recovery).
 */
export function decideAlerts(prev: AlertState, obs: Observation, now: Date, repeatMs: number): { messages: AlertMessage[]; state: AlertState } {
  const at = now.toISOString();
  const active: Record<string, ActiveAlert> = { ...prev.active };
  const messages: AlertMessage[] = [];
  const seen = new Set<string>();
  for (const c of obs.checks) {
    seen.add(c.id);
    const was = active[c.id];
    if (alerting(c.status)) {
      if (!was) {
        messages.push({ key: c.id, kind: 'fire', ...formatAlert('fire', c, { source: obs.source }) });
        active[c.id] = { status: c.status, since: at, lastSentAt: at, check: c };
      } else if (was.status !== c.status) {
        messages.push({ key: c.id, kind: 'change', ...formatAlert('change', c, { since: was.since, previous: was.status, source: obs.source }) });
        active[c.id] = { status: c.status, since: was.since, lastSentAt: at, check: c };
      } else if (now.getTime() - Date.parse(was.lastSentAt) >= repeatMs) {
        messages.push({ key: c.id, kind: 'repeat', ...formatAlert('repeat', c, { since: was.since, source: obs.source }) });
        active[c.id] = { ...was, lastSentAt: at, check: c };
      } else {
        active[c.id] = { ...was, check: c };
      }
    } else if (c.status === 'ok' && was) {
      messages.push({ key: c.id, kind: 'recovery', ...formatAlert('recovery', c, { since: was.since, source: obs.source }) });
      delete active[c.id];
    }
  }
  if (obs.complete) for (const k of Object.keys(active)) if (!seen.has(k)) delete active[k];
  return { messages, state: { active } };
}
