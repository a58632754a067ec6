/**
 * Odoo's backup format without services: the manifest odoo-dr writes, which zip entries an import
 * accepts (each threat refused by name), and the filter that drops a dump's own `\restrict` lines
 * whatever the chunking of the stream.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { classifyZipEntry, odooManifest, odooPgVersion, parseOdooManifest } from '../../src/interop/odoo-format';
import { DropRestrictLines, psqlSupportsRestrict } from '../../src/interop/psql';
import type { OdooFacts } from '../../src/odoo/facts';

const SHA = 'b1625102d5ee020412d2d01015690c7778c38a8a';

async function filtered(text: string, cut: number[]): Promise<string> {
  const buf = Buffer.from(text, 'utf8');
  const parts: Buffer[] = [];
  let at = 0;
  for (const c of [...cut, buf.length]) {
    parts.push(buf.subarray(at, c));
    at = c;
  }
  const out: Buffer[] = [];
  for await (const chunk of Readable.from(parts).pipe(new DropRestrictLines())) out.push(chunk as Buffer);
  return Buffer.concat(out).toString('utf8');
}

describe('Odoo backup format (interop)', () => {
  it('writes pg_version as Odoo does (major.0 from PostgreSQL 10, major.minor before)', () => {
    assert.equal(odooPgVersion('15.18'), '15.0');
    assert.equal(odooPgVersion('17.2 (Debian 17.2-1)'), '17.0');
    assert.equal(odooPgVersion('9.6.24'), '9.6');
    assert.throws(() => odooPgVersion('unknown'), /cannot read the PostgreSQL version/);
  });

  it("builds Odoo's manifest from the recorded facts, and refuses a database that is not Odoo", () => {
    const facts: OdooFacts = {
      isOdoo: true,
      baseVersion: '17.0.1.3',
      series: '17.0',
      modules: { base: '17.0.1.3', mail: '17.0.1.15' },
      tables: {},
      attachments: { rows: 0, inFilestore: 0, inDatabase: 0, filestoreBytes: 0, distinctFiles: 0 },
      databaseUuid: 'u',
      postgres: { server: '15.18' },
    };
    assert.deepEqual(odooManifest('acme', facts), {
      odoo_dump: '1',
      db_name: 'acme',
      version: '17.0',
      version_info: [17, 0, 0, 'final', 0, ''],
      major_version: '17.0',
      pg_version: '15.0',
      modules: { base: '17.0.1.3', mail: '17.0.1.15' },
    });
    assert.deepEqual(odooManifest('x', { ...facts, series: 'saas~17.2' }).version_info.slice(0, 2), ['saas~17', 2]);
    assert.throws(() => odooManifest('acme', { ...facts, isOdoo: false, series: undefined }), /acme is not an Odoo database/);
  });

  it('accepts exactly the entries Odoo writes', () => {
    assert.deepEqual(classifyZipEntry('dump.sql', 0o100644), { kind: 'dump' });
    assert.deepEqual(classifyZipEntry('manifest.json', 0), { kind: 'manifest' });
    assert.deepEqual(classifyZipEntry(`filestore/b1/${SHA}`, 0o100644), { kind: 'file', sha1: SHA, rel: `b1/${SHA}` });
    assert.deepEqual(classifyZipEntry(`filestore/checklist/b1/${SHA}`, 0), { kind: 'checklist', rel: `checklist/b1/${SHA}` });
    for (const d of ['filestore/', 'filestore/b1/', 'filestore/checklist/', 'filestore/checklist/b1/'])
      assert.deepEqual(classifyZipEntry(d, 0o040755), { kind: 'directory' });
    assert.deepEqual(classifyZipEntry('README.txt', 0), { kind: 'ignored' });
  });

  it('refuses each threat by name', () => {
    const refused: Array<[string, number, RegExp]> = [
      ['../etc/passwd', 0, /unsafe path/],
      ['filestore/../../x', 0, /unsafe path/],
      ['/etc/passwd', 0, /unsafe path/],
      ['C:/x', 0, /unsafe path/],
      ['filestore\\b1\\x', 0, /unsafe path/],
      ['filestore//b1', 0, /unsafe path/],
      [`filestore/b1/${SHA}`, 0o120777, /is a symbolic link/],
      [`filestore/b1/${SHA}`, 0o020644, /special file/],
      [`filestore/b2/${SHA}`, 0, /not an Odoo filestore file/],
      [`filestore/b1/${SHA}.py`, 0, /not an Odoo filestore file/],
      ['filestore/b1/x/y', 0, /not an Odoo filestore file/],
      ['filestore/.ssh/', 0o040755, /not a folder of an Odoo filestore/],
      ['dump.sql', 0o120777, /symbolic link/],
    ];
    for (const [name, mode, error] of refused) assert.throws(() => classifyZipEntry(name, mode), error, name);
  });

  it("parses Odoo's manifest and refuses what is not one", () => {
    assert.equal(parseOdooManifest('{"odoo_dump":"1","db_name":"a","modules":{"base":"17.0.1.3"}}', 'f').modules.base, '17.0.1.3');
    assert.throws(() => parseOdooManifest('{', 'f.zip'), /f\.zip: manifest\.json is not JSON/);
    assert.throws(() => parseOdooManifest('{"odoo_dump":"2"}', 'f'), /odoo_dump="2", expected "1"/);
    assert.throws(() => parseOdooManifest('{"odoo_dump":"1","modules":{"base":3}}', 'f'), /module "base" a version that is not text/);
  });

  it('knows which psql can refuse meta-commands', () => {
    assert.equal(psqlSupportsRestrict('15.18'), true);
    assert.equal(psqlSupportsRestrict('15.13'), false);
    assert.equal(psqlSupportsRestrict('16.10'), true);
    assert.equal(psqlSupportsRestrict('12.22'), false);
    assert.equal(psqlSupportsRestrict('18.0'), true);
  });

  it("drops the dump's own \\restrict lines, and nothing else, at every chunk boundary", async () => {
    const text = "\\restrict abc123\nSET x = 1;\nCOPY t FROM stdin;\n\\\\restrict data\né\\x\n\\.\n\\! rm -rf /\nSELECT '\\restrict x';\n\\unrestrict abc123\n";
    const want = "SET x = 1;\nCOPY t FROM stdin;\n\\\\restrict data\né\\x\n\\.\n\\! rm -rf /\nSELECT '\\restrict x';\n";
    const len = Buffer.byteLength(text);
    for (let a = 0; a <= len; a++) assert.equal(await filtered(text, [a]), want, `cut at ${a}`);
    assert.equal(
      await filtered(
        text,
        Array.from({ length: len - 1 }, (_, i) => i + 1),
      ),
      want,
      'one byte at a time',
    );
    const long = `\\${'x'.repeat(1000)}\nok\n`;
    assert.equal(await filtered(long, [5, 300, 700]), long, 'a long backslash line passes whole');
  });
});
