/**
 * The files-only recovery use case over a local session folder and a fake tenant filestore (no
 * service): the shadow folder appears whole, verified and owned, or not at all.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Manifest } from '../../src/backup/manifest';
import { encryptFile, generateIdentity, readIdentity } from '../../src/crypto/age';
import { ArtifactCorruptedError, InvalidInputError } from '../../src/errors';
import type { TenantFilestore } from '../../src/ports';
import { restoreFilesOnly } from '../../src/recovery/files-only';
import { localTenantFilestore } from '../../src/recovery/tenant-filestore';
import { LocalSessionStore } from '../../src/sessions/local-store';

const SESSION = 'backup_20261126_000000_abcdef12';
const sha = (algo: string, data: Buffer | string) => createHash(algo).update(data).digest('hex');

describe('recovery: restoreFilesOnly', () => {
  let work: string;
  let root: string;
  let identity: string;
  let recipient: string;
  let filestoreRoot: string;

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'odoo-dr-files-only-'));
    ({ recipient } = await generateIdentity(path.join(work, 'key')));
    identity = await readIdentity(path.join(work, 'key'));
  });
  after(() => rm(work, { recursive: true, force: true }));
  beforeEach(async () => {
    root = await mkdtemp(path.join(work, 'backups-'));
    filestoreRoot = await mkdtemp(path.join(work, 'filestore-'));
  });

  /** A session of tenant acme holding `files` (name → content); `stored` overrides a blob's stored content. */
  async function session(files: Record<string, string>, stored: Record<string, string> = {}): Promise<Manifest> {
    const dir = path.join(root, 'sessions', SESSION);
    await mkdir(dir, { recursive: true });
    const lines: string[] = [];
    for (const [name, content] of Object.entries(files)) {
      const sha1 = sha('sha1', content);
      const plain = path.join(work, `plain-${sha1}`);
      await writeFile(plain, stored[name] ?? content);
      await mkdir(path.join(root, 'blobs', sha1.slice(0, 2)), { recursive: true });
      await encryptFile([recipient], plain, path.join(root, 'blobs', sha1.slice(0, 2), `${sha1}.age`));
      lines.push(JSON.stringify({ path: `${sha1.slice(0, 2)}/${sha1}`, sha1, size: Buffer.byteLength(content) }));
    }
    const artifact = async (name: string, text: string) => {
      await writeFile(path.join(dir, name), text);
      return { path: `sessions/${SESSION}/${name}`, bytes: Buffer.byteLength(text), sha256: sha('sha256', text) };
    };
    return {
      session: SESSION,
      tenants: {
        acme: {
          status: 'complete',
          durationMs: 1,
          database: { ...(await artifact('acme.dump.age', 'not read by a files-only restore')), pgDump: '15.0' },
          filestore: { index: await artifact('acme.filestore.jsonl', `${lines.join('\n')}\n`), files: lines.length, bytes: 42 },
          odoo: {},
        },
        beta: { status: 'failed', durationMs: 1, error: 'pg_dump died' },
      },
    } as unknown as Manifest;
  }

  /** A tenant filestore under `filestoreRoot` that records what the use case asked of it. */
  function fakeFilestore(calls: string[]): TenantFilestore {
    return {
      ensureRoot: () => {
        calls.push('ensureRoot');
        return Promise.resolve();
      },
      shadowDir: (tenant, id) => path.join(filestoreRoot, `.${tenant}.dr-shadow-${id}`),
      ownerOf: (tenant) => {
        calls.push(`ownerOf ${tenant}`);
        return Promise.resolve({ uid: process.getuid!(), gid: process.getgid!(), dirMode: 0o750, from: 'test' });
      },
    };
  }

  it('restores every file verified into the shadow folder, owned like the tenant, replacing an earlier attempt', async () => {
    const manifest = await session({ a: 'first file', b: 'second file' });
    const shadow = path.join(filestoreRoot, '.acme.dr-shadow-r1');
    await mkdir(shadow);
    await writeFile(path.join(shadow, 'stale'), 'from an earlier attempt');
    await mkdir(`${shadow}.partial-0badf00d`);
    const calls: string[] = [];
    const result = await restoreFilesOnly({
      store: new LocalSessionStore(root),
      manifest,
      filestore: fakeFilestore(calls),
      tenant: 'acme',
      id: 'r1',
      identity,
      mirror: path.join(work, 'mirror'),
      beforeRestore: () => void calls.push('beforeRestore'),
    });
    assert.deepEqual(result, { checks: [{ name: 'restore-filestore', status: 'pass', message: '2 files restored and verified' }], bytes: 42 });
    assert.deepEqual(calls, ['ensureRoot', 'beforeRestore', 'ownerOf acme']);
    assert.deepEqual((await readdir(filestoreRoot)).sort(), ['.acme.dr-shadow-r1']);
    const sha1 = sha('sha1', 'first file');
    const file = path.join(shadow, sha1.slice(0, 2), sha1);
    assert.equal(await readFile(file, 'utf8'), 'first file');
    assert.equal((await stat(file)).mode & 0o777, 0o640);
    assert.equal((await stat(shadow)).mode & 0o777, 0o750);
  });

  it('a file that does not verify fails permanently and leaves no shadow and no partial folder', async () => {
    const manifest = await session({ a: 'first file', b: 'second file' }, { b: 'tampered' });
    const err = await restoreFilesOnly({
      store: new LocalSessionStore(root),
      manifest,
      filestore: fakeFilestore([]),
      tenant: 'acme',
      id: 'r2',
      identity,
      mirror: path.join(work, 'mirror'),
    }).then(
      () => assert.fail('restored a tampered filestore'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ArtifactCorruptedError, String(err));
    assert.match(err.message, /shadow filestore of acme does not verify/);
    assert.deepEqual(await readdir(filestoreRoot), []);
  });

  it('a tenant without a complete backup is refused before anything is touched', async () => {
    const manifest = await session({});
    const calls: string[] = [];
    const err = await restoreFilesOnly({
      store: new LocalSessionStore(root),
      manifest,
      filestore: fakeFilestore(calls),
      tenant: 'beta',
      id: 'r3',
      identity,
      mirror: path.join(work, 'mirror'),
    }).then(
      () => assert.fail('restored a failed tenant'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof InvalidInputError, String(err));
    assert.deepEqual(calls, []);
  });
});

describe('recovery: localTenantFilestore', () => {
  let work: string;
  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'odoo-dr-tenant-fs-'));
  });
  after(() => rm(work, { recursive: true, force: true }));

  it('creates a missing root with the data folder mode, names shadows beside the tenant, and takes the nearest owner', async () => {
    const dataDir = path.join(work, 'data');
    await mkdir(dataDir, { mode: 0o751 });
    await chmod(dataDir, 0o751);
    const filestoreRoot = path.join(dataDir, 'filestore');
    const fs = localTenantFilestore({ filestoreRoot, dataDir });
    assert.equal((await fs.ownerOf('acme'))?.from, dataDir);
    await fs.ensureRoot();
    assert.equal((await stat(filestoreRoot)).mode & 0o777, 0o751);
    assert.equal(fs.shadowDir('acme', 'r1'), path.join(filestoreRoot, '.acme.dr-shadow-r1'));
    assert.equal((await fs.ownerOf('acme'))?.from, filestoreRoot);
    await mkdir(path.join(filestoreRoot, 'acme'));
    assert.equal((await fs.ownerOf('acme'))?.from, path.join(filestoreRoot, 'acme'));
    assert.throws(() => fs.shadowDir('../etc', 'r1'));
  });
});
