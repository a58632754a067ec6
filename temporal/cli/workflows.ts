/**
 * `odoo-dr workflows list [--running] [--type T] [--limit N]`: odoo-dr's workflows on this task
 * queue, newest first, with their state and age — what an operator checks before starting a
 * recovery or after a night of schedules, without the Temporal UI.
 */
import type { Command } from 'commander';
import { WorkflowNames } from '../../workflows/definitions';
import { CliExit, EXIT, formatDuration, formatTable, load, withTemporal } from './common';
import { globals } from './output';

/** The workflow types an operator starts or schedules (children and locks are shown with --all). */
const OPERATOR_TYPES = [
  WorkflowNames.backup,
  WorkflowNames.validation,
  WorkflowNames.drill,
  WorkflowNames.recovery,
  WorkflowNames.monitor,
  WorkflowNames.alerts,
  WorkflowNames.retention,
  WorkflowNames.tenantDiscovery,
];

export interface ListedWorkflow {
  workflowId: string;
  runId: string;
  type: string;
  status: string;
  startTime: string;
  closeTime?: string;
  /** Running: time since it started; closed: how long it ran. */
  durationMs: number;
}

/** Temporal's visibility query for the listing (types quoted; the task queue is the configured one). */
export function workflowListQuery(taskQueue: string, opts: { running?: boolean; types?: string[] }): string {
  const quote = (s: string) => `'${s.replace(/'/g, "\\'")}'`;
  const parts = [`TaskQueue = ${quote(taskQueue)}`];
  if (opts.types?.length) parts.push(`WorkflowType IN (${opts.types.map(quote).join(', ')})`);
  if (opts.running) parts.push(`ExecutionStatus = 'Running'`);
  return parts.join(' AND ');
}

export function registerWorkflowCommands(program: Command): void {
  const workflows = program.command('workflows').description("odoo-dr's workflows in Temporal.");
  workflows
    .command('list')
    .description('List odoo-dr workflows on the task queue, newest first: ID, type, state, start, age or duration.')
    .option('--running', 'only the running ones')
    .option('--type <name>', `only this type (${OPERATOR_TYPES.join(', ')}, or another workflow type)`)
    .option('--all', 'also the tenant backup children, batches and tenant locks')
    .option('--limit <n>', 'at most this many (default 50)', '50')
    .action(async (cmdOpts: { running?: boolean; type?: string; all?: boolean; limit: string }, cmd: Command) => {
      const { opts, out } = globals(cmd);
      const limit = Number(cmdOpts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000)
        throw new CliExit(EXIT.usage, `--limit must be a whole number from 1 to 10000, got "${cmdOpts.limit}"`);
      if (cmdOpts.type !== undefined && !/^[A-Za-z][A-Za-z0-9_]*$/.test(cmdOpts.type))
        throw new CliExit(EXIT.usage, `--type must be a workflow type name, got "${cmdOpts.type}"`);
      const config = load(opts);
      const types = cmdOpts.type ? [cmdOpts.type] : cmdOpts.all ? undefined : OPERATOR_TYPES;
      const query = workflowListQuery(config.taskQueue, { running: cmdOpts.running, types });
      const listed = await withTemporal(config, async (client) => {
        const now = Date.now();
        const found: ListedWorkflow[] = [];
        for await (const w of client.workflow.list({ query, pageSize: Math.min(limit, 1000) })) {
          const end = w.closeTime?.getTime() ?? now;
          found.push({
            workflowId: w.workflowId,
            runId: w.runId,
            type: w.type,
            status: w.status.name,
            startTime: w.startTime.toISOString(),
            ...(w.closeTime ? { closeTime: w.closeTime.toISOString() } : {}),
            durationMs: Math.max(0, end - w.startTime.getTime()),
          });
          if (found.length >= limit) break;
        }
        return found;
      });
      out.result({ taskQueue: config.taskQueue, query, workflows: listed }, ({ workflows: ws }) => {
        if (ws.length === 0) {
          process.stdout.write(`no ${cmdOpts.running ? 'running ' : ''}odoo-dr workflows on task queue ${config.taskQueue}\n`);
          return;
        }
        const rows = ws.map((w) => [
          w.workflowId,
          w.type,
          w.status,
          w.startTime.replace(/\.\d+Z$/, 'Z'),
          `${w.closeTime ? '' : 'running for '}${formatDuration(w.durationMs)}`,
        ]);
        process.stdout.write(formatTable(['WORKFLOW ID', 'TYPE', 'STATE', 'STARTED', 'DURATION'], rows));
      });
    });
}
