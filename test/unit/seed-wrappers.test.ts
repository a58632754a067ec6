/**
 * The seed's scripts (scripts/*.sh) map their flags onto the right odoo-dr command. ODOO_DR points
 * them at a recorder that prints its argv, one argument per line: the mapping is what is tested
 * here; test/cli/seed-wrappers.test.ts runs two of them against the real CLI and stack.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/config';

const dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-seed-'));
const recorder = path.join(dir, 'record-odoo-dr');
writeFileSync(recorder, '#!/bin/sh\nprintf "DR_CONFIG=%s\\n" "$DR_CONFIG"\nfor a in "$@"; do printf "%s\\n" "$a"; done\n', { mode: 0o755 });

function run(script: string, args: string[], env: NodeJS.ProcessEnv = { DR_CONFIG: '/etc/odoo-dr/dr-config.env' }) {
  const r = spawnSync('bash', [path.join(REPO_ROOT, 'scripts', script), ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ODOO_DR: recorder, ...env },
    encoding: 'utf8',
  });
  const lines = r.stdout.split('\n').filter((l, i, all) => i < all.length - 1 || l !== '');
  return { code: r.status, config: lines[0]?.replace(/^DR_CONFIG=/, ''), argv: lines.slice(1), stdout: r.stdout, stderr: r.stderr };
}

/** [script, its arguments as in the seed's runbooks and cron lines, the odoo-dr argv expected] */
const CASES: Array<[string, string[], string[]]> = [
  ['enhanced-backup.sh', [], ['backup', '--wait']],
  [
    'enhanced-backup.sh',
    ['--tenant', 'acme', '--tenant', 'globex-eu', '--no-cloud'],
    ['backup', '--wait', '--tenant', 'acme', '--tenant', 'globex-eu', '--no-cloud'],
  ],
  ['enhanced-backup.sh', ['--config', '/srv/dr.env'], ['--config', '/srv/dr.env', 'backup', '--wait']],
  ['validate-backup.sh', [], ['validate', 'latest', '--wait']],
  ['validate-backup.sh', ['/var/backups/odoo/backup_20261126_020000_abcd'], ['validate', 'backup_20261126_020000_abcd', '--wait']],
  [
    'validate-backup.sh',
    ['/var/backups/odoo/sessions/backup_20261126_020000_k3x9q2/', '--restore-test'],
    ['validate', 'backup_20261126_020000_k3x9q2', '--wait', '--restore-test'],
  ],
  ['validate-backup.sh', ['latest', '-c', '--tenant', 'acme'], ['validate', 'latest', '--wait', '-c', '--tenant', 'acme']],
  ['disaster-recovery.sh', ['-m', 'database-only', '-c', 'latest'], ['recover', '-m', 'database-only', '-c', '-s', 'latest', '--wait']],
  ['disaster-recovery.sh', ['-m', 'full'], ['recover', '-m', 'full', '--wait']],
  [
    'disaster-recovery.sh',
    ['-m', 'files-only', '-t', 'backup_20261126_020000_k3x9q2'],
    ['recover', '-m', 'files-only', '-t', '-s', 'backup_20261126_020000_k3x9q2', '--wait'],
  ],
  [
    'disaster-recovery.sh',
    ['-m', 'full', '-c', '-s', 'backup_20261126_020000_k3x9q2', '--tenant', 'acme', '-y'],
    ['recover', '-m', 'full', '-c', '--tenant', 'acme', '--yes', '-s', 'backup_20261126_020000_k3x9q2', '--wait'],
  ],
  // The seed's bare -s (skip the safety backup): odoo-dr always keeps a pre-recovery copy.
  ['disaster-recovery.sh', ['-m', 'database-only', '-s', '-c', 'latest'], ['recover', '-m', 'database-only', '-c', '-s', 'latest', '--wait']],
  ['disaster-recovery.sh', ['-m', 'config-only', '-t'], ['recover', '-m', 'config-only', '-t', '--wait']],
  ['dr-test.sh', [], ['drill', '-m', 'full', '--wait']],
  ['dr-test.sh', ['-m', 'full'], ['drill', '-m', 'full', '--wait']],
  ['dr-test.sh', ['-m', 'restore-only', '-c'], ['drill', '-m', 'restore-only', '-c', '--wait']],
  ['dr-test.sh', ['--mode=validation-only', '--tenant', 'acme'], ['drill', '-m', 'validation-only', '--tenant', 'acme', '--wait']],
  ['dr-monitor.sh', [], ['monitor', '--wait']],
  ['dr-monitor.sh', ['--json'], ['--json', 'monitor', '--wait']],
  ['dr-monitor.sh', ['--status'], ['status']],
  [
    'setup-automation.sh',
    ['--backup-time', '03:00', '--test-schedule', 'weekly', '--monitor-interval', '30'],
    ['schedules', 'apply', '--backup-time', '03:00', '--test-schedule', 'weekly', '--monitor-interval', '30'],
  ],
  ['setup-automation.sh', [], ['schedules', 'apply']],
  ['setup-automation.sh', ['--backup-time=02:30', '--dry-run'], ['schedules', 'apply', '--backup-time', '02:30', '--dry-run']],
  ['setup-automation.sh', ['--monitor-interval', '15', '--force'], ['schedules', 'apply', '--monitor-interval', '15', '--force']],
  ['setup-automation.sh', ['--remove'], ['schedules', 'remove']],
  ['setup-encryption.sh', [], ['setup']],
  ['setup-encryption.sh', ['--check', '--dir', '/etc/odoo-dr'], ['setup', '--check', '--dir', '/etc/odoo-dr']],
];

