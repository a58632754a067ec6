/**
 * `odoo-dr monitor` (run a monitoring check now) and `odoo-dr status` (print the last status
 * report, or one workflow's status). Exit codes as Nagios plugins: 0 OK, 1 WARNING, 2 CRITICAL,
 * 3 UNKNOWN (no check could run: Temporal unreachable, no report) — README "Monitoring and alerts".
 */
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { exitCodeFor, readStatusReport, statusReportPath, type StatusReport } from '../../src/monitor/report';
import type { MonitorCheck } from '../../src/monitor/checks';
import { DEFAULT_TASK_QUEUE, WorkflowNames, idStamp, workflowIds, type MonitorInput } from '../../workflows/definitions';
import type { MonitorResult } from '../../workflows/monitor';
import { CliExit, formatTable, load, operatorIdentity, printWarnings, withTemporal } from './common';
import { globals } from './output';
import { reconnectTimeoutMs, waitForWorkflow } from './wait';

/** 3: no check could run (the CLI's "service unreachable", Nagios UNKNOWN). */
const UNKNOWN = 3;

const MARK: Record<MonitorCheck['status'], string> = { ok: 'OK', warning: 'WARNING', critical: 'CRITICAL', unknown: 'UNKNOWN' };

function age(h: number | undefined): string {
  if (h === undefined) return '-';
  return h < 48 ? `${h.toFixed(1)} h` : `${(h / 24).toFixed(1)} d`;
}

/** The report, readably: a summary line, a table per tenant, then every check that is not ok. */
export function formatReport(r: StatusReport, opts: { all?: boolean } = {}): string {
  const out: string[] = [];
  const s = r.summary;
  out.push(
    `odoo-dr status: ${MARK[r.status]} (${s.critical} critical, ${s.warning} warning, ${s.ok} ok, ${s.unknown} unknown) — ${r.generatedAt} on ${r.host} (${r.workflowId})`,
  );
  out.push(
    `objectives: RPO ${r.objectives.rpoHours} h, backup age alert ${r.objectives.backupAgeSeconds / 3600} h, disk ${r.objectives.diskUsagePercent} %, drills every ${r.objectives.drillMaxAgeDays} d`,
  );
  out.push('');
  if (r.tenants.length) {
    out.push(
      formatTable(
        ['TENANT', 'LAST BACKUP', 'AGE', 'LAST VALIDATED', 'AGE', 'RPO'],
        r.tenants.map((t) => [
          t.tenant,
          t.lastBackup?.session ?? 'never backed up',
          age(t.lastBackup?.ageHours),
          t.lastValidated?.session ?? 'never',
          age(t.lastValidated?.ageHours),
          MARK[t.rpo],
        ]),
      ).trimEnd(),
    );
  } else out.push('no tenants found');
  out.push('');
  const shown = opts.all ? r.checks : r.checks.filter((c) => c.status !== 'ok');
  if (shown.length) {
    out.push(
      formatTable(
        ['STATUS', 'CHECK', 'VALUE', 'MESSAGE'],
        shown.map((c) => [MARK[c.status], c.id, c.value === null ? '-' : `${c.value}${c.unit && typeof c.value === 'number' ? ` ${c.unit}` : ''}`, c.message]),
      ).trimEnd(),
    );
    for (const c of shown.filter((x) => x.action && x.status !== 'ok' && x.status !== 'unknown')) out.push(`  → ${c.id}: ${c.action}`);
  } else out.push(`all ${r.checks.length} checks ok`);
  const a = r.alerts;
  if (a.enabled) {
    const ch = Object.entries(a.channels).map(([k, v]) => `${k} ${v.last} (${v.at})`);
    out.push(
      '',
      `alerts: ${a.active.length} active${a.sent.length ? `, sent now: ${a.sent.join('; ')}` : ''}${ch.length ? `; last delivery: ${ch.join(', ')}` : ''}${a.error ? `; ALERTS NOT PROCESSED: ${a.error}` : ''}`,
    );
  } else out.push('', 'alerts: not sent by this run (--no-alerts)');
  return `${out.join('\n')}\n`;
}

