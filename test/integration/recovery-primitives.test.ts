/**
 * Recovery primitives on the real stack: real backups (dumpDatabase + backupFilestore) of the real
 * Odoo 17 tenant and generated ones restored into shadows, verified, swapped in by renames, swapped
 * back exactly, with a crash simulated after every sub-step; a bystander tenant is compared
 * byte for byte throughout. Also: retention of pre-recovery copies, Odoo service commands, the
 * health check, and the configuration archive restore.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { archiveConfiguration } from '../../src/backup/cluster';
import { dumpDatabase, type DumpResult } from '../../src/backup/database';
import { backupFilestore } from '../../src/backup/filestore';
import { localPath, rel } from '../../src/backup/layout';
import type { DrConfig } from '../../src/config';
import { encryptFile, readIdentity, recipientsFor } from '../../src/crypto/age';
import { ArtifactCorruptedError, InvalidInputError, ServiceCommandError } from '../../src/errors';
import { findClientTools, type PgTools } from '../../src/pgtools';
import { quoteIdent, serverVersion, withClient } from '../../src/postgres';
import { restoreConfigArchive } from '../../src/recovery/config-files';
import { filestorePreRecoveryDir, filestoreShadowDir, preRecoveryName, recoveryStamp, shadowName } from '../../src/recovery/names';
import { checkHealth, runServiceCommand } from '../../src/recovery/odoo-service';
import { dropShadow, restoreShadow, verifyShadow } from '../../src/recovery/shadow';
import { dropPreRecovery, findInterruptedSwaps, undoInterruptedSwap } from '../../src/recovery/pre-recovery';
import { SWAP_BACK_STEPS, SWAP_IN_STEPS, swapBack, swapIn } from '../../src/recovery/swap';
import { parsePreRecoveryMarker, swapState, type SwapPlan } from '../../src/recovery/swap-state';
import { parseScratchMarker, readScratchMarker } from '../../src/restore/scratch';
import { createTenant, dropTenant } from '../fixtures/odoo-tenants';
import { loadRealOdooTenant } from '../fixtures/real-odoo';
import { stackConfig, uniqueSuffix } from '../helpers/config';
import { adminQuery, dropDatabase, adminConnection } from '../helpers/pg';
import { rejection } from '../helpers/assert';

const CHECKSUM_TABLES = ['res_partner', 'res_users', 'ir_attachment', 'ir_config_parameter', 'ir_module_module', 'account_move', 'account_move_line'];

interface DbMeta {
  owner: string;
  allowConn: boolean;
  comment: string | null;
}

async function dbMeta(name: string): Promise<DbMeta | undefined> {
  const rows = (await adminQuery(
    "SELECT pg_get_userbyid(datdba) AS owner, datallowconn AS allow, shobj_description(oid, 'pg_database') AS c FROM pg_database WHERE datname = $1",
    [name],
  )) as Array<{ owner: string; allow: boolean; c: string | null }>;
  // A shadow's marker gets a new createdAt when swapBack marks the recovered copy as the shadow again.
  const marker = parseScratchMarker(rows[0]?.c);
  const comment = marker ? `scratch:${JSON.stringify({ ...marker, createdAt: '*' })}` : (rows[0]?.c ?? null);
  return rows[0] && { owner: rows[0].owner, allowConn: rows[0].allow, comment };
}

/** Per table: row count and md5 of every row in id order; connections allowed temporarily if needed. */
async function contentChecksum(config: DrConfig, db: string): Promise<Record<string, string>> {
  const meta = await dbMeta(db);
  assert.ok(meta, `database ${db} exists`);
  if (!meta.allowConn) await adminQuery(`ALTER DATABASE ${quoteIdent(db)} ALLOW_CONNECTIONS true`);
  try {
    return await withClient(config.postgres, db, async (c) => {
      const out: Record<string, string> = {};
      for (const t of CHECKSUM_TABLES) {
        const exists = (await c.query<{ r: string | null }>('SELECT to_regclass($1) AS r', [`public.${t}`])).rows[0]!.r;
        if (!exists) continue;
        const { rows } = await c.query<{ n: string; h: string | null }>(
          `SELECT count(*) AS n, md5(string_agg(t::text, '' ORDER BY id)) AS h FROM public.${t} t`,
        );
        out[t] = `${rows[0]!.n}:${rows[0]!.h}`;
      }
      return out;
    });
  } finally {
    if (!meta.allowConn) await adminQuery(`ALTER DATABASE ${quoteIdent(db)} ALLOW_CONNECTIONS false`);
  }
}

