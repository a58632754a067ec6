/**
 * Bad input fails fast in loadConfig (and so in `odoo-dr config check`): mistyped age recipients
 * (bech32 checksum, checked against the age-encryption library), scratch database suffixes Odoo
 * would refuse, invalid S3 buckets and prefixes, paths with line breaks or NUL. Each problem names
 * its variable and what is wrong, and all are reported at once.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { ageRecipientProblem, encryptFile } from '../../src/crypto/age';
import { ConfigError, EncryptionKeyError } from '../../src/errors';

const dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-config-values-'));
let n = 0;
function file(content: string): string {
  const p = path.join(dir, `f-${n++}`);
  writeFileSync(p, content);
  chmodSync(p, 0o600);
  return p;
}
function problemsOf(env: NodeJS.ProcessEnv, content?: string): string[] {
  try {
    loadConfig({ env, cwd: dir, ...(content === undefined ? {} : { path: file(content) }) });
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.problems;
  }
  assert.fail('expected the configuration to be refused');
}
const accepted = (env: NodeJS.ProcessEnv) => loadConfig({ env, cwd: dir });

/** A real recipient, as `age-keygen -y` prints it. */
function newRecipient(): string {
  const key = path.join(dir, `key-${n++}`);
  execFileSync('age-keygen', ['-o', key], { stdio: 'ignore' });
  return execFileSync('age-keygen', ['-y', key], { encoding: 'utf8' }).trim();
}
const BECH32 = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
/** The recipient with the character at `at` replaced by another bech32 character. */
function flip(recipient: string, at: number, step = 1): string {
  const c = recipient[at]!;
  const other = BECH32[(BECH32.indexOf(c) + step) % 32]!;
  return recipient.slice(0, at) + other + recipient.slice(at + 1);
}
const loadAge = () => import('age-encryption');

