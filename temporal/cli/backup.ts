/**
 * `odoo-dr tenants` (runs tenantDiscoveryWorkflow) and `odoo-dr backup` (runs backupWorkflow,
 * with a progress line and the session's summary under --wait).
 */
import { randomBytes } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import type { Command } from 'commander';
import type { BackupInput, BackupResult } from '../../workflows/backup';
import {
  DEFAULT_TASK_QUEUE,
  WorkflowNames,
  backupProgressQuery,
  backupSessionName,
  idStamp,
  workflowIds,
  type BackupProgress,
} from '../../workflows/definitions';
import type { TenantDiscoveryInput, TenantDiscoveryResult } from '../../workflows/discovery';
import { EXIT, checkNames, formatBytes, formatDuration, formatTable, load, operatorIdentity, printWarnings, withTemporal } from './common';
import { globals } from './output';
import { reconnectTimeoutMs, waitForWorkflow } from './wait';

function printDiscovery(result: TenantDiscoveryResult): void {
  const rows = result.tenants.map((t) => [t.name, formatBytes(t.databaseBytes), t.filestoreExists ? 'yes' : 'no', t.connectable ? 'yes' : 'NO']);
  process.stdout.write(formatTable(['TENANT', 'DATABASE', 'FILESTORE', 'CONNECTABLE'], rows));
  process.stdout.write(`${result.tenants.length} tenant(s) owned by role "${result.odooRole}"\n`);
  if (result.excluded.length) process.stdout.write(`excluded: ${result.excluded.join(', ')}\n`);
  if (result.missing.length) process.stderr.write(`not tenants (absent, not owned by ${result.odooRole}, or templates): ${result.missing.join(', ')}\n`);
  if (result.invalidNames.length) {
    process.stderr.write(`ignored, names Odoo refuses: ${result.invalidNames.map((n) => JSON.stringify(n)).join(', ')}\n`);
  }
}

/** The backup's progress line: tenants done, failed, running (named), waiting. */
async function backupProgress(handle: WorkflowHandle<(i: BackupInput) => Promise<BackupResult>>): Promise<string> {
  const p: BackupProgress = await handle.query(backupProgressQuery);
  const counts = { pending: 0, running: 0, complete: 0, failed: 0 };
  for (const t of Object.values(p.tenants)) counts[t.state]++;
  const running = Object.entries(p.tenants)
    .filter(([, t]) => t.state === 'running')
    .map(([n]) => n);
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

export function registerBackupCommands(program: Command, outcome: { code: number }): void {
  program
    .command('tenants')
    .description(
      "List the tenants: Odoo's rule (owned by the Odoo role, connectable, not a template) and the DR_TENANTS/DR_EXCLUDE_TENANTS filters. Runs tenantDiscoveryWorkflow.",
    )
    .option('--tenant <db...>', 'only these tenants')
    .option('--exclude <db...>', 'leave these out')
    .action(async (cmdOpts: { tenant?: string[]; exclude?: string[] }, cmd: Command) => {
      const { opts, out } = globals(cmd);
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
        const result = await waitForWorkflow<(i: TenantDiscoveryInput) => Promise<TenantDiscoveryResult>>(handle.workflowId, {
          config,
          reconnectTimeoutMs: waitTimeout,
        });
        out.result(result, printDiscovery);
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
    .addHelpText(
      'after',
      `
Examples:
  odoo-dr backup --wait                       back up every tenant, wait, print the summary
  odoo-dr backup --tenant acme --no-cloud     one tenant, local only, do not wait
  odoo-dr --json backup --wait                summary as JSON (exit 1 if not complete)`,
    )
    .action(async (cmdOpts: { tenant?: string[]; cloud: boolean; wait?: boolean; retention: boolean }, cmd: Command) => {
      const { opts, out } = globals(cmd);
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
          out.brief({ session, workflowId: handle.workflowId }, ({ workflowId }) =>
            process.stdout.write(`follow it in the Temporal UI (workflow ${workflowId}) or: temporal workflow result --workflow-id ${workflowId}\n`),
          );
          return;
        }
        const result = await waitForWorkflow<(i: BackupInput) => Promise<BackupResult>>(handle.workflowId, {
          config,
          reconnectTimeoutMs: waitTimeout,
          follow: ['odoo-dr sessions list'],
          ...(out.json ? {} : { progress: backupProgress }),
        });
        out.result(result, printBackupResult);
        if (result.status !== 'complete') outcome.code = EXIT.failed;
      });
    });
}
