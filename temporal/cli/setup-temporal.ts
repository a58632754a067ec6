/**
 * `odoo-dr setup`'s Temporal checks: the server and namespace answer, a worker polls the task
 * queue (workflows and activities), and the schedules exist and run.
 */
import { ScheduleNotFoundError, type Client } from '@temporalio/client';
import type { DrConfig } from '../../src/config';
import { firstLine, ok, problem, warning, type SetupCheck } from '../../src/setup/report';
import { DEFAULT_TASK_QUEUE, ScheduleIds, scheduleId, type ScheduleName } from '../../workflows/definitions';
import { connectClient, temporalSettings } from '../connection';

const S = 'temporal';
/** temporal.api.enums.v1 values (@temporalio/proto is not a direct dependency). */
const TASK_QUEUE_KIND_NORMAL = 1;
const TASK_QUEUE_TYPE_WORKFLOW = 1;
const TASK_QUEUE_TYPE_ACTIVITY = 2;

export async function checkTemporal(config: DrConfig): Promise<SetupCheck[]> {
  const { connectionOptions, namespace } = temporalSettings(config);
  const address = connectionOptions.address ?? '127.0.0.1:7233';
  const taskQueue = config.taskQueue || DEFAULT_TASK_QUEUE;
  let client: Client;
  try {
    client = await connectClient(config);
  } catch (err) {
    return [problem(S, 'server', firstLine(err), `check TEMPORAL_ADDRESS (${address}), TLS and TEMPORAL_API_KEY; is the Temporal server running?`)];
  }
  const checks: SetupCheck[] = [];
  try {
    try {
      const ns = await client.workflowService.describeNamespace({ namespace });
      const days = ns.config?.workflowExecutionRetentionTtl?.seconds;
      checks.push(ok(S, 'namespace', `${address}, namespace ${namespace}${days ? ` (history kept ${Math.round(Number(days) / 86400)} days)` : ''}`));
    } catch (err) {
      checks.push(
        problem(
          S,
          'namespace',
          `${address}: namespace ${namespace}: ${firstLine(err)}`,
          `temporal operator namespace create --namespace ${namespace} --address ${address}, or set TEMPORAL_NAMESPACE`,
        ),
      );
      return checks;
    }

    const pollers = async (type: number) =>
      (await client.workflowService.describeTaskQueue({ namespace, taskQueue: { name: taskQueue, kind: TASK_QUEUE_KIND_NORMAL }, taskQueueType: type }))
        .pollers ?? [];
    try {
      const wf = await pollers(TASK_QUEUE_TYPE_WORKFLOW);
      const act = await pollers(TASK_QUEUE_TYPE_ACTIVITY);
      const who = [...new Set([...wf, ...act].map((p) => p.identity).filter(Boolean))];
      if (!wf.length || !act.length) {
        checks.push(
          problem(
            S,
            'worker',
            `no worker polls task queue ${taskQueue}${wf.length || act.length ? ` for ${wf.length ? 'activities' : 'workflows'}` : ''}: backups, schedules and recoveries would wait`,
            `start one: odoo-dr worker (as a systemd service; DR_TASK_QUEUE=${taskQueue})`,
          ),
        );
      } else checks.push(ok(S, 'worker', `${who.length} worker(s) poll task queue ${taskQueue}: ${who.join(', ')}`));
    } catch (err) {
      checks.push(problem(S, 'worker', `cannot describe task queue ${taskQueue}: ${firstLine(err)}`, "check the API key's permissions on the namespace"));
    }

    const missing: string[] = [];
    const paused: string[] = [];
    const present: string[] = [];
    for (const name of Object.keys(ScheduleIds) as ScheduleName[]) {
      const id = scheduleId(name, taskQueue);
      try {
        const d = await client.schedule.getHandle(id).describe();
        (d.state.paused ? paused : present).push(id);
      } catch (err) {
        if (err instanceof ScheduleNotFoundError) missing.push(id);
        else throw err;
      }
    }
    const apply = `odoo-dr schedules apply${taskQueue === DEFAULT_TASK_QUEUE ? '' : ` (with DR_TASK_QUEUE=${taskQueue})`}`;
    if (missing.length)
      checks.push(
        problem(S, 'schedules', `missing: ${missing.join(', ')}${present.length ? `; present: ${present.join(', ')}` : ''}: nothing runs by itself`, apply),
      );
    else if (paused.length)
      checks.push(
        warning(S, 'schedules', `paused: ${paused.join(', ')}`, `odoo-dr schedules unpause (or: temporal schedule toggle --unpause --schedule-id ID)`),
      );
    else checks.push(ok(S, 'schedules', `${present.length} schedule(s) applied: ${present.join(', ')}`));
  } catch (err) {
    checks.push(problem(S, 'schedules', `cannot read the schedules: ${firstLine(err)}`, "check the API key's permissions on the namespace"));
  } finally {
    await client.connection.close();
  }
  return checks;
}