describe('configuration values', () => {
  describe('DR_AGE_RECIPIENTS', () => {
    const r1 = newRecipient();
    const r2 = newRecipient();
    const r3 = newRecipient();

    it('accepts recipients printed by age-keygen -y', () => {
      assert.deepEqual(accepted({ DR_AGE_RECIPIENTS: `${r1}, ${r2}\n${r3}` }).encryption.recipients, [r1, r2, r3]);
    });

    it('refuses a recipient with one mistyped character, naming the variable and its position', () => {
      const bad = flip(r2, 30);
      const problems = problemsOf({ DR_AGE_RECIPIENTS: `${r1},${bad},${r3}` });
      assert.deepEqual(problems, [
        `DR_AGE_RECIPIENTS recipient #2 of 3 ${JSON.stringify(bad)} has a bad checksum: a character is mistyped or two are swapped (copy it again from \`age-keygen -y\`)`,
      ]);
    });

    it('reports every bad recipient at once, each with what is wrong', () => {
      const problems = problemsOf({
        DR_AGE_RECIPIENTS: [
          r1,
          flip(r1, 10), // checksum
          r2.slice(0, -1), // truncated
          r3.toUpperCase(),
          `${r3.slice(0, 20)}b${r3.slice(21)}`, // a character bech32 never uses
          'ssh-ed25519',
          'age1yubikey1qwt50d05nh5vutpdzmlg5wn80xq5negm4uj9ghv0snvdd3yysf5yw3rhl3t',
          'not-a-key',
        ].join(' '),
      });
      assert.equal(problems.length, 7, problems.join('\n'));
      assert.ok(
        problems.every((m) => m.startsWith('DR_AGE_RECIPIENTS recipient #')),
        problems.join('\n'),
      );
      assert.match(problems[0]!, /^DR_AGE_RECIPIENTS recipient #2 of 8 .* has a bad checksum/);
      assert.match(problems[1]!, /#3 of 8 .* has 61 characters; an X25519 age recipient has 62/);
      assert.match(problems[2]!, /#4 of 8 .* must be written in lower case/);
      assert.match(problems[3]!, /#5 of 8 .* contains "b", which never appear/);
      assert.match(problems[4]!, /#6 of 8 "ssh-ed25519" is an SSH public key/);
      assert.match(problems[5]!, /#7 of 8 .* is a plugin \(yubikey\) recipient; only X25519 recipients/);
      assert.match(problems[6]!, /#8 of 8 "not-a-key" is not an age recipient \(expected age1…/);
    });

    it('agrees with the age-encryption library on valid and mistyped recipients', async () => {
      const lib = await loadAge();
      const libAccepts = (r: string) => {
        try {
          new lib.Encrypter().addRecipient(r);
          return true;
        } catch {
          return false;
        }
      };
      for (const r of [r1, r2, r3]) {
        assert.equal(ageRecipientProblem(r), undefined);
        assert.ok(libAccepts(r));
        // Every single-character substitution at a few positions (data and checksum): both refuse.
        for (const at of [4, 17, 33, 50, 56, 61]) {
          for (let step = 1; step < 32; step += 5) {
            const bad = flip(r, at, step);
            assert.ok(ageRecipientProblem(bad), `${bad} accepted by odoo-dr`);
            assert.equal(libAccepts(bad), false, `${bad} accepted by the library`);
          }
        }
        // Two adjacent characters swapped.
        const swapped = r.slice(0, 20) + r[21]! + r[20]! + r.slice(22);
        if (swapped !== r) assert.equal(Boolean(ageRecipientProblem(swapped)), !libAccepts(swapped));
      }
    });

    it('encryptFile refuses a mistyped recipient before writing anything, and never echoes a private key', async () => {
      const src = file('plain');
      const bad = flip(r1, 40);
      await assert.rejects(encryptFile([bad], src, path.join(dir, 'out.age')), (err: unknown) => {
        assert.ok(err instanceof EncryptionKeyError);
        assert.match(err.message, /has a bad checksum/);
        return true;
      });
      const identity = execFileSync('age-keygen', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
        .split('\n')
        .find((l) => l.startsWith('AGE-SECRET-KEY-1'))!;
      await assert.rejects(encryptFile([identity], src, path.join(dir, 'out.age')), (err: unknown) => {
        assert.ok(err instanceof EncryptionKeyError);
        assert.ok(!err.message.includes(identity.slice(16)), err.message);
        assert.match(err.message, /recipient #1 is a private key/);
        return true;
      });
    });
  });

  describe('DR_TEST_DATABASE_SUFFIX (scratch databases <tenant><suffix>_<id>)', () => {
    it('accepts letters, digits, "_", "." and "-"; keeps the default when empty', () => {
      assert.equal(accepted({ DR_TEST_DATABASE_SUFFIX: '_dr-test.2' }).scratchSuffix, '_dr-test.2');
      assert.equal(accepted({ DR_TEST_DATABASE_SUFFIX: '' }).scratchSuffix, '_dr_test');
    });

    it('refuses quotes and other characters Odoo refuses in database names, naming them', () => {
      for (const [value, shown] of [
        [`_dr'test`, `"'"`],
        ['_dr"test', '"\\""'],
        ['_dr test', '" "'],
        ['_dr;drop', '";"'],
        ['_drété', '"é"'],
        ['_dr/test', '"/"'],
      ] as const) {
        const problems = problemsOf({ DR_TEST_DATABASE_SUFFIX: value });
        assert.equal(problems.length, 1, problems.join('\n'));
        assert.ok(problems[0]!.startsWith('DR_TEST_DATABASE_SUFFIX may contain only letters, digits, "_", "." and "-"'), problems[0]);
        assert.ok(problems[0]!.endsWith(`with ${shown}`), `${problems[0]} should name ${shown}`);
      }
    });

    it('refuses a suffix that leaves no room for the tenant name in 63 bytes', () => {
      const problems = problemsOf({ DR_TEST_DATABASE_SUFFIX: `_${'x'.repeat(40)}'` });
      assert.equal(problems.length, 2, 'both problems at once');
      assert.match(problems[1]!, /^DR_TEST_DATABASE_SUFFIX must be at most 32 characters .* got 42$/);
    });
  });

  describe('DR_DUMP_ZSTD_PARAMETERS', () => {
    it('defaults to lazy matching in a 256 KiB window; takes zstd parameter lists, or none', () => {
      assert.equal(accepted({}).encryption.dumpZstdParameters, 'strategy=5,windowLog=18,chainLog=12,hashLog=13,searchLog=1,minMatch=6');
      assert.equal(accepted({ DR_DUMP_ZSTD_PARAMETERS: 'wlog=20,strat=4' }).encryption.dumpZstdParameters, 'wlog=20,strat=4');
      assert.equal(accepted({ DR_DUMP_ZSTD_PARAMETERS: 'none' }).encryption.dumpZstdParameters, '');
      assert.equal(accepted({ DR_DUMP_ZSTD_PARAMETERS: '' }).encryption.dumpZstdParameters, accepted({}).encryption.dumpZstdParameters);
    });

    it('refuses anything but name=number pairs zstd knows (nothing else reaches its command line)', () => {
      for (const value of ['strategy=5;rm -rf /', 'bogus=1', '--long', 'strategy=', 'strategy=5,', 'windowLog=18 -o x']) {
        const problems = problemsOf({ DR_DUMP_ZSTD_PARAMETERS: value });
        assert.equal(problems.length, 1, value);
        assert.match(problems[0]!, /^DR_DUMP_ZSTD_PARAMETERS must be zstd parameters name=value,… \(e\.g\. strategy=5,windowLog=18\) or none, got /);
      }
    });
  });

  describe('DR_CLOUD_BUCKET', () => {
    it('accepts valid buckets and prefixes (one trailing slash allowed)', () => {
      const c = accepted({ DR_CLOUD_BUCKET: 's3://odoo-dr.backups-01/prod/eu/' });
      assert.deepEqual([c.cloud?.bucket, c.cloud?.prefix], ['odoo-dr.backups-01', 'prod/eu']);
      assert.deepEqual([accepted({ DR_CLOUD_BUCKET: 's3://abc/' }).cloud?.prefix], ['']);
    });

    it('refuses "..", ".", empty segments and control characters in the prefix', () => {
      const cases: Array<[string, RegExp]> = [
        ['s3://bucket/a/../b', /^DR_CLOUD_BUCKET prefix "a\/..\/b" has a "\.\." segment; S3 keys are not paths/],
        ['s3://bucket/../b', /has a "\.\." segment/],
        ['s3://bucket/a/./b', /has a "\." segment/],
        ['s3://bucket//a', /^DR_CLOUD_BUCKET prefix "\/a" has an empty segment/],
        ['s3://bucket/a//b', /^DR_CLOUD_BUCKET prefix "a\/\/b" has an empty segment/],
        ['s3://bucket/a//', /has an empty segment/],
        ['s3://bucket/a\tb', /^DR_CLOUD_BUCKET prefix must not contain control characters/],
      ];
      for (const [value, expected] of cases) {
        const problems = problemsOf({ DR_CLOUD_BUCKET: value });
        assert.equal(problems.length, 1, `${value}: ${problems.join('\n')}`);
        assert.match(problems[0]!, expected, value);
      }
    });

    it('refuses invalid bucket names, saying why', () => {
      const cases: Array<[string, RegExp]> = [
        ['s3://my..bucket/x', /^DR_CLOUD_BUCKET bucket name "my\.\.bucket" has two dots in a row \(S3 bucket names are 3 to 63/],
        ['s3://My_Bucket', /bucket name "My_Bucket" contains "M", "_", "B"/],
        ['s3://ab', /bucket name "ab" has 2 characters/],
        [`s3://${'a'.repeat(64)}/p`, /has 64 characters/],
        ['s3://-bucket', /does not start and end with a letter or digit/],
        ['s3://bucket./p', /does not start and end with a letter or digit/],
        ['s3://192.168.1.10/p', /is formatted like an IP address/],
        ['s3://xn--bucket', /starts with the reserved prefix "xn--"/],
        ['s3://bucket-s3alias', /ends with the reserved suffix "-s3alias"/],
        ['s3:///prefix', /^DR_CLOUD_BUCKET has no bucket name, got "s3:\/\/\/prefix"/],
      ];
      for (const [value, expected] of cases) {
        const problems = problemsOf({ DR_CLOUD_BUCKET: value });
        assert.equal(problems.length, 1, `${value}: ${problems.join('\n')}`);
        assert.match(problems[0]!, expected, value);
      }
      // Bucket and prefix problems together.
      assert.equal(problemsOf({ DR_CLOUD_BUCKET: 's3://a..b/x/../y//z' }).length, 3);
    });
  });

  describe('paths', () => {
    it('refuses a line break or NUL in any path variable, naming the variable (and the list entry)', () => {
      const problems = problemsOf({
        DR_BACKUP_DIR: '/srv/dr\nbackups',
        ODOO_DATA_DIR: '/var/lib/odoo\0evil',
        DR_LOG_DIR: '/var/log/odoo-dr\r/x',
        DR_CONFIG_PATHS: '/etc/odoo/odoo.conf, /etc/nginx\n/sites',
        DR_ENCRYPTION_KEY_FILE: '/etc/odoo-dr/key\nfile',
        POSTGRES_PASSWORD_FILE: '/etc/odoo-dr/pg\0pw',
        // Leading and trailing white space (a final newline included) is trimmed, as for every variable: fine.
        DR_PG_BIN_DIR: '/usr/lib/postgresql/15/bin\n',
      });
      assert.deepEqual(problems, [
        'DR_BACKUP_DIR must not contain a line break, got "/srv/dr\\nbackups"',
        'DR_LOG_DIR must not contain a line break, got "/var/log/odoo-dr\\r/x"',
        'POSTGRES_PASSWORD_FILE must not contain a NUL character, got "/etc/odoo-dr/pg\\u0000pw"',
        'ODOO_DATA_DIR must not contain a NUL character, got "/var/lib/odoo\\u0000evil"',
        'DR_CONFIG_PATHS entry #2 must not contain a line break, got "/etc/nginx\\n/sites"',
        'DR_ENCRYPTION_KEY_FILE must not contain a line break, got "/etc/odoo-dr/key\\nfile"',
      ]);
    });

    it('reads "\\n" escapes in a double-quoted env file value as a line break, and refuses it', () => {
      const problems = problemsOf({}, 'DR_BACKUP_DIR="/srv/dr\\nbackups"\nDR_CONFIG_PATHS="/etc/odoo,/etc/nginx\\n"\n');
      assert.deepEqual(problems, ['DR_BACKUP_DIR must not contain a line break, got "/srv/dr\\nbackups"']);
    });
  });

  it('reports problems of every kind at once', () => {
    const problems = problemsOf({
      DR_AGE_RECIPIENTS: flip(newRecipient(), 12),
      DR_TEST_DATABASE_SUFFIX: `_dr'x`,
      DR_CLOUD_BUCKET: 's3://bucket/a/../b',
      DR_BACKUP_DIR: '/srv/a\nb',
      DR_MAX_PARALLEL_BACKUPS: 'three',
    });
    assert.deepEqual(problems.map((m) => m.split(' ')[0]).sort(), [
      'DR_AGE_RECIPIENTS',
      'DR_BACKUP_DIR',
      'DR_CLOUD_BUCKET',
      'DR_MAX_PARALLEL_BACKUPS',
      'DR_TEST_DATABASE_SUFFIX',
    ]);
  });
});
