/**
 * `odoo-dr sessions list` (the local folder's or the bucket's sessions, each manifest verified)
 * and `odoo-dr keys signing` (the public key line of a session signing key, made on request).
 * Both run in the CLI's process: they read files and the bucket, no workflow.
 */
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import type { SessionDescription } from '../../src/sessions/describe';
import { CliExit, EXIT, formatBytes, formatDuration, formatTable, load, printWarnings, warnUnsigned } from './common';
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

  sessions
    .command('show <session>')
    .description(
      'One session, its manifest verified: where it was read from and who signed it, each tenant (status, database and filestore sizes, Odoo series), the globals and configuration it holds, its validation and drill results.',
    )
    .option('-c, --cloud', 'read it from the bucket (default: the local folder, else the bucket)')
    .option('--local', 'read it from the local folder only')
    .option('--allow-unsigned', 'accept a session made before signing was set up')
    .action(async (session: string, cmdOpts: { cloud?: boolean; local?: boolean; allowUnsigned?: boolean }, cmd: Command) => {
      const { opts, out } = globals(cmd);
      const config = load(opts);
      printWarnings(config);
      if (cmdOpts.cloud && cmdOpts.local) throw new CliExit(EXIT.usage, '--cloud and --local exclude each other');
      if (cmdOpts.cloud && !config.cloud) throw new CliExit(EXIT.usage, '--cloud needs DR_CLOUD_BUCKET in the configuration');
      if (cmdOpts.allowUnsigned) warnUnsigned();
      const { SessionCatalog } = await import('../../src/sessions/catalog.js');
      const { describeSession } = await import('../../src/sessions/describe.js');
      const catalog = SessionCatalog.fromConfig(config, { allowUnsigned: Boolean(cmdOpts.allowUnsigned) });
      const described = await describeSession(catalog, session, cmdOpts.cloud ? 'cloud' : cmdOpts.local ? 'local' : 'auto');
      out.result(described, printSession);
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

function printSession(d: SessionDescription): void {
  const w = (line: string) => process.stdout.write(`${line}\n`);
  w(
    `session ${d.session}: ${d.status.toUpperCase()}, read from ${d.where}, ${d.signedBy ? `signed by ${d.signedBy}` : 'UNSIGNED (accepted by --allow-unsigned)'}`,
  );
  w(`started ${d.startedAt} by ${d.startedBy} (workflow ${d.workflowId}) on ${d.host}; finished ${d.finishedAt}`);
  w(
    `PostgreSQL ${d.postgres.server} (${d.postgres.pgDump}); zstd ${d.compression.level}; ${formatBytes(d.bytes)} of its own files (packs are shared between sessions)`,
  );
  w(d.cloud ? `cloud copy: s3://${d.cloud.bucket}/${d.cloud.prefix}` : 'cloud copy: none (local only)');
  const newest = d.results.find((r) => r.kind === 'validation');
  w(
    `validation: ${d.validation}${newest ? ` (${newest.finishedAt}${newest.restoreTest ? ', with a restore test' : ''})` : ' (run odoo-dr validate ' + d.session + ' --restore-test)'}`,
  );
  const rows = Object.entries(d.tenants).map(([name, t]) => [
    name,
    t.status,
    t.database ? formatBytes(t.database.bytes) : '-',
    t.filestore ? `${t.filestore.files} (${formatBytes(t.filestore.bytes)})` : '-',
    t.odoo?.series ?? '-',
    formatDuration(t.durationMs),
    t.error ?? (t.filestore?.mismatched ? `${t.filestore.mismatched} file(s) not matching their name` : ''),
  ]);
  process.stdout.write(formatTable(['TENANT', 'STATUS', 'DUMP', 'FILES', 'ODOO', 'DURATION', 'PROBLEM'], rows));
  w(
    `cluster globals: ${d.globals ? 'yes' : 'no'}; configuration: ${d.config ? `${d.config.paths} path(s)${d.config.missing.length ? `, missing: ${d.config.missing.join(', ')}` : ''}` : 'no'}`,
  );
  if (d.results.length) {
    w('results:');
    for (const r of d.results) {
      w(
        `  ${r.finishedAt}  ${r.kind}  ${r.status.toUpperCase()}${r.tenant ? `  tenant ${r.tenant}` : ''}${r.restoreTest ? '  restore test' : ''}  ${r.workflowId}`,
      );
      for (const f of r.failures) w(`    - ${f}`);
    }
  }
  for (const warning of d.warnings) w(`warning: ${warning}`);
}
