/** Which checks a session validation runs, and in which order, from the manifest and the request alone. */
import assert from 'node:assert/strict';
import type { Artifact, Manifest, TenantEntry } from '../../src/backup/manifest';
import { planSessionChecks, type PlannedCheck } from '../../src/validate/plan';

const SESSION = 'backup_20261126_000000_abcdef12';
const artifact = (p: string): Artifact => ({ path: `sessions/${SESSION}/${p}`, bytes: 1, sha256: '0'.repeat(64) });
const complete = (tenant: string): TenantEntry =>
  ({
    status: 'complete',
    durationMs: 1,
    database: { ...artifact(`${tenant}.dump.age`), pgDump: '15' },
    filestore: { index: artifact(`${tenant}.filestore.jsonl`), files: 0, bytes: 0 },
  }) as TenantEntry;
const manifest = (over: Partial<Manifest> = {}): Manifest =>
  ({
    session: SESSION,
    cloud: { bucket: 'b', prefix: 'p' },
    tenants: { acme: complete('acme'), beta: { status: 'failed', error: 'pg_dump died', durationMs: 1 } },
    globals: { ...artifact('globals.sql.age'), warnings: [] },
    ...over,
  }) as Manifest;

/** Short names: `read:<file>`, `cloud:<file>`, `verdict:<name>:<status>`, `age`. */
const names = (checks: PlannedCheck[]) =>
  checks.map((c) =>
    c.kind === 'age' ? 'age' : c.kind === 'verdict' ? `verdict:${c.result.name}:${c.result.status}` : `${c.copy}:${c.artifact.path.split('/').pop()}`,
  );

describe('validation: planSessionChecks', () => {
  it('a local copied session: failed tenants first, each artifact here then in the bucket, the age last', () => {
    const plan = planSessionChecks(manifest(), { session: SESSION }, { readFrom: 'local', bucket: true });
    assert.deepEqual(names(plan.checks), [
      'verdict:tenant:fail',
      'read:acme.dump.age',
      'cloud:acme.dump.age',
      'read:acme.filestore.jsonl',
      'cloud:acme.filestore.jsonl',
      'read:globals.sql.age',
      'cloud:globals.sql.age',
      'age',
    ]);
    assert.deepEqual(plan.tenants, ['acme']);
    const failed = plan.checks[0]!;
    assert.ok(failed.kind === 'verdict' && failed.result.tenant === 'beta' && /pg_dump died/.test(failed.result.message));
  });

  it('read from the bucket, or no bucket configured: no second copy to check', () => {
    const fromCloud = planSessionChecks(manifest(), { session: SESSION, tenant: 'acme' }, { readFrom: 'cloud', bucket: true });
    assert.deepEqual(names(fromCloud.checks), ['read:acme.dump.age', 'read:acme.filestore.jsonl', 'age']);
    const noBucket = planSessionChecks(manifest(), { session: SESSION, tenant: 'acme' }, { readFrom: 'local', bucket: false });
    assert.deepEqual(names(noBucket.checks), ['read:acme.dump.age', 'read:acme.filestore.jsonl', 'age']);
  });

  it('the cloud copy asked for but absent: a failed check per artifact, not a read', () => {
    const plan = planSessionChecks(manifest({ cloud: null }), { session: SESSION, tenant: 'acme', cloud: true }, { readFrom: 'local', bucket: true });
    assert.deepEqual(names(plan.checks), [
      'read:acme.dump.age',
      'verdict:artifact-cloud:fail',
      'read:acme.filestore.jsonl',
      'verdict:artifact-cloud:fail',
      'age',
    ]);
    const skipped = planSessionChecks(manifest(), { session: SESSION, tenant: 'acme', cloud: false }, { readFrom: 'local', bucket: true });
    assert.deepEqual(names(skipped.checks), ['read:acme.dump.age', 'read:acme.filestore.jsonl', 'age']);
  });

  it('one tenant: only its artifacts (no globals); a failed one is reported and not checked further; an absent one stops the plan', () => {
    const failed = planSessionChecks(manifest(), { session: SESSION, tenant: 'beta' }, { readFrom: 'local', bucket: true });
    assert.deepEqual(names(failed.checks), ['verdict:tenant:fail', 'age']);
    assert.deepEqual(failed.tenants, []);
    const absent = planSessionChecks(manifest(), { session: SESSION, tenant: 'gamma' }, { readFrom: 'local', bucket: true });
    assert.deepEqual(names(absent.checks), ['verdict:tenant:fail']);
    assert.deepEqual(absent.tenants, []);
    assert.ok(absent.checks[0]!.kind === 'verdict' && /tenant gamma is not in session/.test(absent.checks[0]!.result.message));
  });
});
