/** The retention policy alone (no services): which sessions are never deleted, GFS over a simulated year. */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sessionsToKeep } from '../../src/retention/policy';
import { loadConfig } from '../../src/config';
import { ConfigError } from '../../src/errors';
import { isoWeekOf, planRetention, withValidationsThatMatter } from '../../src/retention/policy';
import type { SessionSummary } from '../../src/sessions/catalog';

const session = (
  n: number,
  status: SessionSummary['status'],
  tenants: Record<string, 'complete' | 'failed'>,
  validation: SessionSummary['validation'] = 'never',
): SessionSummary => ({
  session: `backup_202611${String(n).padStart(2, '0')}_020000_aaaaaa`,
  startedAt: '',
  status,
  tenants,
  validation,
  location: 'cloud',
});

describe('retention policy: sessionsToKeep', () => {
  it('a later partial session never makes the last complete one expire (the data-loss case)', () => {
    const sessions = [session(20, 'partial', { acme: 'failed', globex: 'complete' }), session(10, 'complete', { acme: 'complete', globex: 'complete' })];
    const keep = sessionsToKeep(sessions);
    assert.ok(keep.has(sessions[1]!.session), 'acme is complete only in the older session');
    assert.ok(keep.has(sessions[0]!.session), "globex's newest complete");
  });

  it("keeps each tenant's newest validated session too, and nothing that is incomplete, corrupt or superseded", () => {
    const sessions = [
      session(25, 'incomplete', {}),
      session(24, 'corrupt', {}),
      session(23, 'complete', { acme: 'complete' }, 'never'),
      session(22, 'complete', { acme: 'complete' }, 'fail'),
      session(21, 'complete', { acme: 'complete' }, 'pass'),
      session(20, 'complete', { acme: 'complete' }, 'pass'),
    ];
    assert.deepEqual(
      [...sessionsToKeep(sessions)].sort(),
      [sessions[2]!.session, sessions[4]!.session].sort(),
      'the newest complete (23) and the newest validated (21)',
    );
  });
});

/** A session started on `day` (YYYY-MM-DD) at `time` (HHMMSS), UTC. */
function at(
  day: string,
  status: SessionSummary['status'],
  tenants: Record<string, 'complete' | 'failed'>,
  opts: { time?: string; validation?: SessionSummary['validation'] } = {},
): SessionSummary {
  return {
    session: `backup_${day.replace(/-/g, '')}_${opts.time ?? '020000'}_yr${day.slice(5).replace('-', '')}`,
    startedAt: `${day}T02:00:00Z`,
    status,
    tenants,
    validation: opts.validation ?? 'never',
    location: 'cloud',
  };
}

/**
 * One nightly session for every day of 2026, both tenants complete, except: 31 Dec partial (acme
 * failed), 30 Nov failed, 31 Oct crashed (no manifest), 10 Feb corrupt, a tenant `legacy` that was
 * last backed up on 15 Mar, a passed validation on 1 Jun only, and a session still being written on
 * 31 Dec at 14:00.
 */
function simulatedYear(): SessionSummary[] {
  const out: SessionSummary[] = [];
  for (let t = Date.UTC(2026, 0, 1); t <= Date.UTC(2026, 11, 31); t += 86_400_000) {
    const day = new Date(t).toISOString().slice(0, 10);
    const both = { acme: 'complete' as const, globex: 'complete' as const };
    if (day === '2026-12-31') out.push(at(day, 'partial', { acme: 'failed', globex: 'complete' }));
    else if (day === '2026-11-30') out.push(at(day, 'failed', { acme: 'failed', globex: 'failed' }));
    else if (day === '2026-10-31') out.push(at(day, 'incomplete', {}));
    else if (day === '2026-02-10') out.push(at(day, 'corrupt', {}));
    else if (day === '2026-03-15') out.push(at(day, 'complete', { ...both, legacy: 'complete' }));
    else if (day === '2026-06-01') out.push(at(day, 'complete', both, { validation: 'pass' }));
    else out.push(at(day, 'complete', both));
  }
  out.push(at('2026-12-31', 'incomplete', {}, { time: '140000' }));
  return out.reverse();
}

const NOW = new Date('2027-01-01T03:00:00Z');
const name = (sessions: SessionSummary[], day: string, time = '020000') => {
  const s = sessions.find((x) => x.session.startsWith(`backup_${day.replace(/-/g, '')}_${time}`));
  assert.ok(s, `no session on ${day} ${time}`);
  return s.session;
};

