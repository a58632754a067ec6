import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { DatabaseAuthError, DatabaseUnavailableError } from '../../src/errors';
import { discoverTenants } from '../../src/tenants';
import { LOCAL_CONFIG_PATH, stackConfig, uniqueSuffix } from '../helpers/config';
import { adminQuery, createDatabase, dropDatabase, ensureRole } from '../helpers/pg';

describe('tenant discovery (real PostgreSQL)', () => {
  const s = uniqueSuffix();
  const tenants = [`disc_${s}`, `disc-${s}-eu`, `disc.${s}.fr`];
  const foreign = `disc_${s}_foreign`;
  const template = `disc_${s}_template`;
  const closed = `disc_${s}_closed`;
  const badName = `disc ${s} spaced`;
  const locked = `disc_${s}_locked`;
  const readerPassword = `rd-${uniqueSuffix()}-${uniqueSuffix()}`;

  before(async () => {
    await ensureRole('not_odoo');
    await ensureRole('dr_reader', readerPassword);
    for (const t of tenants) await createDatabase(t);
    await createDatabase(foreign, { owner: 'not_odoo' });
    await createDatabase(template, { template: true });
    await createDatabase(closed, { allowConnections: false });
    await createDatabase(badName);
    await createDatabase(locked);
    await adminQuery(`REVOKE CONNECT ON DATABASE ${locked} FROM PUBLIC`);
    mkdirSync(path.join(stackConfig().odoo.filestoreRoot, tenants[1]!), { recursive: true });
  });

  after(async () => {
    for (const db of [...tenants, foreign, template, closed, badName, locked]) await dropDatabase(db);
  });

  it("lists exactly Odoo's tenants: owned by the Odoo role, connectable, not templates", async () => {
    const result = await discoverTenants(stackConfig());
    const names = result.tenants.map((t) => t.name);
    for (const t of [...tenants, locked]) assert.ok(names.includes(t), `${t} should be a tenant`);
    for (const n of [foreign, template, closed, 'postgres', 'template0', 'template1']) {
      assert.ok(!names.includes(n), `${n} must not be a tenant`);
    }
    assert.ok(!names.includes(badName), 'a name Odoo refuses is not a tenant');
    assert.ok(result.invalidNames.includes(badName), 'but it is reported');
    assert.equal(result.odooRole, 'odoo');
    const eu = result.tenants.find((t) => t.name === tenants[1])!;
    assert.equal(eu.filestoreExists, true);
    assert.equal(eu.filestoreDir, path.join(stackConfig().odoo.filestoreRoot, tenants[1]!));
    assert.ok(eu.databaseBytes > 1_000_000, 'an empty database still weighs a few MB');
    assert.equal(result.tenants.find((t) => t.name === tenants[0])!.filestoreExists, false);
  });

  it('restricts to DR_TENANTS, reporting requested names that are not tenants', async () => {
    const config = stackConfig({ DR_TENANTS: `${tenants[0]},${tenants[1]},${foreign},nonexistent_${s}` });
    const result = await discoverTenants(config);
    assert.deepEqual(result.tenants.map((t) => t.name).sort(), [tenants[0], tenants[1]].sort());
    assert.deepEqual(result.missing.sort(), [foreign, `nonexistent_${s}`].sort());
  });

  it('removes DR_EXCLUDE_TENANTS and reports them as excluded', async () => {
    const result = await discoverTenants(stackConfig({ DR_EXCLUDE_TENANTS: `${tenants[2]},${tenants[0]}` }));
    const names = result.tenants.map((t) => t.name);
    assert.ok(names.includes(tenants[1]!));
    assert.ok(!names.includes(tenants[0]!) && !names.includes(tenants[2]!));
    assert.deepEqual(result.excluded.sort(), [tenants[0], tenants[2]].sort());
  });

  it('an explicit request replaces DR_TENANTS; exclusions still apply', async () => {
    const config = stackConfig({ DR_TENANTS: tenants[0]!, DR_EXCLUDE_TENANTS: tenants[2]! });
    const result = await discoverTenants(config, { include: [tenants[1]!, tenants[2]!] });
    assert.deepEqual(
      result.tenants.map((t) => t.name),
      [tenants[1]],
    );
    assert.deepEqual(result.excluded, [tenants[2]]);
  });

  it('reports a tenant the DR role cannot connect to instead of hiding it', async () => {
    const config = loadConfig({
      path: LOCAL_CONFIG_PATH,
      env: { POSTGRES_USER: 'dr_reader', POSTGRES_PASSWORD: readerPassword, POSTGRES_PASSWORD_FILE: '' },
    });
    const result = await discoverTenants(config, { include: [locked, tenants[0]!] });
    const byName = Object.fromEntries(result.tenants.map((t) => [t.name, t]));
    assert.equal(byName[locked]?.connectable, false);
    assert.equal(byName[tenants[0]!]?.connectable, true);
  });

  it('fails with DatabaseAuthError on a wrong password, without printing it', async () => {
    const wrong = `Wrong-${uniqueSuffix()}-pw`;
    const config = loadConfig({ path: LOCAL_CONFIG_PATH, env: { POSTGRES_PASSWORD: wrong, POSTGRES_PASSWORD_FILE: '' } });
    await assert.rejects(discoverTenants(config), (err: Error) => {
      assert.ok(err instanceof DatabaseAuthError, `got ${err.name}: ${err.message}`);
      assert.match(err.message, /127\.0\.0\.1:\d+ database "postgres" as "postgres": authentication or permission refused/);
      assert.ok(!err.message.includes(wrong));
      return true;
    });
  });

  it('fails with DatabaseUnavailableError when PostgreSQL is unreachable', async () => {
    const config = loadConfig({ path: LOCAL_CONFIG_PATH, env: { POSTGRES_PORT: '1' } });
    await assert.rejects(discoverTenants(config), (err: Error) => {
      assert.ok(err instanceof DatabaseUnavailableError, `got ${err.name}: ${err.message}`);
      assert.match(err.message, /127\.0\.0\.1:1 .*server unreachable/);
      return true;
    });
  });
});
