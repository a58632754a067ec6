import { proxyActivities } from '@temporalio/workflow';
import type { Activities, DiscoverTenantsInput, DiscoverTenantsResult } from '../activities';
import { quickActivity } from './options';

const { discoverTenants } = proxyActivities<Activities>(quickActivity);

export type TenantDiscoveryInput = DiscoverTenantsInput;
export type TenantDiscoveryResult = DiscoverTenantsResult;

/**
 * Lists the tenants odoo-dr would back up now: Odoo's rule (owned by the Odoo role, connectable,
 * not a template), restricted by DR_TENANTS or `include`, minus DR_EXCLUDE_TENANTS and `exclude`.
 */
export async function tenantDiscoveryWorkflow(input: TenantDiscoveryInput = {}): Promise<TenantDiscoveryResult> {
  return discoverTenants(input);
}
