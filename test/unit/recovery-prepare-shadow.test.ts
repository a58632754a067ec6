/**
 * The recovery's shadow use case (src/recovery/prepare-shadow.ts) over a local session folder and a
 * fake ShadowDatabases port (no service): what it restores from, what it verifies, what it measures,
 * and that a shadow that does not verify is dropped.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Manifest } from '../../src/backup/manifest';
import { ArtifactCorruptedError, InvalidInputError } from '../../src/errors';
import type { Check } from '../../src/odoo/checks';
import type { ShadowDatabases, TenantFilestore } from '../../src/ports';
import { prepareShadow } from '../../src/recovery/prepare-shadow';
import { LocalSessionStore } from '../../src/sessions/local-store';

const SESSION = 'backup_20261126_000000_abcdef12';
const sha256 = (data: string) => createHash('sha256').update(data).digest('hex');

describe('recovery: prepareShadow', () => {
  let root: string;
  let manifest: Manifest;

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'odoo-dr-prepare-shadow-'));
    const dir = path.join(root, 'sessions', SESSION);
    await mkdir(dir, { recursive: true });
    const artifact = async (name: string, text: string) => {
      await writeFile(path.join(dir, name), text);
      return { path: `sessions/${SESSION}/${name}`, bytes: Buffer.byteLength(text), sha256: sha256(text) };
    };
    manifest = {
      session: SESSION,
      tenants: {
        acme: {
          status: 'complete',
          durationMs: 1,
          database: { ...(await artifact('acme.dump.zst.age', 'the dump, read by the port only')), pgDump: '15.4' },
          filestore: { index: await artifact('acme.filestore.jsonl', ''), files: 0, bytes: 1_000 },
          odoo: { uuid: 'u-1' },
        },
        beta: { status: 'failed', durationMs: 1, error: 'pg_dump died' },
      },
    } as unknown as Manifest;
  });
  after(() => rm(root, { recursive: true, force: true }));

  /** A ShadowDatabases that records each call; `verdict` is what verify finds, `problems` what restore reports. */
  function fakeDatabases(calls: string[], verdict: Check['status'] = 'pass', problems: string[] = []): ShadowDatabases {
    return {
      restore: (req) => {
        calls.push(`restore ${req.tenant} ${req.id} from=${req.filestoreFrom} pg=${req.dumpPgMajor} dump=${path.basename(req.encryptedDump)}`);
        return Promise.resolve({
          database: `${req.tenant}_dr_shadow_${req.id}`,
          filestoreDir: '/shadow',
          databaseMs: 1,
          filestoreMs: 1,
          files: 0,
          bytes: 0,
          problems,
        });
      },
      verify: (req) => {
        calls.push(`verify ${req.database} uuid=${String((req.expected as { uuid?: string }).uuid)}`);
        return Promise.resolve([{ name: 'identity', status: verdict, message: verdict === 'pass' ? 'same database.uuid' : 'neutralized' }]);
      },
      sizeOf: (database) => {
        calls.push(`sizeOf ${database}`);
        return Promise.resolve(50_000);
      },
      drop: (tenant, id) => {
        calls.push(`drop ${tenant} ${id}`);
        return Promise.resolve();
      },
    };
  }

  const filestore = (calls: string[]): TenantFilestore => ({
    ensureRoot: () => {
      calls.push('ensureRoot');
      return Promise.resolve();
    },
    shadowDir: (tenant, id) => path.join(root, `.${tenant}.dr-shadow-${id}`),
    ownerOf: () => Promise.resolve(undefined),
  });

  const request = (calls: string[], databases: ShadowDatabases, over: Partial<Parameters<typeof prepareShadow>[0]> = {}) => ({
    store: new LocalSessionStore(root),
    manifest,
    databases,
    filestore: filestore(calls),
    tenant: 'acme',
    id: 'r1',
    scope: 'both' as const,
    identity: 'AGE-SECRET-KEY-not-read-by-the-fakes',
    mirror: path.join(root, 'mirror'),
    ...over,
  });

  it('restores the session into the shadow, verifies it against the manifest, and measures it with its files', async () => {
    const calls: string[] = [];
    const result = await prepareShadow(request(calls, fakeDatabases(calls)));
    assert.deepEqual(calls, [
      'ensureRoot',
      'restore acme r1 from=backup pg=15 dump=acme.dump.zst.age',
      'verify acme_dr_shadow_r1 uuid=u-1',
      'sizeOf acme_dr_shadow_r1',
    ]);
    assert.equal(result.bytes, 51_000);
    assert.deepEqual(
      result.checks.map((c) => c.status),
      ['pass'],
    );
  });

  it('database scope keeps today’s files: the shadow folder is linked from the live one', async () => {
    const calls: string[] = [];
    await prepareShadow(request(calls, fakeDatabases(calls), { scope: 'database' }));
    assert.ok(calls.includes('restore acme r1 from=live pg=15 dump=acme.dump.zst.age'), calls.join('\n'));
  });

  it('a shadow that does not verify (or lost files) is dropped, and the failure names the check', async () => {
    for (const [verdict, problems, why] of [
      ['fail', [], /identity: neutralized/],
      ['pass', ['ab/abcd: missing in pack p1'], /ab\/abcd: missing in pack p1/],
    ] as const) {
      const calls: string[] = [];
      const err = await prepareShadow(request(calls, fakeDatabases(calls, verdict, [...problems]))).catch((e: unknown) => e);
      assert.ok(err instanceof ArtifactCorruptedError, String(err));
      assert.match(err.message, /the shadow copy of acme does not verify/);
      assert.match(err.message, why);
      assert.equal(calls.at(-1), 'drop acme r1');
    }
  });

  it('refuses a tenant the session has no complete backup of, touching nothing', async () => {
    const calls: string[] = [];
    const err = await prepareShadow(request(calls, fakeDatabases(calls), { tenant: 'beta' })).catch((e: unknown) => e);
    assert.ok(err instanceof InvalidInputError, String(err));
    assert.match(err.message, /has no complete backup of beta/);
    assert.deepEqual(calls, []);
  });
});