export function registerMonitorCommands(program: Command, outcome: { code: number }): void {
  program
    .command('monitor')
    .description(
      'Run a monitoring check now (monitorWorkflow): backup ages, completeness, cloud sync, disks, services, integrity, resources; writes DR_LOG_DIR/dr-status.json and alerts on changes.',
    )
    .option('--wait', 'wait for the report and print it; the exit code is the worst status')
    .option('--no-alerts', 'only look: do not report to the alert state (no e-mail, no webhook)')
    .option('--all', 'with --wait: list every check, not only those that are not ok')
    .addHelpText(
      'after',
      `
Examples:
  odoo-dr monitor --wait               check now, print the report
  odoo-dr --json monitor --wait        the report as JSON (the same as dr-status.json)
  odoo-dr monitor --wait --no-alerts   look without alerting

Exit codes with --wait (as Nagios plugins): 0 OK, 1 WARNING, 2 CRITICAL (also: bad command line or
configuration), 3 UNKNOWN (Temporal unreachable). Checks that cannot be measured here (unknown) do not
change the code.`,
    )
    .action(async (cmdOpts: { wait?: boolean; alerts: boolean; all?: boolean }, cmd: Command) => {
      const { opts, out } = globals(cmd);
      const waitTimeout = reconnectTimeoutMs(opts);
      const config = load(opts);
      printWarnings(config);
      await withTemporal(config, async (client) => {
        const input: MonitorInput = { alerts: cmdOpts.alerts, startedBy: operatorIdentity() };
        const handle = await client.workflow.start<(i: MonitorInput) => Promise<MonitorResult>>(WorkflowNames.monitor, {
          taskQueue: config.taskQueue || DEFAULT_TASK_QUEUE,
          workflowId: workflowIds.monitor(`${idStamp(new Date())}-${randomBytes(3).toString('hex')}`),
          args: [input],
          memo: { startedBy: input.startedBy },
          workflowExecutionTimeout: '30 minutes',
        });
        process.stderr.write(`started monitoring check (workflow ${handle.workflowId})\n`);
        if (!cmdOpts.wait) {
          out.brief({ workflowId: handle.workflowId });
          return;
        }
        const report = await waitForWorkflow<(i: MonitorInput) => Promise<MonitorResult>>(handle.workflowId, { config, reconnectTimeoutMs: waitTimeout });
        out.result(report, (r) => process.stdout.write(formatReport(r, { all: cmdOpts.all ?? false }) + `report: ${r.reportPath}\n`));
        outcome.code = exitCodeFor(report.status);
      });
    });

  program
    .command('status [workflowId]')
    .description("Print the last status report (DR_LOG_DIR/dr-status.json, written by the monitor), or a workflow's status when a workflow ID is given.")
    .option('--all', 'list every check, not only those that are not ok')
    .option('--max-age <minutes>', 'a report older than this is itself CRITICAL (the monitor stopped running); default: 3 × 60')
    .addHelpText(
      'after',
      `
Examples:
  odoo-dr status                       table per tenant: last backup, last validation, RPO state
  odoo-dr --json status                the report as JSON
  odoo-dr status monitor/20261126-…    one workflow's state

Exit codes (report): 0 OK, 1 WARNING, 2 CRITICAL (also when the report is older than --max-age),
3 UNKNOWN (no readable report).`,
    )
    .action(async (workflowId: string | undefined, cmdOpts: { all?: boolean; maxAge?: string }, cmd: Command) => {
      const { opts, out } = globals(cmd);
      const config = load(opts);
      if (workflowId) {
        await withTemporal(config, async (client) => {
          const d = await client.workflow.getHandle(workflowId).describe();
          const info = {
            workflowId: d.workflowId,
            runId: d.runId,
            type: d.type,
            status: d.status.name,
            taskQueue: d.taskQueue,
            startTime: d.startTime.toISOString(),
            closeTime: d.closeTime?.toISOString() ?? null,
            historyLength: d.historyLength,
          };
          out.result(info, (i) =>
            process.stdout.write(
              `${Object.entries(i)
                .map(([k, v]) => `${k.padEnd(14)} ${v ?? '-'}`)
                .join('\n')}\n`,
            ),
          );
          if (['FAILED', 'TERMINATED', 'TIMED_OUT', 'CANCELLED'].includes(d.status.name)) outcome.code = 1;
        });
        return;
      }
      const maxAgeMinutes = cmdOpts.maxAge === undefined ? 180 : Number(cmdOpts.maxAge);
      if (!Number.isFinite(maxAgeMinutes) || maxAgeMinutes <= 0)
        throw new CliExit(2, `--max-age must be a positive number of minutes, got "${cmdOpts.maxAge}"`);
      const file = statusReportPath(config.logDir);
      let report: StatusReport;
      try {
        report = await readStatusReport(file);
      } catch (err) {
        throw new CliExit(UNKNOWN, (err as Error).message);
      }
      const ageMin = (Date.now() - Date.parse(report.generatedAt)) / 60_000;
      const stale = ageMin > maxAgeMinutes;
      out.result({ ...report, stale }, (r) => process.stdout.write(formatReport(r, { all: cmdOpts.all ?? false })));
      if (stale)
        process.stderr.write(
          `CRITICAL: the report is ${Math.round(ageMin)} min old (more than ${maxAgeMinutes}): is the monitor schedule running? (odoo-dr schedules list)\n`,
        );
      outcome.code = stale ? 2 : exitCodeFor(report.status);
    });
}
