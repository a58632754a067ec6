/**
 * How a command prints its data: a text printer and a JSON printer, chosen once from `--json` (as
 * restic does), so that no command branches on --json. JSON goes to stdout; diagnostics stay on
 * stderr in both modes. Also reads the global options once per command.
 */
import type { Command } from 'commander';
import type { GlobalOptions } from './common';

export interface Printer {
  /** --json was given (a long wait then shows no progress line). */
  readonly json: boolean;
  /** A command's result: indented JSON, or what `text` writes for a person. */
  result<T>(value: T, text: (value: T) => void): void;
  /** A short answer (what was started or changed): JSON on one line, or what `text` writes (nothing without it). */
  brief<T>(value: T, text?: (value: T) => void): void;
}

function writeJson(value: unknown, indent?: number): void {
  process.stdout.write(`${JSON.stringify(value, null, indent)}\n`);
}

const textPrinter: Printer = {
  json: false,
  result: (value, text) => text(value),
  brief: (value, text) => text?.(value),
};

const jsonPrinter: Printer = {
  json: true,
  result: (value) => writeJson(value, 2),
  brief: (value) => writeJson(value),
};

export function printerFor(json: boolean | undefined): Printer {
  return json ? jsonPrinter : textPrinter;
}

/** The global options (--config, --json, --reconnect-timeout) of the command being run, and the printer --json chose. */
export function globals(cmd: Command): { opts: GlobalOptions; out: Printer } {
  const opts = cmd.optsWithGlobals<GlobalOptions>();
  return { opts, out: printerFor(opts.json) };
}
