/**
 * The session store conformance suite: the same tests for every place a session can live (a local
 * folder, the S3 bucket on versitygw), so that every reader behaves the same from either.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { rel } from '../../src/backup/layout';
import { SessionCatalog, type SessionResult } from '../../src/sessions/catalog';
import { formatPublicKey, signMessage } from '../../src/crypto/signing';
import { generateKeyPairSync } from 'node:crypto';
import { LocalSessionStore } from '../../src/sessions/local-store';
import { S3SessionStore } from '../../src/sessions/s3-store';
import type { SessionStore } from '../../src/sessions/store';
import { rejection } from '../helpers/assert';
import { manifestText } from '../helpers/manifests';
import { stackConfig } from '../helpers/config';
import { testBucketUrl } from '../helpers/bucket';

const OLD = 'backup_20260101_010101_aaaaaa';
// The backup host's key (trusted) and another one (not trusted).
const signer = generateKeyPairSync('ed25519').privateKey;
const stranger = generateKeyPairSync('ed25519').privateKey;
const trust = { signers: () => Promise.resolve([formatPublicKey(signer, 'backup-host')]), allowUnsigned: false };
/** Stores a manifest as a backup does: signed by the backup host. */
const putSigned = (store: SessionStore, session: string, text: string) => store.putManifest(session, text, signMessage(text, signer));
const NEW = 'backup_20261126_020000_bbbbbb';

const backends: Array<{ name: string; make: () => { store: SessionStore; catalog: (s: SessionStore) => SessionCatalog; cleanup: () => Promise<void> } }> = [
  {
    name: 'local folder',
    make: () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-store-'));
      const store = new LocalSessionStore(dir);
      return { store, catalog: (s) => new SessionCatalog(s, undefined, trust), cleanup: () => Promise.resolve(rmSync(dir, { recursive: true, force: true })) };
    },
  },
  {
    name: 'S3 bucket',
    make: () => {
      const cloud = stackConfig({ DR_CLOUD_BUCKET: testBucketUrl('conformance') }).cloud!;
      const store = new S3SessionStore(cloud);
      const empty = new LocalSessionStore(mkdtempSync(path.join(tmpdir(), 'odoo-dr-empty-')));
      return {
        store,
        // The bucket as the only holder of sessions: an empty local folder beside it.
        catalog: (s) => new SessionCatalog(empty, s, trust),
        cleanup: async () => {
          for (const s of await store.sessionNames()) await store.deleteSession(s);
        },
      };
    },
  },
];

