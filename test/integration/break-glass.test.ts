/**
 * The break-glass script (scripts/break-glass-restore.sh) on a real session: a backup made by the
 * real worker and CLI of a generated tenant and of the real Odoo 17 tenant, with its cloud copy in
 * versitygw; the script restored from the folder and from the bucket (curl and aws) with a PATH
 * holding only the tools it may use (no node), every table's rows (md5) and every filestore file
 * (SHA-1) compared with the source; damaged, forged or unsafe input refused with nothing left behind.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { localPath, rel } from '../../src/backup/layout';
import { readManifest, sealManifest, type Manifest } from '../../src/backup/manifest';
import { formatPublicKey } from '../../src/crypto/signing';
import { findClientTools } from '../../src/pgtools';
import { serverVersion, withClient } from '../../src/postgres';
import { deleteObjects, listObjects } from '../../src/storage/s3';
import { createTenant, dropTenant, type PgAdminConnection } from '../fixtures/odoo-tenants';
import { loadRealOdooTenant } from '../fixtures/real-odoo';
import { runCli, startCliWorker } from '../helpers/cli';
import { REPO_ROOT, stackConfig, uniqueSuffix } from '../helpers/config';
import { filestoreFiles, flipByte } from '../helpers/files';
import { adminQuery, dropDatabase, adminConnection } from '../helpers/pg';

const SCRIPT = path.join(REPO_ROOT, 'scripts/break-glass-restore.sh');
/** What the script may use besides bash: the tools, jq, ssh-keygen, and POSIX base utilities. */
const ALLOWED = [
  'age',
  'zstd',
  'tar',
  'jq',
  'ssh-keygen',
  'curl',
  'sha256sum',
  'sha1sum',
  'stat',
  'awk',
  'grep',
  'sort',
  'find',
  'mkfifo',
  'tee',
  'mktemp',
  'cut',
  'tr',
  'head',
  'tail',
  'wc',
  'cat',
  'cp',
  'mv',
  'ln',
  'rm',
  'rmdir',
  'mkdir',
  'ls',
  'date',
  'dirname',
  'id',
  'chmod',
];

function which(tool: string): string | undefined {
  const r = spawnSync('/bin/bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' });
  const found = r.status === 0 ? r.stdout.trim() : undefined;
  // A pyenv shim needs pyenv on PATH: link the real program (its shebang names its interpreter).
  if (found && readFileSync(found, 'utf8').slice(0, 4096).includes('pyenv')) {
    const real = spawnSync('pyenv', ['which', tool], { encoding: 'utf8' });
    return real.status === 0 ? real.stdout.trim() : undefined;
  }
  return found;
}

/** md5 of every row of every table of `db`, per table (as the fault suite measures data). */
async function tableHashes(db: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  await withClient(stackConfig().postgres, db, async (c) => {
    const { rows } = await c.query<{ t: string }>(
      "SELECT quote_ident(table_name) AS t FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
    );
    for (const { t } of rows) {
      const r = await c.query<{ h: string | null }>(`SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) AS h FROM ${t} x`);
      out[t] = r.rows[0]?.h ?? 'empty';
    }
  });
  return out;
}

async function databaseExists(name: string): Promise<boolean> {
  return (await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [name])).length > 0;
}

