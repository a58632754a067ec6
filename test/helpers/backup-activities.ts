/**
 * Where a tenant's backup runs, seen from Temporal: in backupWorkflow itself, as the activity
 * `backupTenant` with activity ID `tenant/<name>`; or in a child `backupBatchWorkflow`
 * (`backup/<session>/batch/<n>`), as one tenant of its `backupTenants` activity (whose heartbeat
 * names the tenant in progress) or alone there; in sessions started before that, as the activity of
 * the child workflow `backup/<session>/<tenant>`.
 */
import type { Client } from '@temporalio/client';

type Handle = ReturnType<Client['workflow']['getHandle']>;
type History = Awaited<ReturnType<Handle['fetchHistory']>>;
type Description = Awaited<ReturnType<Handle['describe']>>;

export interface PendingTenantActivity {
  type: string;
  activityId: string;
  /** Decoded heartbeat details of the activity (for a batch: `{ done, current: { tenant, progress } }`). */
  details?: Record<string, unknown>;
  /** The tenant's own progress (backupTenant's heartbeat details, inside a batch's too). */
  progress?: Record<string, unknown>;
  worker?: string;
  attempt: number;
}

function decode(data: Uint8Array | null | undefined): Record<string, unknown> | undefined {
  return data ? (JSON.parse(Buffer.from(data).toString()) as Record<string, unknown>) : undefined;
}

/** The activity now backing up `tenant` in a backup workflow's description, if any. */
export function pendingTenantActivity(description: Description, tenant: string): PendingTenantActivity | undefined {
  for (const p of description.raw.pendingActivities ?? []) {
    const type = p.activityType?.name ?? '';
    const details = decode(p.heartbeatDetails?.payloads?.[0]?.data);
    const current = details?.current as { tenant?: string; progress?: Record<string, unknown> } | undefined;
    const mine = (type === 'backupTenant' && p.activityId === `tenant/${tenant}`) || (type === 'backupTenants' && current?.tenant === tenant);
    if (!mine) continue;
    return {
      type,
      activityId: p.activityId ?? '',
      ...(details ? { details } : {}),
      ...(type === 'backupTenants' ? (current?.progress ? { progress: current.progress } : {}) : details ? { progress: details } : {}),
      ...(p.lastWorkerIdentity ? { worker: p.lastWorkerIdentity } : {}),
      attempt: p.attempt ?? 0,
    };
  }
  return undefined;
}

/** Pending tenant activities of a backup workflow, by tenant (a batch: its tenant in progress, once it heartbeated). */
export function pendingTenants(description: Description): Array<{ tenant: string; activity: PendingTenantActivity }> {
  const out: Array<{ tenant: string; activity: PendingTenantActivity }> = [];
  for (const p of description.raw.pendingActivities ?? []) {
    const id = p.activityId ?? '';
    const details = decode(p.heartbeatDetails?.payloads?.[0]?.data);
    const tenant = id.startsWith('tenant/') ? id.slice('tenant/'.length) : (details?.current as { tenant?: string } | undefined)?.tenant;
    const activity = tenant ? pendingTenantActivity(description, tenant) : undefined;
    if (tenant && activity) out.push({ tenant, activity });
  }
  return out;
}

/** The backup workflow and the batch children it started (their IDs and runs), from its history. */
async function withBatches(client: Client, backupWorkflowId: string): Promise<Handle[]> {
  const history = await client.workflow.getHandle(backupWorkflowId).fetchHistory();
  const handles = [client.workflow.getHandle(backupWorkflowId)];
  for (const e of history.events ?? []) {
    const started = e.childWorkflowExecutionStartedEventAttributes;
    if (started?.workflowType?.name === 'backupBatchWorkflow' && started.workflowExecution?.workflowId) {
      handles.push(client.workflow.getHandle(started.workflowExecution.workflowId, started.workflowExecution.runId ?? undefined));
    }
  }
  return handles;
}

/** Pending tenant activities of a running backup workflow and of its batches. */
export async function pendingTenantsOf(client: Client, backupWorkflowId: string): Promise<Array<{ tenant: string; activity: PendingTenantActivity }>> {
  const out: Array<{ tenant: string; activity: PendingTenantActivity }> = [];
  for (const h of await withBatches(client, backupWorkflowId)) {
    const d = await h.describe().catch(() => undefined);
    if (d && d.status.name === 'RUNNING') out.push(...pendingTenants(d));
  }
  return out;
}

/** The activity now backing up `tenant` in a running backup workflow or one of its batches. */
export async function pendingTenantActivityOf(client: Client, backupWorkflowId: string, tenant: string): Promise<PendingTenantActivity | undefined> {
  return (await pendingTenantsOf(client, backupWorkflowId)).find((p) => p.tenant === tenant)?.activity;
}

/**
 * The tenant's backup activity in a finished backup workflow's history: the attempt it ended on and
 * the failure of the attempt before (the history keeps only the last attempt's start event, which
 * carries that failure). A tenant of a batch: the batch's attempt, or the attempt of its own
 * activity when it was retried alone.
 */
export async function tenantActivityAttempt(
  client: Client,
  backupWorkflowId: string,
  session: string,
  tenant: string,
): Promise<{ attempt: number; lastFailure?: string }> {
  let started: ReturnType<typeof startedOfTenant> = [];
  for (const h of await withBatches(client, backupWorkflowId)) started.push(...startedOfTenant(await h.fetchHistory(), tenant));
  if (started.length === 0) {
    // A session of the code before: the tenant's child workflow.
    const child = await client.workflow
      .getHandle(`backup/${session}/${tenant}`)
      .fetchHistory()
      .catch(() => undefined);
    started = child ? (child.events ?? []).map((e) => e.activityTaskStartedEventAttributes).filter((a) => a !== undefined && a !== null) : [];
  }
  const last = started[started.length - 1];
  return { attempt: last?.attempt ?? 0, ...(last?.lastFailure?.message ? { lastFailure: last.lastFailure.message } : {}) };
}

function startedOfTenant(history: History, tenant: string) {
  const mine = new Set<string>();
  const started = [];
  for (const e of history.events ?? []) {
    const s = e.activityTaskScheduledEventAttributes;
    if (s) {
      const type = s.activityType?.name;
      const input = decode(s.input?.payloads?.[0]?.data) as { tenant?: string; tenants?: string[] } | undefined;
      if ((type === 'backupTenant' && input?.tenant === tenant) || (type === 'backupTenants' && input?.tenants?.includes(tenant))) mine.add(String(e.eventId));
    }
    const st = e.activityTaskStartedEventAttributes;
    if (st && mine.has(String(st.scheduledEventId))) started.push(st);
  }
  return started;
}
