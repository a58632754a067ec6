/**
 * `odoo-dr worker`: runs the worker (temporal/worker.ts, loaded only by this command: its native
 * code is not worth loading for the others) until SIGINT or SIGTERM.
 */
import type { Command } from 'commander';
import { connectWorker, temporalSettings } from '../connection';
import { CliExit, EXIT, load, printWarnings } from './common';
import { globals } from './output';

export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description('Run the odoo-dr worker: executes workflows and activities until SIGINT or SIGTERM.')
    .option('--task-queue <name>', 'task queue (default: DR_TASK_QUEUE)')
    .action(async (cmdOpts: { taskQueue?: string }, cmd: Command) => {
      const { opts } = globals(cmd);
      const config = load(opts);
      printWarnings(config);
      const { connection, namespace } = await connectWorker(config).catch((err: Error) => {
        throw new CliExit(EXIT.unavailable, err.message);
      });
      const taskQueue = cmdOpts.taskQueue ?? config.taskQueue;
      const { createWorker } = await import('../worker.js');
      const worker = await createWorker({ config, connection, namespace, taskQueue });
      for (const left of worker.swept) process.stderr.write(`odoo-dr worker: removed what a dead worker left: ${left}\n`);
      process.stderr.write(
        `odoo-dr worker: namespace ${namespace}, task queue ${taskQueue} (and its own ${worker.workerQueue}), ${temporalSettings(config).connectionOptions.address}\n`,
      );
      process.stderr.write(`odoo-dr worker: ${worker.workflowCode}\n`);
      // Worker.run resolves after SIGINT/SIGTERM once in-flight tasks finished or the grace time passed.
      await worker.run();
      await connection.close();
      process.stderr.write('odoo-dr worker: stopped\n');
    });
}