describe('retention policy: a simulated year', () => {
  const year = simulatedYear();

  it("GFS 7/4/3 with 7 days: the last week, 4 ISO weeks, 3 months, and every tenant's last good session", () => {
    const plan = planRetention(year, { maxAgeDays: 7, gfs: { daily: 7, weekly: 4, monthly: 3 } }, NOW);
    const expected = [
      // Younger than 7 days (cutoff 25 Dec 03:00), plus the one being written.
      ...['2026-12-26', '2026-12-27', '2026-12-28', '2026-12-29', '2026-12-30', '2026-12-31'].map((d) => name(year, d)),
      name(year, '2026-12-31', '140000'),
      // Daily: seven latest days -> also 25 Dec.
      name(year, '2026-12-25'),
      // Weekly: the newest complete of ISO weeks 53 (30 Dec), 52 (Sun 27 Dec), 51 (Sun 20 Dec), 50 (Sun 13 Dec).
      name(year, '2026-12-20'),
      name(year, '2026-12-13'),
      // Monthly: December (30th), November (30th failed -> 29th), October (31st crashed -> 30th).
      name(year, '2026-11-29'),
      name(year, '2026-10-30'),
      // legacy's last complete session, the newest passed validation.
      name(year, '2026-03-15'),
      name(year, '2026-06-01'),
    ].sort();
    assert.deepEqual([...plan.keep.keys()].sort(), expected);
    assert.equal(plan.remove.length, year.length - expected.length);
    assert.ok(plan.remove.includes(name(year, '2026-11-30')), 'a failed session is no monthly');
    assert.ok(plan.remove.includes(name(year, '2026-10-31')), 'an old crashed session goes');
    assert.ok(plan.remove.includes(name(year, '2026-02-10')), 'an old corrupt session goes');
    assert.deepEqual(plan.keep.get(name(year, '2026-03-15')), ['newest-complete']);
    assert.deepEqual(plan.keep.get(name(year, '2026-06-01')), ['newest-validated']);
    assert.deepEqual(plan.keep.get(name(year, '2026-12-20')), ['weekly']);
    assert.deepEqual(plan.keep.get(name(year, '2026-11-29')), ['monthly']);
    // 31 Dec is partial: the daily of its day (no complete one that day), but its week and month
    // have complete sessions, and the newest of those (30 Dec) stands for them.
    assert.deepEqual(plan.keep.get(name(year, '2026-12-31'))!.sort(), ['age', 'daily', 'newest-complete']);
    assert.deepEqual(plan.keep.get(name(year, '2026-12-30'))!.sort(), ['age', 'daily', 'monthly', 'newest-complete', 'weekly']);
    // acme failed on 31 Dec: its newest complete is the 30th.
    assert.ok(plan.keep.get(name(year, '2026-12-30'))!.includes('newest-complete'));
  });

  it('without GFS only the age limit and the per-tenant protections keep sessions', () => {
    const plan = planRetention(year, { maxAgeDays: 7, gfs: null }, NOW);
    const expected = [
      ...['2026-12-26', '2026-12-27', '2026-12-28', '2026-12-29', '2026-12-30', '2026-12-31'].map((d) => name(year, d)),
      name(year, '2026-12-31', '140000'),
      name(year, '2026-03-15'),
      name(year, '2026-06-01'),
    ].sort();
    assert.deepEqual([...plan.keep.keys()].sort(), expected);
  });

  it('a year of failures never deletes the last good session of a tenant, and a protected name is kept', () => {
    const broken = year.map((s) =>
      s.session >= name(year, '2026-04-01')
        ? { ...s, status: 'failed' as const, tenants: { acme: 'failed' as const, globex: 'failed' as const }, validation: 'never' as const }
        : s,
    );
    const plan = planRetention(broken, { maxAgeDays: 7, gfs: { daily: 7, weekly: 4, monthly: 3 }, protect: [name(year, '2026-01-05')] }, NOW);
    const beforeFailures = name(year, '2026-03-31');
    assert.ok(plan.keep.get(beforeFailures)?.includes('newest-complete'), 'the last complete night before 9 months of failures');
    assert.deepEqual(plan.keep.get(name(year, '2026-01-05')), ['protected']);
    // GFS counts only usable sessions: its months are March, February, January.
    assert.ok(plan.keep.get(name(year, '2026-02-28'))?.includes('monthly'));
    assert.ok(plan.keep.get(name(year, '2026-01-31'))?.includes('monthly'));
  });

  it('a session being written is kept whatever its name says; an old crashed one goes', () => {
    const crashed = at('2026-05-05', 'incomplete', {}, { time: '030000' });
    const running = at('2026-05-06', 'incomplete', {}, { time: '030000' });
    const plan = planRetention([running, crashed, ...year], { maxAgeDays: 7, writing: [running.session] }, NOW);
    assert.deepEqual(plan.keep.get(running.session), ['in-progress']);
    assert.ok(plan.remove.includes(crashed.session));
  });

  it('ISO weeks: Monday to Sunday, the year of their Thursday', () => {
    assert.equal(isoWeekOf(new Date('2026-12-31T02:00:00Z')), '2026-W53');
    assert.equal(isoWeekOf(new Date('2027-01-03T23:59:59Z')), '2026-W53');
    assert.equal(isoWeekOf(new Date('2027-01-04T00:00:00Z')), '2027-W01');
    assert.equal(isoWeekOf(new Date('2024-12-30T12:00:00Z')), '2025-W01');
    assert.equal(isoWeekOf(new Date('2026-12-27T02:00:00Z')), '2026-W52');
  });
});

