/**
 * restoreGlobals on the stack's PostgreSQL with real `pg_dumpall --globals-only` output: roles are
 * created, dumped, dropped and restored. The dump keeps the cluster's own roles (postgres, odoo),
 * which must come back as "existing", untouched. Also decryptGlobals against the age and zstd CLIs.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { ArtifactCorruptedError, EncryptionKeyError } from '../../src/errors';
import { quoteIdent } from '../../src/postgres';
import { decryptGlobals, restoreGlobals, type GlobalsRestoreResult } from '../../src/recovery/globals';
import { rejection } from '../helpers/assert';
import { stackConfig, uniqueSuffix } from '../helpers/config';
import { adminQuery } from '../helpers/pg';

const PG_DUMPALL = '/usr/lib/postgresql/15/bin/pg_dumpall';

describe('restoreGlobals (real PostgreSQL)', function () {
  this.timeout(120_000);
  const { postgres } = stackConfig();
  const prefix = `dr_glob_${uniqueSuffix()}`;
  const app = `${prefix}_app`; // LOGIN with a password, settings, a comment
  const admin = `${prefix}_admin`; // SUPERUSER CREATEROLE REPLICATION BYPASSRLS
  const group = `${prefix}_group`;
  const odd = `${prefix} Odd"Name`; // quoted name, member of group WITH ADMIN OPTION
  const keep = `${prefix}_keep`; // dumped LOGIN CREATEDB, then exists as NOLOGIN at restore time
  const all = [app, admin, odd, keep, group];
  const password = `Pw-${uniqueSuffix()}-${uniqueSuffix()}`;
  let dump: string;

  const q = quoteIdent;
  const dropAll = async () => {
    for (const r of all) await adminQuery(`DROP ROLE IF EXISTS ${q(r)}`);
  };
  const role = async (name: string) => (await adminQuery('SELECT * FROM pg_roles WHERE rolname = $1', [name]))[0] as Record<string, unknown> | undefined;
  const memberOf = async (member: string) =>
    (await adminQuery(
      'SELECT r.rolname AS role, a.admin_option FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member WHERE m.rolname = $1 ORDER BY 1',
      [member],
    )) as Array<{ role: string; admin_option: boolean }>;
  const restore = (dryRun = false) => restoreGlobals({ postgres, sql: dump, dryRun });

  before(async () => {
    await dropAll();
    await adminQuery(`CREATE ROLE ${q(group)} NOLOGIN`);
    await adminQuery(`CREATE ROLE ${q(app)} LOGIN PASSWORD '${password}' CONNECTION LIMIT 7 VALID UNTIL '2099-01-01 00:00:00+00'`);
    await adminQuery(`ALTER ROLE ${q(app)} SET statement_timeout TO '45s'`);
    await adminQuery(`ALTER ROLE ${q(app)} SET log_min_duration_statement TO '1s'`); // superuser-only parameter
    await adminQuery(`COMMENT ON ROLE ${q(app)} IS 'restored; by odoo-dr'`);
    await adminQuery(`CREATE ROLE ${q(admin)} SUPERUSER CREATEROLE REPLICATION BYPASSRLS LOGIN`);
    await adminQuery(`CREATE ROLE ${q(odd)} LOGIN`);
    await adminQuery(`CREATE ROLE ${q(keep)} LOGIN CREATEDB`);
    await adminQuery(`GRANT ${q(group)} TO ${q(odd)} WITH ADMIN OPTION`);
    await adminQuery(`GRANT ${q(group)} TO ${q(app)}, ${q(keep)}`);
    await adminQuery(`GRANT pg_read_all_stats, pg_execute_server_program TO ${q(app)}`);

    const full = execFileSync(
      PG_DUMPALL,
      ['--globals-only', '-h', postgres.host, '-p', String(postgres.port), '-U', postgres.user, '-l', postgres.maintenanceDb],
      {
        env: { ...process.env, PGPASSWORD: postgres.password ?? '' },
        encoding: 'utf8',
      },
    );
    // Our roles plus the cluster's own; other tests' roles (which may come and go) are left out.
    const roleLine = /^(CREATE ROLE|ALTER ROLE|GRANT|COMMENT ON ROLE) /;
    dump = full
      .split('\n')
      .filter((l) => !roleLine.test(l) || l.includes(prefix) || /^(CREATE|ALTER) ROLE (postgres|odoo)[ ;]/.test(l))
      .join('\n');
    assert.match(dump, /\\restrict /);
    assert.match(dump, /SCRAM-SHA-256\$/);

    await dropAll();
    await adminQuery(`CREATE ROLE ${q(keep)} NOLOGIN`);
  });

  after(dropAll);

  it('a dry run reports what it would do and changes nothing', async () => {
    const r = await restore(true);
    assert.deepEqual([...r.created].sort(), [admin, app, group, odd].sort());
    assert.ok(r.memberships.includes(`${odd} → ${group}`));
    for (const name of [app, admin, group, odd]) assert.equal(await role(name), undefined, name);
    assert.equal((await role(keep))!.rolcanlogin, false);
  });

  it("never recreates odoo-dr's own one-time restore roles (a backup taken while a restore ran)", async () => {
    const temp = `odoo_dr_restore_${uniqueSuffix()}`;
    const r = await restoreGlobals({
      postgres,
      sql: `CREATE ROLE ${temp};\nALTER ROLE ${temp} WITH NOSUPERUSER LOGIN PASSWORD 'SCRAM-SHA-256$4096:x';\nGRANT odoo TO ${temp};\n`,
      dryRun: true,
    });
    assert.deepEqual(r.created, []);
    assert.deepEqual(r.memberships, []);
    assert.ok(
      r.skipped.some((x) => x.includes(temp) && /one-time odoo-dr restore role/.test(x)),
      JSON.stringify(r),
    );
  });

  describe('the first restore', () => {
    let r: GlobalsRestoreResult;
    before(async () => {
      r = await restore();
    });

    it('creates the missing roles with their attributes, and keeps existing ones unchanged', async () => {
      assert.deepEqual([...r.created].sort(), [admin, app, group, odd].sort());
      assert.ok(r.existing.includes('postgres') && r.existing.includes(keep), r.existing.join(', '));
      const a = (await role(app))!;
      assert.equal(a.rolcanlogin, true);
      assert.equal(a.rolconnlimit, 7);
      assert.equal((a.rolvaliduntil as Date).toISOString(), '2099-01-01T00:00:00.000Z');
      assert.deepEqual(a.rolconfig, ['statement_timeout=45s']);
      const comment = await adminQuery("SELECT shobj_description(oid, 'pg_authid') AS c FROM pg_roles WHERE rolname = $1", [app]);
      assert.deepEqual(comment, [{ c: 'restored; by odoo-dr' }]);
      assert.equal((await role(odd))!.rolcanlogin, true);
      assert.equal((await role(group))!.rolcanlogin, false);
      // The existing role keeps NOLOGIN NOCREATEDB although the backup says LOGIN CREATEDB, and that is reported.
      const k = (await role(keep))!;
      assert.equal(k.rolcanlogin, false);
      assert.equal(k.rolcreatedb, false);
      assert.ok(
        r.skipped.some((s) => s.includes(q(keep)) && /already exists.*kept unchanged.*LOGIN/.test(s)),
        r.skipped.join('\n'),
      );
    });

    it('creates the superuser without its powers, with a warning per dropped attribute', async () => {
      const a = (await role(admin))!;
      assert.deepEqual([a.rolsuper, a.rolcreaterole, a.rolreplication, a.rolbypassrls, a.rolcanlogin], [false, false, false, false, true]);
      for (const attr of ['SUPERUSER', 'CREATEROLE', 'REPLICATION', 'BYPASSRLS']) {
        assert.ok(
          r.warnings.some((w) => w.includes(q(admin)) && w.includes(attr) && w.includes('grant it by hand')),
          attr,
        );
      }
    });

    it('restores the password hash: the role logs in with its old password', async () => {
      assert.equal(r.passwordsRestored, 1);
      const client = new pg.Client({ host: '127.0.0.1', port: postgres.port, user: app, password, database: postgres.maintenanceDb });
      await client.connect();
      try {
        assert.deepEqual((await client.query('SELECT current_user AS u')).rows, [{ u: app }]);
      } finally {
        await client.end();
      }
    });

    it('restores memberships of created roles, refusing server-level ones and never touching existing roles', async () => {
      assert.deepEqual(await memberOf(odd), [{ role: group, admin_option: true }]);
      assert.deepEqual(
        (await memberOf(app)).map((m) => m.role),
        [group, 'pg_read_all_stats'].sort(),
      );
      assert.deepEqual([...r.memberships].sort(), [`${app} → ${group}`, `${app} → pg_read_all_stats`, `${odd} → ${group}`].sort());
      assert.ok(
        r.warnings.some((w) => w.includes(`${app} → pg_execute_server_program refused`)),
        r.warnings.join('\n'),
      );
      assert.deepEqual(await memberOf(keep), []);
      assert.ok(
        r.skipped.some((s) => s.includes(`${keep} → ${group}`) && s.includes('never altered')),
        r.skipped.join('\n'),
      );
    });

    it('applies only settings a role may set itself', () => {
      assert.ok(
        r.warnings.some((w) => w.includes(`log_min_duration_statement of role ${q(app)}`)),
        r.warnings.join('\n'),
      );
    });

    it('is idempotent: a second run creates nothing and reports every role as existing', async () => {
      const again = await restore();
      assert.deepEqual(again.created, []);
      assert.deepEqual(again.memberships, []);
      assert.equal(again.passwordsRestored, 0);
      for (const name of [app, admin, group, odd, keep, 'postgres']) assert.ok(again.existing.includes(name), name);
      assert.equal((await role(admin))!.rolsuper, false);
    });
  });
});

describe('decryptGlobals', function () {
  this.timeout(60_000);
  let dir: string;
  let identity: string;
  let recipient: string;
  const encrypt = (plain: Buffer, file: string, to = recipient) => {
    const compressed = execFileSync('zstd', ['-q', '-c'], { input: plain, maxBuffer: 256 * 1024 * 1024 });
    execFileSync('age', ['-r', to, '-o', file], { input: compressed });
    return file;
  };

  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-globals-'));
    execFileSync('age-keygen', ['-o', path.join(dir, 'key')], { stdio: 'ignore' });
    identity = readFileSync(path.join(dir, 'key'), 'utf8');
    recipient = execFileSync('age-keygen', ['-y', path.join(dir, 'key')], { encoding: 'utf8' }).trim();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('decrypts and decompresses what `zstd | age -r` wrote', async () => {
    const sql = 'CREATE ROLE "été";\nALTER ROLE "été" WITH LOGIN PASSWORD \'SCRAM-SHA-256$4096:x\';\n';
    const file = encrypt(Buffer.from(sql), path.join(dir, 'globals.sql.zst.age'));
    assert.equal(await decryptGlobals({ encryptedFile: file, identity }), sql);
  });

  it('refuses a file that decompresses to more than 64 MiB', async () => {
    const file = encrypt(Buffer.alloc(65 * 1024 * 1024, 0x61), path.join(dir, 'bomb.age'));
    assert.ok((await rejection(decryptGlobals({ encryptedFile: file, identity }))) instanceof ArtifactCorruptedError);
  });

  it('reports a wrong key and a file that is not zstd', async () => {
    execFileSync('age-keygen', ['-o', path.join(dir, 'other')], { stdio: 'ignore' });
    const other = execFileSync('age-keygen', ['-y', path.join(dir, 'other')], { encoding: 'utf8' }).trim();
    const foreign = encrypt(Buffer.from('x'), path.join(dir, 'foreign.age'), other);
    assert.ok((await rejection(decryptGlobals({ encryptedFile: foreign, identity }))) instanceof EncryptionKeyError);
    const raw = path.join(dir, 'raw.age');
    execFileSync('age', ['-r', recipient, '-o', raw], { input: 'not zstd' });
    const err = await rejection(decryptGlobals({ encryptedFile: raw, identity }));
    assert.ok(err instanceof ArtifactCorruptedError && /decompression failed/.test(err.message), err.message);
  });
});
