/**
 * `odoo-dr schedules apply|list|pause|unpause|trigger|remove`: the seed's setup-automation.sh on
 * Temporal Schedules. The plan comes from the configuration (src/automation/schedules.ts), flags
 * override it; temporal/schedules.ts talks to Temporal.
 */
import type { Command } from 'commander';
import { AutomationPlanError, SCHEDULE_KINDS, formatMinutes, planSchedules, type AutomationFlags, type ScheduleKind } from '../../src/automation/schedules';
import type { DrConfig } from '../../src/config';
import { scheduleId } from '../../workflows/definitions';
import { CliExit, EXIT, formatTable, load, operatorIdentity, printWarnings, withTemporal } from './common';
import { globals } from './output';
import {
  ScheduleRunInProgressError,
  applySchedules,
  automationSettings,
  listSchedules,
  removeSchedules,
  setPaused,
  triggerSchedule,
  type AppliedSchedule,
  type ScheduleState,
} from '../schedules';

interface ApplyOptions extends AutomationFlags {
  dryRun?: boolean;
}

/** `backup` or its full ID `odoo-dr/backup` → the schedule's name (exit 2 otherwise). */
function scheduleName(raw: string, taskQueue: string): ScheduleKind {
  const name = SCHEDULE_KINDS.find((k) => k === raw || scheduleId(k, taskQueue) === raw);
  if (!name)
    throw new CliExit(
      EXIT.usage,
      `unknown schedule "${raw}": expected one of ${SCHEDULE_KINDS.join(', ')} (or its ID, e.g. ${scheduleId('backup', taskQueue)})`,
    );
  return name;
}

const VERB: Record<AppliedSchedule['change'], [done: string, planned: string]> = {
  create: ['created', 'would create'],
  update: ['updated', 'would update'],
  unchanged: ['unchanged', 'unchanged'],
  remove: ['removed', 'would remove'],
  absent: ['absent (disabled)', 'absent (disabled)'],
};

function printApplied(rows: AppliedSchedule[], dryRun: boolean): void {
  process.stdout.write(
    formatTable(
      ['SCHEDULE', 'CHANGE', 'WHEN'],
      rows.map((r) => [r.scheduleId, `${VERB[r.change][dryRun ? 1 : 0]}${r.differences?.length ? ` (${r.differences.join(', ')})` : ''}`, r.summary ?? '']),
    ),
  );
}

const shortTime = (iso: string | undefined) => (iso ? `${iso.slice(0, 16).replace('T', ' ')}Z` : '');

function printStates(rows: ScheduleState[]): void {
  process.stdout.write(
    formatTable(
      ['SCHEDULE', 'STATE', 'WHEN', 'NEXT RUN', 'LAST RUN', 'RESULT'],
      rows.map((r) => {
        if (!r.exists) return [r.scheduleId, 'absent', '', '', '', ''];
        const last = r.lastRun;
        const result = last ? [last.status.toLowerCase(), last.result, last.error].filter(Boolean).join(': ') : '';
        return [r.scheduleId, r.paused ? 'paused' : 'active', r.summary ?? '', shortTime(r.nextRuns?.[0]), shortTime(last?.scheduledAt), result];
      }),
    ),
  );
  for (const r of rows) {
    if (r.paused && r.note) process.stdout.write(`${r.scheduleId} paused: ${r.note}\n`);
    if (r.lastRun) process.stdout.write(`${r.scheduleId} last run: workflow ${r.lastRun.workflowId}\n`);
  }
}

function printPlanErrors(err: unknown): never {
  if (err instanceof AutomationPlanError) throw new CliExit(EXIT.usage, err.message);
  throw err;
}

