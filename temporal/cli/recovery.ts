/**
 * `odoo-dr recover` (runs recoveryWorkflow: plan, approval, shadow restore, swap, health) and
 * `recover approve|reject|status`, which signal or query a running recovery.
 */
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import type { RecoveryMode } from '../../src/recovery/plan';
import { DEFAULT_TASK_QUEUE, WorkflowNames, idStamp, workflowIds } from '../../workflows/definitions';
import { approveSignal, recoveryStatusQuery, rejectSignal } from '../../workflows/definitions';
import type { RecoveryInput, RecoveryResult, RecoveryStatus } from '../../workflows/recovery';
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

function printRecovery(r: RecoveryStatus): void {
  process.stdout.write(`recovery: ${r.state}${r.approvedBy ? ` (approved by ${r.approvedBy})` : ''}${r.rejectedBy ? ` (rejected by ${r.rejectedBy})` : ''}\n`);
  if (r.plan) {
    const p = r.plan;
    process.stdout.write(
      `plan: ${p.mode} from ${p.session}${p.fromCloud ? ' (cloud copy)' : ''}, session validation: ${p.validation}` +
        `${p.expectedMinutes !== undefined ? `, expected ${p.expectedMinutes.toFixed(1)} min` : ''}\n`,
    );
    for (const t of p.tenants) {
      process.stdout.write(
        `  ${t.tenant}${t.exists ? '' : ' (does not exist now)'}: dump ${formatBytes(t.dumpBytes)}, ${t.filestoreFiles} files (${formatBytes(t.filestoreBytes)})\n`,
      );
      for (const step of t.steps) process.stdout.write(`    - ${step}\n`);
    }
    for (const s of p.space) {
      process.stdout.write(
        `  space for ${s.what} in ${s.path}: need ${formatBytes(s.neededBytes)}, ${s.availableBytes === undefined ? 'available unknown' : `available ${formatBytes(s.availableBytes)}`}${s.ok === false ? ' — NOT ENOUGH' : ''}\n`,
      );
    }
    for (const w of p.warnings) process.stdout.write(`  warning: ${w}\n`);
  }
  const rows = Object.entries(r.tenants).map(([t, s]) => [t, s.state, s.downtimeMs !== undefined ? formatDuration(s.downtimeMs) : '-', s.error ?? '']);
  if (rows.length) process.stdout.write(formatTable(['TENANT', 'STATE', 'SWAP', 'DETAIL'], rows));
  if (r.globals) {
    const g = r.globals;
    process.stdout.write(
      g.error
        ? `roles: NOT restored: ${g.error}\n`
        : `roles: ${g.created.length} created (${g.passwordsRestored} with their password), ${g.existing.length} already existed (kept unchanged), ${g.memberships.length} memberships\n`,
    );
    for (const w of [...g.warnings, ...g.skipped]) process.stdout.write(`  roles: ${w}\n`);
  }
  if (r.config)
    process.stdout.write(
      r.config.error
        ? `configuration: NOT restored: ${r.config.error}\n`
        : `configuration: ${r.config.restored.length} files restored, ${r.config.keptAs.length} replaced files kept as *.pre-recovery-*\n`,
    );
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

export function registerRecoveryCommands(program: Command, outcome: { code: number }): void {
  const recover = program
    .command('recover')
    .description(
      'Recover tenants from a backup session (runs recoveryWorkflow): plan, approval, shadow restore and verification, Odoo stopped, atomic swap, Odoo started, health; rolled back on failure.',
    )
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
    .option(
      '--allow-unsigned',
      'accept an UNSIGNED session (only for sessions made before signing was set up: anyone who can write to the backups could have made it)',
    )
    .option('--wait', 'wait for the end and print the result')
    .addHelpText(
      'after',
      `
Examples:
  odoo-dr recover -m database-only --tenant acme -t          show the plan only
  odoo-dr recover -m database-only -c latest --tenant acme   the session may be given as an argument
  odoo-dr recover -m database-only --tenant acme --wait      then approve from another terminal:
  odoo-dr recover approve recovery/acme/20261126031500
  odoo-dr recover -m full -c --tenant acme --yes --wait      scripted, from the bucket
  odoo-dr recover -m full -c --all --yes --wait              site loss: roles, configuration, every tenant
  odoo-dr recover --resume recovery/fleet/20261126031500 --yes --wait

Exit codes: 0 recovered (or plan shown), 1 failed, rolled back, rejected or expired, 2 bad input.`,
    )
    .action(
      async (
        sessionArg: string | undefined,
        cmdOpts: {
          mode: string;
          cloud?: boolean;
          session?: string;
          tenant?: string[];
          dryRun?: boolean;
          yes?: boolean;
          force?: boolean;
          approvalTimeout?: string;
          backupFirst?: boolean;
          all?: boolean;
          configTarget?: string;
          resume?: string;
          allowUnsigned?: boolean;
          wait?: boolean;
        },
        cmd: Command,
      ) => {
        const { opts, out } = globals(cmd);
        if (sessionArg !== undefined && cmdOpts.session !== undefined) {
          throw new CliExit(EXIT.usage, `the session is given twice ("${sessionArg}" and -s "${cmdOpts.session}"): give it either as an argument or with -s`);
        }
        const session = sessionArg ?? cmdOpts.session ?? 'latest';
        if (cmdOpts.resume && (sessionArg ?? cmdOpts.session) !== undefined)
          throw new CliExit(EXIT.usage, '--resume runs the earlier recovery with its own session: do not name one');
        checkNames({ session, ...(cmdOpts.tenant ? { tenants: cmdOpts.tenant } : {}) });
        const { RECOVERY_MODES } = await import('../../src/recovery/plan.js');
        if (!RECOVERY_MODES.includes(cmdOpts.mode as RecoveryMode)) {
          throw new CliExit(EXIT.usage, `--mode must be one of ${RECOVERY_MODES.join(', ')}, got "${cmdOpts.mode}"`);
        }
        const waitTimeout = reconnectTimeoutMs(opts);
        const config = load(opts);
        const timeout = cmdOpts.approvalTimeout === undefined ? config.approvalTimeoutMinutes : Number(cmdOpts.approvalTimeout);
        if (!Number.isInteger(timeout) || timeout < 1)
          throw new CliExit(EXIT.usage, `--approval-timeout must be a whole number of minutes, got "${cmdOpts.approvalTimeout}"`);
        printWarnings(config);
        if (cmdOpts.cloud && !config.cloud) throw new CliExit(EXIT.usage, '-c needs DR_CLOUD_BUCKET in the configuration');
        if (cmdOpts.all && cmdOpts.tenant) throw new CliExit(EXIT.usage, '--all recovers every tenant of the session: do not name tenants with it');
        if (cmdOpts.all && cmdOpts.mode !== 'full') throw new CliExit(EXIT.usage, '--all is a site recovery: it goes with -m full');
        if (cmdOpts.configTarget !== undefined && !path.isAbsolute(cmdOpts.configTarget))
          throw new CliExit(EXIT.usage, `--config-target must be an absolute folder, got "${cmdOpts.configTarget}"`);
        await withTemporal(config, async (client) => {
          const who = operatorIdentity();
          const earlier = cmdOpts.resume ? await resumeInput(client, cmdOpts.resume) : undefined;
          const input: RecoveryInput = earlier
            ? { ...earlier, startedBy: who, dryRun: Boolean(cmdOpts.dryRun), ...(cmdOpts.yes ? { approvedBy: who } : {}) }
            : {
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
          if (earlier)
            process.stderr.write(
              `resuming ${cmdOpts.resume}: ${input.mode} recovery from ${input.session ?? 'latest'}; tenants already recovered and verified are skipped\n`,
            );
          const target = input.tenants?.length === 1 ? input.tenants[0]! : input.mode === 'config-only' ? 'config' : input.site ? 'site' : 'fleet';
          const handle = await client.workflow.start<(i: RecoveryInput) => Promise<RecoveryResult>>(WorkflowNames.recovery, {
            taskQueue: config.taskQueue || DEFAULT_TASK_QUEUE,
            workflowId: workflowIds.recovery(target, idStamp(new Date()).replace('-', '')),
            args: [input],
            memo: { startedBy: who },
          });
          process.stderr.write(`started ${input.mode} recovery (workflow ${handle.workflowId})${input.dryRun ? ', dry run' : ''}\n`);
          if (!input.dryRun && !cmdOpts.wait) {
            out.brief({ workflowId: handle.workflowId }, ({ workflowId }) =>
              process.stdout.write(
                `status: odoo-dr recover status ${workflowId}\n${input.approvedBy ? '' : `approve: odoo-dr recover approve ${workflowId}\n`}`,
              ),
            );
            return;
          }
          if (!input.dryRun && !input.approvedBy) process.stderr.write(`waiting for approval: odoo-dr recover approve ${handle.workflowId}\n`);
          const result = await waitForWorkflow<(i: RecoveryInput) => Promise<RecoveryResult>>(handle.workflowId, {
            config,
            reconnectTimeoutMs: waitTimeout,
            follow: [`odoo-dr recover status ${handle.workflowId}`],
          });
          out.result(result, printRecovery);
          const ok = result.state === 'planned' || (result.state === 'done' && Object.values(result.tenants).every((t) => t.state === 'recovered'));
          if (!ok) outcome.code = EXIT.failed;
        });
      },
    );

  const signalCommand = (name: 'approve' | 'reject') =>
    recover
      .command(`${name} <workflowId>`)
      .description(name === 'approve' ? 'Approve a recovery waiting for approval (recorded in the audit log).' : 'Reject a recovery: it ends without changes.')
      .option('--reason <text>', 'why (reject)')
      .action(async (workflowId: string, cmdOpts: { reason?: string }, cmd: Command) => {
        const { opts, out } = globals(cmd);
        const config = load(opts);
        await withTemporal(config, async (client) => {
          const handle = client.workflow.getHandle(workflowId);
          const by = operatorIdentity();
          if (name === 'approve') await handle.signal(approveSignal, { by });
          else await handle.signal(rejectSignal, { by, ...(cmdOpts.reason ? { reason: cmdOpts.reason } : {}) });
          const sent = { workflowId, signal: name, by, ...(name === 'reject' && cmdOpts.reason ? { reason: cmdOpts.reason } : {}) };
          out.brief(sent, (s) => process.stdout.write(`${s.signal === 'approve' ? 'approved' : 'rejected'} ${s.workflowId} as ${s.by}\n`));
        });
      });
  signalCommand('approve');
  signalCommand('reject');
  recover
    .command('status <workflowId>')
    .description('Show the plan and the progress of each tenant of a recovery.')
    .action(async (workflowId: string, _: unknown, cmd: Command) => {
      const { opts, out } = globals(cmd);
      const config = load(opts);
      await withTemporal(config, async (client) => {
        const status = await client.workflow.getHandle(workflowId).query(recoveryStatusQuery);
        out.result(status, printRecovery);
      });
    });
}
