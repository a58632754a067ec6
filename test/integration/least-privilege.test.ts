/**
 * A dump read back from a bucket may have been written by an attacker. Here one carries a table
 * whose CHECK constraint calls a PL/pgSQL function doing `COPY … TO PROGRAM`: replayed by a
 * superuser it runs a shell command as the `postgres` OS user (shown first, so the test can fail).
 * odoo-dr's restores (scratch copies and shadows alike) connect as a role that is never a superuser:
 * the command is denied, nothing is written, the restore fails by name and leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readIdentity } from '../../src/crypto/age';
import { quoteIdent, withClient } from '../../src/postgres';
import { restoreDump } from '../../src/restore/database';
import { RESTORE_ROLE_PREFIX } from '../../src/restore/restore-role';
import { rejection } from '../helpers/assert';
import { stackConfig, uniqueSuffix } from '../helpers/config';
import { adminQuery, createDatabase, dropDatabase } from '../helpers/pg';

describe('least-privilege restores (real PostgreSQL, a malicious dump)', function () {
  this.timeout(120_000);
  const s = uniqueSuffix();
  const config = stackConfig();
  const bin = '/usr/lib/postgresql/15/bin';
  const work = mkdtempSync(path.join(tmpdir(), 'odoo-dr-lp-'));
  const evil = `lp-evil-${s}`;
  const withExt = `lp-ext-${s}`;
  const canary = `/tmp/odoo-dr-pwned-${s}`;
  const env = {
    ...process.env,
    PGHOST: config.postgres.host,
    PGPORT: String(config.postgres.port),
    PGUSER: config.postgres.user,
    PGPASSWORD: config.postgres.password ?? '',
  };
  const recipient = () => config.encryption.recipients[0]!;
  /** pg_dump -Fc | zstd | age, as a backup writes it. */
  const encryptedDump = (db: string): string => {
    const out = path.join(work, `${db}.dump.zst.age`);
    execFileSync('bash', ['-o', 'pipefail', '-c', `"${bin}/pg_dump" -Fc -d "$DB" | zstd -q -c | age -r "$R" > "$OUT"`], {
      env: { ...env, DB: db, R: recipient(), OUT: out },
    });
    return out;
  };
  const restoreRoles = async () =>
    ((await adminQuery('SELECT rolname FROM pg_roles WHERE rolname LIKE $1 ORDER BY 1', [`${RESTORE_ROLE_PREFIX}%`])) as Array<{ rolname: string }>).map(
      (r) => r.rolname,
    );
  const sql = (db: string, text: string) => execFileSync(`${bin}/psql`, ['-q', '-v', 'ON_ERROR_STOP=1', '-d', db, '-c', text], { env });

  before(async () => {
    await createDatabase(evil);
    // Harmless while the row goes in; the malicious body replaces it afterwards (a CHECK is not re-validated).
    sql(
      evil,
      `SET ROLE odoo;
      CREATE FUNCTION public.pwn(t text) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN RETURN true; END $$;
      CREATE TABLE public.evil (id int, v text CHECK (public.pwn(v)));
      INSERT INTO public.evil VALUES (1, 'x');
      CREATE OR REPLACE FUNCTION public.pwn(t text) RETURNS boolean LANGUAGE plpgsql AS $$
        BEGIN EXECUTE format('COPY (SELECT 1) TO PROGRAM %L', 'touch ${canary}'); RETURN true; END $$;`,
    );
    await createDatabase(withExt);
    sql(withExt, 'CREATE EXTENSION hstore; SET ROLE odoo; CREATE TABLE public.t (id int, h text);');
  });
  after(async () => {
    for (const db of [evil, withExt, `${evil}-super`, `${evil}-copy`, `${evil}-shadow`, `${withExt}-copy`]) await dropDatabase(db);
    rmSync(work, { recursive: true, force: true });
    rmSync(canary, { force: true });
  });

  it('the attack is real: replayed by a superuser, the dump runs a shell command', () => {
    const plain = path.join(work, 'plain.dump');
    execFileSync(`${bin}/pg_dump`, ['-Fc', '-d', evil, '-f', plain], { env });
    sql('postgres', `CREATE DATABASE ${quoteIdent(`${evil}-super`)}`);
    execFileSync(`${bin}/pg_restore`, ['-d', `${evil}-super`, plain], { env });
    assert.ok(existsSync(canary), 'COPY … TO PROGRAM ran as the postgres OS user');
    rmSync(canary, { force: true });
  });

  for (const mode of ['copy', 'shadow'] as const) {
    it(`odoo-dr's restore (${mode === 'copy' ? 'scratch copy, --no-owner' : 'shadow, owners kept'}) runs it without superuser rights: denied, nothing written`, async () => {
      const identity = await readIdentity(config.encryption.identityFile!);
      const rolesBefore = await restoreRoles();
      const err = await rejection(
        restoreDump({
          config,
          encryptedDump: encryptedDump(evil),
          identity,
          database: `${evil}-${mode}`,
          owner: config.postgres.user,
          keepOwnership: mode === 'shadow',
        }),
      );
      assert.equal(err.name, 'ArtifactCorruptedError', err.message);
      assert.match(
        err.message,
        /only a superuser or another role may do, refused: [\s\S]*must be superuser or have privileges of the pg_execute_server_program role/,
      );
      assert.equal(existsSync(canary), false, 'the shell command never ran');
      assert.deepEqual(await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [`${evil}-${mode}`]), [], 'the half-restored copy is dropped');
      assert.deepEqual(await restoreRoles(), rolesBefore, 'the restore role is dropped');
    });
  }

  it('an extension outside the allow-list is refused before anything runs; allowed ones are created by odoo-dr', async () => {
    const identity = await readIdentity(config.encryption.identityFile!);
    const err = await rejection(
      restoreDump({ config, encryptedDump: encryptedDump(withExt), identity, database: `${withExt}-copy`, owner: config.postgres.user, keepOwnership: false }),
    );
    assert.match(err.message, /needs extension\(s\) hstore, which odoo-dr does not create/);
    sql(withExt, 'DROP EXTENSION hstore; CREATE EXTENSION pg_trgm;');
    await restoreDump({
      config,
      encryptedDump: encryptedDump(withExt),
      identity,
      database: `${withExt}-copy`,
      owner: config.postgres.user,
      keepOwnership: false,
    });
    const ext = await withClient(
      config.postgres,
      `${withExt}-copy`,
      async (c) => (await c.query("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).rowCount,
    );
    assert.equal(ext, 1);
  });
});
