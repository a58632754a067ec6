/**
 * `odoo-dr setup`'s S3 checks: bucket reachable, a probe object written, read back and deleted,
 * versioning, object lock and lifecycle rules. Servers that lack a feature (versitygw has no
 * lifecycle) get "not supported by this server", not a failure.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import {
  DeleteObjectCommand,
  GetBucketLifecycleConfigurationCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadBucketCommand,
  PutBucketLifecycleConfigurationCommand,
  PutObjectCommand,
  type LifecycleRule,
} from '@aws-sdk/client-s3';
import { redactValue } from '../config';
import { cloudKey, createS3Client, mapS3Error, type CloudSettings } from '../storage/s3';
import { firstLine, ok, problem, skipped, warning, type SetupCheck } from './report';

const S = 's3';

function codeOf(err: unknown): string {
  const e = err as { Code?: unknown; name?: unknown };
  return typeof e.Code === 'string' ? e.Code : typeof e.name === 'string' ? e.name : '';
}
const unsupported = (err: unknown) =>
  codeOf(err) === 'NotImplemented' || (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 501;

/** The seed's storage classes by age (days) for sessions: Standard-IA 30, Glacier 90, Deep Archive 365. */
export const SEED_TRANSITIONS = [
  { days: 30, storageClass: 'STANDARD_IA' },
  { days: 90, storageClass: 'GLACIER' },
  { days: 365, storageClass: 'DEEP_ARCHIVE' },
] as const;
/** Classes whose objects cannot be read without a restore request (hours): a pack there stalls a recovery. */
const COLD = new Set(['GLACIER', 'DEEP_ARCHIVE']);
const RULE_PREFIX = 'odoo-dr-';

const root = (cloud: CloudSettings) => (cloud.prefix ? `${cloud.prefix.replace(/\/+$/, '')}/` : '');

/**
 * The lifecycle rules `setup --apply-lifecycle` puts: the seed's transitions for sessions (only
 * those a session lives to see under DR_RETENTION_DAYS: Glacier bills 90 days at least), Standard-IA
 * only for packs and blobs (a pack written a year ago may be part of tonight's session, so it must
 * stay readable at once), and abandoned multipart uploads removed after 7 days.
 */
export function seedLifecycleRules(cloud: CloudSettings, retentionDays: number): LifecycleRule[] {
  const base = root(cloud);
  const sessionTransitions = SEED_TRANSITIONS.filter((t) => t.days < retentionDays).map((t) => ({ Days: t.days, StorageClass: t.storageClass }));
  const rules: LifecycleRule[] = [];
  if (sessionTransitions.length)
    rules.push({ ID: `${RULE_PREFIX}sessions`, Status: 'Enabled', Filter: { Prefix: `${base}sessions/` }, Transitions: sessionTransitions });
  for (const folder of ['packs', 'blobs']) {
    if (retentionDays > 30)
      rules.push({
        ID: `${RULE_PREFIX}${folder}`,
        Status: 'Enabled',
        Filter: { Prefix: `${base}${folder}/` },
        Transitions: [{ Days: 30, StorageClass: 'STANDARD_IA' }],
      });
  }
  rules.push({
    ID: `${RULE_PREFIX}abort-incomplete-uploads`,
    Status: 'Enabled',
    Filter: { Prefix: base },
    AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 },
  });
  return rules;
}

function rulePrefix(rule: LifecycleRule): string {
  return rule.Filter?.Prefix ?? rule.Filter?.And?.Prefix ?? rule.Prefix ?? '';
}

/** What is wrong with the bucket's lifecycle rules for odoo-dr's layout (empty: nothing). */
export function lifecycleProblems(rules: LifecycleRule[], cloud: CloudSettings, retentionDays: number): { problems: string[]; missing: string[] } {
  const base = root(cloud);
  const problems: string[] = [];
  for (const rule of rules.filter((r) => r.Status === 'Enabled')) {
    const p = rulePrefix(rule);
    const id = rule.ID ?? '(no id)';
    for (const folder of ['packs/', 'blobs/']) {
      const covers = `${base}${folder}`.startsWith(p) || p.startsWith(`${base}${folder}`);
      if (!covers) continue;
      const cold = (rule.Transitions ?? []).find((t) => t.StorageClass && COLD.has(t.StorageClass));
      if (cold)
        problems.push(
          `rule ${id} moves ${base}${folder} to ${cold.StorageClass} after ${cold.Days ?? '?'} days: packs that newer sessions still use become unreadable until restored, so a recovery from the bucket would fail`,
        );
      if (rule.Expiration?.Days !== undefined)
        problems.push(
          `rule ${id} deletes ${base}${folder} after ${rule.Expiration.Days} days: packs that newer sessions still use would be lost (odoo-dr cleanup collects unused packs)`,
        );
    }
    const sessions = `${base}sessions/`;
    if ((sessions.startsWith(p) || p.startsWith(sessions)) && rule.Expiration?.Days !== undefined && rule.Expiration.Days < retentionDays) {
      problems.push(`rule ${id} deletes sessions after ${rule.Expiration.Days} days, before DR_RETENTION_DAYS (${retentionDays})`);
    }
  }
  const ids = new Set(rules.map((r) => r.ID));
  const missing = seedLifecycleRules(cloud, retentionDays)
    .map((r) => r.ID!)
    .filter((id) => !ids.has(id));
  return { problems, missing };
}

