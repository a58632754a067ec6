/**
 * The automation planner: configuration + command-line flags → the schedules odoo-dr wants in
 * Temporal (what, when, in which time zone, with which overlap, catch-up and jitter), and the RPO
 * rule for backups. Pure: no Temporal here; temporal/schedules.ts turns a plan into Schedules.
 */
import { InvalidInputError } from '../errors';

export type ScheduleKind = 'backup' | 'validation' | 'drill' | 'monitor' | 'cleanup';
export const SCHEDULE_KINDS: readonly ScheduleKind[] = ['backup', 'validation', 'drill', 'monitor', 'cleanup'];

export type DrillCadence = 'daily' | 'weekly' | 'monthly';
export const DRILL_CADENCES: readonly DrillCadence[] = ['daily', 'weekly', 'monthly'];

export interface TimeOfDay {
  hour: number;
  minute: number;
}

/** What the configuration says (src/config `automation`, plus the RPO). */
export interface AutomationSettings {
  rpoHours: number;
  backupTime: TimeOfDay;
  /** Hours between backups; undefined: the longest whole-hour cadence that meets the RPO. */
  backupIntervalHours: number | undefined;
  validationTime: TimeOfDay;
  validationRestoreTest: boolean;
  drillEnabled: boolean;
  drillCadence: DrillCadence;
  drillTime: TimeOfDay;
  /** Drills use the bucket when there is one (see README, Automation). */
  cloud: boolean;
  monitoringEnabled: boolean;
  monitoringIntervalMinutes: number;
  cleanupTime: TimeOfDay;
  /** IANA time zone the times are in. */
  timezone: string;
  jitterMinutes: number;
}

/** `schedules apply` flags: strings as typed, checked here so every message names its flag. */
export interface AutomationFlags {
  backupTime?: string;
  backupInterval?: string;
  testSchedule?: string;
  monitorInterval?: string;
  jitter?: string;
  /** Accept a backup cadence that breaks the RPO. */
  force?: boolean;
}

/** When a schedule fires: times of day (optionally on one weekday or day of month), or a fixed interval. */
export type PlannedWhen =
  { kind: 'calendar'; hours: number[]; minute: number; dayOfWeek?: 'SUNDAY'; dayOfMonth?: number } | { kind: 'interval'; everyMinutes: number };

export interface PlannedSchedule {
  name: ScheduleKind;
  /** One line for people: "every 4 h from 02:00 UTC". */
  summary: string;
  when: PlannedWhen;
  timezone: string;
  /** Input of the workflow the schedule starts (the caller adds `startedBy`). */
  input: Record<string, unknown>;
  /** A run that is due while the previous one still runs is skipped. */
  overlap: 'skip';
  /** After an outage, runs missed longer ago than this are dropped (not fired in a burst). */
  catchupMinutes: number;
  /** Each run starts up to this much later than its time, at random (large fleets). */
  jitterSeconds: number;
  /** A run still going after this is ended (only where a hung run would block later ones). */
  executionTimeoutMinutes?: number;
}

export interface RpoCheck {
  rpoHours: number;
  /** Largest time between two backup starts, jitter included. */
  largestGapMinutes: number;
  ok: boolean;
}

export interface AutomationPlan {
  schedules: PlannedSchedule[];
  /** Kinds switched off by the configuration: apply removes their schedules. */
  disabled: ScheduleKind[];
  rpo: RpoCheck;
  warnings: string[];
}

/** The planner refused the flags or the configuration; the message names what is wrong. */
export class AutomationPlanError extends InvalidInputError {}

/** `HH:MM` (24-hour, `2:00` accepted) → hour and minute; `what` names the flag or variable in the error. */
export function parseTimeOfDay(raw: string, what: string): TimeOfDay {
  const m = /^(\d{1,2}):(\d{2})$/.exec(raw.trim());
  const hour = m ? Number(m[1]) : NaN;
  const minute = m ? Number(m[2]) : NaN;
  if (!m || hour > 23 || minute > 59) {
    throw new AutomationPlanError(`${what} must be a time of day HH:MM from 00:00 to 23:59 (24-hour clock), got ${JSON.stringify(raw)}`);
  }
  return { hour, minute };
}

export function formatTimeOfDay(t: TimeOfDay): string {
  return `${String(t.hour).padStart(2, '0')}:${String(t.minute).padStart(2, '0')}`;
}

