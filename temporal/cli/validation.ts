/**
 * `odoo-dr validate` (runs validationWorkflow) and `odoo-dr drill` (runs drillWorkflow): the checks
 * of a session, and the achieved RPO and projected RTO of a drill.
 */
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { DEFAULT_TASK_QUEUE, WorkflowNames, idStamp, workflowIds } from '../../workflows/definitions';
import type { DrillInput, DrillMode, DrillReport } from '../../workflows/drill';
import type { ValidationInput, ValidationReport } from '../../workflows/validation';
import {
  CliExit,
  EXIT,
  checkNames,
  formatBytes,
  formatDuration,
  formatTable,
  load,
  operatorIdentity,
  printWarnings,
  warnUnsigned,
  withTemporal,
} from './common';
import { globals } from './output';
import { reconnectTimeoutMs, waitForWorkflow } from './wait';

function printChecks(
  title: string,
  status: string,
  checks: Array<{ name: string; status: string; message: string; tenant?: string }>,
  reportPath?: string,
): void {
  process.stdout.write(`${title}: ${status.toUpperCase()}\n`);
  // Passing checks are summarized per check; anything else is shown in full.
  const rows: string[][] = [];
  const names = [...new Set(checks.map((c) => c.name))];
  for (const name of names) {
    const passed = checks.filter((c) => c.name === name && c.status === 'pass');
    if (passed.length === 1) rows.push(['PASS', name, passed[0]!.tenant ?? '-', passed[0]!.message]);
    else if (passed.length > 1) {
      const tenants = new Set(passed.map((c) => c.tenant ?? '-'));
      rows.push(['PASS', name, `${tenants.size} tenant(s)`, `${passed.length} checks passed`]);
    }
  }
  for (const c of checks.filter((x) => x.status !== 'pass')) rows.push([c.status.toUpperCase(), c.name, c.tenant ?? '-', c.message]);
  process.stdout.write(formatTable(['STATUS', 'CHECK', 'TENANT', 'MESSAGE'], rows));
  if (reportPath) process.stdout.write(`report (every check in full): ${reportPath}\n`);
}

function printDrill(r: DrillReport): void {
  process.stdout.write(`${r.mode} drill${r.cloud ? ' (cloud copy)' : ''}: ${r.status.toUpperCase()}, session ${r.session ?? '-'}\n`);
  const rows = r.tenants.map((t) => [
    t.tenant,
    t.status.toUpperCase(),
    t.achievedRpoHours === undefined ? '-' : `${t.achievedRpoHours.toFixed(2)} h`,
    t.restore ? formatDuration(t.restore.databaseMs + t.restore.filestoreMs) : '-',
    t.restore ? `${t.restore.secondsPerGiB.toFixed(0)} s/GiB` : '-',
    `${t.checks.passed}/${t.checks.passed + t.checks.failed}`,
  ]);
  process.stdout.write(formatTable(['TENANT', 'RESULT', 'ACHIEVED RPO', 'RESTORE', 'RATE', 'CHECKS OK'], rows));
  process.stdout.write(`RPO objective ${r.objectives.rpoHours} h\n`);
  if (r.projectedRto) {
    const p = r.projectedRto;
    process.stdout.write(
      `projected fleet RTO ${p.minutes < 1 ? `${(p.minutes * 60).toFixed(0)} s` : `${p.minutes.toFixed(1)} min`} for ${formatBytes(p.fleetBytes)} at ${p.secondsPerGiB.toFixed(0)} s/GiB, ${p.parallelism} at once: ${p.pass ? 'within' : 'OVER'} the ${p.targetMinutes} min objective\n`,
    );
  }
  for (const t of r.tenants) for (const f of t.failures) process.stdout.write(`  ${t.tenant}: ${f}\n`);
  for (const c of r.checks.filter((x) => x.status === 'fail' && !x.tenant)) process.stdout.write(`  ${c.name}: ${c.message}\n`);
  if (r.reportPath) process.stdout.write(`report: ${r.reportPath}\n`);
}

