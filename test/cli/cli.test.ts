import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LOCAL_CONFIG_PATH, REPO_ROOT, uniqueSuffix } from '../helpers/config';
import { createDatabase, dropDatabase } from '../helpers/pg';

const BIN = path.join(REPO_ROOT, 'bin/odoo-dr');

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function start(args: string[]): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, env: { ...process.env, DR_CONFIG: '' } });
}

function finish(child: ChildProcessWithoutNullStreams): Promise<Run> {
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

const run = (args: string[]) => finish(start(args));

/** Starts `odoo-dr worker` on its own task queue and resolves once it polls. */
async function startWorker(taskQueue: string): Promise<{ child: ChildProcessWithoutNullStreams; done: Promise<Run> }> {
  const child = start(['--config', LOCAL_CONFIG_PATH, 'worker', '--task-queue', taskQueue]);
  const done = finish(child);
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    const onData = (d: Buffer) => {
      seen += d.toString();
      if (seen.includes("state: 'RUNNING'")) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('close', (code) => reject(new Error(`worker exited early (${code}): ${seen}`)));
  });
  return { child, done };
}

describe('odoo-dr CLI', () => {
  it('refuses a bad configuration with exit code 2, naming each variable', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-cli-'));
    const cfg = path.join(dir, 'bad.env');
    writeFileSync(cfg, 'DR_MAX_PARALLEL_BACKUPS="three"\nDR_RPO_HOURS=0\nPOSTGRES_PASSWORD="Sup3r-Secret"\n');
    const r = await run(['--config', cfg, 'config', 'check']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /DR_MAX_PARALLEL_BACKUPS must be a whole number from 1 to 64, got "three"/);
    assert.match(r.stderr, /DR_RPO_HOURS must be a whole number from 1 to 720, got "0"/);
    assert.ok(!r.stderr.includes('Sup3r-Secret') && !r.stdout.includes('Sup3r-Secret'));
  });

  it('prints a valid configuration as JSON with secrets hidden', async () => {
    const r = await run(['--config', LOCAL_CONFIG_PATH, '--json', 'config', 'check']);
    assert.equal(r.code, 0, r.stderr);
    const printed = JSON.parse(r.stdout) as { postgres: { password: string }; cloud: { secretAccessKey: string } };
    assert.equal(printed.postgres.password, '(set, hidden)');
    assert.equal(printed.cloud.secretAccessKey, '(set, hidden)');
  });

  it('rejects an unknown command with exit code 2', async () => {
    const r = await run(['frobnicate']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command 'frobnicate'/);
    // With --json the failure is also one JSON object on stdout.
    const j = await run(['--json', 'frobnicate']);
    assert.equal(j.code, 2);
    assert.deepEqual(JSON.parse(j.stdout), { error: { message: "unknown command 'frobnicate'", exitCode: 2 } });
  });

  it('refuses tenant and session names that cannot be, with exit code 2, before anything starts', async () => {
    for (const args of [
      ['backup', '--tenant', '../etc'],
      ['validate', 'not-a-session'],
      ['validate', 'latest', '--tenant', 'a b'],
      ['drill', '-m', 'full', '--tenant', 'x/y'],
      ['recover', '-s', 'backup_2026', '-t'],
    ]) {
      const r = await run(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /is not a valid Odoo database name|is not a backup session name/, args.join(' '));
      assert.doesNotMatch(r.stderr, /started/);
    }
  });

  it('`keys signing --create` makes a signing key (0600) once and prints its public key line', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-keys-'));
    const file = path.join(dir, 'signing.key');
    const first = await run(['keys', 'signing', file, '--create']);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI\S+ /);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const again = await run(['keys', 'signing', file, '--create']);
    assert.equal(again.code, 0);
    assert.equal(again.stdout, first.stdout, 'the existing key is kept');
    const json = await run(['--json', 'keys', 'signing', file]);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), { file, publicKey: first.stdout.trim(), created: false });
    rmSync(dir, { recursive: true, force: true });
  });

  describe('worker', () => {
    const s = uniqueSuffix();
    const tenant = `cli-${s}.fr`;
    before(() => createDatabase(tenant));
    after(() => dropDatabase(tenant));

    it('serves `odoo-dr tenants` and stops cleanly on SIGTERM', async function () {
      this.timeout(120_000);
      const taskQueue = `cli-${s}`;
      const worker = await startWorker(taskQueue);
      try {
        const env = { ...process.env, DR_TASK_QUEUE: taskQueue, DR_CONFIG: '' };
        const child = spawn(process.execPath, [BIN, '--config', LOCAL_CONFIG_PATH, '--json', 'tenants', '--tenant', tenant, `absent_${s}`], {
          cwd: REPO_ROOT,
          env,
        });
        const r = await finish(child);
        assert.equal(r.code, 1, 'a requested tenant that does not exist makes the command fail');
        const result = JSON.parse(r.stdout) as { tenants: Array<{ name: string }>; missing: string[] };
        assert.deepEqual(
          result.tenants.map((t) => t.name),
          [tenant],
        );
        assert.deepEqual(result.missing, [`absent_${s}`]);
      } finally {
        worker.child.kill('SIGTERM');
      }
      const end = await worker.done;
      assert.equal(end.code, 0, end.stderr);
      assert.match(end.stderr, /odoo-dr worker: stopped/);
    });

    it('stops cleanly on SIGINT', async function () {
      this.timeout(60_000);
      const worker = await startWorker(`cli-int-${s}`);
      worker.child.kill('SIGINT');
      const end = await worker.done;
      assert.equal(end.code, 0, end.stderr);
      assert.match(end.stderr, /odoo-dr worker: stopped/);
    });

    it('exits with code 3 when Temporal is unreachable', async () => {
      const child = spawn(process.execPath, [BIN, '--config', LOCAL_CONFIG_PATH, 'tenants'], {
        cwd: REPO_ROOT,
        env: { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1', DR_CONFIG: '' },
      });
      const r = await finish(child);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /cannot reach Temporal at 127\.0\.0\.1:1/);
    });
  });
});
