/**
 * A tenant's dump and its manifest facts describe one snapshot: the facts (exact row counts) are
 * read in the exported snapshot while pg_dump runs, so rows written meanwhile are in neither; a
 * facts query that fails stops pg_dump and leaves no dump. Real stack (PostgreSQL, zstd, age).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { dumpDatabase } from '../../src/backup/database';
import { localPath, rel } from '../../src/backup/layout';
import { recipientsFor } from '../../src/crypto/age';
import { findClientTools, type PgTools } from '../../src/pgtools';
import { serverVersion } from '../../src/postgres';
import { createTenant, dropTenant } from '../fixtures/odoo-tenants';
import { stackConfig, uniqueSuffix } from '../helpers/config';
import { adminConnection } from '../helpers/pg';
import { rejection } from '../helpers/assert';

describe('database dump and its facts: one snapshot', function () {
  this.timeout(600_000);
  const s = uniqueSuffix();
  const work = mkdtempSync(path.join(tmpdir(), 'odoo-dr-dump-snapshot-'));
  const backupDir = path.join(work, 'backups');
  const dataDir = path.join(work, 'odoo-data');
  const config = stackConfig({ DR_BACKUP_DIR: backupDir, DR_LOG_DIR: path.join(work, 'logs'), ODOO_DATA_DIR: dataDir });
  const tenant = `dump-snap-${s}`;
  let tools: PgTools;
  let recipients: string[];

  const tenantClient = async () => {
    const c = new pg.Client({ ...adminConnection(config), database: tenant });
    await c.connect();
    return c;
  };
  const partners = async () => {
    const c = await tenantClient();
    try {
      return Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM res_partner')).rows[0]!.n);
    } finally {
      await c.end();
    }
  };
  /** Rows of res_partner in the dump, read back by hand (`age -d | zstd -d | pg_restore`). */
  const partnersInDump = (file: string) => {
    const sql = execFileSync(
      'bash',
      ['-c', 'age -d -i "$1" "$2" | zstd -d | "$3" --data-only --table=res_partner -f -', 'dump', config.encryption.identityFile!, file, tools.pgRestore],
      { maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' },
    );
    const copy = sql.slice(sql.indexOf('COPY public.res_partner'));
    return copy.slice(copy.indexOf('\n') + 1, copy.indexOf('\n\\.')).split('\n').length;
  };

  before(async () => {
    mkdirSync(backupDir, { recursive: true });
    await createTenant(adminConnection(config), dataDir, { name: tenant, moveLines: 100_000, files: 0, partners: 40 });
    tools = await findClientTools((await serverVersion(config.postgres)).major);
    recipients = await recipientsFor(config);
  });

  after(async () => {
    await dropTenant(adminConnection(config), dataDir, tenant).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  });

  it('rows written while pg_dump runs are neither counted nor dumped', async () => {
    const before = await partners();
    let inserted: Promise<void> | undefined;
    const dump = await dumpDatabase({
      config,
      tools,
      session: `backup_20260101_000000_ds${s}`,
      tenant,
      recipients,
      // At the first progress report pg_dump is running: five partners are committed meanwhile.
      onProgress: () => {
        inserted ??= (async () => {
          const c = await tenantClient();
          try {
            await c.query("INSERT INTO res_partner (name, active) SELECT 'added during the dump ' || i, true FROM generate_series(1, 5) i");
          } finally {
            await c.end();
          }
        })();
      },
    });
    await inserted;
    assert.equal(await partners(), before + 5);
    assert.equal(dump.facts.tables.res_partner, before);
    assert.equal(partnersInDump(localPath(backupDir, dump.artifact.path)), before);
  });

  it('a facts query that fails stops pg_dump: the error is the query’s, no dump is left', async () => {
    const session = `backup_20260101_000000_df${s}`;
    // A column the facts read is gone: their query fails while pg_dump has started.
    const c = await tenantClient();
    try {
      await c.query('ALTER TABLE ir_attachment RENAME COLUMN file_size TO file_size_gone');
      const err = await rejection(dumpDatabase({ config, tools, session, tenant, recipients }));
      assert.match(err.message, /file_size/);
    } finally {
      await c.query('ALTER TABLE ir_attachment RENAME COLUMN file_size_gone TO file_size').catch(() => undefined);
      await c.end();
    }
    const dir = path.dirname(localPath(backupDir, rel.database(session, tenant)));
    const left = existsSync(dir) ? readdirSync(dir) : [];
    assert.deepEqual(left, [], `left in the tenant's folder: ${left.join(', ')}`);
  });
});
