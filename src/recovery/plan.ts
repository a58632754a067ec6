/**
 * The recovery plan: which session, which tenants, what will be done to each, how much space the
 * shadow copies need and whether it is there, and how long it should take (from the last drill's
 * measured restore rate). Computed before anything changes; `--dry-run` prints only this.
 */
import { existsSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import path from 'node:path';
import type { DrConfig } from '../config';
import { sessionTime } from '../backup/layout';
import { EncryptionKeyError, InvalidInputError } from '../errors';
import { identityRecipients, readIdentity } from '../crypto/age';
import { withClient } from '../postgres';
import { SessionCatalog } from '../sessions/catalog';
import { discoverTenants } from '../tenants';
import { recoveredMark } from './recovered';

export type RecoveryMode = 'full' | 'database-only' | 'files-only' | 'config-only';
export const RECOVERY_MODES: RecoveryMode[] = ['full', 'database-only', 'files-only', 'config-only'];

export interface PlannedTenant {
  tenant: string;
  /** The tenant database exists now (else it is recovered directly under its name). */
  exists: boolean;
  /** Its filestore folder exists now. */
  filestoreExists: boolean;
  currentDatabaseBytes: number;
  dumpBytes: number;
  filestoreFiles: number;
  filestoreBytes: number;
  steps: string[];
}

export interface RecoveryPlan {
  session: string;
  mode: RecoveryMode;
  fromCloud: boolean;
  /** Where the session is read from (the bucket when the local copy is missing, or with -c). */
  readFrom: 'local' | 'cloud';
  /** When the session was made: the recovered state's age is the achieved RPO. */
  sessionStartedAt: string;
  /** Site recovery (`--all`): cluster roles and the configuration archive are restored first. */
  site: boolean;
  /** Cluster roles restored (missing ones only) before the tenants: full mode, when the session has them. */
  globals: boolean;
  /** Where the configuration archive goes (site recovery or config-only): DR_CONFIG_PATHS or --config-target. */
  configTarget?: string;
  /** Shadows restored at once (DR_MAX_PARALLEL_BACKUPS). */
  parallelism: number;
  /** DR_RTO_MINUTES, for the final report. */
  rtoMinutes: number;
  /** Tenants already recovered from this session (by an earlier run): skipped. */
  alreadyRecovered: Array<{ tenant: string; by: string }>;
  tenants: PlannedTenant[];
  /** Space for the shadow copies: database (on the PostgreSQL server's disk, when visible from here) and filestore. */
  space: Array<{ what: string; path: string; neededBytes: number; availableBytes: number | undefined; ok: boolean | undefined }>;
  /** From the newest drill or validation report with a restore rate; undefined when none. */
  expectedMinutes: number | undefined;
  warnings: string[];
  /** Validation of this session, if it was validated: its status. */
  validation: 'pass' | 'fail' | 'never';
}

/** Free space where `dir` is or will be (its nearest existing parent: a fresh host has no filestore yet). */
async function available(dir: string): Promise<number | undefined> {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    try {
      const s = await statfs(d);
      return s.bavail * s.bsize;
    } catch {
      if (d === path.dirname(d)) return undefined;
    }
  }
}

export interface PlanRequest {
  session?: string;
  mode: RecoveryMode;
  tenants?: string[];
  fromCloud: boolean;
  force: boolean;
  /** Site recovery: roles, configuration, then every tenant. */
  site?: boolean;
  /** Configuration archive extracted under this folder (for review) instead of DR_CONFIG_PATHS. */
  configTarget?: string;
  /** Workflow IDs of the earlier runs of this recovery (`--resume`): what they recovered is skipped. */
  resumeOf?: string[];
  /** Accept an unsigned session (made before signing was set up); a loud warning in the plan. */
  allowUnsigned?: boolean;
}

/** The private identity must be one the session was encrypted to: found now, before anything changes. */
async function assertCanDecrypt(config: DrConfig, session: string, recipients: string[]): Promise<void> {
  if (!config.encryption.identityFile) throw new EncryptionKeyError('DR_ENCRYPTION_KEY_FILE is not set: the private identity is needed to restore');
  const mine = await identityRecipients(await readIdentity(config.encryption.identityFile));
  if (!mine.some((r) => recipients.includes(r))) {
    throw new EncryptionKeyError(
      `the age identity in ${config.encryption.identityFile} (recipient ${mine.join(', ')}) cannot decrypt session ${session}, ` +
        `which was encrypted to ${recipients.join(', ')}: point DR_ENCRYPTION_KEY_FILE at that identity. Nothing was changed.`,
    );
  }
}

