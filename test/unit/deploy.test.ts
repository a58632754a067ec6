/**
 * The shipped production files (deploy/): the IAM policies grant what each host needs and nothing
 * that lets it destroy backups; the systemd unit is hardened; the Temporal settings the README
 * documents (API key, mTLS) reach the connection.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { unitEnvironment } from '../../bench/harness';
import { temporalSettings } from '../../temporal/connection';
import { REPO_ROOT, stackConfig } from '../helpers/config';

interface Statement {
  Action: string[];
  Resource: string;
}
const policy = (name: string) => (JSON.parse(readFileSync(path.join(REPO_ROOT, 'deploy/iam', name), 'utf8')) as { Statement: Statement[] }).Statement;
const actions = (name: string) => policy(name).flatMap((s) => s.Action);

describe('production deployment files', () => {
  it('IAM: the backup host writes but cannot delete; the restore host reads and writes only validation results', () => {
    const backup = actions('backup-host.json');
    for (const a of ['s3:PutObject', 's3:GetObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts', 's3:ListBucketMultipartUploads'])
      assert.ok(backup.includes(a), a);
    for (const name of ['backup-host.json', 'restore-host.json']) {
      for (const a of actions(name)) assert.doesNotMatch(a, /Delete|PutBucket|PutLifecycle|PutObjectRetention|BypassGovernance|\*/, `${name}: ${a}`);
    }
    const restore = policy('restore-host.json');
    assert.deepEqual(
      restore.filter((s) => s.Action.includes('s3:PutObject')).map((s) => s.Resource),
      ['arn:aws:s3:::example-odoo-dr-backups/prod/sessions/*/results/*'],
    );
    assert.ok(actions('retention.json').includes('s3:DeleteObject'));
    for (const name of ['backup-host.json', 'restore-host.json', 'retention.json']) {
      for (const s of policy(name))
        assert.match(s.Resource, /^arn:aws:s3:::example-odoo-dr-backups(\/prod\/.*)?$/, `${name}: confined to the bucket and prefix`);
    }
  });

  it('systemd: a dedicated user, a read-only system but for the backup folder, no privilege gain', () => {
    const unit = readFileSync(path.join(REPO_ROOT, 'deploy/systemd/odoo-dr-worker.service'), 'utf8');
    const set = (key: string) =>
      unit
        .split('\n')
        .filter((l) => l.startsWith(`${key}=`))
        .map((l) => l.slice(key.length + 1));
    assert.deepEqual(set('User'), ['odoo-dr']);
    assert.deepEqual(set('ProtectSystem'), ['strict']);
    assert.deepEqual(set('NoNewPrivileges'), ['yes']);
    assert.deepEqual(set('ReadWritePaths'), ['/var/lib/odoo-dr /var/log/odoo-dr']);
    assert.deepEqual(set('KillSignal'), ['SIGTERM']);
    assert.match(set('ExecStart')[0]!, /bin\/odoo-dr --config \/etc\/odoo-dr\/dr-config\.env worker$/);
    assert.deepEqual(set('MemoryDenyWriteExecute'), [], "Node's JIT needs it off");
  });

  it('systemd: the environment the unit sets for the worker is the one the bench starts its workers with', () => {
    assert.deepEqual(unitEnvironment(), { MALLOC_MMAP_THRESHOLD_: '131072' });
    assert.deepEqual(unitEnvironment('Environment="A=x y"\nEnvironmentFile=/etc/f\nEnvironment=B=1\n'), { A: 'x y', B: '1' });
    assert.throws(() => unitEnvironment('Environment=A=1 B=2\n'), /cannot read "Environment=A=1 B=2"/);
  });

  it('Temporal: an API key (TLS implied) or mTLS certificates from the documented variables', () => {
    const config = stackConfig();
    const cloud = temporalSettings(config, {
      TEMPORAL_ADDRESS: 'eu-west-1.aws.api.temporal.io:7233',
      TEMPORAL_NAMESPACE: 'odoo-dr-prod.a1b2c',
      TEMPORAL_API_KEY: 'key-123',
    });
    assert.equal(cloud.namespace, 'odoo-dr-prod.a1b2c');
    const { address, apiKey, tls: cloudTls } = cloud.connectionOptions;
    assert.deepEqual({ address, apiKey, tls: cloudTls }, { address: 'eu-west-1.aws.api.temporal.io:7233', apiKey: 'key-123', tls: true });
    const dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-tls-'));
    try {
      writeFileSync(path.join(dir, 'c.pem'), 'CERT');
      writeFileSync(path.join(dir, 'c.key'), 'KEY');
      const mtls = temporalSettings(config, {
        TEMPORAL_ADDRESS: 'temporal.internal:7233',
        TEMPORAL_TLS_CLIENT_CERT_PATH: path.join(dir, 'c.pem'),
        TEMPORAL_TLS_CLIENT_KEY_PATH: path.join(dir, 'c.key'),
        TEMPORAL_TLS_SERVER_NAME: 'temporal.example.com',
      });
      const tls = mtls.connectionOptions.tls as { serverNameOverride: string; clientCertPair: { crt: Uint8Array; key: Uint8Array } };
      assert.equal(tls.serverNameOverride, 'temporal.example.com');
      assert.equal(Buffer.from(tls.clientCertPair.crt).toString(), 'CERT');
      assert.equal(Buffer.from(tls.clientCertPair.key).toString(), 'KEY');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
