/**
 * Where backups live, locally and in the bucket. One layout for both:
 *
 *   <root>/sessions/backup_YYYYMMDD_HHMMSS_<id>/manifest.json           written last
 *   <root>/sessions/<session>/manifest.json.sig                          its signature (backup host's key)
 *   <root>/sessions/<session>/globals.sql.zst.age                        cluster roles (password hashes)
 *   <root>/sessions/<session>/config.tar.zst.age                         DR_CONFIG_PATHS archive
 *   <root>/sessions/<session>/tenants/<db>/database.dump.zst.age         pg_dump -Fc | zstd | age
 *   <root>/sessions/<session>/tenants/<db>/filestore.jsonl               file list: path, sha1, size, pack
 *   <root>/packs/<aa>/<sha256>.tar.zst.age                               filestore files, packed (src/backup/packs.ts)
 *   <root>/blobs/<aa>/<sha1>.age                                         filestore files of older sessions, one each
 *
 * Locally <root> is DR_BACKUP_DIR; in the bucket it is the DR_CLOUD_BUCKET prefix.
 */
import path from 'node:path';
import { InvalidInputError } from '../errors';
import { ODOO_DB_NAME } from '../odoo/db-name';

export const SESSION_NAME = /^backup_(\d{8})_(\d{6})_([a-z0-9]{6,12})$/;
export const MANIFEST_FILE = 'manifest.json';
/** Present while a session is being written; a crashed session keeps it and has no manifest. */
export const INCOMPLETE_MARKER = '.incomplete';

export function assertSessionName(name: string): void {
  if (!SESSION_NAME.test(name)) {
    throw new InvalidInputError(`"${name}" is not a backup session name (expected backup_YYYYMMDD_HHMMSS_<id>)`);
  }
}

/** Start time encoded in a session name. */
export function sessionTime(name: string): Date {
  const m = SESSION_NAME.exec(name);
  if (!m) throw new InvalidInputError(`"${name}" is not a backup session name`);
  const [d, t] = [m[1]!, m[2]!];
  return new Date(`${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}T${t.slice(0, 2)}:${t.slice(2, 4)}:${t.slice(4, 6)}Z`);
}

export function assertTenantName(name: string): void {
  // Tenant names become folder names: Odoo's own rule keeps them free of '/', '..' and the like.
  if (!ODOO_DB_NAME.test(name) || name === '..') {
    throw new InvalidInputError(`"${name}" is not a valid Odoo database name`);
  }
}

/** Paths relative to a root (local dir or bucket prefix), always with '/'. */
export const rel = {
  session: (session: string) => `sessions/${session}`,
  manifest: (session: string) => `sessions/${session}/${MANIFEST_FILE}`,
  /** OpenSSH signature of the manifest's exact bytes (src/crypto/signing.ts), written just before it. */
  signature: (session: string) => `sessions/${session}/${MANIFEST_FILE}.sig`,
  globals: (session: string) => `sessions/${session}/globals.sql.zst.age`,
  config: (session: string) => `sessions/${session}/config.tar.zst.age`,
  tenantDir: (session: string, tenant: string) => `sessions/${session}/tenants/${tenant}`,
  database: (session: string, tenant: string) => `sessions/${session}/tenants/${tenant}/database.dump.zst.age`,
  filestoreIndex: (session: string, tenant: string) => `sessions/${session}/tenants/${tenant}/filestore.jsonl`,
  /** Before packs: one age file per filestore file (still read for sessions made then). */
  blob: (sha1: string) => `blobs/${sha1.slice(0, 2)}/${sha1}.age`,
  /** A pack of filestore files, named by the SHA-256 of its (encrypted) bytes. */
  pack: (id: string) => `packs/${id.slice(0, 2)}/${id}.tar.zst.age`,
};

/** Absolute local path of a relative layout path. */
export function localPath(backupDir: string, relative: string): string {
  return path.join(backupDir, ...relative.split('/'));
}
