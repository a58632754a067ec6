/* eslint-disable @typescript-eslint/require-await -- stubbed activities are async functions that have nothing to wait for */
/**
 * Discovery, retention, monitoring, the alert state and a backup-only drill with stubbed activities on the time-skipping
 * server: what each returns, and their histories (recorded for test/replay/current-workflows.test.ts
 * with ODOO_DR_RECORD_HISTORIES=1).
 */
import assert from 'node:assert/strict';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Activities } from '../../activities';
import { toFailure } from '../../activities/errors';
import { CloudAuthError, InvalidInputError } from '../../src/errors';
import { decideAlerts } from '../../src/monitor/alerts';
import { drillOutcome } from '../../src/drill/report';
import { alertsWorkflow, drillWorkflow, monitorWorkflow, retentionWorkflow, tenantDiscoveryWorkflow } from '../../workflows';
import { timeSkippingServer, withWorker } from '../helpers/temporal';
import { backupImpls, tenantNames } from './fixtures';
import { recordHistory, stubActivities } from './stubs';

type PlaceReport = NonNullable<Awaited<ReturnType<Activities['retainCloudSessions']>>>;
type StatusReport = Awaited<ReturnType<Activities['gatherMonitorReport']>>;

const place = (where: 'local' | 'cloud', deleted: string[]): PlaceReport =>
  ({
    place: where,
    dryRun: false,
    sessionsDeleted: deleted,
    sessionsKept: 3,
    keptPastAge: {},
    sessionBytes: 1000,
    collection: { packsDeleted: 1, blobsDeleted: 2, bytesFreed: 500 },
    staleUploadsAborted: 0,
  }) as PlaceReport;

const check = (id: string, status: 'ok' | 'warning' | 'critical') => ({ id, category: 'backup', status, value: 1, message: `${id} is ${status}` });

