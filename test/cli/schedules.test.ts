/**
 * `odoo-dr schedules …` against the stack's dev server (the time-skipping server has no Schedules):
 * apply, dry run, re-apply (no change), update, pause/unpause, trigger (a real backup by a real
 * worker), RPO refusal, remove. Everything runs on a task queue of its own, so the schedule IDs are
 * `odoo-dr/<queue>/…` and never the real `odoo-dr/backup`.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Client, ScheduleDescription } from '@temporalio/client';
import type { AppliedSchedule, ScheduleState } from '../../temporal/schedules';
import type { BackupResult } from '../../workflows/backup';
import { createTenant, dropTenant } from '../fixtures/odoo-tenants';
import { runCli, startCliWorker, type CliRun } from '../helpers/cli';
import { stackConfig, uniqueSuffix } from '../helpers/config';
import { devServer } from '../helpers/temporal';
import { adminConnection } from '../helpers/pg';

describe('odoo-dr schedules (CLI on the dev server)', function () {
  this.timeout(600_000);
  const s = uniqueSuffix();
  const taskQueue = `sched-${s}`;
  const tenant = `sched-${s}`;
  const backupDir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-schedules-'));
  const env = {
    DR_TASK_QUEUE: taskQueue,
    DR_BACKUP_DIR: backupDir,
    DR_LOG_DIR: path.join(backupDir, 'logs'),
    DR_CLOUD_BUCKET: '',
    DR_TENANTS: tenant,
    DR_RPO_HOURS: '4',
  };
  const id = (name: string) => `odoo-dr/${taskQueue}/${name}`;
  let client: Client;
  let worker: CliRun | undefined;

  const cli = async (...args: string[]) => {
    const r = await runCli(args, env).result;
    return { ...r, json: () => JSON.parse(r.stdout) as unknown };
  };
  const describeSchedule = (name: string): Promise<ScheduleDescription> => client.schedule.getHandle(id(name)).describe();
  const applied = (out: unknown) => (out as { schedules: AppliedSchedule[] }).schedules;
  const changes = (out: unknown) => Object.fromEntries(applied(out).map((r) => [r.name, r.change]));
  const listed = async () => {
    const r = await cli('--json', 'schedules', 'list');
    assert.equal(r.code, 0, r.out);
    return Object.fromEntries((r.json() as { schedules: ScheduleState[] }).schedules.map((x) => [x.name, x]));
  };

  before(async function () {
    this.timeout(300_000);
    client = (await devServer()).client;
    await createTenant(adminConnection(), stackConfig().odoo.dataDir, { name: tenant, moveLines: 200, files: 5 });
  });

  after(async () => {
    worker?.child.kill('SIGTERM');
    if (worker) await worker.result;
    await runCli(['schedules', 'remove'], env).result;
    // A schedule that fired during the run (the monitor's workflow has no implementation on this
    // worker) must not leave a workflow behind on the shared server.
    for await (const w of client.workflow.list({ query: `TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Running'` })) {
      await client.workflow
        .getHandle(w.workflowId, w.runId)
        .terminate('test cleanup')
        .catch(() => undefined);
    }
    await dropTenant(adminConnection(), stackConfig().odoo.dataDir, tenant);
  });

  it('`apply --dry-run` prints the plan and creates nothing', async () => {
    const r = await cli('--json', 'schedules', 'apply', '--dry-run');
    assert.equal(r.code, 0, r.out);
    assert.deepEqual(changes(r.json()), { backup: 'create', validation: 'create', drill: 'create', monitor: 'create', cleanup: 'create' });
    assert.ok(applied(r.json()).every((x) => !x.applied));
    const text = await cli('schedules', 'apply', '--dry-run');
    assert.match(text.stdout, new RegExp(`${id('backup')}\\s+would create\\s+every 4 h from 02:00 UTC \\(02:00, 06:00, 10:00, 14:00, 18:00, 22:00\\)`));
    assert.match(text.stdout, /dry run: nothing was changed/);
    const now = await listed();
    assert.ok(
      Object.values(now).every((x) => !x.exists),
      JSON.stringify(now),
    );
  });

  it('`apply` creates the five schedules with the seed defaults, backups every DR_RPO_HOURS, overlap skip and a catch-up window', async () => {
    const r = await cli('--json', 'schedules', 'apply');
    assert.equal(r.code, 0, r.out);
    assert.deepEqual(changes(r.json()), { backup: 'create', validation: 'create', drill: 'create', monitor: 'create', cleanup: 'create' });

    const backup = await describeSchedule('backup');
    assert.deepEqual(
      backup.spec.calendars?.[0]?.hour.map((h) => h.start),
      [2, 6, 10, 14, 18, 22],
    );
    assert.equal(backup.spec.timezone, 'UTC');
    assert.equal(backup.policies.overlap, 'SKIP');
    assert.equal(backup.policies.catchupWindow, 4 * 3600_000);
    assert.equal(backup.action.workflowType, 'backupWorkflow');
    assert.equal(backup.action.workflowId, `backup/${taskQueue}/scheduled`);
    assert.equal(backup.action.taskQueue, taskQueue);
    assert.deepEqual(backup.action.args, [{ startedBy: `schedule:${id('backup')}` }]);
    const drill = await describeSchedule('drill');
    assert.deepEqual(drill.spec.calendars?.[0]?.dayOfWeek, [{ start: 'SUNDAY', end: 'SUNDAY', step: 1 }]);
    assert.deepEqual(drill.action.args, [{ mode: 'full', cloud: false, startedBy: `schedule:${id('drill')}` }]);
    assert.equal((await describeSchedule('monitor')).spec.intervals?.[0]?.every, 3600_000);
    assert.equal((await describeSchedule('cleanup')).action.workflowType, 'retentionWorkflow');

    const now = await listed();
    assert.equal(now.backup!.paused, false);
    const next = new Date(now.backup!.nextRuns![0]!);
    assert.ok([2, 6, 10, 14, 18, 22].includes(next.getUTCHours()) && next.getUTCMinutes() === 0, `next backup at ${next.toISOString()}`);
    assert.equal(new Date(now.drill!.nextRuns![0]!).getUTCDay(), 0, 'drills on Sundays');
    assert.equal(now.validation!.summary, 'daily at 03:00 UTC, latest session');
  });

  it('re-applying changes nothing: every schedule "unchanged", none touched on the server', async () => {
    const before = await describeSchedule('backup');
    const r = await cli('--json', 'schedules', 'apply');
    assert.equal(r.code, 0, r.out);
    assert.deepEqual(changes(r.json()), { backup: 'unchanged', validation: 'unchanged', drill: 'unchanged', monitor: 'unchanged', cleanup: 'unchanged' });
    // Every update gives the schedule a new conflict token: the same token means nothing was written.
    const after = await describeSchedule('backup');
    assert.ok(before.raw.conflictToken?.length, 'the server returns a conflict token');
    assert.deepEqual(Buffer.from(after.raw.conflictToken!), Buffer.from(before.raw.conflictToken), 'the schedule was not updated');
  });

  it('`pause` and `unpause` with a note; a paused schedule stays paused through an update', async () => {
    const p = await cli('schedules', 'pause', 'backup', '--note', 'storage maintenance');
    assert.equal(p.code, 0, p.out);
    assert.match(p.stdout, new RegExp(`paused ${id('backup')} \\(paused by .* via odoo-dr: storage maintenance\\)`));
    let now = await listed();
    assert.equal(now.backup!.paused, true);
    assert.match(now.backup!.note!, /storage maintenance/);
    assert.deepEqual(now.backup!.nextRuns, []);
    const text = await cli('schedules', 'list');
    assert.match(text.stdout, new RegExp(`${id('backup')}\\s+paused\\s+every 4 h`));

    // Changing a flag updates the existing schedule, and only the ones it concerns.
    const r = await cli('--json', 'schedules', 'apply', '--backup-time', '01:30', '--test-schedule', 'monthly', '--monitor-interval', '30');
    assert.equal(r.code, 0, r.out);
    assert.deepEqual(changes(r.json()), { backup: 'update', validation: 'unchanged', drill: 'update', monitor: 'update', cleanup: 'unchanged' });
    const backup = await describeSchedule('backup');
    assert.deepEqual(
      backup.spec.calendars?.[0]?.hour.map((h) => h.start),
      [1, 5, 9, 13, 17, 21],
    );
    assert.deepEqual(
      backup.spec.calendars?.[0]?.minute.map((m) => m.start),
      [30],
    );
    assert.equal(backup.state.paused, true, "apply keeps an operator's pause");
    assert.match(backup.state.note ?? '', /storage maintenance/);
    assert.deepEqual((await describeSchedule('drill')).spec.calendars?.[0]?.dayOfMonth, [{ start: 1, end: 1, step: 1 }]);
    assert.equal((await describeSchedule('monitor')).spec.intervals?.[0]?.every, 30 * 60_000);

    const u = await cli('schedules', 'unpause', 'odoo-dr/' + taskQueue + '/backup');
    assert.equal(u.code, 0, u.out);
    now = await listed();
    assert.equal(now.backup!.paused, false);
    assert.ok(now.backup!.nextRuns.length > 0);
    const bad = await cli('schedules', 'pause', 'backups');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown schedule "backups": expected one of backup, validation, drill, monitor, cleanup/);
  });

  it('`trigger backup` starts a backup now (refused while it runs); a worker runs it and `list` shows the run and its result', async () => {
    // No worker yet: the run stays in progress until one starts.
    const r = await cli('schedules', 'trigger', 'backup');
    assert.equal(r.code, 0, r.out);
    const m = new RegExp(`triggered ${id('backup')}: started workflow (backup/${taskQueue}/scheduled-\\S+)`).exec(r.stdout);
    assert.ok(m, r.out);
    const again = await cli('schedules', 'trigger', 'backup');
    assert.equal(again.code, 1, again.out);
    assert.match(again.stderr, new RegExp(`${id('backup')} has a run in progress \\(${m[1]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\); not triggered`));
    const running = await listed();
    assert.deepEqual(running.backup!.running, [m[1]]);
    assert.equal(running.backup!.lastRun?.status, 'RUNNING');

    worker = await startCliWorker(env, ['--task-queue', taskQueue]);
    const result = await client.workflow.getHandle<() => Promise<BackupResult>>(m[1]!).result();
    assert.equal(result.status, 'complete');
    assert.match(result.session, /^backup_\d{8}_\d{6}_[a-z0-9]+$/, 'a scheduled run names its own session');
    assert.deepEqual(
      result.tenants.map((t) => t.tenant),
      [tenant],
    );
    assert.ok(existsSync(path.join(backupDir, 'sessions', result.session, 'manifest.json')));

    const now = await listed();
    assert.equal(now.backup!.lastRun?.workflowId, m[1]);
    assert.equal(now.backup!.lastRun?.status, 'COMPLETED');
    assert.equal(now.backup!.lastRun?.result, 'complete');
    const text = await cli('schedules', 'list');
    assert.match(text.stdout, new RegExp(`${id('backup')}\\s+active\\s+.*\\s+completed: complete`));
    // The CLI's session listing reads it like any other session.
    const sessions = await cli('sessions', 'list');
    assert.match(sessions.stdout, new RegExp(`${result.session}\\s+complete\\s+1/1`));
  });

  it('refuses a backup cadence that breaks DR_RPO_HOURS (nothing changed); --force applies it with a loud warning', async () => {
    const before = await describeSchedule('backup');
    assert.ok(before.raw.conflictToken?.length);
    const r = await cli('schedules', 'apply', '--backup-time', '01:30', '--test-schedule', 'monthly', '--monitor-interval', '30', '--backup-interval', '6');
    assert.equal(r.code, 2, r.out);
    assert.match(r.stderr, /backups every 6 h leave up to 6 h between two backups, more than DR_RPO_HOURS=4.*--force/);
    assert.deepEqual(Buffer.from((await describeSchedule('backup')).raw.conflictToken!), Buffer.from(before.raw.conflictToken), 'nothing was changed');

    const f = await cli(
      'schedules',
      'apply',
      '--backup-time',
      '01:30',
      '--test-schedule',
      'monthly',
      '--monitor-interval',
      '30',
      '--backup-interval',
      '6',
      '--force',
    );
    assert.equal(f.code, 0, f.out);
    assert.match(f.stderr, /^WARNING: --force: backups every 6 h/m);
    assert.match(f.stdout, /DR_RPO_HOURS=4 is NOT met \(--force\)/);
    assert.deepEqual(
      (await describeSchedule('backup')).spec.calendars?.[0]?.hour.map((h) => h.start),
      [1, 7, 13, 19],
    );
  });

  it('`remove` deletes our schedules only; `pause` of a removed one says how to create it', async () => {
    const r = await cli('--json', 'schedules', 'remove');
    assert.equal(r.code, 0, r.out);
    assert.deepEqual(changes(r.json()), { backup: 'remove', validation: 'remove', drill: 'remove', monitor: 'remove', cleanup: 'remove' });
    const now = await listed();
    assert.ok(Object.values(now).every((x) => !x.exists));
    const again = await cli('schedules', 'remove');
    assert.equal(again.code, 0);
    assert.match(again.stdout, new RegExp(`${id('backup')}: absent`));
    const p = await cli('schedules', 'pause', 'backup');
    assert.equal(p.code, 1);
    assert.match(p.stderr, new RegExp(`schedule ${id('backup')} does not exist; create it with: odoo-dr schedules apply`));
  });
});
