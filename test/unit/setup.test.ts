/** The service-free parts of `odoo-dr setup`: the configuration made from the example, the keys, the lifecycle rules. */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { defaultKeyDir, fillExample, setUpKeys, writeNewConfig } from '../../src/setup/bootstrap';
import { lifecycleProblems, seedLifecycleRules } from '../../src/setup/s3';
import type { CloudSettings } from '../../src/storage/s3';
import { REPO_ROOT } from '../helpers/config';

const cloud = { bucket: 'company-dr', prefix: 'odoo', region: 'eu-west-1' } as CloudSettings;

describe('setup (no services)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-setup-unit-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('puts new keys in /etc/odoo-dr for root and ~/.config/odoo-dr for anyone else', () => {
    assert.equal(defaultKeyDir(0, '/root'), '/etc/odoo-dr');
    assert.equal(defaultKeyDir(1000, '/home/ops'), '/home/ops/.config/odoo-dr');
  });

  it('fills the example in place, keeps the rest of it, and the result loads', () => {
    const example = readFileSync(path.join(REPO_ROOT, 'config/dr-config.env.example'), 'utf8');
    const filled = fillExample(example, { DR_ENCRYPTION_KEY_FILE: '/etc/odoo-dr/encryption.key', DR_NEW_THING: 'x' });
    assert.match(filled, /^DR_ENCRYPTION_KEY_FILE="\/etc\/odoo-dr\/encryption\.key"$/m);
    assert.doesNotMatch(filled, /^#DR_ENCRYPTION_KEY_FILE=/m);
    assert.match(filled, /^DR_NEW_THING="x"\n$/m, 'a name the example lacks is appended');
    assert.equal(filled.split('\n').length, example.split('\n').length + 1);
    const file = path.join(dir, 'filled.env');
    writeFileSync(file, fillExample(example, { DR_BACKUP_DIR: dir }));
    assert.equal(loadConfig({ path: file, env: {} }).backupDir, dir);
    assert.throws(() => fillExample(example, { DR_BACKUP_DIR: '/x"; rm -rf /' }), /DR_BACKUP_DIR: value .* cannot be written to an env file/);
  });

  it('never replaces an existing configuration file', async () => {
    const file = path.join(dir, 'sub', 'dr-config.env');
    await writeNewConfig(file, 'DR_RPO_HOURS="4"\n');
    await assert.rejects(writeNewConfig(file, 'DR_RPO_HOURS="8"\n'), /already exists: not replaced/);
    assert.equal(readFileSync(file, 'utf8'), 'DR_RPO_HOURS="4"\n');
  });

  it('creates missing keys unless checking, and names each key problem with its fix', async () => {
    const id = path.join(dir, 'k', 'encryption.key');
    const sk = path.join(dir, 'k', 'signing.key');
    const config = (extra = '') => {
      const f = path.join(dir, `c-${Math.random().toString(36).slice(2)}.env`);
      writeFileSync(f, `DR_ENCRYPTION_KEY_FILE="${id}"\nDR_SIGNING_KEY_FILE="${sk}"\n${extra}`);
      return loadConfig({ path: f, env: {} });
    };
    const checked = await setUpKeys(config(), { check: true, comment: 'test' });
    assert.deepEqual(
      checked.checks.map((c) => [c.check, c.status]),
      [
        ['age identity', 'problem'],
        ['signing key', 'problem'],
      ],
    );
    assert.ok(!existsSync(id) && !existsSync(sk), '--check creates nothing');

    const made = await setUpKeys(config(), { check: false, comment: 'test' });
    assert.deepEqual(
      made.checks.map((c) => c.status),
      ['ok', 'ok'],
    );
    assert.equal(made.identity?.state, 'created');
    const again = await setUpKeys(config(), { check: false, comment: 'test' });
    assert.equal(again.identity?.state, 'existing');
    assert.equal(again.identity?.publicKey, made.identity?.publicKey);
    assert.equal(again.signing?.publicKey, made.signing?.publicKey);

    // Keys that do not match what the configuration says readers trust and backups are encrypted to.
    const other = 'age1rh5kfd2egluawyk2wxkm70gkujaaedk4hdvnx04qzkjf4qgelgnsc6sld8';
    const stranger = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJtq/fX3ynXdjgUASsaSyEKWdBJhXtd7dUDIWgOjDv8o other';
    const mismatch = await setUpKeys(config(`DR_AGE_RECIPIENTS="${other}"\nDR_TRUSTED_SIGNERS="${stranger}"\n`), { check: true, comment: 'test' });
    assert.equal(mismatch.checks[0]!.status, 'problem');
    assert.equal(mismatch.checks[0]!.fix, `add ${made.identity.publicKey!} to DR_AGE_RECIPIENTS`);
    assert.equal(mismatch.checks[1]!.status, 'problem');
    assert.match(mismatch.checks[1]!.fix!, /^add "ssh-ed25519 AAAA\S+ test" to DR_TRUSTED_SIGNERS$/);

    chmodSync(id, 0o644);
    const loose = await setUpKeys(config(), { check: true, comment: 'test' });
    assert.equal(loose.checks[0]!.status, 'problem');
    assert.match(loose.checks[0]!.detail, /chmod 600/);
    assert.doesNotMatch(JSON.stringify(loose), /AGE-SECRET-KEY/);
  });

  it('without key files: a reading host with recipients is fine, a host with nothing is broken', async () => {
    const f = path.join(dir, 'nokeys.env');
    writeFileSync(f, 'DR_AGE_RECIPIENTS="age1rh5kfd2egluawyk2wxkm70gkujaaedk4hdvnx04qzkjf4qgelgnsc6sld8"\n');
    const r = await setUpKeys(loadConfig({ path: f, env: {} }), { check: false, comment: 'test' });
    assert.deepEqual(
      r.checks.map((c) => [c.check, c.status]),
      [
        ['age identity', 'ok'],
        ['signing key', 'problem'],
      ],
    );
    assert.match(r.checks[1]!.fix!, /^set DR_SIGNING_KEY_FILE=".*signing\.key" and run odoo-dr setup$/);
  });

  it("puts the seed's transitions on sessions within the retention, and never a cold class on packs", () => {
    const rules = seedLifecycleRules(cloud, 400);
    const byId = (id: string) => rules.find((r) => r.ID === id)!;
    assert.deepEqual(byId('odoo-dr-sessions').Transitions, [
      { Days: 30, StorageClass: 'STANDARD_IA' },
      { Days: 90, StorageClass: 'GLACIER' },
      { Days: 365, StorageClass: 'DEEP_ARCHIVE' },
    ]);
    assert.equal(byId('odoo-dr-sessions').Filter?.Prefix, 'odoo/sessions/');
    assert.deepEqual(byId('odoo-dr-packs').Transitions, [{ Days: 30, StorageClass: 'STANDARD_IA' }]);
    assert.equal(byId('odoo-dr-abort-incomplete-uploads').AbortIncompleteMultipartUpload?.DaysAfterInitiation, 7);
    // DR_RETENTION_DAYS 90 (the default): sessions are deleted at 90 days, Glacier would only bill its 90-day minimum.
    assert.deepEqual(seedLifecycleRules(cloud, 90).find((r) => r.ID === 'odoo-dr-sessions')!.Transitions, [{ Days: 30, StorageClass: 'STANDARD_IA' }]);
    assert.deepEqual(lifecycleProblems(rules, cloud, 400), { problems: [], missing: [] });
  });

  it('finds lifecycle rules that would break recoveries, and the missing ones', () => {
    const whole = { ID: 'archive-all', Status: 'Enabled' as const, Filter: { Prefix: '' }, Transitions: [{ Days: 90, StorageClass: 'GLACIER' as const }] };
    const expire = { ID: 'expire-packs', Status: 'Enabled' as const, Filter: { Prefix: 'odoo/packs/' }, Expiration: { Days: 30 } };
    const early = { ID: 'early', Status: 'Enabled' as const, Filter: { Prefix: 'odoo/' }, Expiration: { Days: 60 } };
    const off = { ID: 'disabled', Status: 'Disabled' as const, Filter: { Prefix: '' }, Transitions: [{ Days: 1, StorageClass: 'DEEP_ARCHIVE' as const }] };
    const { problems, missing } = lifecycleProblems([whole, expire, early, off], cloud, 90);
    assert.ok(
      problems.some((p) => /rule archive-all moves odoo\/packs\/ to GLACIER after 90 days: packs that newer sessions still use become unreadable/.test(p)),
      problems.join('\n'),
    );
    assert.ok(problems.some((p) => /rule archive-all moves odoo\/blobs\//.test(p)));
    assert.ok(problems.some((p) => /rule expire-packs deletes odoo\/packs\/ after 30 days/.test(p)));
    assert.ok(problems.some((p) => /rule early deletes sessions after 60 days, before DR_RETENTION_DAYS \(90\)/.test(p)));
    assert.ok(!problems.some((p) => p.includes('disabled')), 'a disabled rule does nothing');
    assert.deepEqual(missing, ['odoo-dr-sessions', 'odoo-dr-packs', 'odoo-dr-blobs', 'odoo-dr-abort-incomplete-uploads']);
  });
});
