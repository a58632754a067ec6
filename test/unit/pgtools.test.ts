import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ToolVersionError } from '../../src/errors';
import { assertCanRestore, findClientTools, parseToolVersion } from '../../src/pgtools';

/** A Debian-like tree of client directories whose pg_dump prints the given version (the selection logic under test). */
function fakeDebianRoot(versions: Record<string, string>): string {
  const root = mkdtempSync(path.join(tmpdir(), 'odoo-dr-pgroot-'));
  for (const [major, full] of Object.entries(versions)) {
    const bin = path.join(root, major, 'bin');
    mkdirSync(bin, { recursive: true });
    const file = path.join(bin, 'pg_dump');
    writeFileSync(file, `#!/bin/sh\necho "pg_dump (PostgreSQL) ${full} (Debian ${full}-1.pgdg120+1)"\n`);
    chmodSync(file, 0o755);
  }
  return root;
}

describe('PostgreSQL client tools', () => {
  it('parses pg_dump --version output, old and new numbering', () => {
    assert.deepEqual(parseToolVersion('pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)'), { major: 15, full: '15.18' });
    assert.deepEqual(parseToolVersion('pg_dump (PostgreSQL) 17.2'), { major: 17, full: '17.2' });
    assert.equal(parseToolVersion('nonsense'), undefined);
  });

  it('picks the client of the same major as the server when several are installed', async () => {
    const root = fakeDebianRoot({ '13': '13.16', '15': '15.8', '17': '17.2' });
    const tools = await findClientTools(15, { debianRoot: root });
    assert.equal(tools.version.full, '15.8');
    assert.equal(tools.pgDump, path.join(root, '15', 'bin', 'pg_dump'));
    assert.equal(tools.pgRestore, path.join(root, '15', 'bin', 'pg_restore'));
  });

  it('falls back to the closest newer client, never an older one', async () => {
    const root = fakeDebianRoot({ '14': '14.9', '16': '16.4', '17': '17.2' });
    assert.equal((await findClientTools(15, { debianRoot: root })).version.full, '16.4');
  });

  it('finds the real Debian PostgreSQL 15 client on this machine', async () => {
    const tools = await findClientTools(15);
    assert.equal(tools.version.major, 15);
    assert.equal(tools.binDir, '/usr/lib/postgresql/15/bin');
  });

  it('refuses an explicit DR_PG_BIN_DIR older than the server, naming what it found', async () => {
    const root = fakeDebianRoot({ '13': '13.16' });
    await assert.rejects(findClientTools(15, { binDir: path.join(root, '13', 'bin') }), (err: Error) => {
      assert.ok(err instanceof ToolVersionError);
      assert.match(err.message, /DR_PG_BIN_DIR=.*13\/bin has .*pg_dump 13\.16, but the server is PostgreSQL 15: pg_dump must be version 15 or newer/);
      return true;
    });
  });

  it('says what to install when no client is new enough', async () => {
    const root = fakeDebianRoot({ '13': '13.16' });
    // PATH has the real 15 client; ask for a server newer than anything installed.
    await assert.rejects(findClientTools(99, { debianRoot: root }), /no pg_dump of version 99 or newer .*install postgresql-client-99 or set DR_PG_BIN_DIR/);
  });

  it('refuses to restore a dump made by a newer pg_dump', () => {
    const tools = {
      binDir: undefined,
      pgDump: 'pg_dump',
      pgDumpAll: 'pg_dumpall',
      pgRestore: 'pg_restore',
      psql: 'psql',
      version: { major: 15, full: '15.18' },
    };
    assert.throws(() => assertCanRestore(tools, 17), /made by pg_dump 17; pg_restore is version 15\.18 and cannot read it/);
    assert.doesNotThrow(() => assertCanRestore(tools, 15));
  });
});
