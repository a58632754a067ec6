// Every workflow the worker registers. Import only workflow modules here.
export { tenantDiscoveryWorkflow } from './discovery';
export { backupWorkflow, backupBatchWorkflow, tenantBackupWorkflow } from './backup';
export { validationWorkflow } from './validation';
export { drillWorkflow } from './drill';
export { recoveryWorkflow } from './recovery';
export { tenantLockWorkflow } from './lock';
export { monitorWorkflow, alertsWorkflow } from './monitor';
export { retentionWorkflow } from './retention';
