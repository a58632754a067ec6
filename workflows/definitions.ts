/**
 * The public contract of odoo-dr's workflows: task queue, workflow names, IDs, signals and queries.
 * Operators start these from the CLI, the Temporal UI or `temporal workflow start`; keep names stable.
 */

/** Default task queue of the odoo-dr worker (DR_TASK_QUEUE overrides it). */
export const DEFAULT_TASK_QUEUE = 'odoo-dr';

/** Workflow type names, as they appear in the Temporal UI. */
export const WorkflowNames = {
  tenantDiscovery: 'tenantDiscoveryWorkflow',
} as const;

/** Readable, unique workflow IDs, built in one place. */
export const workflowIds = {
  tenantDiscovery: (stamp: string) => `discovery/${stamp}`,
};

/** `20261126-021503` from a Date: sortable, readable, safe in IDs. */
export function idStamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}
