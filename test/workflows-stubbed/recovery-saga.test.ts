/* eslint-disable @typescript-eslint/require-await -- stubbed activities are async functions that have nothing to wait for */
/**
 * recoveryWorkflow's saga with stubbed activities on the time-skipping server (no PostgreSQL, no
 * Odoo): every branch (dry run, approval given, refused, never given; a failure at each step;
 * cancellation while waiting) and the exact compensations that ran, in order. Signals and the query
 * are addressed by name ('approve', 'reject', 'status'), as the CLI's contract in workflows/recovery.ts.
 */
import assert from 'node:assert/strict';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, CancelledFailure, ChildWorkflowFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ArtifactCorruptedError, InvalidInputError, ServiceCommandError } from '../../src/errors';
import { recoveryWorkflow } from '../../workflows';
import { timeSkippingServer, withWorker } from '../helpers/temporal';
import { backupImpls, recoveryImpls, recoveryPlan, tenantNames } from './fixtures';
import { onServerOfItsOwn, recordHistory, steps, stubActivities, type Stubs } from './stubs';

type Input = Parameters<typeof recoveryWorkflow>[0];
type Result = Awaited<ReturnType<typeof recoveryWorkflow>>;

describe('recoveryWorkflow saga (stubbed activities, time skipping)', function () {
  this.timeout(120_000);
  let env: TestWorkflowEnvironment;
  before(async () => {
    env = await timeSkippingServer();
  });

  /** Starts a recovery served by `stubs`; `during` acts on it while it runs; returns its handle, settled. */
  async function recover(stubs: Stubs, input: Partial<Input>, during?: (h: WorkflowHandle<typeof recoveryWorkflow>) => Promise<void>) {
    return withWorker({ env, activities: stubs.activities }, async (taskQueue) => {
      try {
        const handle = await env.client.workflow.start(recoveryWorkflow, {
          taskQueue,
          workflowId: `recovery/stubbed/${tenantNames('r')[0]}`,
          args: [{ mode: 'full', ...input }],
        });
        await during?.(handle);
        const outcome: { result?: Result; error?: unknown } = await handle.result().then(
          (result) => ({ result }),
          (error: unknown) => ({ error }),
        );
        const status = (await handle.query<Result>('status')) as Omit<Result, 'workflowId' | 'durationMs'>;
        return { ...outcome, status, handle };
      } finally {
        // A held (cancelled) activity must end before the worker can shut down.
        stubs.releaseAll();
      }
    });
  }

  const waitForState = async (h: WorkflowHandle, state: string) => {
    for (let i = 0; i < 200; i++) {
      if ((await h.query<{ state: string }>('status')).state === state) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.fail(`the recovery never reached ${state}`);
  };

  /** The root failure of a failed workflow: its type and message, as `odoo-dr recover status` shows it. */
  function rootFailure(error: unknown): ApplicationFailure | CancelledFailure {
    assert.ok(error instanceof WorkflowFailedError, String(error));
    let e: unknown = error.cause;
    while (e instanceof ActivityFailure || e instanceof ChildWorkflowFailure) e = e.cause;
    assert.ok(e instanceof ApplicationFailure || e instanceof CancelledFailure, String(e));
    return e;
  }

  /** The calls up to the swaps of `a` and `b`, in order, when nothing failed before. */
  const throughSwaps = (a: string, b: string) => [
    'planRecovery',
    `prepareRecoveryShadow(${a})`,
    `prepareRecoveryShadow(${b})`,
    'stopOdoo',
    `swapInTenant(${a})`,
    `swapInTenant(${b})`,
  ];

  /** The compensations after both swaps, newest first: swaps back, Odoo started again, shadows dropped. */
  const unwoundAfterSwaps = (a: string, b: string) => [
    `swapBackTenant(${b})`,
    `swapBackTenant(${a})`,
    'startOdoo',
    `dropRecoveryShadow(${b})`,
    `dropRecoveryShadow(${a})`,
  ];

  const auditResults = (stubs: Stubs) => stubs.inputsOf('appendAuditRecord').map((r) => r.result);

  it('a dry run plans and changes nothing', async () => {
    const [a] = tenantNames('a');
    const stubs = stubActivities(recoveryImpls(recoveryPlan([a!])));
    const { result } = await recover(stubs, { dryRun: true, tenants: [a!] });
    assert.equal(result?.state, 'planned');
    assert.deepEqual(result?.tenants, { [a!]: { state: 'planned' } });
    assert.deepEqual(steps(stubs.calls, []), ['planRecovery']);
    assert.deepEqual(stubs.inputsOf('planRecovery')[0], { mode: 'full', fromCloud: false, force: false, tenants: [a!] });
  });

  it('approved by signal: shadows, Odoo stopped, swaps, Odoo started, health, markers (recorded for replay)', async () => {
    const [a, b] = tenantNames('a', 'b');
    const stubs = stubActivities(recoveryImpls(recoveryPlan([a!, b!])));
    const { result, handle } = await recover(stubs, {}, async (h) => {
      await waitForState(h, 'waiting-for-approval');
      await h.signal('approve', { by: 'alice' });
    });
    assert.equal(result?.state, 'done');
    assert.equal(result?.approvedBy, 'alice');
    assert.deepEqual(steps(stubs.calls), [
      ...throughSwaps(a!, b!),
      'startOdoo',
      'checkRecoveryHealth',
      `markTenantRecovered(${a})`,
      `markTenantRecovered(${b})`,
    ]);
    assert.deepEqual(
      stubs.inputsOf('sendAlert').map((x) => x.subject.split(':')[0]),
      ['recovery waiting for approval', 'recovery started', 'recovery done'],
    );
    assert.deepEqual(auditResults(stubs), ['approved', 'done']);
    assert.deepEqual(
      Object.values(result?.tenants ?? {}).map((t) => [t.state, t.bytes]),
      [
        ['recovered', 1234],
        ['recovered', 1234],
      ],
    );
    assert.equal(result?.report?.tenantsRecovered, 2);
    await recordHistory(handle, 'recovery-v1-done.json');
  });

  it('rejected: nothing is touched, the refusal is audited', async () => {
    const [a] = tenantNames('a');
    const stubs = stubActivities(recoveryImpls(recoveryPlan([a!])));
    const { result } = await recover(stubs, {}, async (h) => {
      await waitForState(h, 'waiting-for-approval');
      await h.signal('reject', { by: 'bob', reason: 'wrong session' });
    });
    assert.equal(result?.state, 'rejected');
    assert.equal(result?.rejectedBy, 'bob');
    assert.deepEqual(steps(stubs.calls), ['planRecovery']);
    assert.deepEqual(
      stubs.inputsOf('appendAuditRecord').map((r) => [r.result, r.reason]),
      [['rejected', 'wrong session']],
    );
  });

  it('no approval within the timeout: expires without changes (time skipped)', async () => {
    const [a] = tenantNames('a');
    const stubs = stubActivities(recoveryImpls(recoveryPlan([a!])));
    const began = Date.now();
    const { result } = await recover(stubs, { approvalTimeoutMinutes: 45 });
    assert.equal(result?.state, 'expired');
    assert.ok(Date.now() - began < 30_000, 'the 45 minutes were skipped');
    assert.deepEqual(steps(stubs.calls), ['planRecovery']);
    assert.deepEqual(auditResults(stubs), ['expired']);
  });

  it('not enough space: refused before approval', async () => {
    const [a] = tenantNames('a');
    const plan = recoveryPlan([a!], {
      space: [{ what: 'filestore', path: '/srv', neededBytes: 10, availableBytes: 1, ok: false }],
      warnings: ['filestore needs 10 B'],
    });
    const stubs = stubActivities(recoveryImpls(plan));
    const { error } = await recover(stubs, { approvedBy: 'alice' });
    const root = rootFailure(error);
    assert.ok(root instanceof ApplicationFailure && root.type === 'InsufficientSpace', String(root));
    assert.deepEqual(steps(stubs.calls), ['planRecovery']);
  });

  it('a shadow that cannot be prepared: that tenant is dropped and reported, the other is recovered', async () => {
    const [a, b] = tenantNames('a', 'b');
    const stubs = stubActivities(recoveryImpls(recoveryPlan([a!, b!])));
    stubs.failOn('prepareRecoveryShadow', new ArtifactCorruptedError('dump checksum mismatch'), { when: (i: { tenant: string }) => i.tenant === a });
    const { result } = await recover(stubs, { approvedBy: 'alice' });
    assert.equal(result?.state, 'done');
    assert.deepEqual(result?.tenants[a!], { state: 'failed-before-swap', error: 'ArtifactCorruptedError: dump checksum mismatch' });
    assert.equal(result?.tenants[b!]?.state, 'recovered');
    assert.deepEqual(steps(stubs.calls), [
      'planRecovery',
      `prepareRecoveryShadow(${a})`,
      `dropRecoveryShadow(${a})`,
      `prepareRecoveryShadow(${b})`,
      'stopOdoo',
      `swapInTenant(${b})`,
      'startOdoo',
      'checkRecoveryHealth',
      `markTenantRecovered(${b})`,
    ]);
    assert.equal(stubs.inputsOf('sendAlert').at(-1)?.severity, 'critical');
  });

  it('no shadow at all: RecoveryNotPrepared, every shadow dropped again in reverse, Odoo never stopped', async () => {
    const [a, b] = tenantNames('a', 'b');
    const stubs = stubActivities(recoveryImpls(recoveryPlan([a!, b!])));
    stubs.failOn('prepareRecoveryShadow', new ArtifactCorruptedError('bad signature'));
    const { error, status } = await recover(stubs, { approvedBy: 'alice' });
    const root = rootFailure(error);
    assert.ok(root instanceof ApplicationFailure && root.type === 'RecoveryNotPrepared', String(root));
    assert.match(root.message, new RegExp(`${a}: ArtifactCorruptedError: bad signature`));
    assert.deepEqual(steps(stubs.calls), [
      'planRecovery',
      `prepareRecoveryShadow(${a})`,
      `dropRecoveryShadow(${a})`,
      `prepareRecoveryShadow(${b})`,
      `dropRecoveryShadow(${b})`,
      // The compensations, newest first.
      `dropRecoveryShadow(${b})`,
      `dropRecoveryShadow(${a})`,
    ]);
    assert.equal(status.state, 'rolled-back');
    assert.deepEqual(auditResults(stubs), ['approved', 'rolled-back']);
  });

  it('Odoo does not stop: after its retries, Odoo is started again (a stop may have half-happened), the shadows are dropped', async () => {
    const [a, b] = tenantNames('a', 'b');
    const stubs = stubActivities(recoveryImpls(recoveryPlan([a!, b!])));
    stubs.failOn('stopOdoo', new ServiceCommandError('DR_ODOO_STOP_CMD exited 1: unit not found'));
    const { error, status } = await recover(stubs, { approvedBy: 'alice' });
    const root = rootFailure(error);
    assert.ok(root instanceof ApplicationFailure && root.type === 'ServiceCommandError', String(root));
    assert.deepEqual(steps(stubs.calls), [
      'planRecovery',
      `prepareRecoveryShadow(${a})`,
      `prepareRecoveryShadow(${b})`,
      // A transient error: the critical steps' four attempts.
      'stopOdoo',
      'stopOdoo',
      'stopOdoo',
      'stopOdoo',
      'startOdoo',
      `dropRecoveryShadow(${b})`,
      `dropRecoveryShadow(${a})`,
    ]);
    assert.equal(status.state, 'rolled-back');
    assert.deepEqual(
      Object.values(status.tenants).map((t) => t.state),
      ['failed-before-swap', 'failed-before-swap'],
    );
  });

  it('a swap that fails: that tenant is swapped back and its shadow dropped, the other is recovered', async () => {
    const [a, b] = tenantNames('a', 'b');
    const stubs = stubActivities(recoveryImpls(recoveryPlan([a!, b!])));
    stubs.failOn('swapInTenant', new InvalidInputError('pre-recovery name taken'), { when: (i: { tenant: string }) => i.tenant === a });
    const { result } = await recover(stubs, { approvedBy: 'alice' });
    assert.equal(result?.state, 'done');
    assert.deepEqual(result?.tenants[a!]?.state, 'rolled-back');
    assert.equal(result?.tenants[a!]?.error, 'swap: InvalidInputError: pre-recovery name taken');
    assert.deepEqual(steps(stubs.calls), [
      'planRecovery',
      `prepareRecoveryShadow(${a})`,
      `prepareRecoveryShadow(${b})`,
      'stopOdoo',
      `swapInTenant(${a})`,
      `swapBackTenant(${a})`,
      `dropRecoveryShadow(${a})`,
      `swapInTenant(${b})`,
      'startOdoo',
      'checkRecoveryHealth',
      `markTenantRecovered(${b})`,
    ]);
    assert.deepEqual(stubs.inputsOf('checkRecoveryHealth'), [{ tenants: [b] }]);
  });

  it('Odoo does not start after the swaps: every tenant swapped back (newest first), Odoo started again, shadows dropped', async () => {
    const [a, b] = tenantNames('a', 'b');
    const stubs = stubActivities(recoveryImpls(recoveryPlan([a!, b!])));
    // The four attempts of the step fail; the compensation's start works.
    stubs.failOn('startOdoo', new ServiceCommandError('DR_ODOO_START_CMD timed out'), { times: 4 });
    const { error, status } = await recover(stubs, { approvedBy: 'alice' });
    const root = rootFailure(error);
    assert.ok(root instanceof ApplicationFailure && root.type === 'ServiceCommandError', String(root));
    assert.deepEqual(steps(stubs.calls), [...throughSwaps(a!, b!), 'startOdoo', 'startOdoo', 'startOdoo', 'startOdoo', ...unwoundAfterSwaps(a!, b!)]);
    assert.equal(status.state, 'rolled-back');
    assert.deepEqual(
      Object.values(status.tenants).map((t) => t.state),
      ['rolled-back', 'rolled-back'],
    );
    assert.match(status.tenants[a!]?.error ?? '', /recovery rolled back: ServiceCommandError: DR_ODOO_START_CMD timed out/);
    assert.equal(stubs.inputsOf('sendAlert').at(-1)?.severity, 'critical');
  });

  it('a tenant fails its health check: Odoo stopped again, that tenant swapped back, the other kept (recorded for replay)', async () => {
    const [a, b] = tenantNames('a', 'b');
    const impls = recoveryImpls(recoveryPlan([a!, b!]));
    impls.checkRecoveryHealth = async ({ tenants }) => [
      { name: 'odoo-http', status: 'pass', message: 'HTTP 200' },
      ...tenants.map((t) => ({
        name: `tenant:${t}`,
        status: t === a ? ('fail' as const) : ('pass' as const),
        message: t === a ? 'HTTP 500 on /web/login' : 'answers',
      })),
    ];
    const stubs = stubActivities(impls);
    const { result, handle } = await recover(stubs, { approvedBy: 'alice' });
    assert.equal(result?.state, 'done');
    assert.deepEqual(result?.tenants[a!]?.state, 'rolled-back');
    assert.equal(result?.tenants[a!]?.error, 'health check failed: HTTP 500 on /web/login');
    assert.equal(result?.tenants[b!]?.state, 'recovered');
    assert.deepEqual(steps(stubs.calls).slice(3), [
      'stopOdoo',
      `swapInTenant(${a})`,
      `swapInTenant(${b})`,
      'startOdoo',
      'checkRecoveryHealth',
      'stopOdoo',
      `swapBackTenant(${a})`,
      `dropRecoveryShadow(${a})`,
      'startOdoo',
      `markTenantRecovered(${b})`,
    ]);
    await recordHistory(handle, 'recovery-v1-health-rollback.json');
  });

  it('Odoo itself unhealthy: every tenant swapped back, nothing marked recovered (recorded for replay)', async () => {
    const [a, b] = tenantNames('a', 'b');
    const impls = recoveryImpls(recoveryPlan([a!, b!]));
    impls.checkRecoveryHealth = async () => [{ name: 'odoo-http', status: 'fail', message: 'connection refused' }];
    const stubs = stubActivities(impls);
    const { result, handle } = await recover(stubs, { approvedBy: 'alice' });
    assert.equal(result?.state, 'rolled-back');
    assert.deepEqual(steps(stubs.calls).slice(7), [
      'checkRecoveryHealth',
      'stopOdoo',
      `swapBackTenant(${a})`,
      `dropRecoveryShadow(${a})`,
      `swapBackTenant(${b})`,
      `dropRecoveryShadow(${b})`,
      'startOdoo',
    ]);
    assert.deepEqual(stubs.inputsOf('markTenantRecovered'), []);
    assert.equal(result?.report?.tenantsRecovered, 0);
    await recordHistory(handle, 'recovery-v1-rolled-back.json');
  });

  it('the health check itself fails: the saga unwinds (swaps back newest first, Odoo started, shadows dropped)', async () => {
    const [a, b] = tenantNames('a', 'b');
    const stubs = stubActivities(recoveryImpls(recoveryPlan([a!, b!])));
    stubs.failOn('checkRecoveryHealth', new InvalidInputError('DR_ODOO_HEALTH_URL is not a URL'));
    const { error, status } = await recover(stubs, { approvedBy: 'alice' });
    const root = rootFailure(error);
    assert.ok(root instanceof ApplicationFailure && root.type === 'InvalidInputError', String(root));
    assert.deepEqual(steps(stubs.calls).slice(6), ['startOdoo', 'checkRecoveryHealth', ...unwoundAfterSwaps(a!, b!)]);
    assert.equal(status.state, 'rolled-back');
  });

  it('the pre-recovery backup fails: PreRecoveryBackupFailed, the shadows dropped, Odoo never stopped', async () => {
    const [a] = tenantNames('a');
    const stubs = stubActivities({ ...backupImpls({ [a!]: 10 }), ...recoveryImpls(recoveryPlan([a!])) });
    stubs.failOn('backupTenant', new InvalidInputError('pg_dump refused'));
    const { error, status } = await recover(stubs, { approvedBy: 'alice', backupFirst: true });
    const root = rootFailure(error);
    assert.ok(root instanceof ApplicationFailure && root.type === 'PreRecoveryBackupFailed', String(root));
    assert.equal(status.backupFirst?.status, 'failed');
    const calls = steps(stubs.calls);
    assert.deepEqual(calls.slice(0, 4), ['planRecovery', `prepareRecoveryShadow(${a})`, 'discoverTenants', 'prepareBackupSession']);
    // The tenant's backup and the cluster steps run at once: any order.
    assert.deepEqual(calls.slice(4, 7).sort(), [`backupTenant(${a})`, 'backupClusterGlobals', 'backupConfiguration'].sort());
    assert.deepEqual(calls.slice(7), ['finalizeBackupSession', `dropRecoveryShadow(${a})`]);
    // The recovery holds the tenant's lock: its backup does not take it again.
    assert.deepEqual(stubs.inputsOf('discoverTenants'), [{ include: [a] }]);
  });

  describe('cancelled (on a server of their own)', () => {
    onServerOfItsOwn((own) => {
      const shared = env;
      env = own;
      return shared;
    });

    it('cancelled while waiting for approval: ends cancelled, nothing touched', async () => {
      const [a] = tenantNames('a');
      const stubs = stubActivities(recoveryImpls(recoveryPlan([a!])));
      const { error } = await recover(stubs, {}, async (h) => {
        await waitForState(h, 'waiting-for-approval');
        await h.cancel();
      });
      assert.ok(rootFailure(error) instanceof CancelledFailure);
      assert.deepEqual(steps(stubs.calls), ['planRecovery']);
    });

    /** One tenant, approved; cancelled once `step` runs: the calls after it, the failure and the status. */
    const cancelDuring = async (step: 'prepareRecoveryShadow' | 'stopOdoo' | 'swapInTenant' | 'checkRecoveryHealth') => {
      const [a] = tenantNames('a');
      const stubs = stubActivities(recoveryImpls(recoveryPlan([a!])));
      const held = stubs.hold(step);
      const { error, status } = await recover(stubs, { approvedBy: 'alice' }, async (h) => {
        await held.entered;
        await h.cancel();
      });
      const calls = steps(stubs.calls);
      return { a: a!, root: rootFailure(error), status, after: calls.slice(calls.findIndex((c) => c.startsWith(step)) + 1) };
    };

    it('cancelled while a shadow is restored: ends cancelled, the shadow is dropped, Odoo never stopped', async () => {
      const { a, root, status, after } = await cancelDuring('prepareRecoveryShadow');
      assert.ok(root instanceof CancelledFailure, String(root));
      assert.deepEqual(after, [`dropRecoveryShadow(${a})`]);
      assert.equal(status.state, 'rolled-back');
      assert.equal(status.tenants[a]?.state, 'failed-before-swap');
    });

    it('cancelled while Odoo is being stopped: Odoo started again, the shadow dropped, nothing swapped', async () => {
      const { a, root, status, after } = await cancelDuring('stopOdoo');
      assert.ok(root instanceof CancelledFailure);
      assert.deepEqual(after, ['startOdoo', `dropRecoveryShadow(${a})`]);
      assert.equal(status.state, 'rolled-back');
      assert.notEqual(status.tenants[a]?.state, 'swapped');
    });

    it('cancelled during a swap: swapped back, Odoo started again, shadows dropped', async () => {
      const { a, root, status, after } = await cancelDuring('swapInTenant');
      assert.ok(root instanceof CancelledFailure);
      assert.deepEqual(after, [`swapBackTenant(${a})`, 'startOdoo', `dropRecoveryShadow(${a})`]);
      assert.equal(status.state, 'rolled-back');
      assert.equal(status.tenants[a]?.state, 'rolled-back');
    });

    it('cancelled during the health check: the saga unwinds as for a failure', async () => {
      const { a, root, status, after } = await cancelDuring('checkRecoveryHealth');
      assert.ok(root instanceof CancelledFailure);
      assert.deepEqual(after, [`swapBackTenant(${a})`, 'startOdoo', `dropRecoveryShadow(${a})`]);
      assert.equal(status.state, 'rolled-back');
    });
  });
});
