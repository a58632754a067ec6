import assert from 'node:assert/strict';
import { DEFAULT_BATCH, planBackupUnits } from '../../workflows/backup-plan';

const MiB = 1024 * 1024;
const tenants = (n: number, bytes = 10 * MiB) => Array.from({ length: n }, (_, i) => ({ name: `t${String(i).padStart(3, '0')}`, databaseBytes: bytes + i }));
const names = (units: ReturnType<typeof planBackupUnits>) => units.flatMap((u) => u.tenants).sort();

describe('planBackupUnits (which tenants share an activity)', () => {
  it('no more small tenants than slots: one unit each, no batch', () => {
    const units = planBackupUnits(tenants(3), 3);
    assert.deepEqual(
      units.map((u) => u.batch),
      [false, false, false],
    );
    assert.deepEqual(names(units), ['t000', 't001', 't002']);
  });

  it('30 tiny tenants, 3 slots: a first round of 3 small batches, then rounds of equal batches; every tenant once', () => {
    const units = planBackupUnits(tenants(30), 3);
    assert.deepEqual(
      units.map((u) => u.tenants.length),
      [3, 3, 3, 7, 7, 7],
    );
    assert.ok(units.every((u) => u.batch));
    assert.deepEqual(
      names(units),
      tenants(30).map((t) => t.name),
    );
  });

  it('large tenants go alone and first, largest first; small ones are batched after them', () => {
    const big = [
      { name: 'big-a', databaseBytes: 300 * MiB },
      { name: 'big-b', databaseBytes: 2000 * MiB },
    ];
    const units = planBackupUnits([...tenants(8), ...big], 2);
    assert.deepEqual(
      units.slice(0, 2).map((u) => u.tenants),
      [['big-b'], ['big-a']],
    );
    assert.ok(units.slice(0, 2).every((u) => !u.batch));
    assert.ok(units.slice(2).every((u) => u.tenants.every((t) => t.startsWith('t'))));
    assert.deepEqual(
      units.slice(2).map((u) => u.tenants.length),
      [3, 3, 1, 1],
      'a first round of 2 × 3, then the last 2 spread over both slots',
    );
    assert.equal(names(units).length, 10);
  });

  it('respects the limits: at most maxTenants per batch, about maxBytes, batches a multiple of the slots', () => {
    const units = planBackupUnits(tenants(100, 20 * MiB), 3, { ...DEFAULT_BATCH, maxTenants: 8, maxBytes: 100 * MiB, firstTenants: 2 });
    const rest = units.slice(3);
    assert.ok(units.every((u) => u.tenants.length <= 8));
    assert.equal(rest.length % 3, 0);
    assert.ok(
      rest.every((u) => u.bytes <= 120 * MiB),
      rest.map((u) => u.bytes / MiB).join(', '),
    );
    assert.equal(names(units).length, 100);
  });

  it('batching off (maxTenants 1 or smallBytes 0): one unit per tenant, largest first', () => {
    for (const off of [{ maxTenants: 1 }, { smallBytes: 0 }]) {
      const units = planBackupUnits(tenants(12), 3, { ...DEFAULT_BATCH, ...off });
      assert.equal(units.length, 12);
      assert.ok(units.every((u) => !u.batch && u.tenants.length === 1));
      assert.equal(units[0]!.tenants[0], 't011');
    }
  });

  it('is deterministic (a workflow replays it): same input, same plan', () => {
    const input = tenants(40).reverse();
    assert.deepEqual(planBackupUnits(input, 3), planBackupUnits([...input], 3));
  });
});
