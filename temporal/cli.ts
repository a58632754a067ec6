/**
 * `odoo-dr`: the operator's CLI. Every command accepts `--config FILE` and `--json` (data on
 * stdout, diagnostics on stderr). Exit codes are documented in EXIT and in the README.
 *
 * This file sets up the program (global options, help) and turns errors into exit codes; the
 * commands live in temporal/cli/<area>.ts, print through temporal/cli/output.ts and share
 * temporal/cli/common.ts and wait.ts.
 *
 * Start-up time counts (every `backup --wait` pays it): what only one command needs (the worker and
 * its native code, the S3 SDK, signing keys, the recovery planner) is loaded by that command.
 */
import { Command, CommanderError } from 'commander';
import { registerBackupCommands } from './cli/backup';
import { registerCleanupCommands } from './cli/cleanup';
import { EXIT } from './cli/common';
import { commandFailure } from './cli/exit-codes';
import { registerInteropCommands } from './cli/interop';
import { registerMonitorCommands } from './cli/monitor';
import { registerRecoveryCommands } from './cli/recovery';
import { registerScheduleCommands } from './cli/schedules';
import { registerSessionCommands } from './cli/sessions';
import { registerConfigCommands, registerSetupCommands } from './cli/setup';
import { registerValidationCommands } from './cli/validation';
import { DEFAULT_RECONNECT_TIMEOUT_MINUTES } from './cli/wait';
import { registerWorkerCommand } from './cli/worker';
import { registerWorkflowCommands } from './cli/workflows';

/** `outcome.code` is set by actions that end with a non-zero exit code. */
export function buildProgram(outcome: { code: number } = { code: 0 }): Command {
  const program = new Command('odoo-dr')
    .description('Disaster recovery for multi-tenant Odoo, on Temporal.')
    .option('--config <file>', 'configuration file (default: $DR_CONFIG or config/dr-config.env)')
    .option('--json', 'print data as JSON on stdout (diagnostics stay on stderr)')
    .option(
      '--reconnect-timeout <minutes>',
      `while waiting (--wait), how long Temporal may stay unreachable before odoo-dr stops waiting with exit code 3; the workflow keeps running (default ${DEFAULT_RECONNECT_TIMEOUT_MINUTES})`,
    )
    .showHelpAfterError()
    .exitOverride();
  program.addHelpText(
    'after',
    `
Examples:
  odoo-dr --config config/dr-config.local.env worker     run the worker (SIGINT/SIGTERM stop it cleanly)
  odoo-dr tenants                                        list the tenants odoo-dr would back up
  odoo-dr config check --json                            validate the configuration

Exit codes: 0 ok, 1 failed, 2 bad usage or configuration, 3 a service is unreachable (also when
Temporal stays unreachable for --reconnect-timeout while a command waits: the workflow keeps running).`,
  );

  // The order of `odoo-dr --help`.
  registerWorkerCommand(program);
  registerBackupCommands(program, outcome);
  registerValidationCommands(program, outcome);
  registerRecoveryCommands(program, outcome);
  registerMonitorCommands(program, outcome);
  registerCleanupCommands(program, outcome);
  registerSessionCommands(program);
  registerWorkflowCommands(program);
  registerSetupCommands(program, outcome);
  registerInteropCommands(program);
  registerConfigCommands(program);
  registerScheduleCommands(program, outcome);
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
    // With --json a failure is also a JSON object on stdout, so that scripts parse one thing.
    const json = Boolean(program.opts<{ json?: boolean }>().json) || argv.slice(2).includes('--json');
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return EXIT.ok;
      if (json) writeJsonError(err.message.replace(/^error: /, ''), EXIT.usage);
      return EXIT.usage;
    }
    const failure = commandFailure(err);
    process.stderr.write(`odoo-dr: ${failure.message}\n`);
    if (json) writeJsonError(failure.message, failure.code);
    return failure.code;
  }
}

function writeJsonError(message: string, exitCode: number): void {
  process.stdout.write(`${JSON.stringify({ error: { message, exitCode } })}\n`);
}
