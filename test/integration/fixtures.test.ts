/**
 * Tests of the tenant fixtures against the real PostgreSQL of the local stack
 * (127.0.0.1:${ODOO_DR_PG_PORT:-55432}, superuser postgres, password file
 * ${ODOO_DR_PG_PASSWORD_FILE:-/var/tmp/odoo-dr-stack/secrets/postgres.password}).
 * Everything created here has a random suffix and is dropped afterwards.
 */
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { createNonTenants, createTenant, dropTenant, MAIN_TABLES, NOT_ODOO_ROLE, scanFilestore, withPg } from '../fixtures/odoo-tenants';
import type { PgAdminConnection, TenantInfo } from '../fixtures/odoo-tenants';
import { assertSafeEntryName, findRealOdooZip, loadRealOdooTenant, readOdooManifest } from '../fixtures/real-odoo';

const stackDir = process.env['ODOO_DR_STACK_DIR'] ?? '/var/tmp/odoo-dr-stack';
const pgPasswordFile = process.env['ODOO_DR_PG_PASSWORD_FILE'] ?? path.join(stackDir, 'secrets', 'postgres.password');
const odooPasswordFile = process.env['ODOO_DR_ODOO_PASSWORD_FILE'] ?? path.join(path.dirname(pgPasswordFile), 'odoo.password');

function readSecret(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (e) {
    throw new Error(`cannot read ${file} (start the local stack: npm run stack:up): ${(e as Error).message}`);
  }
}

const admin: PgAdminConnection = {
  host: process.env['ODOO_DR_PG_HOST'] ?? '127.0.0.1',
  port: Number(process.env['ODOO_DR_PG_PORT'] ?? '55432'),
  user: process.env['ODOO_DR_PG_USER'] ?? 'postgres',
  password: readSecret(pgPasswordFile),
};
const suffix = crypto.randomBytes(4).toString('hex');

/** What Odoo 17's `list_dbs()` returns for role `role` (odoo/service/db.py). */
async function odooListDbs(role: string): Promise<string[]> {
  return withPg(admin, undefined, async (c) => {
    const r = await c.query<{ datname: string }>(
      `SELECT datname FROM pg_database
        WHERE datdba = (SELECT usesysid FROM pg_user WHERE usename = $1)
          AND NOT datistemplate AND datallowconn AND datname NOT IN ('postgres', 'template0')
        ORDER BY datname`,
      [role],
    );
    return r.rows.map((x) => x.datname);
  });
}

async function dbExists(name: string): Promise<boolean> {
  return withPg(admin, undefined, async (c) => ((await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount ?? 0) > 0);
}

async function sha1File(file: string): Promise<string> {
  const h = crypto.createHash('sha1');
  for await (const chunk of fs.createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

interface FileCheck {
  rows: number;
  distinct: number;
  ok: number;
  missing: string[];
  mismatched: string[];
}

/** Cross-checks every ir_attachment.store_fname against the filestore (sha1 and size). */
async function checkAttachments(db: string, dir: string): Promise<FileCheck> {
  const rows = await withPg(
    admin,
    db,
    async (c) =>
      (
        await c.query<{ store_fname: string; checksum: string; file_size: number }>(
          'SELECT store_fname, checksum, file_size FROM ir_attachment WHERE store_fname IS NOT NULL',
        )
      ).rows,
  );
  const seen = new Map<string, { checksum: string; file_size: number }>();
  for (const r of rows) seen.set(r.store_fname, r);
  const out: FileCheck = { rows: rows.length, distinct: seen.size, ok: 0, missing: [], mismatched: [] };
  for (const [fname, r] of seen) {
    const file = path.join(dir, fname);
    if (!fs.existsSync(file)) {
      out.missing.push(fname);
      continue;
    }
    const [sha, st] = await Promise.all([sha1File(file), fsp.stat(file)]);
    if (sha === r.checksum && st.size === r.file_size && fname === `${sha.slice(0, 2)}/${sha}`) out.ok++;
    else out.mismatched.push(fname);
  }
  return out;
}

async function assertCountsMatch(db: string, info: TenantInfo): Promise<void> {
  await withPg(admin, db, async (c) => {
    for (const [table, n] of Object.entries(info.tables)) {
      const r = await c.query<{ n: string }>(`SELECT count(*) AS n FROM ONLY public."${table}"`);
      assert.equal(Number(r.rows[0]?.n), n, `row count of ${table}`);
    }
    const att = await c.query<{ n: string }>('SELECT count(*) AS n FROM ir_attachment');
    assert.equal(Number(att.rows[0]?.n), info.attachmentCount);
  });
}

/** Minimal stored (uncompressed) zip writer, to craft hostile archives. */
function storedZip(entries: Array<{ name: string; data: Buffer }>): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const crc = zlib.crc32(e.data);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);
    lh.writeUInt16LE(0x0800, 6); // UTF-8 names
    lh.writeUInt16LE(0, 8);
    lh.writeUInt16LE(0, 10);
    lh.writeUInt16LE(0x21, 12);
    lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(e.data.length, 18);
    lh.writeUInt32LE(e.data.length, 22);
    lh.writeUInt16LE(name.length, 26);
    lh.writeUInt16LE(0, 28);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(20, 4);
    ch.writeUInt16LE(20, 6);
    ch.writeUInt16LE(0x0800, 8);
    ch.writeUInt16LE(0, 10);
    ch.writeUInt16LE(0, 12);
    ch.writeUInt16LE(0x21, 14);
    ch.writeUInt32LE(crc, 16);
    ch.writeUInt32LE(e.data.length, 20);
    ch.writeUInt32LE(e.data.length, 24);
    ch.writeUInt16LE(name.length, 28);
    ch.writeUInt32LE(offset, 42);
    locals.push(lh, name, e.data);
    centrals.push(ch, name);
    offset += lh.length + name.length + e.data.length;
  }
  const cd = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, eocd]);
}

