/**
 * Bucket prefixes of tests: each test that copies to the bucket gets a prefix of its own in the local
 * stack's bucket, and every prefix handed out is emptied at the end of the run (mocha root hooks), so
 * that runs on a CI machine that keeps its stack do not pile up gigabytes of test sessions.
 */
import { deleteObjects, listObjects } from '../../src/storage/s3';
import { stackConfig, uniqueSuffix } from './config';

const handedOut = new Set<string>();

/** `s3://<stack bucket>/<name>-<random>` (or `<name>` as given when `exact`), emptied at the end of the run. */
export function testBucketUrl(name: string, opts: { exact?: boolean } = {}): string {
  const prefix = opts.exact ? name : `${name}-${uniqueSuffix()}`;
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(prefix)) throw new Error(`test bucket prefix "${prefix}" must be one plain path segment`);
  handedOut.add(prefix);
  return `s3://${stackBucket()}/${prefix}`;
}

function stackBucket(): string {
  const cloud = stackConfig().cloud;
  if (!cloud) throw new Error('the local stack configuration has no bucket (DR_CLOUD_BUCKET)');
  return cloud.bucket;
}

/** Empties every prefix handed out by this process; a failure is printed, never thrown (the run's result stands). */
export async function emptyTestPrefixes(): Promise<void> {
  const prefixes = [...handedOut];
  handedOut.clear();
  if (prefixes.length === 0) return;
  const base = stackConfig().cloud!;
  for (const prefix of prefixes) {
    const cloud = { ...base, prefix };
    try {
      const keys: string[] = [];
      for await (const o of listObjects(cloud, `${prefix}/`)) keys.push(o.key);
      if (keys.length) await deleteObjects(cloud, keys);
    } catch (err) {
      console.error(`emptying s3://${base.bucket}/${prefix}: ${(err as Error).message}`);
    }
  }
}
