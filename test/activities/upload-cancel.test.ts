/**
 * The backup activities' uploads under Temporal cancellation, on the real stack, in a mocked
 * activity context: an activity cancelled for good (the workflow cancelled it) aborts its
 * multipart upload at once; one that timed out keeps it, for the retry to resume by its id.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { ActivityCancellationDetails } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import type { CancelReason } from '@temporalio/worker/lib/activity';
import { createActivities, type TenantBackupProgress } from '../../activities';
import { rel } from '../../src/backup/layout';
import type { DrConfig } from '../../src/config';
import { recipientsFor } from '../../src/crypto/age';
import { abortStaleUploads, cloudKey, createS3Client, deleteObjects, listObjects } from '../../src/storage/s3';
import { backupSessionName } from '../../workflows/definitions';
import { stackConfig, uniqueSuffix } from '../helpers/config';

const quiet = new DefaultLogger('ERROR');

describe('backup uploads under Temporal cancellation (mocked activity context, real S3)', function () {
  this.timeout(120_000);
  const dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-cancel-'));
  const sessions: string[] = [];
  let config: DrConfig;
  let recipients: string[];

  before(async () => {
    const configDir = path.join(dir, 'etc');
    mkdirSync(configDir);
    // Random bytes do not compress: the archive needs three 8 MiB parts.
    writeFileSync(path.join(configDir, 'large.bin'), randomBytes(20 * 1024 * 1024));
    config = stackConfig({ DR_BACKUP_DIR: path.join(dir, 'backups'), DR_LOG_DIR: path.join(dir, 'logs'), DR_CONFIG_PATHS: configDir });
    assert.ok(config.cloud, 'the local stack configuration has DR_CLOUD_BUCKET');
    recipients = await recipientsFor(config);
  });
  after(async () => {
    for (const session of sessions) {
      const prefix = cloudKey(config.cloud!, rel.session(session)) + '/';
      await abortStaleUploads(config.cloud!, prefix, 0);
      const keys: string[] = [];
      for await (const o of listObjects(config.cloud!, prefix)) keys.push(o.key);
      await deleteObjects(config.cloud!, keys);
    }
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs backupConfiguration and cancels it, for `reason`, once its first part is on the server; returns the multipart uploads left for its key. */
  const cancelledUpload = async (reason: CancelReason, details: ActivityCancellationDetails) => {
    const session = backupSessionName(new Date(), uniqueSuffix());
    sessions.push(session);
    const env = new MockActivityEnvironment({}, { logger: quiet });
    let cancelled = false;
    env.on('heartbeat', (d: TenantBackupProgress | undefined) => {
      if (d?.phase === 'upload' && !cancelled) {
        cancelled = true;
        env.cancel(reason, details);
      }
    });
    const activities = createActivities({ config });
    await assert.rejects(env.run(activities.backupConfiguration, { session, recipients, cloud: true }));
    assert.ok(cancelled, 'cancelled during the upload');
    const key = cloudKey(config.cloud!, rel.config(session));
    const client = createS3Client(config.cloud!);
    try {
      const out = await client.send(new ListMultipartUploadsCommand({ Bucket: config.cloud!.bucket, Prefix: key }));
      return (out.Uploads ?? []).filter((u) => u.Key === key);
    } finally {
      client.destroy();
    }
  };

  it('cancelled by the workflow: no multipart upload is left for its key', async () => {
    assert.deepEqual(await cancelledUpload('CANCELLED', new ActivityCancellationDetails({ cancelRequested: true })), []);
  });

  it('timed out: the multipart upload is kept for the retry to resume', async () => {
    assert.equal((await cancelledUpload('TIMED_OUT', new ActivityCancellationDetails({ timedOut: true }))).length, 1);
  });
});
