/**
 * One writer per tenant: a backup writing a tenant's dump, and a recovery swapping it, must never
 * overlap (a second recovery's swap would overwrite the first one's markers; a dump taken mid-swap
 * would be of neither state).
 *
 * The lock is a child workflow with a fixed ID per tenant, `lock/tenant/<tenant>`: Temporal refuses
 * a second running workflow with the same ID, so taking the lock is atomic and needs no database. A
 * child is terminated when its parent closes (ParentClosePolicy TERMINATE), so a lock can never
 * outlive the backup or recovery holding it, even one that was terminated by hand. Visible in the
 * Temporal UI: the lock's input names its holder.
 *
 * A refused contender asks the lock who holds it (signal `lockContender`); the lock answers with
 * signal `lockHeld` to the contender, so the refusal names the running workflow.
 */
import { condition, getExternalWorkflowHandle, ParentClosePolicy, setHandler, startChild, workflowInfo, type ChildWorkflowHandle } from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { lockContenderSignal, lockHeldSignal, releaseLockSignal, type TenantLockInput } from './definitions';

export type { TenantLockInput } from './definitions';
import { fail } from './failures';

export const tenantLockId = (tenant: string) => `lock/tenant/${tenant}`;

/** Holds a tenant's lock until released or until its parent closes. */
export async function tenantLockWorkflow(input: TenantLockInput): Promise<void> {
  let released = false;
  const contenders: string[] = [];
  setHandler(releaseLockSignal, () => {
    released = true;
  });
  setHandler(lockContenderSignal, ({ workflowId }) => {
    contenders.push(workflowId);
  });
  for (;;) {
    await condition(() => released || contenders.length > 0);
    while (contenders.length > 0) {
      const id = contenders.shift()!;
      // The contender may be gone already: nobody is waiting for the answer then.
      await getExternalWorkflowHandle(id)
        .signal(lockHeldSignal, input)
        .catch(() => undefined);
    }
    if (released) return;
  }
}

export interface HeldLock {
  release(): Promise<void>;
}

/**
 * Takes `tenant`'s lock for the calling workflow, or throws a non-retryable `TenantLocked` failure
 * naming the workflow that holds it. The caller must register the `lockHeld` handler through
 * `awaitLockHolder` (done here).
 */
export async function acquireTenantLock(tenant: string, purpose: TenantLockInput['purpose']): Promise<HeldLock> {
  const me = workflowInfo().workflowId;
  const input: TenantLockInput = { tenant, holder: me, purpose, since: new Date(Date.now()).toISOString() };
  let handle: ChildWorkflowHandle<typeof tenantLockWorkflow>;
  try {
    handle = await startChild(tenantLockWorkflow, {
      workflowId: tenantLockId(tenant),
      args: [input],
      parentClosePolicy: ParentClosePolicy.TERMINATE,
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    const holder = await askLockHolder(tenant);
    const who = holder
      ? `the ${holder.purpose} ${holder.holder} (since ${holder.since})`
      : `another backup or recovery (lock workflow ${tenantLockId(tenant)})`;
    throw fail(
      'TenantLocked',
      `tenant "${tenant}" is locked by ${who}: one backup or recovery of a tenant at a time; wait for it to finish or cancel it, then retry`,
    );
  }
  return {
    release: async () => {
      await handle.signal(releaseLockSignal).catch(() => undefined);
    },
  };
}

const holders = new Map<string, TenantLockInput>();
let holderHandlerSet = false;

/** Asks the running lock who holds it; undefined if it does not answer within 30 s. */
async function askLockHolder(tenant: string): Promise<TenantLockInput | undefined> {
  if (!holderHandlerSet) {
    holderHandlerSet = true;
    setHandler(lockHeldSignal, (held) => {
      holders.set(held.tenant, held);
    });
  }
  const me = workflowInfo().workflowId;
  const asked = await getExternalWorkflowHandle(tenantLockId(tenant))
    .signal(lockContenderSignal, { workflowId: me })
    .then(() => true)
    .catch(() => false);
  if (!asked) return undefined;
  await condition(() => holders.has(tenant), '30 seconds');
  return holders.get(tenant);
}
