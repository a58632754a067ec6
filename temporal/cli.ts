/**
 * `odoo-dr`: the operator's CLI. Every command accepts `--config FILE` and `--json` (data on
 * stdout, diagnostics on stderr). Exit codes are documented in EXIT and in the README.
 *
 * Start-up time counts (every `backup --wait` pays it): what only one command needs (the worker and
 * its native code, the S3 SDK, signing keys, the recovery planner) is loaded by that command.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import path from 'node:path';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { Command, CommanderError } from 'commander';
import { redactConfig } from '../src/config';
import { existsSync } from 'node:fs';
import type { BackupInput, BackupResult } from '../workflows/backup';
import {
  DEFAULT_TASK_QUEUE,
  WorkflowNames,
  backupProgressQuery,
  backupSessionName,
  idStamp,
  workflowIds,
  type BackupProgress,
} from '../workflows/definitions';
import type { TenantDiscoveryInput, TenantDiscoveryResult } from '../workflows/discovery';
import type { DrillInput, DrillMode, DrillReport } from '../workflows/drill';
import type { ValidationInput, ValidationReport } from '../workflows/validation';
import { approveSignal, recoveryStatusQuery, rejectSignal, type RecoveryInput, type RecoveryResult, type RecoveryStatus } from '../workflows/recovery';
import type { RecoveryMode } from '../src/recovery/plan';
import { connectWorker, temporalSettings } from './connection';
import { registerInteropCommands } from './cli/interop';
import { registerScheduleCommands } from './cli/schedules';
import { registerSetupCommands } from './cli/setup';
import { registerMonitorCommands } from './cli/monitor';
import { registerCleanupCommands } from './cli/cleanup';

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
  type GlobalOptions,
} from './cli/common';

export { CliExit, EXIT, formatTable, load, operatorIdentity, printWarnings, withTemporal, type GlobalOptions } from './cli/common';
import { commandFailure } from './cli/exit-codes';
import { DEFAULT_RECONNECT_TIMEOUT_MINUTES, reconnectTimeoutMs, waitForWorkflow } from './cli/wait';
export { isTemporalUnavailable, reconnectTimeoutMs, waitForWorkflow, type WaitSettings } from './cli/wait';

function printDiscovery(result: TenantDiscoveryResult): void {
  const rows = result.tenants.map((t) => [
    t.name,
    formatBytes(t.databaseBytes),
    t.filestoreExists ? 'yes' : 'no',
    t.connectable ? 'yes' : 'NO',
  ]);
  process.stdout.write(formatTable(['TENANT', 'DATABASE', 'FILESTORE', 'CONNECTABLE'], rows));
  process.stdout.write(`${result.tenants.length} tenant(s) owned by role "${result.odooRole}"\n`);
  if (result.excluded.length) process.stdout.write(`excluded: ${result.excluded.join(', ')}\n`);
  if (result.missing.length) process.stderr.write(`not tenants (absent, not owned by ${result.odooRole}, or templates): ${result.missing.join(', ')}\n`);
  if (result.invalidNames.length) {
    process.stderr.write(`ignored, names Odoo refuses: ${result.invalidNames.map((n) => JSON.stringify(n)).join(', ')}\n`);
  }
}

/** `outcome.code` is set by actions that end with a non-zero exit code. */
export function buildProgram(outcome: { code: number } = { code: 0 }): Command {
  const program = new Command('odoo-dr')
    .description('Disaster recovery for multi-tenant Odoo, on Temporal.')
    .option('--config <file>', 'configuration file (default: $DR_CONFIG or config/dr-config.env)')
    .option('--json', 'print data as JSON on stdout (diagnostics stay on stderr)')
    .option(
      '--reconnect-timeout <minutes>',
      `while waiting (--wait), how long Temporal may stay unreachable before odoo-dr stops waiting with exit code 3; the workflow keeps running (default ${DEFAULT_RECONNECT_TIMEOUT_MINUTES})`,
    )
    .showHelpAfterError()
    .exitOverride();
  program.addHelpText(
    'after',
    `
Examples:
  odoo-dr --config config/dr-config.local.env worker     run the worker (SIGINT/SIGTERM stop it cleanly)
  odoo-dr tenants                                        list the tenants odoo-dr would back up
  odoo-dr config check --json                            validate the configuration

Exit codes: 0 ok, 1 failed, 2 bad usage or configuration, 3 a service is unreachable (also when
Temporal stays unreachable for --reconnect-timeout while a command waits: the workflow keeps running).`,
  );

  program
    .command('worker')
    .description('Run the odoo-dr worker: executes workflows and activities until SIGINT or SIGTERM.')
    .option('--task-queue <name>', 'task queue (default: DR_TASK_QUEUE)')
    .action(async (cmdOpts: { taskQueue?: string }, cmd: Command) => {
      const opts = cmd.optsWithGlobals<GlobalOptions>();
      const config = load(opts);
      printWarnings(config);
      const { connection, namespace } = await connectWorker(config).catch((err: Error) => {
        throw new CliExit(EXIT.unavailable, err.message);
      });
      const taskQueue = cmdOpts.taskQueue ?? config.taskQueue;
      const { createWorker } = await import('./worker.js');
      const worker = await createWorker({ config, connection, namespace, taskQueue });
      for (const left of worker.swept) process.stderr.write(`odoo-dr worker: removed what a dead worker left: ${left}\n`);
      process.stderr.write(
        `odoo-dr worker: namespace ${namespace}, task queue ${taskQueue} (and its own ${worker.workerQueue}), ${temporalSettings(config).connectionOptions.address}\n`,
      );
      process.stderr.write(`odoo-dr worker: ${worker.workflowCode}\n`);
      // Worker.run resolves after SIGINT/SIGTERM once in-flight tasks finished or the grace time passed.
      await worker.run();
      await connection.close();
      process.stderr.write('odoo-dr worker: stopped\n');
    });

  program
    .command('tenants')
    .description("List the tenants: Odoo's rule (owned by the Odoo role, connectable, not a template) and the DR_TENANTS/DR_EXCLUDE_TENANTS filters. Runs tenantDiscoveryWorkflow.")
    .option('--tenant <db...>', 'only these tenants')
    .option('--exclude <db...>', 'leave these out')
    .action(async (cmdOpts: { tenant?: string[]; exclude?: string[] }, cmd: Command) => {
      const opts = cmd.optsWithGlobals<GlobalOptions>();
      const waitTimeout = reconnectTimeoutMs(opts);
      const config = load(opts);
      printWarnings(config);
      await withTemporal(config, async (client) => {
        const input: TenantDiscoveryInput = {};
        if (cmdOpts.tenant) input.include = cmdOpts.tenant;
        if (cmdOpts.exclude) input.exclude = cmdOpts.exclude;
        const handle = await client.workflow.start<(i: TenantDiscoveryInput) => Promise<TenantDiscoveryResult>>(WorkflowNames.tenantDiscovery, {
          taskQueue: config.taskQueue || DEFAULT_TASK_QUEUE,
          workflowId: workflowIds.tenantDiscovery(`${idStamp(new Date())}-${Math.random().toString(36).slice(2, 8)}`),
          args: [input],
          memo: { startedBy: operatorIdentity() },
          workflowExecutionTimeout: '10 minutes',
        });
        const result = await waitForWorkflow<(i: TenantDiscoveryInput) => Promise<TenantDiscoveryResult>>(handle.workflowId, { config, reconnectTimeoutMs: waitTimeout });
        if (opts.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        else printDiscovery(result);
        if (result.missing.length) outcome.code = EXIT.failed;
      });
    });


  program
    .command('backup')
    .description('Back up tenants (database, filestore), cluster globals and configuration: runs backupWorkflow.')
    .option('--tenant <db...>', 'only these tenants (default: all)')
    .option('--no-cloud', 'local copy only, even when DR_CLOUD_BUCKET is set')
    .option('--wait', 'wait for the session to finish, showing progress, then print its summary')
    .option('--no-retention', 'do not apply retention after the session')
    .addHelpText('after', `
Examples:
  odoo-dr backup --wait                       back up every tenant, wait, print the summary
  odoo-dr backup --tenant acme --no-cloud     one tenant, local only, do not wait
  odoo-dr --json backup --wait                summary as JSON (exit 1 if not complete)`)
    .action(async (cmdOpts: { tenant?: string[]; cloud: boolean; wait?: boolean; retention: boolean }, cmd: Command) => {
      const opts = cmd.optsWithGlobals<GlobalOptions>();
      checkNames({ ...(cmdOpts.tenant ? { tenants: cmdOpts.tenant } : {}) });
      const waitTimeout = reconnectTimeoutMs(opts);
      const config = load(opts);
      printWarnings(config);
      await withTemporal(config, async (client) => {
        const session = backupSessionName(new Date(), randomBytes(6).toString('hex'));
        const input: BackupInput = {
          session,
          cloud: cmdOpts.cloud && config.cloud !== undefined,
          startedBy: operatorIdentity(),
          retention: cmdOpts.retention,
          ...(cmdOpts.tenant ? { tenants: cmdOpts.tenant } : {}),
        };
        const handle = await client.workflow.start<(i: BackupInput) => Promise<BackupResult>>(WorkflowNames.backup, {
          taskQueue: config.taskQueue || DEFAULT_TASK_QUEUE,
          workflowId: workflowIds.backup(session),
          args: [input],
          memo: { startedBy: input.startedBy },
        });
        process.stderr.write(`started backup session ${session} (workflow ${handle.workflowId}${input.cloud ? ', with cloud copy' : ', local only'})\n`);
        if (!cmdOpts.wait) {
          if (opts.json) process.stdout.write(`${JSON.stringify({ session, workflowId: handle.workflowId })}\n`);
          else process.stdout.write(`follow it in the Temporal UI (workflow ${handle.workflowId}) or: temporal workflow result --workflow-id ${handle.workflowId}\n`);
          return;
        }
        const result = await waitForWorkflow<(i: BackupInput) => Promise<BackupResult>>(handle.workflowId, {
          config,
          reconnectTimeoutMs: waitTimeout,
          follow: ['odoo-dr sessions list'],
          ...(opts.json ? {} : { progress: backupProgress }),
        });
        if (opts.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        else printBackupResult(result);
        if (result.status !== 'complete') outcome.code = EXIT.failed;
      });
    });


  program
    .command('validate')
    .description('Validate a backup session (runs validationWorkflow): manifest, checksums (local and cloud), decryption, archive integrity, filestore packs, age against the RPO; with --restore-test a real restore into a neutralized scratch copy with Odoo checks.')
    .argument('[session]', 'session name or "latest"', 'latest')
    .option('--tenant <db>', 'only this tenant of the session')
    .option('--restore-test', 'restore each tenant into a scratch database and run the Odoo checks')
    .option('-c, --cloud', 'read the session from the bucket only (the local folder is not consulted)')
    .option('--no-cloud', 'read the local copy only and do not check the bucket')
    .option('--allow-unsigned', 'accept an UNSIGNED session (only for sessions made before signing was set up: anyone who can write to the backups could have made it)')
    .option('--wait', 'wait for the report and print it')
    .addHelpText('after', `
By default the session is read from this host's folder when it has it (and its cloud copy is
checked too), else from the bucket.

Examples:
  odoo-dr validate --wait                        the latest complete session
  odoo-dr validate -c latest --wait              from the bucket alone (the host is gone)
  odoo-dr validate latest --restore-test --tenant acme --wait
  odoo-dr --json validate backup_20261126_021503_k3x9q2 --wait

Exit code 1 when any check fails.`)
    .action(async (sessionArg: string, cmdOpts: { tenant?: string; restoreTest?: boolean; cloud?: boolean; allowUnsigned?: boolean; wait?: boolean }, cmd: Command) => {
      const opts = cmd.optsWithGlobals<GlobalOptions>();
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
          if (opts.json) process.stdout.write(`${JSON.stringify({ workflowId: handle.workflowId })}\n`);
          return;
        }
        const report = await waitForWorkflow<(i: ValidationInput) => Promise<ValidationReport>>(handle.workflowId, { config, reconnectTimeoutMs: waitTimeout });
        if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        else printChecks(`validation of ${report.session}${report.tenant ? ` (${report.tenant})` : ''}`, report.status, report.checks, report.reportPath);
        if (report.status !== 'pass') outcome.code = EXIT.failed;
      });
    });

  program
    .command('drill')
    .description('Run a disaster-recovery drill (runs drillWorkflow) and report achieved RPO and projected RTO.')
    .option('-m, --mode <mode>', 'full | backup-only | restore-only | validation-only (default full, as the seed\'s dr-test.sh)', 'full')
    .option('-c, --cloud', 'use the cloud copy (restore from S3, not local disk)')
    .option('--tenant <db...>', 'only these tenants')
    .option('--allow-unsigned', 'accept an UNSIGNED session (only for sessions made before signing was set up: anyone who can write to the backups could have made it)')
    .option('--wait', 'wait for the report and print it')
    .addHelpText('after', `
Examples:
  odoo-dr drill --wait                           full drill: back up, validate, restore into scratch
  odoo-dr drill -m restore-only --wait           restore tests from the latest complete session
  odoo-dr drill -m full -c --tenant acme --wait  back up, validate and restore acme from the bucket

Exit code 1 when the drill fails (a check, the RPO or the projected RTO).`)
    .action(async (cmdOpts: { mode: string; cloud?: boolean; tenant?: string[]; allowUnsigned?: boolean; wait?: boolean }, cmd: Command) => {
      const opts = cmd.optsWithGlobals<GlobalOptions>();
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
          if (opts.json) process.stdout.write(`${JSON.stringify({ workflowId: handle.workflowId })}\n`);
          return;
        }
        const report = await waitForWorkflow<(i: DrillInput) => Promise<DrillReport>>(handle.workflowId, { config, reconnectTimeoutMs: waitTimeout });
        if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        else printDrill(report);
        if (report.status !== 'pass') outcome.code = EXIT.failed;
      });
    });


  const recover = program
    .command('recover')
    .description('Recover tenants from a backup session (runs recoveryWorkflow): plan, approval, shadow restore and verification, Odoo stopped, atomic swap, Odoo started, health; rolled back on failure.')
    .option('-m, --mode <mode>', 'full | database-only | files-only | config-only', 'full')
    .option('-c, --cloud', 'restore from the bucket (when the local session is gone)')
    .argument('[session]', 'session name or "latest" (same as -s; the seed\'s disaster-recovery.sh took it so)')
    .option('-s, --session <name>', 'session name or "latest" (default latest)')
    .option('--tenant <db...>', 'only these tenants (default: every tenant of the session)')
    .option('-t, --dry-run', 'print the plan and change nothing')
    .option('--yes', 'approve at start (scripted use); the approval is recorded in the audit log')
    .option('--force', 'allow a session that failed validation')
    .option('--approval-timeout <minutes>', 'minutes to wait for approval before ending without changes (default: DR_APPROVAL_TIMEOUT_MINUTES)')
    .option('--backup-first', 'back up the tenants (a normal session) before the swap, on top of the pre-recovery copy')
    .option('--all', 'site recovery (mode full): cluster roles, the configuration, then every tenant of the session')
    .option('--config-target <dir>', 'put the configuration archive under this folder for review instead of back in DR_CONFIG_PATHS')
    .option('--resume <workflowId>', 'run an earlier recovery again with its session and options: what it recovered and verified is skipped')
    .option('--allow-unsigned', 'accept an UNSIGNED session (only for sessions made before signing was set up: anyone who can write to the backups could have made it)')
    .option('--wait', 'wait for the end and print the result')
    .addHelpText('after', `
Examples:
  odoo-dr recover -m database-only --tenant acme -t          show the plan only
  odoo-dr recover -m database-only -c latest --tenant acme   the session may be given as an argument
  odoo-dr recover -m database-only --tenant acme --wait      then approve from another terminal:
  odoo-dr recover approve recovery/acme/20261126031500
  odoo-dr recover -m full -c --tenant acme --yes --wait      scripted, from the bucket
  odoo-dr recover -m full -c --all --yes --wait              site loss: roles, configuration, every tenant
  odoo-dr recover --resume recovery/fleet/20261126031500 --yes --wait

Exit codes: 0 recovered (or plan shown), 1 failed, rolled back, rejected or expired, 2 bad input.`)
    .action(async (sessionArg: string | undefined, cmdOpts: { mode: string; cloud?: boolean; session?: string; tenant?: string[]; dryRun?: boolean; yes?: boolean; force?: boolean; approvalTimeout?: string; backupFirst?: boolean; all?: boolean; configTarget?: string; resume?: string; allowUnsigned?: boolean; wait?: boolean }, cmd: Command) => {
      const opts = cmd.optsWithGlobals<GlobalOptions>();
      if (sessionArg !== undefined && cmdOpts.session !== undefined) {
        throw new CliExit(EXIT.usage, `the session is given twice ("${sessionArg}" and -s "${cmdOpts.session}"): give it either as an argument or with -s`);
      }
      const session = sessionArg ?? cmdOpts.session ?? 'latest';
      if (cmdOpts.resume && (sessionArg ?? cmdOpts.session) !== undefined) throw new CliExit(EXIT.usage, '--resume runs the earlier recovery with its own session: do not name one');
      checkNames({ session, ...(cmdOpts.tenant ? { tenants: cmdOpts.tenant } : {}) });
      const { RECOVERY_MODES } = await import('../src/recovery/plan.js');
      if (!RECOVERY_MODES.includes(cmdOpts.mode as RecoveryMode)) {
        throw new CliExit(EXIT.usage, `--mode must be one of ${RECOVERY_MODES.join(', ')}, got "${cmdOpts.mode}"`);
      }
      const waitTimeout = reconnectTimeoutMs(opts);
      const config = load(opts);
      const timeout = cmdOpts.approvalTimeout === undefined ? config.approvalTimeoutMinutes : Number(cmdOpts.approvalTimeout);
      if (!Number.isInteger(timeout) || timeout < 1) throw new CliExit(EXIT.usage, `--approval-timeout must be a whole number of minutes, got "${cmdOpts.approvalTimeout}"`);
      printWarnings(config);
      if (cmdOpts.cloud && !config.cloud) throw new CliExit(EXIT.usage, '-c needs DR_CLOUD_BUCKET in the configuration');
      if (cmdOpts.all && cmdOpts.tenant) throw new CliExit(EXIT.usage, '--all recovers every tenant of the session: do not name tenants with it');
      if (cmdOpts.all && cmdOpts.mode !== 'full') throw new CliExit(EXIT.usage, '--all is a site recovery: it goes with -m full');
      if (cmdOpts.configTarget !== undefined && !path.isAbsolute(cmdOpts.configTarget)) throw new CliExit(EXIT.usage, `--config-target must be an absolute folder, got "${cmdOpts.configTarget}"`);
      await withTemporal(config, async (client) => {
        const who = operatorIdentity();
        const earlier = cmdOpts.resume ? await resumeInput(client, cmdOpts.resume) : undefined;
        const input: RecoveryInput = earlier ? { ...earlier, startedBy: who, dryRun: Boolean(cmdOpts.dryRun), ...(cmdOpts.yes ? { approvedBy: who } : {}) } : {
          mode: cmdOpts.mode as RecoveryMode,
          session,
          fromCloud: Boolean(cmdOpts.cloud),
          dryRun: Boolean(cmdOpts.dryRun),
          approvalTimeoutMinutes: timeout,
          force: Boolean(cmdOpts.force),
          backupFirst: Boolean(cmdOpts.backupFirst),
          startedBy: who,
          ...(cmdOpts.yes ? { approvedBy: who } : {}),
          ...(cmdOpts.tenant ? { tenants: cmdOpts.tenant } : {}),
          ...(cmdOpts.all ? { site: true } : {}),
          ...(cmdOpts.configTarget ? { configTarget: cmdOpts.configTarget } : {}),
          ...(cmdOpts.allowUnsigned ? { allowUnsigned: warnUnsigned() } : {}),
        };
        if (earlier) process.stderr.write(`resuming ${cmdOpts.resume}: ${input.mode} recovery from ${input.session ?? 'latest'}; tenants already recovered and verified are skipped\n`);
        const target = input.tenants?.length === 1 ? input.tenants[0]! : input.mode === 'config-only' ? 'config' : input.site ? 'site' : 'fleet';
        const handle = await client.workflow.start<(i: RecoveryInput) => Promise<RecoveryResult>>(WorkflowNames.recovery, {
          taskQueue: config.taskQueue || DEFAULT_TASK_QUEUE,
          workflowId: workflowIds.recovery(target, idStamp(new Date()).replace('-', '')),
          args: [input],
          memo: { startedBy: who },
        });
        process.stderr.write(`started ${input.mode} recovery (workflow ${handle.workflowId})${input.dryRun ? ', dry run' : ''}\n`);
        if (!input.dryRun && !cmdOpts.wait) {
          if (opts.json) process.stdout.write(`${JSON.stringify({ workflowId: handle.workflowId })}\n`);
          else process.stdout.write(`status: odoo-dr recover status ${handle.workflowId}\n${input.approvedBy ? '' : `approve: odoo-dr recover approve ${handle.workflowId}\n`}`);
          return;
        }
        if (!input.dryRun && !input.approvedBy) process.stderr.write(`waiting for approval: odoo-dr recover approve ${handle.workflowId}\n`);
        const result = await waitForWorkflow<(i: RecoveryInput) => Promise<RecoveryResult>>(handle.workflowId, {
          config,
          reconnectTimeoutMs: waitTimeout,
          follow: [`odoo-dr recover status ${handle.workflowId}`],
        });
        if (opts.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        else printRecovery(result);
        const ok = result.state === 'planned' || (result.state === 'done' && Object.values(result.tenants).every((t) => t.state === 'recovered'));
        if (!ok) outcome.code = EXIT.failed;
      });
    });

  const signalCommand = (name: 'approve' | 'reject') =>
    recover
      .command(`${name} <workflowId>`)
      .description(name === 'approve' ? 'Approve a recovery waiting for approval (recorded in the audit log).' : 'Reject a recovery: it ends without changes.')
      .option('--reason <text>', 'why (reject)')
      .action(async (workflowId: string, cmdOpts: { reason?: string }, cmd: Command) => {
        const opts = cmd.optsWithGlobals<GlobalOptions>();
        const config = load(opts);
        await withTemporal(config, async (client) => {
          const handle = client.workflow.getHandle(workflowId);
          const by = operatorIdentity();
          if (name === 'approve') await handle.signal(approveSignal, { by });
          else await handle.signal(rejectSignal, { by, ...(cmdOpts.reason ? { reason: cmdOpts.reason } : {}) });
          process.stdout.write(`${name === 'approve' ? 'approved' : 'rejected'} ${workflowId} as ${by}\n`);
        });
      });
  signalCommand('approve');
  signalCommand('reject');
  recover
    .command('status <workflowId>')
    .description('Show the plan and the progress of each tenant of a recovery.')
    .action(async (workflowId: string, _: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<GlobalOptions>();
      const config = load(opts);
      await withTemporal(config, async (client) => {
        const status = await client.workflow.getHandle(workflowId).query(recoveryStatusQuery);
        if (opts.json) process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
        else printRecovery(status);
      });
    });

  registerMonitorCommands(program, { outcome, load, printWarnings, withTemporal, waitForWorkflow, reconnectTimeoutMs, operatorIdentity, formatTable, exit: (code, message) => new CliExit(code, message) });
  registerCleanupCommands(program, outcome);

  const sessions = program.command('sessions').description('Backup sessions.');
  sessions
    .command('list')
    .description('List backup sessions, newest first; only a verified manifest with status complete makes a session complete.')
    .option('-c, --cloud', 'list the sessions in the bucket (each manifest verified), not the local folder')
    .action(async (cmdOpts: { cloud?: boolean }, cmd: Command) => {
      const opts = cmd.optsWithGlobals<GlobalOptions>();
      const config = load(opts);
      printWarnings(config);
      if (cmdOpts.cloud && !config.cloud) throw new CliExit(EXIT.usage, '--cloud needs DR_CLOUD_BUCKET in the configuration');
      const { SessionCatalog } = await import('../src/sessions/catalog.js');
      const catalog = SessionCatalog.fromConfig(config);
      const store = cmdOpts.cloud ? catalog.cloud! : catalog.local;
      const listed = await catalog.list(store);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ location: store.location, where: store.description, sessions: listed }, null, 2)}\n`);
        return;
      }
      process.stdout.write(`sessions in ${store.description}:\n`);
      const rows = listed.map((s) => [
        s.session,
        s.status,
        `${Object.values(s.tenants).filter((t) => t === 'complete').length}/${Object.keys(s.tenants).length}`,
        s.validation,
        s.problem ?? '',
      ]);
      process.stdout.write(formatTable(['SESSION', 'STATUS', 'TENANTS OK', 'VALIDATION', 'PROBLEM'], rows));
    });

  const keys = program.command('keys').description('Keys odoo-dr uses.');
  keys
    .command('signing <file>')
    .description('Print the public key line (ssh-ed25519 …) of a session signing key, for DR_TRUSTED_SIGNERS; --create makes the key first when it does not exist (never overwrites).')
    .option('--create', 'create the key (Ed25519, PKCS#8 PEM, mode 0600) if the file does not exist')
    .action(async (file: string, cmdOpts: { create?: boolean }) => {
      if (!path.isAbsolute(file)) throw new CliExit(EXIT.usage, `the key file must be an absolute path, got "${file}"`);
      const { formatPublicKey, generateSigningKey, readSigningKey } = await import('../src/crypto/signing.js');
      if (cmdOpts.create && !existsSync(file)) {
        process.stdout.write(`${await generateSigningKey(file, `odoo-dr@${hostname()}`)}\n`);
        process.stderr.write(`created ${file} (mode 0600): set DR_SIGNING_KEY_FILE to it on the backup host, and the line above in DR_TRUSTED_SIGNERS where sessions are read\n`);
        return;
      }
      process.stdout.write(`${formatPublicKey(await readSigningKey(file), `odoo-dr@${hostname()}`)}\n`);
    });

  registerSetupCommands(program, outcome);
  registerInteropCommands(program, { load, usage: (message) => new CliExit(EXIT.usage, message) });

  const configCmd = program.command('config').description('Configuration commands.');
  configCmd
    .command('check')
    .description('Validate the configuration and print it with secrets hidden.')
    .action((_: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<GlobalOptions>();
      const config = load(opts);
      if (opts.json) process.stdout.write(`${JSON.stringify(redactConfig(config), null, 2)}\n`);
      else {
        printWarnings(config);
        process.stdout.write(`configuration ${config.source} is valid\n`);
      }
    });

  registerScheduleCommands(program, outcome);
  return program;
}


/** The backup's progress line: tenants done, failed, running (named), waiting. */
async function backupProgress(handle: WorkflowHandle<(i: BackupInput) => Promise<BackupResult>>): Promise<string> {
  const p: BackupProgress = await handle.query(backupProgressQuery);
  const counts = { pending: 0, running: 0, complete: 0, failed: 0 };
  for (const t of Object.values(p.tenants)) counts[t.state]++;
  const running = Object.entries(p.tenants).filter(([, t]) => t.state === 'running').map(([n]) => n);
  return `${p.phase}: ${counts.complete} done, ${counts.failed} failed, ${counts.running} running, ${counts.pending} waiting${running.length ? ` (${running.join(', ')})` : ''}`;
}

function printBackupResult(r: BackupResult): void {
  const rows = r.tenants.map((t) => [
    t.tenant,
    t.status,
    t.status === 'complete' ? formatBytes(t.databaseBytes) : '-',
    t.status === 'complete' ? `${t.filestoreFiles} (${formatBytes(t.filestoreBytes)})` : '-',
    t.status === 'complete' ? `${t.blobsStored}/${t.blobsReused}/${t.blobsUploaded}` : '-',
    formatDuration(t.durationMs),
  ]);
  process.stdout.write(`session ${r.session}: ${r.status.toUpperCase()} in ${formatDuration(r.durationMs)} (workflow ${r.workflowId})\n`);
  process.stdout.write(formatTable(['TENANT', 'STATUS', 'DATABASE', 'FILES', 'FILES PACKED/REUSED/UPLOADED', 'DURATION'], rows));
  for (const t of r.tenants.filter((x) => x.error)) process.stdout.write(`  ${t.tenant}: ${t.error}\n`);
  for (const w of r.warnings) process.stdout.write(`warning: ${w}\n`);
  process.stdout.write(`manifest: ${r.manifestPath}\n`);
  if (r.alert) process.stdout.write(`alert: e-mail ${r.alert.email}, webhook ${r.alert.webhook}\n`);
}


function printChecks(title: string, status: string, checks: Array<{ name: string; status: string; message: string; tenant?: string }>, reportPath?: string): void {
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


function printRecovery(r: RecoveryStatus): void {
  process.stdout.write(`recovery: ${r.state}${r.approvedBy ? ` (approved by ${r.approvedBy})` : ''}${r.rejectedBy ? ` (rejected by ${r.rejectedBy})` : ''}\n`);
  if (r.plan) {
    const p = r.plan;
    process.stdout.write(`plan: ${p.mode} from ${p.session}${p.fromCloud ? ' (cloud copy)' : ''}, session validation: ${p.validation}` +
      `${p.expectedMinutes !== undefined ? `, expected ${p.expectedMinutes.toFixed(1)} min` : ''}\n`);
    for (const t of p.tenants) {
      process.stdout.write(`  ${t.tenant}${t.exists ? '' : ' (does not exist now)'}: dump ${formatBytes(t.dumpBytes)}, ${t.filestoreFiles} files (${formatBytes(t.filestoreBytes)})\n`);
      for (const step of t.steps) process.stdout.write(`    - ${step}\n`);
    }
    for (const s of p.space) {
      process.stdout.write(`  space for ${s.what} in ${s.path}: need ${formatBytes(s.neededBytes)}, ${s.availableBytes === undefined ? 'available unknown' : `available ${formatBytes(s.availableBytes)}`}${s.ok === false ? ' — NOT ENOUGH' : ''}\n`);
    }
    for (const w of p.warnings) process.stdout.write(`  warning: ${w}\n`);
  }
  const rows = Object.entries(r.tenants).map(([t, s]) => [t, s.state, s.downtimeMs !== undefined ? formatDuration(s.downtimeMs) : '-', s.error ?? '']);
  if (rows.length) process.stdout.write(formatTable(['TENANT', 'STATE', 'SWAP', 'DETAIL'], rows));
  if (r.globals) {
    const g = r.globals;
    process.stdout.write(g.error ? `roles: NOT restored: ${g.error}\n` : `roles: ${g.created.length} created (${g.passwordsRestored} with their password), ${g.existing.length} already existed (kept unchanged), ${g.memberships.length} memberships\n`);
    for (const w of [...g.warnings, ...g.skipped]) process.stdout.write(`  roles: ${w}\n`);
  }
  if (r.config) process.stdout.write(r.config.error ? `configuration: NOT restored: ${r.config.error}\n` : `configuration: ${r.config.restored.length} files restored, ${r.config.keptAs.length} replaced files kept as *.pre-recovery-*\n`);
  if (r.report) {
    const p = r.report;
    process.stdout.write(
      `report: ${p.tenantsRecovered} tenant(s) recovered (${formatBytes(p.bytes)}), ${p.tenantsFailed} not; achieved RTO ${p.achievedRtoMinutes.toFixed(1)} min against ${p.rtoMinutes} min: ${p.rtoMet ? 'met' : 'MISSED'}; achieved RPO ${Object.values(p.achievedRpoHours)[0]?.toFixed(2) ?? '-'} h (age of ${p.session})\n`,
    );
  }
}

/** The input of an earlier recovery (from its history), with the session it resolved to. */
async function resumeInput(client: Client, workflowId: string): Promise<RecoveryInput> {
  const handle = client.workflow.getHandle(workflowId);
  const history = await handle.fetchHistory().catch((err: Error) => {
    throw new CliExit(EXIT.usage, `cannot resume ${workflowId}: ${err.message}`);
  });
  const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data;
  if (!payload) throw new CliExit(EXIT.usage, `cannot resume ${workflowId}: its input is not readable`);
  const input = JSON.parse(Buffer.from(payload).toString('utf8')) as RecoveryInput;
  // The session it chose ("latest" then) must stay the same: a newer one may exist by now.
  const status = await handle.query(recoveryStatusQuery).catch(() => undefined);
  const { approvedBy: _a, dryRun: _d, ...rest } = input;
  return { ...rest, resumeOf: [...(input.resumeOf ?? []), workflowId], ...(status?.plan?.session ? { session: status.plan.session } : {}) };
}

/** Runs the CLI; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const outcome = { code: EXIT.ok as number };
  const program = buildProgram(outcome);
  try {
    await program.parseAsync(argv);
    return outcome.code;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const failure = commandFailure(err);
    process.stderr.write(`odoo-dr: ${failure.message}\n`);
    return failure.code;
  }
}
