/**
 * `odoo-dr setup [--check]`: first-time set-up of a host and a check of everything odoo-dr depends
 * on, each with ok / problem and the exact fix. Without --check it creates what is missing (the
 * configuration file from the example, the age identity, the signing key) and never overwrites.
 */
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { loadConfig, redactConfig, type DrConfig } from '../../src/config';
import { ConfigError } from '../../src/errors';
import type { KeyState } from '../../src/setup/bootstrap';
import { allWorking, ok, problem, skipped, type SetupCheck } from '../../src/setup/report';
import { CliExit, EXIT, formatTable, load, printWarnings, type GlobalOptions } from './common';
import { globals } from './output';
import { checkTemporal } from './setup-temporal';

interface SetupOptions {
  check?: boolean;
  dir?: string;
  sendTest?: boolean;
  applyLifecycle?: boolean;
}

/** What `setup --json` prints. */
export interface SetupReport {
  config: string;
  mode: 'setup' | 'check';
  ok: boolean;
  keys: { identity?: KeyState; signing?: KeyState };
  checks: SetupCheck[];
}

/** The checkout's config/dr-config.env.example, from dist/temporal/cli or temporal/cli. */
function examplePath(): string {
  let dir = __dirname;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${__dirname}`);
    dir = up;
  }
  return path.join(dir, 'config', 'dr-config.env.example');
}

const keyComment = () => `odoo-dr@${hostname()}`;

/** Key and configuration set-up (age and signing code): loaded by `setup` alone, not at every CLI start. */
const bootstrap = () => import('../../src/setup/bootstrap.js');

/** Creates the configuration from the example, with fresh keys under `keyDir` (existing keys are kept). */
async function createConfig(file: string, keyDir: string): Promise<{ checks: SetupCheck[]; keys: SetupReport['keys'] }> {
  const { ensureIdentity, ensureSigningKey, fillExample, readExample, writeNewConfig } = await bootstrap();
  const identity = await ensureIdentity(path.join(keyDir, 'encryption.key'), true);
  const signing = await ensureSigningKey(path.join(keyDir, 'signing.key'), true, keyComment());
  for (const k of [identity, signing]) if (k.state === 'unusable') throw new CliExit(EXIT.failed, `${k.file}: ${k.error ?? 'unusable'}`);
  const content = fillExample(await readExample(examplePath()), {
    DR_ENCRYPTION_KEY_FILE: identity.file,
    DR_AGE_RECIPIENTS: identity.publicKey!,
    DR_SIGNING_KEY_FILE: signing.file,
    DR_TRUSTED_SIGNERS: signing.publicKey!,
  });
  await writeNewConfig(file, content);
  const strip = ({ file: f, state, publicKey }: KeyState): KeyState => ({ file: f, state, ...(publicKey ? { publicKey } : {}) });
  return {
    checks: [
      ok(
        'config',
        'file',
        `created ${file} (mode 0600) from the example with the key paths and public keys filled in: set PostgreSQL, the bucket and the alerts in it, then run odoo-dr setup --check`,
      ),
    ],
    keys: { identity: strip(identity), signing: strip(signing) },
  };
}

function loadOrExit(file: string): DrConfig {
  try {
    return loadConfig({ path: file });
  } catch (err) {
    if (err instanceof ConfigError) throw new CliExit(EXIT.usage, err.message);
    throw err;
  }
}

export async function runSetup(opts: GlobalOptions, cmdOpts: SetupOptions): Promise<SetupReport> {
  const file = path.resolve(opts.config ?? (process.env.DR_CONFIG || 'config/dr-config.env'));
  const check = Boolean(cmdOpts.check);
  const checks: SetupCheck[] = [];
  let keys: SetupReport['keys'] = {};
  if (!existsSync(file)) {
    if (check) {
      checks.push(
        problem('config', 'file', `${file} does not exist`, `odoo-dr setup${opts.config ? ` --config ${file}` : ''} (creates it from the example, with keys)`),
      );
      return { config: file, mode: 'check', ok: false, keys, checks };
    }
    const keyDir = path.resolve(cmdOpts.dir ?? (await bootstrap()).defaultKeyDir());
    const created = await createConfig(file, keyDir);
    checks.push(...created.checks);
    keys = created.keys;
  } else {
    checks.push(ok('config', 'file', `${file} is valid`));
    if (cmdOpts.dir !== undefined) {
      checks.push({
        service: 'config',
        check: '--dir',
        status: 'warning',
        detail: `${file} exists: --dir is used only when the configuration is created; keys are where DR_ENCRYPTION_KEY_FILE and DR_SIGNING_KEY_FILE say`,
      });
    }
  }
  const config = loadOrExit(file);
  for (const w of config.warnings) checks.push({ service: 'config', check: 'variables', status: 'warning', detail: w });

  const k = await (await bootstrap()).setUpKeys(config, { check, comment: keyComment() });
  checks.push(...k.checks);
  keys = {
    ...keys,
    ...(k.identity ? { identity: keys.identity?.state === 'created' ? keys.identity : k.identity } : {}),
    ...(k.signing ? { signing: keys.signing?.state === 'created' ? keys.signing : k.signing } : {}),
  };

  // The services, at once: each check has its own timeouts, and an unreachable one must not hold up the others.
  const { checkPostgres } = await import('../../src/setup/postgres.js');
  const { checkS3 } = await import('../../src/setup/s3.js');
  const { checkSmtp, checkWebhook } = await import('../../src/setup/notify.js');
  const sendTest = Boolean(cmdOpts.sendTest);
  const results = await Promise.all([
    checkPostgres(config),
    config.cloud
      ? checkS3(config.cloud, { retentionDays: config.retention.cloudDays, check, applyLifecycle: Boolean(cmdOpts.applyLifecycle) })
      : Promise.resolve([skipped('s3', 'bucket', 'DR_CLOUD_BUCKET is empty: backups stay on this host only (a site loss loses them)')]),
    checkSmtp(config, sendTest).then((c) => [c]),
    checkWebhook(config, sendTest).then((c) => [c]),
    checkTemporal(config),
  ]);
  for (const r of results) checks.push(...r);
  return { config: file, mode: check ? 'check' : 'setup', ok: allWorking(checks), keys, checks };
}

function printReport(report: SetupReport): void {
  const rows = report.checks.map((c) => [c.status === 'ok' ? 'ok' : c.status.toUpperCase(), c.service, c.check, c.detail]);
  process.stdout.write(formatTable(['STATUS', 'SERVICE', 'CHECK', 'DETAIL'], rows));
  const fixes = report.checks.filter((c) => c.fix);
  if (fixes.length) {
    process.stdout.write('\nto fix:\n');
    for (const c of fixes) process.stdout.write(`  ${c.service} ${c.check}: ${c.fix}\n`);
  }
  const { identity, signing } = report.keys;
  if (identity?.publicKey || signing?.publicKey) {
    process.stdout.write('\nkeys:\n');
    if (identity?.publicKey) process.stdout.write(`  age recipient   ${identity.publicKey}   (DR_AGE_RECIPIENTS on every backup host)\n`);
    if (signing?.publicKey) process.stdout.write(`  signing key     ${signing.publicKey}   (DR_TRUSTED_SIGNERS wherever sessions are validated or restored)\n`);
  }
  if (identity && (identity.state === 'created' || identity.state === 'existing')) {
    process.stdout.write(
      `\nIMPORTANT: store a copy of ${identity.file} OFFLINE (a password manager, a second site). It is the only key that decrypts the backups:\n` +
        'if this host is lost with it, every backup is lost too. Backup hosts need only the age recipient above.\n',
    );
  }
  process.stdout.write(
    `\n${report.ok ? 'everything odoo-dr needs works' : 'something is broken: see the fixes above'}${report.mode === 'check' ? ' (checked only, nothing changed)' : ''}\n`,
  );
}

export function registerSetupCommands(program: Command, outcome: { code: number }): void {
  program
    .command('setup')
    .description(
      'First-time set-up (configuration from the example, age identity, signing key; never overwrites) and a check of PostgreSQL, S3, SMTP, the webhook and Temporal, each with the exact fix.',
    )
    .option('--check', 'change nothing: only check (exit 1 when something is broken)')
    .option('--dir <dir>', 'folder for new keys when the configuration file is created (default /etc/odoo-dr as root, else ~/.config/odoo-dr)')
    .option('--send-test', 'send a test e-mail to DR_NOTIFICATION_EMAIL and post a test message to DR_WEBHOOK_URL')
    .option(
      '--apply-lifecycle',
      "put the seed's lifecycle rules on the bucket (sessions: Standard-IA 30, Glacier 90, Deep Archive 365 days within DR_RETENTION_DAYS; packs: Standard-IA 30; abandoned uploads removed after 7 days)",
    )
    .addHelpText(
      'after',
      `
Examples:
  odoo-dr setup                                   create config/dr-config.env and the keys if missing, then check
  odoo-dr setup --check                           check only (cron, CI, after a change); exit 1 when broken
  odoo-dr --config /etc/odoo-dr/dr-config.env setup --dir /etc/odoo-dr
  odoo-dr setup --check --send-test               also send a test e-mail and webhook message

Exit codes: 0 everything works (warnings allowed), 1 something is broken, 2 invalid configuration.`,
    )
    .action(async (cmdOpts: SetupOptions, cmd: Command) => {
      const { opts, out } = globals(cmd);
      if (cmdOpts.check && cmdOpts.applyLifecycle) throw new CliExit(EXIT.usage, '--check changes nothing: it cannot go with --apply-lifecycle');
      if (cmdOpts.dir !== undefined && cmdOpts.dir.trim() === '') throw new CliExit(EXIT.usage, '--dir must name a folder');
      const report = await runSetup(opts, cmdOpts);
      out.result(report, printReport);
      if (!report.ok) outcome.code = EXIT.failed;
    });
}

/** `odoo-dr config check`: the configuration validated and printed with its secrets hidden. */
export function registerConfigCommands(program: Command): void {
  const configCmd = program.command('config').description('Configuration commands.');
  configCmd
    .command('check')
    .description('Validate the configuration and print it with secrets hidden.')
    .action((_: unknown, cmd: Command) => {
      const { opts, out } = globals(cmd);
      const config = load(opts);
      out.result(redactConfig(config), () => {
        printWarnings(config);
        process.stdout.write(`configuration ${config.source} is valid\n`);
      });
    });
}