for (const backend of backends) {
  describe(`session store conformance: ${backend.name}`, function () {
    this.timeout(60_000);
    let store: SessionStore;
    let catalog: SessionCatalog;
    let cleanup: () => Promise<void>;
    let work: string;
    const artifactBody = Buffer.from('encrypted bytes of a dump '.repeat(1000));
    const artifact = {
      path: rel.database(NEW, 'acme'),
      bytes: artifactBody.length,
      sha256: createHash('sha256').update(artifactBody).digest('hex'),
    };

    before(() => {
      const made = backend.make();
      store = made.store;
      catalog = made.catalog(store);
      cleanup = made.cleanup;
      work = mkdtempSync(path.join(tmpdir(), 'odoo-dr-conf-'));
    });
    after(async () => {
      await cleanup();
      rmSync(work, { recursive: true, force: true });
    });

    it('an empty store has no sessions, and says so by name', async () => {
      assert.deepEqual(await store.sessionNames(), []);
      assert.equal(await store.hasSession(NEW), false);
      assert.equal(await store.manifestText(NEW), undefined);
      const err = await rejection(catalog.resolve('latest', 'auto'));
      assert.match(err.message, /no complete, non-failed backup session in/);
      const named = await rejection(catalog.open(NEW, 'auto'));
      assert.match(named.message, new RegExp(`session ${NEW} does not exist in`));
    });

    it('stores an artifact and gives back exactly its bytes; a wrong expectation fails the check', async () => {
      const src = path.join(work, 'dump.age');
      writeFileSync(src, artifactBody);
      await store.putArtifact(src, artifact);
      assert.equal(await store.hasSession(NEW), true);
      const check = await store.checkArtifact(artifact);
      assert.equal(check.ok, true, check.message);
      const bad = await store.checkArtifact({ ...artifact, sha256: '0'.repeat(64) });
      assert.equal(bad.ok, false);
      const fetched = await store.fetchArtifact(artifact, path.join(work, 'scratch'));
      assert.deepEqual(readFileSync(fetched), artifactBody);
      const wrong = await rejection(store.fetchArtifact({ ...artifact, bytes: artifact.bytes + 1 }, path.join(work, 'scratch2')));
      assert.equal(wrong.name, 'ArtifactCorruptedError');
    });

    it('a session without a manifest is in progress or crashed, never a candidate for latest', async () => {
      const err = await rejection(catalog.open(NEW, 'auto'));
      assert.match(err.message, /has no manifest in .*still in progress, or it crashed/);
      await rejection(catalog.resolve('latest', 'auto'));
    });

    it('manifests round-trip; latest is the newest complete one; a corrupt manifest is refused by name', async () => {
      await putSigned(store, OLD, manifestText(OLD));
      await putSigned(store, NEW, manifestText(NEW, 'partial'));
      assert.deepEqual(await store.sessionNames(), [NEW, OLD]);
      assert.equal(await store.manifestText(OLD), manifestText(OLD));
      const latest = await catalog.resolve('latest', 'auto');
      assert.equal(latest.session, OLD, 'a partial session is not "latest"');
      assert.equal(latest.store.location, store.location);
      // Edited and re-sealed (the checksum recomputed), signed by nobody trusted.
      const edited = manifestText(NEW).replace('"acme"', '"evil"');
      await putSigned(store, NEW, edited);
      const err = await rejection(catalog.open(NEW, 'auto'));
      assert.equal(err.name, 'ArtifactCorruptedError');
      assert.match(err.message, /modified after it was written/);
      const listed = await catalog.list(store);
      assert.deepEqual(
        listed.map((s) => [s.session, s.status]),
        [
          [NEW, 'corrupt'],
          [OLD, 'complete'],
        ],
      );
    });

    it('only a manifest signed by a trusted key is read; unsigned ones only with --allow-unsigned', async () => {
      const text = manifestText(NEW);
      // Signed by another key: refused, naming the signer.
      await store.putManifest(NEW, text, signMessage(text, stranger));
      const foreign = await rejection(catalog.open(NEW, 'auto'));
      assert.match(foreign.message, /signed by SHA256:.*which is not in DR_TRUSTED_SIGNERS/);
      // The right key, but the manifest changed after signing (and its checksum recomputed).
      await store.putManifest(NEW, manifestText(NEW).replace('"test"', '"evil"'), signMessage(text, signer));
      const changed = await rejection(catalog.open(NEW, 'auto'));
      assert.match(changed.message, /does not match: the manifest was changed after it was signed/);
      // No signature at all (a session made before signing, or forged without the key).
      await store.deleteSession(NEW);
      await store.putManifest(NEW, text);
      const unsigned = await rejection(catalog.open(NEW, 'auto'));
      assert.match(unsigned.message, /is not signed: refused.*--allow-unsigned/);
      const permissive = new SessionCatalog(catalog.local, catalog.cloud, { ...trust, allowUnsigned: true });
      const opened = await permissive.open(NEW, 'auto');
      assert.equal(opened.signedBy, undefined);
      await putSigned(store, NEW, text);
      assert.match((await catalog.open(NEW, 'auto')).signedBy ?? '', /^SHA256:/);
    });

    it('validation results are kept with the session and decide what latest means', async () => {
      await putSigned(store, NEW, manifestText(NEW));
      assert.equal((await catalog.resolve('latest', 'auto')).session, NEW);
      const failed: SessionResult = {
        kind: 'validation',
        session: NEW,
        status: 'fail',
        finishedAt: new Date().toISOString(),
        workflowId: 'w',
        restoreTest: true,
        failures: ['x'],
      };
      const written = await catalog.saveResult(failed);
      assert.equal(written.length, 1);
      assert.equal(await catalog.validationOf(NEW), 'fail');
      const latest = await catalog.resolve('latest', 'auto');
      assert.equal(latest.session, OLD, 'a session whose newest validation failed is skipped');
      assert.match(latest.warnings.join(' '), new RegExp(`skipped ${NEW}: it failed validation`));
      await rejection(catalog.resolve(NEW, 'auto'));
      assert.equal((await catalog.resolve(NEW, 'auto', { force: true })).session, NEW);
      await catalog.saveResult({ ...failed, status: 'pass', secondsPerGiB: 42, finishedAt: new Date(Date.now() + 1000).toISOString() });
      assert.equal(await catalog.validationOf(NEW), 'pass');
      assert.equal(await catalog.restoreRate(NEW), 42);
      assert.equal((await catalog.resolve('latest', 'auto')).session, NEW);
    });

    it('latest for named tenants: the newest session in which they are complete, partial ones included', async () => {
      const NEWEST = 'backup_20261127_000000_cccccc';
      await putSigned(store, NEW, manifestText(NEW, 'partial', { acme: 'failed', globex: 'complete' }));
      await putSigned(store, NEWEST, manifestText(NEWEST, 'complete', { initech: 'complete' }));
      assert.equal((await catalog.resolve('latest', 'auto')).session, NEWEST);
      assert.equal((await catalog.resolve('latest', 'auto', { tenants: ['globex'] })).session, NEW, 'a partial session serves the tenants complete in it');
      assert.equal((await catalog.resolve('latest', 'auto', { tenants: ['acme'] })).session, OLD, 'acme failed in NEW and is not in NEWEST');
      const none = await rejection(catalog.resolve('latest', 'auto', { tenants: ['acme', 'globex'] }));
      assert.match(none.message, /no complete, non-failed backup session with a complete backup of acme, globex/);
      await store.deleteSession(NEWEST);
    });

    it('documents and blobs', async () => {
      await store.putDocument(`${rel.tenantDir(NEW, 'acme')}/entry.json`, { a: 1 });
      assert.deepEqual(await store.getDocument(`${rel.tenantDir(NEW, 'acme')}/entry.json`), { a: 1 });
      assert.equal(await store.getDocument(`${rel.tenantDir(NEW, 'other')}/entry.json`), undefined);
      const sha1 = 'ab'.padEnd(40, '0');
      assert.equal(await store.hasBlob(sha1), false);
      const blob = path.join(work, 'blob');
      writeFileSync(blob, 'x');
      await store.putArtifact(blob, { path: rel.blob(sha1), bytes: 1, sha256: createHash('sha256').update('x').digest('hex') });
      assert.equal(await store.hasBlob(sha1), true);
      // A pack: stored under its SHA-256, read back whole (from the bucket: size and SHA-256 checked).
      const packBytes = Buffer.from('a pack of filestore files');
      const id = createHash('sha256').update(packBytes).digest('hex');
      const packSrc = path.join(work, 'pack');
      writeFileSync(packSrc, packBytes);
      await store.putArtifact(packSrc, { path: rel.pack(id), bytes: packBytes.length, sha256: id });
      const got = await store.packFile(id, packBytes.length, path.join(work, 'pack-scratch'));
      assert.deepEqual(readFileSync(got!.file), packBytes);
    });

    it('paths outside the layout are refused before anything is read or written', async () => {
      for (const bad of [
        'sessions/../../etc/passwd',
        `sessions/${NEW}/../../x`,
        '/etc/passwd',
        'blobs/ab/../../x',
        `sessions/${NEW}/a//b`,
        'other/file',
        'packs/ab/../../x',
        `packs/ab/${'cd'.padEnd(64, '0')}.tar.zst.age`,
      ]) {
        const err = await rejection(store.getDocument(bad));
        assert.equal(err.name, 'InvalidInputError', bad);
      }
      const err = await rejection(store.fetchArtifact({ path: '../outside', bytes: 1, sha256: '0'.repeat(64) }, work));
      assert.equal(err.name, 'InvalidInputError');
      await rejection(catalog.open('../evil', 'auto'));
    });

    it('deleting a session removes all of it, and only it', async () => {
      await store.deleteSession(NEW);
      assert.equal(await store.hasSession(NEW), false);
      assert.equal(await store.manifestText(NEW), undefined);
      assert.deepEqual(await store.sessionNames(), [OLD]);
    });
  });
}
