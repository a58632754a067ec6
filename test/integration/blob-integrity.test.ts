/**
 * Filestore blobs are shared by every session that lists them: a damaged one must never be reused
 * into a session marked complete. Real PostgreSQL, real age, a generated tenant.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, appendFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { dumpDatabase } from '../../src/backup/database';
import { backupFilestore, readFilestoreIndex, type FilestoreEntry } from '../../src/backup/filestore';
import { localPath, rel } from '../../src/backup/layout';
import { finalizeSession } from '../../src/backup/session';
import { decryptToFile, readIdentity, recipientsFor } from '../../src/crypto/age';
import { findClientTools } from '../../src/pgtools';
import { serverVersion } from '../../src/postgres';
import { createTenant, dropTenant, type PgAdminConnection } from '../fixtures/odoo-tenants';
import { stackConfig, uniqueSuffix } from '../helpers/config';

describe('filestore blobs: damaged blobs are repaired, never reused; finalisation checks every blob', function () {
  this.timeout(300_000);
  const s = uniqueSuffix();
  const work = mkdtempSync(path.join(tmpdir(), 'odoo-dr-blobs-'));
  const backupDir = path.join(work, 'backups');
  const dataDir = path.join(work, 'odoo-data');
  const config = stackConfig({ DR_BACKUP_DIR: backupDir, DR_LOG_DIR: path.join(work, 'logs'), ODOO_DATA_DIR: dataDir });
  const tenant = `blobs-${s}`;
  const admin = (): PgAdminConnection => {
    const { host, port, user, password } = config.postgres;
    return { host, port, user, ...(password ? { password } : {}) };
  };
  const session = (n: number) => `backup_2026010${n}_000000_bl${s}`;
  const entries = async (sess: string): Promise<FilestoreEntry[]> => {
    const out: FilestoreEntry[] = [];
    for await (const e of readFilestoreIndex(localPath(backupDir, rel.filestoreIndex(sess, tenant)))) out.push(e);
    return out;
  };
  const blobFile = (sha1: string) => localPath(backupDir, rel.blob(sha1));

  before(async () => {
    mkdirSync(backupDir, { recursive: true });
    await createTenant(admin(), dataDir, { name: tenant, moveLines: 500, files: 12, fileSize: 70_000 });
  });
  after(async () => {
    await dropTenant(admin(), dataDir, tenant).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  });

  it('a truncated and an extended blob are written again by the next backup (which decrypt to their SHA-1); sound ones are reused', async () => {
    const recipients = await recipientsFor(config);
    const first = await backupFilestore({ config, session: session(1), tenant, recipients, cloud: false });
    assert.equal(first.blobsRepaired, 0);
    const listed = await entries(session(1));
    const [a, b] = listed.filter((e) => e.size > 0);
    assert.ok(a && b && a.sha1 !== b.sha1);
    truncateSync(blobFile(a.sha1), Math.floor(statSync(blobFile(a.sha1)).size / 2));
    appendFileSync(blobFile(b.sha1), 'junk');
    const second = await backupFilestore({ config, session: session(2), tenant, recipients, cloud: false });
    assert.equal(second.blobsRepaired, 2);
    assert.equal(second.blobsReused + second.blobsStored + second.blobsRepaired, second.files);
    const identity = await readIdentity(config.encryption.identityFile!);
    for (const e of [a, b]) {
      const out = path.join(work, `${e.sha1}.out`);
      await decryptToFile(identity, blobFile(e.sha1), out);
      assert.equal(createHash('sha1').update(readFileSync(out)).digest('hex'), e.sha1);
    }
  });

  it('finalisation fails a tenant one of whose blobs went missing after its backup, and leaves nothing of it in the session', async () => {
    const recipients = await recipientsFor(config);
    const tools = await findClientTools((await serverVersion(config.postgres)).major);
    const sess = session(3);
    const dump = await dumpDatabase({ config, tools, session: sess, tenant, recipients });
    const files = await backupFilestore({ config, session: sess, tenant, recipients, cloud: false });
    const { index, missing: _m, ...counts } = files;
    const gone = (await entries(sess)).find((e) => e.size > 0)!;
    unlinkSync(blobFile(gone.sha1));
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
    assert.match(manifest.tenants[tenant]?.error ?? '', new RegExp(`blob blobs/${gone.sha1.slice(0, 2)}/${gone.sha1}\\.age .* is missing`));
    assert.equal(manifest.status, 'failed');
    assert.ok(!existsSync(localPath(backupDir, rel.tenantDir(sess, tenant))), "the failed tenant's dump and index are removed");
  });
});
