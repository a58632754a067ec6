/**
 * The retention policy alone (no services, no clock): which sessions of one place are kept and why.
 *
 * A session is kept when any rule keeps it:
 * - `age`: younger than the place's age limit (DR_LOCAL_RETENTION_DAYS / DR_RETENTION_DAYS);
 * - `newest-complete` / `newest-validated`: for some tenant, the newest session in which it is
 *   complete, and the newest such session whose newest validation passed — whatever their age, so a
 *   run of failed or partial nights never makes the last good backup of a tenant expire;
 * - `daily` / `weekly` / `monthly`: grandfather-father-son (DR_RETENTION_GFS, e.g. 7/4/3 as Odoo.sh):
 *   the newest complete session of each of the N latest UTC days, ISO weeks and months that have one
 *   (a partial session stands for its period only when the period has no complete one);
 * - `protected`: named by the caller (the session a backup is writing).
 * - `in-progress`: no manifest yet, and written to within the grace period (the caller knows).
 * An `incomplete` session (no manifest: being written, or crashed) is otherwise kept while younger
 * than the age limit, like any other; `corrupt` sessions get no protection beyond their age.
 */
import { sessionTime } from '../backup/layout';
import type { SessionSummary, ValidationState } from '../sessions/catalog';

export interface GfsRule {
  daily: number;
  weekly: number;
  monthly: number;
}

export interface RetentionPolicy {
  maxAgeDays: number;
  gfs?: GfsRule | null;
  protect?: Iterable<string>;
  /** Sessions without a manifest that were written to recently: backups in progress, whatever their name says. */
  writing?: Iterable<string>;
}

export type KeepReason = 'age' | 'newest-complete' | 'newest-validated' | 'daily' | 'weekly' | 'monthly' | 'protected' | 'in-progress';

export interface RetentionPlan {
  /** Kept sessions with every reason that keeps them (newest first). */
  keep: Map<string, KeepReason[]>;
  /** Sessions to delete, newest first. */
  remove: string[];
}

const DAY = 86_400_000;

/** `2026-11-26`: the UTC day of a session. */
function dayOf(t: Date): string {
  return t.toISOString().slice(0, 10);
}

