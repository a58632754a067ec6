import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { createActivities } from '../../activities';
import type { DrConfig } from '../../src/config';
import { withClient } from '../../src/postgres';
import { SessionCatalog } from '../../src/sessions/catalog';
import { deleteObjects, listObjects } from '../../src/storage/s3';
import { backupWorkflow, recoveryWorkflow } from '../../workflows';
import { backupSessionName } from '../../workflows/definitions';
import { approveSignal, recoveryStatusQuery, rejectSignal } from '../../workflows/definitions';
import { createTenant, dropTenant, type PgAdminConnection } from '../fixtures/odoo-tenants';
import { stackConfig, uniqueSuffix } from '../helpers/config';
import { filestoreFiles } from '../helpers/files';
import { adminQuery, adminConnection } from '../helpers/pg';
import { devServer, ownTimeSkippingServer, withWorker } from '../helpers/temporal';
import { testBucketUrl } from '../helpers/bucket';

/** What an operator would compare: row count and content checksum of the main tables, and every filestore file. */
async function fingerprint(config: DrConfig, tenant: string): Promise<string> {
  const tables = ['res_partner', 'account_move', 'account_move_line', 'ir_attachment', 'ir_config_parameter'];
  const parts: string[] = [];
  await withClient(config.postgres, tenant, async (c) => {
    for (const t of tables) {
      const { rows } = await c.query<{ n: string; h: string | null }>(`SELECT count(*) AS n, md5(string_agg(x::text, '|' ORDER BY x.id)) AS h FROM ${t} x`);
      parts.push(`${t}:${rows[0]!.n}:${rows[0]!.h}`);
    }
  });
  parts.push(...filestoreFiles(path.join(config.odoo.filestoreRoot, tenant)));
  return parts.join('\n');
}

