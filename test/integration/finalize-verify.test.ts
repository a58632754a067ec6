/**
 * Finalisation re-verifies every artifact against what was recorded when it was written, without
 * reading again a file this worker process wrote and hashed on the way out while it is provably
 * untouched (same inode, size, mtime, ctime); any change since — a flipped byte, a touch — makes it
 * read and hash the file, and a changed byte fails the tenant. Real PostgreSQL and age, activities in
 * a mocked activity context (the same process as the finaliser, as with a session on one disk).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { createActivities, type FinalizeInput } from '../../activities';
import { localPath, rel } from '../../src/backup/layout';
import type { DrConfig } from '../../src/config';
import * as pipeline from '../../src/pipeline';
import * as hashing from '../../src/pipeline/hash';
import { backupSessionName } from '../../workflows/definitions';
import { createTenant, dropTenant, type PgAdminConnection } from '../fixtures/odoo-tenants';
import { stackConfig, uniqueSuffix } from '../helpers/config';
import { flipByte } from '../helpers/files';

describe('finalisation: verified, without re-reading what was hashed on the way out', function () {
  this.timeout(120_000);
  const s = uniqueSuffix();
  const dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-finalize-'));
  const tenant = `fv-${s}`;
  let config: DrConfig;
  const quiet = { logger: new DefaultLogger('ERROR') };
  const hashed: string[] = [];
  const realHashFile = hashing.hashFile;

  before(async () => {
    config = stackConfig({ DR_BACKUP_DIR: path.join(dir, 'backups'), ODOO_DATA_DIR: path.join(dir, 'data'), DR_LOG_DIR: path.join(dir, 'logs') });
    const { host, port, user, password } = config.postgres;
    const admin: PgAdminConnection = { host, port, user, ...(password ? { password } : {}) };
    await createTenant(admin, config.odoo.dataDir, { name: tenant, moveLines: 2000, files: 3 });
    // Which files finalisation reads and hashes: src/backup/session.ts calls it through src/pipeline, whose
    // re-export reads the defining module's binding at each call (the re-export itself cannot be assigned).
    (hashing as { hashFile: typeof hashing.hashFile }).hashFile = (file: string) => {
      hashed.push(file);
      return realHashFile(file);
    };
  });
  after(async () => {
    (hashing as { hashFile: typeof hashing.hashFile }).hashFile = realHashFile;
    const { host, port, user, password } = config.postgres;
    await dropTenant({ host, port, user, ...(password ? { password } : {}) }, config.odoo.dataDir, tenant);
    rmSync(dir, { recursive: true, force: true });
  });

  /** A session of one tenant, made by the activities of this process; `between` runs before finalisation. */
  const session = async (between?: (files: { dump: string; globals: string }) => void) => {
    const activities = createActivities({ config });
    const env = new MockActivityEnvironment({}, quiet);
    const name = backupSessionName(new Date(), uniqueSuffix());
    type A = typeof activities;
    const prepared: Awaited<ReturnType<A['prepareBackupSession']>> = await env.run(activities.prepareBackupSession, {
      session: name,
      cloud: false,
      workflowId: 'test/finalize',
    });
    const task = { session: name, recipients: prepared.recipients };
    const done: Awaited<ReturnType<A['backupTenant']>> = await env.run(activities.backupTenant, { ...task, tenant, cloud: false });
    const globals: Awaited<ReturnType<A['backupClusterGlobals']>> = await env.run(activities.backupClusterGlobals, { ...task, cloud: false });
    const files = { dump: localPath(config.backupDir, rel.database(name, tenant)), globals: localPath(config.backupDir, rel.globals(name)) };
    between?.(files);
    hashed.length = 0;
    const input: FinalizeInput = {
      session: name,
      startedAt: new Date().toISOString(),
      startedBy: 'test',
      workflowId: 'test/finalize',
      postgres: { server: prepared.postgres.server, pgDump: prepared.postgres.pgDump },
      recipients: prepared.recipients,
      cloud: false,
      tenants: { [tenant]: { status: 'complete', durationMs: done.entry.durationMs } },
      globals,
      warnings: [],
    };
    const manifest: Awaited<ReturnType<A['finalizeBackupSession']>> = await env.run(activities.finalizeBackupSession, input);
    return { manifest, files, index: localPath(config.backupDir, rel.filestoreIndex(name, tenant)) };
  };

  it('untouched: complete, the dump and the globals this process wrote are not read again (the file list, written elsewhere, is)', async () => {
    const { manifest, files, index } = await session();
    assert.equal(manifest.status, 'complete', JSON.stringify(manifest));
    assert.ok(!hashed.includes(files.dump), 'the dump was hashed on the way out');
    assert.ok(!hashed.includes(files.globals), 'the globals were hashed on the way out');
    assert.ok(hashed.includes(index), `the filestore index is read and hashed (${hashed.join(', ')})`);
  });

  it('a byte flipped in the dump after it was written: read again, and the tenant fails', async () => {
    const { manifest, files } = await session(({ dump }) => flipByte(dump));
    assert.ok(hashed.includes(files.dump));
    assert.equal(manifest.tenants[tenant]?.status, 'failed');
    assert.match(manifest.tenants[tenant]?.error ?? '', /local copy does not match what was written/);
  });

  it('a dump merely touched (mtime, ctime changed): read again, and it still verifies', async () => {
    const { manifest, files } = await session(({ dump }) => utimesSync(dump, new Date(), new Date(Date.now() - 60_000)));
    assert.ok(hashed.includes(files.dump), 'a file changed since it was written is read and hashed');
    assert.equal(manifest.status, 'complete');
  });

  it('unchangedSinceWritten: only for files written with `remember`, with the same size and hash', async () => {
    const file = path.join(dir, 'remembered');
    const written = await pipeline.runPipeline({ source: { name: 'printf', command: 'printf', args: ['hello'] }, stages: [], dest: file, remember: true });
    assert.equal(await pipeline.unchangedSinceWritten(file, written), true);
    assert.equal(await pipeline.unchangedSinceWritten(file, { ...written, sha256: '0'.repeat(64) }), false);
    const other = path.join(dir, 'not-remembered');
    const plain = await pipeline.runPipeline({ source: { name: 'printf', command: 'printf', args: ['hello'] }, stages: [], dest: other });
    assert.equal(await pipeline.unchangedSinceWritten(other, plain), false);
    // Replaced by another file of the same content (another inode): not the file that was hashed.
    await pipeline.runPipeline({ source: { name: 'printf', command: 'printf', args: ['hello'] }, stages: [], dest: `${file}.new` });
    renameSync(`${file}.new`, file);
    assert.equal(await pipeline.unchangedSinceWritten(file, written), false);
  });
});