export interface S3CheckOptions {
  retentionDays: number;
  /** Put seedLifecycleRules (keeping the bucket's other rules). */
  applyLifecycle?: boolean;
  /** Change nothing (no lifecycle put; the probe object is still written and deleted). */
  check?: boolean;
}

export async function checkS3(cloud: CloudSettings, opts: S3CheckOptions): Promise<SetupCheck[]> {
  const checks: SetupCheck[] = [];
  const client = createS3Client(cloud);
  // The endpoint may carry credentials in its URL (config warns): shown without them.
  const endpoint = redactValue('DR_S3_ENDPOINT', cloud.endpoint);
  const where = `s3://${cloud.bucket}/${cloud.prefix}${endpoint ? ` at ${endpoint}` : ''}`;
  try {
    try {
      await client.send(new HeadBucketCommand({ Bucket: cloud.bucket }));
      checks.push(ok(S, 'bucket', `${where} reachable`));
    } catch (err) {
      const code = codeOf(err);
      const message =
        code === 'NotFound' || code === 'NoSuchBucket'
          ? `bucket ${cloud.bucket} does not exist${endpoint ? ` at ${endpoint}` : ''}`
          : firstLine(mapS3Error(err, cloud, `HeadBucket ${cloud.bucket}`));
      checks.push(
        problem(
          S,
          'bucket',
          message,
          'check DR_CLOUD_BUCKET, DR_S3_ENDPOINT and DR_CLOUD_REGION, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; create the bucket (with object lock) if it is new',
        ),
      );
      return checks;
    }

    const key = cloudKey(cloud, 'setup-probe', `${hostname().replace(/[^A-Za-z0-9.-]/g, '_')}-${randomBytes(4).toString('hex')}`);
    const body = randomBytes(32);
    let step = 'write';
    try {
      const put = await client.send(
        new PutObjectCommand({
          Bucket: cloud.bucket,
          Key: key,
          Body: body,
          ...(cloud.serverSideEncryption ? { ServerSideEncryption: cloud.serverSideEncryption } : {}),
        }),
      );
      step = 'read';
      const got = await client.send(new GetObjectCommand({ Bucket: cloud.bucket, Key: key }));
      const back = Buffer.from(await got.Body!.transformToByteArray());
      if (!back.equals(body)) throw new Error('the probe object read back differs from what was written');
      step = 'delete';
      let left = '';
      if (put.VersionId) {
        // Versioned bucket: delete the probe's version itself, so no version or delete marker is left
        // behind; object lock may refuse that until its retention ends.
        try {
          await client.send(new DeleteObjectCommand({ Bucket: cloud.bucket, Key: key, VersionId: put.VersionId }));
        } catch {
          await client.send(new DeleteObjectCommand({ Bucket: cloud.bucket, Key: key }));
          left = ` (object lock keeps its 32-byte version ${put.VersionId} until the retention ends)`;
        }
      } else await client.send(new DeleteObjectCommand({ Bucket: cloud.bucket, Key: key }));
      checks.push(ok(S, 'write/read/delete', `probe object ${key} written, read back and deleted${left}`));
    } catch (err) {
      checks.push(
        problem(
          S,
          'write/read/delete',
          `probe ${step} of ${key} failed: ${firstLine(mapS3Error(err, cloud, `${step} of ${key}`))}`,
          `let the key ${cloud.accessKeyId ?? '(SDK chain)'} s3:PutObject, s3:GetObject, s3:DeleteObject and s3:ListBucket on ${cloud.bucket}/${cloud.prefix}*${cloud.serverSideEncryption ? '; or set DR_CLOUD_ENCRYPTION=none if the server refuses server-side encryption' : ''}`,
        ),
      );
    }

    try {
      const v = await client.send(new GetBucketVersioningCommand({ Bucket: cloud.bucket }));
      if (v.Status === 'Enabled') checks.push(ok(S, 'versioning', 'enabled: an overwritten or deleted object can be recovered'));
      else
        checks.push(
          warning(
            S,
            'versioning',
            `${v.Status === 'Suspended' ? 'suspended' : 'not enabled'}: a deleted or overwritten backup is gone for good`,
            `aws s3api put-bucket-versioning --bucket ${cloud.bucket} --versioning-configuration Status=Enabled`,
          ),
        );
    } catch (err) {
      checks.push(
        unsupported(err)
          ? warning(S, 'versioning', 'not supported by this server')
          : problem(S, 'versioning', firstLine(mapS3Error(err, cloud, 'GetBucketVersioning')), `allow s3:GetBucketVersioning on ${cloud.bucket}`),
      );
    }

    try {
      const lock = await client.send(new GetObjectLockConfigurationCommand({ Bucket: cloud.bucket }));
      const rule = lock.ObjectLockConfiguration?.Rule?.DefaultRetention;
      const days = rule?.Days ?? (rule?.Years !== undefined ? rule.Years * 365 : undefined);
      if (lock.ObjectLockConfiguration?.ObjectLockEnabled !== 'Enabled')
        throw Object.assign(new Error('not enabled'), { name: 'ObjectLockConfigurationNotFoundError' });
      if (!rule)
        checks.push(
          warning(
            S,
            'object lock',
            'enabled without a default retention: objects are not locked unless each upload asks',
            `aws s3api put-object-lock-configuration --bucket ${cloud.bucket} --object-lock-configuration '{"ObjectLockEnabled":"Enabled","Rule":{"DefaultRetention":{"Mode":"GOVERNANCE","Days":30}}}'`,
          ),
        );
      else if (days !== undefined && days > opts.retentionDays)
        checks.push(
          warning(
            S,
            'object lock',
            `default retention ${rule.Mode} ${days} days is longer than DR_RETENTION_DAYS (${opts.retentionDays}): retention cannot delete sessions until then`,
            `lower the default retention to at most ${opts.retentionDays} days, or raise DR_RETENTION_DAYS`,
          ),
        );
      else
        checks.push(
          ok(S, 'object lock', `enabled, default retention ${rule.Mode} ${days ?? '?'} days: backups cannot be deleted before, even with the S3 keys`),
        );
    } catch (err) {
      if (unsupported(err)) checks.push(warning(S, 'object lock', 'not supported by this server'));
      else if (codeOf(err) === 'ObjectLockConfigurationNotFoundError') {
        checks.push(
          warning(
            S,
            'object lock',
            'not enabled: anyone holding the S3 keys (ransomware on this host included) can delete every backup',
            `object lock is chosen when a bucket is created: aws s3api create-bucket --bucket NEW --object-lock-enabled-for-bucket, then put-object-lock-configuration with GOVERNANCE or COMPLIANCE days ≤ DR_RETENTION_DAYS, and point DR_CLOUD_BUCKET at it`,
          ),
        );
      } else
        checks.push(
          problem(
            S,
            'object lock',
            firstLine(mapS3Error(err, cloud, 'GetObjectLockConfiguration')),
            `allow s3:GetBucketObjectLockConfiguration on ${cloud.bucket}`,
          ),
        );
    }

    checks.push(await checkLifecycle(client, cloud, opts));
  } finally {
    client.destroy();
  }
  return checks;
}

