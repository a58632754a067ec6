/** `npm run bench`'s results rendering (bench/report.ts) and README generation (bench/readme.ts): no measuring here. */
import { strict as assert } from 'node:assert';
import { END, START, updateReadme } from '../../bench/readme';
import { judge, markdownTable, textTable, type Figure, type Results } from '../../bench/report';

const MiB = 1024 * 1024;

function figure(over: Partial<Figure>): Figure {
  return {
    id: 'x',
    name: 'Tenant backup vs `pg_dump -Fc -Z0`',
    scenario: 'db',
    odooDr: { label: 'odoo-dr backup', unit: 'ms', median: 3000, runs: [3000] },
    bare: { label: 'pg_dump', unit: 'ms', median: 2000, runs: [2000] },
    ratio: 1.5,
    ratios: [1.5],
    aim: { of: 'ratio', op: '<=', value: 1.5 },
    pass: null,
    ...over,
  };
}

function results(figures: Figure[]): Results {
  return {
    version: 1,
    date: '2026-11-26T10:00:00.000Z',
    durationMs: 90_000,
    git: { commit: '0123456789abcdef', branch: 'main', dirty: false },
    machine: {
      cpus: 2,
      cpuModel: 'cpu',
      memoryBytes: 4 * 1024 ** 3,
      os: 'Linux',
      node: 'v20',
      loadStart: 0.1,
      loadEnd: 0.2,
      tools: { postgresServer: '15.8', pg_dump: 'pg_dump 15.8', tar: 'tar', zstd: 'zstd', age: '1.1.1' },
    },
    params: { files: 20000, 'file-size': 8192, 'big-files': 100000, 'db-mb': 256, fleet: 30, runs: 3, quick: false },
    scenarios: {},
    figures,
    errors: [],
  };
}

describe('bench report (npm run bench)', () => {
  it('judges ratio aims (≤ inclusive) and value aims (< strict), and nothing without an aim or a value', () => {
    assert.equal(judge(figure({})), true, '1.5 ≤ 1.5');
    assert.equal(judge(figure({ ratio: 1.51 })), false);
    const rss = figure({ odooDr: { label: 'VmHWM', unit: 'bytes', median: 300 * MiB, runs: [300 * MiB] }, aim: { of: 'value', op: '<', value: 300 * MiB } });
    assert.equal(judge(rss), false, '300 MiB is not < 300 MiB');
    assert.equal(judge({ ...rss, odooDr: { ...rss.odooDr!, median: 299 * MiB } }), true);
    const { aim: _none, ...noAim } = figure({});
    assert.equal(judge(noAim), null);
    assert.equal(judge(figure({ error: 'boom' })), null);
    assert.equal(judge(figure({ ratio: NaN })), null);
  });

  it('renders one row per figure, with units, ratio, aim and result', () => {
    const figures = [
      figure({ pass: true }),
      figure({
        id: 'rss',
        name: 'Worker peak RSS',
        odooDr: { label: 'VmHWM', unit: 'bytes', median: 310 * MiB, runs: [310 * MiB] },
        bare: undefined,
        ratio: undefined,
        aim: { of: 'value', op: '<', value: 300 * MiB },
        pass: false,
      }),
      figure({
        id: 't',
        name: 'Activity timeouts',
        odooDr: { label: 'histories', unit: 'count', median: 0, runs: [0] },
        bare: undefined,
        ratio: undefined,
        aim: { of: 'value', op: '<=', value: 0 },
        pass: true,
      }),
      figure({ id: 'e', name: 'fs scenario', odooDr: undefined, bare: undefined, ratio: undefined, aim: undefined, error: 'it broke' }),
    ];
    const text = textTable(figures).split('\n');
    assert.equal(text.length, 2 + figures.length);
    assert.match(text[2]!, /^Tenant backup vs pg_dump -Fc -Z0 +3\.00 s +2\.00 s +1\.50 +≤ 1\.5 +pass$/);
    assert.match(text[3]!, /310\.0 MiB .* < 300 MiB +FAIL$/);
    assert.match(text[4]!, / none +pass$/);
    assert.match(text[5]!, /^fs scenario +error .* ERROR$/);
    const md = markdownTable(figures).split('\n');
    assert.equal(md.length, 2 + figures.length);
    assert.equal(md[2], '| Tenant backup vs `pg_dump -Fc -Z0` | 3.00 s | 2.00 s | 1.50 | ≤ 1.5 | pass |');
    assert.match(md[3]!, /\*\*FAIL\*\* \|$/);
  });

  it('rewrites only the text between the README markers, and refuses a README without them', () => {
    const readme = `# x\n\n## Performance\n\nProse before.\n\n${START}\nold table\n${END}\n\nProse after.\n`;
    const out = updateReadme(readme, results([figure({ pass: true })]));
    assert.ok(out.startsWith(`# x\n\n## Performance\n\nProse before.\n\n${START}\n`));
    assert.ok(out.endsWith(`\n${END}\n\nProse after.\n`));
    assert.ok(!out.includes('old table'));
    assert.ok(out.includes('| Tenant backup vs `pg_dump -Fc -Z0` | 3.00 s | 2.00 s | 1.50 | ≤ 1.5 | pass |'));
    assert.ok(out.includes('commit 0123456789'));
    assert.equal(updateReadme(out, results([figure({ pass: true })])), out, 'idempotent');
    assert.throws(() => updateReadme('# no markers\n', results([])), /markers/);
    assert.throws(() => updateReadme(`${START}\n${END}\n${START}\n${END}\n`, results([])), /more than once/);
  });
});
