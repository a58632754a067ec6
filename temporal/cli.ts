/**
 * `odoo-dr`: the operator's CLI. Every command accepts `--config FILE` and `--json` (data on
 * stdout, diagnostics on stderr). Exit codes are documented in EXIT and in the README.
 */
import { hostname, userInfo } from 'node:os';
import { Command, CommanderError } from 'commander';
import { loadConfig, redactConfig, type DrConfig } from '../src/config';
import { ConfigError, DrError } from '../src/errors';
import { DEFAULT_TASK_QUEUE, WorkflowNames, idStamp, workflowIds } from '../workflows/definitions';
import type { TenantDiscoveryInput, TenantDiscoveryResult } from '../workflows/discovery';
import { connectClient, connectWorker, temporalSettings } from './connection';
import { createWorker } from './worker';

/** Exit codes (README "Exit codes"). */
export const EXIT = {
  ok: 0,
  /** The operation ran and failed (or found a problem). */
  failed: 1,
  /** Bad command line or configuration: nothing was started. */
  usage: 2,
  /** A service (Temporal, PostgreSQL) could not be reached. */
  unavailable: 3,
} as const;

interface GlobalOptions {
  config?: string;
  json?: boolean;
}

class CliExit extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

function load(opts: GlobalOptions): DrConfig {
  try {
    return loadConfig(opts.config ? { path: opts.config } : {});
  } catch (err) {
    if (err instanceof ConfigError) throw new CliExit(EXIT.usage, err.message);
    throw err;
  }
}

function printWarnings(config: DrConfig): void {
  for (const w of config.warnings) process.stderr.write(`warning: ${w}\n`);
}

function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** Who started something, for the audit trail and workflow memo. */
export function operatorIdentity(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    /* no passwd entry (containers) */
  }
  return `${user}@${hostname()}`;
}

function printDiscovery(result: TenantDiscoveryResult): void {
  const rows = result.tenants.map((t) => [
    t.name,
    formatBytes(t.databaseBytes),
    t.filestoreExists ? 'yes' : 'no',
    t.connectable ? 'yes' : 'NO',
  ]);
  const header = ['TENANT', 'DATABASE', 'FILESTORE', 'CONNECTABLE'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  process.stdout.write(`${line(header)}\n${rows.map(line).join('\n')}${rows.length ? '\n' : ''}`);
  process.stdout.write(`${result.tenants.length} tenant(s) owned by role "${result.odooRole}"\n`);
  if (result.excluded.length) process.stdout.write(`excluded: ${result.excluded.join(', ')}\n`);
  if (result.missing.length) process.stderr.write(`not tenants (absent, not owned by ${result.odooRole}, or templates): ${result.missing.join(', ')}\n`);
  if (result.invalidNames.length) {
    process.stderr.write(`ignored, names Odoo refuses: ${result.invalidNames.map((n) => JSON.stringify(n)).join(', ')}\n`);
  }
}

/** `outcome.code` is set by actions that end with a non-zero exit code. */
export function buildProgram(outcome: { code: number } = { code: 0 }): Command {
  const program = new Command('odoo-dr')
    .description('Disaster recovery for multi-tenant Odoo, on Temporal.')
    .option('--config <file>', 'configuration file (default: $DR_CONFIG or config/dr-config.env)')
    .option('--json', 'print data as JSON on stdout (diagnostics stay on stderr)')
    .showHelpAfterError()
    .exitOverride();
  program.addHelpText(
    'after',
    `
Examples:
  odoo-dr --config config/dr-config.local.env worker     run the worker (SIGINT/SIGTERM stop it cleanly)
  odoo-dr tenants                                        list the tenants odoo-dr would back up
  odoo-dr config check --json                            validate the configuration

Exit codes: 0 ok, 1 failed, 2 bad usage or configuration, 3 a service is unreachable.`,
  );

  program
    .command('worker')
    .description('Run the odoo-dr worker: executes workflows and activities until SIGINT or SIGTERM.')
    .option('--task-queue <name>', 'task queue (default: DR_TASK_QUEUE)')
    .action(async (cmdOpts: { taskQueue?: string }, cmd: Command) => {
      const opts = cmd.optsWithGlobals<GlobalOptions>();
      const config = load(opts);
      printWarnings(config);
      const { connection, namespace } = await connectWorker(config).catch((err: Error) => {
        throw new CliExit(EXIT.unavailable, err.message);
      });
      const taskQueue = cmdOpts.taskQueue ?? config.taskQueue;
      const worker = await createWorker({ config, connection, namespace, taskQueue });
      process.stderr.write(
        `odoo-dr worker: namespace ${namespace}, task queue ${taskQueue}, ${temporalSettings(config).connectionOptions.address}\n`,
      );
      // Worker.run resolves after SIGINT/SIGTERM once in-flight tasks finished or the grace time passed.
      await worker.run();
      await connection.close();
      process.stderr.write('odoo-dr worker: stopped\n');
    });

  program
    .command('tenants')
    .description("List the tenants: Odoo's rule (owned by the Odoo role, connectable, not a template) and the DR_TENANTS/DR_EXCLUDE_TENANTS filters. Runs tenantDiscoveryWorkflow.")
    .option('--tenant <db...>', 'only these tenants')
    .option('--exclude <db...>', 'leave these out')
    .action(async (cmdOpts: { tenant?: string[]; exclude?: string[] }, cmd: Command) => {
      const opts = cmd.optsWithGlobals<GlobalOptions>();
      const config = load(opts);
      printWarnings(config);
      const client = await connectClient(config).catch((err: Error) => {
        throw new CliExit(EXIT.unavailable, err.message);
      });
      try {
        const input: TenantDiscoveryInput = {};
        if (cmdOpts.tenant) input.include = cmdOpts.tenant;
        if (cmdOpts.exclude) input.exclude = cmdOpts.exclude;
        const result = await client.workflow.execute<(i: TenantDiscoveryInput) => Promise<TenantDiscoveryResult>>(
          WorkflowNames.tenantDiscovery,
          {
            taskQueue: config.taskQueue || DEFAULT_TASK_QUEUE,
            workflowId: workflowIds.tenantDiscovery(`${idStamp(new Date())}-${Math.random().toString(36).slice(2, 8)}`),
            args: [input],
            memo: { startedBy: operatorIdentity() },
            workflowExecutionTimeout: '10 minutes',
          },
        );
        if (opts.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        else printDiscovery(result);
        if (result.missing.length) outcome.code = EXIT.failed;
      } finally {
        await client.connection.close();
      }
    });

  const configCmd = program.command('config').description('Configuration commands.');
  configCmd
    .command('check')
    .description('Validate the configuration and print it with secrets hidden.')
    .action((_: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<GlobalOptions>();
      const config = load(opts);
      if (opts.json) process.stdout.write(`${JSON.stringify(redactConfig(config), null, 2)}\n`);
      else {
        printWarnings(config);
        process.stdout.write(`configuration ${config.source} is valid\n`);
      }
    });

  return program;
}

/** Runs the CLI; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const outcome = { code: EXIT.ok as number };
  const program = buildProgram(outcome);
  try {
    await program.parseAsync(argv);
    return outcome.code;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof CliExit) {
      process.stderr.write(`odoo-dr: ${err.message}\n`);
      return err.code;
    }
    if (err instanceof DrError) {
      process.stderr.write(`odoo-dr: ${err.name}: ${err.message}\n`);
      return err.permanent ? EXIT.failed : EXIT.unavailable;
    }
    process.stderr.write(`odoo-dr: ${(err as Error).message ?? String(err)}\n`);
    return EXIT.failed;
  }
}
