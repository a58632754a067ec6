/** Session signatures: made by odoo-dr, verified by odoo-dr and by OpenSSH's own ssh-keygen. */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SIGNATURE_NAMESPACE, fingerprint, generateSigningKey, parsePublicKey, readSigningKey, signMessage, verifyMessage } from '../../src/crypto/signing';
import { rejection } from '../helpers/assert';

describe('session signatures (Ed25519, OpenSSH signature format)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-sign-'));
  const keyFile = path.join(dir, 'signing.key');
  const message = '{"format":"odoo-dr-session","session":"backup_20261126_020000_abcdef"}\n';
  let publicKey = '';
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('creates a key file 0600 and never overwrites it', async () => {
    publicKey = await generateSigningKey(keyFile, 'backup-host');
    assert.match(publicKey, /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI\S+ backup-host$/);
    const again = await rejection(generateSigningKey(keyFile));
    assert.match(again.message, /already exists: refusing to overwrite/);
  });

  it('signs and verifies; another key, a changed message or a damaged signature are refused', async () => {
    const key = await readSigningKey(keyFile);
    const sig = signMessage(message, key);
    assert.equal(verifyMessage(message, sig, [publicKey], 'manifest'), fingerprint(parsePublicKey(publicKey)));
    const other = await generateSigningKey(path.join(dir, 'other.key'));
    assert.throws(() => verifyMessage(message, sig, [other], 'manifest'), /which is not in DR_TRUSTED_SIGNERS/);
    assert.throws(() => verifyMessage(message.replace('abcdef', 'abcdeg'), sig, [publicKey], 'manifest'), /changed after it was signed/);
    assert.throws(
      () =>
        verifyMessage(
          message,
          sig.replace(/[A-Za-z](?=[^\n]*\n-----END)/, (c) => (c === 'A' ? 'B' : 'A')),
          [publicKey],
          'manifest',
        ),
      /ArtifactCorrupted|does not match|not an SSH signature|truncated|not ssh-ed25519/,
    );
    assert.throws(() => verifyMessage(message, 'not a signature', [publicKey], 'manifest'), /not an SSH signature/);
  });

  it('is the format `ssh-keygen -Y verify` checks, with no odoo-dr involved', async () => {
    const key = await readSigningKey(keyFile);
    const file = path.join(dir, 'manifest.json');
    writeFileSync(file, message);
    writeFileSync(`${file}.sig`, signMessage(message, key));
    writeFileSync(path.join(dir, 'allowed_signers'), `odoo-dr ${publicKey}\n`);
    const ok = execFileSync(
      'ssh-keygen',
      ['-Y', 'verify', '-f', path.join(dir, 'allowed_signers'), '-I', 'odoo-dr', '-n', SIGNATURE_NAMESPACE, '-s', `${file}.sig`],
      { input: message },
    ).toString();
    assert.match(ok, /Good "odoo-dr-session" signature for odoo-dr with ED25519 key SHA256:/);
    const bad = spawnSync(
      'ssh-keygen',
      ['-Y', 'verify', '-f', path.join(dir, 'allowed_signers'), '-I', 'odoo-dr', '-n', SIGNATURE_NAMESPACE, '-s', `${file}.sig`],
      { input: `${message} ` },
    );
    assert.notEqual(bad.status, 0, 'ssh-keygen refuses a changed manifest');
  });

  it('refuses a key file that group or others may read, with the exact fix', async () => {
    chmodSync(keyFile, 0o640);
    const err = await rejection(readSigningKey(keyFile));
    assert.match(err.message, new RegExp(`run \`chmod 600 ${keyFile}\``));
    chmodSync(keyFile, 0o600);
  });
});
