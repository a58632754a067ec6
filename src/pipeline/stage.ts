/** What a pipeline runs: stages (commands, never through a shell), their environment and their stderr tails. */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import { InvalidInputError, PipelineError } from '../errors';

export interface Stage {
  /** Shown in errors and used as the key of `PipelineResult.stderr`. */
  name: string;
  /** Executable, looked up in PATH unless it contains a `/`. Never run through a shell. */
  command: string;
  args: string[];
  /** Merged over a minimal environment (PATH, HOME, locale, TZ, TMPDIR); secrets like PGPASSWORD go only here. */
  env?: NodeJS.ProcessEnv;
}

/** Bytes of each stage's stderr that are kept. */
export const STDERR_TAIL_BYTES = 8 * 1024;
/** Bytes of a failing stage's stderr quoted in the error message. */
export const MESSAGE_TAIL_CHARS = 1_500;
/** Environment variables passed on to children (everything else must be given in `Stage.env`). */
const INHERITED_ENV = ['PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'LANGUAGE', 'LC_ALL', 'LC_CTYPE', 'LC_MESSAGES', 'TZ', 'TMPDIR'];
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Advanced zstd settings of a stage: `--zstd=<parameters>`, and the row-based match finder off. */
export interface ZstdTuning {
  /** `name=value,…`, checked by the configuration (src/config/values `zstdParameters`); empty: none. */
  parameters: string;
  /** Adds `--no-row-match-finder` (zstd ≥ 1.5; see `zstdHasRowMatchFinderFlag`). */
  noRowMatchFinder?: boolean;
}

/** `zstd -q -c -<level> [--zstd=…] -T<threads>`: compresses stdin to stdout. `threads` 0 = one per core (zstd's choice). */
export function zstdStage(level: number, threads = 0, tuning?: ZstdTuning): Stage {
  if (!Number.isInteger(level) || level < 1 || level > 19) {
    throw new InvalidInputError(`zstd compression level must be a whole number from 1 to 19, got ${level}`);
  }
  if (!Number.isInteger(threads) || threads < 0) {
    throw new InvalidInputError(`zstd threads must be a whole number (0 = one per core), got ${threads}`);
  }
  const advanced = tuning?.parameters ? [`--zstd=${tuning.parameters}`, ...(tuning.noRowMatchFinder ? ['--no-row-match-finder'] : [])] : [];
  return { name: 'zstd', command: 'zstd', args: ['-q', '-c', `-${level}`, ...advanced, `-T${threads}`] };
}

let rowMatchFinderFlag: Promise<boolean> | undefined;
/**
 * Whether the installed zstd takes `--no-row-match-finder` (its help lists it; zstd 1.5 and later):
 * asked once per process. With a small search (searchLog 1) hash chains cost less CPU than the row
 * match finder zstd would pick itself; an older zstd has no row match finder and no such flag.
 */
export function zstdHasRowMatchFinderFlag(): Promise<boolean> {
  rowMatchFinderFlag ??= new Promise((resolve) => {
    execFile('zstd', ['-H'], { env: childEnv({ name: 'zstd', command: 'zstd', args: [] }), timeout: 10_000 }, (err, stdout, stderr) =>
      resolve(!err && `${stdout}${stderr}`.includes('no-]row-match-finder')),
    );
  });
  return rowMatchFinderFlag;
}

export function childEnv(stage: Stage): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const key of INHERITED_ENV) if (process.env[key] !== undefined) env[key] = process.env[key];
  env.PATH ??= DEFAULT_PATH;
  return { ...env, ...stage.env };
}

async function isExecutableFile(file: string): Promise<boolean> {
  try {
    if (!(await stat(file)).isFile()) return false;
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The executable a stage would run, or a PipelineError saying it is not installed. */
export async function resolveCommand(stage: Stage, env: NodeJS.ProcessEnv): Promise<string> {
  const { command } = stage;
  if (command.includes('/')) {
    if (await isExecutableFile(command)) return command;
    throw new PipelineError(`stage "${stage.name}": command ${command} is not installed (no executable file at that path)`);
  }
  const searchPath = env.PATH ?? DEFAULT_PATH;
  for (const dir of searchPath.split(':')) {
    if (!dir) continue;
    const candidate = path.join(dir, command);
    if (await isExecutableFile(candidate)) return candidate;
  }
  throw new PipelineError(`stage "${stage.name}": command "${command}" is not installed (not found in PATH=${searchPath})`);
}

/** Keeps the last `max` bytes written to it. */
export class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly max: number) {}
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.chunks.length > 1 && this.size - this.chunks[0]!.length >= this.max) {
      this.size -= this.chunks.shift()!.length;
    }
  }
  text(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.max)).toString('utf8');
  }
}
