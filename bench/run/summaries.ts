/**
 * The figures `npm run bench` draws over every scenario once they ran: each worker's peak RSS (its
 * VmHWM, sampled when the bench stops it: see Bench.worker), by tenant size, and the activities that
 * timed out, read from the workflow histories.
 */
import { activityIssues, MiB } from '../harness';
import type { Bench } from './bench';
import { AIMS, type Scenario } from './params';

/** Scenarios whose workers each peak-RSS figure covers. */
const RSS_GROUPS: Record<string, Scenario[]> = { files: ['fs', 's3'], big: ['big'], db: ['db'] };

/** Figures over every worker and workflow: peak RSS by size, activity timeouts. */
export async function summaryFigures(b: Bench, ran: Scenario[]): Promise<void> {
  const rssFigure = (id: string, name: string, group: string, what: string) => {
    const xs = b.rss[group];
    if (!xs?.length) return;
    const failed = RSS_GROUPS[group]!.filter((s) => ran.includes(s) && b.errors.some((e) => e.startsWith(`${s}:`)));
    if (failed.length) what += ` (the ${failed.join(', ')} scenario failed: its workers count up to the failure)`;
    const peaks = xs.map((x) => x.peak);
    const starts = xs.map((x) => x.start).filter((x): x is number => x !== undefined);
    b.figure({
      id,
      name,
      scenario: group,
      odooDr: {
        label: `VmHWM of the \`odoo-dr worker\` process since its start, highest of ${xs.length} worker(s)`,
        unit: 'bytes',
        median: Math.max(...peaks),
        runs: peaks,
      },
      aim: { of: 'value', op: '<', value: AIMS.rssBytes },
      note: `${what}; right after start-up (configuration, connections, workflow bundle) ${starts.length ? `${(Math.max(...starts) / MiB).toFixed(0)} MiB` : 'unknown'}`,
    });
  };
  const fs = b.scenarioInfo.fs as { files?: number } | undefined;
  const big = b.scenarioInfo.big as { files?: number } | undefined;
  if (fs?.files)
    rssFigure(
      'rss-files',
      `Worker peak RSS, ${fs.files.toLocaleString('en-US')}-file tenant`,
      'files',
      'backups (local and cloud), files-only recovery, restore test',
    );
  if (big?.files)
    rssFigure(
      'rss-big',
      `Worker peak RSS, ${big.files.toLocaleString('en-US')}-file tenant`,
      'big',
      'backup with cloud copy, files-only recovery from the bucket',
    );
  const db = b.scenarioInfo.db as { databaseBytes?: number } | undefined;
  if (db?.databaseBytes)
    rssFigure('rss-db', `Worker peak RSS, ${(db.databaseBytes / MiB).toFixed(0)} MiB database`, 'db', 'backup, restore test, database-only recovery');

  const groups: Array<[string, string, string[]]> = [];
  if (ran.includes('big'))
    groups.push(['timeouts-big', `Activities timed out, ${big?.files?.toLocaleString('en-US') ?? ''}-file tenant`, b.workflows.big ?? []]);
  const others = ran.filter((s) => s !== 'big').flatMap((s) => b.workflows[s] ?? []);
  if (ran.some((s) => s !== 'big')) groups.push(['timeouts', `Activities timed out, ${ran.filter((s) => s !== 'big').join(', ')} scenarios`, others]);
  for (const [id, name, ids] of groups) {
    try {
      const issues = await activityIssues(b.client, ids);
      b.figure({
        id,
        name,
        scenario: id === 'timeouts-big' ? 'big' : 'all',
        odooDr: {
          label: `read from the histories of ${issues.workflows} workflow(s) and their children (${issues.activities} activities)`,
          unit: 'count',
          median: issues.timedOut,
          runs: [issues.timedOut],
        },
        aim: { of: 'value', op: '<=', value: 0 },
        note: `${issues.retries} activity retr${issues.retries === 1 ? 'y' : 'ies'}${issues.examples.length ? `: ${issues.examples.join('; ')}` : ''}`,
      });
    } catch (err) {
      b.figures.push({ id, name, scenario: 'all', pass: null, error: `reading workflow histories: ${(err as Error).message}` });
    }
  }
}
