/**
 * `odoo-dr export` and `odoo-dr import`: Odoo's own backup format (README "Odoo-format export and
 * import"). Both run in the CLI's process, not as workflows: the zip is a file on the operator's host
 * (written there, or handed in there), and a workflow's activity would need it on whichever worker
 * runs it. Export only reads sessions (local folder or bucket, every byte verified) and writes one
 * local file; import needs what a recovery worker needs (PostgreSQL and ODOO_DATA_DIR), so it runs
 * on the Odoo host, where the file is. Both stream with bounded memory.
 */
import path from 'node:path';
import type { Command } from 'commander';
import type { SessionSource } from '../../src/sessions/catalog';
import { ODOO_DB_NAME } from '../../src/odoo/db-name';
import { CliExit, EXIT, formatBytes, load, printWarnings } from './common';
import { globals } from './output';

/** An error the CLI reports with exit code 2 (bad command line: nothing was done). */
const usage = (message: string) => new CliExit(EXIT.usage, message);

const SESSION = /^backup_\d{8}_\d{6}_[a-z0-9]+$/;

/** Progress on stderr (a line per phase; on a terminal, redrawn in place). */
function progressPrinter(command: string, json: boolean | undefined): (phase: string, detail?: string) => void {
  const tty = Boolean(process.stderr.isTTY);
  return (phase, detail) => {
    const text = `${command}: ${phase}${detail ? ` (${detail})` : ''}`;
    if (tty) process.stderr.write(`\r\x1b[K${text}`);
    else if (!json && !detail) process.stderr.write(`${text}\n`);
  };
}

function checkTenant(tenant: string | undefined): string {
  if (!tenant) throw usage('--tenant DB is required');
  if (!ODOO_DB_NAME.test(tenant) || Buffer.byteLength(tenant) > 63) {
    throw usage(`--tenant "${tenant}" is not a valid Odoo database name (letters, digits, _ . -, starting with a letter or digit, at most 63 bytes)`);
  }
  return tenant;
}

export function registerInteropCommands(program: Command): void {
  program
    .command('export')
    .description("Write a tenant's backup as the zip Odoo's database manager restores (dump.sql, filestore/, manifest.json).")
    .requiredOption('--tenant <db>', 'the tenant to export')
    .requiredOption('-o, --output <file>', 'the zip to write (must not exist)')
    .option('-s, --session <session>', 'the backup session (default: the newest complete session of the tenant that did not fail validation)')
    .option('-c, --cloud', 'read the session from the bucket only')
    .option('--force', 'export from a session that failed validation')
    .option('--allow-unsigned', 'accept a session made before signing was set up')
    .addHelpText(
      'after',
      '\nExamples:\n  odoo-dr export --tenant acme -o /tmp/acme.zip\n  odoo-dr export --tenant acme -s backup_20261126_021503_k3x9q2 -c -o acme.zip\n',
    )
    .action(async (o: { tenant: string; output: string; session?: string; cloud?: boolean; force?: boolean; allowUnsigned?: boolean }, cmd: Command) => {
      const { opts, out } = globals(cmd);
      const tenant = checkTenant(o.tenant);
      if (o.session !== undefined && o.session !== 'latest' && !SESSION.test(o.session)) {
        throw usage(`-s "${o.session}" is not a session name (backup_YYYYMMDD_HHMMSS_<id>)`);
      }
      if (!o.output.endsWith('.zip')) throw usage(`-o ${o.output}: the file name must end in .zip`);
      const config = load(opts);
      printWarnings(config);
      if (o.cloud && !config.cloud) throw usage('--cloud needs DR_CLOUD_BUCKET in the configuration');
      if (!config.encryption.identityFile) throw usage('export decrypts the session: set DR_ENCRYPTION_KEY_FILE');
      const { readIdentity } = await import('../../src/crypto/age.js');
      const { exportTenant } = await import('../../src/interop/export.js');
      const source: SessionSource = o.cloud ? 'cloud' : 'auto';
      const result = await exportTenant({
        config,
        tenant,
        ...(o.session && o.session !== 'latest' ? { session: o.session } : {}),
        source,
        out: path.resolve(o.output),
        identity: await readIdentity(config.encryption.identityFile),
        ...(o.force ? { force: true } : {}),
        ...(o.allowUnsigned ? { allowUnsigned: true } : {}),
        onProgress: progressPrinter('export', out.json),
      });
      if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
      for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`);
      out.result(result, (r) =>
        process.stdout.write(
          `exported ${tenant} from ${r.session} (${r.location}) to ${r.out}: ${formatBytes(r.zipBytes)} ` +
            `(dump.sql ${formatBytes(r.sqlBytes)}, ${r.files} files ${formatBytes(r.fileBytes)}, Odoo ${r.manifest.major_version}, ` +
            `${Object.keys(r.manifest.modules).length} modules, PostgreSQL ${r.manifest.pg_version}) in ${(r.durationMs / 1000).toFixed(1)} s\n`,
        ),
      );
    });

  program
    .command('import <file>')
    .description('Bring an Odoo backup zip (or a plain .sql or pg_dump custom-format dump) in as a new tenant, through a verified shadow copy.')
    .requiredOption('--tenant <db>', 'the new tenant database (must not exist)')
    .option('--copy', 'a copy (default): neutralized, new database.uuid and database.secret, as Odoo\'s "copy" restore')
    .option('--move', 'the tenant itself moved here: database.uuid and database.secret kept, not neutralized')
    .addHelpText(
      'after',
      '\nExamples:\n  odoo-dr import /tmp/customer_2026-11-26.zip --tenant customer-staging\n  odoo-dr import acme.zip --tenant acme --move\n',
    )
    .action(async (file: string, o: { tenant: string; copy?: boolean; move?: boolean }, cmd: Command) => {
      const { opts, out } = globals(cmd);
      const tenant = checkTenant(o.tenant);
      if (o.copy && o.move) throw usage('--copy and --move exclude each other');
      const config = load(opts);
      printWarnings(config);
      const { importArchive } = await import('../../src/interop/import.js');
      const result = await importArchive({
        config,
        file: path.resolve(file),
        tenant,
        mode: o.move ? 'move' : 'copy',
        onProgress: progressPrinter('import', out.json),
      });
      if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
      for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`);
      out.result(result, (r) => {
        const src = r.source ? ` (Odoo ${r.source.version}, database "${r.source.dbName}", ${r.source.modules} modules)` : '';
        process.stdout.write(
          `imported ${r.file}${src} as tenant ${tenant} (${r.mode}${r.mode === 'copy' ? ': neutralized, new database.uuid and database.secret' : ''}): ` +
            `${r.files} files (${formatBytes(r.bytes)}) in ${(r.durationMs / 1000).toFixed(1)} s\n`,
        );
        for (const c of r.checks) process.stdout.write(`  ${c.status.toUpperCase().padEnd(4)}  ${c.name}: ${c.message}\n`);
      });
    });
}