export function registerValidationCommands(program: Command, outcome: { code: number }): void {
  program
    .command('validate')
    .description(
      'Validate a backup session (runs validationWorkflow): manifest, checksums (local and cloud), decryption, archive integrity, filestore packs, age against the RPO; with --restore-test a real restore into a neutralized scratch copy with Odoo checks.',
    )
    .argument('[session]', 'session name or "latest"', 'latest')
    .option('--tenant <db>', 'only this tenant of the session')
    .option('--restore-test', 'restore each tenant into a scratch database and run the Odoo checks')
    .option('-c, --cloud', 'read the session from the bucket only (the local folder is not consulted)')
    .option('--no-cloud', 'read the local copy only and do not check the bucket')
    .option(
      '--allow-unsigned',
      'accept an UNSIGNED session (only for sessions made before signing was set up: anyone who can write to the backups could have made it)',
    )
    .option('--wait', 'wait for the report and print it')
    .addHelpText(
      'after',
      `
By default the session is read from this host's folder when it has it (and its cloud copy is
checked too), else from the bucket.

Examples:
  odoo-dr validate --wait                        the latest complete session
  odoo-dr validate -c latest --wait              from the bucket alone (the host is gone)
  odoo-dr validate latest --restore-test --tenant acme --wait
  odoo-dr --json validate backup_20261126_021503_k3x9q2 --wait

Exit code 1 when any check fails.`,
    )
    .action(
      async (
        sessionArg: string,
        cmdOpts: { tenant?: string; restoreTest?: boolean; cloud?: boolean; allowUnsigned?: boolean; wait?: boolean },
        cmd: Command,
      ) => {
        const { opts, out } = globals(cmd);
        checkNames({ session: sessionArg, ...(cmdOpts.tenant ? { tenants: [cmdOpts.tenant] } : {}) });
        const waitTimeout = reconnectTimeoutMs(opts);
        const config = load(opts);
        printWarnings(config);
        await withTemporal(config, async (client) => {
          const input: ValidationInput = {
            session: sessionArg,
            startedBy: operatorIdentity(),
            ...(cmdOpts.tenant ? { tenant: cmdOpts.tenant } : {}),
            ...(cmdOpts.restoreTest ? { restoreTest: true } : {}),
            ...(cmdOpts.cloud === true ? { source: 'cloud' as const, fromCloud: true } : {}),
            ...(cmdOpts.cloud === false ? { source: 'local' as const, cloud: false } : {}),
            ...(cmdOpts.allowUnsigned ? { allowUnsigned: warnUnsigned() } : {}),
          };
          if (cmdOpts.cloud && !config.cloud) throw new CliExit(EXIT.usage, '-c needs DR_CLOUD_BUCKET in the configuration');
          const handle = await client.workflow.start<(i: ValidationInput) => Promise<ValidationReport>>(WorkflowNames.validation, {
            taskQueue: config.taskQueue || DEFAULT_TASK_QUEUE,
            workflowId: workflowIds.validation(sessionArg, `${idStamp(new Date())}-${randomBytes(3).toString('hex')}`),
            args: [input],
            memo: { startedBy: operatorIdentity() },
          });
          process.stderr.write(`started validation of ${sessionArg} (workflow ${handle.workflowId})\n`);
          if (!cmdOpts.wait) {
            out.brief({ workflowId: handle.workflowId });
            return;
          }
          const report = await waitForWorkflow<(i: ValidationInput) => Promise<ValidationReport>>(handle.workflowId, {
            config,
            reconnectTimeoutMs: waitTimeout,
          });
          out.result(report, (r) => printChecks(`validation of ${r.session}${r.tenant ? ` (${r.tenant})` : ''}`, r.status, r.checks, r.reportPath));
          if (report.status !== 'pass') outcome.code = EXIT.failed;
        });
      },
    );

  program
    .command('drill')
    .description('Run a disaster-recovery drill (runs drillWorkflow) and report achieved RPO and projected RTO.')
    .option('-m, --mode <mode>', "full | backup-only | restore-only | validation-only (default full, as the seed's dr-test.sh)", 'full')
    .option('-c, --cloud', 'use the cloud copy (restore from S3, not local disk)')
    .option('--tenant <db...>', 'only these tenants')
    .option(
      '--allow-unsigned',
      'accept an UNSIGNED session (only for sessions made before signing was set up: anyone who can write to the backups could have made it)',
    )
    .option('--wait', 'wait for the report and print it')
    .addHelpText(
      'after',
      `
Examples:
  odoo-dr drill --wait                           full drill: back up, validate, restore into scratch
  odoo-dr drill -m restore-only --wait           restore tests from the latest complete session
  odoo-dr drill -m full -c --tenant acme --wait  back up, validate and restore acme from the bucket

Exit code 1 when the drill fails (a check, the RPO or the projected RTO).`,
    )
    .action(async (cmdOpts: { mode: string; cloud?: boolean; tenant?: string[]; allowUnsigned?: boolean; wait?: boolean }, cmd: Command) => {
      const { opts, out } = globals(cmd);
      checkNames({ ...(cmdOpts.tenant ? { tenants: cmdOpts.tenant } : {}) });
      const modes: DrillMode[] = ['full', 'backup-only', 'restore-only', 'validation-only'];
      if (!modes.includes(cmdOpts.mode as DrillMode)) {
        throw new CliExit(EXIT.usage, `--mode must be one of ${modes.join(', ')}, got "${cmdOpts.mode}"`);
      }
      const waitTimeout = reconnectTimeoutMs(opts);
      const config = load(opts);
      printWarnings(config);
      if (cmdOpts.cloud && !config.cloud) throw new CliExit(EXIT.usage, '-c needs DR_CLOUD_BUCKET in the configuration');
      await withTemporal(config, async (client) => {
        const input: DrillInput = {
          mode: cmdOpts.mode as DrillMode,
          cloud: Boolean(cmdOpts.cloud),
          startedBy: operatorIdentity(),
          ...(cmdOpts.tenant ? { tenants: cmdOpts.tenant } : {}),
          ...(cmdOpts.allowUnsigned ? { allowUnsigned: warnUnsigned() } : {}),
        };
        const handle = await client.workflow.start<(i: DrillInput) => Promise<DrillReport>>(WorkflowNames.drill, {
          taskQueue: config.taskQueue || DEFAULT_TASK_QUEUE,
          workflowId: workflowIds.drill(input.mode, `${idStamp(new Date())}-${randomBytes(3).toString('hex')}`),
          args: [input],
          memo: { startedBy: input.startedBy },
        });
        process.stderr.write(`started ${input.mode} drill (workflow ${handle.workflowId})\n`);
        if (!cmdOpts.wait) {
          out.brief({ workflowId: handle.workflowId });
          return;
        }
        const report = await waitForWorkflow<(i: DrillInput) => Promise<DrillReport>>(handle.workflowId, { config, reconnectTimeoutMs: waitTimeout });
        out.result(report, printDrill);
        if (report.status !== 'pass') outcome.code = EXIT.failed;
      });
    });
}
