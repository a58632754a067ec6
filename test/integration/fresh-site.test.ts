/**
 * test/helpers/fresh-site.ts: the "new host" of site-loss tests is really new and empty, lives
 * beside the local stack without touching it, and never outlives its test — not even a crashed one.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { withClient } from '../../src/postgres';
import { temporalSettings } from '../../temporal/connection';
import { REPO_ROOT, stackConfig } from '../helpers/config';
import { STACK_PORTS, withFreshSite, type FreshSite } from '../helpers/fresh-site';
import { adminQuery } from '../helpers/pg';

describe('fresh site: a new, empty host for site-loss tests', function () {
  this.timeout(60_000);

  it('starts an empty PostgreSQL cluster and Temporal server beside the stack, and removes them', async () => {
    let seen: FreshSite | undefined;
    await withFreshSite(async (site) => {
      seen = site;
      const stack = stackConfig();
      const config = site.config();

      // Never the stack's ports.
      const temporalPort = Number(site.temporal.address.split(':')[1]);
      for (const port of [site.postgres.port, temporalPort]) assert.ok(!STACK_PORTS.has(port), `port ${port} is the stack's`);

      // The configuration points at the new host; what survives a site loss comes from the stack's.
      assert.equal(config.postgres.host, '127.0.0.1');
      assert.equal(config.postgres.port, site.postgres.port);
      assert.equal(config.postgres.user, 'postgres');
      assert.equal(config.backupDir, path.join(site.root, 'backups'));
      assert.equal(config.odoo.dataDir, path.join(site.root, 'odoo-data'));
      assert.deepEqual(config.configPaths, [path.join(site.root, 'odoo-config')]);
      assert.equal(config.logDir, path.join(site.root, 'logs'));
      for (const dir of [config.backupDir, config.odoo.dataDir, config.configPaths[0]!, config.logDir]) {
        assert.deepEqual(readdirSync(dir), [], `${dir} should be an empty folder`);
      }
      assert.equal(config.odoo.dbUser, stack.odoo.dbUser);
      assert.deepEqual(config.cloud, stack.cloud);
      assert.deepEqual(config.encryption, stack.encryption);
      assert.equal(statSync(site.postgres.passwordFile).mode & 0o777, 0o600);

      // An empty cluster: the superuser only (no odoo role), no database but the built-in ones.
      const { roles, databases } = await withClient(config.postgres, config.postgres.maintenanceDb, async (c) => ({
        roles: (await c.query("SELECT rolname, rolsuper FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY 1")).rows,
        databases: (await c.query<{ datname: string }>('SELECT datname FROM pg_database ORDER BY 1')).rows.map((r) => r.datname),
      }));
      assert.deepEqual(roles, [{ rolname: 'postgres', rolsuper: true }]);
      assert.deepEqual(databases, ['postgres', 'template0', 'template1']);

      // A Temporal server of its own, empty, with the stack's search attributes.
      const { connectionOptions, namespace } = temporalSettings(config, {});
      assert.equal(connectionOptions.address, site.temporal.address);
      const connection = await Connection.connect(connectionOptions);
      try {
        const client = new Client({ connection, namespace });
        const workflows: string[] = [];
        for await (const wf of client.workflow.list()) workflows.push(wf.workflowId);
        assert.deepEqual(workflows, []);
        const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
        assert.ok(customAttributes && 'OdooDrTenants' in customAttributes && 'OdooDrSession' in customAttributes);
      } finally {
        await connection.close();
      }

      // The stack's own PostgreSQL is untouched.
      assert.equal((await adminQuery("SELECT 1 FROM pg_roles WHERE rolname = 'odoo'")).length, 1);
    });

    const site = seen!;
    assert.equal(await portOpen(site.postgres.port), false, 'fresh PostgreSQL still listens');
    assert.equal(await portOpen(Number(site.temporal.address.split(':')[1])), false, 'fresh Temporal still listens');
    for (const dir of [site.postgres.dir, site.temporal.dir, site.root]) assert.equal(existsSync(dir), false, `${dir} remains`);
    await site.stop(); // idempotent
    assert.equal(await portOpen(stackConfig().postgres.port), true, "the stack's PostgreSQL was stopped");
  });

  it('does not outlive a test process that crashes or is killed', async () => {
    // An uncaught exception: the 'exit' guard stops the servers synchronously.
    const crashed = await runChild('throw');
    assert.notEqual(crashed.code, 0);
    await assertGone(crashed.site, 2_000);
    // SIGKILL: no handler runs; the watchdogs clean up once the process is gone (they poll every second).
    const killed = await runChild('hang', (child) => child.kill('SIGKILL'));
    assert.equal(killed.signal, 'SIGKILL');
    await assertGone(killed.site, 10_000);
  });
});

interface ChildSite {
  pgPort: number;
  pgDir: string;
  temporalPort: number;
  temporalDir: string;
}

/** A node process that starts both servers, reports them, then crashes (`throw`) or waits (`hang`). */
async function runChild(
  mode: 'throw' | 'hang',
  onStarted: (child: ReturnType<typeof spawn>) => void = () => undefined,
): Promise<{ site: ChildSite; code: number | null; signal: NodeJS.Signals | null }> {
  const helper = path.join(REPO_ROOT, 'dist/test/helpers/fresh-site.js');
  const script = `
    const { startFreshPostgres, startFreshTemporal } = require(${JSON.stringify(helper)});
    (async () => {
      const [pg, t] = await Promise.all([startFreshPostgres(), startFreshTemporal()]);
      console.log(JSON.stringify({ pgPort: pg.port, pgDir: pg.dir, temporalPort: Number(t.address.split(':')[1]), temporalDir: t.dir }));
      if (${JSON.stringify(mode)} === 'throw') throw new Error('a test crashed');
      setInterval(() => undefined, 1000);
    })();`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let site: ChildSite | undefined;
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (!site && stdout.includes('\n')) {
      site = JSON.parse(stdout.split('\n')[0]!) as ChildSite;
      onStarted(child);
    }
  });
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (c, s) => resolve({ code: c, signal: s })),
  );
  if (!site) throw new Error(`the child did not start its servers (exit ${code}, ${signal}):\n${stderr}`);
  if (mode === 'throw') assert.match(stderr, /a test crashed/);
  return { site, code, signal };
}

async function assertGone(site: ChildSite, withinMs: number): Promise<void> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const left = {
      postgres: await portOpen(site.pgPort),
      temporal: await portOpen(site.temporalPort),
      pgDir: existsSync(site.pgDir),
      temporalDir: existsSync(site.temporalDir),
    };
    if (!Object.values(left).some(Boolean)) return;
    if (Date.now() > deadline) assert.fail(`left behind after ${withinMs} ms: ${JSON.stringify(left)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}
