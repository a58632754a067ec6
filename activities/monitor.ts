/**
 * Monitoring activities: gather facts and evaluate the checks, publish the status report, and talk
 * to the alerts workflow (the durable alert state) — decide with the pure state machine, deliver.
 * Temporal facts (schedules, pollers) and the alerts workflow use the worker's own client.
 */
import { hostname } from 'node:os';
import { Context } from '@temporalio/activity';
import type { DrConfig } from '../src/config';
import { configNotifier } from '../src/notify';
import { systemClock } from '../src/ports';
import { decideAlerts, type AlertMessage, type AlertState, type ObservedCheck, type Observation } from '../src/monitor/alerts';
import { evaluateChecks, integrityCheck, type MonitorFacts, type MonitorSettings, type ScheduleFact } from '../src/monitor/checks';
import { deliverAlertMessages, outcomeWithoutChannels, type DeliverAlertsResult, type ObservationOutcome } from '../src/monitor/deliver';
import { gatherHostFacts } from '../src/monitor/facts';
import { renderPrometheus } from '../src/monitor/prometheus';
import { buildReport, statusReportPath, writeAtomic, type StatusReport } from '../src/monitor/report';
import { mapped } from './errors';

/** Names of the alertsWorkflow's handlers (workflows/definitions.ts defines them; activities may not import workflows/). */
export const ALERTS_OBSERVE_SIGNAL = 'observe';
export const ALERTS_OUTCOME_UPDATE = 'observationOutcome';
export const ALERTS_WORKFLOW_TYPE = 'alertsWorkflow';

export interface GatherMonitorInput {
  workflowId: string;
  taskQueue: string;
  /** Schedules expected to exist: name → schedule ID. */
  schedules: Record<string, string>;
}

export interface AlertsTarget {
  /** workflowIds.alerts(taskQueue) */
  workflowId: string;
  taskQueue: string;
}

export type { DeliverAlertsResult, ObservationOutcome } from '../src/monitor/deliver';

export interface ResultObservationInput extends AlertsTarget {
  kind: 'validation' | 'drill';
  session: string;
  status: 'pass' | 'fail';
  finishedAt: string;
  failures: string[];
  reportingWorkflowId: string;
  /** Set when the workflow could not run to the end (no report): alerted as `integrity/<kind>-run`. */
  error?: string;
}

export interface DecideAlertsInput {
  state: AlertState;
  observation: Observation;
  now: string;
}

export function monitorSettings(config: DrConfig): MonitorSettings {
  return {
    rpoHours: config.objectives.rpoHours,
    backupAgeSeconds: config.alerts.backupAgeSeconds,
    diskUsagePercent: config.alerts.diskUsagePercent,
    drillMaxAgeDays: config.monitor.drillMaxAgeDays,
  };
}

/** The worker's client (activities may not import @temporalio/client: errors are told apart by name). */
type Client = Context['client'];

function activityClient(): Client {
  return Context.current().client;
}

async function scheduleFacts(client: Client, schedules: Record<string, string>): Promise<ScheduleFact[]> {
  return Promise.all(
    Object.entries(schedules).map(async ([name, id]): Promise<ScheduleFact> => {
      try {
        const d = await client.schedule.getHandle(id).describe();
        return { name, id, state: d.state.paused ? 'paused' : 'present' };
      } catch (err) {
        if ((err as Error).name === 'ScheduleNotFoundError') return { name, id, state: 'missing' };
        return { name, id, state: 'unknown', error: (err as Error).message.split('\n')[0]!.slice(0, 200) };
      }
    }),
  );
}

/** Workers polling the queue: the fewer of workflow and activity pollers (a worker polls both). */
async function workerFact(client: Client, taskQueue: string): Promise<MonitorFacts['worker']> {
  try {
    const count = async (taskQueueType: number) =>
      (await client.workflowService.describeTaskQueue({ namespace: client.options.namespace, taskQueue: { name: taskQueue, kind: 1 }, taskQueueType })).pollers
        ?.length ?? 0;
    // 1 = TASK_QUEUE_TYPE_WORKFLOW, 2 = TASK_QUEUE_TYPE_ACTIVITY
    const [wf, act] = await Promise.all([count(1), count(2)]);
    return { pollers: Math.min(wf, act) };
  } catch (err) {
    return { error: (err as Error).message.split('\n')[0]!.slice(0, 200) };
  }
}

/** The schedules this configuration asks for: no drill or monitor schedule when DR_TEST_ENABLED / DR_MONITORING_ENABLED are false. */
export function expectedSchedules(config: DrConfig, schedules: Record<string, string>): Record<string, string> {
  const off = new Set([...(config.automation.drillEnabled ? [] : ['drill']), ...(config.automation.monitoringEnabled ? [] : ['monitor'])]);
  return Object.fromEntries(Object.entries(schedules).filter(([name]) => !off.has(name)));
}

