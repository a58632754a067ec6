/**
 * A real restore test of one tenant: its dump into a scratch database (owned by the DR role, so
 * no Odoo process lists it), its filestore into a scratch folder, the copy neutralized (no mail,
 * no crons but the autovacuum, no fetchmail, payments in test mode, a new database.uuid), then the
 * Odoo-aware checks against the manifest. The scratch copy is always dropped afterwards; a worker
 * that dies midway leaves a marked scratch database that the sweep removes.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { DrConfig } from '../config';
import { localPath } from '../backup/layout';
import type { Manifest } from '../backup/manifest';
import { parseToolVersion } from '../pgtools';
import { clientToolsForServer, withClient } from '../postgres';
import { neutralizeDatabase, neutralizationState } from '../odoo/neutralize';
import { odooChecks } from '../odoo/checks';
import { restoreDump } from '../restore/database';
import { restoreFilestore, VerifiedFiles } from '../restore/filestore';
import { dropScratchDatabase, ensureScratchRoot, scratchName } from '../restore/scratch';
import { createRestoreRole, dropRestoreRole } from '../restore/restore-role';
import { archiveVerdict, dumpIntegrityCheck, runCheck, type CheckResult } from './session';

export interface RestoreTestResult {
  tenant: string;
  scratchDatabase: string;
  checks: CheckResult[];
  /** Database restore (decrypt, decompress, pg_restore) and filestore restore, milliseconds. */
  databaseMs: number;
  filestoreMs: number;
  /** Sizes restored: encrypted dump bytes, restored database bytes, filestore bytes. */
  dumpBytes: number;
  databaseBytes: number;
  filestoreBytes: number;
  filestoreFiles: number;
}

/** The `filestore-blobs` check as the filestore restore answered it (its wording as filestoreBlobsCheck's). */
function filestoreBlobsFromRestore(restore: CheckResult, files: { checked: number; problemCount: number; problems: string[] }): CheckResult {
  const { durationMs: _, ...same } = restore;
  const { checked, problemCount, problems } = files;
  if (restore.status === 'pass')
    return { ...same, name: 'filestore-blobs', message: `${checked} files: every pack and blob present, decrypted, SHA-1 and size match` };
  // A systemic failure (index unreadable, disk full): the restore's own message.
  if (problemCount === 0) return { ...same, name: 'filestore-blobs' };
  return {
    ...same,
    name: 'filestore-blobs',
    message: `${problemCount} of ${checked} files are not restorable: ${problems.slice(0, 5).join('; ')}${problemCount > 5 ? '; …' : ''}`,
  };
}

