/**
 * Neutralization and Odoo checks on copies of the real Odoo 17 tenant and of a generated one
 * (cloned with CREATE DATABASE … TEMPLATE, owned by the DR role, marked as scratch): what is left
 * must be what Odoo 17's `odoo-bin neutralize` leaves, on whatever schema the copy has.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { odooChecks } from '../../src/odoo/checks';
import { readOdooFacts, type OdooFacts } from '../../src/odoo/facts';
import { neutralizationState, neutralizeDatabase } from '../../src/odoo/neutralize';
import { quoteIdent, withClient } from '../../src/postgres';
import { dropScratchDatabase, markScratch } from '../../src/restore/scratch';
import { createTenant, dropTenant } from '../fixtures/odoo-tenants';
import { loadRealOdooTenant } from '../fixtures/real-odoo';
import { stackConfig, uniqueSuffix } from '../helpers/config';
import { adminQuery, dropDatabase, adminConnection } from '../helpers/pg';

describe('neutralization and Odoo checks (real PostgreSQL)', function () {
  this.timeout(300_000);
  const s = uniqueSuffix();
  const work = mkdtempSync(path.join(tmpdir(), 'odoo-dr-neutralize-'));
  const dataDir = path.join(work, 'odoo-data');
  const config = stackConfig({ DR_BACKUP_DIR: path.join(work, 'backups'), ODOO_DATA_DIR: dataDir });
  const real = `nz-real-${s}`;
  const gen = `nz-gen-${s}`;
  const clones: string[] = [];
  const facts: Record<string, OdooFacts> = {};
  let n = 0;

  /** A scratch clone of `tenant`, owned by the DR role, passed to `fn` with a connection. */
  async function withClone<T>(tenant: string, fn: (client: pg.Client, db: string) => Promise<T>): Promise<T> {
    const db = `${tenant}_dr_test_c${n++}`;
    clones.push(db);
    await adminQuery(`CREATE DATABASE ${quoteIdent(db)} OWNER ${quoteIdent(config.postgres.user)} TEMPLATE ${quoteIdent(tenant)}`);
    await markScratch(config, db, { tenant, purpose: 'neutralize-test', createdAt: new Date().toISOString() });
    try {
      return await withClient(config.postgres, db, (client) => fn(client, db));
    } finally {
      await dropScratchDatabase(config, db);
    }
  }

  before(async function () {
    this.timeout(600_000);
    await loadRealOdooTenant(adminConnection(config), dataDir, { name: real });
    await createTenant(adminConnection(config), dataDir, { name: gen, moveLines: 2_000, files: 12 });
    for (const t of [real, gen]) facts[t] = await withClient(config.postgres, t, (c) => readOdooFacts(c));
  });

  after(async function () {
    this.timeout(120_000);
    for (const db of clones) await dropDatabase(db).catch(() => undefined);
    for (const t of [real, gen]) await dropTenant(adminConnection(config), dataDir, t).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  });

  it('real Odoo 17: one active cron (autovacuum), one dummy mail server, no fetchmail, flagged, new uuid, banner on', async () => {
    await withClone(real, async (client) => {
      const before = await neutralizationState(client);
      assert.equal(before.activeCrons.length, 12);
      assert.deepEqual(before.activeMailServers, []);
      assert.equal(before.isNeutralized, false);
      const secretBefore = (await client.query<{ value: string }>("SELECT value FROM ir_config_parameter WHERE key = 'database.secret'")).rows[0]!.value;

      const { actions } = await neutralizeDatabase(client);
      const after = await neutralizationState(client);
      assert.deepEqual(after.activeCrons, ['Base: Auto-vacuum internal data']);
      assert.deepEqual(after.activeMailServers, [{ name: 'neutralization - disable emails', host: 'invalid' }]);
      assert.equal(after.activeFetchmail, 0);
      assert.equal(after.isNeutralized, true);
      assert.ok(after.uuid && after.uuid !== before.uuid);
      assert.notEqual(
        (await client.query<{ value: string }>("SELECT value FROM ir_config_parameter WHERE key = 'database.secret'")).rows[0]!.value,
        secretBefore,
      );
      assert.equal(
        (await client.query<{ value: string }>("SELECT value FROM ir_config_parameter WHERE key = 'web.base.url'")).rows[0]!.value,
        'http://localhost:8069',
      );
      const dummy = await client.query<Record<string, unknown>>(
        "SELECT smtp_port, smtp_encryption, smtp_authentication, sequence FROM ir_mail_server WHERE smtp_host = 'invalid'",
      );
      assert.deepEqual(dummy.rows, [{ smtp_port: 1025, smtp_encryption: 'none', smtp_authentication: 'login', sequence: 10 }]);
      const banner = await client.query<{ active: boolean }>("SELECT active FROM ir_ui_view WHERE key = 'web.neutralize_banner'");
      assert.equal(banner.rows[0]!.active, true, 'web: the red banner is on');
      assert.ok(
        actions.some((a) => /ir_cron: 11 crons deactivated, base\.autovacuum_job/.test(a)),
        actions.join('\n'),
      );
      assert.ok(actions.some((a) => a.startsWith('mail_template:')));
      assert.ok(actions.some((a) => a.startsWith('fetchmail_server:')));
      assert.ok(!actions.some((a) => a.startsWith('payment_provider')), 'no payment module: not touched');
    });
  });

  it('generated tenant: live mail server, fetchmail, payment provider and webhooks all end inactive, disabled or blanked', async () => {
    await withClone(gen, async (client) => {
      await client.query(
        `INSERT INTO ir_act_server (name, type, binding_type, usage, state, model_id, webhook_url)
         VALUES ('{"en_US": "Push to ERP"}', 'ir.actions.server', 'action', 'ir_actions_server', 'webhook', 1, 'https://hooks.example.com/erp')`,
      );
      const before = await neutralizationState(client);
      assert.ok(before.activeMailServers.length === 1 && before.activeMailServers[0]!.host.startsWith('smtp.'));
      assert.equal(before.activeFetchmail, 1);
      assert.ok(before.activeCrons.length > 1);

      await neutralizeDatabase(client);
      const after = await neutralizationState(client);
      assert.equal(after.activeCrons.length, 1);
      assert.deepEqual(after.activeMailServers, [{ name: 'neutralization - disable emails', host: 'invalid' }]);
      assert.equal(after.activeFetchmail, 0);
      assert.equal(after.isNeutralized, true);
      assert.notEqual(after.uuid, before.uuid);
      const pay = await client.query<{ code: string; state: string; pk: string | null; sk: string | null; wh: string | null }>(
        'SELECT code, state, stripe_publishable_key AS pk, stripe_secret_key AS sk, stripe_webhook_secret AS wh FROM payment_provider ORDER BY id',
      );
      assert.deepEqual(pay.rows, [
        { code: 'stripe', state: 'disabled', pk: null, sk: null, wh: null },
        { code: 'demo', state: 'test', pk: null, sk: null, wh: null },
        { code: 'paypal', state: 'disabled', pk: null, sk: null, wh: null },
      ]);
      const hooks = await client.query<{ u: string }>("SELECT webhook_url AS u FROM ir_act_server WHERE state = 'webhook'");
      assert.deepEqual(hooks.rows, [{ u: 'neutralization - disable webhook' }]);
    });
  });

  it('is idempotent (a retried activity adds no second dummy server); newUuid false keeps the identity', async () => {
    await withClone(gen, async (client) => {
      const uuid = (await neutralizationState(client)).uuid;
      await neutralizeDatabase(client, { newUuid: false });
      await neutralizeDatabase(client, { newUuid: false });
      const after = await neutralizationState(client);
      assert.equal(after.uuid, uuid);
      assert.equal(after.activeMailServers.length, 1);
      const dummies = await client.query("SELECT 1 FROM ir_mail_server WHERE smtp_host = 'invalid'");
      assert.equal(dummies.rowCount, 1);
      const flags = await client.query("SELECT value FROM ir_config_parameter WHERE key = 'database.is_neutralized'");
      assert.equal(flags.rowCount, 1);
    });
  });

  it('without a base.autovacuum_job xmlid every cron is turned off, and the actions say so', async () => {
    await withClone(gen, async (client) => {
      await client.query("DELETE FROM ir_model_data WHERE module = 'base' AND name = 'autovacuum_job'");
      const { actions } = await neutralizeDatabase(client);
      assert.deepEqual((await neutralizationState(client)).activeCrons, []);
      assert.ok(
        actions.some((a) => /no base\.autovacuum_job xmlid found, so every cron is off/.test(a)),
        actions.join('\n'),
      );
    });
  });

  it('touches only what exists: a copy without fetchmail, payment, templates or webhook column', async () => {
    await withClone(gen, async (client) => {
      await client.query('DROP TABLE fetchmail_server; DROP TABLE payment_provider; ALTER TABLE ir_act_server DROP COLUMN webhook_url');
      const { actions } = await neutralizeDatabase(client);
      assert.ok(!actions.some((a) => /fetchmail|payment|webhook|mail_template/.test(a)), actions.join('\n'));
      const after = await neutralizationState(client);
      assert.equal(after.activeFetchmail, 0);
      assert.equal(after.isNeutralized, true);
    });
  });

  it('is all or nothing: a failing statement leaves the copy as it was', async () => {
    await withClone(gen, async (client) => {
      await client.query(`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by test'; END $$;
        CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON ir_config_parameter FOR EACH ROW EXECUTE FUNCTION refuse()`);
      const before = await neutralizationState(client);
      await assert.rejects(neutralizeDatabase(client), /refused by test/);
      assert.deepEqual(await neutralizationState(client), before);
      // The connection is usable again (rolled back).
      await client.query('SELECT 1');
    });
  });

  it("reads Odoo's flag case-insensitively ('True' from some revisions)", async () => {
    await withClone(gen, async (client) => {
      await client.query("INSERT INTO ir_config_parameter (key, value) VALUES ('database.is_neutralized', 'True')");
      assert.equal((await neutralizationState(client)).isNeutralized, true);
    });
  });

  describe('odooChecks', () => {
    const filestore = (t: string) => path.join(dataDir, 'filestore', t);

    it('pass on an exact copy; rows neutralization adds are allowed only once the copy is neutralized', async () => {
      await withClone(gen, async (client) => {
        let checks = await odooChecks({ client, expected: facts[gen]!, filestoreDir: filestore(gen) });
        for (const c of checks) assert.equal(c.status, 'pass', `${c.name}: ${c.message}`);
        assert.doesNotMatch(checks[1]!.message, /neutralization/);
        // An extra mail server on a copy that is not neutralized is a difference.
        await client.query(
          "INSERT INTO ir_mail_server (name, smtp_host, smtp_port, smtp_authentication, smtp_encryption, active) VALUES ('neutralization - disable emails', 'invalid', 1025, 'login', 'none', true)",
        );
        checks = await odooChecks({ client, expected: facts[gen]!, filestoreDir: filestore(gen) });
        assert.equal(checks[1]!.status, 'fail');
        assert.match(checks[1]!.message, /ir_mail_server \d+ rows, expected \d+/);
        await client.query("DELETE FROM ir_mail_server WHERE smtp_host = 'invalid'");
        await neutralizeDatabase(client);
        checks = await odooChecks({ client, expected: facts[gen]!, filestoreDir: filestore(gen) });
        assert.equal(checks[1]!.status, 'pass', checks[1]!.message);
        assert.match(checks[1]!.message, /ir_config_parameter \+1, ir_mail_server \+1/);
        // A row lost elsewhere is never explained away.
        await client.query('DELETE FROM account_move_line WHERE id = (SELECT max(id) FROM account_move_line)');
        await client.query(
          "INSERT INTO ir_mail_server (name, smtp_host, smtp_port, smtp_authentication, smtp_encryption, active) VALUES ('x', 'smtp.example.com', 25, 'login', 'none', false)",
        );
        checks = await odooChecks({ client, expected: facts[gen]!, filestoreDir: filestore(gen) });
        assert.equal(checks[1]!.status, 'fail');
        assert.match(checks[1]!.message, /account_move_line 1999 rows, expected 2000/);
        assert.match(checks[1]!.message, /ir_mail_server/);
      });
    });

    it('modules: a missing module and another version are listed', async () => {
      await withClone(real, async (client) => {
        await client.query("UPDATE ir_module_module SET state = 'uninstalled' WHERE name = 'snailmail'");
        await client.query("UPDATE ir_module_module SET latest_version = '17.0.9.9' WHERE name = 'contacts'");
        const [modules] = await odooChecks({ client, expected: facts[real]!, filestoreDir: filestore(real) });
        assert.equal(modules!.status, 'fail');
        assert.match(modules!.message, /missing snailmail 17\.0\.\S+/);
        assert.match(modules!.message, /contacts 17\.0\.\S+ → 17\.0\.9\.9/);
      });
    });

    it('attachments: a missing file, a file of the wrong size and a file of the wrong content are named', async () => {
      const dir = path.join(work, 'fs-copy');
      rmSync(dir, { recursive: true, force: true });
      cpSync(filestore(gen), dir, { recursive: true });
      await withClone(gen, async (client) => {
        const rows = (
          await client.query<{ f: string; file_size: number }>(
            'SELECT DISTINCT store_fname AS f, file_size FROM ir_attachment WHERE store_fname IS NOT NULL ORDER BY 1 LIMIT 3',
          )
        ).rows;
        rmSync(path.join(dir, rows[0]!.f));
        writeFileSync(path.join(dir, rows[1]!.f), 'short');
        writeFileSync(path.join(dir, rows[2]!.f), Buffer.alloc(rows[2]!.file_size, 0x41));
        const checks = await odooChecks({ client, expected: facts[gen]!, filestoreDir: dir });
        const att = checks.find((c) => c.name === 'attachments')!;
        assert.equal(att.status, 'fail');
        assert.match(att.message, /1 missing/);
        assert.match(att.message, /2 wrong/);
        for (const r of rows) assert.ok(att.message.includes(r.f), att.message);
        assert.match(att.message, /SHA-1 [0-9a-f]{40}, checksum/);
      });
    });

    it('admin-user: base.group_system, else user 2; fails when nobody can administer', async () => {
      await withClone(real, async (client) => {
        let check = (await odooChecks({ client, expected: facts[real]!, filestoreDir: filestore(real) }))[3]!;
        assert.equal(check.status, 'pass', check.message);
        assert.match(check.message, /admin \(id 2\)/);
        await client.query(
          "DELETE FROM res_groups_users_rel WHERE uid = 2 AND gid = (SELECT res_id FROM ir_model_data WHERE module = 'base' AND name = 'group_system')",
        );
        check = (await odooChecks({ client, expected: facts[real]!, filestoreDir: filestore(real) }))[3]!;
        assert.equal(check.status, 'fail', check.message);
        await client.query("DELETE FROM ir_model_data WHERE module = 'base' AND name = 'group_system'");
        check = (await odooChecks({ client, expected: facts[real]!, filestoreDir: filestore(real) }))[3]!;
        assert.equal(check.status, 'pass', check.message);
        assert.match(check.message, /groups cannot be resolved.*user id 2 "admin" is active/);
        await client.query('UPDATE res_users SET active = false WHERE id = 2');
        check = (await odooChecks({ client, expected: facts[real]!, filestoreDir: filestore(real) }))[3]!;
        assert.equal(check.status, 'fail', check.message);
      });
    });

    it('a check that cannot run fails with its reason instead of crashing the others', async () => {
      await withClone(gen, async (client) => {
        await client.query('DROP TABLE res_users CASCADE');
        const checks = await odooChecks({ client, expected: facts[gen]!, filestoreDir: filestore(gen) });
        assert.equal(checks.length, 4);
        assert.equal(checks[1]!.status, 'fail');
        assert.match(checks[1]!.message, /res_users missing/);
        assert.equal(checks[3]!.status, 'warn');
      });
    });
  });
});
