/**
 * `odoo-dr cleanup`: runs retentionWorkflow (the same the daily `odoo-dr/cleanup` schedule runs)
 * and prints what was deleted and the bytes freed.
 */
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import type { PlaceReport } from '../../activities';
import { DEFAULT_TASK_QUEUE, WorkflowNames, idStamp, workflowIds, type RetentionInput } from '../../workflows/definitions';
import type { RetentionReport } from '../../workflows/retention';
import { CliExit, EXIT, formatBytes, formatTable, load, operatorIdentity, printWarnings, withTemporal } from './common';
import { globals } from './output';
import { reconnectTimeoutMs, waitForWorkflow } from './wait';

function placeRow(name: string, p: PlaceReport | null): string[] {
  if (!p) return [name, '-', '-', '-', '-', 'not applied'];
  const c = p.collection;
  return [
    name,
    String(p.sessionsDeleted.length),
    String(p.sessionsKept),
    c.deferred ? '-' : `${c.packsDeleted}${c.blobsDeleted ? ` (+${c.blobsDeleted} blobs)` : ''}`,
    formatBytes(p.sessionBytes + c.bytesFreed),
    c.deferred
      ? `packs not collected: ${c.deferred}`
      : [
          c.youngKept ? `${c.youngKept} unreferenced but younger than the grace period: kept` : '',
          c.restored ? `${c.restored} put back (a backup reused them meanwhile)` : '',
        ]
          .filter(Boolean)
          .join('; '),
  ];
}

export function printRetention(r: RetentionReport): void {
  const verb = r.dryRun ? 'would delete' : 'deleted';
  process.stdout.write(`retention${r.dryRun ? ' (DRY RUN: nothing was deleted)' : ''}: ${r.status.toUpperCase()}, ${verb} ${formatBytes(r.bytesFreed)}\n`);
  process.stdout.write(
    formatTable(
      ['PLACE', r.dryRun ? 'SESSIONS TO DELETE' : 'SESSIONS DELETED', 'KEPT', r.dryRun ? 'PACKS TO DELETE' : 'PACKS DELETED', 'FREED', 'NOTE'],
      [placeRow('local', r.local), placeRow('bucket', r.cloud)],
    ),
  );
  for (const p of [r.local, r.cloud]) {
    if (!p) continue;
    for (const s of p.sessionsDeleted) process.stdout.write(`  ${p.place}: ${verb} ${s}\n`);
    for (const [s, why] of Object.entries(p.keptPastAge)) process.stdout.write(`  ${p.place}: kept ${s} past its age (${why.join(', ')})\n`);
  }
  const l = r.leftovers;
  if (l) {
    for (const d of l.preRecoveryDropped) process.stdout.write(`  pre-recovery copy ${r.dryRun ? 'to drop' : 'dropped'}: ${d}\n`);
    for (const d of l.scratchDropped) process.stdout.write(`  scratch leftover ${r.dryRun ? 'to drop' : 'dropped'}: ${d}\n`);
    if (l.logs.auditRotatedTo) process.stdout.write(`  audit log ${r.dryRun ? 'to rotate' : 'rotated'} to ${l.logs.auditRotatedTo}\n`);
    for (const f of l.logs.deleted) process.stdout.write(`  log ${verb}: ${f}\n`);
  }
  for (const e of r.errors) process.stdout.write(`  FAILED ${e}\n`);
}

export function registerCleanupCommands(program: Command, outcome: { code: number }): void {
  program
    .command('cleanup')
    .description(
      'Apply retention (runs retentionWorkflow): sessions past DR_LOCAL_RETENTION_DAYS / DR_RETENTION_DAYS (never the newest complete or validated session of a tenant; DR_RETENTION_GFS keeps more), then the filestore packs no kept session references, expired pre-recovery copies, leftover scratch databases and old logs.',
    )
    .option('--dry-run', 'report what would be deleted, delete nothing')
    .option('--no-cloud', "leave the bucket alone (this host's folder and leftovers only)")
    .option('--wait', 'wait for the report and print it')
    .addHelpText(
      'after',
      `
Examples:
  odoo-dr cleanup --dry-run --wait           what would go, and the bytes it would free
  odoo-dr cleanup --wait                     apply it now (the odoo-dr/cleanup schedule does it daily)
  odoo-dr --json cleanup --no-cloud --wait   this host only, the report as JSON

Exit code 1 when a step failed (the others still ran).`,
    )
    .action(async (cmdOpts: { dryRun?: boolean; cloud?: boolean; wait?: boolean }, cmd: Command) => {
      const { opts, out } = globals(cmd);
      const waitTimeout = reconnectTimeoutMs(opts);
      const config = load(opts);
      printWarnings(config);
      await withTemporal(config, async (client) => {
        const input: RetentionInput = {
          ...(cmdOpts.dryRun ? { dryRun: true } : {}),
          ...(cmdOpts.cloud === false ? { cloud: false } : {}),
          startedBy: operatorIdentity(),
        };
        const workflowId = workflowIds.retention(`${idStamp(new Date())}-${randomBytes(3).toString('hex')}`);
        const handle = await client.workflow
          .start<(i: RetentionInput) => Promise<RetentionReport>>(WorkflowNames.retention, {
            taskQueue: config.taskQueue || DEFAULT_TASK_QUEUE,
            workflowId,
            args: [input],
            memo: { startedBy: input.startedBy },
          })
          .catch((err: Error) => {
            throw new CliExit(EXIT.failed, `cannot start the retention workflow: ${err.message}`);
          });
        process.stderr.write(`started retention${cmdOpts.dryRun ? ' (dry run)' : ''} (workflow ${handle.workflowId})\n`);
        if (!cmdOpts.wait) {
          out.brief({ workflowId: handle.workflowId });
          return;
        }
        const report = await waitForWorkflow<(i: RetentionInput) => Promise<RetentionReport>>(handle.workflowId, { config, reconnectTimeoutMs: waitTimeout });
        out.result(report, printRetention);
        if (report.status !== 'ok') outcome.code = EXIT.failed;
      });
    });
}
