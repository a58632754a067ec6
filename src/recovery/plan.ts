/**
 * The recovery plan: which session, which tenants, what will be done to each, how much space the
 * shadow copies need and whether it is there, and how long it should take (from the last drill's
 * measured restore rate). Computed before anything changes; `--dry-run` prints only this.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, statfs } from 'node:fs/promises';
import path from 'node:path';
import type { DrConfig } from '../config';
import { MANIFEST_FILE, SESSION_NAME, assertSessionName, localPath, rel } from '../backup/layout';
import { readManifest, type Manifest } from '../backup/manifest';
import { InvalidInputError } from '../errors';
import { withClient } from '../postgres';
import { discoverTenants } from '../tenants';

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
  tenants: PlannedTenant[];
  /** Space for the shadow copies: database (on the PostgreSQL server's disk, when visible from here) and filestore. */
  space: Array<{ what: string; path: string; neededBytes: number; availableBytes: number | undefined; ok: boolean | undefined }>;
  /** From the newest drill or validation report with a restore rate; undefined when none. */
  expectedMinutes: number | undefined;
  warnings: string[];
  /** Validation of this session, if it was validated: its status. */
  validation: 'pass' | 'fail' | 'never';
}

interface ReportLike {
  session?: string;
  status?: string;
  restores?: Array<{ secondsPerGiB: number }>;
  projectedRto?: { secondsPerGiB: number };
}

/** `…-2026-11-26T03-23-32-760Z.json` → the time stamp, which sorts chronologically. */
function stampOf(file: string): string {
  return /(\d{4}-\d{2}-\d{2}T[\d-]+Z)\.json$/.exec(file)?.[1] ?? '';
}

/** Newest validation/drill reports first. */
async function reports(config: DrConfig): Promise<Array<{ file: string; report: ReportLike }>> {
  const files = (await readdir(config.logDir).catch(() => [] as string[]))
    .filter((f) => /^(validation|drill)-.*\.json$/.test(f))
    .sort((a, b) => (stampOf(a) < stampOf(b) ? 1 : -1));
  const out = [];
  for (const f of files) {
    try {
      out.push({ file: f, report: JSON.parse(await readFile(path.join(config.logDir, f), 'utf8')) as ReportLike });
    } catch {
      /* unreadable report: ignore */
    }
  }
  return out;
}

function validationOf(all: Array<{ file: string; report: ReportLike }>, session: string): 'pass' | 'fail' | 'never' {
  const found = all.find((r) => r.file.startsWith('validation-') && r.report.session === session);
  return found ? (found.report.status === 'pass' ? 'pass' : 'fail') : 'never';
}

/** `latest`: the newest complete session whose newest validation did not fail. */
export async function chooseSession(config: DrConfig, wanted: string | undefined, force: boolean): Promise<{ session: string; manifest: Manifest; validation: 'pass' | 'fail' | 'never'; warnings: string[] }> {
  const all = await reports(config);
  const warnings: string[] = [];
  if (wanted && wanted !== 'latest') {
    assertSessionName(wanted);
    let manifest: Manifest;
    try {
      manifest = await readManifest(localPath(config.backupDir, rel.manifest(wanted)));
    } catch (err) {
      throw new InvalidInputError(`session ${wanted} cannot be used: ${(err as Error).message}`);
    }
    const validation = validationOf(all, wanted);
    if (validation === 'fail') {
      if (!force) throw new InvalidInputError(`session ${wanted} failed validation: refused (use --force to recover from it anyway)`);
      warnings.push(`session ${wanted} FAILED validation; recovering from it because --force was given`);
    }
    if (manifest.status !== 'complete') warnings.push(`session ${wanted} is ${manifest.status}: only its complete tenants can be recovered`);
    return { session: wanted, manifest, validation, warnings };
  }
  const names = (await readdir(config.sessionsDir).catch(() => [] as string[])).filter((n) => SESSION_NAME.test(n)).sort().reverse();
  for (const name of names) {
    let manifest: Manifest;
    try {
      manifest = await readManifest(path.join(config.sessionsDir, name, MANIFEST_FILE));
    } catch {
      continue;
    }
    if (manifest.status !== 'complete') continue;
    const validation = validationOf(all, name);
    if (validation === 'fail') {
      warnings.push(`skipped ${name}: it failed validation`);
      continue;
    }
    if (validation === 'never') warnings.push(`session ${name} was never validated (run odoo-dr validate ${name} --restore-test)`);
    return { session: name, manifest, validation, warnings };
  }
  throw new InvalidInputError(`no complete, non-failed backup session in ${config.sessionsDir}`);
}