describe('discovery, retention, monitor and alerts workflows (stubbed activities, time skipping)', function () {
  this.timeout(120_000);
  let env: TestWorkflowEnvironment;
  before(async () => {
    env = await timeSkippingServer();
  });

  it('tenantDiscoveryWorkflow returns what discovery found (recorded for replay)', async () => {
    const [a] = tenantNames('a');
    const stubs = stubActivities(backupImpls({ [a!]: 10 }));
    const result = await withWorker({ env, activities: stubs.activities }, async (taskQueue) => {
      const handle = await env.client.workflow.start(tenantDiscoveryWorkflow, { taskQueue, workflowId: `discovery/${a}`, args: [{ include: [a!, 'nope'] }] });
      const r = await handle.result();
      await recordHistory(handle, 'discovery-v1-one.json');
      return r;
    });
    assert.deepEqual(
      result.tenants.map((t) => t.name),
      [a],
    );
    assert.deepEqual(result.missing, ['nope']);
  });

  it('retentionWorkflow: a bucket that fails does not stop the local folder and the leftovers; one audit line (recorded for replay)', async () => {
    const stubs = stubActivities({
      retainLocalSessions: async () => place('local', ['backup_20261001_020000_old']),
      retainCloudSessions: async () => place('cloud', []),
      cleanRetentionLeftovers: async () => ({ preRecoveryDropped: ['t_prerecovery_1'], scratchDropped: [], logs: { deleted: ['old.log'], bytesFreed: 7 } }),
      appendAuditRecord: async () => undefined,
    });
    // Permanent (bad credentials): no retries, whose backoff the test server does not always skip.
    stubs.failOn('retainCloudSessions', new CloudAuthError('bucket credentials refused'));
    const report = await withWorker({ env, activities: stubs.activities }, async (taskQueue) => {
      const handle = await env.client.workflow.start(retentionWorkflow, { taskQueue, workflowId: `retention/${tenantNames('r')[0]}`, args: [{ cloud: true }] });
      const r = await handle.result();
      await recordHistory(handle, 'retention-v1-bucket-down.json');
      return r;
    });
    assert.equal(report.status, 'failed');
    assert.equal(report.cloud, null);
    assert.equal(report.bytesFreed, 1000 + 500 + 7);
    assert.equal(report.errors.length, 1);
    assert.match(report.errors[0]!, /^bucket: /);
    assert.deepEqual(stubs.names(['appendAuditRecord']), ['retainLocalSessions', 'retainCloudSessions', 'cleanRetentionLeftovers']);
    assert.match(String(stubs.inputsOf('appendAuditRecord')[0]?.result), /^failed: bucket: /);
  });

  it('monitorWorkflow: the report is published even when the alert path fails (recorded for replay)', async () => {
    const report = {
      status: 'warning',
      summary: { ok: 1, warning: 1, critical: 0 },
      checks: [check('backup-age/a', 'warning')],
      alerts: { enabled: false, sent: [], active: [], channels: {} },
    } as unknown as StatusReport;
    const stubs = stubActivities({
      gatherMonitorReport: async () => structuredClone(report),
      submitAlertObservation: async () => {
        throw toFailure(new InvalidInputError('alerts workflow refused the observation'), []);
      },
      publishStatusReport: async () => ({ path: '/var/log/odoo-dr/dr-status.json' }),
      appendAuditRecord: async () => undefined,
    });
    const result = await withWorker({ env, activities: stubs.activities }, async (taskQueue) => {
      const handle = await env.client.workflow.start(monitorWorkflow, { taskQueue, workflowId: `monitor/${tenantNames('m')[0]}`, args: [{}] });
      const r = await handle.result();
      await recordHistory(handle, 'monitor-v1-alerts-down.json');
      return r;
    });
    assert.equal(result.reportPath, '/var/log/odoo-dr/dr-status.json');
    // The root cause reaches the report, not the wrapper's 'Activity task failed'.
    assert.equal(result.alerts.error, 'InvalidInputError: alerts workflow refused the observation');
    assert.equal(stubs.inputsOf('publishStatusReport')[0]?.report.alerts.enabled, true);
    assert.equal(stubs.inputsOf('appendAuditRecord')[0]?.result, 'warning');
  });

  it('alertsWorkflow: an observation fires an alert once, then the state continues as new (recorded for replay)', async () => {
    const stubs = stubActivities({
      decideAlerts: async ({ state, observation, now }) => decideAlerts(state, observation, new Date(now), 3_600_000),
      deliverAlerts: async ({ messages }) => ({
        deliveries: messages.map((m) => ({ key: m.key, subject: m.subject, delivery: { email: 'sent' as const, webhook: 'not configured' as const } })),
      }),
    });
    const observation = {
      id: 'monitor/1',
      source: 'monitorWorkflow monitor/1',
      complete: true,
      checks: [check('backup-age/a', 'critical'), check('disk/backup-dir', 'ok')],
    };
    await withWorker({ env, activities: stubs.activities }, async (taskQueue) => {
      const handle = await env.client.workflow.start(alertsWorkflow, {
        taskQueue,
        workflowId: `odoo-dr/alerts/${taskQueue}`,
        args: [{ observationsPerRun: 1 }],
      });
      await handle.signal('observe', observation);
      // The same observation again (a retried sender): processed once.
      await handle.signal('observe', observation);
      const first = env.client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId);
      for (let i = 0; i < 200 && (await first.describe()).status.name === 'RUNNING'; i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal((await first.describe()).status.name, 'CONTINUED_AS_NEW');
      await recordHistory(first, 'alerts-v1-fire.json');
    });
    assert.deepEqual(stubs.inputsOf('decideAlerts').length, 1);
    assert.deepEqual(
      stubs.inputsOf('deliverAlerts').flatMap((d) => d.messages.map((m) => m.kind)),
      ['fire'],
    );
  });

  it('drillWorkflow backup-only: a tenant that fails its backup fails the drill; report saved, audited, reported to the alert state (recorded for replay)', async () => {
    const [a, b] = tenantNames('a', 'b');
    const stubs = stubActivities({
      ...backupImpls({ [a!]: 200 * 1024 * 1024, [b!]: 100 * 1024 * 1024 }),
      drillSettings: async () => ({ rpoHours: 24, rtoMinutes: 240, maxParallel: 2 }),
      saveReport: async () => '/var/log/odoo-dr/drill.json',
      // The verdict is the pure use case itself, not a stub: only side effects are stubbed.
      drillReport: async ({ facts, settings }) => Promise.resolve(drillOutcome(facts, settings)),
      reportResultToAlerts: async ({ reportingWorkflowId }) => ({ id: reportingWorkflowId, sent: [], active: [], channels: {} }),
    });
    stubs.failOn('backupTenant', new InvalidInputError('pg_dump: permission denied'), { when: (t: { tenant: string }) => t.tenant === a });
    const report = await withWorker({ env, activities: stubs.activities }, async (taskQueue) => {
      const handle = await env.client.workflow.start(drillWorkflow, { taskQueue, workflowId: `drill/backup-only/${a}`, args: [{ mode: 'backup-only' }] });
      const r = await handle.result();
      await recordHistory(handle, 'drill-v2-backup-only.json');
      return r;
    });
    assert.equal(report.status, 'fail');
    assert.equal(report.backup?.status, 'partial');
    assert.deepEqual(
      report.tenants.map((t) => [t.tenant, t.status]),
      [
        [a, 'fail'],
        [b, 'pass'],
      ],
    );
    assert.equal(report.reportPath, '/var/log/odoo-dr/drill.json');
    assert.deepEqual(
      stubs.inputsOf('reportResultToAlerts').map((r) => [r.kind, r.status]),
      [['drill', 'fail']],
    );
  });
});