describe('retention policy: only the validations that matter are looked up', () => {
  /** A deterministic pseudo-random generator (a failure names its seed). */
  const generator = (seed: number) => () => (seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0) / 2 ** 32;
  const states: SessionSummary['status'][] = ['complete', 'complete', 'complete', 'partial', 'failed', 'incomplete', 'corrupt'];
  const validations: SessionSummary['validation'][] = ['never', 'never', 'pass', 'fail'];

  /** `count` sessions, one every ~8 hours back from 30 Nov 2026, of up to three tenants. */
  function randomSessions(seed: number, count: number): SessionSummary[] {
    const random = generator(seed);
    const pick = <T>(list: T[]) => list[Math.floor(random() * list.length)]!;
    return Array.from({ length: count }, (_, i) => {
      const t = new Date(Date.UTC(2026, 10, 30) - i * 8 * 3_600_000);
      const status = pick(states);
      const tenants: Record<string, 'complete' | 'failed'> = {};
      if (status !== 'incomplete' && status !== 'corrupt')
        for (const name of ['acme', 'globex', 'initech']) if (random() < 0.7) tenants[name] = random() < 0.8 ? 'complete' : 'failed';
      const stamp = t.toISOString().replace(/[-:]/g, '').replace('T', '_').slice(0, 15);
      return {
        session: `backup_${stamp}_r${String(i).padStart(5, '0')}`,
        startedAt: t.toISOString(),
        status,
        tenants,
        validation: status === 'complete' || status === 'partial' ? pick(validations) : 'never',
        location: 'local',
      };
    });
  }

  it('the plan is the one every validation known gives, over many random histories', async () => {
    const now = new Date(Date.UTC(2026, 10, 30, 12));
    for (let seed = 1; seed <= 300; seed++) {
      const sessions = randomSessions(seed, 10 + (seed % 50));
      const maxAgeDays = 1 + (seed % 9);
      const truth = new Map(sessions.map((s) => [s.session, s.validation]));
      const looked: string[] = [];
      const lazy = await withValidationsThatMatter(
        sessions.map((s) => ({ ...s, validation: 'never' })),
        maxAgeDays,
        now,
        (name) => (looked.push(name), Promise.resolve(truth.get(name)!)),
      );
      assert.equal(new Set(looked).size, looked.length, `seed ${seed}: each session looked up once at most`);
      for (const gfs of [null, { daily: 3, weekly: 2, monthly: 1 }]) {
        const full = planRetention(sessions, { maxAgeDays, gfs }, now);
        const partial = planRetention(lazy, { maxAgeDays, gfs }, now);
        assert.deepEqual(partial.remove, full.remove, `seed ${seed}: the same sessions deleted`);
        const pastAge = (plan: typeof full) => [...plan.keep].filter(([, why]) => !why.includes('age'));
        assert.deepEqual(pastAge(partial), pastAge(full), `seed ${seed}: the same sessions kept past the age limit, for the same reasons`);
      }
    }
  });

  it('nothing is looked up while no session has expired, nor for expired ones no tenant is complete in', async () => {
    const now = new Date(Date.UTC(2026, 10, 30, 12));
    const looked: string[] = [];
    const lookUp = (name: string) => (looked.push(name), Promise.resolve('pass' as const));
    const young = randomSessions(7, 40).filter((s) => Date.parse(s.startedAt) >= now.getTime() - 14 * 86_400_000);
    await withValidationsThatMatter(young, 14, now, lookUp);
    assert.deepEqual(looked, []);
    const expiredFailed = at('2026-11-01', 'failed', { acme: 'failed' });
    await withValidationsThatMatter([...young, expiredFailed], 14, now, lookUp);
    assert.deepEqual(looked, []);
  });
});

describe('retention configuration', () => {
  const cwd = mkdtempSync(path.join(tmpdir(), 'odoo-dr-retention-config-'));
  it('DR_RETENTION_GFS is DAILY/WEEKLY/MONTHLY or empty; the grace and log days have defaults', () => {
    const c = loadConfig({ env: { DR_RETENTION_GFS: '7/4/3' }, cwd });
    assert.deepEqual(c.retention.gfs, { daily: 7, weekly: 4, monthly: 3 });
    const d = loadConfig({ env: {}, cwd });
    assert.equal(d.retention.gfs, null);
    assert.equal(d.retention.collectGraceHours, 24);
    assert.equal(d.retention.logDays, 30);
    assert.throws(
      () => loadConfig({ env: { DR_RETENTION_GFS: '7 daily' }, cwd }),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.problems.some((p) => /^DR_RETENTION_GFS must be DAILY\/WEEKLY\/MONTHLY counts such as 7\/4\/3, or empty for none, got/.test(p)),
    );
    assert.throws(() => loadConfig({ env: { DR_COLLECT_GRACE_HOURS: '0' }, cwd }), /DR_COLLECT_GRACE_HOURS must be a whole number from 1 to 720/);
  });
});