/** [script, arguments, what stderr must say]: refused with exit 2 and the usage hint, odoo-dr not run. */
const REFUSED: Array<[string, string[], RegExp]> = [
  ['enhanced-backup.sh', ['--frobnicate'], /unknown option or argument: --frobnicate/],
  ['enhanced-backup.sh', ['--tenant'], /--tenant needs a value/],
  ['validate-backup.sh', ['backup_20261126_020000_aaaaaa', 'backup_20261127_020000_bbbbbb'], /one session only/],
  ['disaster-recovery.sh', ['-c', 'latest'], /-m MODE is required/],
  ['disaster-recovery.sh', ['-m', 'full', '-s', 'latest', 'backup_20261126_020000_k3x9q2'], /the session is given twice/],
  ['disaster-recovery.sh', ['-m', 'full', '-t', 'acme'], /-t is test mode \(a dry run\) and "acme" is not a session: to choose tenants use --tenant acme/],
  ['disaster-recovery.sh', ['-m'], /-m needs a value/],
  ['dr-test.sh', ['-x'], /unknown option or argument: -x/],
  ['dr-monitor.sh', ['--interval', '5'], /unknown option or argument: --interval/],
  ['setup-automation.sh', ['--remove', '--backup-time', '03:00'], /--remove deletes the schedules: it takes no other option/],
  ['setup-automation.sh', ['--backup-time'], /--backup-time needs a value/],
  ['setup-encryption.sh', ['--force'], /unknown option or argument: --force/],
];

describe("the seed's scripts (flag mapping)", () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const [script, args, expected] of CASES) {
    it(`${script} ${args.join(' ')} → odoo-dr ${expected.join(' ')}`, () => {
      const r = run(script, args);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.argv, expected);
    });
  }

  for (const [script, args, message] of REFUSED) {
    it(`${script} ${args.join(' ')} is refused (exit 2), odoo-dr not run`, () => {
      const r = run(script, args);
      assert.equal(r.code, 2);
      assert.match(r.stderr, message);
      assert.match(r.stderr, new RegExp(`Run ${script.replace('.', '\\.')} --help for usage`));
      assert.equal(r.stdout, '', 'odoo-dr must not have been run');
    });
  }

  it('every script prints its usage with --help, naming the odoo-dr command it runs', () => {
    for (const script of new Set(CASES.map(([s]) => s))) {
      const r = run(script, ['--help']);
      assert.equal(r.code, 0, script);
      assert.match(r.stdout, new RegExp(`^Usage: ${script.replace('.', '\\.')}`), script);
      assert.match(r.stdout, /Runs: odoo-dr /, script);
    }
  });

  it('a bare -s of disaster-recovery.sh says the replaced state is kept anyway', () => {
    const r = run('disaster-recovery.sh', ['-m', 'database-only', '-s']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /keeps the replaced state as a pre-recovery copy/);
  });

  it("keeps DR_CONFIG when set; otherwise it is the checkout's config/dr-config.env when that exists", () => {
    assert.equal(run('dr-monitor.sh', [], { DR_CONFIG: '/srv/odoo-dr.env' }).config, '/srv/odoo-dr.env');
    const fallback = run('dr-monitor.sh', [], {}).config;
    const own = path.join(REPO_ROOT, 'config', 'dr-config.env');
    assert.ok(fallback === '' || fallback === own, `DR_CONFIG was ${fallback}`);
    // setup-encryption.sh creates the configuration where the seed's script did, next to the scripts.
    const setup = run('setup-encryption.sh', [], {});
    assert.deepEqual(setup.argv, setup.config ? ['setup'] : ['--config', own, 'setup']);
  });
});
