/**
 * `odoo-dr import` and `odoo-dr export` as operators run them, on the real stack, with the real Odoo
 * 17 backup (shared/fixtures): imported as a copy (neutralized, new uuid and secret) and as a move
 * (identical to Odoo's own restore of the zip), backed up, exported from the session, and the export
 * restored exactly as Odoo's restore does (`psql` of dump.sql, filestore/ copied to
 * <data_dir>/filestore/<db>): every table's rows and every file equal. Malicious zips and dumps are
 * refused with a clear error and leave nothing behind.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as yauzl from 'yauzl';
import * as yazl from 'yazl';
import { libpqEnv } from '../../src/backup/database';
import { findClientTools } from '../../src/pgtools';
import { serverVersion, withClient } from '../../src/postgres';
import { createTenant, dropTenant, type PgAdminConnection } from '../fixtures/odoo-tenants';
import { findRealOdooZip, loadRealOdooTenant, readOdooManifest } from '../fixtures/real-odoo';
import { leftovers, tenantData } from '../faults/measure';
import { BIN, runCli as cli, startCliWorker, type CliRun } from '../helpers/cli';
import { LOCAL_CONFIG_PATH, stackConfig, uniqueSuffix } from '../helpers/config';
import { adminQuery, adminConnection } from '../helpers/pg';
import { testBucketUrl } from '../helpers/bucket';

/** Tables odoo-dr's neutralization may change (the rest of a copy equals the source). */
const NEUTRALIZED_TABLES = new Set([
  'ir_config_parameter',
  'ir_mail_server',
  'ir_cron',
  'fetchmail_server',
  'payment_provider',
  'ir_act_server',
  'ir_ui_view',
  'mail_template',
  'website',
  'iap_account',
]);

async function params(config: ReturnType<typeof stackConfig>, db: string): Promise<Record<string, string>> {
  return withClient(config.postgres, db, async (c) =>
    Object.fromEntries(
      (
        await c.query<{ key: string; value: string }>(
          "SELECT key, value FROM ir_config_parameter WHERE key IN ('database.uuid', 'database.secret', 'database.is_neutralized')",
        )
      ).rows.map((r) => [r.key, r.value]),
    ),
  );
}

async function zipEntries(file: string): Promise<Array<{ name: string; data: Buffer }>> {
  const zip = await yauzl.openPromise(file, { lazyEntries: true, autoClose: false });
  const out: Array<{ name: string; data: Buffer }> = [];
  try {
    for await (const e of zip.eachEntry()) {
      const chunks: Buffer[] = [];
      if (!e.fileName.endsWith('/') && e.fileName !== 'dump.sql') for await (const c of await zip.openReadStreamPromise(e)) chunks.push(c as Buffer);
      out.push({ name: e.fileName, data: Buffer.concat(chunks) });
    }
  } finally {
    zip.close();
  }
  return out;
}

/** A zip made with yazl: `[name, content, mode?]`; a name with `..` is written as `XX` then patched in place. */
async function makeZip(file: string, entries: Array<[string, string | Buffer, number?]>): Promise<void> {
  const zip = new yazl.ZipFile();
  for (const [name, content, mode] of entries) zip.addBuffer(Buffer.from(content), name.replace('..', 'XX'), mode ? { mode } : {});
  zip.end();
  await pipeline(zip.outputStream, createWriteStream(file));
  for (const [name] of entries) {
    if (!name.includes('..')) continue;
    const bytes = readFileSync(file);
    const from = Buffer.from(name.replace('..', 'XX'));
    for (let i = bytes.indexOf(from); i >= 0; i = bytes.indexOf(from, i + 1)) Buffer.from(name).copy(bytes, i);
    writeFileSync(file, bytes);
  }
}

