/**
 * files-only recovery: the tenant's filestore folder is swapped by rename with a restored shadow
 * folder; the database is not touched. Each function reads the state first, so a re-run after a
 * crash continues, and swapFilestoreBack leaves the folder exactly as it was.
 */
import { access, rename } from 'node:fs/promises';
import type { DrConfig } from '../config';
import { InvalidInputError } from '../errors';
import { filestoreDir } from './names';

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

export interface FilestoreSwap {
  tenant: string;
  shadowDir: string;
  preRecoveryDir: string;
}

export async function swapFilestoreIn(config: DrConfig, plan: FilestoreSwap): Promise<{ downtimeMs: number }> {
  const started = Date.now();
  const live = filestoreDir(config, plan.tenant);
  if (!(await exists(plan.shadowDir))) {
    if (await exists(plan.preRecoveryDir)) return { downtimeMs: 0 }; // already swapped
    throw new InvalidInputError(`files-only swap of "${plan.tenant}": the shadow filestore ${plan.shadowDir} does not exist`);
  }
  if (await exists(live)) {
    if (await exists(plan.preRecoveryDir)) throw new InvalidInputError(`files-only swap of "${plan.tenant}": ${plan.preRecoveryDir} already exists`);
    await rename(live, plan.preRecoveryDir);
  }
  await rename(plan.shadowDir, live);
  return { downtimeMs: Date.now() - started };
}

export async function swapFilestoreBack(config: DrConfig, plan: FilestoreSwap): Promise<void> {
  const live = filestoreDir(config, plan.tenant);
  // Swapped (or half): the recovered folder goes back to the shadow place, the original back in place.
  if ((await exists(live)) && !(await exists(plan.shadowDir)) && (await exists(plan.preRecoveryDir))) {
    await rename(live, plan.shadowDir);
  }
  if ((await exists(plan.preRecoveryDir)) && !(await exists(live))) {
    await rename(plan.preRecoveryDir, live);
  }
}