describe('test fixtures (real PostgreSQL)', function () {
  this.timeout(120_000);
  let dataDir = '';

  before(async () => {
    dataDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'odoo-dr-fixtures-'));
  });
  after(async () => {
    if (dataDir) await fsp.rm(dataDir, { recursive: true, force: true });
  });

  describe('createTenant (generated Odoo-like tenant)', () => {
    const name = `fx-${suffix}.acme-eu`;
    const spec = { name, partners: 20, moveLines: 2_000, files: 12, fileSize: 3_000, dbAttachments: 3, seed: 42 };
    let info: TenantInfo;

    before(async () => {
      info = await createTenant(admin, dataDir, spec);
    });
    after(async () => {
      await dropTenant(admin, dataDir, name);
      assert.equal(await dbExists(name), false);
      assert.equal(fs.existsSync(path.join(dataDir, 'filestore', name)), false);
    });

    it('creates a database owned by odoo, with all objects and pg_trgm owned by odoo, listed by Odoo', async () => {
      assert.equal(info.name, name);
      assert.equal(info.owner, 'odoo');
      assert.equal(info.filestoreDir, path.join(dataDir, 'filestore', name));
      await withPg(admin, undefined, async (c) => {
        const r = await c.query(
          `SELECT pg_get_userbyid(datdba) AS owner, pg_encoding_to_char(encoding) AS enc, datcollate, datistemplate, datallowconn
             FROM pg_database WHERE datname = $1`,
          [name],
        );
        assert.deepEqual(r.rows[0], { owner: 'odoo', enc: 'UTF8', datcollate: 'C', datistemplate: false, datallowconn: true });
      });
      await withPg(admin, name, async (c) => {
        const notOdoo = await c.query(
          `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) <> 'odoo'`,
        );
        assert.deepEqual(notOdoo.rows, []);
        const ext = await c.query(`SELECT pg_get_userbyid(extowner) AS owner FROM pg_extension WHERE extname = 'pg_trgm'`);
        assert.deepEqual(ext.rows, [{ owner: 'odoo' }]);
      });
      assert.ok((await odooListDbs('odoo')).includes(name));
    });

    it('has a filestore consistent with ir_attachment (sha1, size, dedup, checklist, one orphan)', async () => {
      const check = await checkAttachments(name, info.filestoreDir);
      assert.deepEqual(check.missing, []);
      assert.deepEqual(check.mismatched, []);
      assert.equal(check.distinct, spec.files);
      assert.equal(check.ok, spec.files);
      assert.equal(check.rows, spec.files + 3, 'the logo file is shared by 4 image fields');

      const scan = await scanFilestore(info.filestoreDir);
      assert.equal(scan.files.size, info.fileCount);
      assert.equal(info.fileCount, spec.files + 1);
      assert.equal(
        [...scan.files.values()].reduce((a, b) => a + b, 0),
        info.filestoreBytes,
      );
      assert.equal(info.referencedFiles, spec.files);
      assert.equal(info.orphanFiles?.length, 1);
      const orphan = info.orphanFiles?.[0] ?? '';
      assert.ok(scan.files.has(orphan));
      const refs = await withPg(admin, name, async (c) => (await c.query('SELECT 1 FROM ir_attachment WHERE store_fname = $1', [orphan])).rowCount);
      assert.equal(refs, 0);
      assert.equal(await sha1File(path.join(info.filestoreDir, orphan)), path.basename(orphan));

      assert.equal(scan.checklist, info.checklistMarkers);
      assert.ok((info.checklistMarkers ?? 0) > 0);
      for (const rel of await fsp.readdir(path.join(info.filestoreDir, 'checklist'), { recursive: true })) {
        const p = path.join(info.filestoreDir, 'checklist', rel);
        if (!(await fsp.stat(p)).isFile()) continue;
        assert.equal((await fsp.stat(p)).size, 0);
        assert.ok(scan.files.has(rel), `checklist marker ${rel} names a stored file`);
      }
      // sizes vary around fileSize
      for (const [f, size] of scan.files) assert.ok(size > 2_000 && size < 4_000, `${f} has ${size} bytes`);
    });

    it('stores db_datas attachments with a correct checksum and size, and one url attachment', async () => {
      await withPg(admin, name, async (c) => {
        const r = await c.query<{ db_datas: Buffer; checksum: string; file_size: number }>(
          `SELECT db_datas, checksum, file_size FROM ir_attachment WHERE db_datas IS NOT NULL`,
        );
        assert.equal(r.rows.length, spec.dbAttachments);
        for (const row of r.rows) {
          assert.equal(crypto.createHash('sha1').update(row.db_datas).digest('hex'), row.checksum);
          assert.equal(row.db_datas.length, row.file_size);
        }
        const url = await c.query(`SELECT 1 FROM ir_attachment WHERE type = 'url' AND store_fname IS NULL AND db_datas IS NULL`);
        assert.equal(url.rowCount, 1);
      });
      assert.equal(info.attachmentCount, spec.files + 3 + spec.dbAttachments + 1);
    });

    it('returns row counts equal to what is in the database', async () => {
      await assertCountsMatch(name, info);
      assert.deepEqual(Object.keys(info.tables).sort(), [...MAIN_TABLES].sort());
      assert.equal(info.tables['res_partner'], spec.partners);
      assert.equal(info.tables['account_move_line'], spec.moveLines);
      assert.equal(info.tables['account_move'], spec.moveLines / 4);
      assert.equal(info.tables['ir_attachment'], info.attachmentCount);
    });

    it('has the Odoo rows a DR tool relies on (users, modules, xmlids, crons, mail, payment, parameters)', async () => {
      await withPg(admin, name, async (c) => {
        const users = await c.query('SELECT id, login, active FROM res_users WHERE id IN (1, 2) ORDER BY id');
        assert.deepEqual(users.rows, [
          { id: 1, login: '__system__', active: false },
          { id: 2, login: 'admin', active: true },
        ]);
        const base = await c.query(`SELECT state, latest_version FROM ir_module_module WHERE name = 'base'`);
        assert.deepEqual(base.rows, [{ state: 'installed', latest_version: '17.0.1.3' }]);
        const states = await c.query<{ state: string }>('SELECT DISTINCT state FROM ir_module_module ORDER BY 1');
        assert.deepEqual(
          states.rows.map((r) => r.state),
          ['installed', 'uninstallable', 'uninstalled'],
        );
        const deps = await c.query(
          `SELECT 1 FROM ir_module_module_dependency d JOIN ir_module_module m ON m.id = d.module_id WHERE m.name = 'mail' AND d.name = 'base'`,
        );
        assert.equal(deps.rowCount, 1);
        const xmlids = await c.query<{ k: string; res_id: number }>(
          `SELECT module || '.' || name AS k, res_id FROM ir_model_data
            WHERE (module, name) IN (('base', 'autovacuum_job'), ('base', 'main_company'), ('base', 'user_admin')) ORDER BY 1`,
        );
        assert.deepEqual(xmlids.rows, [
          { k: 'base.autovacuum_job', res_id: 1 },
          { k: 'base.main_company', res_id: 1 },
          { k: 'base.user_admin', res_id: 2 },
        ]);
        const autovacuum = await c.query(
          `SELECT c.active, a.usage, a.state, a.model_name FROM ir_cron c
             JOIN ir_act_server a ON a.id = c.ir_actions_server_id
             JOIN ir_model_data d ON d.model = 'ir.cron' AND d.res_id = c.id AND d.module = 'base' AND d.name = 'autovacuum_job'`,
        );
        assert.deepEqual(autovacuum.rows, [{ active: true, usage: 'ir_cron', state: 'code', model_name: 'ir.autovacuum' }]);
        // ir_act_server rows are also visible through the ir_actions parent, as in Odoo
        const viaParent = await c.query(`SELECT 1 FROM ir_actions WHERE id IN (SELECT ir_actions_server_id FROM ir_cron)`);
        assert.equal(viaParent.rowCount, info.tables['ir_cron']);
        const activeCrons = await c.query<{ n: string }>('SELECT count(*) AS n FROM ir_cron WHERE active');
        assert.ok(Number(activeCrons.rows[0]?.n) >= 3);
        const mail = await c.query(`SELECT smtp_port, smtp_encryption FROM ir_mail_server WHERE active`);
        assert.equal(mail.rowCount, 1);
        assert.equal((await c.query('SELECT 1 FROM fetchmail_server WHERE active')).rowCount, 1);
        assert.equal((await c.query(`SELECT 1 FROM payment_provider WHERE state = 'enabled'`)).rowCount, 1);
        const params = await c.query<{ key: string; value: string }>('SELECT key, value FROM ir_config_parameter ORDER BY key');
        const p = new Map(params.rows.map((r) => [r.key, r.value]));
        for (const k of ['database.uuid', 'database.secret', 'database.create_date', 'web.base.url']) assert.ok(p.get(k), k);
        assert.match(p.get('database.uuid') ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-1[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        assert.equal(p.has('database.is_neutralized'), false);
        const unbalanced = await c.query('SELECT move_id FROM account_move_line GROUP BY move_id HAVING sum(balance) <> 0');
        assert.deepEqual(unbalanced.rows, []);
      });
    });

    it('is idempotent and deterministic (same spec, same content)', async () => {
      const snapshot = async () =>
        withPg(admin, name, async (c) => ({
          files: (await c.query<{ s: string }>("SELECT string_agg(store_fname, ',' ORDER BY id) AS s FROM ir_attachment")).rows[0]?.s,
          uuid: (await c.query<{ v: string }>(`SELECT value AS v FROM ir_config_parameter WHERE key = 'database.uuid'`)).rows[0]?.v,
          total: (await c.query<{ t: string }>('SELECT sum(debit)::text AS t FROM account_move_line')).rows[0]?.t,
        }));
      const before = await snapshot();
      info = await createTenant(admin, dataDir, spec);
      assert.deepEqual(await snapshot(), before);
      const check = await checkAttachments(name, info.filestoreDir);
      assert.equal(check.ok, spec.files);
      const other = await createTenant(admin, dataDir, { ...spec, name: `fx-${suffix}-other-seed`, seed: 43, moveLines: 8, files: 1 });
      try {
        const uuid2 = await withPg(
          admin,
          other.name,
          async (c) => (await c.query<{ v: string }>(`SELECT value AS v FROM ir_config_parameter WHERE key = 'database.uuid'`)).rows[0]?.v,
        );
        assert.notEqual(uuid2, before.uuid);
      } finally {
        await dropTenant(admin, dataDir, other.name);
      }
    });

    it('rejects names Odoo would not accept, and dropTenant of an absent tenant is a no-op', async () => {
      await assert.rejects(createTenant(admin, dataDir, { name: '../etc' }), /invalid tenant database name/);
      await assert.rejects(createTenant(admin, dataDir, { name: 'a/b' }), /invalid tenant database name/);
      await dropTenant(admin, dataDir, `fx-${suffix}-never-created`);
    });
  });

  describe('loadRealOdooTenant (the Odoo 17 backup in shared/fixtures)', () => {
    const name = `fx-${suffix}-odoo17`;
    let info: TenantInfo;
    const zipPath = findRealOdooZip();

    before(async () => {
      info = await loadRealOdooTenant(admin, dataDir, { name, ownerPassword: readSecret(odooPasswordFile) });
    });
    after(async () => {
      await dropTenant(admin, dataDir, name);
      assert.equal(await dbExists(name), false);
    });

    it('reads manifest.json', async () => {
      const m = await readOdooManifest(zipPath);
      assert.equal(m.odoo_dump, '1');
      assert.equal(m.db_name, 'realodoo1');
      assert.equal(m.version, '17.0-20240709');
      assert.equal(m.major_version, '17.0');
      assert.equal(m.pg_version, '15.0');
      assert.deepEqual(m.version_info, [17, 0, 0, 'final', 0, '']);
      assert.equal(Object.keys(m.modules).length, 24);
      assert.equal(m.modules['base'], '17.0.1.3');
      assert.equal(m.modules['contacts'], '17.0.1.0');
    });

    it('loads all 191 tables, owned by odoo (pg_trgm too), and Odoo lists it', async () => {
      await withPg(admin, name, async (c) => {
        const t = await c.query<{ owner: string; n: string }>(
          `SELECT tableowner AS owner, count(*) AS n FROM pg_tables WHERE schemaname = 'public' GROUP BY 1`,
        );
        assert.deepEqual(
          t.rows.map((r) => [r.owner, Number(r.n)]),
          [['odoo', 191]],
        );
        const ext = await c.query(`SELECT pg_get_userbyid(extowner) AS owner FROM pg_extension WHERE extname = 'pg_trgm'`);
        assert.deepEqual(ext.rows, [{ owner: 'odoo' }]);
      });
      assert.ok((await odooListDbs('odoo')).includes(name));
    });

    it('has base installed in a 17.0 version and the installed modules of the manifest', async () => {
      const m = await readOdooManifest(zipPath);
      await withPg(admin, name, async (c) => {
        const base = await c.query<{ state: string; latest_version: string }>(`SELECT state, latest_version FROM ir_module_module WHERE name = 'base'`);
        assert.equal(base.rows[0]?.state, 'installed');
        assert.match(base.rows[0]?.latest_version ?? '', /^17\.0\./);
        const inst = await c.query<{ name: string; latest_version: string }>(`SELECT name, latest_version FROM ir_module_module WHERE state = 'installed'`);
        assert.deepEqual(Object.fromEntries(inst.rows.map((r) => [r.name, r.latest_version])), m.modules);
        const states = await c.query<{ state: string; n: string }>('SELECT state, count(*) AS n FROM ir_module_module GROUP BY 1 ORDER BY 1');
        assert.deepEqual(
          states.rows.map((r) => [r.state, Number(r.n)]),
          [
            ['installed', 24],
            ['uninstallable', 26],
            ['uninstalled', 562],
          ],
        );
        const admins = await c.query(`SELECT id, login, active FROM res_users WHERE id IN (1, 2) ORDER BY id`);
        assert.deepEqual(admins.rows, [
          { id: 1, login: '__system__', active: false },
          { id: 2, login: 'admin', active: true },
        ]);
        // facts that matter for neutralization: no mail or fetchmail server is configured in this backup
        assert.equal(info.tables['ir_mail_server'], 0);
        assert.equal(info.tables['fetchmail_server'], 0);
        assert.equal(info.tables['ir_cron'], 13);
      });
    });

    it('has a filestore that matches its ir_attachment rows exactly (60 files for 193 rows)', async () => {
      const check = await checkAttachments(name, info.filestoreDir);
      assert.deepEqual(check.missing, []);
      assert.deepEqual(check.mismatched, []);
      assert.equal(check.rows, 193);
      assert.equal(check.distinct, 60);
      assert.equal(check.ok, 60);
      assert.equal(info.attachmentCount, 194); // + 1 url attachment (/web/static/img/placeholder.png)
      await withPg(admin, name, async (c) => {
        const r = await c.query(`SELECT type, url FROM ir_attachment WHERE store_fname IS NULL`);
        assert.deepEqual(r.rows, [{ type: 'url', url: '/web/static/img/placeholder.png' }]);
        assert.equal((await c.query('SELECT 1 FROM ir_attachment WHERE db_datas IS NOT NULL')).rowCount, 0);
      });
      assert.equal(info.fileCount, 60);
      assert.equal(info.referencedFiles, 60);
      assert.deepEqual(info.orphanFiles, []);
      assert.equal(info.checklistMarkers, 60); // every stored file is also checklisted (fresh database)
      const scan = await scanFilestore(info.filestoreDir);
      assert.equal(
        [...scan.files.values()].reduce((a, b) => a + b, 0),
        info.filestoreBytes,
      );
      await assertCountsMatch(name, info);
    });

    it('is idempotent and gives the same ownership when loaded through the admin connection', async () => {
      const again = await loadRealOdooTenant(admin, dataDir, { name }); // no owner password: SET SESSION AUTHORIZATION
      assert.deepEqual(again.tables, info.tables);
      assert.equal(again.fileCount, 60);
      await withPg(admin, name, async (c) => {
        const notOdoo = await c.query(
          `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) <> 'odoo'`,
        );
        assert.deepEqual(notOdoo.rows, []);
      });
    });

    it('rejects zip entries with ".." or absolute paths before touching any database', async () => {
      for (const bad of ['filestore/../../evil', '/etc/evil', 'filestore/ab/../../../x', 'C:/x', 'a\\..\\b']) {
        assert.throws(() => assertSafeEntryName(bad), /unsafe zip entry name/);
      }
      assertSafeEntryName('filestore/ab/abcdef');
      const evilName = `fx-${suffix}-evil`;
      const zip = path.join(dataDir, 'evil.zip');
      await fsp.writeFile(
        zip,
        storedZip([
          { name: 'dump.sql', data: Buffer.from('CREATE TABLE pwned (id int);\n') },
          { name: 'filestore/../../evil.txt', data: Buffer.from('x') },
        ]),
      );
      await assert.rejects(loadRealOdooTenant(admin, dataDir, { name: evilName, zipPath: zip }), /invalid relative path|unsafe zip entry/);
      assert.equal(await dbExists(evilName), false);
      assert.equal(fs.existsSync(path.join(dataDir, 'evil.txt')), false);
      assert.equal(fs.existsSync(path.join(path.dirname(dataDir), 'evil.txt')), false);
    });

    it('fails loudly (and leaves no database) when a statement of dump.sql fails', async () => {
      const badName = `fx-${suffix}-badsql`;
      const zip = path.join(dataDir, 'bad.zip');
      await fsp.writeFile(
        zip,
        storedZip([{ name: 'dump.sql', data: Buffer.from('CREATE TABLE ok (id int);\nSELECT * FROM no_such_table;\nCREATE TABLE after_error (id int);\n') }]),
      );
      await assert.rejects(loadRealOdooTenant(admin, dataDir, { name: badName, zipPath: zip }), /psql exited with code 3.*no_such_table/);
      assert.equal(await dbExists(badName), false);
    });
  });

  describe('createNonTenants', () => {
    const names = { otherOwner: `fx-${suffix}-other-owner`, template: `fx-${suffix}-template`, noConnect: `fx-${suffix}-noconn` };
    let created: string[] = [];

    before(async () => {
      created = await createNonTenants(admin, names);
    });
    after(async () => {
      for (const n of created) await dropTenant(admin, dataDir, n);
      for (const n of created) assert.equal(await dbExists(n), false);
    });

    it('creates databases Odoo must not list, with the claimed properties', async () => {
      assert.deepEqual(created, [names.otherOwner, names.template, names.noConnect]);
      await withPg(admin, undefined, async (c) => {
        const r = await c.query<{ datname: string; owner: string; datistemplate: boolean; datallowconn: boolean }>(
          `SELECT datname, pg_get_userbyid(datdba) AS owner, datistemplate, datallowconn FROM pg_database
            WHERE datname = ANY($1::text[]) ORDER BY datname`,
          [created],
        );
        const by = new Map(r.rows.map((x) => [x.datname, x]));
        assert.deepEqual(by.get(names.otherOwner), { datname: names.otherOwner, owner: NOT_ODOO_ROLE, datistemplate: false, datallowconn: true });
        assert.deepEqual(by.get(names.template), { datname: names.template, owner: 'odoo', datistemplate: true, datallowconn: true });
        assert.deepEqual(by.get(names.noConnect), { datname: names.noConnect, owner: 'odoo', datistemplate: false, datallowconn: false });
        const role = await c.query(`SELECT rolcanlogin FROM pg_roles WHERE rolname = $1`, [NOT_ODOO_ROLE]);
        assert.deepEqual(role.rows, [{ rolcanlogin: false }]);
      });
      const listed = await odooListDbs('odoo');
      for (const n of created) assert.equal(listed.includes(n), false, `${n} must not be listed`);
      // they still look like Odoo databases from the inside
      await withPg(admin, names.otherOwner, async (c) => {
        const base = await c.query(`SELECT state FROM ir_module_module WHERE name = 'base'`);
        assert.deepEqual(base.rows, [{ state: 'installed' }]);
      });
    });

    it('is idempotent', async () => {
      assert.deepEqual(await createNonTenants(admin, names), created);
    });
  });
});