export async function planRecovery(config: DrConfig, input: PlanRequest): Promise<RecoveryPlan> {
  if (!RECOVERY_MODES.includes(input.mode)) throw new InvalidInputError(`mode must be one of ${RECOVERY_MODES.join(', ')}, got "${input.mode}"`);
  if (input.site && input.tenants?.length) throw new InvalidInputError('--all recovers every tenant of the session: do not name tenants with it');
  if (input.configTarget !== undefined && !path.isAbsolute(input.configTarget))
    throw new InvalidInputError(`--config-target must be an absolute folder, got "${input.configTarget}"`);
  const catalog = SessionCatalog.fromConfig(config, { allowUnsigned: input.allowUnsigned ?? false });
  // `latest` for named tenants: the newest session that has them (see SessionCatalog.resolve).
  const wantedTenants = input.mode !== 'config-only' && input.tenants?.length ? input.tenants : undefined;
  const chosen = await catalog.resolve(input.session, input.fromCloud ? 'cloud' : 'auto', {
    force: input.force,
    ...(wantedTenants ? { tenants: wantedTenants } : {}),
  });
  const { manifest } = chosen;
  const warnings = [...chosen.warnings];
  if (!chosen.signedBy) warnings.push(`session ${chosen.session} is NOT SIGNED: recovering from it only because --allow-unsigned was given`);
  if (chosen.store.location === 'cloud' && !input.fromCloud) warnings.push(`session ${chosen.session} is not on this host's disk: it is read from the bucket`);
  await assertCanDecrypt(config, chosen.session, manifest.encryption.recipients);
  const inSession: string[] = Object.entries(manifest.tenants)
    .filter(([, e]) => e.status === 'complete')
    .map(([t]) => t);
  let tenants: string[] = [];
  if (input.mode !== 'config-only') {
    tenants = input.tenants?.length ? input.tenants : inSession;
    const unknown = tenants.filter((t) => !inSession.includes(t));
    if (unknown.length) {
      throw new InvalidInputError(`session ${chosen.session} has no complete backup of ${unknown.join(', ')} (it has: ${inSession.join(', ') || 'none'})`);
    }
  } else if (!manifest.config) {
    throw new InvalidInputError(`session ${chosen.session} has no configuration archive`);
  }
  const site = Boolean(input.site) && input.mode === 'full';
  const globals = input.mode === 'full' && manifest.globals !== undefined;
  if (input.mode === 'full' && !manifest.globals)
    warnings.push(`session ${chosen.session} has no cluster globals: roles cannot be restored (tenant owners must exist)`);
  let configTarget: string | undefined;
  if (site || input.mode === 'config-only') {
    if (manifest.config) configTarget = input.configTarget ?? 'DR_CONFIG_PATHS';
    else warnings.push(`session ${chosen.session} has no configuration archive: the configuration is not restored`);
  }
  // What an earlier run of this recovery (resumed, or a site recovery from the same session)
  // already recovered and verified is skipped.
  const alreadyRecovered: RecoveryPlan['alreadyRecovered'] = [];
  if (input.mode !== 'config-only' && (site || input.resumeOf?.length)) {
    for (const t of tenants) {
      const mark = await recoveredMark(config, t);
      if (mark?.session === chosen.session && ((site && mark.site) || input.resumeOf?.includes(mark.workflowId))) {
        alreadyRecovered.push({ tenant: t, by: `${mark.workflowId} at ${mark.at}` });
      }
    }
    tenants = tenants.filter((t) => !alreadyRecovered.some((a) => a.tenant === t));
  }
  const current = await discoverTenants(config, tenants.length ? { include: tenants } : {});
  const planned: PlannedTenant[] = tenants.map((tenant) => {
    const entry = manifest.tenants[tenant]!;
    const now = current.tenants.find((t) => t.name === tenant);
    const db = input.mode === 'full' || input.mode === 'database-only';
    const files = input.mode === 'full' || input.mode === 'files-only';
    const steps = [
      ...(chosen.store.location === 'cloud' ? ['download the tenant artifacts from the bucket'] : []),
      ...(db ? ['restore the dump into a shadow database (owners kept, not listed by Odoo)'] : []),
      ...(files ? ['restore the filestore into a shadow folder, every file verified'] : []),
      ...(db ? ['verify the shadow copy (modules, row counts, attachments, admin, database.uuid kept)'] : []),
      ...(db && !files ? ["keep today's filestore (a hard-linked copy goes with the shadow)"] : []),
      'stop Odoo (DR_ODOO_STOP_CMD)',
      now ? `swap: ${tenant} → pre-recovery copy, shadow → ${tenant}` : `${tenant} does not exist: the shadow becomes ${tenant}`,
      'start Odoo (DR_ODOO_START_CMD) and check health',
    ];
    return {
      tenant,
      exists: Boolean(now),
      filestoreExists: now?.filestoreExists ?? existsSync(path.join(config.odoo.filestoreRoot, tenant)),
      currentDatabaseBytes: now?.databaseBytes ?? 0,
      dumpBytes: entry.database?.bytes ?? 0,
      filestoreFiles: entry.filestore?.files ?? 0,
      filestoreBytes: entry.filestore?.bytes ?? 0,
      steps,
    };
  });

  // Shadows sit beside the tenants until the swap: the same space again, at worst.
  const space: RecoveryPlan['space'] = [];
  const dbNeeded = planned.reduce((a, t) => a + Math.max(t.currentDatabaseBytes, t.dumpBytes * 8), 0);
  const filesNeeded = planned.reduce((a, t) => a + t.filestoreBytes, 0);
  if (input.mode === 'full' || input.mode === 'database-only') {
    const dataDir = await withClient(
      config.postgres,
      config.postgres.maintenanceDb,
      async (c) => (await c.query<{ d: string }>("SELECT current_setting('data_directory') AS d")).rows[0]!.d,
    ).catch(() => undefined);
    const avail = dataDir ? await available(dataDir) : undefined;
    space.push({
      what: 'shadow databases',
      path: dataDir ?? '(PostgreSQL server)',
      neededBytes: dbNeeded,
      availableBytes: avail,
      ok: avail === undefined ? undefined : avail > dbNeeded,
    });
    if (avail === undefined) warnings.push('free space on the PostgreSQL server cannot be checked from here');
    const scratch = await available(config.backupDir);
    const biggest = Math.max(0, ...planned.map((t) => t.dumpBytes * 8));
    space.push({
      what: 'decrypted dump (largest)',
      path: config.backupDir,
      neededBytes: biggest,
      availableBytes: scratch,
      ok: scratch === undefined ? undefined : scratch > biggest,
    });
  }
  if (input.mode === 'full' || input.mode === 'files-only') {
    const avail = await available(config.odoo.filestoreRoot);
    space.push({
      what: 'shadow filestores',
      path: config.odoo.filestoreRoot,
      neededBytes: filesNeeded,
      availableBytes: avail,
      ok: avail === undefined ? undefined : avail > filesNeeded,
    });
  }
  for (const s of space) if (s.ok === false) warnings.push(`not enough space for ${s.what} in ${s.path}`);

  // The restore rate measured by the newest drill or restore test of this session (kept with it).
  const rate = await catalog.restoreRate(chosen.session);
  const bytes = planned.reduce((a, t) => a + Math.max(t.currentDatabaseBytes, t.dumpBytes * 8) + t.filestoreBytes, 0);
  const expectedMinutes = rate === undefined ? undefined : ((bytes / 1024 ** 3) * rate) / 60;
  if (rate === undefined) warnings.push('no measured restore rate yet (run odoo-dr drill -m restore-only): duration unknown');
  return {
    session: chosen.session,
    mode: input.mode,
    fromCloud: input.fromCloud,
    readFrom: chosen.store.location,
    sessionStartedAt: sessionTime(chosen.session).toISOString(),
    site,
    globals,
    ...(configTarget ? { configTarget } : {}),
    alreadyRecovered,
    parallelism: config.performance.maxParallelBackups,
    rtoMinutes: config.objectives.rtoMinutes,
    tenants: planned,
    space,
    expectedMinutes,
    warnings,
    validation: chosen.validation,
  };
}
