import { allHandlersFinished, condition, continueAsNew, log, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities, ObservationOutcome } from '../activities';
import type { AlertState, Observation } from '../src/monitor/alerts';
import type { StatusReport } from '../src/monitor/report';
import {
  ScheduleIds,
  alertStateQuery,
  observationOutcomeUpdate,
  observeSignal,
  scheduleId,
  workflowIds,
  type MonitorInput,
  type ScheduleName,
} from './definitions';
import { failureMessage } from './backup-tenants';
import { fail } from './failures';
import { notifyActivity, quickActivity } from './options';

const quick = proxyActivities<Activities>(quickActivity);
/** Gathering reads up to 200 sessions' manifests and results, locally and from the bucket. */
const gather = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  retry: { initialInterval: '10 seconds', backoffCoefficient: 2, maximumAttempts: 3 },
});
const notify = proxyActivities<Activities>(notifyActivity);
/** Waiting for the alerts workflow includes its deliveries (SMTP and webhook time out after 15 s each). */
const submit = proxyActivities<Activities>({ startToCloseTimeout: '5 minutes', retry: { initialInterval: '5 seconds', maximumAttempts: 3 } });

export type MonitorResult = StatusReport & { reportPath: string; prometheusPath?: string; prometheusError?: string };

/**
 * One monitoring check (scheduled; `odoo-dr monitor`): every tenant's backup and validation age,
 * completeness, cloud sync, disks, services, integrity and resources → the status report
 * (`DR_LOG_DIR/dr-status.json`, atomically) and the alert state (alertsWorkflow), which alerts on
 * changes and repeats at most every DR_ALERT_REPEAT_HOURS. One audit line.
 */
export async function monitorWorkflow(input: MonitorInput = {}): Promise<MonitorResult> {
  const info = workflowInfo();
  const schedules = Object.fromEntries((Object.keys(ScheduleIds) as ScheduleName[]).map((n) => [n, scheduleId(n, info.taskQueue)]));
  const report = await gather.gatherMonitorReport({ workflowId: info.workflowId, taskQueue: info.taskQueue, schedules });
  if (input.alerts !== false) {
    report.alerts.enabled = true;
    try {
      const outcome = await submit.submitAlertObservation({
        workflowId: workflowIds.alerts(info.taskQueue),
        taskQueue: info.taskQueue,
        observation: { id: info.workflowId, source: `monitorWorkflow ${info.workflowId}`, complete: true, checks: report.checks },
      });
      report.alerts = { enabled: true, sent: outcome.sent, active: outcome.active, channels: outcome.channels };
    } catch (err) {
      // The report is still written: a broken alert path must not hide the checks. The root cause,
      // not the wrapper's "Activity task failed".
      report.alerts.error = failureMessage(err);
    }
  }
  const written = await quick.publishStatusReport({ report });
  await notify
    .appendAuditRecord({
      at: new Date(Date.now()).toISOString(),
      action: 'monitor',
      startedBy: input.startedBy ?? 'schedule',
      workflowId: info.workflowId,
      result: report.status,
      summary: report.summary,
      alertsSent: report.alerts.sent.length,
    })
    .catch((err: unknown) => log.warn('audit line not written', { error: err instanceof Error ? err.message : String(err) }));
  if (written.prometheusError) log.warn('Prometheus textfile not written', { error: written.prometheusError });
  return {
    ...report,
    reportPath: written.path,
    ...(written.prometheus ? { prometheusPath: written.prometheus } : {}),
    ...(written.prometheusError ? { prometheusError: written.prometheusError } : {}),
  };
}

export interface AlertsInput {
  state?: AlertState;
  channels?: ObservationOutcome['channels'];
  /** Outcomes of the last observations (so a sender whose update crossed a continue-as-new still gets its answer). */
  outcomes?: ObservationOutcome[];
  pending?: Observation[];
  /** Observations per run before continuing as new (default 500; tests use a few). */
  observationsPerRun?: number;
}

/** Observations per run before continuing as new (each is a few events: the history stays small). */
const OBSERVATIONS_PER_RUN = 500;
const KEPT_OUTCOMES = 50;

/**
 * The durable alert state, one per task queue (`odoo-dr/alerts/<queue>`): observations arrive by
 * signal and are processed one at a time, in order, so two monitor runs at once never send the same
 * alert twice. The decision is the pure state machine (an activity), the sending another activity;
 * the state survives worker restarts and continues as new before the history grows large.
 */
export async function alertsWorkflow(input: AlertsInput = {}): Promise<void> {
  let state: AlertState = input.state ?? { active: {} };
  let channels: ObservationOutcome['channels'] = input.channels ?? {};
  const outcomes: ObservationOutcome[] = [...(input.outcomes ?? [])];
  const queue: Observation[] = [...(input.pending ?? [])];
  let processed = 0;

  setHandler(observeSignal, (obs) => {
    // A retried sender signals again: the same observation is processed once.
    if (outcomes.some((o) => o.id === obs.id) || queue.some((q) => q.id === obs.id)) return;
    queue.push(obs);
  });
  setHandler(alertStateQuery, () => ({ state, channels, processed }));
  setHandler(observationOutcomeUpdate, async (id) => {
    const done = await condition(() => outcomes.some((o) => o.id === id), '10 minutes');
    if (!done) throw fail('ObservationNotReceived', `observation ${id} was not received`);
    return outcomes.find((o) => o.id === id)!;
  });

  for (;;) {
    const rollOver = () => processed >= (input.observationsPerRun ?? OBSERVATIONS_PER_RUN) || workflowInfo().continueAsNewSuggested;
    await condition(() => queue.length > 0 || (rollOver() && allHandlersFinished()));
    if (queue.length === 0) break;
    const obs = queue.shift()!;
    const decision = await quick.decideAlerts({ state, observation: obs, now: new Date(Date.now()).toISOString() });
    state = decision.state;
    const sent: string[] = [];
    if (decision.messages.length) {
      const at = new Date(Date.now()).toISOString();
      try {
        const { deliveries } = await notify.deliverAlerts({ messages: decision.messages });
        for (const d of deliveries) {
          sent.push(d.subject);
          channels = { ...channels, email: { last: d.delivery.email, at }, webhook: { last: d.delivery.webhook, at } };
        }
      } catch (err) {
        // Not sent at all (worker gone for the retries): recorded, the state moves on; the repeat interval resends.
        const last = `failed: ${failureMessage(err)}`;
        channels = { email: { last, at }, webhook: { last, at } };
      }
    }
    outcomes.push({ id: obs.id, sent, active: Object.keys(state.active).sort(), channels });
    if (outcomes.length > KEPT_OUTCOMES) outcomes.splice(0, outcomes.length - KEPT_OUTCOMES);
    processed++;
  }
  await continueAsNew<typeof alertsWorkflow>({
    state,
    channels,
    outcomes,
    pending: queue,
    ...(input.observationsPerRun ? { observationsPerRun: input.observationsPerRun } : {}),
  });
}