export function createMonitorActivities(config: DrConfig, secrets: string[]) {
  const notifier = configNotifier(config);
  return {
    /** Facts of host, PostgreSQL, catalog and Temporal → checks → the report (not yet written). */
    gatherMonitorReport: mapped(secrets, async (input: GatherMonitorInput): Promise<StatusReport> => {
      const client = activityClient();
      const [host, schedules, worker] = await Promise.all([
        gatherHostFacts(config, systemClock.now()),
        scheduleFacts(client, expectedSchedules(config, input.schedules)),
        workerFact(client, input.taskQueue),
      ]);
      const facts: MonitorFacts = { ...host, schedules, worker };
      const settings = monitorSettings(config);
      return buildReport(facts, settings, evaluateChecks(facts, settings), { workflowId: input.workflowId, host: hostname() });
    }),

    /** dr-status.json (and the Prometheus textfile when configured), each written atomically. */
    publishStatusReport: mapped(secrets, async (input: { report: StatusReport }): Promise<{ path: string; prometheus?: string; prometheusError?: string }> => {
      const file = statusReportPath(config.logDir);
      await writeAtomic(file, `${JSON.stringify(input.report, null, 2)}\n`);
      const prom = config.monitor.prometheusTextfile;
      if (!prom) return { path: file };
      try {
        // node_exporter reads *.prom files as the collector's user: world-readable, no secrets in it.
        await writeAtomic(prom, renderPrometheus(input.report), 0o644);
        return { path: file, prometheus: prom };
      } catch (err) {
        // The report is written; a metrics folder that is not writable must not fail the check.
        return { path: file, prometheusError: `${prom}: ${(err as Error).message}` };
      }
    }),

    /**
     * Hands an observation to the alerts workflow (started if not running: signalWithStart) and
     * waits for what it did with it (an update that completes once the observation is processed).
     */
    submitAlertObservation: mapped(secrets, async (input: AlertsTarget & { observation: Observation }): Promise<ObservationOutcome> => {
      return submit(input, input.observation);
    }),

    /** A validation's or drill's result as the `integrity/<kind>` check, to the alerts workflow. */
    reportResultToAlerts: mapped(secrets, async (input: ResultObservationInput): Promise<ObservationOutcome> => {
      // A run that could not finish has no result stored with a session, so the monitor cannot see it:
      // its own check, alerted once (the next monitor run, reporting every check, forgets it).
      const check: ObservedCheck = input.error
        ? {
            id: `integrity/${input.kind}-run`,
            status: 'critical',
            value: null,
            threshold: `the ${input.kind} runs to its report`,
            message: `${input.kind} ${input.reportingWorkflowId} could not run: ${input.error}`,
            action: `read the workflow's failure in the Temporal UI, fix the cause, run it again`,
          }
        : integrityCheck(
            input.kind,
            { session: input.session, status: input.status, finishedAt: input.finishedAt, workflowId: input.reportingWorkflowId, failures: input.failures },
            monitorSettings(config),
            new Date(input.finishedAt).getTime(),
          );
      return submit(input, { id: input.reportingWorkflowId, source: `${input.kind}Workflow ${input.reportingWorkflowId}`, complete: false, checks: [check] });
    }),

    /** The pure decision, with DR_ALERT_REPEAT_HOURS (an activity: workflows cannot import src/). */
    decideAlerts: mapped(secrets, async (input: DecideAlertsInput): Promise<{ messages: AlertMessage[]; state: AlertState }> => {
      return Promise.resolve(decideAlerts(input.state, input.observation, new Date(input.now), config.alerts.repeatHours * 3_600_000));
    }),

    /** Sends each message through every channel; a failing channel is recorded, never blocks the other. */
    deliverAlerts: mapped(secrets, async (input: { messages: AlertMessage[] }): Promise<DeliverAlertsResult> => deliverAlertMessages(input.messages, notifier)),
  };

  async function submit(target: AlertsTarget, observation: Observation): Promise<ObservationOutcome> {
    const { smtp, emails, webhookUrl } = config.alerts;
    if (!(smtp && emails.length) && !webhookUrl) {
      // No channel: nobody to tell, so no alert state to keep (and no alerts workflow left idle).
      return outcomeWithoutChannels(observation.id, systemClock);
    }
    return handObservation(activityClient(), target, observation);
  }
}

/**
 * Signals the observation to the alerts workflow (starting it if it is not running) and waits for
 * what it did with it. Exported so that the workflow tests drive the alerts workflow exactly as
 * the activity does.
 */
export async function handObservation(
  client: Pick<Client, 'workflow'>,
  target: AlertsTarget,
  observation: Observation,
  alertsInput: object = {},
): Promise<ObservationOutcome> {
  const start = () =>
    client.workflow.signalWithStart(ALERTS_WORKFLOW_TYPE, {
      workflowId: target.workflowId,
      taskQueue: target.taskQueue,
      args: [alertsInput],
      signal: ALERTS_OBSERVE_SIGNAL,
      signalArgs: [observation],
    });
  try {
    await start();
  } catch (err) {
    // Two reporters starting the workflow at the same instant: one start wins, the other is a
    // plain signal now (the workflow drops an observation it has already seen).
    if ((err as Error).name !== 'WorkflowExecutionAlreadyStartedError') throw err;
    await start();
  }
  // By workflow ID only: the latest run, also after a continue-as-new.
  try {
    return await client.workflow.getHandle(target.workflowId).executeUpdate<ObservationOutcome, [string]>(ALERTS_OUTCOME_UPDATE, { args: [observation.id] });
  } catch (err) {
    const e = err as Error;
    if (e.name === 'WorkflowUpdateFailedError')
      throw new Error(`the alerts workflow did not process observation ${observation.id}: ${(e.cause as Error | undefined)?.message ?? e.message}`);
    throw err;
  }
}
