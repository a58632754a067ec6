/* eslint-disable @typescript-eslint/require-await -- stubbed activities are async functions that have nothing to wait for */
/**
 * backupWorkflow with stubbed activities on the time-skipping server (no PostgreSQL, no bucket):
 * what the session becomes when every tenant, some or none fail, when it cannot start or be
 * finalised, when it is cancelled mid-way, and the batch path of small tenants (with its fallbacks).
 */
import assert from 'node:assert/strict';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { CloudAuthError, InvalidInputError } from '../../src/errors';
import { backupWorkflow } from '../../workflows';
import type { BackupProgress } from '../../workflows/definitions';
import { timeSkippingServer, withWorker } from '../helpers/temporal';
import { backupImpls, tenantDone, tenantNames } from './fixtures';
import { onServerOfItsOwn, recordHistory, stubActivities, type Stubs } from './stubs';

type Input = Parameters<typeof backupWorkflow>[0];
type Result = Awaited<ReturnType<typeof backupWorkflow>>;
const MB = 1024 * 1024;

describe('backupWorkflow (stubbed activities, time skipping)', function () {
  this.timeout(120_000);
  let env: TestWorkflowEnvironment;
  before(async () => {
    env = await timeSkippingServer();
  });

  async function backup(stubs: Stubs, input: Input, during?: (h: WorkflowHandle<typeof backupWorkflow>) => Promise<void>, record?: string) {
    return withWorker({ env, activities: stubs.activities }, async (taskQueue) => {
      try {
        const session = `backup_20261126_020000_${tenantNames('s')[0]!.replace(/-/g, '')}`;
        const handle = await env.client.workflow.start(backupWorkflow, { taskQueue, workflowId: `backup/${session}`, args: [{ session, ...input }] });
        await during?.(handle);
        const outcome: { result?: Result; error?: unknown } = await handle.result().then(
          (result) => ({ result }),
          (error: unknown) => ({ error }),
        );
        const progress = await handle.query<BackupProgress>('progress');
        if (record) {
          await recordHistory(handle, `${record}.json`);
          for (let n = 0; ; n++) {
            const batch = env.client.workflow.getHandle(`backup/${session}/batch/${n}`);
            if (
              !(await batch.describe().then(
                () => true,
                () => false,
              ))
            )
              break;
            await recordHistory(batch, `${record}-batch-${n}.json`);
          }
        }
        return { ...outcome, progress, session };
      } finally {
        stubs.releaseAll();
      }
    });
  }

  const failureOf = (error: unknown): ApplicationFailure => {
    assert.ok(error instanceof WorkflowFailedError, String(error));
    assert.ok(error.cause instanceof ApplicationFailure, String(error.cause));
    return error.cause;
  };
  const finalized = (stubs: Stubs) =>
    stubs.inputsOf('finalizeBackupSession').map((f) => Object.fromEntries(Object.entries(f.tenants).map(([t, s]) => [t, s.status])));

  it('some tenants fail: a partial session (never marked complete), a warning alert naming them (recorded for replay)', async () => {
    const [a, b] = tenantNames('a', 'b');
    const stubs = stubActivities(backupImpls({ [a!]: 200 * MB, [b!]: 100 * MB }));
    stubs.failOn('backupTenant', new InvalidInputError('pg_dump: permission denied'), { when: (t: { tenant: string }) => t.tenant === a });
    const { result, progress } = await backup(stubs, {}, undefined, 'backup-v2-stubbed-partial');
    assert.equal(result?.status, 'partial');
    assert.deepEqual(finalized(stubs), [{ [a!]: 'failed', [b!]: 'complete' }]);
    assert.deepEqual(progress.tenants[a!], { state: 'failed', error: 'InvalidInputError: pg_dump: permission denied' });
    const [alert] = stubs.inputsOf('sendAlert');
    assert.equal(alert?.severity, 'warning');
    assert.match(alert?.text ?? '', new RegExp(`- ${a}: InvalidInputError: pg_dump: permission denied`));
    assert.equal(stubs.inputsOf('appendAuditRecord').at(-1)?.result, 'partial');
  });

  it('every tenant fails: a failed session, a critical alert', async () => {
    const [a, b] = tenantNames('a', 'b');
    const stubs = stubActivities(backupImpls({ [a!]: 200 * MB, [b!]: 100 * MB }));
    stubs.failOn('backupTenant', new InvalidInputError('no space left'));
    const { result } = await backup(stubs, {});
    assert.equal(result?.status, 'failed');
    assert.deepEqual(finalized(stubs), [{ [a!]: 'failed', [b!]: 'failed' }]);
    assert.equal(stubs.inputsOf('sendAlert')[0]?.severity, 'critical');
  });

  it('cannot start (preparation fails): BackupNotStarted, no tenant touched, audited and alerted', async () => {
    const [a] = tenantNames('a');
    const stubs = stubActivities(backupImpls({ [a!]: MB }));
    stubs.failOn('prepareBackupSession', new InvalidInputError('DR_AGE_RECIPIENTS is empty'));
    const { error } = await backup(stubs, {});
    const f = failureOf(error);
    assert.equal(f.type, 'BackupNotStarted');
    assert.match(f.message, /could not start: InvalidInputError: DR_AGE_RECIPIENTS is empty/);
    assert.deepEqual(stubs.names(), ['discoverTenants', 'prepareBackupSession']);
    assert.equal(stubs.inputsOf('appendAuditRecord')[0]?.result, 'failed');
    assert.equal(stubs.inputsOf('sendAlert')[0]?.severity, 'critical');
  });

  it('asked for names that are not tenants: refused before a session exists', async () => {
    const [a] = tenantNames('a');
    const stubs = stubActivities(backupImpls({ [a!]: MB }));
    const { error } = await backup(stubs, { tenants: [a!, 'nope'] });
    assert.equal(failureOf(error).type, 'TenantNotFoundError');
    assert.deepEqual(stubs.names(), ['discoverTenants']);
  });

  it('finalisation fails: BackupNotFinalized, no manifest, audited and alerted', async () => {
    const [a] = tenantNames('a');
    const stubs = stubActivities(backupImpls({ [a!]: 200 * MB }));
    stubs.failOn('finalizeBackupSession', new InvalidInputError('manifest signature key unreadable'));
    const { error, progress } = await backup(stubs, {});
    const f = failureOf(error);
    assert.equal(f.type, 'BackupNotFinalized');
    assert.match(f.message, /could not be finalized: InvalidInputError: manifest signature key unreadable/);
    assert.equal(progress.phase, 'finalizing');
    assert.equal(stubs.inputsOf('appendAuditRecord').at(-1)?.result, 'failed');
    assert.match(stubs.inputsOf('sendAlert')[0]?.subject ?? '', /could not be finalized/);
  });

  it('with a bucket, finalisation that fails is retried for the local copy only', async () => {
    const [a] = tenantNames('a');
    const stubs = stubActivities(backupImpls({ [a!]: 200 * MB }, true));
    stubs.failOn('finalizeBackupSession', new CloudAuthError('bucket credentials expired'), { when: (f: { localOnly?: boolean }) => !f.localOnly });
    const { result } = await backup(stubs, {});
    assert.equal(result?.status, 'complete');
    assert.deepEqual(
      stubs
        .inputsOf('finalizeBackupSession')
        .map((f) => f.localOnly ?? false)
        .slice(-1),
      [true],
    );
  });

  // After these, the shared server no longer skipped time for later tests (batches: their children
  // and the locks those hold, ended by their parents' closing; cancellation): they run on their own.
  describe('batches and cancellation (on a server of their own)', () => {
    onServerOfItsOwn((own) => {
      const shared = env;
      env = own;
      return shared;
    });

    it('small tenants in batches (child workflows, one activity each): a complete session (recorded for replay)', async () => {
      const names = tenantNames('s1', 's2', 's3', 's4', 's5');
      const stubs = stubActivities(backupImpls(Object.fromEntries(names.map((n) => [n, 10 * MB]))));
      const { result, progress } = await backup(stubs, { tenants: names }, undefined, 'backup-v2-stubbed-batches');
      assert.equal(result?.status, 'complete');
      assert.deepEqual(
        result?.tenants.map((t) => t.tenant),
        [...names].sort(),
      );
      // Five small tenants, two slots: two batches, no tenant alone.
      assert.equal(stubs.inputsOf('backupTenants').length, 2);
      assert.deepEqual(
        stubs
          .inputsOf('backupTenants')
          .flatMap((b) => b.tenants)
          .sort(),
        [...names].sort(),
      );
      assert.deepEqual(stubs.inputsOf('backupTenant'), []);
      assert.deepEqual(finalized(stubs), [Object.fromEntries([...names].sort().map((n) => [n, 'complete']))]);
      assert.equal(progress.phase, 'done');
      assert.deepEqual(stubs.inputsOf('sendAlert'), [], 'a complete session sends no alert');
    });

    it('in a batch, a tenant failing for good is reported, one failing for a transient reason is backed up alone', async () => {
      const [a, b, c] = tenantNames('a', 'b', 'c');
      const impls = backupImpls({ [a!]: MB, [b!]: MB, [c!]: MB, [`${a}-x`]: MB });
      impls.backupTenants = async ({ tenants }) => ({
        tenants: Object.fromEntries(
          tenants.map((t) => [
            t,
            t === a
              ? { status: 'failed' as const, error: 'TenantNotFoundError: dropped', retryable: false }
              : t === b
                ? { status: 'failed' as const, error: 'connection reset', retryable: true }
                : { status: 'complete' as const, done: tenantDone() },
          ]),
        ),
      });
      const stubs = stubActivities(impls);
      const { result } = await backup(stubs, {});
      assert.deepEqual(
        stubs.inputsOf('backupTenant').map((t) => t.tenant),
        [b],
      );
      assert.equal(result?.status, 'partial');
      assert.deepEqual(
        result?.tenants.find((t) => t.tenant === a),
        { ...result?.tenants.find((t) => t.tenant === a), status: 'failed', error: 'TenantNotFoundError: dropped' },
      );
      assert.equal(result?.tenants.find((t) => t.tenant === b)?.status, 'complete');
    });

    it('a batch activity failing as a whole: each of its tenants is backed up alone', async () => {
      const names = tenantNames('a', 'b', 'c');
      const stubs = stubActivities(backupImpls(Object.fromEntries(names.map((n) => [n, MB]))));
      stubs.failOn('backupTenants', new InvalidInputError('batch refused'));
      const { result } = await backup(stubs, { batch: { firstTenants: 3 } });
      assert.equal(result?.status, 'complete');
      // Three small tenants, two slots: a batch of two and a tenant alone; the batch's two then alone too.
      assert.equal(stubs.inputsOf('backupTenants').length, 1);
      assert.deepEqual(
        stubs
          .inputsOf('backupTenant')
          .map((t) => t.tenant)
          .sort(),
        [...names].sort(),
      );
    });

    it('cancelled while a tenant is backed up: never finalised, ends cancelled, with an audit line and an alert (recorded for replay)', async () => {
      const [a] = tenantNames('a');
      const stubs = stubActivities(backupImpls({ [a!]: 200 * MB }));
      // Every activity in flight at the cancellation is held until the result (the helper's finally
      // releases them): one that completed while the workflow asked for its cancellation made the
      // Java test server refuse the workflow task ("ACTIVITY_UNKNOWN"), again and again, until the
      // test timed out.
      const held = (['backupTenant', 'backupClusterGlobals', 'backupConfiguration', 'applyBackupRetention'] as const).map((n) => stubs.hold(n));
      const { error, result } = await backup(
        stubs,
        {},
        async (h) => {
          await Promise.all(held.map((x) => x.entered));
          await h.cancel();
        },
        'backup-v2-stubbed-cancelled',
      );
      assert.equal(result, undefined);
      assert.ok(error instanceof WorkflowFailedError && error.cause instanceof CancelledFailure, `ends cancelled, got ${String(error)}`);
      assert.deepEqual(stubs.inputsOf('finalizeBackupSession'), [], 'never finalised');
      assert.deepEqual(
        stubs.inputsOf('appendAuditRecord').map((r) => r.result),
        ['cancelled'],
      );
      const alerts = stubs.inputsOf('sendAlert');
      assert.equal(alerts.length, 1);
      assert.equal(alerts[0]!.severity, 'warning');
      assert.match(alerts[0]!.subject, /^backup backup_\S+ was cancelled$/);
      assert.match(alerts[0]!.text, /stays incomplete and nothing will restore from it/);
    });
  });
});
