/**
 * `odoo-dr sessions list` (the local folder's or the bucket's sessions, each manifest verified)
 * and `odoo-dr keys signing` (the public key line of a session signing key, made on request).
 * Both run in the CLI's process: they read files and the bucket, no workflow.
 */
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { CliExit, EXIT, formatTable, load, printWarnings } from './common';
import { globals } from './output';

export function registerSessionCommands(program: Command): void {
  const sessions = program.command('sessions').description('Backup sessions.');
  sessions
    .command('list')
    .description('List backup sessions, newest first; only a verified manifest with status complete makes a session complete.')
    .option('-c, --cloud', 'list the sessions in the bucket (each manifest verified), not the local folder')
    .action(async (cmdOpts: { cloud?: boolean }, cmd: Command) => {
      const { opts, out } = globals(cmd);
      const config = load(opts);
      printWarnings(config);
      if (cmdOpts.cloud && !config.cloud) throw new CliExit(EXIT.usage, '--cloud needs DR_CLOUD_BUCKET in the configuration');
      const { SessionCatalog } = await import('../../src/sessions/catalog.js');
      const catalog = SessionCatalog.fromConfig(config);
      const store = cmdOpts.cloud ? catalog.cloud! : catalog.local;
      const listed = await catalog.list(store);
      out.result({ location: store.location, where: store.description, sessions: listed }, ({ where }) => {
        process.stdout.write(`sessions in ${where}:\n`);
        const rows = listed.map((s) => [
          s.session,
          s.status,
          `${Object.values(s.tenants).filter((t) => t === 'complete').length}/${Object.keys(s.tenants).length}`,
          s.validation,
          s.problem ?? '',
        ]);
        process.stdout.write(formatTable(['SESSION', 'STATUS', 'TENANTS OK', 'VALIDATION', 'PROBLEM'], rows));
      });
    });

  const keys = program.command('keys').description('Keys odoo-dr uses.');
  keys
    .command('signing <file>')
    .description(
      'Print the public key line (ssh-ed25519 …) of a session signing key, for DR_TRUSTED_SIGNERS; --create makes the key first when it does not exist (never overwrites).',
    )
    .option('--create', 'create the key (Ed25519, PKCS#8 PEM, mode 0600) if the file does not exist')
    .action(async (file: string, cmdOpts: { create?: boolean }, cmd: Command) => {
      const { out } = globals(cmd);
      if (!path.isAbsolute(file)) throw new CliExit(EXIT.usage, `the key file must be an absolute path, got "${file}"`);
      const { formatPublicKey, generateSigningKey, readSigningKey } = await import('../../src/crypto/signing.js');
      const created = Boolean(cmdOpts.create) && !existsSync(file);
      const publicKey = created
        ? await generateSigningKey(file, `odoo-dr@${hostname()}`)
        : formatPublicKey(await readSigningKey(file), `odoo-dr@${hostname()}`);
      out.brief({ file, publicKey, created }, (k) => process.stdout.write(`${k.publicKey}\n`));
      if (created) {
        process.stderr.write(
          `created ${file} (mode 0600): set DR_SIGNING_KEY_FILE to it on the backup host, and the line above in DR_TRUSTED_SIGNERS where sessions are read\n`,
        );
      }
    });
}
