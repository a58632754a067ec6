/**
 * Filestore packs are shared by every session that lists them: a damaged one must never be reused
 * into a session marked complete. Real PostgreSQL, real age and zstd, a generated tenant.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { dumpDatabase } from '../../src/backup/database';
import { backupFilestore, readFilestoreIndex, type FilestoreEntry } from '../../src/backup/filestore';
import { localPath, rel } from '../../src/backup/layout';
import { PACK_TARGET_BYTES } from '../../src/backup/packs';
import { finalizeSession } from '../../src/backup/session';
import { readIdentity, recipientsFor } from '../../src/crypto/age';
import { restoreFilestore } from '../../src/restore/filestore';
import { findClientTools } from '../../src/pgtools';
import { serverVersion } from '../../src/postgres';
import { createTenant, dropTenant, type PgAdminConnection } from '../fixtures/odoo-tenants';
import { stackConfig, uniqueSuffix } from '../helpers/config';
import { adminConnection } from '../helpers/pg';

describe('filestore packs: damaged packs are never reused, unchanged files are not read again; finalisation checks every pack', function () {
  this.timeout(300_000);
  const s = uniqueSuffix();
  const work = mkdtempSync(path.join(tmpdir(), 'odoo-dr-packs-'));
  const backupDir = path.join(work, 'backups');
  const dataDir = path.join(work, 'odoo-data');
  const config = stackConfig({ DR_BACKUP_DIR: backupDir, DR_LOG_DIR: path.join(work, 'logs'), ODOO_DATA_DIR: dataDir });
  const tenant = `packs-${s}`;
  const admin = (): PgAdminConnection => adminConnection(config);
  const session = (n: number) => `backup_2026010${n}_000000_bl${s}`;
  const indexOf = (sess: string) => localPath(backupDir, rel.filestoreIndex(sess, tenant));
  const entries = async (sess: string): Promise<FilestoreEntry[]> => {
    const out: FilestoreEntry[] = [];
    for await (const e of readFilestoreIndex(indexOf(sess))) out.push(e);
    return out;
  };
  const packFile = (id: string) => localPath(backupDir, rel.pack(id));

  before(async () => {
    mkdirSync(backupDir, { recursive: true });
    // Files over the in-memory limit (1 MiB) are streamed into packs: one and a half packs' worth make two packs.
    const fileSize = 1_250_000;
    await createTenant(admin(), dataDir, { name: tenant, moveLines: 500, files: Math.ceil((1.5 * PACK_TARGET_BYTES) / fileSize), fileSize });
  });
  after(async () => {
    await dropTenant(admin(), dataDir, tenant).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  });

  it('reuses sound packs without reading a file; a truncated pack is not reused, its files are packed again and restore equal', async () => {
    const recipients = await recipientsFor(config);
    const first = await backupFilestore({ config, session: session(1), tenant, recipients, cloud: false });
    assert.ok(first.packsStored >= 2, `${first.packsStored} packs`);
    assert.equal(first.blobsStored, first.files);
    const second = await backupFilestore({ config, session: session(2), tenant, recipients, cloud: false, reuseFrom: [indexOf(session(1))] });
    assert.equal(second.blobsReused, second.files, 'every file reused');
    assert.equal(second.packsStored, 0);
    const packs = [...new Set((await entries(session(1))).map((e) => e.pack!))];
    const damaged = packs[0]!;
    truncateSync(packFile(damaged), Math.floor(statSync(packFile(damaged)).size / 2));
    const third = await backupFilestore({ config, session: session(3), tenant, recipients, cloud: false, reuseFrom: [indexOf(session(1))] });
    assert.equal(third.blobsRepaired, 1, 'one damaged pack');
    assert.ok(third.blobsStored > 0 && third.blobsReused > 0 && third.blobsStored + third.blobsReused === third.files, JSON.stringify(third));
    assert.ok(!(await entries(session(3))).some((e) => e.pack === damaged), 'the damaged pack is not listed');
    const dest = path.join(work, 'restored');
    const restored = await restoreFilestore({
      config,
      indexFile: indexOf(session(3)),
      identity: await readIdentity(config.encryption.identityFile!),
      destDir: dest,
    });
    assert.deepEqual(restored.problems, []);
    for (const e of await entries(session(3)))
      assert.equal(
        createHash('sha1')
          .update(readFileSync(path.join(dest, e.path)))
          .digest('hex'),
        e.sha1,
      );
  });

  it('finalisation fails a tenant one of whose packs went missing after its backup, and leaves nothing of it in the session', async () => {
    const recipients = await recipientsFor(config);
    const tools = await findClientTools((await serverVersion(config.postgres)).major);
    const sess = session(4);
    const dump = await dumpDatabase({ config, tools, session: sess, tenant, recipients });
    const files = await backupFilestore({ config, session: sess, tenant, recipients, cloud: false });
    const { index, missing: _m, ...counts } = files;
    const gone = (await entries(sess))[0]!.pack!;
    unlinkSync(packFile(gone));
    const { manifest } = await finalizeSession(config, {
      session: sess,
      startedAt: new Date().toISOString(),
      startedBy: 'test',
      workflowId: 'test',
      postgres: { server: '15', pgDump: dump.artifact.pgDump },
      recipients,
      cloud: false,
      tenants: { [tenant]: { status: 'complete', durationMs: 1, database: dump.artifact, filestore: { index, ...counts }, odoo: dump.facts } },
      warnings: [],
    });
    assert.equal(manifest.tenants[tenant]?.status, 'failed');
    assert.match(manifest.tenants[tenant]?.error ?? '', new RegExp(`filestore pack packs/${gone.slice(0, 2)}/${gone}\\.tar\\.zst\\.age is missing`));
    assert.equal(manifest.status, 'failed');
    assert.ok(!existsSync(localPath(backupDir, rel.tenantDir(sess, tenant))), "the failed tenant's dump and index are removed");
  });
});