describe('recoveryWorkflow (real PostgreSQL, filestore, approval)', function () {
  this.timeout(600_000);
  const s = uniqueSuffix();
  const victim = `rc-${s}.eu`;
  const bystander = `rc-other-${s}`;
  const dataDir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-rc-data-'));
  const backupDir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-rc-'));
  const serviceLog = path.join(backupDir, 'service.log');
  const etc = mkdtempSync(path.join(tmpdir(), 'odoo-dr-rc-etc-'));
  let health: Server;
  let healthStatus = 200;
  const hooks: string[] = [];
  let config: DrConfig;
  let session = '';
  let good = '';
  let other = '';

  /** The test's stack configuration: temp folders, service commands logged, health on the local receiver. */
  const configWith = (extra: NodeJS.ProcessEnv): DrConfig =>
    stackConfig({
      DR_BACKUP_DIR: backupDir,
      DR_LOG_DIR: path.join(backupDir, 'logs'),
      ODOO_DATA_DIR: dataDir,
      DR_ODOO_STOP_CMD: `echo stop >> ${serviceLog}`,
      DR_ODOO_START_CMD: `echo start >> ${serviceLog}`,
      DR_ODOO_HEALTH_URL: `http://127.0.0.1:${(health.address() as AddressInfo).port}/web/health`,
      DR_CONFIG_PATHS: etc,
      // Its own prefix: the stack's `backups` prefix is the demo's, and what this test writes there
      // (a validation result dated 2999) would become every monitor's "last validation".
      DR_CLOUD_BUCKET: testBucketUrl(`test-recovery-${s}`, { exact: true }),
      ...extra,
    });
  const admin = (): PgAdminConnection => adminConnection(config);
  // A time-skipping server of its own: late in a full run the shared one had stopped skipping time
  // (CI of 2026-11-27: the time-skipped approval hour waited in real time until the mocha timeout).
  const timeSkippingServer = ownTimeSkippingServer();
  const recover = async (
    input: Parameters<typeof recoveryWorkflow>[0],
    onStart?: (id: string) => Promise<void>,
    server = devServer,
    overrides: { config?: DrConfig; activities?: object } = {},
  ) => {
    const env = await server();
    const workflowId = `test/recovery/${uniqueSuffix()}`;
    return withWorker({ env, config: overrides.config ?? config, ...(overrides.activities ? { activities: overrides.activities } : {}) }, async (taskQueue) => {
      const handle = await env.client.workflow.start(recoveryWorkflow, { taskQueue, workflowId, args: [{ startedBy: 'test', ...input }] });
      if (onStart) await onStart(workflowId);
      return handle.result();
    });
  };

  before(async () => {
    health = createServer((req, res) => {
      if (req.method === 'POST') {
        // The alert webhook (Slack-style) shares this receiver.
        let body = '';
        req.on('data', (d: Buffer) => (body += d.toString()));
        req.on('end', () => {
          hooks.push((JSON.parse(body) as { text: string }).text);
          res.writeHead(200).end('ok');
        });
        return;
      }
      res.writeHead(healthStatus, { 'content-type': 'application/json' }).end(JSON.stringify({ status: healthStatus === 200 ? 'pass' : 'fail' }));
    });
    health.listen(0, '127.0.0.1');
    await once(health, 'listening');
    config = configWith({});
    writeFileSync(path.join(etc, 'odoo.conf'), '[options]\ndb_user = odoo\nworkers = 4\n');
    await createTenant(admin(), dataDir, { name: victim, moveLines: 3000, files: 10 });
    await createTenant(admin(), dataDir, { name: bystander, moveLines: 500, files: 4 });
    good = await fingerprint(config, victim);
    other = await fingerprint(config, bystander);
    const env = await devServer();
    session = backupSessionName(new Date(), uniqueSuffix());
    const backup = await withWorker({ env, config }, (taskQueue) =>
      env.client.workflow.execute(backupWorkflow, {
        taskQueue,
        workflowId: `test/rc-backup/${session}`,
        args: [{ session, tenants: [victim, bystander], retention: false }],
      }),
    );
    assert.equal(backup.status, 'complete');
  });
  after(async () => {
    await new Promise<void>((r) => health.close(() => r()));
    for (const t of [victim, bystander]) await dropTenant(admin(), dataDir, t);
    const rest = (await adminQuery('SELECT datname FROM pg_database WHERE datname LIKE $1', [`rc%${s}%`])) as Array<{ datname: string }>;
    for (const r of rest) await adminQuery(`DROP DATABASE "${r.datname}" WITH (FORCE)`);
    const keys: string[] = [];
    for await (const o of listObjects(config.cloud!, `test-recovery-${s}/`)) keys.push(o.key);
    if (keys.length) await deleteObjects(config.cloud!, keys);
  });

  /** A disaster: rows deleted, a file lost. */
  const damage = async () => {
    await withClient(config.postgres, victim, (c) => c.query('DELETE FROM account_move_line WHERE id % 3 = 0'));
    const dir = path.join(dataDir, 'filestore', victim);
    const sub = readdirSync(dir).find((d) => d !== 'checklist')!;
    rmSync(path.join(dir, sub), { recursive: true });
  };

  it('--dry-run returns the plan and changes nothing', async () => {
    const result = await recover({ mode: 'full', tenants: [victim], dryRun: true });
    assert.equal(result.state, 'planned');
    assert.equal(result.plan?.session, session);
    assert.equal(result.plan?.tenants[0]?.tenant, victim);
    assert.ok(result.plan.tenants[0].steps.some((x) => x.includes('swap')));
    assert.equal(await fingerprint(config, victim), good);
  });

  it('refuses a tenant the session does not contain, naming it', async () => {
    const err = await recover({ mode: 'full', tenants: [`nobody_${s}`], dryRun: true }).then(
      () => assert.fail('expected a refusal'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    assert.match(String((err.cause?.cause as Error | undefined)?.message ?? err.cause?.message), new RegExp(`complete backup of nobody_${s}`));
  });

  it('a rejection changes nothing and is audited', async () => {
    await damage();
    const damaged = await fingerprint(config, victim);
    const env = await devServer();
    const result = await recover({ mode: 'full', tenants: [victim] }, async (id) => {
      const handle = env.client.workflow.getHandle(id);
      for (let i = 0; i < 100 && (await handle.query(recoveryStatusQuery)).state !== 'waiting-for-approval'; i++) await new Promise((r) => setTimeout(r, 100));
      await handle.signal(rejectSignal, { by: 'ops@test', reason: 'wrong session' });
    });
    assert.equal(result.state, 'rejected');
    assert.equal(result.rejectedBy, 'ops@test');
    assert.equal(await fingerprint(config, victim), damaged);
    assert.match(readFileSync(path.join(backupDir, 'logs/audit.jsonl'), 'utf8'), /"result":"rejected".*"by":"ops@test"/);
  });

  it('an approval that never comes ends the recovery without changes (time-skipped hour)', async () => {
    const damaged = await fingerprint(config, victim);
    const result = await recover({ mode: 'full', tenants: [victim], approvalTimeoutMinutes: 60 }, undefined, timeSkippingServer);
    assert.equal(result.state, 'expired');
    assert.equal(await fingerprint(config, victim), damaged);
  });

  it('a failing health check after the swap swaps back: the tenant ends exactly as before', async () => {
    const damaged = await fingerprint(config, victim);
    healthStatus = 500;
    try {
      const result = await recover({ mode: 'full', tenants: [victim], approvedBy: 'ops@test' });
      assert.equal(result.tenants[victim]?.state, 'rolled-back', JSON.stringify(result));
      assert.match(result.tenants[victim].error!, /health check failed/);
    } finally {
      healthStatus = 200;
    }
    assert.equal(await fingerprint(config, victim), damaged);
    assert.equal(await fingerprint(config, bystander), other);
    const shadows = (await adminQuery('SELECT datname FROM pg_database WHERE datname LIKE $1', [`%_dr_shadow_%`])) as Array<{ datname: string }>;
    assert.deepEqual(
      shadows.filter((d) => d.datname.startsWith(victim)),
      [],
      'no shadow left behind',
    );
  });

  it('approved: restores the tenant from the session, keeps the old state as a pre-recovery copy, other tenants untouched', async () => {
    writeFileSync(serviceLog, '');
    const env = await devServer();
    const result = await recover({ mode: 'full', tenants: [victim] }, async (id) => {
      const handle = env.client.workflow.getHandle(id);
      for (let i = 0; i < 100 && (await handle.query(recoveryStatusQuery)).state !== 'waiting-for-approval'; i++) await new Promise((r) => setTimeout(r, 100));
      await handle.signal(approveSignal, { by: 'ops@test' });
    });
    assert.equal(result.state, 'done', JSON.stringify(result, null, 2));
    assert.equal(result.approvedBy, 'ops@test');
    assert.equal(result.tenants[victim]?.state, 'recovered');
    assert.ok((result.tenants[victim]?.downtimeMs ?? Infinity) < 60_000);
    assert.equal(await fingerprint(config, victim), good, 'data and files are back exactly as backed up');
    assert.equal(await fingerprint(config, bystander), other, 'the other tenant is byte-for-byte unchanged');
    assert.deepEqual(readFileSync(serviceLog, 'utf8').trim().split('\n'), ['stop', 'start'], 'Odoo stopped for the swap and started after');
    const pre = (await adminQuery('SELECT datname FROM pg_database WHERE datname LIKE $1', [`${victim}_pre_recovery_%`])) as Array<{ datname: string }>;
    assert.equal(pre.length, 1, 'the damaged state is kept under a dated name');
    assert.ok(readdirSync(path.join(dataDir, 'filestore')).some((d) => d.startsWith(`.${victim}.pre-recovery-`)));
    const owner = (await adminQuery('SELECT pg_get_userbyid(datdba) AS o FROM pg_database WHERE datname = $1', [victim])) as Array<{ o: string }>;
    assert.equal(owner[0]?.o, 'odoo', 'the recovered tenant belongs to the Odoo role again');
    assert.match(readFileSync(path.join(backupDir, 'logs/audit.jsonl'), 'utf8'), /"result":"approved".*"approvedBy":"ops@test"/);
  });

  it('recovers a tenant whose database was lost entirely, directly under its name', async () => {
    await adminQuery(`DROP DATABASE "${victim}" WITH (FORCE)`);
    const result = await recover({ mode: 'full', tenants: [victim], approvedBy: 'ops@test' });
    assert.equal(result.tenants[victim]?.state, 'recovered', JSON.stringify(result));
    assert.equal(await fingerprint(config, victim), good);
  });

  it("database-only: the database comes back, today's files stay", async () => {
    await withClient(config.postgres, victim, (c) => c.query("UPDATE account_move_line SET name = 'tampered' WHERE id % 5 = 0"));
    assert.notEqual(await fingerprint(config, victim), good);
    const result = await recover({ mode: 'database-only', tenants: [victim], approvedBy: 'ops@test' });
    assert.equal(result.tenants[victim]?.state, 'recovered', JSON.stringify(result));
    assert.equal(await fingerprint(config, victim), good);
    assert.equal(await fingerprint(config, bystander), other);
  });

  it('files-only: the filestore comes back, the database is not touched', async () => {
    const dir = path.join(dataDir, 'filestore', victim);
    const sub = readdirSync(dir).find((d) => d !== 'checklist')!;
    rmSync(path.join(dir, sub), { recursive: true });
    await withClient(config.postgres, victim, (c) => c.query("UPDATE ir_config_parameter SET value = value WHERE key = 'web.base.url'"));
    const oid = (await adminQuery('SELECT oid FROM pg_database WHERE datname = $1', [victim])) as Array<{ oid: number }>;
    const result = await recover({ mode: 'files-only', tenants: [victim], approvedBy: 'ops@test' });
    assert.equal(result.tenants[victim]?.state, 'recovered', JSON.stringify(result));
    assert.equal(await fingerprint(config, victim), good);
    const after = (await adminQuery('SELECT oid FROM pg_database WHERE datname = $1', [victim])) as Array<{ oid: number }>;
    assert.deepEqual(after, oid, 'the same database, not a restored one');
  });

  it('config-only: configuration files come back, the replaced ones kept as *.pre-recovery-<stamp>', async () => {
    writeFileSync(path.join(etc, 'odoo.conf'), '[options]\nbroken = yes\n');
    const result = await recover({ mode: 'config-only', approvedBy: 'ops@test' });
    assert.equal(result.state, 'done', JSON.stringify(result));
    assert.equal(readFileSync(path.join(etc, 'odoo.conf'), 'utf8'), '[options]\ndb_user = odoo\nworkers = 4\n');
    const kept = readdirSync(etc).filter((f) => f.startsWith('odoo.conf.pre-recovery-'));
    assert.equal(kept.length, 1);
    assert.equal(readFileSync(path.join(etc, kept[0]!), 'utf8'), '[options]\nbroken = yes\n');
  });

  describe('a failure at each step leaves the tenant exactly as before', () => {
    const expectUnchanged = async (run: () => Promise<unknown>) => {
      await withClient(config.postgres, victim, (c) => c.query("UPDATE account_move_line SET name = 'before recovery' WHERE id % 7 = 0"));
      const before = await fingerprint(config, victim);
      const outcome = await run().then(
        (r) => r,
        (e: unknown) => e,
      );
      assert.equal(await fingerprint(config, victim), before, `tenant changed; outcome: ${JSON.stringify(outcome)}`);
      assert.equal(await fingerprint(config, bystander), other);
      const leftovers = await adminQuery('SELECT datname FROM pg_database WHERE datname LIKE $1', [`${victim}_dr_shadow_%`]);
      assert.deepEqual(leftovers, [], 'no shadow database left');
      assert.ok(!readdirSync(path.join(dataDir, 'filestore')).some((d) => d.startsWith(`.${victim}.dr-shadow-`)), 'no shadow folder left');
      return outcome;
    };

    it('restore fails: nothing is swapped', async () => {
      const real = createActivities({ config });
      const activities = {
        ...real,
        prepareRecoveryShadow: () => Promise.reject(ApplicationFailure.nonRetryable('injected: the shadow restore failed', 'ArtifactCorruptedError')),
      };
      const outcome = await expectUnchanged(() => recover({ mode: 'full', tenants: [victim], approvedBy: 'ops@test' }, undefined, devServer, { activities }));
      assert.ok(outcome instanceof WorkflowFailedError, String(outcome));
    });

    it('Odoo does not stop (retried, time-skipped): shadows dropped, nothing swapped', async () => {
      const outcome = await expectUnchanged(() =>
        recover({ mode: 'full', tenants: [victim], approvedBy: 'ops@test' }, undefined, timeSkippingServer, {
          config: configWith({ DR_ODOO_STOP_CMD: 'echo cannot stop >&2; exit 3' }),
        }),
      );
      assert.ok(outcome instanceof WorkflowFailedError);
      assert.match(String((outcome.cause?.cause as Error | undefined)?.message ?? outcome.cause?.message), /DR_ODOO_STOP_CMD|cannot stop|exit/);
    });

    it('the swap fails half-way: swapped back', async () => {
      const real = createActivities({ config });
      const activities = {
        ...real,
        swapInTenant: async (input: Parameters<typeof real.swapInTenant>[0]) => {
          await real.swapInTenant(input);
          throw ApplicationFailure.nonRetryable('injected: failure right after the swap', 'InjectedFailure');
        },
      };
      const outcome: unknown = await expectUnchanged(() =>
        recover({ mode: 'full', tenants: [victim], approvedBy: 'ops@test' }, undefined, devServer, { activities }),
      );
      const result = outcome as { tenants: Record<string, { state: string }> };
      assert.equal(result.tenants[victim]?.state, 'rolled-back');
    });

    it('Odoo does not start after the swap (retried, time-skipped): swapped back', async () => {
      const outcome = await expectUnchanged(() =>
        recover({ mode: 'full', tenants: [victim], approvedBy: 'ops@test' }, undefined, timeSkippingServer, {
          config: configWith({ DR_ODOO_START_CMD: 'exit 4' }),
        }),
      );
      assert.ok(outcome instanceof WorkflowFailedError, String(outcome));
      // The audit says what happened: the tenant was swapped back, not left "swapped".
      const lines = readFileSync(path.join(backupDir, 'logs/audit.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { workflowId: string; result: string; tenants?: Record<string, { state: string; error?: string }> });
      const last = lines.filter((l) => l.result === 'rolled-back').at(-1);
      assert.equal(last?.tenants?.[victim]?.state, 'rolled-back', JSON.stringify(last));
      assert.match(last?.tenants?.[victim]?.error ?? '', /recovery rolled back: .*DR_ODOO_START_CMD/);
    });
  });

  it('one writer per tenant: a second recovery and a backup of a tenant being recovered are refused, naming the recovery; the lock goes with it', async () => {
    const env = await devServer();
    const real = createActivities({ config });
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let shadowStarted!: () => void;
    const started = new Promise<void>((r) => (shadowStarted = r));
    // The first recovery holds the tenant while its shadow restores (held open here).
    const activities = {
      ...real,
      prepareRecoveryShadow: async (input: Parameters<typeof real.prepareRecoveryShadow>[0]) => {
        shadowStarted();
        await held;
        return real.prepareRecoveryShadow(input);
      },
    };
    const before = await fingerprint(config, victim);
    await withWorker({ env, config, activities }, async (taskQueue) => {
      const first = `test/recovery/first-${uniqueSuffix()}`;
      const firstRun = env.client.workflow.execute(recoveryWorkflow, {
        taskQueue,
        workflowId: first,
        args: [{ mode: 'database-only', tenants: [victim], approvedBy: 'ops@test' }],
      });
      await started;
      const second = await env.client.workflow
        .execute(recoveryWorkflow, {
          taskQueue,
          workflowId: `test/recovery/second-${uniqueSuffix()}`,
          args: [{ mode: 'full', tenants: [victim], approvedBy: 'ops@test' }],
        })
        .then(
          () => assert.fail('expected a refusal'),
          (e: unknown) => e,
        );
      assert.ok(second instanceof WorkflowFailedError);
      assert.match(String(second.cause?.message), new RegExp(`tenant "${victim.replace(/\./g, '\\.')}" is locked by the recovery ${first}`));
      const session = backupSessionName(new Date(), uniqueSuffix());
      const backup = await env.client.workflow.execute(backupWorkflow, {
        taskQueue,
        workflowId: `test/backup/${session}`,
        args: [{ session, tenants: [victim], cloud: false, retention: false }],
      });
      assert.equal(backup.status, 'failed');
      assert.match(backup.tenants[0]?.error ?? '', new RegExp(`TenantLocked: .*locked by the recovery ${first}`));
      assert.equal(await fingerprint(config, victim), before, 'the refused ones changed nothing');
      release();
      const done = await firstRun;
      assert.equal(done.tenants[victim]?.state, 'recovered', JSON.stringify(done));
      // Released with the recovery: the next one takes it.
      const again = await env.client.workflow.execute(recoveryWorkflow, {
        taskQueue,
        workflowId: `test/recovery/again-${uniqueSuffix()}`,
        args: [{ mode: 'database-only', tenants: [victim], approvedBy: 'ops@test' }],
      });
      assert.equal(again.tenants[victim]?.state, 'recovered', JSON.stringify(again));
    });
  });

  it('downtime is measured by the workflow: a swap whose worker answered late counts whole (retries and waits included)', async () => {
    const real = createActivities({ config });
    // The swap itself is quick; its answer comes 1.5 s later (as when a worker stalls or dies after the
    // work): the activity alone would report a few milliseconds.
    const activities = {
      ...real,
      swapInTenant: async (input: Parameters<typeof real.swapInTenant>[0]) => {
        const done = await real.swapInTenant(input);
        await new Promise((r) => setTimeout(r, 1500));
        return done;
      },
    };
    const result = await recover({ mode: 'database-only', tenants: [victim], approvedBy: 'ops@test' }, undefined, devServer, { activities });
    const t = result.tenants[victim]!;
    assert.equal(t.state, 'recovered', JSON.stringify(result));
    assert.ok((t.swapMs ?? 0) >= 1500, `swapMs ${t.swapMs}`);
    assert.ok((t.downtimeMs ?? 0) >= (t.swapMs ?? 0), `downtime ${t.downtimeMs} covers the swap ${t.swapMs}`);
    assert.equal(result.odooDowntimeMs, t.downtimeMs);
  });

  it("--backup-first makes a session of today's state before the swap", async () => {
    const result = await recover({ mode: 'database-only', tenants: [victim], approvedBy: 'ops@test', backupFirst: true });
    assert.equal(result.tenants[victim]?.state, 'recovered', JSON.stringify(result));
    assert.equal(result.backupFirst?.status, 'complete');
    assert.notEqual(result.backupFirst?.session, session);
  });

  it('refuses a session that failed validation unless forced, with a warning', async () => {
    // A failed validation, kept with the session as validationWorkflow keeps it.
    const catalog = SessionCatalog.fromConfig(config);
    const [written] = await catalog.saveResult({
      kind: 'validation',
      session,
      status: 'fail',
      finishedAt: '2999-01-01T00:00:00.000Z',
      workflowId: 'test',
      restoreTest: false,
      failures: ['test'],
    });
    const report = written!
      .slice(catalog.local.description.length + 1)
      .split('/')
      .reduce((p, part) => path.join(p, part), backupDir);
    try {
      const err = await recover({ mode: 'full', tenants: [victim], session, dryRun: true }).then(
        () => assert.fail('expected a refusal'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof WorkflowFailedError);
      assert.match(
        String((err.cause?.cause as Error | undefined)?.message ?? err.cause?.message),
        new RegExp(`session ${session} failed validation: refused \\(use --force`),
      );
      const forced = await recover({ mode: 'full', tenants: [victim], session, dryRun: true, force: true });
      assert.equal(forced.state, 'planned');
      assert.ok(forced.plan?.warnings.some((w) => w.includes('FAILED validation')));
      const latest = await recover({ mode: 'full', tenants: [victim], dryRun: true }).catch(() => undefined);
      assert.notEqual(latest?.plan?.session, session, '`latest` never picks a session that failed validation');
    } finally {
      rmSync(report);
    }
  });

  it('a cancelled recovery runs its compensations: the tenant ends as before, no shadow left', async () => {
    const before = await fingerprint(config, victim);
    const env = await devServer();
    const outcome = await recover({ mode: 'full', tenants: [victim], approvedBy: 'ops@test' }, async (id) => {
      const handle = env.client.workflow.getHandle(id);
      for (let i = 0; i < 200; i++) {
        const st = await handle.query(recoveryStatusQuery).catch(() => undefined);
        if (st?.tenants[victim]?.state === 'restoring-shadow') break;
        await new Promise((r) => setTimeout(r, 25));
      }
      await handle.cancel();
    }).then(
      (r) => r,
      (e: unknown) => e,
    );
    assert.ok(outcome instanceof WorkflowFailedError, `expected a cancelled workflow, got ${JSON.stringify(outcome)}`);
    assert.equal(await fingerprint(config, victim), before);
    const shadows = await adminQuery('SELECT datname FROM pg_database WHERE datname LIKE $1', [`${victim}_dr_shadow_%`]);
    assert.deepEqual(shadows, []);
  });

  it('notifies by the configured channel: waiting for approval, started, done', async () => {
    const port = (health.address() as AddressInfo).port;
    const notifying = configWith({ DR_WEBHOOK_URL: `http://127.0.0.1:${port}/hook/T0/B0/token` });
    hooks.length = 0;
    const env = await devServer();
    const result = await recover(
      { mode: 'database-only', tenants: [victim] },
      async (id) => {
        const handle = env.client.workflow.getHandle(id);
        for (let i = 0; i < 100 && (await handle.query(recoveryStatusQuery)).state !== 'waiting-for-approval'; i++)
          await new Promise((r) => setTimeout(r, 100));
        await handle.signal(approveSignal, { by: 'ops@test' });
      },
      devServer,
      { config: notifying },
    );
    assert.equal(result.state, 'done', JSON.stringify(result));
    assert.ok(
      hooks.some((h) => /recovery waiting for approval: test\/recovery\/.*odoo-dr recover approve/s.test(h)),
      hooks.join('\n---\n'),
    );
    assert.ok(hooks.some((h) => /recovery started: .*approved by ops@test/s.test(h)));
    assert.ok(hooks.some((h) => new RegExp(`recovery done: [\\s\\S]*${victim.replace('.', '\\.')}: recovered`).test(h)));
  });
});
