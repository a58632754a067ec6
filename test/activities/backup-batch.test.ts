/**
 * backupTenants (several small tenants in one activity) on the real stack, in a mocked activity
 * context: each tenant is backed up exactly as backupTenant does it; every finished tenant is in the
 * heartbeat, so a retry skips it; the tenant in progress resumes from its own resume point; a
 * tenant's failure is recorded (transient or not) and the next tenants go on.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { createActivities, type TenantsBackupDone, type TenantsBackupProgress } from '../../activities';
import { localPath, rel } from '../../src/backup/layout';
import { recipientsFor } from '../../src/crypto/age';
import type { DrConfig } from '../../src/config';
import { backupSessionName } from '../../workflows/definitions';
import { createTenant, dropTenant, type PgAdminConnection } from '../fixtures/odoo-tenants';
import { stackConfig, uniqueSuffix } from '../helpers/config';
import { adminConnection } from '../helpers/pg';

const quiet = new DefaultLogger('ERROR');

describe('backupTenants activity (a batch of small tenants)', function () {
  this.timeout(120_000);
  const s = uniqueSuffix();
  const dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-batch-'));
  const tenants = [0, 1, 2, 3].map((i) => `bt-${s}-${i}`);
  let config: DrConfig;
  let recipients: string[];
  const admin = (): PgAdminConnection => adminConnection(config);

  before(async () => {
    config = stackConfig({ DR_BACKUP_DIR: path.join(dir, 'backups'), ODOO_DATA_DIR: path.join(dir, 'data'), DR_LOG_DIR: path.join(dir, 'logs') });
    recipients = await recipientsFor(config);
    for (const name of tenants) await createTenant(admin(), config.odoo.dataDir, { name, moveLines: 50, files: 2, fileSize: 512 });
  });
  after(async () => {
    for (const name of tenants) await dropTenant(admin(), config.odoo.dataDir, name).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs backupTenants in a mocked activity context; returns its result, heartbeats and the tenants dumped. */
  const run = async (session: string, list: string[], resume?: TenantsBackupProgress, failDump?: (file: string) => void) => {
    const dumped: string[] = [];
    const activities = createActivities({
      config,
      backupHooks: {
        afterDump: (file) => {
          dumped.push(path.basename(path.dirname(file)));
          failDump?.(file);
        },
      },
    });
    const env = new MockActivityEnvironment(resume ? { heartbeatDetails: resume } : {}, { logger: quiet });
    const beats: TenantsBackupProgress[] = [];
    env.on('heartbeat', (d: TenantsBackupProgress) => beats.push(structuredClone(d)));
    const result: TenantsBackupDone = await env.run(activities.backupTenants, { session, tenants: list, recipients, cloud: false });
    return { result, beats, dumped };
  };

  let first: Awaited<ReturnType<typeof run>>;
  const session = backupSessionName(new Date(), uniqueSuffix());

  it('backs up each tenant as backupTenant does, and heartbeats every finished one', async () => {
    first = await run(session, tenants);
    for (const t of tenants) {
      assert.equal(first.result.tenants[t]?.status, 'complete', JSON.stringify(first.result.tenants[t]));
      assert.ok(existsSync(localPath(config.backupDir, `${rel.tenantDir(session, t)}/entry.json`)), `${t}: its manifest entry`);
      assert.ok(existsSync(localPath(config.backupDir, rel.database(session, t))), `${t}: its dump`);
    }
    assert.deepEqual(first.dumped, tenants);
    // After each tenant, a heartbeat with every tenant done so far.
    const doneCounts = first.beats.filter((b) => b.current === undefined).map((b) => Object.keys(b.done).length);
    assert.deepEqual(doneCounts, [1, 2, 3, 4]);
    // While a tenant works, its own progress (backupTenant's resume point) is inside, named.
    const inside = first.beats.find((b) => b.current?.tenant === tenants[2] && b.current?.progress?.phase === 'filestore');
    assert.ok(inside?.current?.progress?.dump?.artifact.sha256, 'the dump of the tenant in progress is in the heartbeat');
    assert.deepEqual(Object.keys(inside.done), tenants.slice(0, 2));
  });

  it('a retry skips the tenants its heartbeat says are done, and resumes the one in progress from its own resume point', async () => {
    const inside = first.beats.find((b) => b.current?.tenant === tenants[2] && b.current?.progress?.phase === 'filestore')!;
    const kept = inside.current!.progress!.dump!.artifact;
    const retry = await run(session, tenants, inside);
    // Done before: not dumped again, their recorded outcome returned as it was.
    assert.deepEqual(retry.dumped, tenants.slice(2));
    for (const t of tenants.slice(0, 2)) assert.deepEqual(retry.result.tenants[t], first.result.tenants[t]);
    // The tenant in progress kept its finished dump (same bytes: age output differs at every run).
    const resumed = retry.result.tenants[tenants[2]!];
    assert.equal(resumed?.status, 'complete');
    assert.equal(resumed.status === 'complete' && resumed.done.databaseBytes, kept.bytes);
    const entry = readFileSync(localPath(config.backupDir, `${rel.tenantDir(session, tenants[2]!)}/entry.json`), 'utf8');
    assert.equal((JSON.parse(entry) as { database: { sha256: string } }).database.sha256, kept.sha256);
    assert.equal(retry.result.tenants[tenants[3]!]?.status, 'complete');
  });

  it("a tenant's failure is recorded (permanent or transient) and the next tenants go on", async () => {
    const other = backupSessionName(new Date(), uniqueSuffix());
    const gone = `bt-${s}-gone`;
    const { result, dumped } = await run(other, [tenants[0]!, gone, tenants[1]!, tenants[2]!], undefined, (file) => {
      if (file.includes(`/${tenants[1]}/`)) throw new Error('injected: the disk hiccuped');
    });
    assert.equal(result.tenants[tenants[0]!]?.status, 'complete');
    const missing = result.tenants[gone]!;
    assert.ok(missing.status === 'failed' && !missing.retryable, JSON.stringify(missing));
    assert.match(missing.error, /^TenantNotFoundError: /);
    const hiccup = result.tenants[tenants[1]!]!;
    assert.ok(hiccup.status === 'failed' && hiccup.retryable, JSON.stringify(hiccup));
    assert.match(hiccup.error, /injected: the disk hiccuped/);
    assert.equal(result.tenants[tenants[2]!]?.status, 'complete');
    assert.deepEqual(dumped, [tenants[0], tenants[1], tenants[2]]);
    // A permanent failure leaves nothing of the tenant in the session.
    assert.equal(existsSync(localPath(config.backupDir, rel.tenantDir(other, gone))), false);
  });

  it('refuses names that are not valid tenant or session names before doing anything', async () => {
    const activities = createActivities({ config });
    const env = new MockActivityEnvironment({}, { logger: quiet });
    await assert.rejects(env.run(activities.backupTenants, { session, tenants: ['../etc'], recipients, cloud: false }), /not a valid/);
  });
});
