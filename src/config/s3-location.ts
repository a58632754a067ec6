/** DR_CLOUD_BUCKET: an S3 location `s3://bucket/prefix`, with AWS's bucket naming rules. */
import { printableValue } from './secrets';
import { custom, Refused } from './values';

const S3_BUCKET_RULES = 'S3 bucket names are 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit';

/** What is wrong with an S3 bucket name (AWS general-purpose bucket naming rules), or undefined. */
function s3BucketProblem(bucket: string): string | undefined {
  const problems: string[] = [];
  if (bucket.length < 3 || bucket.length > 63) problems.push(`has ${bucket.length} characters`);
  const bad = [...new Set(bucket.replace(/[a-z0-9.-]/g, ''))];
  if (bad.length) problems.push(`contains ${bad.map((c) => JSON.stringify(c)).join(', ')}`);
  if (bucket !== '' && (!/^[a-z0-9]/.test(bucket) || !/[a-z0-9]$/.test(bucket))) problems.push('does not start and end with a letter or digit');
  if (bucket.includes('..')) problems.push('has two dots in a row');
  if (/^\d+\.\d+\.\d+\.\d+$/.test(bucket)) problems.push('is formatted like an IP address');
  const reservedPrefix = ['xn--', 'sthree-', 'amzn-s3-demo-'].find((x) => bucket.startsWith(x));
  if (reservedPrefix) problems.push(`starts with the reserved prefix "${reservedPrefix}"`);
  const reservedSuffix = ['-s3alias', '--ol-s3', '.mrap', '--x-s3', '--table-s3'].find((x) => bucket.endsWith(x));
  if (reservedSuffix) problems.push(`ends with the reserved suffix "${reservedSuffix}"`);
  return problems.length ? problems.join(', ') : undefined;
}

/**
 * `s3://bucket/optional/prefix` → bucket and prefix (no leading or trailing slash). The prefix is a
 * folder-like key prefix: empty segments (`//`), `.` and `..` segments and control characters are
 * refused, since S3 keeps them literally and listings, the console and `aws s3 sync` disagree about them.
 */
export const s3Location = custom('empty or an S3 location like s3://bucket/prefix', (raw, name) => {
  if (raw === '') return null;
  const m = /^s3:\/\/([^/]*)(?:\/([\s\S]*))?$/.exec(raw);
  if (!m) return undefined;
  const bucket = m[1]!;
  const rest = m[2] ?? '';
  const problems: string[] = [];
  if (bucket === '') problems.push(`${name} has no bucket name, got ${printableValue(name, raw)} (expected s3://bucket/prefix)`);
  else {
    const problem = s3BucketProblem(bucket);
    if (problem) problems.push(`${name} bucket name ${JSON.stringify(bucket)} ${problem} (${S3_BUCKET_RULES})`);
  }
  const prefix = rest.endsWith('/') ? rest.slice(0, -1) : rest; // one trailing slash is harmless
  if (prefix !== '') {
    const segments = prefix.split('/');
    if (segments.includes('')) {
      problems.push(`${name} prefix ${JSON.stringify(rest)} has an empty segment (a leading "/" or "//"); write it without`);
    }
    const dots = [...new Set(segments.filter((x) => x === '.' || x === '..'))];
    if (dots.length) {
      problems.push(
        `${name} prefix ${JSON.stringify(rest)} has ${dots.map((d) => `a "${d}" segment`).join(' and ')}; S3 keys are not paths (the dots are kept literally), write the prefix without them`,
      );
    }
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(prefix))
      problems.push(`${name} prefix must not contain control characters (line breaks, NUL, tabs…), got ${printableValue(name, raw)}`);
  }
  return problems.length ? new Refused(problems) : { bucket, prefix };
});
