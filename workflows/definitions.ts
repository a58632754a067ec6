/**
 * The public contract of odoo-dr's workflows: task queue, workflow names, IDs, signals and queries.
 * Operators start these from the CLI, the Temporal UI or `temporal workflow start`; keep names stable.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { ObservationOutcome } from '../activities/monitor';
import type { AlertState, Observation } from '../src/monitor/alerts';
import type { RecoveryStatus } from './recovery-steps';

/** Default task queue of the odoo-dr worker (DR_TASK_QUEUE overrides it). */
export const DEFAULT_TASK_QUEUE = 'odoo-dr';

/** Workflow type names, as they appear in the Temporal UI. */
export const WorkflowNames = {
  tenantDiscovery: 'tenantDiscoveryWorkflow',
  backup: 'backupWorkflow',
  tenantBackup: 'tenantBackupWorkflow',
  backupBatch: 'backupBatchWorkflow',
  validation: 'validationWorkflow',
  drill: 'drillWorkflow',
  recovery: 'recoveryWorkflow',
  /** One monitoring check of every tenant and service (scheduled hourly); writes the status report. */
  monitor: 'monitorWorkflow',
  /** Long-lived alert state (fire once, repeat, clear): one per namespace, ID `odoo-dr/alerts`. */
  alerts: 'alertsWorkflow',
  /** Retention and pack collection (scheduled daily; `odoo-dr cleanup`). */
  retention: 'retentionWorkflow',
} as const;

/** Readable, unique workflow IDs, built in one place. */
export const workflowIds = {
  tenantDiscovery: (stamp: string) => `discovery/${stamp}`,
  backup: (session: string) => `backup/${session}`,
  tenantBackup: (session: string, tenant: string) => `backup/${session}/${tenant}`,
  /** A batch of small tenants; `/` cannot be in a tenant's name, so never a tenant's ID. */
  backupBatch: (session: string, n: number) => `backup/${session}/batch/${n}`,
  validation: (session: string, stamp: string) => `validation/${session}/${stamp}`,
  drill: (mode: string, stamp: string) => `drill/${mode}/${stamp}`,
  /** `recovery/<tenant|fleet|config>/<YYYYMMDDHHMMSS>` */
  recovery: (target: string, stamp: string) => `recovery/${target}/${stamp}`,
  monitor: (stamp: string) => `monitor/${stamp}`,
  /** Fixed: there is one alert state per namespace and task queue. */
  alerts: (taskQueue: string) => `odoo-dr/alerts/${taskQueue}`,
  retention: (stamp: string) => `retention/${stamp}`,
};

/**
 * Temporal Schedule IDs, readable in the UI and in `temporal schedule list`. The workflows a
 * schedule starts get the schedule's workflow ID plus Temporal's timestamp suffix.
 */
export const ScheduleIds = {
  backup: 'odoo-dr/backup',
  validation: 'odoo-dr/validation',
  monitor: 'odoo-dr/monitor',
  drill: 'odoo-dr/drill',
  cleanup: 'odoo-dr/cleanup',
} as const;
export type ScheduleName = keyof typeof ScheduleIds;

/**
 * The ID of one of our schedules for a task queue: `odoo-dr/<name>` for the default queue, else
 * `odoo-dr/<queue>/<name>`, so several installations (or tests) can share one namespace. Everyone
 * looks schedules up through this function (`schedules apply|list`, `setup --check`).
 */
export function scheduleId(name: ScheduleName, taskQueue: string = DEFAULT_TASK_QUEUE): string {
  return taskQueue === DEFAULT_TASK_QUEUE ? ScheduleIds[name] : `odoo-dr/${taskQueue}/${name}`;
}

/** First segment of the IDs of the workflows each schedule starts (`backup/…` like manual backups). */
const SCHEDULED_ID_PREFIX: Record<ScheduleName, string> = {
  backup: 'backup',
  validation: 'validation',
  monitor: 'monitor',
  drill: 'drill',
  cleanup: 'retention',
};

/**
 * Workflow ID a schedule gives its runs; Temporal appends the scheduled time, so a run reads
 * `backup/scheduled-2026-11-26T02:00:00Z`. The queue is in it when not the default: two
 * installations firing at the same second must not collide on one ID.
 */