async function available(dir: string): Promise<number | undefined> {
  try {
    const s = await statfs(dir);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}

export async function planRecovery(
  config: DrConfig,
  input: { session?: string; mode: RecoveryMode; tenants?: string[]; fromCloud: boolean; force: boolean },
): Promise<RecoveryPlan> {
  if (!RECOVERY_MODES.includes(input.mode)) throw new InvalidInputError(`mode must be one of ${RECOVERY_MODES.join(', ')}, got "${input.mode}"`);
  const chosen = await chooseSession(config, input.session, input.force);
  const { manifest } = chosen;
  const warnings = [...chosen.warnings];
  const inSession = Object.entries(manifest.tenants).filter(([, e]) => e.status === 'complete').map(([t]) => t);
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
  const current = await discoverTenants(config, tenants.length ? { include: tenants } : {});
  const planned: PlannedTenant[] = tenants.map((tenant) => {
    const entry = manifest.tenants[tenant]!;
    const now = current.tenants.find((t) => t.name === tenant);
    const db = input.mode === 'full' || input.mode === 'database-only';
    const files = input.mode === 'full' || input.mode === 'files-only';
    const steps = [
      ...(input.fromCloud ? ['download the tenant artifacts from the bucket'] : []),
      ...(db ? ['restore the dump into a shadow database (owners kept, not listed by Odoo)'] : []),
      ...(files ? ['restore the filestore into a shadow folder, every file verified'] : []),
      ...(db ? ['verify the shadow copy (modules, row counts, attachments, admin, database.uuid kept)'] : []),
      ...(db && !files ? ['keep today\'s filestore (a hard-linked copy goes with the shadow)'] : []),
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
    const dataDir = await withClient(config.postgres, config.postgres.maintenanceDb, async (c) =>
      (await c.query<{ d: string }>("SELECT current_setting('data_directory') AS d")).rows[0]!.d,
    ).catch(() => undefined);
    const avail = dataDir ? await available(dataDir) : undefined;
    space.push({ what: 'shadow databases', path: dataDir ?? '(PostgreSQL server)', neededBytes: dbNeeded, availableBytes: avail, ok: avail === undefined ? undefined : avail > dbNeeded });
    if (avail === undefined) warnings.push('free space on the PostgreSQL server cannot be checked from here');
    const scratch = await available(config.backupDir);
    const biggest = Math.max(0, ...planned.map((t) => t.dumpBytes * 8));
    space.push({ what: 'decrypted dump (largest)', path: config.backupDir, neededBytes: biggest, availableBytes: scratch, ok: scratch === undefined ? undefined : scratch > biggest });
  }
  if (input.mode === 'full' || input.mode === 'files-only') {
    const avail = await available(config.odoo.filestoreRoot);
    space.push({ what: 'shadow filestores', path: config.odoo.filestoreRoot, neededBytes: filesNeeded, availableBytes: avail, ok: avail === undefined ? undefined : avail > filesNeeded });
  }
  for (const s of space) if (s.ok === false) warnings.push(`not enough space for ${s.what} in ${s.path}`);

  const rate = (await reports(config))
    .map((r) => r.report.projectedRto?.secondsPerGiB ?? r.report.restores?.[0]?.secondsPerGiB)
    .find((x): x is number => typeof x === 'number' && x > 0);
  const bytes = planned.reduce((a, t) => a + t.currentDatabaseBytes + t.filestoreBytes, 0);
  const expectedMinutes = rate === undefined ? undefined : ((bytes / 1024 ** 3) * rate) / 60;
  if (rate === undefined) warnings.push('no measured restore rate yet (run odoo-dr drill -m restore-only): duration unknown');
  return { session: chosen.session, mode: input.mode, fromCloud: input.fromCloud, tenants: planned, space, expectedMinutes, warnings, validation: chosen.validation };
}
