/**
 * Names of everything a recovery creates, built in one place.
 *
 * Databases: at most 63 bytes (PostgreSQL's NAMEDATALEN - 1) and valid Odoo database names. When the
 * tenant's name has to be shortened to fit, a short hash of the full name is kept so that two long
 * tenants sharing a prefix never get the same shadow or pre-recovery name.
 *
 * Filestore folders: beside the tenant's folder under the filestore root (same filesystem, so the
 * swap is an atomic rename) and dot-prefixed, so they can never be the folder of a tenant (Odoo's
 * database names start with a letter or digit).
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { DrConfig } from '../config';
import { InvalidInputError } from '../errors';
import { ODOO_DB_NAME } from '../tenants';

/** What the filestore folder names need of the configuration. */
export type FilestorePaths = { odoo: Pick<DrConfig['odoo'], 'filestoreRoot'> };

const MAX_NAME_BYTES = 63;
/** Recovery ids: short, letters and digits (they end up in database and folder names). */
export const RECOVERY_ID = /^[A-Za-z0-9]{1,24}$/;
/** `YYYYMMDDHHMMSS` (UTC). */
export const STAMP = /^\d{14}$/;

export const SHADOW_INFIX = '_dr_shadow_';
export const PRE_RECOVERY_INFIX = '_pre_recovery_';

function checkTenant(tenant: string): void {
  if (!ODOO_DB_NAME.test(tenant) || Buffer.byteLength(tenant) > MAX_NAME_BYTES) {
    throw new InvalidInputError(`"${tenant}" is not a valid Odoo database name (letters, digits, _ . -, at most 63 bytes)`);
  }
}

function checkId(id: string): void {
  if (!RECOVERY_ID.test(id)) throw new InvalidInputError(`recovery id ${JSON.stringify(id)} must be 1 to 24 letters or digits`);
}

function checkStamp(stamp: string): void {
  if (!STAMP.test(stamp) || Number.isNaN(stampTime(stamp).getTime())) {
    throw new InvalidInputError(`recovery stamp ${JSON.stringify(stamp)} must be a UTC time YYYYMMDDHHMMSS`);
  }
}

/** `YYYYMMDDHHMMSS` (UTC) of a date. */
export function recoveryStamp(date: Date): string {
  return date.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/** The date of a `YYYYMMDDHHMMSS` stamp (UTC); Invalid Date if it is not one. */
export function stampTime(stamp: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(stamp);
  if (!m) return new Date(NaN);
  const d = new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`);
  return d;
}

/** `<tenant><tail>`, the tenant shortened (+ `_<hash>`) when the whole does not fit in 63 bytes. */
function fit(tenant: string, tail: string): string {
  const whole = `${tenant}${tail}`;
  if (Buffer.byteLength(whole) <= MAX_NAME_BYTES) return whole;
  const hash = createHash('sha1').update(tenant).digest('hex').slice(0, 6);
  const room = MAX_NAME_BYTES - Buffer.byteLength(tail) - hash.length - 1;
  let prefix = '';
  for (const ch of tenant) {
    if (Buffer.byteLength(prefix + ch) > room) break;
    prefix += ch;
  }
  return `${prefix}_${hash}${tail}`;
}

/** `<tenant>_dr_shadow_<id>` (tenant part shortened if needed): the database a recovery restores into. */
export function shadowName(tenant: string, id: string): string {
  checkTenant(tenant);
  checkId(id);
  return fit(tenant, `${SHADOW_INFIX}${id}`);
}

/** `<tenant>_pre_recovery_<YYYYMMDDHHMMSS>` (tenant part shortened if needed): where the replaced database is kept. */
export function preRecoveryName(tenant: string, stamp: string): string {
  checkTenant(tenant);
  checkStamp(stamp);
  return fit(tenant, `${PRE_RECOVERY_INFIX}${stamp}`);
}

/** The tenant's live filestore folder, `<filestoreRoot>/<tenant>`. */
export function filestoreDir(config: FilestorePaths, tenant: string): string {
  checkTenant(tenant);
  return path.join(config.odoo.filestoreRoot, tenant);
}

/** `<filestoreRoot>/.<tenant>.dr-shadow-<id>`: the shadow filestore (same filesystem as the tenant's folder). */
export function filestoreShadowDir(config: FilestorePaths, tenant: string, id: string): string {
  checkTenant(tenant);
  checkId(id);
  return path.join(config.odoo.filestoreRoot, `.${tenant}.dr-shadow-${id}`);
}

/** `<filestoreRoot>/.<tenant>.pre-recovery-<stamp>`: where the replaced filestore is kept. */
export function filestorePreRecoveryDir(config: FilestorePaths, tenant: string, stamp: string): string {
  checkTenant(tenant);
  checkStamp(stamp);
  return path.join(config.odoo.filestoreRoot, `.${tenant}.pre-recovery-${stamp}`);
}

/** Parses a pre-recovery filestore folder name; undefined if it is not one. */
export function parseFilestorePreRecoveryDir(name: string): { tenant: string; stamp: string } | undefined {
  const m = /^\.(.+)\.pre-recovery-(\d{14})$/.exec(name);
  if (!m || !ODOO_DB_NAME.test(m[1]!) || Number.isNaN(stampTime(m[2]!).getTime())) return undefined;
  return { tenant: m[1]!, stamp: m[2]! };
}
