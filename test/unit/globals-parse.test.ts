/**
 * parseGlobalsSql on a hand-written pg_dumpall --globals-only output modelled on PostgreSQL 15.18's
 * (plus PostgreSQL 16 membership options), and on hostile input: nothing outside the recognised
 * forms may turn into a role, a membership or a setting.
 */
import assert from 'node:assert/strict';
import { parseGlobalsSql } from '../../src/recovery/globals';

const HASH = 'SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0$c3RvcmVka2V5c3RvcmVka2V5c3RvcmVka2V5c3Q=:c2VydmVya2V5c2VydmVya2V5c2VydmVya2V5c2U=';

const DUMP = `--
-- PostgreSQL database cluster dump
--

\\restrict 4CJs18ZbjloV3pmiBC8mFHKxeGrGj9WREkilsdVBPBSVTUPyMFGuRkqHNtvr1X5

SET default_transaction_read_only = off;

SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;

--
-- Roles
--

CREATE ROLE "Sales Team ""EU""";
ALTER ROLE "Sales Team ""EU""" WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;
CREATE ROLE odoo;
ALTER ROLE odoo WITH NOSUPERUSER INHERIT NOCREATEROLE CREATEDB LOGIN NOREPLICATION NOBYPASSRLS PASSWORD '${HASH}';
CREATE ROLE postgres;
ALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS;
CREATE ROLE reporting;
ALTER ROLE reporting WITH NOSUPERUSER NOINHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 3 VALID UNTIL '2031-01-01 00:00:00+00';
COMMENT ON ROLE reporting IS 'read-only; for BI (it''s safe)';

--
-- User Configurations
--

--
-- User Config "odoo"
--

ALTER ROLE odoo SET search_path TO '$user', 'public';
ALTER ROLE odoo SET statement_timeout TO '30s';
ALTER ROLE reporting IN DATABASE "erp-prod" SET work_mem TO '64MB';


--
-- Role memberships
--

GRANT odoo TO "Sales Team ""EU""" WITH ADMIN OPTION GRANTED BY postgres;
GRANT pg_read_all_data TO reporting WITH INHERIT TRUE, SET FALSE GRANTED BY postgres;
GRANT pg_monitor TO reporting;

--
-- Role privileges on configuration parameters
--

GRANT SET ON PARAMETER work_mem TO reporting;

--
-- Tablespaces
--

CREATE TABLESPACE fast OWNER postgres LOCATION '/srv/pg/fast';
this is not sql at all;

\\unrestrict 4CJs18ZbjloV3pmiBC8mFHKxeGrGj9WREkilsdVBPBSVTUPyMFGuRkqHNtvr1X5

--
-- PostgreSQL database cluster dump complete
--
`;

describe('parseGlobalsSql', () => {
  const parsed = parseGlobalsSql(DUMP);

  it('reads every role with its attributes, merging CREATE ROLE and ALTER ROLE', () => {
    assert.deepEqual(
      parsed.roles.map((r) => r.name),
      ['Sales Team "EU"', 'odoo', 'postgres', 'reporting'],
    );
    const byName = new Map(parsed.roles.map((r) => [r.name, r]));
    assert.deepEqual(byName.get('odoo')!.attributes, {
      superuser: false,
      inherit: true,
      createRole: false,
      createDb: true,
      login: true,
      replication: false,
      bypassRls: false,
      password: HASH,
    });
    assert.equal(byName.get('postgres')!.attributes.superuser, true);
    assert.equal(byName.get('postgres')!.attributes.password, undefined);
    const reporting = byName.get('reporting')!;
    assert.equal(reporting.attributes.inherit, false);
    assert.equal(reporting.attributes.connectionLimit, 3);
    assert.equal(reporting.attributes.validUntil, '2031-01-01 00:00:00+00');
    assert.equal(reporting.comment, "read-only; for BI (it's safe)");
  });

  it('reads role settings, with and without IN DATABASE', () => {
    assert.deepEqual(parsed.settings, [
      { role: 'odoo', name: 'search_path', values: ['$user', 'public'] },
      { role: 'odoo', name: 'statement_timeout', values: ['30s'] },
      { role: 'reporting', database: 'erp-prod', name: 'work_mem', values: ['64MB'] },
    ]);
  });

  it('reads memberships with ADMIN OPTION, PostgreSQL 16 options and GRANTED BY', () => {
    assert.deepEqual(parsed.memberships, [
      { role: 'odoo', member: 'Sales Team "EU"', admin: true, grantedBy: 'postgres' },
      { role: 'pg_read_all_data', member: 'reporting', admin: false, inherit: true, set: false, grantedBy: 'postgres' },
      { role: 'pg_monitor', member: 'reporting', admin: false },
    ]);
  });

  it('sets tablespaces aside and reports what it does not recognise, skipping \\restrict, SET and comments silently', () => {
    assert.deepEqual(parsed.tablespaces, ['fast']);
    assert.deepEqual(
      parsed.unrecognised.map((u) => [u.line, u.reason, u.text]),
      [
        [51, 'privilege grant (GRANT … ON …)', 'GRANT SET ON PARAMETER work_mem TO reporting;'],
        [58, 'not a statement odoo-dr restores', 'this is not sql at all;'],
      ],
    );
  });

  it('never lets a ; or a newline inside a literal or a quoted name start a statement', () => {
    const p = parseGlobalsSql(
      `COMMENT ON ROLE a IS 'x; CREATE ROLE evil SUPERUSER;\nGRANT pg_write_server_files TO a;';\n` +
        `CREATE ROLE "b; DROP ROLE postgres; --";\n` +
        `COMMENT ON ROLE a IS $x$ ; CREATE ROLE evil2 $x$;\n`,
    );
    assert.deepEqual(
      p.roles.map((r) => r.name),
      ['a', 'b; DROP ROLE postgres; --'],
    );
    assert.equal(p.roles[0]!.comment, ' ; CREATE ROLE evil2 ');
    assert.equal(p.memberships.length, 0);
  });

  it('refuses what pg_dumpall does not write, instead of guessing', () => {
    const p = parseGlobalsSql(
      [
        'CREATE ROLE x IN ROLE pg_write_server_files;',
        'CREATE ROLE pg_evil;',
        "ALTER ROLE y WITH PASSWORD E'\\\\x';",
        'DO $$ BEGIN EXECUTE $q$CREATE ROLE z SUPERUSER$q$; END $$;',
        `CREATE ROLE "${'n'.repeat(64)}";`,
        "ALTER ROLE w WITH LOGIN PASSWORD 'SCRAM-SHA-256$4096:secret' SYSID 5;",
        "CREATE ROLE unterminated WITH PASSWORD 'abc;",
      ].join('\n'),
    );
    assert.deepEqual(p.roles, []);
    assert.deepEqual(
      p.unrecognised.map((u) => u.reason),
      [
        'unsupported role option IN',
        'role names starting with pg_ are reserved',
        'E-string literal',
        'not a statement odoo-dr restores',
        'name longer than 63 bytes',
        'unsupported role option SYSID',
        'unterminated quote',
      ],
    );
    // Reports never carry a password hash.
    assert.ok(p.unrecognised.every((u) => !u.text.includes('secret')));
  });
});
