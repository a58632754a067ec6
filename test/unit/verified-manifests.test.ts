/**
 * The catalog's memory of verified manifests (local folder): an unchanged manifest is not read
 * again, and any rewrite of the manifest or its signature — even one that puts back its size and
 * mtime — is read and verified again, so a tampered manifest is still refused.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { localPath, rel } from '../../src/backup/layout';
import { formatPublicKey, signMessage } from '../../src/crypto/signing';
import { SessionCatalog } from '../../src/sessions/catalog';
import { LocalSessionStore } from '../../src/sessions/local-store';
import { manifestText as sealedManifest } from '../helpers/manifests';

const OLD = 'backup_20261120_020000_aaaaaa';
const NEW = 'backup_20261126_020000_bbbbbb';
const ROUND_TIME = new Date('2026-11-26T02:01:00Z');
const signer = generateKeyPairSync('ed25519').privateKey;
const stranger = generateKeyPairSync('ed25519').privateKey;
const trust = { signers: () => Promise.resolve([formatPublicKey(signer, 'backup-host')]), allowUnsigned: false };

/** A complete session of the one tenant. */
const manifestText = (session: string, tenant: string) => sealedManifest(session, 'complete', { [tenant]: 'complete' });

/** The files' timestamps must be older than the store's settling time before it remembers them. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 2_100));

/** Rewrites a file in place with same-length bytes, then puts its mtime back: only its ctime tells. */
function rewriteKeepingMtime(file: string, text: string): void {
  const before = statSync(file);
  assert.equal(before.mtimeMs, ROUND_TIME.getTime());
  assert.equal(Buffer.byteLength(text), before.size, 'the forgery keeps the size');
  writeFileSync(file, text);
  utimesSync(file, ROUND_TIME, ROUND_TIME);
  assert.equal(statSync(file).mtimeMs, before.mtimeMs);
  assert.equal(statSync(file).ino, before.ino);
}

describe('session catalog: verified manifests remembered by file identity', function () {
  this.timeout(30_000);
  let dir: string;
  let store: LocalSessionStore;
  let reads: string[];
  let catalog: SessionCatalog;

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-verified-'));
    store = new LocalSessionStore(dir);
    reads = [];
    const readManifest = store.manifestText.bind(store);
    store.manifestText = (session: string) => (reads.push(session), readManifest(session));
    catalog = new SessionCatalog(store, undefined, trust);
    for (const [session, tenant] of [
      [OLD, 'acme'],
      [NEW, 'acme'],
    ] as const) {
      const text = manifestText(session, tenant);
      await store.putManifest(session, text, signMessage(text, signer));
      // Whole seconds, so that a forger can put them back exactly.
      for (const file of [rel.manifest(session), rel.signature(session)]) utimesSync(localPath(dir, file), ROUND_TIME, ROUND_TIME);
    }
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const statuses = async () => (await catalog.list(store)).map((s) => [s.session, s.status, Object.keys(s.tenants).join()]);

  it('reads an unchanged manifest once its files settled, then refuses it after a rewrite that keeps size, inode and mtime', async () => {
    // Just written: timestamps too fresh to tell a rewrite apart, so read every time.
    await catalog.list(store);
    await catalog.list(store);
    assert.deepEqual(reads.sort(), [OLD, OLD, NEW, NEW]);
    await settle();
    reads = [];
    assert.deepEqual(await statuses(), [
      [NEW, 'complete', 'acme'],
      [OLD, 'complete', 'acme'],
    ]);
    assert.deepEqual(reads.sort(), [OLD, NEW]);
    reads = [];
    await statuses();
    assert.deepEqual(reads, [], 'settled and unchanged: remembered');

    // A forgery of the same length, signed by nobody trusted (the old signature left in place).
    rewriteKeepingMtime(localPath(dir, rel.manifest(NEW)), manifestText(NEW, 'evil'));
    await settle();
    reads = [];
    const listed = await catalog.list(store);
    assert.deepEqual(reads, [NEW], 'only the rewritten manifest is read again');
    assert.equal(listed[0]!.status, 'corrupt');
    assert.match(listed[0]!.problem ?? '', /signature|modified/);
    assert.equal(listed[1]!.status, 'complete');
    // Still refused at the next run: a manifest that failed is never remembered.
    reads = [];
    assert.equal((await catalog.list(store))[0]!.status, 'corrupt');
    assert.deepEqual(reads, [NEW]);
  });

  it('a rewritten signature alone makes the manifest read and verified again', async () => {
    await settle();
    await statuses();
    const text = manifestText(OLD, 'acme');
    rewriteKeepingMtime(localPath(dir, rel.signature(OLD)), signMessage(text, stranger));
    await settle();
    reads = [];
    const old = (await catalog.list(store)).find((s) => s.session === OLD)!;
    assert.deepEqual(reads, [OLD]);
    assert.equal(old.status, 'corrupt');
  });

  it('a change of the trusted keys is a change: nothing remembered under the old ones is used', async () => {
    await settle();
    await statuses();
    reads = [];
    const distrusting = new SessionCatalog(store, undefined, { signers: () => Promise.resolve([formatPublicKey(stranger, 'other')]), allowUnsigned: false });
    const listed = await distrusting.list(store);
    assert.deepEqual(reads.sort(), [OLD, NEW]);
    assert.deepEqual(
      listed.map((s) => s.status),
      ['corrupt', 'corrupt'],
    );
  });
});
