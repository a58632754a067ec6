import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FIELDS, loadConfig, redactConfig } from '../../src/config';
import { ConfigError } from '../../src/errors';
import { REPO_ROOT } from '../helpers/config';

const dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-config-'));
let n = 0;
function file(content: string): string {
  const p = path.join(dir, `cfg-${n++}.env`);
  writeFileSync(p, content);
  return p;
}
function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.problems;
  }
  assert.fail('expected the configuration to be refused');
}

describe('configuration', () => {
  it('applies the seed defaults when nothing is set', () => {
    const c = loadConfig({ env: {}, cwd: dir });
    assert.equal(c.source, 'environment');
    assert.equal(c.retention.cloudDays, 90);
    assert.equal(c.retention.localDays, 7);
    assert.equal(c.objectives.rtoMinutes, 120);
    assert.equal(c.objectives.rpoHours, 4);
    assert.equal(c.performance.maxParallelBackups, 3);
    assert.equal(c.performance.ioNiceLevel, 7);
    assert.equal(c.encryption.compressionLevel, 1);
    assert.equal(c.alerts.backupAgeSeconds, 86400);
    assert.equal(c.alerts.diskUsagePercent, 90);
    assert.equal(c.postgres.port, 5432);
    assert.equal(c.odoo.dbUser, c.postgres.user, 'ODOO_DB_USER defaults to POSTGRES_USER');
    assert.equal(c.odoo.filestoreRoot, '/var/lib/odoo/filestore');
    assert.equal(c.cloud, undefined, 'no bucket: local only');
    assert.equal(c.alerts.smtp, undefined);
  });

  it('names the variable, what is expected and what it got', () => {
    const problems = problemsOf(() => loadConfig({ path: file('DR_MAX_PARALLEL_BACKUPS="three"\n'), env: {} }));
    assert.deepEqual(problems, ['DR_MAX_PARALLEL_BACKUPS must be a whole number from 1 to 64, got "three"']);
  });

  it('reports every problem at once, in one error', () => {
    const p = file(
      [
        'DR_MAX_PARALLEL_BACKUPS=0',
        'POSTGRES_PORT=70000',
        'DR_CLOUD_BUCKET="https://bucket"',
        'DR_BANDWIDTH_LIMIT="fast"',
        'DR_BACKUP_DIR="relative/dir"',
        'DR_AGE_RECIPIENTS="not-a-key"',
        'DR_S3_FORCE_PATH_STYLE=maybe',
        'DR_NOTIFICATION_EMAIL="ops-at-example"',
      ].join('\n'),
    );
    let message = '';
    const problems = problemsOf(() => {
      try {
        loadConfig({ path: p, env: {} });
      } catch (err) {
        message = (err as Error).message;
        throw err;
      }
    });
    const names = problems.map((m) => m.split(' ')[0]);
    assert.deepEqual(names.sort(), [
      'DR_AGE_RECIPIENTS',
      'DR_BACKUP_DIR',
      'DR_BANDWIDTH_LIMIT',
      'DR_CLOUD_BUCKET',
      'DR_MAX_PARALLEL_BACKUPS',
      'DR_NOTIFICATION_EMAIL',
      'DR_S3_FORCE_PATH_STYLE',
      'POSTGRES_PORT',
    ]);
    assert.match(message, /8 problems/);
    assert.match(message, /POSTGRES_PORT must be a whole number from 1 to 65535, got "70000"/);
  });

  it('never prints a secret value, even when it is the wrong shape', () => {
    const secretUrl = 'hooks-slack-T0001-B0001-s3cr3tT0ken';
    const problems = problemsOf(() => loadConfig({ path: file(`DR_WEBHOOK_URL="${secretUrl}"\n`), env: {} }));
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^DR_WEBHOOK_URL must be an http\(s\) URL, got a value of \d+ characters \(hidden\)$/);
    assert.ok(!problems[0]!.includes('s3cr3t'));
  });

  it('hides secrets in the printable configuration', () => {
    const c = loadConfig({
      path: file(
        'POSTGRES_PASSWORD="pg-Secret-1"\nDR_CLOUD_BUCKET="s3://b-ucket/p"\nAWS_ACCESS_KEY_ID="AK"\nAWS_SECRET_ACCESS_KEY="aws-Secret-2"\n' +
          'DR_SMTP_HOST=smtp.example.com\nDR_SMTP_PASSWORD="smtp-Secret-3"\nDR_WEBHOOK_URL="https://hooks.example.com/T/B/hook-Secret-4"\n' +
          'TEMPORAL_API_KEY="tmprl-Secret-5"\n',
      ),
      env: {},
    });
    assert.equal(c.postgres.password, 'pg-Secret-1', 'activities still get the secret');
    const printed = JSON.stringify(redactConfig(c));
    for (const s of ['pg-Secret-1', 'aws-Secret-2', 'smtp-Secret-3', 'hook-Secret-4', 'tmprl-Secret-5']) {
      assert.ok(!printed.includes(s), `${s} leaked into ${printed}`);
    }
  });

  it('reads a seed-style file: quotes, inline comments, ${VAR} expansion, seed-only variables', () => {
    const c = loadConfig({
      path: file(
        [
          '# === Core DR Settings ===',
          'DR_BACKUP_DIR="/srv/dr-backups"',
          'DR_SESSION_DIR="${DR_BACKUP_DIR}/sessions"',
          'DR_ENCRYPTION_KEY="${DR_BACKUP_DIR}/config/encryption.key"',
          'DR_RETENTION_DAYS="90"',
          'POSTGRES_USER="odoo_master"',
          'DR_BACKUP_DESTINATIONS="aws"',
          'DR_CLOUD_BUCKET="s3://company-dr-backups"',
          'DR_MONITORING_INTERVAL="3600"  # 1 hour in seconds',
          'DR_ALERT_ON_BACKUP_AGE="86400"  # 24 hours in seconds',
          'DR_WEBHOOK_URL=""               # Slack webhook for notifications',
          'DR_BANDWIDTH_LIMIT=""  # e.g., "10M" for 10MB/s limit',
          'PROJECT_ROOT="/srv/odoo"',
          'DOCKER_COMPOSE_FILE="${PROJECT_ROOT}/docker-compose.yml"',
          'NGINX_CONFIG_PATH="${PROJECT_ROOT}/nginx"',
          'export DR_MAX_PARALLEL_BACKUPS="5"',
        ].join('\n'),
      ),
      env: {},
    });
    assert.equal(c.backupDir, '/srv/dr-backups');
    assert.equal(c.encryption.identityFile, '/srv/dr-backups/config/encryption.key', 'seed DR_ENCRYPTION_KEY is the identity file');
    assert.equal(c.postgres.user, 'odoo_master');
    assert.deepEqual(c.cloud && { bucket: c.cloud.bucket, prefix: c.cloud.prefix }, { bucket: 'company-dr-backups', prefix: '' });
    assert.equal(c.alerts.webhookUrl, undefined, 'empty means not set');
    assert.equal(c.cloud?.bandwidthLimit, undefined, 'empty means unlimited');
    assert.deepEqual(c.configPaths, ['/srv/odoo/docker-compose.yml', '/srv/odoo/nginx'], 'seed paths make the configuration archive');
    assert.equal(c.performance.maxParallelBackups, 5);
    assert.deepEqual(c.warnings, [], 'seed variables are accepted silently');
  });

  it('lets the process environment override the file', () => {
    const c = loadConfig({ path: file('DR_RPO_HOURS=4\n'), env: { DR_RPO_HOURS: '2' } });
    assert.equal(c.objectives.rpoHours, 2);
  });

  it('warns about unknown variables and suggests the likely one', () => {
    const c = loadConfig({ path: file('DR_MAX_PARALELL_BACKUPS=4\n'), env: {} });
    assert.equal(c.warnings.length, 1);
    assert.match(c.warnings[0]!, /DR_MAX_PARALELL_BACKUPS .* \(did you mean DR_MAX_PARALLEL_BACKUPS\?\)/);
  });

  it('parses S3 locations, rates and lists', () => {
    const c = loadConfig({
      path: file(
        'DR_CLOUD_BUCKET="s3://odoo-dr/prod/eu/"\nDR_BANDWIDTH_LIMIT="10M"\nDR_TENANTS="acme, globex-eu initech.fr"\n' +
          'DR_S3_ENDPOINT="http://127.0.0.1:9000"\n',
      ),
      env: {},
    });
    assert.equal(c.cloud?.bucket, 'odoo-dr');
    assert.equal(c.cloud?.prefix, 'prod/eu');
    assert.equal(c.cloud?.bandwidthLimit, 10 * 1024 * 1024);
    assert.equal(c.cloud?.forcePathStyle, true, 'path style by default with a custom endpoint');
    assert.deepEqual(c.tenants.include, ['acme', 'globex-eu', 'initech.fr']);
  });

  it('refuses contradictions between variables', () => {
    const problems = problemsOf(() => loadConfig({ path: file('DR_TENANTS="a,b"\nDR_EXCLUDE_TENANTS="b"\nAWS_SECRET_ACCESS_KEY="x"\n'), env: {} }));
    assert.equal(problems.length, 2);
    assert.match(problems.join('\n'), /DR_TENANTS and DR_EXCLUDE_TENANTS both name b/);
    assert.match(problems.join('\n'), /AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not/);
  });

  it('reads the password from POSTGRES_PASSWORD_FILE, and names the file when it cannot', () => {
    const pw = path.join(dir, 'pg.password');
    writeFileSync(pw, 'from-file-pw\n');
    chmodSync(pw, 0o600);
    assert.equal(loadConfig({ path: file(`POSTGRES_PASSWORD_FILE="${pw}"\n`), env: {} }).postgres.password, 'from-file-pw');
    const problems = problemsOf(() => loadConfig({ path: file(`POSTGRES_PASSWORD_FILE="${dir}/absent"\n`), env: {} }));
    assert.match(problems[0]!, /^POSTGRES_PASSWORD_FILE must name a readable file, got ".*absent" \(ENOENT\)$/);
  });

  it('says which file it cannot read', () => {
    assert.throws(() => loadConfig({ path: path.join(dir, 'nope.env'), env: {} }), /cannot read configuration file .*nope\.env: ENOENT/);
  });

  it('ships an example that documents every variable and loads when uncommented', () => {
    const example = readFileSync(path.join(REPO_ROOT, 'config/dr-config.env.example'), 'utf8');
    for (const key of Object.keys(FIELDS)) {
      assert.match(example, new RegExp(`^#${key}=`, 'm'), `${key} is not in the example`);
    }
    const uncommented = example.replace(/^#([A-Z_]+=)/gm, '$1');
    const c = loadConfig({ path: file(uncommented), env: { AWS_SECRET_ACCESS_KEY: 'x', POSTGRES_PASSWORD_FILE: '' } });
    assert.deepEqual(
      c.warnings.filter((w) => !w.includes('DR_SMTP_HOST')),
      [],
    );
    assert.equal(c.cloud?.bucket, 'company-dr-backups');
  });
});