/** Runs a command; its exit code and output. */
function runCommand(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, DR_CONFIG: '', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const sha1 = (s: string | Buffer) => createHash('sha1').update(s).digest('hex');

describe('odoo-dr import / export (Odoo backup zips, CLI)', function () {
  this.timeout(600_000);
  const s = uniqueSuffix();
  const work = mkdtempSync(path.join(tmpdir(), 'odoo-dr-interop-'));
  const dataDir = path.join(work, 'odoo-data');
  const env = {
    DR_BACKUP_DIR: path.join(work, 'backups'),
    DR_LOG_DIR: path.join(work, 'logs'),
    ODOO_DATA_DIR: dataDir,
    DR_TASK_QUEUE: `interop-${s}`,
    DR_CLOUD_BUCKET: testBucketUrl(`interop-${s}`, { exact: true }),
  };
  const config = stackConfig(env);
  const ref = `ix-ref-${s}`;
  const copy = `ix-copy-${s}`;
  const moved = `ix-move-${s}`;
  const restored = `ix-odoo-${s}`;
  const bad = `ix-bad-${s}`;
  const custom = `ix-custom-${s}`;
  const tenantsMade: string[] = [];
  const fixture = findRealOdooZip();
  let worker: CliRun | undefined;
  const admin = (): PgAdminConnection => adminConnection(config);

  before(async () => {
    // The reference: the fixture restored the way Odoo's restore does it (psql + file copy).
    await loadRealOdooTenant(admin(), dataDir, { name: ref, zipPath: fixture });
  });
  after(async () => {
    if (worker) {
      worker.child.kill('SIGTERM');
      await worker.result;
    }
    for (const t of [ref, copy, moved, restored, bad, custom, ...tenantsMade]) await dropTenant(admin(), dataDir, t).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  });

  it('imports the real Odoo 17 zip as a copy: data present, neutralized, new uuid and secret, files equal', async () => {
    const r = await cli(['import', fixture, '--tenant', copy], env).result;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`as tenant ${copy} \\(copy: neutralized`));
    assert.match(r.stdout, /PASS {2}attachments: checked 60 files/);
    const owner = (await adminQuery("SELECT pg_get_userbyid(datdba) AS o, shobj_description(oid, 'pg_database') AS c FROM pg_database WHERE datname = $1", [
      copy,
    ])) as Array<{ o: string; c: string | null }>;
    assert.deepEqual(owner, [{ o: config.odoo.dbUser, c: null }], 'owned by the Odoo role, no odoo-dr marker left');
    const [want, got] = [await tenantData(config, ref), await tenantData(config, copy)];
    assert.deepEqual(got.files, want.files, 'every filestore file equal');
    assert.equal(Object.keys(got.files).length, 60);
    const changed = Object.keys(want.tables).filter((t) => want.tables[t] !== got.tables[t]);
    assert.deepEqual(
      changed.filter((t) => !NEUTRALIZED_TABLES.has(t)),
      [],
      'only tables neutralization touches differ',
    );
    assert.ok(changed.includes('ir_config_parameter'));
    const [p0, p1] = [await params(config, ref), await params(config, copy)];
    assert.equal(p1['database.is_neutralized'], 'true');
    assert.ok(p1['database.uuid'] && p1['database.uuid'] !== p0['database.uuid'], 'new database.uuid');
    assert.ok(p1['database.secret'] && p1['database.secret'] !== p0['database.secret'], 'new database.secret');
    const crons = await withClient(config.postgres, copy, async (c) =>
      Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM ir_cron WHERE active')).rows[0]!.n),
    );
    assert.equal(crons, 1, 'only the autovacuum cron stays active');
    const objectOwners = await withClient(config.postgres, copy, async (c) =>
      (await c.query<{ o: string }>("SELECT DISTINCT pg_get_userbyid(relowner) AS o FROM pg_class WHERE relnamespace = 'public'::regnamespace")).rows.map(
        (x) => x.o,
      ),
    );
    assert.deepEqual(objectOwners, [config.odoo.dbUser], 'tables belong to the Odoo role');
    assert.deepEqual(await leftovers(config, copy), []);
  });

  it('imports it as a move: identical to the zip restored by Odoo, uuid and secret kept', async () => {
    const r = await cli(['--json', 'import', fixture, '--tenant', moved, '--move'], env).result;
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { format: string; mode: string; files: number; checklist: number; source: { dbName: string } };
    assert.deepEqual([result.format, result.mode, result.files, result.source.dbName], ['odoo-zip', 'move', 60, 'realodoo1']);
    assert.ok(result.checklist > 0, 'Odoo GC checklist markers kept');
    assert.deepEqual(await tenantData(config, moved), await tenantData(config, ref));
    assert.deepEqual(await params(config, moved), await params(config, ref));
  });

  it('exports the tenant from its backup session; the zip restores with psql and a file copy to equal data', async () => {
    worker = await startCliWorker(env);
    const backup = await cli(['backup', '--tenant', moved, '--wait'], env).result;
    assert.equal(backup.code, 0, backup.stdout + backup.stderr);
    const out = path.join(work, `${moved}.zip`);
    const r = await cli(['export', '--tenant', moved, '-o', out], env).result;
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      new RegExp(
        `exported ${moved} from backup_\\S+ .* to ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .*60 files.*Odoo 17\\.0, 24 modules, PostgreSQL 15\\.0`,
      ),
    );
    const again = await cli(['export', '--tenant', moved, '-o', out], env).result;
    assert.equal(again.code, 1, 'an existing file is never overwritten');
    assert.match(again.stderr, /already exists: exports never overwrite/);

    const entries = await zipEntries(out);
    assert.equal(entries[0]!.name, 'dump.sql', 'dump.sql first, as Odoo writes it');
    const manifest = JSON.parse(entries.find((e) => e.name === 'manifest.json')!.data.toString()) as Record<string, unknown>;
    const theirs = await readOdooManifest(fixture);
    assert.deepEqual(Object.keys(manifest).sort(), ['db_name', 'major_version', 'modules', 'odoo_dump', 'pg_version', 'version', 'version_info']);
    assert.deepEqual(
      [manifest.odoo_dump, manifest.db_name, manifest.major_version, manifest.pg_version, manifest.version_info],
      ['1', moved, theirs.major_version, theirs.pg_version, [17, 0, 0, 'final', 0, '']],
    );
    assert.deepEqual(manifest.modules, theirs.modules, 'modules and versions as in the backup Odoo made');
    const files = entries.filter((e) => e.name.startsWith('filestore/') && !e.name.endsWith('/'));
    assert.equal(files.length, 60);
    for (const f of files) assert.equal(sha1(f.data), path.basename(f.name), `${f.name} holds its content`);

    // Odoo's restore_db: CREATE DATABASE, psql -f dump.sql as the Odoo role, filestore/ moved in place.
    await loadRealOdooTenant(admin(), dataDir, { name: restored, zipPath: out });
    assert.deepEqual(await tenantData(config, restored), await tenantData(config, moved), 'every table and every file equal');

    // From the bucket alone (-c), with this host's folder gone: the same zip.
    rmSync(env.DR_BACKUP_DIR, { recursive: true, force: true });
    const fromCloud = path.join(work, `${moved}-cloud.zip`);
    const c = await cli(['export', '--tenant', moved, '-c', '-o', fromCloud], env).result;
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /\(s3:\/\//);
    // pg_restore writes a random \restrict key into each SQL it makes: everything else is equal.
    const same = (e: { name: string; data: Buffer }) => ({ name: e.name, data: e.name === 'dump.sql' ? '' : e.data.toString('base64') });
    assert.deepEqual((await zipEntries(fromCloud)).map(same), entries.map(same));
    const sql = async (f: string) => {
      const zip = await yauzl.openPromise(f, { lazyEntries: true, autoClose: false });
      try {
        for await (const e of zip.eachEntry()) {
          if (e.fileName !== 'dump.sql') continue;
          const chunks: Buffer[] = [];
          for await (const b of await zip.openReadStreamPromise(e)) chunks.push(b as Buffer);
          return Buffer.concat(chunks)
            .toString('utf8')
            .replace(/^\\(un)?restrict \S+$/gm, '');
        }
      } finally {
        zip.close();
      }
      return undefined;
    };
    const [a, b] = [await sql(out), await sql(fromCloud)];
    assert.ok(a && a.includes('CREATE TABLE public.res_partner'), 'dump.sql is plain SQL');
    assert.equal(b, a);
  });

  it("writes a zip Odoo's own Python reads (zipfile, as restore_db), with bounded memory for a 192 MiB file", async () => {
    // Odoo's restore_db opens the upload with Python's zipfile and extracts dump.sql and filestore/.
    const big = `ix-big-${s}`;
    tenantsMade.push(big);
    await createTenant(admin(), dataDir, { name: big, moveLines: 2000, files: 1, fileSize: 192 * 1024 * 1024 });
    const backup = await cli(['backup', '--tenant', big, '--wait'], env).result;
    assert.equal(backup.code, 0, backup.stdout + backup.stderr);
    const out = path.join(work, `${big}.zip`);
    const rss = path.join(work, 'export-rss.txt');
    // GNU time's %M: the export process's peak resident memory (KiB).
    const r = await runCommand(
      '/usr/bin/time',
      ['-f', '%M', '-o', rss, process.execPath, BIN, '--config', LOCAL_CONFIG_PATH, 'export', '--tenant', big, '-o', out],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    const peakMiB = Number(readFileSync(rss, 'utf8').trim().split('\n').pop()) / 1024;
    assert.ok(peakMiB > 0 && peakMiB < 192, `peak RSS ${peakMiB.toFixed(0)} MiB stays well below the 192 MiB file (streamed, not held)`);
    const py = await runCommand(
      'python3',
      [
        '-c',
        [
          'import sys, zipfile, hashlib, os',
          'z = zipfile.ZipFile(sys.argv[1])',
          'assert z.testzip() is None',
          'd = sys.argv[2]',
          "z.extractall(d, [m for m in z.namelist() if m.startswith('filestore/')] + ['dump.sql'])",
          "fs = [os.path.join(r, f) for r, _, n in os.walk(os.path.join(d, 'filestore')) for f in n]",
          'for f in fs: assert hashlib.sha1(open(f, "rb").read()).hexdigest() == os.path.basename(f), f',
          "print(len(fs), os.path.getsize(os.path.join(d, 'dump.sql')) > 0)",
        ].join('\n'),
        out,
        path.join(work, 'py-extract'),
      ],
      {},
    );
    assert.equal(py.code, 0, py.stderr);
    assert.equal(py.stdout.trim(), `${Object.keys((await tenantData(config, big)).files).length} True`);
  });

  it('imports a pg_dump custom-format dump (no filestore: a missing file is a warning)', async () => {
    const dump = path.join(work, 'ref.dump');
    const tools = await findClientTools((await serverVersion(config.postgres)).major);
    execFileSync(tools.pgDump, ['-Fc', '-f', dump], { env: { ...process.env, ...libpqEnv(config, ref) } });
    const r = await cli(['--json', 'import', dump, '--tenant', custom, '--move'], env).result;
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { format: string; files: number; checks: Array<{ name: string; status: string; message: string }> };
    assert.equal(result.format, 'custom');
    assert.equal(result.files, 0);
    const att = result.checks.find((c) => c.name === 'attachments')!;
    assert.equal(att.status, 'warn');
    assert.match(att.message, /carries no filestore: copy the files to/);
    assert.deepEqual((await tenantData(config, custom)).tables, (await tenantData(config, ref)).tables);
  });

  it('refuses a session or tenant that is not there, and bad command lines (exit 2)', async () => {
    const none = await cli(['export', '--tenant', ref, '-o', path.join(work, 'none.zip')], env).result;
    assert.equal(none.code, 1);
    assert.match(none.stderr, new RegExp(`no session in the backups holds a complete backup of "${ref}"`));
    const badName = await cli(['export', '--tenant', '../etc', '-o', path.join(work, 'x.zip')], env).result;
    assert.equal(badName.code, 2);
    assert.match(badName.stderr, /--tenant "\.\.\/etc" is not a valid Odoo database name/);
    const both = await cli(['import', fixture, '--tenant', bad, '--copy', '--move'], env).result;
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--copy and --move exclude each other/);
    const exists = await cli(['import', fixture, '--tenant', copy], env).result;
    assert.equal(exists.code, 1);
    assert.match(exists.stderr, /its filestore folder .* already exists|that database already exists/);
    const missing = await cli(['import', path.join(work, 'nope.zip'), '--tenant', bad], env).result;
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read .*nope\.zip: no such file/);
  });

  it('refuses a copy that does not verify (the manifest names a module the database lacks): nothing under the name', async () => {
    // The real zip re-packed with one more module in manifest.json.
    const file = path.join(work, 'mismatch.zip');
    const src = await yauzl.openPromise(fixture, { lazyEntries: true, autoClose: false });
    const zip = new yazl.ZipFile();
    const written = pipeline(zip.outputStream, createWriteStream(file));
    try {
      for await (const e of src.eachEntry()) {
        const chunks: Buffer[] = [];
        for await (const c of await src.openReadStreamPromise(e)) chunks.push(c as Buffer);
        let data = Buffer.concat(chunks);
        if (e.fileName === 'manifest.json') {
          const m = JSON.parse(data.toString()) as { modules: Record<string, string> };
          m.modules['sale_management'] = '17.0.1.0';
          data = Buffer.from(JSON.stringify(m));
        }
        zip.addBuffer(data, e.fileName);
      }
    } finally {
      src.close();
    }
    zip.end();
    await written;
    const r = await cli(['import', file, '--tenant', bad], env).result;
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /does not verify, nothing was put in place: modules: .*sale_management/);
    assert.deepEqual(await adminQuery('SELECT datname FROM pg_database WHERE datname = $1', [bad]), []);
    assert.equal(existsSync(path.join(dataDir, 'filestore', bad)), false);
    assert.deepEqual(await leftovers(config, bad), []);
  });

  describe('untrusted input', () => {
    const content = 'not what the name says';
    const cases: Array<{ what: string; entries?: Array<[string, string | Buffer, number?]>; sql?: string; error: RegExp; marker?: string }> = [
      {
        what: 'a path traversal entry',
        entries: [
          ['dump.sql', 'SELECT 1;\n'],
          ['../evil.txt', 'x'],
        ],
        error: /refused: .*invalid relative path: \.\.\/evil\.txt|unsafe path/,
      },
      {
        what: 'a symbolic link in the filestore',
        entries: [
          ['dump.sql', 'SELECT 1;\n'],
          [`filestore/${sha1('x').slice(0, 2)}/${sha1('x')}`, '/etc/passwd', 0o120777],
        ],
        error: /is a symbolic link: an Odoo backup holds regular files only/,
      },
      {
        what: 'a filestore file whose content is not its SHA-1',
        entries: [
          ['dump.sql', 'SELECT 1;\n'],
          [`filestore/${sha1('x').slice(0, 2)}/${sha1('x')}`, content],
        ],
        error: /does not hold the file it names/,
      },
      {
        what: 'a stray file under filestore/',
        entries: [
          ['dump.sql', 'SELECT 1;\n'],
          ['filestore/.ssh/authorized_keys', 'x'],
        ],
        error: /is not an Odoo filestore file/,
      },
      { what: 'a zip without dump.sql', entries: [['manifest.json', '{"odoo_dump":"1"}']], error: /no dump\.sql/ },
      {
        what: 'ALTER ROLE … SUPERUSER in dump.sql',
        entries: [['dump.sql', `ALTER ROLE ${'odoo'} SUPERUSER;\n`]],
        error: /only a superuser or another role may do .*refused/,
      },
      {
        what: 'COPY … TO PROGRAM in dump.sql',
        entries: [['dump.sql', `COPY (SELECT 1) TO PROGRAM 'touch /tmp/odoo-dr-pwned-${s}';\n`]],
        error: /only a superuser or another role may do .*refused/,
        marker: `/tmp/odoo-dr-pwned-${s}`,
      },
      {
        what: 'DROP DATABASE of another tenant in dump.sql',
        entries: [['dump.sql', `DROP DATABASE "${ref}" WITH (FORCE);\n`]],
        error: /only a superuser or another role may do .*refused/,
      },
      {
        what: 'CREATE DATABASE in dump.sql',
        entries: [['dump.sql', `CREATE DATABASE "${bad}-evil";\n`]],
        error: /only a superuser or another role may do .*refused/,
      },
      {
        what: 'a psql shell escape (\\!) in a plain .sql dump',
        sql: `SELECT 1;\n\\! touch ${path.join(tmpdir(), `odoo-dr-pwned-sh-${s}`)}\n`,
        error: /psql meta-command .*refused/,
        marker: path.join(tmpdir(), `odoo-dr-pwned-sh-${s}`),
      },
    ];
    for (const c of cases) {
      it(`refuses ${c.what}, leaving nothing behind`, async () => {
        const file = path.join(work, `bad-${cases.indexOf(c)}.${c.sql ? 'sql' : 'zip'}`);
        if (c.sql) writeFileSync(file, c.sql);
        else await makeZip(file, c.entries!);
        const r = await cli(['import', file, '--tenant', bad], env).result;
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.match(r.stderr, c.error);
        assert.deepEqual(await adminQuery('SELECT datname FROM pg_database WHERE datname = $1', [bad]), []);
        assert.equal(existsSync(path.join(dataDir, 'filestore', bad)), false);
        assert.deepEqual(await leftovers(config, bad), []);
        if (c.marker) assert.equal(existsSync(c.marker), false, 'the command never ran');
        assert.deepEqual(
          await adminQuery('SELECT datname FROM pg_database WHERE datname IN ($1, $2)', [ref, `${bad}-evil`]),
          [{ datname: ref }],
          'other tenants untouched, no database created',
        );
        const superuser = (await adminQuery('SELECT rolsuper FROM pg_roles WHERE rolname = $1', [config.odoo.dbUser])) as Array<{ rolsuper: boolean }>;
        assert.equal(superuser[0]!.rolsuper, false);
      });
    }
  });
});