export async function restoreTestTenant(opts: {
  config: DrConfig;
  manifest: Manifest;
  /** Folder in the session layout holding the tenant's artifacts: DR_BACKUP_DIR (default), or a mirror filled from the bucket (fetchTenantFiles). */
  backupRoot?: string;
  tenant: string;
  identity: string;
  id: string;
  signal?: AbortSignal;
  onProgress?: (phase: string) => void;
  /**
   * Also report the `filestore-blobs` check (every file of the index present, decrypted, SHA-1 and
   * size as recorded) from this restore, which verifies exactly that: the caller did not run it.
   */
  filestoreBlobsCheck?: boolean;
  /**
   * Also report the `dump-integrity` check (the whole dump decrypted, decompressed, its table of
   * contents listed) from this restore, which does exactly that on its way (the caller did not run
   * it); checked on its own when the restore stopped before reading the dump.
   */
  dumpIntegrityCheck?: boolean;
}): Promise<RestoreTestResult> {
  const { config, manifest, tenant, identity } = opts;
  const backupRoot = opts.backupRoot ?? config.backupDir;
  const entry = manifest.tenants[tenant];
  const scratch = scratchName(config, tenant, opts.id);
  const result: RestoreTestResult = {
    tenant,
    scratchDatabase: scratch,
    checks: [],
    databaseMs: 0,
    filestoreMs: 0,
    dumpBytes: entry?.database?.bytes ?? 0,
    databaseBytes: 0,
    filestoreBytes: 0,
    filestoreFiles: 0,
  };
  if (!entry || entry.status !== 'complete' || !entry.database || !entry.filestore || !entry.odoo) {
    result.checks.push({ name: 'restore', tenant, status: 'fail', message: `tenant ${tenant} has no complete backup in session ${manifest.session}` });
    return result;
  }
  const scratchDir = path.join(await ensureScratchRoot(config), scratch);
  const dumpMajor = parseToolVersion(`(PostgreSQL) ${entry.database.pgDump}`)?.major;
  // The copy is restored, neutralized and checked by a role with no rights beyond it (never a superuser).
  const role = await createRestoreRole(config);
  try {
    // The database and the filestore are restored at the same time: pg_restore works in the
    // server's processes while the files are decrypted, checked and written here.
    let archiveRead: { plainBytes: number; listing: string } | undefined;
    const restoringDatabase = runCheck(
      'restore-database',
      async () => {
        opts.onProgress?.('restore-database');
        const started = Date.now();
        const r = await restoreDump({
          config,
          encryptedDump: localPath(backupRoot, entry.database!.path),
          identity,
          database: scratch,
          owner: config.postgres.user,
          keepOwnership: false,
          asRole: role,
          // Marked as scratch from its creation: a worker dying mid-restore leaves something the sweep removes.
          scratch: { tenant, purpose: 'restore-test' },
          ...(dumpMajor !== undefined ? { dumpPgMajor: dumpMajor } : {}),
          ...(opts.signal ? { signal: opts.signal } : {}),
          onArchiveRead: (archive) => (archiveRead = archive),
        });
        result.databaseMs = Date.now() - started;
        return { status: 'pass', message: `${entry.database!.path} restored into ${scratch} in ${(r.durationMs / 1000).toFixed(1)} s (${r.pgRestore})` };
      },
      { tenant, artifact: entry.database.path },
    );

    // What the restore verified against the signed index: the attachments check does not read it again.
    const verifiedFiles = new VerifiedFiles();
    const filesSeen = { checked: 0, problemCount: 0, problems: [] as string[] };
    const restoringFiles = runCheck(
      'restore-filestore',
      async () => {
        opts.onProgress?.('restore-filestore');
        const started = Date.now();
        const r = await restoreFilestore({
          config,
          indexFile: localPath(backupRoot, entry.filestore!.index.path),
          blobRoot: backupRoot,
          identity,
          destDir: scratchDir,
          onRestored: verifiedFiles.record,
          // Each report is a heartbeat of the activity (every few dozen files).
          onProgress: () => opts.onProgress?.('restore-filestore'),
          // A scratch copy, dropped at the end: nothing needs to reach the disk.
          durable: false,
          ...(opts.signal ? { signal: opts.signal } : {}),
        });
        result.filestoreMs = Date.now() - started;
        result.filestoreBytes = r.bytes;
        result.filestoreFiles = r.files;
        Object.assign(filesSeen, { checked: r.files + r.problemCount, problemCount: r.problemCount, problems: r.problems });
        if (r.problems.length) {
          return {
            status: 'fail',
            message: `${r.problems.length} files not restored: ${r.problems.slice(0, 5).join('; ')}${r.problems.length > 5 ? '; …' : ''}`,
          };
        }
        return { status: 'pass', message: `${r.files} files (${r.bytes} bytes) restored and verified` };
      },
      { tenant, artifact: entry.filestore.index.path },
    );
    const [restored, files] = await Promise.all([restoringDatabase, restoringFiles]);
    result.checks.push(restored, files);
    if (opts.filestoreBlobsCheck) result.checks.push(filestoreBlobsFromRestore(files, filesSeen));
    if (opts.dumpIntegrityCheck) {
      const dump = entry.database;
      const read = archiveRead;
      result.checks.push(
        read
          ? await runCheck('dump-integrity', () => Promise.resolve(archiveVerdict(dump, read.plainBytes, read.listing)), { tenant, artifact: dump.path })
          : await dumpIntegrityCheck(
              await clientToolsForServer(config.postgres),
              identity,
              dump,
              () => Promise.resolve(localPath(backupRoot, dump.path)),
              tenant,
              opts.signal,
            ),
      );
    }
    if (restored.status !== 'pass') return result;

    // Neutralize before anything else can look at the copy, then check it like Odoo would.
    await withClient(role.settings, scratch, async (client) => {
      result.checks.push(
        await runCheck(
          'neutralize',
          async () => {
            const before = await neutralizationState(client);
            const done = await neutralizeDatabase(client, { newUuid: true });
            const after = await neutralizationState(client);
            const problems: string[] = [];
            if (!after.isNeutralized) problems.push('database.is_neutralized is not true');
            if (after.activeMailServers.some((m) => m.host !== 'invalid') || after.activeMailServers.length !== 1) {
              problems.push(`active mail servers: ${JSON.stringify(after.activeMailServers)}`);
            }
            if (after.activeFetchmail > 0) problems.push(`${after.activeFetchmail} fetchmail servers still active`);
            if (after.activeCrons.length > 1) problems.push(`crons still active: ${after.activeCrons.join(', ')}`);
            if (before.uuid && after.uuid === before.uuid) problems.push('database.uuid was not changed');
            return problems.length
              ? { status: 'fail', message: problems.join('; ') }
              : {
                  status: 'pass',
                  message: `neutralized (${done.actions.length} actions): crons active ${after.activeCrons.join(', ') || 'none'}, one dummy mail server, no fetchmail, new database.uuid`,
                };
          },
          { tenant },
        ),
      );
      const odoo = await odooChecks({ client, expected: entry.odoo!, filestoreDir: scratchDir, verifiedFiles });
      result.checks.push(...odoo.map((c) => ({ ...c, tenant })));
      const size = await client.query<{ s: string }>('SELECT pg_database_size(current_database()) AS s');
      result.databaseBytes = Number(size.rows[0]!.s);
    });
    return result;
  } finally {
    opts.onProgress?.('cleanup');
    // The database (the server's work) and the folder (unlinking every file) are removed at once.
    const dropped = (async () => {
      await dropScratchDatabase(config, scratch).catch(() => undefined);
      await dropRestoreRole(config, role.name).catch(() => undefined);
    })();
    // (`dropped` never rejects: a failed removal of the folder is reported once the drop is done too.)
    await Promise.all([dropped, rm(scratchDir, { recursive: true, force: true }).finally(() => dropped)]);
  }
}
