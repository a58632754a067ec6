/**
 * Restore-test primitives on the real stack: real backups (dumpDatabase + backupFilestore, exactly
 * what a backup session stores) of the real Odoo 17 tenant and a generated one, restored into
 * marked scratch databases and scratch folders, neutralized and checked; every fault ends as a
 * failed check or a catalogued error naming the artifact, never a crash, never a pass.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  utimesSync,
  writeFileSync,
  openSync,
  readSync,
  writeSync,
  closeSync,
  existsSync,
  readdirSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { dumpDatabase, type DumpResult } from '../../src/backup/database';
import { backupFilestore, type FilestoreResult } from '../../src/backup/filestore';
import { localPath, rel } from '../../src/backup/layout';
import { writePack } from '../../src/backup/packs';
import { encryptFile, readIdentity, recipientsFor } from '../../src/crypto/age';
import { ArtifactCorruptedError, EncryptionKeyError, InvalidInputError, ToolVersionError } from '../../src/errors';
import { odooChecks } from '../../src/odoo/checks';
import { neutralizationState, neutralizeDatabase } from '../../src/odoo/neutralize';
import { findClientTools, type PgTools } from '../../src/pgtools';
import { quoteIdent, serverVersion, withClient } from '../../src/postgres';
import { restoreDump } from '../../src/restore/database';
import { restoreFilestore } from '../../src/restore/filestore';
import { dropScratchDatabase, markScratch, readScratchMarker, scratchName, sweepDeadProcesses, sweepScratch, unmarkScratch } from '../../src/restore/scratch';
import { createTenant, dropTenant } from '../fixtures/odoo-tenants';
import { loadRealOdooTenant } from '../fixtures/real-odoo';
import { LOCAL_CONFIG_PATH, REPO_ROOT, stackConfig, uniqueSuffix } from '../helpers/config';
import { adminQuery, dropDatabase, adminConnection } from '../helpers/pg';
import { rejection } from '../helpers/assert';

async function databaseExists(name: string): Promise<boolean> {
  return (await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [name])).length > 0;
}

async function allDatabases(): Promise<string[]> {
  return ((await adminQuery('SELECT datname FROM pg_database ORDER BY 1')) as Array<{ datname: string }>).map((r) => r.datname);
}

describe('restore primitives (real PostgreSQL, real backups)', function () {
  this.timeout(300_000);
  const s = uniqueSuffix();
  const work = mkdtempSync(path.join(tmpdir(), 'odoo-dr-restore-'));
  const backupDir = path.join(work, 'backups');
  const dataDir = path.join(work, 'odoo-data');
  const overrides = { DR_BACKUP_DIR: backupDir, DR_LOG_DIR: path.join(work, 'logs'), ODOO_DATA_DIR: dataDir };
  const config = stackConfig(overrides);
  const session = `backup_20260101_000000_rt${s}`;
  const real = `rt-real-${s}`;
  const gen = `rt-gen-${s}`;
  const scratchDbs: string[] = [];
  let identity = '';
  let tools: PgTools;
  const backups: Record<string, { dump: DumpResult; files: FilestoreResult }> = {};

  const scratch = (tenant: string, tag: string) => {
    const name = scratchName(config, tenant, `${tag}${s}`);
    scratchDbs.push(name);
    return name;
  };
  const dumpOf = (tenant: string) => localPath(backupDir, rel.database(session, tenant));
  const indexOf = (tenant: string) => localPath(backupDir, rel.filestoreIndex(session, tenant));

  before(async function () {
    this.timeout(600_000);
    mkdirSync(backupDir, { recursive: true });
    await loadRealOdooTenant(adminConnection(config), dataDir, { name: real });
    await createTenant(adminConnection(config), dataDir, { name: gen, moveLines: 200_000, files: 30, fileSize: 8192 });
    identity = await readIdentity(config.encryption.identityFile!);
    tools = await findClientTools((await serverVersion(config.postgres)).major);
    const recipients = await recipientsFor(config);
    for (const tenant of [real, gen]) {
      const dump = await dumpDatabase({ config, tools, session, tenant, recipients });
      const files = await backupFilestore({ config, session, tenant, recipients, cloud: false });
      backups[tenant] = { dump, files };
    }
  });

  after(async function () {
    this.timeout(120_000);
    for (const db of scratchDbs) await dropDatabase(db).catch(() => undefined);
    for (const t of [real, gen]) await dropTenant(adminConnection(config), dataDir, t).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  });

  for (const which of ['real', 'generated'] as const) {
    it(`restores the ${which} tenant into a marked scratch copy, neutralizes it, and every Odoo check passes`, async () => {
      const tenant = which === 'real' ? real : gen;
      const { dump, files } = backups[tenant]!;
      const db = scratch(tenant, 'ok');
      const dir = path.join(backupDir, 'scratch', db);
      const phases = new Set<string>();
      const r = await restoreDump({
        config,
        encryptedDump: dumpOf(tenant),
        identity,
        database: db,
        owner: config.postgres.user,
        keepOwnership: false,
        dumpPgMajor: Number(dump.artifact.pgDump.split('.')[0]),
        scratch: { tenant, purpose: 'restore-test' },
        onProgress: (phase) => phases.add(phase),
      });
      assert.equal(r.database, db);
      assert.equal(r.dumpBytes, dump.artifact.bytes);
      assert.equal(r.pgRestore, tools.version.full);
      assert.deepEqual([...phases].sort(), ['decrypt', 'restore']);
      // Owned by the DR role, not by Odoo's: no Odoo process lists it.
      const [row] = (await adminQuery('SELECT pg_get_userbyid(datdba) AS owner, datcollate FROM pg_database WHERE datname = $1', [db])) as Array<{
        owner: string;
        datcollate: string;
      }>;
      assert.equal(row!.owner, config.postgres.user);
      assert.equal(row!.datcollate, 'C');
      const marker = await readScratchMarker(config, db);
      assert.equal(marker?.tenant, tenant);
      assert.equal(marker?.purpose, 'restore-test');
      assert.equal(marker?.database, db);
      // Temporary decrypted dump removed.
      assert.deepEqual(
        readdirSync(path.join(backupDir, 'scratch')).filter((n) => n.startsWith('restore-')),
        [],
      );

      const fs = await restoreFilestore({ config, indexFile: indexOf(tenant), identity, destDir: dir });
      assert.deepEqual(fs.problems, []);
      assert.equal(fs.files, files.files);
      assert.equal(fs.bytes, files.bytes);

      await withClient(config.postgres, db, async (client) => {
        const before = await neutralizationState(client);
        assert.equal(before.uuid, dump.facts.databaseUuid);
        const owners = await client.query<{ o: string }>(
          "SELECT DISTINCT pg_get_userbyid(relowner) AS o FROM pg_class WHERE relnamespace = 'public'::regnamespace",
        );
        assert.deepEqual(
          owners.rows.map((o) => o.o),
          [config.postgres.user],
          '--no-owner: objects belong to the restoring role',
        );
        if (which === 'generated') {
          assert.ok(
            before.activeMailServers.some((m) => m.host.startsWith('smtp.')),
            'the generated tenant has a real-looking active mail server',
          );
          assert.equal(before.activeFetchmail, 1);
          const pay = await client.query("SELECT 1 FROM payment_provider WHERE state = 'enabled'");
          assert.equal(pay.rowCount, 1);
        } else {
          assert.equal(before.activeCrons.length, 12, 'the real tenant has 12 of its 13 crons active');
        }

        const done = await neutralizeDatabase(client);
        assert.ok(done.actions.length >= 5, done.actions.join('\n'));
        const after = await neutralizationState(client);
        assert.equal(after.activeCrons.length, 1, `active crons: ${after.activeCrons.join(', ')}`);
        const auto = await client.query<{ id: number }>(
          "SELECT c.id FROM ir_cron c JOIN ir_model_data d ON d.model = 'ir.cron' AND d.res_id = c.id AND d.module = 'base' AND d.name = 'autovacuum_job' WHERE c.active",
        );
        assert.equal(auto.rowCount, 1, 'the one active cron is base.autovacuum_job');
        assert.deepEqual(after.activeMailServers, [{ name: 'neutralization - disable emails', host: 'invalid' }]);
        assert.equal(after.activeFetchmail, 0);
        assert.equal(after.isNeutralized, true);
        assert.ok(after.uuid && after.uuid !== before.uuid, 'a new database.uuid');
        const url = await client.query<{ value: string }>("SELECT value FROM ir_config_parameter WHERE key = 'web.base.url'");
        assert.ok(url.rows[0]!.value.length > 0, 'web.base.url left as is');
        if (which === 'generated') {
          const pay = await client.query<{ state: string; sk: string | null }>('SELECT state, stripe_secret_key AS sk FROM payment_provider ORDER BY id');
          assert.deepEqual(
            pay.rows.map((p) => p.state),
            ['disabled', 'test', 'disabled'],
          );
          assert.ok(
            pay.rows.every((p) => p.sk === null),
            'provider credentials blanked',
          );
        }

        const checks = await odooChecks({ client, expected: dump.facts, filestoreDir: dir });
        assert.deepEqual(
          checks.map((c) => c.name),
          ['modules', 'row-counts', 'attachments', 'admin-user'],
        );
        for (const c of checks) assert.equal(c.status, 'pass', `${c.name}: ${c.message}`);
        assert.match(checks[1]!.message, /ir_mail_server \+1/);
        assert.match(checks[3]!.message, /admin \(id 2\)/);
      });
      await dropScratchDatabase(config, db);
      assert.equal(await databaseExists(db), false);
    });
  }

  it('keepOwnership restores objects with their dumped owner (real recovery)', async () => {
    const db = scratch(gen, 'own');
    await restoreDump({ config, encryptedDump: dumpOf(gen), identity, database: db, owner: config.odoo.dbUser, keepOwnership: true });
    assert.equal(await readScratchMarker(config, db), undefined, 'no scratch option: the in-progress marker is removed on success');
    await withClient(config.postgres, db, async (client) => {
      const owners = await client.query<{ o: string }>(
        "SELECT DISTINCT pg_get_userbyid(relowner) AS o FROM pg_class WHERE relnamespace = 'public'::regnamespace",
      );
      assert.deepEqual(
        owners.rows.map((o) => o.o),
        [config.odoo.dbUser],
      );
    });
    await markScratch(config, db, { tenant: gen, purpose: 'test', createdAt: new Date().toISOString() });
    await dropScratchDatabase(config, db);
  });

  describe('faults: a catalogued error naming the artifact, no database left behind', () => {
    const corruptDir = path.join(work, 'corrupt');
    before(() => mkdirSync(corruptDir, { recursive: true }));

    it('a bit flipped in the middle of the encrypted dump', async () => {
      const bad = path.join(corruptDir, 'flipped.dump.zst.age');
      cpSync(dumpOf(real), bad);
      const size = statSync(bad).size;
      const fd = openSync(bad, 'r+');
      const byte = Buffer.alloc(1);
      readSync(fd, byte, 0, 1, Math.floor(size / 2));
      byte[0] = byte[0]! ^ 0x10;
      writeSync(fd, byte, 0, 1, Math.floor(size / 2));
      closeSync(fd);
      const db = scratch(real, 'flip');
      const err = await rejection(restoreDump({ config, encryptedDump: bad, identity, database: db, owner: config.postgres.user, keepOwnership: false }));
      assert.ok(err instanceof ArtifactCorruptedError, `${err.name}: ${err.message}`);
      assert.ok(err.message.includes(bad), err.message);
      assert.match(err.message, /decrypting/);
      assert.equal(await databaseExists(db), false);
    });

    it('a truncated encrypted dump', async () => {
      const bad = path.join(corruptDir, 'truncated.dump.zst.age');
      cpSync(dumpOf(real), bad);
      truncateSync(bad, Math.floor(statSync(bad).size * 0.7));
      const db = scratch(real, 'trunc');
      const err = await rejection(restoreDump({ config, encryptedDump: bad, identity, database: db, owner: config.postgres.user, keepOwnership: false }));
      assert.ok(err instanceof ArtifactCorruptedError, `${err.name}: ${err.message}`);
      assert.ok(err.message.includes(bad), err.message);
      assert.match(err.message, /truncated/);
      assert.equal(await databaseExists(db), false);
    });

    it('a damaged archive inside a valid encryption: pg_restore fails, the half-restored database is dropped', async () => {
      // Truncate the plaintext dump, then compress and encrypt it properly: only pg_restore can notice.
      const plain = path.join(corruptDir, 'plain.dump');
      execFileSync('bash', ['-c', 'age -d -i "$1" "$2" | zstd -d -q -o "$3"', 'x', config.encryption.identityFile!, dumpOf(gen), plain]);
      truncateSync(plain, Math.floor(statSync(plain).size * 0.6));
      const bad = path.join(corruptDir, 'half.dump.zst.age');
      const recipients = await recipientsFor(config);
      execFileSync('bash', ['-c', 'zstd -q -c "$1" | age -e -r "$2" -o "$3"', 'x', plain, recipients[0]!, bad]);
      const db = scratch(gen, 'half');
      let restoreStarted = false;
      const err = await rejection(
        restoreDump({
          config,
          encryptedDump: bad,
          identity,
          database: db,
          owner: config.postgres.user,
          keepOwnership: false,
          onProgress: (phase) => (restoreStarted ||= phase === 'restore'),
        }),
      );
      assert.ok(restoreStarted, 'the database was created and pg_restore started');
      assert.ok(err instanceof ArtifactCorruptedError, `${err.name}: ${err.message}`);
      assert.ok(err.message.includes(bad), err.message);
      assert.match(err.message, /pg_restore/);
      assert.equal(await databaseExists(db), false, 'the half-restored database was dropped');
    });

    it('the wrong private key', async () => {
      const keyFile = path.join(corruptDir, 'other.key');
      execFileSync('age-keygen', ['-o', keyFile], { stdio: 'ignore' });
      const other = await readIdentity(keyFile);
      const db = scratch(real, 'key');
      const err = await rejection(
        restoreDump({ config, encryptedDump: dumpOf(real), identity: other, database: db, owner: config.postgres.user, keepOwnership: false }),
      );
      assert.ok(err instanceof EncryptionKeyError, `${err.name}: ${err.message}`);
      assert.ok(err.message.includes(dumpOf(real)), err.message);
      assert.ok(!err.message.includes('AGE-SECRET-KEY-1'), 'the key never appears in messages');
      assert.equal(await databaseExists(db), false);
      const fs = await restoreFilestore({ config, indexFile: indexOf(real), identity: other, destDir: path.join(corruptDir, 'fs-key') });
      assert.equal(fs.files, 0);
      assert.equal(fs.problemCount, backups[real]!.files.files);
      assert.match(
        fs.problems[0]!,
        /^[0-9a-f]{2}\/[0-9a-f]{40}: pack packs\/[0-9a-f]{2}\/[0-9a-f]{64}\.tar\.zst\.age cannot be read \(none of the given age identities can decrypt/,
      );
    });

    it('a dump from a newer pg_dump: ToolVersionError before anything is done', async () => {
      const db = scratch(real, 'pg99');
      const err = await rejection(
        restoreDump({ config, encryptedDump: dumpOf(real), identity, database: db, owner: config.postgres.user, keepOwnership: false, dumpPgMajor: 99 }),
      );
      assert.ok(err instanceof ToolVersionError, `${err.name}: ${err.message}`);
      assert.ok(err.message.includes(dumpOf(real)), err.message);
      assert.match(err.message, /pg_dump 99/);
      assert.equal(await databaseExists(db), false);
    });

    it('a missing artifact, and a database that already exists (never overwritten)', async () => {
      const db = scratch(real, 'miss');
      const missing = path.join(corruptDir, 'nope.dump.zst.age');
      const err = await rejection(restoreDump({ config, encryptedDump: missing, identity, database: db, owner: config.postgres.user, keepOwnership: false }));
      assert.ok(err instanceof ArtifactCorruptedError, `${err.name}: ${err.message}`);
      assert.ok(err.message.includes(missing));
      const err2 = await rejection(
        restoreDump({ config, encryptedDump: dumpOf(real), identity, database: real, owner: config.postgres.user, keepOwnership: false }),
      );
      assert.ok(err2 instanceof InvalidInputError, `${err2.name}: ${err2.message}`);
      assert.match(err2.message, /already exists/);
      const err3 = await rejection(
        restoreDump({ config, encryptedDump: dumpOf(real), identity, database: db, owner: `no_such_role_${s}`, keepOwnership: false }),
      );
      assert.ok(err3 instanceof InvalidInputError, `${err3.name}: ${err3.message}`);
      assert.match(err3.message, /owner role/);
      assert.equal(await databaseExists(db), false);
      const count = (await withClient(config.postgres, real, (c) => c.query('SELECT 1 FROM res_users'))).rowCount;
      assert.ok(count! > 0, 'the existing tenant is untouched');
    });

    it("a file missing from its pack and a pack holding other content under a file's name: problems, and the attachment check fails", async () => {
      // A private copy of the backup root, so the shared packs stay intact.
      const root2 = path.join(work, 'backups-faulty');
      cpSync(backupDir, root2, { recursive: true });
      const cfg2 = stackConfig({ ...overrides, DR_BACKUP_DIR: root2 });
      const lines = readFileSync(indexOf(real), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { path?: string; sha1: string; size: number; pack?: string; bytes?: number });
      const entries = lines.filter((l): l is { path: string; sha1: string; size: number; pack: string } => typeof l.path === 'string');
      const [gone, swapped] = [entries[0]!, entries[1]!];
      // A forged pack (encrypted to the right key) holding other content under `swapped`'s name, and nothing for `gone`.
      const forged = await writePack({
        root: root2,
        members: [{ sha1: swapped.sha1, size: 24, mtime: new Date(), data: Buffer.from('not the original content'), source: 'test' }],
        recipients: await recipientsFor(config),
        compressionLevel: 3,
      });
      const faultyIndex = path.join(work, 'faulty.jsonl');
      const faulty = [
        ...lines.map((l) => (l.path === gone.path || l.path === swapped.path ? { ...l, pack: forged.id } : l)),
        { pack: forged.id, bytes: forged.bytes },
      ];
      writeFileSync(faultyIndex, faulty.map((l) => JSON.stringify(l)).join('\n') + '\n');

      const dir = path.join(work, 'fs-faulty');
      const fs = await restoreFilestore({ config: cfg2, indexFile: faultyIndex, identity, destDir: dir });
      assert.equal(fs.problemCount, 2, fs.problems.join('\n'));
      assert.equal(fs.files, entries.length - 2);
      assert.ok(
        fs.problems.some((p) => p.startsWith(`${gone.path}: not in pack ${rel.pack(forged.id)}`)),
        fs.problems.join('\n'),
      );
      assert.ok(
        fs.problems.some(
          (p) =>
            p.startsWith(`${swapped.path}: pack ${rel.pack(forged.id)} holds 24 bytes for it`) ||
            p.startsWith(`${swapped.path}: pack ${rel.pack(forged.id)} holds content with SHA-1`),
        ),
        fs.problems.join('\n'),
      );
      assert.equal(existsSync(path.join(dir, swapped.path)), false, 'a wrong file is never put in place');
      assert.deepEqual(
        readdirSync(path.dirname(path.join(dir, entries[2]!.path))).filter((n) => n.endsWith('.tmp')),
        [],
      );

      // A pack that is missing, or damaged (truncated): every file it holds is a problem naming it.
      const realPack = localPath(root2, rel.pack(entries[2]!.pack));
      truncateSync(realPack, 1000);
      const damagedPack = await restoreFilestore({ config: cfg2, indexFile: indexOf(real), identity, destDir: path.join(work, 'fs-damaged-pack') });
      assert.ok(
        damagedPack.problems.some((p) => p.includes(`pack ${rel.pack(entries[2]!.pack)} is damaged (1000 bytes`)),
        damagedPack.problems.join('\n'),
      );
      rmSync(realPack);
      const lost = await restoreFilestore({ config: cfg2, indexFile: indexOf(real), identity, destDir: path.join(work, 'fs-lost-pack') });
      assert.ok(
        lost.problems.some((p) => p.startsWith(`${entries[2]!.path}: pack ${rel.pack(entries[2]!.pack)} is missing`)),
        lost.problems.join('\n'),
      );

      // The Odoo check on the copy sees both files missing, and a file damaged after restore.
      const damaged = entries[2]!;
      writeFileSync(path.join(dir, damaged.path), 'garbage');
      await withClient(config.postgres, real, async (client) => {
        const checks = await odooChecks({ client, expected: backups[real]!.dump.facts, filestoreDir: dir });
        const att = checks.find((c) => c.name === 'attachments')!;
        assert.equal(att.status, 'fail', att.message);
        assert.match(att.message, /2 missing/);
        assert.ok(att.message.includes(gone.path) && att.message.includes(swapped.path), att.message);
        assert.match(att.message, /1 wrong/);
        assert.ok(att.message.includes(damaged.path), att.message);
      });

      // A damaged index is a systemic error naming it.
      const badIndex = path.join(work, 'bad.jsonl');
      writeFileSync(badIndex, '{"path":"aa/x","sha1":"00","size":1}\n{not json\n');
      const err = await rejection(restoreFilestore({ config: cfg2, indexFile: badIndex, identity, destDir: path.join(work, 'fs-bad-index') }));
      assert.ok(err instanceof ArtifactCorruptedError, `${err.name}: ${err.message}`);
      assert.ok(err.message.includes(badIndex));
      const err2 = await rejection(restoreFilestore({ config: cfg2, indexFile: path.join(work, 'none.jsonl'), identity, destDir: path.join(work, 'fs-none') }));
      assert.ok(err2 instanceof ArtifactCorruptedError, `${err2.name}: ${err2.message}`);
    });

    it('a session from before packs (one blob per file) still restores, each file verified', async () => {
      const root3 = path.join(work, 'backups-legacy');
      const content = Buffer.from('a file backed up one blob per file, before packs');
      const sha1 = createHash('sha1').update(content).digest('hex');
      const plain = path.join(work, 'legacy.bin');
      writeFileSync(plain, content);
      mkdirSync(path.dirname(localPath(root3, rel.blob(sha1))), { recursive: true });
      await encryptFile(await recipientsFor(config), plain, localPath(root3, rel.blob(sha1)));
      const index = path.join(work, 'legacy.jsonl');
      writeFileSync(index, `${JSON.stringify({ path: `${sha1.slice(0, 2)}/${sha1}`, sha1, size: content.length })}\n`);
      const dest = path.join(work, 'fs-legacy');
      const fs = await restoreFilestore({ config: stackConfig({ ...overrides, DR_BACKUP_DIR: root3 }), indexFile: index, identity, destDir: dest });
      assert.deepEqual(fs.problems, []);
      assert.equal(fs.files, 1);
      assert.deepEqual(readFileSync(path.join(dest, sha1.slice(0, 2), sha1)), content);
    });

    it('an index line with an unsafe path is a problem, never a write outside the folder', async () => {
      const e = readFileSync(indexOf(real), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { path: string; sha1: string; size: number })
        .find((l) => typeof l.path === 'string')!;
      const index = path.join(work, 'unsafe.jsonl');
      writeFileSync(index, [`../escaped`, `/abs/path`, `checklist/${e.path}`].map((p) => JSON.stringify({ ...e, path: p })).join('\n') + '\n');
      const dest = path.join(work, 'fs-unsafe', 'inner');
      const fs = await restoreFilestore({ config, indexFile: index, identity, destDir: dest });
      assert.equal(fs.files, 0);
      assert.equal(fs.problemCount, 3);
      assert.equal(existsSync(path.join(work, 'fs-unsafe', 'escaped')), false);
    });
  });

  describe('scratch databases', () => {
    it('scratchName: <tenant><suffix>_<id>, at most 63 bytes, the tenant part shortened', () => {
      assert.equal(scratchName(config, 'acme', 'abc123'), `acme${config.scratchSuffix}_abc123`);
      const long = `t${'x'.repeat(70)}`;
      const name = scratchName(config, long, 'abc123');
      assert.equal(Buffer.byteLength(name), 63);
      assert.ok(name.endsWith(`${config.scratchSuffix}_abc123`));
      assert.throws(() => scratchName(config, 'acme', 'a/b'), InvalidInputError);
      assert.throws(() => scratchName(config, '../x', 'abc'), InvalidInputError);
    });

    it('dropScratchDatabase refuses a production tenant, a renamed copy and the maintenance database', async () => {
      for (const db of [real, 'postgres', 'template1']) {
        const err = await rejection(dropScratchDatabase(config, db));
        assert.ok(err instanceof InvalidInputError, `${err.name}: ${err.message}`);
        assert.match(err.message, /no odoo-dr scratch marker/);
        assert.equal(await databaseExists(db), true);
      }
      // A marked copy promoted by rename (recovery swap) no longer matches its marker.
      const copy = scratch(gen, 'ren');
      const renamed = scratch(gen, 'ren2');
      await adminQuery(`CREATE DATABASE ${quoteIdent(copy)} TEMPLATE template0`);
      await markScratch(config, copy, { tenant: gen, purpose: 'test', createdAt: new Date().toISOString() });
      await adminQuery(`ALTER DATABASE ${quoteIdent(copy)} RENAME TO ${quoteIdent(renamed)}`);
      const err = await rejection(dropScratchDatabase(config, renamed));
      assert.ok(err instanceof InvalidInputError);
      assert.match(err.message, /written for/);
      await unmarkScratch(config, renamed);
      assert.equal(await readScratchMarker(config, renamed), undefined);
      await dropDatabase(renamed);
      await dropScratchDatabase(config, `absent_${s}`); // idempotent: nothing to drop
    });

    it('sweepScratch drops old marked databases and old scratch folders, and nothing else', async () => {
      const before = (await allDatabases()).filter((d) => !d.includes(config.scratchSuffix));
      const old = scratch(gen, 'old');
      const fresh = scratch(gen, 'new');
      for (const db of [old, fresh]) await adminQuery(`CREATE DATABASE ${quoteIdent(db)} TEMPLATE template0`);
      const now = new Date();
      await markScratch(config, old, { tenant: gen, purpose: 'test', createdAt: new Date(now.getTime() - 49 * 3_600_000).toISOString() });
      await markScratch(config, fresh, { tenant: gen, purpose: 'test', createdAt: now.toISOString() });
      const root = path.join(backupDir, 'scratch');
      const oldDir = path.join(root, `old-${s}`);
      const freshDir = path.join(root, `fresh-${s}`);
      for (const d of [oldDir, freshDir]) mkdirSync(path.join(d, 'aa'), { recursive: true });
      const past = new Date(now.getTime() - 30 * 3_600_000);
      utimesSync(oldDir, past, past);

      const swept = await sweepScratch(config, { olderThanHours: 24, now });
      assert.ok(swept.includes(old), JSON.stringify(swept));
      assert.ok(swept.includes(oldDir), JSON.stringify(swept));
      assert.ok(!swept.includes(fresh) && !swept.includes(freshDir));
      assert.equal(await databaseExists(old), false);
      assert.equal(await databaseExists(fresh), true);
      assert.equal(existsSync(oldDir), false);
      assert.equal(existsSync(freshDir), true);
      const after = (await allDatabases()).filter((d) => !d.includes(config.scratchSuffix));
      for (const db of before) assert.ok(after.includes(db), `${db} must survive the sweep`);
      await dropScratchDatabase(config, fresh);
    });
  });

  describe('interrupted restores', () => {
    it('an aborted restore (AbortSignal, mid pg_restore) leaves no database and no decrypted file', async () => {
      const db = scratch(gen, 'abort');
      const controller = new AbortController();
      let restoring = 0;
      let asked = false;
      const err = await rejection(
        restoreDump({
          config,
          encryptedDump: dumpOf(gen),
          identity,
          database: db,
          owner: config.postgres.user,
          keepOwnership: false,
          signal: controller.signal,
          onProgress: (phase) => {
            if (phase !== 'restore' || asked) return;
            asked = true;
            setTimeout(() => {
              // pg_restore's sessions in the new database prove the abort comes in the middle of it.
              void adminQuery('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1', [db]).then((rows) => {
                restoring = (rows[0] as { n: number }).n;
                controller.abort(new Error('cancelled by test'));
              });
            }, 300);
          },
        }),
      );
      assert.equal(err.message, 'cancelled by test');
      assert.ok(restoring > 0, 'pg_restore was connected to the new database when it was aborted');
      assert.equal(await databaseExists(db), false);
      assert.deepEqual(
        readdirSync(path.join(backupDir, 'scratch')).filter((n) => n.startsWith(`restore-${db}`)),
        [],
      );
    });

    it('a killed process leaves a marked database that the sweep removes', async () => {
      const db = scratch(gen, 'kill');
      const script = path.join(work, 'restore-child.js');
      writeFileSync(
        script,
        `const { loadConfig } = require(${JSON.stringify(path.join(REPO_ROOT, 'dist/src/config'))});
const { readIdentity } = require(${JSON.stringify(path.join(REPO_ROOT, 'dist/src/crypto/age.js'))});
const { restoreDump } = require(${JSON.stringify(path.join(REPO_ROOT, 'dist/src/restore/database.js'))});
const a = JSON.parse(process.env.RESTORE_ARGS);
const config = loadConfig({ path: a.configPath, env: a.env });
readIdentity(config.encryption.identityFile).then((identity) => restoreDump({
  config, identity, encryptedDump: a.dump, database: a.db, owner: config.postgres.user, keepOwnership: false,
  onProgress: (phase) => { if (phase === 'restore') process.stdout.write('RESTORING\\n'); },
})).then(() => process.stdout.write('DONE\\n'), (e) => { process.stderr.write(String(e)); process.exit(1); });
`,
      );
      const child = spawn(process.execPath, [script], {
        env: { PATH: process.env.PATH, RESTORE_ARGS: JSON.stringify({ configPath: LOCAL_CONFIG_PATH, env: overrides, dump: dumpOf(gen), db }) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          if (d.toString().includes('RESTORING')) setTimeout(resolve, 300);
        });
        child.on('exit', (code) => reject(new Error(`child exited (${code}) before restoring: ${stderr}`)));
      });
      const exited = new Promise((resolve) => child.on('exit', resolve));
      child.kill('SIGKILL');
      await exited;

      assert.equal(await databaseExists(db), true, 'the killed restore left its database');
      const marker = await readScratchMarker(config, db);
      assert.equal(marker?.purpose, 'restore in progress');
      // Its plaintext sits in the dead process's own scratch folder.
      const own = path.join(backupDir, 'scratch', `${hostname()}.${child.pid}`);
      const leftovers = readdirSync(own).filter((n) => n.startsWith(`restore-${db}`));
      assert.equal(leftovers.length, 1, 'and its decrypted dump folder');

      // The next worker to start on this host removes all of it at once, not a day later.
      const swept = await sweepDeadProcesses(config);
      assert.ok(swept.includes(db), JSON.stringify(swept));
      assert.ok(swept.includes(own), JSON.stringify(swept));
      assert.equal(await databaseExists(db), false);
      assert.equal(existsSync(own), false, 'no plaintext left');
      const roles = await adminQuery("SELECT rolname FROM pg_roles WHERE shobj_description(oid, 'pg_authid') = $1", [
        `odoo-dr-restore:${hostname()}.${child.pid}`,
      ]);
      assert.deepEqual(roles, [], 'nor its restore role');
    });
  });
});