function wholeNumber(raw: string, what: string, min: number, max: number, unit: string): number {
  const n = /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
  if (!(n >= min && n <= max)) throw new AutomationPlanError(`${what} must be a whole number of ${unit} from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  return n;
}

/** The settings with the flags applied (each flag checked, its name in the error). */
export function applyFlags(settings: AutomationSettings, flags: AutomationFlags): AutomationSettings {
  const out = { ...settings };
  if (flags.backupTime !== undefined) out.backupTime = parseTimeOfDay(flags.backupTime, '--backup-time');
  if (flags.backupInterval !== undefined) out.backupIntervalHours = wholeNumber(flags.backupInterval, '--backup-interval', 1, 24, 'hours');
  if (flags.testSchedule !== undefined) {
    if (!DRILL_CADENCES.includes(flags.testSchedule as DrillCadence)) {
      throw new AutomationPlanError(`--test-schedule must be one of ${DRILL_CADENCES.join(', ')}, got ${JSON.stringify(flags.testSchedule)}`);
    }
    out.drillCadence = flags.testSchedule as DrillCadence;
  }
  if (flags.monitorInterval !== undefined) out.monitoringIntervalMinutes = wholeNumber(flags.monitorInterval, '--monitor-interval', 1, 1440, 'minutes');
  if (flags.jitter !== undefined) out.jitterMinutes = wholeNumber(flags.jitter, '--jitter', 0, 60, 'minutes');
  return out;
}

/** Start hours of a backup every `interval` hours from `start` (within one day). */
export function backupHours(startHour: number, intervalHours: number): number[] {
  const hours: number[] = [];
  for (let h = 0; h < 24; h += intervalHours) hours.push((startHour + h) % 24);
  return hours.sort((a, b) => a - b);
}

/** Largest time between two consecutive starts of a daily calendar (hours × one minute), jitter included. */
export function largestGapMinutes(hours: number[], jitterSeconds: number): number {
  const sorted = [...new Set(hours)].sort((a, b) => a - b);
  let gap = 0;
  for (let i = 0; i < sorted.length; i++) {
    const next = i + 1 < sorted.length ? sorted[i + 1]! : sorted[0]! + 24;
    gap = Math.max(gap, (next - sorted[i]!) * 60);
  }
  // One run may start on time and the next as late as the jitter allows.
  return gap + Math.ceil(jitterSeconds / 60);
}

/** Jitter never larger than half the shortest period, so runs cannot swap order or bunch up. */
function jitterFor(periodMinutes: number, jitterMinutes: number): number {
  return Math.min(jitterMinutes * 60, Math.floor((periodMinutes * 60) / 2));
}

/** Default backup cadence: the longest whole number of hours (at most 24) that keeps gap + jitter within the RPO. */
export function defaultBackupInterval(rpoHours: number, jitterMinutes: number): number {
  const interval = Math.min(24, Math.floor((rpoHours * 60 - jitterMinutes) / 60));
  return Math.max(1, interval);
}

/** True when the zone's UTC offset differs between January and July (daylight saving time). */
function observesDst(timezone: string): boolean {
  const offset = (month: number) =>
    new Intl.DateTimeFormat('en-US', { timeZone: timezone, timeZoneName: 'longOffset' })
      .formatToParts(new Date(Date.UTC(2026, month, 15, 12)))
      .find((p) => p.type === 'timeZoneName')?.value;
  return offset(0) !== offset(6);
}

const DAY = 24 * 60;

/**
 * The plan. Throws AutomationPlanError when a backup cadence breaks the RPO (unless `force`, then a
 * loud warning is part of the plan) or a flag is invalid.
 */
export function planSchedules(base: AutomationSettings, flags: AutomationFlags = {}): AutomationPlan {
  const s = applyFlags(base, flags);
  const warnings: string[] = [];
  const tz = s.timezone;
  const at = (t: TimeOfDay) => `${formatTimeOfDay(t)} ${tz}`;

  const interval = s.backupIntervalHours ?? defaultBackupInterval(s.rpoHours, s.jitterMinutes);
  const hours = backupHours(s.backupTime.hour, interval);
  const backupJitter = jitterFor(Math.min(...gaps(hours)), s.jitterMinutes);
  const largest = largestGapMinutes(hours, backupJitter);
  const rpo: RpoCheck = { rpoHours: s.rpoHours, largestGapMinutes: largest, ok: largest <= s.rpoHours * 60 };
  if (!rpo.ok) {
    const what =
      `backups every ${interval} h${backupJitter ? ` with up to ${Math.round(backupJitter / 60)} min of jitter` : ''} leave up to ` +
      `${formatMinutes(largest)} between two backups, more than DR_RPO_HOURS=${s.rpoHours}: a failure just before a backup loses more data than the RPO allows`;
    if (!flags.force) {
      throw new AutomationPlanError(
        `${what}. Back up more often (--backup-interval ${Math.min(interval, s.rpoHours)} or less, or unset DR_BACKUP_INTERVAL_HOURS), ` +
          'raise DR_RPO_HOURS, or pass --force to accept it',
      );
    }
    warnings.push(`WARNING: --force: ${what}. The monitor will report the RPO as missed.`);
  }
  if (tz !== 'UTC' && observesDst(tz)) {
    const early = [s.backupTime, s.validationTime, s.drillTime, s.cleanupTime].some((t) => t.hour >= 1 && t.hour <= 3) || hours.some((h) => h >= 1 && h <= 3);
    if (early) {
      warnings.push(
        `${tz} observes daylight saving time: a run between 01:00 and 03:59 local time may be skipped or run twice on the night the clocks change (use DR_SCHEDULE_TIMEZONE=UTC to avoid it)`,
      );
    }
  }

  const daily = (t: TimeOfDay): PlannedWhen => ({ kind: 'calendar', hours: [t.hour], minute: t.minute });
  const schedules: PlannedSchedule[] = [
    {
      name: 'backup',
      summary:
        interval >= 24
          ? `daily at ${at(s.backupTime)}`
          : `every ${interval} h from ${at(s.backupTime)} (${hours.map((h) => formatTimeOfDay({ hour: h, minute: s.backupTime.minute })).join(', ')})`,
      when: { kind: 'calendar', hours, minute: s.backupTime.minute },
      timezone: tz,
      input: {},
      overlap: 'skip',
      // After an outage one backup starts at once (the RPO is at risk); older missed ones are dropped.
      catchupMinutes: Math.min(...gaps(hours)),
      jitterSeconds: backupJitter,
    },
    {
      name: 'validation',
      summary: `daily at ${at(s.validationTime)}, latest session${s.validationRestoreTest ? ', with restore test' : ''}`,
      when: daily(s.validationTime),
      timezone: tz,
      input: { session: 'latest', ...(s.validationRestoreTest ? { restoreTest: true } : {}) },
      overlap: 'skip',
      catchupMinutes: 6 * 60,
      jitterSeconds: jitterFor(DAY, s.jitterMinutes),
    },
  ];
  if (s.drillEnabled) {
    const when: PlannedWhen =
      s.drillCadence === 'weekly'
        ? { kind: 'calendar', hours: [s.drillTime.hour], minute: s.drillTime.minute, dayOfWeek: 'SUNDAY' }
        : s.drillCadence === 'monthly'
          ? { kind: 'calendar', hours: [s.drillTime.hour], minute: s.drillTime.minute, dayOfMonth: 1 }
          : daily(s.drillTime);
    const cadence = { daily: 'daily', weekly: 'Sundays', monthly: 'on the 1st of each month' }[s.drillCadence];
    schedules.push({
      name: 'drill',
      summary: `${cadence} at ${at(s.drillTime)}, full drill${s.cloud ? ' from the bucket' : ''}`,
      when,
      timezone: tz,
      input: { mode: 'full', cloud: s.cloud },
      overlap: 'skip',
      // A drill loads the database server: a missed one runs only if it is still early, not at noon.
      catchupMinutes: 2 * 60,
      jitterSeconds: jitterFor(DAY, s.jitterMinutes),
    });
  }
  if (s.monitoringEnabled) {
    const every = s.monitoringIntervalMinutes;
    schedules.push({
      name: 'monitor',
      summary: `every ${formatMinutes(every)}`,
      when: { kind: 'interval', everyMinutes: every },
      timezone: tz,
      input: {},
      overlap: 'skip',
      catchupMinutes: every,
      jitterSeconds: jitterFor(every, s.jitterMinutes),
      // A hung check would make every later one skip (overlap): the monitor must never go quiet.
      executionTimeoutMinutes: Math.max(every, 10),
    });
  }
  schedules.push({
    name: 'cleanup',
    summary: `daily at ${at(s.cleanupTime)}, retention and pack collection`,
    when: daily(s.cleanupTime),
    timezone: tz,
    input: {},
    overlap: 'skip',
    catchupMinutes: 6 * 60,
    jitterSeconds: jitterFor(DAY, s.jitterMinutes),
  });
  const disabled = SCHEDULE_KINDS.filter((k) => !schedules.some((p) => p.name === k));
  return { schedules, disabled, rpo, warnings };
}

/** Minutes between consecutive starts of a daily calendar with these hours. */
function gaps(hours: number[]): number[] {
  const sorted = [...new Set(hours)].sort((a, b) => a - b);
  return sorted.map((h, i) => ((i + 1 < sorted.length ? sorted[i + 1]! : sorted[0]! + 24) - h) * 60);
}

export function formatMinutes(minutes: number): string {
  if (minutes % 60 === 0) return `${minutes / 60} h`;
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}
