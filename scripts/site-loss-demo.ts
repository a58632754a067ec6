/**
 * The end of `npm run demo`: the whole site is lost. A second, empty PostgreSQL cluster (no Odoo
 * role), empty folders and a brand-new Temporal dev server stand in for the new host; given only
 * the configuration, the bucket and the age identity, `odoo-dr recover -m full -c --all --yes`
 * brings every tenant back from the bucket, roles and configuration first. Then the tenants are
 * compared with the originals on the old cluster, which the demo leaves running.
 */
import path from 'node:path';
import { loadConfig, type DrConfig } from '../src/config';
import { withClient } from '../src/postgres';
import { LOCAL_CONFIG_PATH } from '../test/helpers/config';
import { runCli, startCliWorker } from '../test/helpers/cli';
import { startFreshSite } from '../test/helpers/fresh-site';

async function checksums(config: DrConfig, tenants: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const t of tenants) {
    const sum = await withClient(config.postgres, t, async (c) => {
      const { rows } = await c.query<{ s: string }>(
        "SELECT count(*) || ' move lines, md5 ' || md5(string_agg(l::text, '' ORDER BY l.id)) AS s FROM account_move_line l",
      );
      return rows[0]!.s;
    }).catch((err: Error) => `(${err.message})`);
    out.set(t, sum);
  }
  return out;
}

async function main(): Promise<void> {
  const old = loadConfig({ path: LOCAL_CONFIG_PATH, env: {} });
  const site = await startFreshSite();
  try {
    const env = { ...site.env, DR_TASK_QUEUE: 'odoo-dr-new-site' };
    const fresh = site.config(env);
    console.log(
      `new host: PostgreSQL 127.0.0.1:${site.postgres.port} (empty: only the postgres superuser), Temporal ${site.temporal.address} (empty), folders under ${site.root}`,
    );
    const worker = await startCliWorker(env);
    try {
      const configTarget = path.join(site.root, 'restored-config');
      console.log(`\n== odoo-dr recover -m full -c --all --yes --wait --config-target ${configTarget}   (new host, bucket only)`);
      const run = runCli(['recover', '-m', 'full', '-c', '--all', '--yes', '--wait', '--config-target', configTarget], env);
      run.child.stdout.pipe(process.stdout);
      run.child.stderr.pipe(process.stderr);
      const { code } = await run.result;
      if (code !== 0) throw new Error(`site recovery exited with ${code}`);
      console.log('\n== odoo-dr tenants   (on the new host)');
      const tenants = runCli(['tenants'], env);
      tenants.child.stdout.pipe(process.stdout);
      await tenants.result;
      const names = ['acme', 'globex-eu'];
      const before = await checksums(old, names);
      const after = await checksums(fresh, names);
      for (const t of names) {
        console.log(
          `${t.padEnd(10)} old site: ${before.get(t)}\n${''.padEnd(10)} new site: ${after.get(t)}  ${before.get(t) === after.get(t) ? '(equal)' : '(DIFFERENT!)'}`,
        );
      }
    } finally {
      worker.child.kill('SIGTERM');
      await worker.result;
    }
  } finally {
    await site.stop();
    console.log('the new host was stopped and removed');
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
