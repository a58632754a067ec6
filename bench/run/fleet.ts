/**
 * The fleet scenario of `npm run bench`: the orchestration of many tiny tenants, one
 * `odoo-dr backup --tenant … --no-cloud --wait` against `xargs -P3 pg_dump -Fc -Z0`.
 */
import { pgDumpFleet } from './bare';
import type { Bench } from './bench';
import { AIMS } from './params';
import { fleetTenants } from './tenants';

/** The fleet scenario: --fleet tiny tenants in one backup against `xargs -P3 pg_dump -Fc -Z0`. */
export async function fleetScenario(b: Bench): Promise<void> {
  const names = await fleetTenants(b);
  const r = { bare: [] as number[], ours: [] as number[] };
  // A failed run ends the scenario, but the runs done so far still make figures.
  const failure = await b.eachRun('fleet', 'fleet', async (i, w) => {
    const tmp = b.tmp('fleet');
    const [bare, ours] = await b.alternate(
      i,
      () => pgDumpFleet(b, tmp, names),
      () => b.cli('fleet', w, ['backup', '--tenant', ...names, '--no-cloud', '--wait']),
    );
    r.bare.push(bare.ms);
    r.ours.push(ours.ms);
    console.log(`  run ${i + 1}: fleet backup ${(ours.ms / 1000).toFixed(2)} s vs xargs -P3 pg_dump ${(bare.ms / 1000).toFixed(2)} s`);
  });
  b.pair({
    id: 'fleet-backup',
    name: `Fleet of ${names.length} tiny tenants vs \`xargs -P3 pg_dump -Fc -Z0\``,
    scenario: 'fleet',
    ours: { label: '`odoo-dr backup --tenant T1 … TN --no-cloud --wait`, DR_MAX_PARALLEL_BACKUPS=3 (2 files per tenant)', unit: 'ms', runs: r.ours },
    bare: { label: '`xargs -P3 -I{} pg_dump -Fc -Z0 -f DIR/{}.dump -d {}`', unit: 'ms', runs: r.bare },
    aim: { of: 'ratio', op: '<=', value: AIMS.fleet },
  });
  if (failure) throw failure;
}