async function checkLifecycle(client: ReturnType<typeof createS3Client>, cloud: CloudSettings, opts: S3CheckOptions): Promise<SetupCheck> {
  let rules: LifecycleRule[];
  try {
    rules = (await client.send(new GetBucketLifecycleConfigurationCommand({ Bucket: cloud.bucket }))).Rules ?? [];
  } catch (err) {
    if (unsupported(err)) {
      return opts.applyLifecycle
        ? problem(
            S,
            'lifecycle',
            'not supported by this server: --apply-lifecycle cannot put rules',
            "set storage classes with the storage provider's own tools, or drop --apply-lifecycle",
          )
        : warning(S, 'lifecycle', 'not supported by this server (objects stay in their storage class)');
    }
    if (codeOf(err) !== 'NoSuchLifecycleConfiguration')
      return problem(
        S,
        'lifecycle',
        firstLine(mapS3Error(err, cloud, 'GetBucketLifecycleConfiguration')),
        `allow s3:GetLifecycleConfiguration on ${cloud.bucket}`,
      );
    rules = [];
  }
  if (opts.applyLifecycle && !opts.check) {
    const ours = seedLifecycleRules(cloud, opts.retentionDays);
    const ids = new Set(ours.map((r) => r.ID));
    const kept = rules.filter((r) => !ids.has(r.ID));
    try {
      await client.send(new PutBucketLifecycleConfigurationCommand({ Bucket: cloud.bucket, LifecycleConfiguration: { Rules: [...kept, ...ours] } }));
    } catch (err) {
      return problem(
        S,
        'lifecycle',
        `cannot put the lifecycle rules: ${firstLine(mapS3Error(err, cloud, 'PutBucketLifecycleConfiguration'))}`,
        `allow s3:PutLifecycleConfiguration on ${cloud.bucket}`,
      );
    }
    rules = [...kept, ...ours];
  }
  const { problems, missing } = lifecycleProblems(rules, cloud, opts.retentionDays);
  if (problems.length)
    return problem(S, 'lifecycle', problems.join('; '), 'remove those rules (or limit them to sessions/), then odoo-dr setup --apply-lifecycle');
  if (missing.length)
    return warning(
      S,
      'lifecycle',
      `rules ${missing.join(', ')} are not set: everything stays in STANDARD`,
      'odoo-dr setup --apply-lifecycle (IA 30 / Glacier 90 / Deep Archive 365 for sessions within DR_RETENTION_DAYS, IA 30 for packs)',
    );
  return rules.length
    ? ok(S, 'lifecycle', `${rules.length} rule(s), odoo-dr's included${opts.applyLifecycle ? ' (applied now)' : ''}`)
    : skipped(S, 'lifecycle', 'no rules needed');
}
