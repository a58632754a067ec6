/**
 * Secrets never leave the worker through the configuration: `config check --json` (redactConfig),
 * validation errors and warnings hide every secret-bearing variable by one rule (isSecretVariable /
 * printableValue / redactValue), scrubSecrets removes configured values and URL credentials from any
 * message, and secret files readable by group or others are refused with the exact fix.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { configSecrets, isSecretVariable, loadConfig, redactConfig } from '../../src/config';
import { readIdentity } from '../../src/crypto/age';
import { ConfigError, EncryptionKeyError, scrubSecrets } from '../../src/errors';

const dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-config-secrets-'));
let n = 0;
function file(content: string, mode = 0o600): string {
  const p = path.join(dir, `f-${n++}`);
  writeFileSync(p, content);
  chmodSync(p, mode); // whatever the umask
  return p;
}
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the configuration to be refused');
}
const secret = (name: string) => `S3CR3T-${name}`;

/** A real age identity (for "private key pasted in the wrong place" cases). */
const ageIdentity = execFileSync('age-keygen', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
  .split('\n')
  .find((l) => l.startsWith('AGE-SECRET-KEY-1'))!;
const PEM_KEY = `-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI${secret('TLS_KEY_DATA')}\n-----END PRIVATE KEY-----`;

describe('configuration secrets', () => {
  describe('the redaction rule', () => {
    it('treats as secret the listed variables, TEMPORAL_GRPC_META_* and names with KEY/SECRET/TOKEN/PASSWORD/PASSWD', () => {
      for (const name of [
        'POSTGRES_PASSWORD',
        'AWS_SECRET_ACCESS_KEY',
        'AWS_SESSION_TOKEN',
        'DR_SMTP_PASSWORD',
        'DR_WEBHOOK_URL',
        'TEMPORAL_API_KEY',
        'TEMPORAL_TLS_CLIENT_KEY_DATA',
        'TEMPORAL_CODEC_AUTH',
        'TEMPORAL_GRPC_META_AUTHORIZATION',
        'TEMPORAL_GRPC_META_X_ANYTHING',
        'GDRIVE_CLIENT_SECRET',
        'MY_API_TOKEN',
        'some_passwd',
        'Db_Password',
        'STRIPE_KEY',
      ]) {
        assert.equal(isSecretVariable(name), true, name);
      }
    });

    it('keeps readable the names that only look secret: file names, AWS_ACCESS_KEY_ID, the seed DR_ENCRYPTION_KEY', () => {
      for (const name of [
        'DR_ENCRYPTION_KEY_FILE',
        'POSTGRES_PASSWORD_FILE',
        'DR_SMTP_PASSWORD_FILE',
        'DR_SIGNING_KEY_FILE',
        'TEMPORAL_TLS_CLIENT_KEY_PATH',
        'GDRIVE_TOKEN_FILE',
        'AWS_ACCESS_KEY_ID',
        'DR_ENCRYPTION_KEY',
        'TEMPORAL_TLS_CLIENT_CERT_DATA',
        'TEMPORAL_ADDRESS',
        'DR_SMTP_USER',
        'DR_BACKUP_DIR',
      ]) {
        assert.equal(isSecretVariable(name), false, name);
      }
    });
  });

  describe('config check --json (redactConfig)', () => {
    const pgFile = file(`${secret('POSTGRES_PASSWORD_FILE_CONTENT')}\n`);
    const tlsKey = file(PEM_KEY);
    const values: Record<string, string> = {
      POSTGRES_PASSWORD: secret('POSTGRES_PASSWORD'),
      AWS_ACCESS_KEY_ID: 'AKIAVISIBLEKEYID',
      AWS_SECRET_ACCESS_KEY: secret('AWS_SECRET_ACCESS_KEY'),
      AWS_SESSION_TOKEN: secret('AWS_SESSION_TOKEN'),
      DR_CLOUD_BUCKET: 's3://odoo-dr/prod',
      DR_S3_ENDPOINT: `https://s3-user-${secret('ENDPOINT_USER')}:${secret('DR_S3_ENDPOINT')}@s3.example.com:9000`,
      DR_ODOO_HEALTH_URL: `http://admin:${secret('DR_ODOO_HEALTH_URL')}@127.0.0.1:8069/web/health`,
      DR_SMTP_HOST: 'smtp.example.com',
      DR_SMTP_USER: 'alerts@example.com',
      DR_SMTP_PASSWORD: secret('DR_SMTP_PASSWORD'),
      DR_WEBHOOK_URL: `https://hooks.slack.com/services/T0001/B0001/${secret('DR_WEBHOOK_URL')}?x=${secret('WEBHOOK_QUERY')}`,
      DR_ENCRYPTION_KEY_FILE: '/etc/odoo-dr/encryption.key',
      DR_ODOO_STOP_CMD: `curl -fsS -X POST https://ops:${secret('STOP_CMD_URL')}@ctl.example.com/stop`,
      TEMPORAL_ADDRESS: 'temporal.example.com:7233',
      TEMPORAL_API_KEY: secret('TEMPORAL_API_KEY'),
      TEMPORAL_TLS_CLIENT_KEY_DATA: PEM_KEY,
      TEMPORAL_TLS_CLIENT_KEY_PATH: tlsKey,
      TEMPORAL_CODEC_AUTH: `Bearer ${secret('TEMPORAL_CODEC_AUTH')}`,
      TEMPORAL_CODEC_ENDPOINT: `https://codec:${secret('CODEC_ENDPOINT')}@codec.example.com`,
      TEMPORAL_GRPC_META_AUTHORIZATION: `Bearer ${secret('TEMPORAL_GRPC_META_AUTHORIZATION')}`,
      TEMPORAL_GRPC_META_X_TENANT: secret('TEMPORAL_GRPC_META_X_TENANT'),
      // seed variables odoo-dr ignores, and names it does not know: never echoed either
      GDRIVE_CLIENT_SECRET: secret('GDRIVE_CLIENT_SECRET'),
      MY_API_TOKEN: secret('MY_API_TOKEN'),
      DR_SMTP_PASSWROD: secret('DR_SMTP_PASSWROD'),
    };
    const envFile = () =>
      file(
        Object.entries(values)
          .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
          .join('\n') + '\n',
      );

    it('hides every secret-bearing value, keeps what operators need to recognise', () => {
      const config = loadConfig({ path: envFile(), env: {} });
      assert.equal(config.postgres.password, secret('POSTGRES_PASSWORD'), 'activities still get the secret');
      const printed = JSON.stringify(redactConfig(config), null, 2);
      assert.doesNotMatch(printed, /S3CR3T/, printed);
      assert.doesNotMatch(printed, /MC4CAQAw/, 'no PEM key material');
      assert.doesNotMatch(printed, /services\/T0001/, 'the webhook path (its token) is hidden');
      assert.match(printed, /"webhookUrl": "https:\/\/hooks\.slack\.com\/… \(set, hidden\)"/, 'scheme and host of the webhook stay');
      assert.match(printed, /"endpoint": "https:\/\/\*\*\*@s3\.example\.com:9000"/);
      assert.match(printed, /"healthUrl": "http:\/\/\*\*\*@127\.0\.0\.1:8069\/web\/health"/);
      assert.match(printed, /"password": "\(set, hidden\)"/);
      assert.match(printed, /"secretAccessKey": "\(set, hidden\)"/);
      assert.match(printed, /"accessKeyId": "AKIAVISIBLEKEYID"/, 'the access key id is not a secret');
      assert.match(printed, /"identityFile": "\/etc\/odoo-dr\/encryption\.key"/);
      assert.ok(printed.includes(JSON.stringify(tlsKey)), 'the TLS key path stays');
      assert.match(printed, /"TEMPORAL_ADDRESS": "temporal\.example\.com:7233"/);
      for (const name of ['TEMPORAL_API_KEY', 'TEMPORAL_TLS_CLIENT_KEY_DATA', 'TEMPORAL_CODEC_AUTH', 'TEMPORAL_GRPC_META_AUTHORIZATION']) {
        assert.match(printed, new RegExp(`"${name}": "\\(set, hidden\\)"`), name);
      }
      assert.match(printed, /"TEMPORAL_CODEC_ENDPOINT": "https:\/\/\*\*\*@codec\.example\.com"/);
      // Warnings name unknown variables, never their values.
      assert.ok(config.warnings.some((w) => w.includes('MY_API_TOKEN')));
      assert.ok(config.warnings.some((w) => w.includes('DR_SMTP_PASSWROD') && w.includes('DR_SMTP_PASSWORD')));
      assert.ok(config.warnings.some((w) => w.startsWith('DR_S3_ENDPOINT has credentials in its URL')));
      assert.doesNotMatch(config.warnings.join('\n'), /S3CR3T/);
    });

    it('hides a password read from POSTGRES_PASSWORD_FILE, and secrets given in the environment', () => {
      const config = loadConfig({
        path: file(`POSTGRES_PASSWORD_FILE="${pgFile}"\nDR_WEBHOOK_URL="https://hooks.example.com/${secret('HOOK')}"\n`),
        env: { TEMPORAL_API_KEY: secret('ENV_TEMPORAL_API_KEY'), AWS_SESSION_TOKEN: secret('ENV_SESSION'), UNRELATED_TOKEN: 'abcdefgh' },
      });
      assert.equal(config.postgres.password, secret('POSTGRES_PASSWORD_FILE_CONTENT'));
      assert.doesNotMatch(JSON.stringify(redactConfig(config)), /S3CR3T/);
      const secrets = configSecrets(config);
      for (const s of ['POSTGRES_PASSWORD_FILE_CONTENT', 'HOOK', 'ENV_TEMPORAL_API_KEY', 'ENV_SESSION']) {
        assert.ok(secrets.includes(secret(s)), `${s} is a secret to scrub`);
      }
      assert.ok(!secrets.includes('abcdefgh'), 'only variables odoo-dr reads count');
      const message = `PUT https://hooks.example.com/${secret('HOOK')} failed; auth ${secret('ENV_TEMPORAL_API_KEY')}`;
      assert.doesNotMatch(scrubSecrets(message, secrets), /S3CR3T/);
    });

    it('redacts a configuration built by hand (no loadConfig) by its fields', () => {
      const config = loadConfig({ env: {}, cwd: dir });
      const copy = {
        ...config,
        postgres: { ...config.postgres, password: secret('HAND_PG') },
        alerts: { ...config.alerts, webhookUrl: `https://hooks.example.com/x/${secret('HAND_HOOK')}` },
        odoo: { ...config.odoo, startCommand: `start --password=${secret('HAND_PG')}` },
        temporalEnv: { TEMPORAL_GRPC_META_TOKEN: secret('HAND_META') },
      };
      const printed = JSON.stringify(redactConfig(copy));
      assert.doesNotMatch(printed, /S3CR3T/, printed);
      assert.match(printed, /start --password=\*\*\*/, 'a secret copied into another field is scrubbed by value');
    });
  });

  describe('validation errors', () => {
    it('never echo a secret value: only its length, whatever variable it ended up in', () => {
      const p = file(
        [
          `POSTGRES_PASSWORD=${JSON.stringify(secret('POSTGRES_PASSWORD'))}`,
          `DR_SMTP_PASSWORD=${JSON.stringify(secret('DR_SMTP_PASSWORD'))}`,
          `AWS_SECRET_ACCESS_KEY=${JSON.stringify(secret('AWS_SECRET_ACCESS_KEY'))}`, // without AWS_ACCESS_KEY_ID
          `DR_WEBHOOK_URL=${JSON.stringify(`hooks.slack.com/services/T/B/${secret('DR_WEBHOOK_URL')}`)}`, // not a URL
          `DR_S3_ENDPOINT=${JSON.stringify(`ftp://u:${secret('DR_S3_ENDPOINT')}@s3.example.com`)}`, // wrong scheme
          `DR_ODOO_HEALTH_URL=${JSON.stringify(`gopher://u:p/${secret('HEALTH')}@odoo`)}`, // userinfo a parser would not see
          'DR_RPO_HOURS="${POSTGRES_PASSWORD}"', // a secret expanded into a plain variable
          `POSTGRES_PASSWORD_FILE=${JSON.stringify(secret('PASSWORD_IN_FILE_VARIABLE'))}`, // the secret instead of its file
          `DR_ENCRYPTION_KEY_FILE=${JSON.stringify(ageIdentity)}`, // the key instead of its file
          `DR_AGE_RECIPIENTS=${JSON.stringify(ageIdentity)}`, // the private key instead of the public one
          `TEMPORAL_API_KEY=${JSON.stringify(secret('TEMPORAL_API_KEY'))}`,
          'DR_MAX_PARALLEL_BACKUPS="three"',
        ].join('\n'),
      );
      const err = configError(() => loadConfig({ path: p, env: { TEMPORAL_CODEC_AUTH: secret('ENV_CODEC') } }));
      const text = `${err.message}\n${err.problems.join('\n')}\n${String(err.stack)}`;
      assert.doesNotMatch(text, /S3CR3T/, text);
      assert.ok(!text.includes(ageIdentity.slice(16, 40)), `age key material in:\n${text}`);
      const byName = (name: string) => err.problems.find((m) => m.startsWith(`${name} `)) ?? assert.fail(`no problem for ${name} in\n${text}`);
      assert.match(byName('DR_WEBHOOK_URL'), /must be an http\(s\) URL, got a value of \d+ characters \(hidden\)$/);
      assert.match(byName('DR_S3_ENDPOINT'), /got "ftp:\/\/\*\*\*@s3\.example\.com"$/);
      assert.match(byName('DR_ODOO_HEALTH_URL'), /got a value of \d+ characters \(hidden: it looks like a URL with credentials\)$/);
      assert.match(byName('DR_RPO_HOURS'), /got "\*\*\*"$/);
      const length = secret('PASSWORD_IN_FILE_VARIABLE').length;
      assert.match(byName('POSTGRES_PASSWORD_FILE'), new RegExp(`must be an absolute path, got a value of ${length} characters \\(hidden\\)$`));
      assert.match(byName('DR_ENCRYPTION_KEY_FILE'), new RegExp(`must be an absolute path, got a value of ${ageIdentity.length} characters \\(hidden\\)$`));
      assert.match(byName('DR_AGE_RECIPIENTS'), /recipient #1 of 1 is a private key \(AGE-SECRET-KEY-…\), not a recipient/);
      assert.match(byName('AWS_SECRET_ACCESS_KEY'), /is set but AWS_ACCESS_KEY_ID is not/);
      assert.match(byName('DR_MAX_PARALLEL_BACKUPS'), /got "three"$/, 'plain values are still quoted');
    });
  });

  describe('scrubSecrets', () => {
    it('removes configured values (also URL-encoded, longest first), URL userinfo and private keys', () => {
      const out = scrubSecrets(
        [
          'connect postgresql://odoo:p%40ss%2Fw0rd@db:5432/postgres failed',
          'S3 https://AKIA:long-secret-value@s3.local/bucket refused',
          'git clone https://user@example.com/repo.git',
          'password p@ss/w0rd and its prefix p@ss/w0 and the longer p@ss/w0rd-and-more',
          `identity ${ageIdentity} and ${PEM_KEY}`,
          'short ab and abc stay',
          'mail ops@example.com stays',
        ].join('\n'),
        ['p@ss/w0rd', 'p@ss/w0rd-and-more', 'ab', undefined, 'abc'],
      );
      assert.match(out, /postgresql:\/\/\*\*\*@db:5432\/postgres/);
      assert.match(out, /https:\/\/\*\*\*@s3\.local\/bucket/);
      assert.match(out, /https:\/\/\*\*\*@example\.com\/repo\.git/);
      assert.match(out, /password \*\*\* and its prefix p@ss\/w0 and the longer \*\*\*\n/);
      assert.match(out, /identity AGE-SECRET-KEY-\*\*\* and -----BEGIN PRIVATE KEY----- \*\*\* -----END PRIVATE KEY-----/);
      assert.match(out, /short ab and abc stay/);
      assert.match(out, /mail ops@example\.com stays/);
      assert.doesNotMatch(out, /S3CR3T|long-secret-value|p%40ss|w0rd\b/);
    });
  });

  describe('secret files', () => {
    it('POSTGRES_PASSWORD_FILE is refused when group or others may read it, with the exact fix', () => {
      for (const mode of [0o644, 0o640, 0o604, 0o660]) {
        const pw = file(`${secret('PW')}\n`, mode);
        const err = configError(() => loadConfig({ path: file(`POSTGRES_PASSWORD_FILE="${pw}"\n`), env: {} }));
        assert.deepEqual(err.problems, [
          `POSTGRES_PASSWORD_FILE ${pw} is accessible by group or others (mode ${mode.toString(8).padStart(4, '0')}); ` +
            `it holds the PostgreSQL password, so it must be private to its owner: run \`chmod 600 ${pw}\``,
        ]);
        assert.doesNotMatch(err.message, /S3CR3T/);
      }
      const ok = file(`${secret('PW')}\n`, 0o600);
      assert.equal(loadConfig({ path: file(`POSTGRES_PASSWORD_FILE="${ok}"\n`), env: {} }).postgres.password, secret('PW'));
      const readOnly = file('pw-0400\n', 0o400);
      assert.equal(loadConfig({ path: file(`POSTGRES_PASSWORD_FILE="${readOnly}"\n`), env: {} }).postgres.password, 'pw-0400');
    });

    it('uses the wording of the age identity check (readIdentity)', async () => {
      const key = file(`${ageIdentity}\n`, 0o644);
      let identityMessage = '';
      try {
        await readIdentity(key);
      } catch (err) {
        assert.ok(err instanceof EncryptionKeyError);
        identityMessage = err.message;
      }
      const pw = file('x\n', 0o644);
      const configMessage = configError(() => loadConfig({ env: { POSTGRES_PASSWORD_FILE: pw }, cwd: dir })).problems[0]!;
      const shared = (m: string, f: string) =>
        m
          .replace(f, 'FILE')
          .replace(f, 'FILE')
          .replace(/^.*? FILE is accessible/, 'FILE is accessible')
          .replace(/; it .*?, so/, '; it …, so');
      assert.equal(shared(configMessage, pw), shared(identityMessage, key));
      assert.match(configMessage, /must be private to its owner: run `chmod 600 .*`$/);
    });

    it('TEMPORAL_TLS_CLIENT_KEY_PATH (a private key read by envconfig) is checked the same way, from the file or the environment', () => {
      const open = file(PEM_KEY, 0o644);
      const fromFile = configError(() => loadConfig({ path: file(`TEMPORAL_TLS_CLIENT_KEY_PATH="${open}"\n`), env: {} }));
      assert.match(
        fromFile.problems[0]!,
        new RegExp(`^TEMPORAL_TLS_CLIENT_KEY_PATH ${open} is accessible by group or others \\(mode 0644\\).*run \`chmod 600 ${open}\`$`),
      );
      assert.doesNotMatch(fromFile.message, /MC4CAQAw|S3CR3T/);
      const fromEnv = configError(() => loadConfig({ env: { TEMPORAL_TLS_CLIENT_KEY_PATH: open }, cwd: dir }));
      assert.equal(fromEnv.problems.length, 1);
      const closed = file(PEM_KEY, 0o600);
      assert.equal(loadConfig({ env: { TEMPORAL_TLS_CLIENT_KEY_PATH: closed }, cwd: dir }).warnings.length, 0);
    });

    it('a missing file or a directory is named, not read', () => {
      const folder = path.join(dir, 'a-directory');
      mkdirSync(folder, { mode: 0o700 });
      const err = configError(() =>
        loadConfig({ env: { POSTGRES_PASSWORD_FILE: folder, TEMPORAL_TLS_CLIENT_KEY_PATH: path.join(dir, 'absent.pem') }, cwd: dir }),
      );
      assert.deepEqual(err.problems.sort(), [
        `POSTGRES_PASSWORD_FILE must name a regular file, got ${JSON.stringify(folder)} (a directory)`,
        `TEMPORAL_TLS_CLIENT_KEY_PATH must name a readable file, got ${JSON.stringify(path.join(dir, 'absent.pem'))} (ENOENT)`,
      ]);
    });
  });
});