export function registerScheduleCommands(program: Command, outcome: { code: number }): void {
  const schedules = program
    .command('schedules')
    .description("Temporal Schedules for backups, validation, drills, monitoring and cleanup (the seed's setup-automation.sh).")
    .addHelpText(
      'after',
      `
Examples:
  odoo-dr schedules apply --dry-run                    what would be created or changed
  odoo-dr schedules apply                              create or update them from the configuration
  odoo-dr schedules list                               next run, last run and its result
  odoo-dr schedules pause backup --note "disk swap"    (unpause backup when done)
  odoo-dr schedules trigger backup                     a backup now, as the schedule would start it
  odoo-dr schedules remove                             delete odoo-dr's schedules (runs in progress go on)`,
    );

  schedules
    .command('apply')
    .description('Create or update the schedules from the configuration (idempotent: applying twice changes nothing); flags override the configuration.')
    .option('--backup-time <HH:MM>', 'first backup of the day (default DR_BACKUP_TIME, 02:00)')
    .option('--backup-interval <hours>', 'hours between backups (default DR_BACKUP_INTERVAL_HOURS, else DR_RPO_HOURS)')
    .option('--test-schedule <cadence>', 'drill cadence: daily | weekly | monthly (default DR_TEST_SCHEDULE, weekly)')
    .option('--monitor-interval <minutes>', 'minutes between monitoring checks (default DR_MONITORING_INTERVAL / 60)')
    .option('--jitter <minutes>', 'start runs up to this many minutes late, at random (default DR_SCHEDULE_JITTER_MINUTES, 0)')
    .option('--force', 'accept a backup cadence that breaks DR_RPO_HOURS (loud warning)')
    .option('--dry-run', 'print the plan and change nothing')
    .addHelpText(
      'after',
      `
Examples:
  odoo-dr schedules apply                         the defaults: backups every DR_RPO_HOURS from 02:00, validation 03:00,
                                                  drill Sundays 04:00, monitoring hourly, cleanup 05:00 (DR_SCHEDULE_TIMEZONE)
  odoo-dr schedules apply --backup-time 01:30 --test-schedule monthly --dry-run
  odoo-dr --json schedules apply                  what changed, as JSON

Exit code 2 when a flag is invalid or the backup cadence breaks the RPO (nothing is changed).`,
    )
    .action(async (cmdOpts: ApplyOptions, cmd: Command) => {
      const { opts, out } = globals(cmd);
      const config = load(opts);
      printWarnings(config);
      let plan;
      try {
        plan = planSchedules(automationSettings(config), cmdOpts);
      } catch (err) {
        printPlanErrors(err);
      }
      for (const w of plan.warnings) process.stderr.write(`${w}\n`);
      const dryRun = Boolean(cmdOpts.dryRun);
      await withTemporal(config, async (client) => {
        const rows = await applySchedules(client, plan, config.taskQueue, { dryRun });
        out.result({ taskQueue: config.taskQueue, dryRun, rpo: plan.rpo, warnings: plan.warnings, schedules: rows }, ({ rpo }) => {
          printApplied(rows, dryRun);
          process.stdout.write(
            `RPO: at most ${formatMinutes(rpo.largestGapMinutes)} between two backups; DR_RPO_HOURS=${rpo.rpoHours} ${rpo.ok ? 'is met' : 'is NOT met (--force)'}\n`,
          );
          if (dryRun) process.stdout.write('dry run: nothing was changed\n');
          else process.stdout.write(`runs need a worker on task queue ${config.taskQueue}: odoo-dr worker\n`);
        });
      });
    });

  schedules
    .command('list')
    .description('Show the schedules: state, cadence, next run, last run and its result.')
    .action(async (_: unknown, cmd: Command) => {
      const { opts, out } = globals(cmd);
      const config = load(opts);
      printWarnings(config);
      await withTemporal(config, async (client) => {
        const rows = await listSchedules(client, config.taskQueue);
        out.result({ taskQueue: config.taskQueue, schedules: rows }, () => printStates(rows));
      });
    });

  const pauseCommand = (verb: 'pause' | 'unpause') =>
    schedules
      .command(`${verb} <name>`)
      .description(
        `${verb === 'pause' ? 'Pause' : 'Unpause'} a schedule (${SCHEDULE_KINDS.join(', ')}); the note is shown in the Temporal UI and \`schedules list\`.`,
      )
      .option('--note <text>', 'why (recorded on the schedule)')
      .action(async (raw: string, cmdOpts: { note?: string }, cmd: Command) => {
        const { opts, out } = globals(cmd);
        const config = load(opts);
        const name = scheduleName(raw, config.taskQueue);
        const note = `${verb}d by ${operatorIdentity()} via odoo-dr${cmdOpts.note ? `: ${cmdOpts.note}` : ''}`;
        await withTemporal(config, async (client) => {
          const id = await setPaused(client, name, config.taskQueue, verb === 'pause', note).catch(notFound(config, name));
          out.brief({ scheduleId: id, paused: verb === 'pause', note }, () => process.stdout.write(`${verb}d ${id} (${note})\n`));
        });
      });
  pauseCommand('pause');
  pauseCommand('unpause');

  schedules
    .command('trigger <name>')
    .description("Run a schedule's workflow now (refused while one of its runs is still going).")
    .action(async (raw: string, _: unknown, cmd: Command) => {
      const { opts, out } = globals(cmd);
      const config = load(opts);
      const name = scheduleName(raw, config.taskQueue);
      await withTemporal(config, async (client) => {
        let workflowId: string;
        try {
          workflowId = await triggerSchedule(client, name, config.taskQueue).catch(notFound(config, name));
        } catch (err) {
          if (!(err instanceof ScheduleRunInProgressError)) throw err;
          process.stderr.write(`odoo-dr: ${err.message}\n`);
          outcome.code = EXIT.failed;
          return;
        }
        out.brief({ scheduleId: scheduleId(name, config.taskQueue), workflowId }, (r) =>
          process.stdout.write(`triggered ${r.scheduleId}: started workflow ${r.workflowId}\n`),
        );
      });
    });

  schedules
    .command('remove [names...]')
    .description(
      `Delete our schedules (all, or the named ones: ${SCHEDULE_KINDS.join(', ')}); running workflows go on. Only odoo-dr's schedule IDs are touched.`,
    )
    .action(async (raw: string[], _: unknown, cmd: Command) => {
      const { opts, out } = globals(cmd);
      const config = load(opts);
      const names = raw.length ? raw.map((r) => scheduleName(r, config.taskQueue)) : SCHEDULE_KINDS;
      await withTemporal(config, async (client) => {
        const rows = await removeSchedules(client, config.taskQueue, names);
        out.result({ taskQueue: config.taskQueue, schedules: rows }, () => {
          for (const r of rows) process.stdout.write(`${r.scheduleId}: ${r.change === 'remove' ? 'removed' : 'absent'}\n`);
        });
      });
    });
}

/** A schedule that does not exist: say how to create it (exit 1). */
function notFound(config: DrConfig, name: ScheduleKind) {
  return (err: unknown): never => {
    if ((err as Error).name === 'ScheduleNotFoundError') {
      throw new CliExit(EXIT.failed, `schedule ${scheduleId(name, config.taskQueue)} does not exist; create it with: odoo-dr schedules apply`);
    }
    throw err;
  };
}