export function scheduledWorkflowId(name: ScheduleName, taskQueue: string = DEFAULT_TASK_QUEUE): string {
  const prefix = SCHEDULED_ID_PREFIX[name];
  return taskQueue === DEFAULT_TASK_QUEUE ? `${prefix}/scheduled` : `${prefix}/${taskQueue}/scheduled`;
}

/** Input of monitorWorkflow; every field optional so a schedule or `temporal workflow start` can pass `{}`. */
export interface MonitorInput {
  /** Send alerts for state changes (default true; `odoo-dr monitor --no-alerts` for a look only). */
  alerts?: boolean;
  startedBy?: string;
}

/** Input of retentionWorkflow; `{}` applies retention to the local folder and the bucket. */
export interface RetentionInput {
  /** Report what would be deleted, delete nothing. */
  dryRun?: boolean;
  /** Also the bucket (default: true when DR_CLOUD_BUCKET is set). */
  cloud?: boolean;
  startedBy?: string;
}

/** `20261126-021503` from a Date: sortable, readable, safe in IDs. */
export function idStamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}

/** Backup session name `backup_YYYYMMDD_HHMMSS_<id>` (UTC) from its start time and a short id. */
export function backupSessionName(startedAt: Date, id: string): string {
  const iso = startedAt.toISOString();
  const stamp = `${iso.slice(0, 10).replace(/-/g, '')}_${iso.slice(11, 19).replace(/:/g, '')}`;
  const clean = id
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '')
    .padEnd(6, '0')
    .slice(0, 8);
  return `backup_${stamp}_${clean}`;
}

export type TenantBackupState = 'pending' | 'running' | 'complete' | 'failed';

export interface BackupProgress {
  session: string;
  phase: 'preparing' | 'discovering' | 'tenants' | 'cluster' | 'finalizing' | 'retention' | 'done';
  tenants: Record<string, { state: TenantBackupState; error?: string }>;
}

/** Query on backupWorkflow: where the session is. */
export const backupProgressQuery = defineQuery<BackupProgress>('progress');

/** Signal to a backupBatchWorkflow started ahead (its locks taken): a slot is free, start. */
export const batchGoSignal = defineSignal('go');

/** Signal to alertsWorkflow: checks observed (by monitorWorkflow, validation, drill). */
export const observeSignal = defineSignal<[Observation]>('observe');
/** Update on alertsWorkflow: completes with what was sent once the observation with this id was processed. */
export const observationOutcomeUpdate = defineUpdate<ObservationOutcome, [string]>('observationOutcome');
/** Query on alertsWorkflow: the alert state (active alerts, last delivery per channel). */
export const alertStateQuery = defineQuery<AlertsView>('alertState');

export interface AlertsView {
  state: AlertState;
  channels: ObservationOutcome['channels'];
  processed: number;
}

/** Signal to recoveryWorkflow waiting for approval (`odoo-dr recover approve ID`). */
export const approveSignal = defineSignal<[{ by: string }]>('approve');
/** Signal to recoveryWorkflow waiting for approval (`odoo-dr recover reject ID`): nothing changes. */
export const rejectSignal = defineSignal<[{ by: string; reason?: string }]>('reject');
/** Query on recoveryWorkflow: the plan's progress per tenant (`odoo-dr recover status ID`). */
export const recoveryStatusQuery = defineQuery<RecoveryStatus>('status');

/** tenantLockWorkflow's input: who holds a tenant's lock, and why. */
export interface TenantLockInput {
  tenant: string;
  /** The workflow holding the lock. */
  holder: string;
  purpose: 'backup' | 'recovery';
  since: string;
}

/** Signal to tenantLockWorkflow: the holder is done. */
export const releaseLockSignal = defineSignal('releaseLock');
/** Signal to tenantLockWorkflow: a contender asks who holds the lock. */
export const lockContenderSignal = defineSignal<[{ workflowId: string }]>('lockContender');
/** Signal from tenantLockWorkflow to a contender: the holder, so the refusal names it. */
export const lockHeldSignal = defineSignal<[TenantLockInput]>('lockHeld');