/** Relative path → sha1 of every file under `dir` (undefined if the folder does not exist). */
function filestoreSnapshot(dir: string): Record<string, string> | undefined {
  if (!existsSync(dir)) return undefined;
  const out: Record<string, string> = {};
  const walk = (sub: string) => {
    for (const e of readdirSync(path.join(dir, sub), { withFileTypes: true })) {
      const r = sub ? `${sub}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else
        out[r] = createHash('sha1')
          .update(readFileSync(path.join(dir, r)))
          .digest('hex');
    }
  };
  walk('');
  return out;
}

interface TenantSnapshot {
  meta: DbMeta | undefined;
  content: Record<string, string> | undefined;
  files: Record<string, string> | undefined;
}

describe('recovery primitives (real PostgreSQL, real backups)', function () {
  this.timeout(300_000);
  const s = uniqueSuffix();
  const work = mkdtempSync(path.join(tmpdir(), 'odoo-dr-recovery-'));
  const backupDir = path.join(work, 'backups');
  const dataDir = path.join(work, 'odoo-data');
  const configDir = path.join(work, 'odoo-config');
  const otherConfigDir = path.join(work, 'other-config');
  const overrides = { DR_BACKUP_DIR: backupDir, DR_LOG_DIR: path.join(work, 'logs'), ODOO_DATA_DIR: dataDir, DR_CONFIG_PATHS: configDir };
  const config = stackConfig(overrides);
  const session = `backup_20260101_000000_rp${s}`;
  const real = `rp-real-${s}`;
  const gen = `rp-gen-${s}`;
  const other = `rp-other-${s}`;
  const gone = `rp-gone-${s}`;
  const extraDbs: string[] = [];
  let identity = '';
  let tools: PgTools;
  let recipients: string[] = [];
  const dumps: Record<string, DumpResult> = {};
  const downtimes: number[] = [];
  const stamp = recoveryStamp(new Date());

  const tenantDir = (t: string) => path.join(config.odoo.filestoreRoot, t);
  const planFor = (tenant: string, id: string, existed = true, dirExisted = true): SwapPlan => ({
    tenant,
    shadowDb: shadowName(tenant, id),
    shadowDir: filestoreShadowDir(config, tenant, id),
    preRecoveryDb: preRecoveryName(tenant, stamp),
    preRecoveryDir: filestorePreRecoveryDir(config, tenant, stamp),
    tenantExisted: existed,
    tenantDirExisted: dirExisted,
  });
  const shadowOf = (tenant: string, id: string) =>
    restoreShadow({
      config,
      tenant,
      id,
      encryptedDump: localPath(backupDir, rel.database(session, tenant)),
      indexFile: localPath(backupDir, rel.filestoreIndex(session, tenant)),
      identity,
      dumpPgMajor: Number(dumps[tenant]!.artifact.pgDump.split('.')[0]),
    });
  const snapshot = async (db: string, dir: string): Promise<TenantSnapshot> => {
    const meta = await dbMeta(db);
    return { meta, content: meta ? await contentChecksum(config, db) : undefined, files: filestoreSnapshot(dir) };
  };
  let otherBefore: TenantSnapshot;
  const assertBystanderUnchanged = async () => {
    assert.deepEqual(await snapshot(other, tenantDir(other)), otherBefore, 'the other tenant is unchanged');
  };

  before(async function () {
    this.timeout(600_000);
    mkdirSync(backupDir, { recursive: true });
    await loadRealOdooTenant(adminConnection(config), dataDir, { name: real });
    await createTenant(adminConnection(config), dataDir, { name: gen, moveLines: 3_000, files: 12, fileSize: 4096 });
    await createTenant(adminConnection(config), dataDir, { name: other, moveLines: 500, files: 5 });
    await createTenant(adminConnection(config), dataDir, { name: gone, moveLines: 200, files: 4 });
    identity = await readIdentity(config.encryption.identityFile!);
    tools = await findClientTools((await serverVersion(config.postgres)).major);
    recipients = await recipientsFor(config);
    for (const tenant of [real, gen, gone]) {
      dumps[tenant] = await dumpDatabase({ config, tools, session, tenant, recipients });
      await backupFilestore({ config, session, tenant, recipients, cloud: false });
    }
    // The live tenants move on after the backup: the recovered copy must differ from them.
    for (const tenant of [real, gen]) {
      await withClient(config.postgres, tenant, async (c) => {
        await c.query("UPDATE res_partner SET name = name || ' (after backup)' WHERE id IN (SELECT id FROM res_partner ORDER BY id DESC LIMIT 2)");
        await c.query("INSERT INTO ir_config_parameter (key, value) VALUES ('odoo_dr.test.after_backup', 'yes')");
      });
      const dir = tenantDir(tenant);
      mkdirSync(path.join(dir, 'ff'), { recursive: true });
      writeFileSync(path.join(dir, 'ff', 'f'.repeat(40)), 'written after the backup');
    }
    await adminQuery(`COMMENT ON DATABASE ${quoteIdent(gen)} IS 'an operator comment'`);
    await dropTenant(adminConnection(config), dataDir, gone);
    otherBefore = await snapshot(other, tenantDir(other));
  });

  after(async function () {
    this.timeout(120_000);
    const all = (await adminQuery('SELECT datname FROM pg_database WHERE datname LIKE $1', [`rp-%${s}%`])) as Array<{ datname: string }>;
    for (const db of [...all.map((r) => r.datname), ...extraDbs]) await dropDatabase(db).catch(() => undefined);
    for (const t of [real, gen, other, gone]) await dropTenant(adminConnection(config), dataDir, t).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
    if (downtimes.length) {
      const sorted = [...downtimes].sort((a, b) => a - b);
      console.log(`      swap downtime: ${sorted.length} full swaps, median ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted[sorted.length - 1]} ms`);
    }
  });

  it("a restored shadow filestore takes the owner and modes of the tenant's filestore it replaces", async () => {
    assert.equal(process.getuid?.(), 0, 'this test changes file owners: it runs as root (as CI and the developer machines do)');
    const tenant = gen;
    const id = `own${s}`;
    const live = tenantDir(tenant);
    // Odoo runs as its own user (uid 4242 here); its folders are 0750.
    const chownR = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        chownSync(p, 4242, 4242);
        if (e.isDirectory()) chownR(p);
      }
    };
    chownSync(live, 4242, 4242);
    chmodSync(live, 0o750);
    chownR(live);
    try {
      const r = await shadowOf(tenant, id);
      const files = readdirSync(r.filestoreDir, { recursive: true, withFileTypes: true });
      assert.ok(files.length > 0);
      for (const e of [{ p: r.filestoreDir, dir: true }, ...files.map((f) => ({ p: path.join(f.parentPath, f.name), dir: f.isDirectory() }))]) {
        const st = statSync(e.p);
        assert.deepEqual([st.uid, st.gid], [4242, 4242], `${e.p} owned by the tenant's user`);
        assert.equal(st.mode & 0o7777, e.dir ? 0o750 : 0o640, `${e.p} mode`);
      }
    } finally {
      await dropShadow(config, tenant, id);
      chownSync(live, 0, 0);
      chownR(live);
    }
  });

  it('builds names of at most 63 bytes, distinct for long tenants sharing a prefix', () => {
    const a = `${'x'.repeat(60)}a`;
    const b = `${'x'.repeat(60)}b`;
    for (const n of [shadowName(a, 'abc123'), shadowName(b, 'abc123'), preRecoveryName(a, stamp), preRecoveryName(b, stamp)]) {
      assert.ok(Buffer.byteLength(n) <= 63, n);
    }
    assert.notEqual(shadowName(a, 'abc123'), shadowName(b, 'abc123'));
    assert.notEqual(preRecoveryName(a, stamp), preRecoveryName(b, stamp));
    assert.equal(shadowName('acme', 'r1'), 'acme_dr_shadow_r1');
    assert.equal(preRecoveryName('acme', '20260102030405'), 'acme_pre_recovery_20260102030405');
    assert.equal(filestoreShadowDir(config, 'acme', 'r1'), path.join(config.odoo.filestoreRoot, '.acme.dr-shadow-r1'));
    assert.throws(() => shadowName('acme', 'bad-id'), InvalidInputError);
    assert.throws(() => preRecoveryName('acme', '2026'), InvalidInputError);
    assert.throws(() => shadowName('../etc', 'r1'), InvalidInputError);
  });

  for (const which of ['real', 'generated'] as const) {
    it(`restores the ${which} tenant into a DR-owned, marked shadow; verifyShadow passes (uuid kept, not neutralized); swapIn then swapBack restore exactly`, async () => {
      const tenant = which === 'real' ? real : gen;
      const id = `m${s}`;
      const plan = planFor(tenant, id);
      const before = await snapshot(tenant, tenantDir(tenant));

      const r = await shadowOf(tenant, id);
      assert.equal(r.database, plan.shadowDb);
      assert.equal(r.filestoreDir, plan.shadowDir);
      assert.deepEqual(r.problems, []);
      assert.equal((await dbMeta(plan.shadowDb))!.owner, config.postgres.user, 'no Odoo process lists the shadow');
      const marker = await readScratchMarker(config, plan.shadowDb);
      assert.equal(marker?.purpose, 'recovery-shadow');
      assert.equal(marker?.tenant, tenant);
      assert.ok(!existsSync(`${plan.shadowDir}.partial`));

      const checks = await verifyShadow({ config, database: plan.shadowDb, filestoreDir: plan.shadowDir, expected: dumps[tenant]!.facts });
      assert.deepEqual(
        checks.filter((c) => c.status !== 'pass'),
        [],
        JSON.stringify(checks, null, 1),
      );
      assert.deepEqual(
        checks.map((c) => c.name),
        ['modules', 'row-counts', 'attachments', 'admin-user', 'identity', 'complete'],
      );
      if (which === 'real') assert.ok(dumps[tenant]!.facts.databaseUuid, 'the real tenant has a database.uuid');
      // A wrong uuid fails.
      const wrong = await verifyShadow({
        config,
        database: plan.shadowDb,
        filestoreDir: plan.shadowDir,
        expected: { ...dumps[tenant]!.facts, databaseUuid: '00000000-0000-0000-0000-000000000000' },
      });
      assert.equal(wrong.find((c) => c.name === 'identity')?.status, 'fail');

      const shadow = await snapshot(plan.shadowDb, plan.shadowDir);
      assert.notDeepEqual(shadow.content, before.content, 'the live tenant moved on since the backup');
      assert.equal(await swapState(config, plan), 'before');

      const { downtimeMs } = await swapIn(config, plan);
      downtimes.push(downtimeMs);
      assert.equal(await swapState(config, plan), 'swapped');
      // The tenant now has the backup's content, owned by Odoo, connectable, with its own comment.
      const now = await snapshot(tenant, tenantDir(tenant));
      assert.deepEqual(now.content, shadow.content);
      assert.deepEqual(now.files, shadow.files);
      assert.deepEqual(now.meta, { owner: config.odoo.dbUser, allowConn: true, comment: before.meta!.comment });
      await withClient(config.postgres, tenant, async (c) => {
        for (const [table, n] of Object.entries(dumps[tenant]!.facts.tables)) {
          assert.equal(Number((await c.query<{ n: string }>(`SELECT count(*) AS n FROM public.${table}`)).rows[0]!.n), n, table);
        }
      });
      // The old tenant is kept under its pre-recovery name, invisible to Odoo, marked for retention.
      const pre = await snapshot(plan.preRecoveryDb, plan.preRecoveryDir);
      assert.deepEqual(pre.content, before.content);
      assert.deepEqual(pre.files, before.files);
      assert.equal(pre.meta!.allowConn, false);
      const pm = parsePreRecoveryMarker(pre.meta!.comment);
      assert.equal(pm?.database, plan.preRecoveryDb);
      assert.equal(pm?.tenant, tenant);
      assert.equal(await dbMeta(plan.shadowDb), undefined);
      assert.ok(!existsSync(plan.shadowDir));
      const health = await checkHealth(config, [tenant]);
      assert.equal(health.find((h) => h.name === `tenant:${tenant}`)?.status, 'pass', JSON.stringify(health));

      // Idempotent: swapIn again changes nothing.
      await swapIn(config, plan);
      assert.deepEqual(await snapshot(tenant, tenantDir(tenant)), now);

      await swapBack(config, plan);
      assert.deepEqual(await snapshot(tenant, tenantDir(tenant)), before, 'the tenant is exactly as before');
      assert.deepEqual(await snapshot(plan.shadowDb, plan.shadowDir), shadow, 'the recovered copy is the shadow again');
      assert.equal(await dbMeta(plan.preRecoveryDb), undefined);
      assert.ok(!existsSync(plan.preRecoveryDir));
      assert.equal(await swapState(config, plan), 'before');
      await swapBack(config, plan); // idempotent
      assert.deepEqual(await snapshot(tenant, tenantDir(tenant)), before);

      // Redoing the shadow (same id) replaces it.
      if (which === 'generated') {
        await shadowOf(tenant, id);
        assert.deepEqual(await snapshot(plan.shadowDb, plan.shadowDir), shadow);
      }
      await dropShadow(config, tenant, id);
      await dropShadow(config, tenant, id); // idempotent
      assert.equal(await dbMeta(plan.shadowDb), undefined);
      assert.ok(!existsSync(plan.shadowDir));
      await assertBystanderUnchanged();
    });
  }

  it('after a crash following any sub-step of swapIn, swapIn again completes and swapBack restores exactly', async () => {
    const id = `c${s}`;
    const plan = planFor(gen, id);
    const before = await snapshot(gen, tenantDir(gen));
    await shadowOf(gen, id);
    const shadow = await snapshot(plan.shadowDb, plan.shadowDir);
    let swapped: TenantSnapshot | undefined;
    for (const step of SWAP_IN_STEPS) {
      // crash, then swapIn again
      await swapIn(config, plan, { stopAfter: step });
      assert.equal(await swapState(config, plan), step === 'move-shadow-filestore' ? 'swapped' : 'partial', `state after ${step}`);
      downtimes.push((await swapIn(config, plan)).downtimeMs);
      assert.equal(await swapState(config, plan), 'swapped', `swapIn after a crash after ${step}`);
      const now = await snapshot(gen, tenantDir(gen));
      assert.deepEqual(now.content, shadow.content, step);
      assert.deepEqual(now.files, shadow.files, step);
      if (swapped) assert.deepEqual(now, swapped, step);
      swapped = now;
      await swapBack(config, plan);
      assert.deepEqual(await snapshot(gen, tenantDir(gen)), before, `swapBack after swapIn resumed after ${step}`);
      assert.equal(await swapState(config, plan), 'before');

      // crash, then swapBack
      await swapIn(config, plan, { stopAfter: step });
      await swapBack(config, plan);
      assert.deepEqual(await snapshot(gen, tenantDir(gen)), before, `swapBack after a crash after ${step}`);
      assert.deepEqual(await snapshot(plan.shadowDb, plan.shadowDir), shadow, `shadow after ${step}`);
      assert.equal(await swapState(config, plan), 'before');
    }
    // A crash inside swapBack: swapBack again.
    for (const step of SWAP_BACK_STEPS) {
      await swapIn(config, plan);
      await swapBack(config, plan, { stopAfter: step });
      await swapBack(config, plan);
      assert.deepEqual(await snapshot(gen, tenantDir(gen)), before, `swapBack resumed after ${step}`);
      assert.deepEqual(await snapshot(plan.shadowDb, plan.shadowDir), shadow, `shadow after swapBack resumed after ${step}`);
    }
    await dropShadow(config, gen, id);
    await assertBystanderUnchanged();
  });

  it('swapBack with PostgreSQL unreachable changes nothing: the tenant stays whole as recovered (database and files), and a later swapBack restores exactly', async () => {
    const id = `u${s}`;
    const plan = planFor(gen, id);
    const before = await snapshot(gen, tenantDir(gen));
    await shadowOf(gen, id);
    await swapIn(config, plan);
    const recovered = await snapshot(gen, tenantDir(gen));
    // A port nobody listens on: every database step fails as it does while PostgreSQL restarts.
    const down: DrConfig = { ...config, postgres: { ...config.postgres, host: '127.0.0.1', port: 1 } };
    const err = await rejection(swapBack(down, plan));
    assert.match(String(err), /ECONNREFUSED|connect/i);
    assert.deepEqual(await snapshot(gen, tenantDir(gen)), recovered, 'no folder moved before the database steps succeed');
    assert.equal(await swapState(config, plan), 'swapped');
    await swapBack(config, plan);
    assert.deepEqual(await snapshot(gen, tenantDir(gen)), before);
    await dropShadow(config, gen, id);
    await assertBystanderUnchanged();
  });

  it('a swap interrupted for good (its workflow gone) is found from its markers and undone: the tenant exactly as before, whatever the step', async () => {
    const id = `i${s}`;
    const plan = planFor(gen, id);
    const before = await snapshot(gen, tenantDir(gen));
    await shadowOf(gen, id);
    const shadow = await snapshot(plan.shadowDb, plan.shadowDir);
    const recoveredDir = path.join(config.odoo.filestoreRoot, `.${gen}.recovered-${stamp}`);
    const cases: Array<[string, () => Promise<unknown>]> = [
      ...(['mark-tenant', 'fence-tenant', 'rename-tenant', 'fence-shadow'] as const).map((step): [string, () => Promise<unknown>] => [
        `swapIn stopped after ${step}`,
        () => swapIn(config, plan, { stopAfter: step }),
      ]),
      ...(['rename-back-shadow', 'open-shadow', 'rename-back-tenant', 'unmove-shadow-filestore', 'unmove-filestore'] as const).map(
        (step): [string, () => Promise<unknown>] => [
          `swapBack stopped after ${step}`,
          async () => {
            await swapIn(config, plan);
            await swapBack(config, plan, { stopAfter: step });
          },
        ],
      ),
    ];
    assert.deepEqual(
      (await findInterruptedSwaps(config)).filter((x) => x.tenant === gen),
      [],
      'nothing interrupted before',
    );
    for (const [what, interrupt] of cases) {
      await interrupt();
      const found = (await findInterruptedSwaps(config)).filter((x) => x.tenant === gen);
      assert.equal(found.length, 1, `${what}: found ${JSON.stringify(found)}`);
      assert.match((await undoInterruptedSwap(config, found[0]!)) ?? '', /interrupted recovery undone/, what);
      assert.deepEqual(await snapshot(gen, tenantDir(gen)), before, `${what}: the tenant is exactly as before`);
      assert.deepEqual(
        (await findInterruptedSwaps(config)).filter((x) => x.tenant === gen),
        [],
        `${what}: nothing left to undo`,
      );
      // The recovered files were kept aside; make them the shadow's again for the next case.
      if (existsSync(recoveredDir)) execFileSync('mv', [recoveredDir, plan.shadowDir]);
      // A shadow fenced by the interrupted swapIn stays fenced (dropped next, or fenced again by a swapIn).
      await adminQuery(`ALTER DATABASE ${quoteIdent(plan.shadowDb)} ALLOW_CONNECTIONS true`);
      assert.deepEqual(await snapshot(plan.shadowDb, plan.shadowDir), shadow, `${what}: the shadow is intact`);
    }
    // A completed swap is not interrupted: never undone.
    await swapIn(config, plan);
    assert.deepEqual(
      (await findInterruptedSwaps(config)).filter((x) => x.tenant === gen),
      [],
    );
    // Nor once the recovered tenant is gone (dropped on purpose; here renamed out of the way): its
    // pre-recovery copy must not come back under the name at the next worker start.
    await adminQuery(`ALTER DATABASE ${quoteIdent(gen)} RENAME TO ${quoteIdent(`${gen}_away`)}`);
    assert.deepEqual(
      (await findInterruptedSwaps(config)).filter((x) => x.tenant === gen),
      [],
      'a finished recovery of a since-dropped tenant is not an interrupted swap',
    );
    await adminQuery(`ALTER DATABASE ${quoteIdent(`${gen}_away`)} RENAME TO ${quoteIdent(gen)}`);
    await swapBack(config, plan);
    await dropShadow(config, gen, id);
    assert.deepEqual(await snapshot(gen, tenantDir(gen)), before);
    await assertBystanderUnchanged();
  });

  it('a tenant that no longer exists is swapped in directly under its name, and swapped back to nothing', async () => {
    const id = `g${s}`;
    assert.equal(await dbMeta(gone), undefined);
    const plan = planFor(gone, id, false, false);
    await shadowOf(gone, id);
    const checks = await verifyShadow({ config, database: plan.shadowDb, filestoreDir: plan.shadowDir, expected: dumps[gone]!.facts });
    assert.deepEqual(
      checks.filter((c) => c.status !== 'pass'),
      [],
    );
    const shadow = await snapshot(plan.shadowDb, plan.shadowDir);
    for (const step of [...SWAP_IN_STEPS, undefined]) {
      await swapIn(config, plan, step ? { stopAfter: step } : {});
      await swapIn(config, plan);
      assert.equal(await swapState(config, plan), 'swapped');
      const now = await snapshot(gone, tenantDir(gone));
      assert.deepEqual(now.content, shadow.content);
      assert.deepEqual(now.files, shadow.files);
      assert.deepEqual(now.meta, { owner: config.odoo.dbUser, allowConn: true, comment: null });
      assert.equal(await dbMeta(plan.preRecoveryDb), undefined);
      assert.ok(!existsSync(plan.preRecoveryDir));
      await swapBack(config, plan);
      assert.equal(await dbMeta(gone), undefined);
      assert.ok(!existsSync(tenantDir(gone)));
      assert.deepEqual(await snapshot(plan.shadowDb, plan.shadowDir), shadow);
    }
    // A database of that name appearing meanwhile is never replaced.
    await adminQuery(`CREATE DATABASE ${quoteIdent(gone)} OWNER odoo TEMPLATE template0`);
    const err = await rejection(swapIn(config, plan));
    assert.ok(err instanceof InvalidInputError, String(err));
    assert.match(err.message, /appeared/);
    await dropDatabase(gone);
    await dropShadow(config, gone, id);
    await assertBystanderUnchanged();
  });

  it('dropShadow and dropPreRecovery refuse databases they did not mark; retention drops only old marked copies', async () => {
    // An unmarked database under a shadow's name.
    const fake = shadowName(other, `u${s}`);
    extraDbs.push(fake);
    await adminQuery(`CREATE DATABASE ${quoteIdent(fake)} OWNER odoo TEMPLATE template0`);
    const err = await rejection(dropShadow(config, other, `u${s}`));
    assert.ok(err instanceof InvalidInputError);
    assert.match(err.message, /not marked/);
    assert.ok(await dbMeta(fake));
    // A swap leaves a pre-recovery copy; an unmarked database with a pre-recovery name is never dropped.
    const id = `r${s}`;
    const plan = planFor(gen, id);
    const unmarked = preRecoveryName(gen, '20000101000000');
    extraDbs.push(unmarked);
    await adminQuery(`CREATE DATABASE ${quoteIdent(unmarked)} OWNER odoo TEMPLATE template0`);
    await shadowOf(gen, id);
    await swapIn(config, plan);
    const now = new Date();
    assert.deepEqual(await dropPreRecovery(config, gen, 7, now), [], 'too young');
    assert.deepEqual(await dropPreRecovery(config, other, 0, new Date(now.getTime() + 8 * 86_400_000)), [], 'another tenant');
    const removed = await dropPreRecovery(config, gen, 7, new Date(now.getTime() + 8 * 86_400_000));
    assert.deepEqual(removed.sort(), [plan.preRecoveryDb, plan.preRecoveryDir].sort());
    assert.equal(await dbMeta(plan.preRecoveryDb), undefined);
    assert.ok(!existsSync(plan.preRecoveryDir));
    assert.ok(await dbMeta(unmarked), 'the unmarked database is still there');
    assert.ok(await dbMeta(gen), 'the (recovered) tenant is still there');
    assert.ok(existsSync(tenantDir(gen)));
    await assertBystanderUnchanged();
  });

  it('runServiceCommand: not configured, success, failure and timeout name the command and its output', async () => {
    assert.deepEqual(await runServiceCommand(undefined, 'stop'), { ran: false, output: '', durationMs: 0 });
    const ok = await runServiceCommand('echo stopped; echo warn >&2', 'stop');
    assert.equal(ok.ran, true);
    assert.match(ok.output, /stopped/);
    assert.match(ok.output, /warn/);
    const failed = await rejection(runServiceCommand('echo cannot reach systemd >&2; exit 3', 'start'));
    assert.ok(failed instanceof ServiceCommandError);
    assert.match(failed.message, /DR_ODOO_START_CMD/);
    assert.match(failed.message, /exit 3/);
    assert.match(failed.message, /exited with code 3/);
    assert.match(failed.message, /cannot reach systemd/);
    const t0 = Date.now();
    const slow = await rejection(runServiceCommand('echo waiting; sleep 30', 'stop', { timeoutMs: 300 }));
    assert.ok(slow instanceof ServiceCommandError);
    assert.match(slow.message, /DR_ODOO_STOP_CMD/);
    assert.match(slow.message, /sleep 30/);
    assert.match(slow.message, /did not finish within/);
    assert.match(slow.message, /waiting/);
    assert.ok(Date.now() - t0 < 10_000, 'the command group was killed');
  });

  it('runServiceCommand: a start command that leaves a daemon holding its stdout resolves on its own exit, and the daemon lives on', async () => {
    const pidFile = path.join(work, 'daemon.pid');
    // As an init script or `odoo-bin … &` does: the daemon inherits stdout and outlives the command.
    const started = await runServiceCommand(`sh -c 'echo daemon up; exec sleep 60' & echo $! > ${pidFile}; echo started`, 'start', {
      timeoutMs: 20_000,
      outputFile: path.join(work, 'odoo-start.out'),
    });
    assert.equal(started.ran, true);
    assert.match(started.output, /started/);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    assert.doesNotThrow(() => process.kill(pid, 0), 'the daemon it started is not killed');
    process.kill(pid, 'SIGKILL');
  });

  it('checkHealth: health URL pass, HTTP 500, JSON status fail, unreachable; a tenant that is missing or hidden from Odoo fails', async () => {
    const server = http.createServer((req, res) => {
      if (req.url === '/ok') res.writeHead(200, { 'content-type': 'application/json' }).end('{"status": "pass"}');
      else if (req.url === '/bad') res.writeHead(500).end('Internal Server Error');
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{"status": "fail"}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const at = (p: string) => stackConfig({ ...overrides, DR_ODOO_HEALTH_URL: `http://127.0.0.1:${port}${p}` });
      const missing = `rp-missing-${s}`;
      const pass = await checkHealth(at('/ok'), [other, missing]);
      assert.deepEqual(
        pass.map((h) => [h.name, h.status]),
        [
          ['odoo-http', 'pass'],
          [`tenant:${other}`, 'pass'],
          [`tenant:${missing}`, 'fail'],
        ],
      );
      assert.match(pass[2]!.message, /does not exist/);
      assert.equal((await checkHealth(at('/bad'), []))[0]!.status, 'fail');
      assert.match((await checkHealth(at('/bad'), []))[0]!.message, /HTTP 500/);
      assert.equal((await checkHealth(at('/json-fail'), []))[0]!.status, 'fail');
      assert.equal((await checkHealth(config, []))[0]!.status, 'skip');
    } finally {
      await new Promise((r) => server.close(r));
    }
    const down = await checkHealth(stackConfig({ ...overrides, DR_ODOO_HEALTH_URL: `http://127.0.0.1:${port}/ok` }), [], { timeoutMs: 2_000 });
    assert.equal(down[0]!.status, 'fail');
    assert.match(down[0]!.message, /cannot be reached/);
    // A database Odoo does not list (owned by the DR role) fails.
    const hidden = `rp-hidden-${s}`;
    extraDbs.push(hidden);
    await adminQuery(`CREATE DATABASE ${quoteIdent(hidden)} TEMPLATE template0`);
    const h = await checkHealth(config, [hidden]);
    assert.equal(h[1]!.status, 'fail');
    assert.match(h[1]!.message, /Odoo does not list/);
  });

  it('restoreConfigArchive puts a real configuration archive back, keeps replaced files, never writes outside DR_CONFIG_PATHS', async () => {
    mkdirSync(path.join(configDir, 'nginx'), { recursive: true });
    mkdirSync(otherConfigDir, { recursive: true });
    writeFileSync(path.join(configDir, 'odoo.conf'), '[options]\ndb_user = odoo\n');
    writeFileSync(path.join(configDir, 'nginx', 'site.conf'), 'server { listen 80; }\n', { mode: 0o640 });
    writeFileSync(path.join(configDir, 'same.txt'), 'unchanged\n');
    writeFileSync(path.join(otherConfigDir, 'outside.conf'), 'original outside\n');
    const archSession = `backup_20260101_000001_cf${s}`;
    const archConfig = stackConfig({ ...overrides, DR_CONFIG_PATHS: `${configDir},${otherConfigDir}` });
    const archive = await archiveConfiguration({ config: archConfig, session: archSession, recipients });
    const archiveFile = localPath(backupDir, archive.artifact!.path);

    // Damage after the backup.
    writeFileSync(path.join(configDir, 'odoo.conf'), '[options]\ndb_user = broken\n');
    rmSync(path.join(configDir, 'nginx', 'site.conf'));
    writeFileSync(path.join(otherConfigDir, 'outside.conf'), 'changed outside\n');
    const cstamp = '20260101120000';

    const dry = await restoreConfigArchive({ config, encryptedArchive: archiveFile, identity, stamp: cstamp, dryRun: true });
    assert.deepEqual(dry.restored.sort(), [path.join(configDir, 'nginx', 'site.conf'), path.join(configDir, 'odoo.conf')].sort());
    assert.equal(readFileSync(path.join(configDir, 'odoo.conf'), 'utf8'), '[options]\ndb_user = broken\n', 'a dry run changes nothing');

    const r = await restoreConfigArchive({ config, encryptedArchive: archiveFile, identity, stamp: cstamp });
    assert.deepEqual(r.restored.sort(), dry.restored);
    assert.deepEqual(r.keptAs, [path.join(configDir, `odoo.conf.pre-recovery-${cstamp}`)]);
    assert.deepEqual(r.unchanged, [path.join(configDir, 'same.txt')]);
    assert.deepEqual(r.skipped, [path.join(otherConfigDir, 'outside.conf')]);
    assert.equal(readFileSync(path.join(configDir, 'odoo.conf'), 'utf8'), '[options]\ndb_user = odoo\n');
    assert.equal(readFileSync(path.join(configDir, `odoo.conf.pre-recovery-${cstamp}`), 'utf8'), '[options]\ndb_user = broken\n');
    assert.equal(readFileSync(path.join(configDir, 'nginx', 'site.conf'), 'utf8'), 'server { listen 80; }\n');
    assert.equal(statSync(path.join(configDir, 'nginx', 'site.conf')).mode & 0o777, 0o640);
    assert.equal(readFileSync(path.join(otherConfigDir, 'outside.conf'), 'utf8'), 'changed outside\n', 'outside DR_CONFIG_PATHS: never written');
    // Re-run: nothing more to do.
    const again = await restoreConfigArchive({ config, encryptedArchive: archiveFile, identity, stamp: cstamp });
    assert.deepEqual(again.restored, []);
    assert.deepEqual(again.keptAs, []);

    // A hostile archive: `../etc/passwd` (GNU tar -P keeps it) is refused as a whole.
    const evil = path.join(work, 'evil');
    mkdirSync(path.join(evil, 'a', 'b'), { recursive: true });
    writeFileSync(path.join(evil, 'a', 'passwd'), 'root::0:0::/root:/bin/sh\n');
    execFileSync('tar', ['-C', evil, '-P', '--transform', 's,^a/passwd,../etc/passwd,', '-cf', path.join(evil, 'evil.tar'), 'a/passwd']);
    const listing = execFileSync('tar', ['-tPf', path.join(evil, 'evil.tar')], { encoding: 'utf8' });
    assert.match(listing, /\.\.\/etc\/passwd/);
    execFileSync('zstd', ['-q', '-f', path.join(evil, 'evil.tar'), '-o', path.join(evil, 'evil.tar.zst')]);
    await encryptFile(recipients, path.join(evil, 'evil.tar.zst'), path.join(evil, 'evil.tar.zst.age'));
    const hostile = await rejection(restoreConfigArchive({ config, encryptedArchive: path.join(evil, 'evil.tar.zst.age'), identity, stamp: cstamp }));
    assert.ok(hostile instanceof ArtifactCorruptedError, String(hostile));
    assert.match(hostile.message, /\.\.\/etc\/passwd/);
    assert.match(hostile.message, /'\.\.'/);
    assert.ok(!existsSync(path.join(work, 'etc')));
  });
});