describe('break-glass restore script (bash and standard tools only, real session)', function () {
  this.timeout(600_000);
  const s = uniqueSuffix();
  const work = mkdtempSync(path.join(tmpdir(), 'odoo-dr-break-glass-'));
  const backupDir = path.join(work, 'backups');
  const dataDir = path.join(work, 'odoo-data');
  const prefix = `test-break-glass-${s}`;
  const env = {
    DR_BACKUP_DIR: backupDir,
    DR_LOG_DIR: path.join(work, 'logs'),
    ODOO_DATA_DIR: dataDir,
    DR_CLOUD_BUCKET: `s3://odoo-dr-local/${prefix}`,
    DR_TASK_QUEUE: `break-glass-${s}`,
  };
  const config = stackConfig(env);
  const gen = `bg-gen-${s}`;
  const real = `bg-real-${s}`;
  const targets: string[] = [];
  const tools = path.join(work, 'tools');
  let session = '';
  let signer = '';
  const source: Record<string, { tables: Record<string, string>; files: string[] }> = {};
  const admin = (): PgAdminConnection => adminConnection(config);
  const target = (tag: string) => {
    const name = `bg-${tag}-${s}`;
    targets.push(name);
    return name;
  };

  /** Runs the script with only `tools` on PATH, the PostgreSQL and S3 settings in libpq's and AWS's variables. */
  const breakGlass = (args: string[], opts: { path?: string } = {}) => {
    const { host, port, user, password } = config.postgres;
    const r = spawnSync('/bin/bash', [SCRIPT, ...args], {
      cwd: work,
      encoding: 'utf8',
      timeout: 300_000,
      env: {
        PATH: opts.path ?? tools,
        HOME: work,
        TMPDIR: work,
        PGHOST: host,
        PGPORT: String(port),
        PGUSER: user,
        PGPASSWORD: password ?? '',
        AWS_ACCESS_KEY_ID: config.cloud!.accessKeyId ?? '',
        AWS_SECRET_ACCESS_KEY: config.cloud!.secretAccessKey ?? '',
        AWS_REGION: config.cloud!.region,
      },
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr, out: `${r.stdout}\n${r.stderr}` };
  };
  const common = (tenant: string) => ['--tenant', tenant, '--identity', config.encryption.identityFile!, '--owner', config.odoo.dbUser];
  const sessionDir = () => localPath(backupDir, rel.session(session));
  const bucketSession = () => `s3://odoo-dr-local/${prefix}/sessions/${session}`;

  before(async function () {
    this.timeout(600_000);
    mkdirSync(backupDir, { recursive: true });
    await createTenant(admin(), dataDir, { name: gen, moveLines: 3_000, files: 60, fileSize: 8192 });
    await loadRealOdooTenant(admin(), dataDir, { name: real });
    const worker = await startCliWorker(env, ['--task-queue', env.DR_TASK_QUEUE]);
    try {
      const run = runCli(['--json', 'backup', '--wait', '--tenant', gen, '--tenant', real], env);
      const { code, stdout, out } = await run.result;
      assert.equal(code, 0, out);
      const result = JSON.parse(stdout.slice(stdout.indexOf('{'))) as { session: string; status: string };
      assert.equal(result.status, 'complete', out);
      session = result.session;
    } finally {
      worker.child.kill('SIGTERM');
      await worker.result;
    }
    for (const t of [gen, real]) source[t] = { tables: await tableHashes(t), files: filestoreFiles(path.join(dataDir, 'filestore', t)) };
    assert.ok(source[gen]!.files.length >= 60 && source[real]!.files.length > 0, 'both tenants have a filestore');
    signer = config.signing.trusted[0]!.split(' ').slice(0, 2).join(' ');
    // PATH for the script: links to the allowed tools only, PostgreSQL's client of the server's major.
    mkdirSync(tools);
    const pg = await findClientTools((await serverVersion(config.postgres)).major);
    symlinkSync(pg.pgRestore, path.join(tools, 'pg_restore'));
    symlinkSync(path.join(path.dirname(pg.pgRestore), 'psql'), path.join(tools, 'psql'));
    for (const t of [...ALLOWED, 'aws']) {
      const found = which(t);
      if (found) symlinkSync(found, path.join(tools, t));
      else assert.equal(t, 'aws', `${t} is not installed`);
    }
  });

  after(async function () {
    this.timeout(120_000);
    for (const db of targets) await dropDatabase(db).catch(() => undefined);
    await adminQuery(`DROP ROLE IF EXISTS bg_gone_${s}`).catch(() => undefined);
    for (const t of [gen, real]) await dropTenant(admin(), dataDir, t).catch(() => undefined);
    const keys: string[] = [];
    for await (const o of listObjects(config.cloud!, `${prefix}/`)) keys.push(o.key);
    if (keys.length) await deleteObjects(config.cloud!, keys);
    rmSync(work, { recursive: true, force: true });
  });

  it('runs without node: its PATH holds only the allowed tools', () => {
    assert.throws(() => execFileSync('/bin/bash', ['-c', 'command -v node'], { env: { PATH: tools } }));
    assert.deepEqual(
      readdirSync(tools).filter((n) => /node|npm|npx|temporal|odoo-dr/.test(n)),
      [],
    );
  });

  const restores: Array<{ from: string; tenant: () => string; via?: 'curl' | 'aws' }> = [
    { from: 'the session folder', tenant: () => gen },
    { from: 'the bucket with curl', tenant: () => real, via: 'curl' },
    { from: 'the bucket with aws', tenant: () => gen, via: 'aws' },
  ];
  for (const c of restores) {
    it(`restores a tenant from ${c.from}: every table's rows and every file equal the source`, async function () {
      if (c.via === 'aws' && !existsSync(path.join(tools, 'aws'))) this.skip(); // the aws CLI is optional: curl is the fallback
      const tenant = c.tenant();
      const db = target(c.via ?? 'local');
      const fsDir = path.join(work, 'restored', db);
      const where = c.via ? [bucketSession(), '--endpoint', config.cloud!.endpoint!, '--s3-client', c.via] : [sessionDir()];
      const r = breakGlass(['--session', ...where, ...common(tenant), '--signer', signer, '--target-db', db, '--filestore-dir', fsDir]);
      assert.equal(r.code, 0, r.out);
      assert.match(r.stdout, /manifest signature verified/);
      assert.match(r.stdout, new RegExp(`RESTORED tenant ${tenant.replace(/\./g, '\\.')} from ${session}`));
      assert.deepEqual(await tableHashes(db), source[tenant]!.tables);
      assert.deepEqual(filestoreFiles(fsDir), source[tenant]!.files);
      const [row] = (await adminQuery('SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1', [db])) as Array<{ owner: string }>;
      assert.equal(row!.owner, config.odoo.dbUser);
      assert.deepEqual(
        readdirSync(work).filter((n) => n.startsWith('odoo-dr-break-glass.')),
        [],
        'no plaintext left in the work folder',
      );
    });
  }

  it('refuses to overwrite an existing database or folder, and keeps the old one with --force', async () => {
    const db = targets[0]!;
    const fsDir = path.join(work, 'restored', db);
    const again = breakGlass(['--session', sessionDir(), ...common(gen), '--target-db', db, '--filestore-dir', fsDir]);
    assert.equal(again.code, 1, again.out);
    assert.match(again.stderr, new RegExp(`database "${db}" exists`));
    const forced = breakGlass(['--session', sessionDir(), ...common(gen), '--target-db', db, '--filestore-dir', fsDir, '--force', '--no-filestore']);
    assert.equal(forced.code, 0, forced.out);
    const kept = /kept as "([^"]+)"/.exec(forced.stdout)?.[1];
    assert.ok(kept && (await databaseExists(kept)), forced.out);
    targets.push(kept);
    assert.deepEqual(await tableHashes(db), source[gen]!.tables);
  });

  it('restores one lost filestore file into a live folder (--file), leaving the others alone', () => {
    const fsDir = path.join(work, 'restored', targets[0]!);
    const [lost] = source[gen]!.files;
    const lostPath = lost!.slice(0, lost!.lastIndexOf(':'));
    unlinkSync(path.join(fsDir, lostPath));
    const r = breakGlass([
      '--session',
      bucketSession(),
      '--endpoint',
      config.cloud!.endpoint!,
      '--s3-client',
      'curl',
      ...common(gen),
      '--filestore-dir',
      fsDir,
      '--file',
      lostPath,
    ]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.stdout, new RegExp(`restored ${fsDir}/${lostPath}`));
    assert.deepEqual(filestoreFiles(fsDir), source[gen]!.files);
  });

  describe('copies of the session changed after the backup: damaged or forged ones refused with nothing left, an older layout restored', () => {
    const copyRoot = path.join(work, 'copy');
    const copySession = () => localPath(copyRoot, rel.session(session));
    let manifest: Manifest;
    beforeEach(async () => {
      rmSync(copyRoot, { recursive: true, force: true });
      cpSync(backupDir, copyRoot, { recursive: true, filter: (p) => !p.includes(`${path.sep}scratch`) });
      manifest = await readManifest(localPath(copyRoot, rel.manifest(session)));
    });
    const refused = async (args: string[], pattern: RegExp) => {
      const db = target('refused');
      const fsDir = path.join(work, 'refused', db);
      const r = breakGlass(['--session', copySession(), ...common(gen), '--target-db', db, '--filestore-dir', fsDir, ...args]);
      assert.equal(r.code, 1, r.out);
      assert.match(r.stderr, pattern);
      assert.equal(await databaseExists(db), false, 'no database created');
      assert.equal(existsSync(fsDir), false, 'no filestore folder created');
      assert.deepEqual(existsSync(path.dirname(fsDir)) ? readdirSync(path.dirname(fsDir)) : [], [], 'no partial folder left');
      return r;
    };

    it('a flipped bit in the dump', async () => {
      flipByte(localPath(copyRoot, rel.database(session, gen)));
      await refused(['--signer', signer], /database\.dump\.zst\.age (has SHA-256 .* the manifest says|cannot be decrypted)/);
    });

    it('a dump replaced by another valid age file of the same size (anyone with the public recipient can make one)', async () => {
      const dump = localPath(copyRoot, rel.database(session, gen));
      const want = manifest.tenants[gen]!.database!.bytes;
      // Random bytes stay incompressible: the encrypted size follows the plaintext's one for one.
      const forge = (n: number) =>
        execFileSync('/bin/bash', [
          '-c',
          'head -c "$1" /dev/urandom | zstd -q -1 -c | age -r "$2"',
          'forge',
          String(Math.max(0, n)),
          config.encryption.recipients[0]!,
        ]);
      let n = want - 400;
      let forged = forge(n);
      for (let i = 0; i < 6 && forged.length !== want; i++) forged = forge((n += want - forged.length));
      assert.equal(forged.length, want);
      writeFileSync(dump, forged);
      await refused([], /database\.dump\.zst\.age has SHA-256 [0-9a-f]{64}, the manifest says [0-9a-f]{64}: refused/);
    });

    it('a flipped bit in a pack', async () => {
      const pack = JSON.parse(readFileSync(localPath(copyRoot, rel.filestoreIndex(session, gen)), 'utf8').split('\n')[0]!) as { pack: string };
      flipByte(localPath(copyRoot, rel.pack(pack.pack)));
      await refused(['--signer', signer], new RegExp(`packs/${pack.pack.slice(0, 2)}/${pack.pack}\\.tar\\.zst\\.age (has SHA-256|cannot be decrypted)`));
    });

    it('a manifest signed by another key, and an edited manifest', async () => {
      const stranger = formatPublicKey(generateKeyPairSync('ed25519').publicKey).split(' ').slice(0, 2).join(' ');
      await refused(['--signer', stranger], /signature does not verify/);
      const file = localPath(copyRoot, rel.manifest(session));
      writeFileSync(file, readFileSync(file, 'utf8').replace(`"${gen}"`, `"${gen}x"`));
      await refused(['--signer', signer], /signature does not verify/);
      await refused([], /was modified after it was written/);
    });

    /** Rewrites the generated tenant's index and reseals the manifest around it (no signature: the forger has no key). */
    const rewriteIndex = (text: string) => {
      const indexFile = localPath(copyRoot, rel.filestoreIndex(session, gen));
      writeFileSync(indexFile, text);
      const { checksum: _c, ...body } = manifest;
      Object.assign(body.tenants[gen]!.filestore!.index, { bytes: Buffer.byteLength(text), sha256: createHash('sha256').update(text).digest('hex') });
      writeFileSync(localPath(copyRoot, rel.manifest(session)), JSON.stringify(sealManifest(body), null, 2));
    };
    const indexLines = () =>
      readFileSync(localPath(copyRoot, rel.filestoreIndex(session, gen)), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>);

    it('an index entry escaping the filestore folder (resealed manifest, no signer)', async () => {
      const lines = indexLines();
      const first = lines.find((l) => 'path' in l)!;
      rewriteIndex([...lines, { ...first, path: '../../../escaped' }].map((l) => `${JSON.stringify(l)}\n`).join(''));
      const r = await refused([], /unsafe path "\.\.\/\.\.\/\.\.\/escaped"/);
      assert.match(r.stderr, /WARNING: no --signer given/);
      assert.equal(existsSync(path.join(work, 'escaped')), false);
    });

    it('a failed pg_restore after --force renamed the existing database: dropped, and the old one back under its name', async () => {
      // A verifying dump that cannot be replayed here: it grants to a role this cluster lacks.
      const src = target('grant');
      const role = `bg_gone_${s}`;
      await adminQuery(`CREATE DATABASE "${src}" OWNER odoo TEMPLATE template0`);
      await adminQuery(`CREATE ROLE ${role} NOLOGIN`);
      await withClient(config.postgres, src, async (c) => {
        await c.query(`CREATE TABLE t (x int); GRANT SELECT ON t TO ${role}`);
      });
      const pg = await findClientTools((await serverVersion(config.postgres)).major);
      const { host, port, user, password } = config.postgres;
      const dump = localPath(copyRoot, rel.database(session, gen));
      execFileSync('/bin/bash', ['-c', `"$1" -Fc -d "$2" | zstd -q | age -r "$3" > "$4"`, 'dump', pg.pgDump, src, config.encryption.recipients[0]!, dump], {
        env: { ...process.env, PGHOST: host, PGPORT: String(port), PGUSER: user, PGPASSWORD: password ?? '' },
      });
      await dropDatabase(src);
      await adminQuery(`DROP ROLE ${role}`);
      const { checksum: _c, ...body } = manifest;
      const bytes = readFileSync(dump);
      Object.assign(body.tenants[gen]!.database!, { bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
      writeFileSync(localPath(copyRoot, rel.manifest(session)), JSON.stringify(sealManifest(body), null, 2));
      const existing = targets[0]!;
      const before = await tableHashes(existing);
      const r = breakGlass(['--session', copySession(), ...common(gen), '--target-db', existing, '--no-filestore', '--force']);
      assert.equal(r.code, 1, r.out);
      assert.match(r.stderr, new RegExp(`pg_restore into "${existing}" failed: .*role "${role}" does not exist`));
      assert.match(r.stderr, new RegExp(`database "${existing}" is back under its name`));
      assert.deepEqual(await tableHashes(existing), before);
      const left = (await adminQuery("SELECT datname FROM pg_database WHERE datname LIKE '%pre_breakglass%' AND datname LIKE $1", [`%${s}%`])) as Array<{
        datname: string;
      }>;
      assert.deepEqual(
        left.map((d) => d.datname).filter((n) => !targets.includes(n)),
        [],
      );
    });

    it('a session made before packs (one age blob per file) restores equal, without any pack', () => {
      const files = indexLines().filter((l) => 'path' in l) as Array<{ path: string; sha1: string; size: number; pack?: string }>;
      for (const f of files) {
        const blob = localPath(copyRoot, rel.blob(f.sha1));
        mkdirSync(path.dirname(blob), { recursive: true });
        execFileSync(path.join(tools, 'age'), ['-r', config.encryption.recipients[0]!, '-o', blob, path.join(dataDir, 'filestore', gen, f.path)]);
      }
      rewriteIndex(files.map(({ pack: _pack, ...f }) => `${JSON.stringify(f)}\n`).join(''));
      rmSync(path.join(copyRoot, 'packs'), { recursive: true });
      const fsDir = path.join(work, 'restored', `legacy-${s}`);
      const r = breakGlass(['--session', copySession(), ...common(gen), '--no-database', '--filestore-dir', fsDir]);
      assert.equal(r.code, 0, r.out);
      assert.match(r.stdout, /from 0 packs/);
      assert.deepEqual(filestoreFiles(fsDir), source[gen]!.files);
    });
  });

  it('fails early naming a missing tool, and refuses bad input', () => {
    const noJq = path.join(work, 'tools-no-jq');
    mkdirSync(noJq);
    for (const n of readdirSync(tools).filter((n) => n !== 'jq')) symlinkSync(path.join(tools, n), path.join(noJq, n));
    const r = breakGlass(['--session', sessionDir(), ...common(gen)], { path: noJq });
    assert.equal(r.code, 2, r.out);
    assert.match(r.stderr, /missing tools: jq/);
    const bad = breakGlass(['--session', sessionDir(), ...common('../etc')]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--tenant "\.\.\/etc" is not a valid Odoo database name/);
    const absent = breakGlass(['--session', sessionDir(), ...common(`nope-${s}`), '--no-database', '--filestore-dir', path.join(work, 'absent')]);
    assert.equal(absent.code, 1);
    assert.match(absent.stderr, new RegExp(`tenant nope-${s} is absent in ${session} \\(tenants: .*${gen}`));
    assert.ok(statSync(SCRIPT).mode & 0o100, 'the script is executable');
  });
});