/** `2026-W48`: the ISO week (Monday to Sunday, UTC) of a session. */
export function isoWeekOf(t: Date): string {
  const d = new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate()));
  const dow = d.getUTCDay() || 7; // Monday 1 … Sunday 7
  d.setUTCDate(d.getUTCDate() + 4 - dow); // the Thursday of the week decides its year
  const yearStart = Date.UTC(d.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((d.getTime() - yearStart) / DAY + 1) / 7);
  return `${d.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}

function monthOf(t: Date): string {
  return t.toISOString().slice(0, 7);
}

/** The per-tenant protections (see the module comment). */
export function sessionsToKeep(sessions: SessionSummary[]): Set<string> {
  const keep = new Set<string>();
  for (const [name] of protections(sessions)) keep.add(name);
  return keep;
}

function protections(sessions: SessionSummary[]): Array<[string, KeepReason]> {
  const newest = new Map<string, string>();
  const newestValidated = new Map<string, string>();
  for (const s of [...sessions].sort((a, b) => (a.session < b.session ? 1 : -1))) {
    if (s.status !== 'complete' && s.status !== 'partial') continue;
    for (const [tenant, state] of Object.entries(s.tenants)) {
      if (state !== 'complete') continue;
      if (!newest.has(tenant)) newest.set(tenant, s.session);
      if (s.validation === 'pass' && !newestValidated.has(tenant)) newestValidated.set(tenant, s.session);
    }
  }
  return [
    ...[...newest.values()].map((n): [string, KeepReason] => [n, 'newest-complete']),
    ...[...newestValidated.values()].map((n): [string, KeepReason] => [n, 'newest-validated']),
  ];
}

/**
 * GFS: for each period kind, the newest usable session of each of the `count` latest periods that
 * have one. Usable: complete, or partial when its period has no complete session.
 */
function gfsKeeps(sessions: SessionSummary[], rule: GfsRule): Array<[string, KeepReason]> {
  const out: Array<[string, KeepReason]> = [];
  const kinds: Array<[KeepReason, number, (t: Date) => string]> = [
    ['daily', rule.daily, dayOf],
    ['weekly', rule.weekly, isoWeekOf],
    ['monthly', rule.monthly, monthOf],
  ];
  const newestFirst = [...sessions].sort((a, b) => (a.session < b.session ? 1 : -1));
  for (const [reason, count, periodOf] of kinds) {
    if (count <= 0) continue;
    const chosen = new Map<string, SessionSummary>();
    for (const s of newestFirst) {
      if (s.status !== 'complete' && s.status !== 'partial') continue;
      const period = periodOf(sessionTime(s.session));
      const had = chosen.get(period);
      // Newest first: the first seen wins, unless it is partial and a complete one follows.
      if (!had || (had.status === 'partial' && s.status === 'complete')) chosen.set(period, s);
    }
    const periods = [...chosen.keys()].sort().reverse().slice(0, count);
    for (const p of periods) out.push([chosen.get(p)!.session, reason]);
  }
  return out;
}

/**
 * The sessions with their validation looked up (by `validationOf`) only where it can change what
 * planRetention(…, `maxAgeDays`, `now`) deletes; the others say `never`. A validation matters only
 * through `newest-validated`, and only to a session past the age limit: so the validations of the
 * expired sessions complete for some tenant, then, for each tenant one of them validated keeps,
 * those of the newer sessions complete for it down to the first that passed (the true newest
 * validated one). Every session that could be the newest validated one of a tenant with an expired
 * session at stake is thus known, and the plan deletes exactly what it would with every validation
 * known, without listing the results of every young session at every backup.
 */
export async function withValidationsThatMatter(
  sessions: SessionSummary[],
  maxAgeDays: number,
  now: Date,
  validationOf: (session: string) => Promise<ValidationState>,
): Promise<SessionSummary[]> {
  const cutoff = now.getTime() - maxAgeDays * DAY;
  const known = new Map<string, ValidationState>();
  const lookUp = async (s: SessionSummary): Promise<ValidationState> => {
    let state = known.get(s.session);
    if (state === undefined) known.set(s.session, (state = await validationOf(s.session)));
    return state;
  };
  const usable = (s: SessionSummary) => s.status === 'complete' || s.status === 'partial';
  const completeTenants = (s: SessionSummary) => Object.keys(s.tenants).filter((t) => s.tenants[t] === 'complete');
  const newestFirst = [...sessions].sort((a, b) => (a.session < b.session ? 1 : -1));
  const atStake = new Set<string>();
  for (const s of newestFirst) {
    if (!usable(s) || sessionTime(s.session).getTime() >= cutoff || completeTenants(s).length === 0) continue;
    if ((await lookUp(s)) === 'pass') for (const t of completeTenants(s)) atStake.add(t);
  }
  for (const tenant of atStake) {
    for (const s of newestFirst) {
      if (usable(s) && s.tenants[tenant] === 'complete' && (await lookUp(s)) === 'pass') break;
    }
  }
  return sessions.map((s) => ({ ...s, validation: known.get(s.session) ?? 'never' }));
}

/** Applies the policy to the sessions of one place at `now`. */
export function planRetention(sessions: SessionSummary[], policy: RetentionPolicy, now: Date): RetentionPlan {
  const reasons = new Map<string, KeepReason[]>();
  const add = (name: string, why: KeepReason) => {
    const list = reasons.get(name) ?? [];
    if (!list.includes(why)) list.push(why);
    reasons.set(name, list);
  };
  const cutoff = now.getTime() - policy.maxAgeDays * DAY;
  for (const s of sessions) if (sessionTime(s.session).getTime() >= cutoff) add(s.session, 'age');
  for (const [name, why] of protections(sessions)) add(name, why);
  if (policy.gfs) for (const [name, why] of gfsKeeps(sessions, policy.gfs)) add(name, why);
  const known = new Set(sessions.map((s) => s.session));
  for (const name of policy.protect ?? []) if (known.has(name)) add(name, 'protected');
  for (const name of policy.writing ?? []) if (known.has(name)) add(name, 'in-progress');
  const names = [...known].sort().reverse();
  const keep = new Map<string, KeepReason[]>();
  const remove: string[] = [];
  for (const n of names) {
    const why = reasons.get(n);
    if (why) keep.set(n, why);
    else remove.push(n);
  }
  return { keep, remove };
}
