/**
 * Streaming pipelines: `source | filter | filter > dest`, without a shell.
 *
 * Children are connected directly (each child's stdout is handed to the next child as its stdin; node's
 * stdio "pipes" are UNIX socketpairs), so node only reads the last stage's output, hashes it and writes
 * it: memory stays bounded whatever the size. The output goes to `dest.partial`, is fsync'd and then renamed to `dest`; on any failure
 * (a stage exiting non-zero or killed, the source stream failing, the disk filling up, an abort) every
 * child is killed and the partial file removed, so a file at `dest` is always complete.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { access, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { promisify } from 'node:util';
import { finished, pipeline as pipeStreams } from 'node:stream/promises';
import { DiskFullError, DrError, EncryptionKeyError, InvalidInputError, PipelineError, scrubSecrets } from './errors';

export interface Stage {
  /** Shown in errors and used as the key of `PipelineResult.stderr`. */
  name: string;
  /** Executable, looked up in PATH unless it contains a `/`. Never run through a shell. */
  command: string;
  args: string[];
  /** Merged over a minimal environment (PATH, HOME, locale, TZ, TMPDIR); secrets like PGPASSWORD go only here. */
  env?: NodeJS.ProcessEnv;
}

export interface PipelineResult {
  /** Bytes written to dest. */
  bytes: number;
  /** SHA-256 (hex) of what was written to dest. */
  sha256: string;
  /** Tail of each stage's stderr (by stage name), scrubbed of secrets. */
  stderr: Record<string, string>;
}

export interface PipelineOptions {
  /** The first stage, producing data (e.g. pg_dump), or a stream of data. */
  source: Stage | NodeJS.ReadableStream;
  /** Filters, in order (e.g. zstd, then age). May be empty. */
  stages: Stage[];
  /** Final path; written as `dest + '.partial'`, fsync'd, then renamed. Its folder must exist. */
  dest: string;
  /** Aborting kills every child (SIGTERM, then SIGKILL) and removes the partial file; rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** Bytes written so far; called at most every 100 ms, and once at the end with the total. */
  onProgress?: (bytesWritten: number) => void;
  /** Values scrubbed from error messages and stderr tails (stage env values named like secrets are added). */
  secrets?: string[];
  /**
   * Write to `dest.<random>.partial` instead of `dest.partial`: two writers of one `dest` (an
   * activity attempt that timed out but still runs, and its retry) never share a partial file; each
   * renames a complete file into place.
   */
  uniquePartial?: boolean;
  /** Called once the output is complete and fsync'd, just before the rename; throwing abandons the output (a fence). */
  beforeRename?: () => Promise<void>;
  /** Remember the file as written by this process (see `unchangedSinceWritten`). */
  remember?: boolean;
  /**
   * false: the output is renamed into place without fsync (of the file or its folder); the caller
   * makes many such files durable at once (`syncFileSystem`) before anything that names them is.
   */
  durable?: boolean;
}

/** How long a child may take to exit after SIGTERM before it gets SIGKILL. */
const KILL_GRACE_MS = 5_000;
/** Bytes of each stage's stderr that are kept. */
const STDERR_TAIL_BYTES = 8 * 1024;
/** Bytes of a failing stage's stderr quoted in the error message. */
const MESSAGE_TAIL_CHARS = 1_500;
const PROGRESS_INTERVAL_MS = 100;
/** Environment variables passed on to children (everything else must be given in `Stage.env`). */
const INHERITED_ENV = ['PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'LANGUAGE', 'LC_ALL', 'LC_CTYPE', 'LC_MESSAGES', 'TZ', 'TMPDIR'];
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Env variable names whose values are scrubbed from messages even if the caller forgot them. */
const SECRET_ENV_NAME = /PASS|SECRET|TOKEN|CREDENTIAL|PRIVATE|API_KEY/i;
/** age identities never appear in messages, whoever printed them. */
const AGE_SECRET_KEY = /AGE-SECRET-KEY-[0-9A-Z-]+/gi;

/** `zstd -q -c -<level> -T<threads>`: compresses stdin to stdout. `threads` 0 = one per core (zstd's choice). */
export function zstdStage(level: number, threads = 0): Stage {
  if (!Number.isInteger(level) || level < 1 || level > 19) {
    throw new InvalidInputError(`zstd compression level must be a whole number from 1 to 19, got ${level}`);
  }
  if (!Number.isInteger(threads) || threads < 0) {
    throw new InvalidInputError(`zstd threads must be a whole number (0 = one per core), got ${threads}`);
  }
  return { name: 'zstd', command: 'zstd', args: ['-q', '-c', `-${level}`, `-T${threads}`] };
}

/** `age -e -r R1 -r R2 …`: encrypts stdin to stdout for the recipients (no private key needed). */
export function ageEncryptStage(recipients: string[]): Stage {
  if (recipients.length === 0) {
    throw new EncryptionKeyError('age encryption needs at least one recipient: set DR_AGE_RECIPIENTS or DR_ENCRYPTION_KEY_FILE');
  }
  for (const r of recipients) {
    // Refuse anything that is not a key (a value starting with '-' must never reach the command line as an option).
    if (!/^(age1[0-9a-z]+|ssh-(ed25519|rsa) \S+( .*)?)$/.test(r)) {
      throw new EncryptionKeyError(`not an age recipient: ${JSON.stringify(r)} (expected age1…)`);
    }
  }
  return { name: 'age', command: 'age', args: ['-e', ...recipients.flatMap((r) => ['-r', r])] };
}

interface Written {
  bytes: number;
  sha256: string;
  dev: bigint;
  ino: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/** Files this process wrote through runPipeline (`remember`), newest last; bounded. */
const written = new Map<string, Written>();
const WRITTEN_MAX = 10_000;

async function rememberWritten(file: string, bytes: number, sha256: string): Promise<void> {
  const st = await stat(file, { bigint: true });
  const key = path.resolve(file);
  written.delete(key);
  written.set(key, { bytes, sha256, dev: st.dev, ino: st.ino, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs });
  if (written.size > WRITTEN_MAX) written.delete(written.keys().next().value!);
}

/**
 * Whether `file` is still exactly what this process wrote and hashed on the way out (runPipeline with
 * `remember`), with this size and SHA-256: the same file (device and inode) with the size, mtime and
 * ctime it had once fsync'd and renamed, so nothing has written to it, truncated it, replaced it or
 * renamed another file over it since (any of these changes ctime, which user space cannot set back).
 * Re-reading it would compare the same bytes again, from the page cache. False whenever unsure (another
 * process wrote it, this one restarted, the file changed): the caller then reads and hashes it.
 */
export async function unchangedSinceWritten(file: string, expected: { bytes: number; sha256: string }): Promise<boolean> {
  const w = written.get(path.resolve(file));
  if (!w || w.bytes !== expected.bytes || w.sha256 !== expected.sha256) return false;
  const st = await stat(file, { bigint: true }).catch(() => undefined);
  return st !== undefined && st.dev === w.dev && st.ino === w.ino && st.size === BigInt(w.bytes) && st.mtimeNs === w.mtimeNs && st.ctimeNs === w.ctimeNs;
}

/** Size and SHA-256 of a file, streaming. */
export async function hashFile(file: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) {
    const buf = chunk as Buffer;
    hash.update(buf);
    bytes += buf.length;
  }
  return { bytes, sha256: hash.digest('hex') };
}

function isStage(x: Stage | NodeJS.ReadableStream): x is Stage {
  return typeof (x as Stage).command === 'string' && Array.isArray((x as Stage).args);
}

function childEnv(stage: Stage): NodeJS.ProcessEnv {
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
async function resolveCommand(stage: Stage, env: NodeJS.ProcessEnv): Promise<string> {
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
class Tail {
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

interface Proc {
  stage: Stage;
  key: string;
  child?: ChildProcess;
  status?: { code: number | null; signal: NodeJS.Signals | null };
  /** We sent it a signal (teardown). */
  signaled: boolean;
  stderr: Tail;
  /** Exited, and its stderr closed (or was given up on). */
  settled: boolean;
  done: Promise<void>;
  /** Destroys stderr so that `done` settles even if an escaped grandchild still holds it. */
  abandon: () => void;
}

/**
 * Ranks of failure causes. Exit events of children that die together arrive in no reliable order, so
 * the cause is chosen by what each failure looks like: the lowest rank wins; among primary failures the
 * most upstream one (a dying source makes later stages fail on truncated input), among the others the
 * most downstream one (a dying stage makes earlier stages fail writing to it).
 */
const enum Rank {
  /** The failure itself: a stage's own error, the source stream failing, the disk, an abort. */
  Primary = 0,
  /** A stage that exited with an error code after we had signalled it (it may have been first). */
  AfterSignal = 1,
  /** A consequence: SIGPIPE / EPIPE / ECONNRESET (a later stage stopped reading), input not all read. */
  Consequence = 2,
  /** A stage we killed ourselves during teardown. */
  Killed = 3,
}

interface Cause {
  rank: () => Rank;
  /** -2 abort, -1 source stream, 0… stages, stages.length node's writer. */
  position: number;
  order: number;
  build: () => Error;
}

/** What a stage prints when the next stage is gone. */
const BROKEN_OUTPUT = /broken pipe|connection reset|\bEPIPE\b|\bECONNRESET\b/i;

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null ? (err as NodeJS.ErrnoException).code : undefined;
}

function isDiskFull(err: unknown): boolean {
  const code = errnoCode(err);
  return code === 'ENOSPC' || code === 'EDQUOT';
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Runs `source | stages… > dest` (see the module comment). Resolves only when every child has exited 0,
 * the source ended, and the output was fully written, fsync'd and renamed.
 */
export async function runPipeline(opts: PipelineOptions): Promise<PipelineResult> {
  const { source, stages, dest, signal, onProgress } = opts;
  const all: Stage[] = isStage(source) ? [source, ...stages] : [...stages];
  const streamSource: NodeJS.ReadableStream | undefined = isStage(source) ? undefined : source;
  // Wrapped and listened to at once: a stream may fail while we check commands, before anyone reads it.
  const sourceReadable: Readable | undefined =
    streamSource === undefined ? undefined : streamSource instanceof Readable ? streamSource : new Readable().wrap(streamSource);
  // Errors are recorded where the stream is read (a destroyed stream rethrows its error there).
  sourceReadable?.on('error', () => undefined);
  try {
    signal?.throwIfAborted();
  } catch (err) {
    sourceReadable?.destroy();
    throw err;
  }

  const secrets = [...(opts.secrets ?? [])];
  for (const stage of all) {
    for (const [k, v] of Object.entries(stage.env ?? {})) if (v && SECRET_ENV_NAME.test(k)) secrets.push(v);
  }
  const scrub = (text: string) => scrubSecrets(text, secrets).replace(AGE_SECRET_KEY, 'AGE-SECRET-KEY-***');

  // Check every command before starting anything: a missing age must not leave pg_dump running.
  const envs = all.map(childEnv);
  const executables: string[] = [];
  try {
    for (const [i, stage] of all.entries()) executables.push(await resolveCommand(stage, envs[i]!));
  } catch (err) {
    sourceReadable?.destroy();
    throw err;
  }
  const keys = new Set<string>();
  const procs: Proc[] = all.map((stage) => {
    let key = stage.name;
    for (let n = 2; keys.has(key); n++) key = `${stage.name}#${n}`;
    keys.add(key);
    return {
      stage,
      key,
      signaled: false,
      settled: false,
      stderr: new Tail(STDERR_TAIL_BYTES),
      done: Promise.resolve(),
      abandon: () => undefined,
    };
  });

  const partial = opts.uniquePartial ? `${dest}.${randomBytes(4).toString('hex')}.partial` : `${dest}.partial`;
  let fh: FileHandle;
  try {
    fh = await open(partial, 'w', 0o600);
  } catch (err) {
    sourceReadable?.destroy();
    if (isDiskFull(err)) throw new DiskFullError(`no space left on device: cannot create ${partial}`, { cause: err });
    throw new PipelineError(`cannot create ${partial}: ${messageOf(err)}`, { cause: err });
  }

  // --- failure bookkeeping -------------------------------------------------------------------
  const causes: Cause[] = [];
  let order = 0;
  let tornDown = false;
  let killTimer: NodeJS.Timeout | undefined;
  let abandonTimer: NodeJS.Timeout | undefined;
  let output: Readable | undefined;

  /**
   * Signals a stage's process group (it was started detached, so this reaches its own children too),
   * also after the stage itself exited while something of its group still holds its stderr.
   */
  const killProc = (p: Proc, sig: NodeJS.Signals) => {
    const pid = p.child?.pid;
    if (pid === undefined || p.settled) return;
    if (p.status === undefined) p.signaled = true;
    try {
      process.kill(-pid, sig);
    } catch {
      if (p.status === undefined) {
        try {
          p.child!.kill(sig);
        } catch {
          /* already gone */
        }
      }
    }
  };
  const teardown = () => {
    if (tornDown) return;
    tornDown = true;
    for (const p of procs) killProc(p, 'SIGTERM');
    if (procs.some((p) => !p.settled)) {
      killTimer = setTimeout(() => {
        for (const p of procs) killProc(p, 'SIGKILL');
        // Whatever escaped the process group and still holds a stderr must not hang us.
        abandonTimer = setTimeout(() => procs.forEach((p) => p.abandon()), 1_000);
      }, KILL_GRACE_MS);
    }
    output?.destroy();
    sourceReadable?.destroy();
  };
  const addCause = (position: number, rank: Rank | (() => Rank), build: () => Error) => {
    causes.push({ rank: typeof rank === 'function' ? rank : () => rank, position, order: order++, build });
    teardown();
  };
  const onAbort = () =>
    addCause(-2, Rank.Primary, () => (signal?.reason instanceof Error ? signal.reason : new Error(String(signal?.reason))));
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) onAbort(); // aborted while we were checking commands: start nothing

  const describe = (p: Proc, what: string) => {
    const tail = scrub(p.stderr.text()).trim();
    const quoted = tail.length > MESSAGE_TAIL_CHARS ? `…${tail.slice(-MESSAGE_TAIL_CHARS)}` : tail;
    return new PipelineError(
      `stage "${p.key}" (${p.stage.command}) ${what}${quoted ? `; its error output:\n${quoted}` : ' (no error output)'}`,
    );
  };

  // --- start the children (synchronously, so that no pipe is read by node in between) ----------
  try {
    let prevStdout: Readable | undefined;
    for (const [i, p] of procs.entries()) {
      if (tornDown) break;
      const stdin = i === 0 ? (streamSource ? 'pipe' : 'ignore') : prevStdout!;
      const child = spawn(executables[i]!, p.stage.args, {
        env: envs[i],
        stdio: [stdin, 'pipe', 'pipe'],
        detached: true, // own process group: killing it also kills its children
      });
      p.child = child;
      p.done = new Promise<void>((resolve) => {
        let exited = false;
        let stderrClosed = false;
        const settle = () => {
          if (exited && stderrClosed && !p.settled) {
            p.settled = true;
            resolve();
          }
        };
        p.abandon = () => {
          child.stderr!.destroy();
          stderrClosed = true;
          if (!exited) return; // never without its exit status: SIGKILL will come
          settle();
        };
        child.stderr!.on('data', (chunk: Buffer) => p.stderr.push(chunk));
        child.stderr!.on('close', () => {
          stderrClosed = true;
          settle();
        });
        child.on('error', (err) => {
          // Failed to start (or to be signalled). 'exit' does not follow a failed start.
          if (child.pid === undefined && !exited) {
            exited = true;
            p.status = { code: null, signal: null };
            addCause(i, Rank.Primary, () => new PipelineError(`stage "${p.key}": cannot start ${p.stage.command}: ${scrub(err.message)}`, { cause: err }));
            stderrClosed = true;
            settle();
          }
        });
        child.on('exit', (code, sig) => {
          exited = true;
          p.status = { code, signal: sig };
          if (code !== 0) {
            const signaledFirst = p.signaled;
            // Classified once stderr is complete.
            const rank = (): Rank => {
              if (sig !== null && signaledFirst && (sig === 'SIGTERM' || sig === 'SIGKILL')) return Rank.Killed;
              if (sig === 'SIGPIPE' || BROKEN_OUTPUT.test(p.stderr.text())) return Rank.Consequence;
              return signaledFirst ? Rank.AfterSignal : Rank.Primary;
            };
            addCause(i, rank, () => {
              const what = sig !== null ? `was killed by ${sig}` : `exited with code ${code}`;
              switch (rank()) {
                case Rank.Killed:
                  return describe(p, `${what} after the pipeline failed`);
                case Rank.Consequence:
                  return describe(p, `${what}: a later stage stopped reading its output`);
                default:
                  return describe(p, what);
              }
            });
          }
          settle();
        });
      });
      if (prevStdout) prevStdout.destroy(); // the next child holds it now; node must not keep a reader
      prevStdout = child.stdout!;
    }
    output = prevStdout ?? sourceReadable;
  } catch (err) {
    addCause(-1, Rank.Primary, () => new PipelineError(`cannot start the pipeline to ${dest}: ${scrub(messageOf(err))}`, { cause: err }));
  }

  // --- feed a stream source to the first child --------------------------------------------------
  const wrapSourceError = (err: unknown): Error =>
    err instanceof DrError
      ? err
      : new PipelineError(`the source stream failed: ${scrub(messageOf(err))}`, { cause: err });
  let feeding: Promise<void> = Promise.resolve();
  if (sourceReadable && procs.length > 0 && !tornDown) {
    const first = procs[0]!;
    const stdin = first.child!.stdin!;
    feeding = feed(sourceReadable, stdin).catch((err: unknown) => {
      if (tornDown) return;
      if (err instanceof FeedError && err.side === 'source') {
        addCause(-1, Rank.Primary, () => wrapSourceError(err.error));
      } else {
        // Writing to the first child failed (EPIPE): it exited without reading everything.
        const inner = err instanceof FeedError ? err.error : err;
        addCause(0, Rank.Consequence, () =>
          describe(first, `stopped reading its input before the end (${errnoCode(inner) ?? messageOf(inner)})`),
        );
      }
    });
  }

  // --- read the last output, hash and write it ----------------------------------------------------
  const hash = createHash('sha256');
  let bytes = 0;
  let lastProgress = 0;
  const writer = new BatchWriter(fh);
  const writing = (async () => {
    if (!output || tornDown) return;
    try {
      for await (const chunk of output) {
        const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
        hash.update(buf);
        bytes += buf.length;
        try {
          await writer.push(buf);
        } catch (err) {
          addCause(procs.length, Rank.Primary, () => writeError(err, partial));
          return;
        }
        if (onProgress && Date.now() - lastProgress >= PROGRESS_INTERVAL_MS) {
          lastProgress = Date.now();
          try {
            onProgress(writer.written);
          } catch (err) {
            addCause(procs.length, Rank.Primary, () => (err instanceof Error ? err : new PipelineError(String(err))));
            return;
          }
        }
      }
    } catch (err) {
      if (tornDown) return; // destroyed by the teardown, whose cause is recorded
      if (output === sourceReadable) {
        addCause(-1, Rank.Primary, () => wrapSourceError(err));
      } else {
        const last = procs[procs.length - 1]!;
        addCause(procs.length, Rank.Primary, () => new PipelineError(`reading the output of stage "${last.key}" failed: ${messageOf(err)}`, { cause: err }));
      }
      return;
    }
    try {
      await writer.flush();
    } catch (err) {
      addCause(procs.length, Rank.Primary, () => writeError(err, partial));
    }
  })();

  await Promise.all([writing, feeding, ...procs.map((p) => p.done)]);
  await writer.settle(); // no write may still be running when the file is closed or removed
  clearTimeout(killTimer);
  clearTimeout(abandonTimer);
  signal?.removeEventListener('abort', onAbort);

  if (causes.length === 0 && signal?.aborted) onAbort();
  if (causes.length === 0) {
    try {
      onProgress?.(bytes);
      if (opts.durable !== false) await fh.sync();
      await fh.close();
      await opts.beforeRename?.();
      await rename(partial, dest);
      if (opts.durable !== false) await syncDir(path.dirname(dest));
      const sha256 = hash.digest('hex');
      if (opts.remember) await rememberWritten(dest, bytes, sha256);
      return {
        bytes,
        sha256,
        stderr: Object.fromEntries(procs.map((p) => [p.key, scrub(p.stderr.text()).trim()])),
      };
    } catch (err) {
      await fh.close().catch(() => undefined);
      await rm(partial, { force: true }).catch(() => undefined);
      throw err instanceof DrError ? err : writeError(err, partial);
    }
  }
  await fh.close().catch(() => undefined);
  await rm(partial, { force: true }).catch(() => undefined);
  const ranked = causes.map((c) => ({ ...c, r: c.rank() }));
  const best = ranked.reduce((a, b) => {
    if (a.r !== b.r) return b.r < a.r ? b : a;
    if (a.position !== b.position) return (a.r === Rank.Primary ? b.position < a.position : b.position > a.position) ? b : a;
    return b.order < a.order ? b : a;
  });
  throw best.build();
}

function isFsError(err: unknown): boolean {
  return typeof (err as NodeJS.ErrnoException | undefined)?.syscall === 'string' && errnoCode(err)?.startsWith('E') === true;
}

function writeError(err: unknown, file: string): Error {
  if (isDiskFull(err)) return new DiskFullError(`no space left on device while writing ${file}`, { cause: err });
  if (err instanceof DrError) return err;
  if (isFsError(err)) return new PipelineError(`writing ${file} failed: ${messageOf(err)}`, { cause: err });
  return err instanceof Error ? err : new PipelineError(String(err));
}

/**
 * Writes chunks in batches (writev) while the next ones are being read: one write in flight, at most
 * MAX_QUEUED bytes waiting behind it, then `push` waits (backpressure, bounded memory).
 */
class BatchWriter {
  written = 0;
  private queue: Buffer[] = [];
  private queued = 0;
  private inflight: Promise<void> | undefined;
  private error: Error | undefined;
  private static readonly MAX_QUEUED = 4 * 1024 * 1024;
  private static readonly MAX_BUFFERS = 256;

  constructor(private readonly fh: FileHandle) {}

  async push(buf: Buffer): Promise<void> {
    this.check();
    if (buf.length === 0) return;
    this.queue.push(buf);
    this.queued += buf.length;
    if (this.inflight === undefined) this.next();
    else if (this.queued >= BatchWriter.MAX_QUEUED || this.queue.length >= BatchWriter.MAX_BUFFERS) await this.inflight;
    this.check();
  }

  /** Waits until everything pushed is written; rejects with the first write error. */
  async flush(): Promise<void> {
    while (this.inflight !== undefined) await this.inflight;
    this.check();
  }

  private check(): void {
    if (this.error !== undefined) throw this.error;
  }

  /** Waits until no write is running, ignoring errors. */
  async settle(): Promise<void> {
    while (this.inflight !== undefined) await this.inflight;
  }

  private next(): void {
    if (this.queue.length === 0 || this.error !== undefined) {
      this.inflight = undefined;
      return;
    }
    const batch = this.queue;
    this.queue = [];
    this.queued = 0;
    this.inflight = writevAll(this.fh, batch).then(
      (n) => {
        this.written += n;
        this.next();
      },
      (err: unknown) => {
        this.error = err instanceof Error ? err : new Error(String(err));
        this.queue = [];
        this.inflight = undefined;
      },
    );
  }
}

/** Writes all buffers (a regular file may accept less than asked, e.g. just before ENOSPC). */
async function writevAll(fh: FileHandle, buffers: Buffer[]): Promise<number> {
  let pending = buffers;
  let total = 0;
  while (pending.length > 0) {
    const { bytesWritten } = await fh.writev(pending);
    if (bytesWritten === 0) throw Object.assign(new Error('write returned 0 bytes'), { code: 'EIO', syscall: 'write' });
    total += bytesWritten;
    let skip = bytesWritten;
    const rest: Buffer[] = [];
    for (const b of pending) {
      if (skip >= b.length) skip -= b.length;
      else {
        rest.push(skip > 0 ? b.subarray(skip) : b);
        skip = 0;
      }
    }
    pending = rest;
  }
  return total;
}

/** Which side of `feed` failed. */
class FeedError extends Error {
  constructor(
    readonly side: 'source' | 'stdin',
    readonly error: unknown,
  ) {
    super(messageOf(error));
  }
}

/** Copies a stream into a child's stdin, honouring backpressure. Rejects with a FeedError. */
async function feed(source: Readable, stdin: Writable): Promise<void> {
  let stdinError: Error | undefined;
  stdin.on('error', (err) => {
    stdinError ??= err;
  });
  const stdinFailed = () => new FeedError('stdin', stdinError ?? Object.assign(new Error('stdin closed'), { code: 'EPIPE' }));
  const iterator = source[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  try {
    for (;;) {
      let next: IteratorResult<Buffer | string>;
      try {
        next = await iterator.next();
      } catch (err) {
        throw new FeedError('source', err);
      }
      if (next.done) break;
      if (stdinError || stdin.destroyed) throw stdinFailed();
      if (!stdin.write(next.value)) {
        await new Promise<void>((resolve, reject) => {
          const done = () => {
            stdin.off('drain', done);
            stdin.off('close', closed);
            resolve();
          };
          const closed = () => {
            stdin.off('drain', done);
            reject(stdinFailed());
          };
          stdin.on('drain', done);
          stdin.on('close', closed);
        });
      }
    }
    stdin.end();
    try {
      await finished(stdin);
    } catch {
      throw stdinFailed();
    }
    if (stdinError) throw stdinFailed();
  } catch (err) {
    stdin.destroy();
    await iterator.return?.().catch(() => undefined);
    throw err;
  }
}

/** `sync -f DIR`: syncfs(2) of the file system holding DIR (coreutils): one call makes many files durable. */
export async function syncFileSystem(dir: string): Promise<void> {
  await promisify(execFile)('sync', ['-f', dir]);
}

/** fsync a directory so that a rename in it is durable (best effort: not every filesystem allows it). */
async function syncDir(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    /* e.g. EINVAL on some filesystems */
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/**
 * Runs `input` through one filter process (e.g. `zstd -d`) and yields its output: the consumer reads
 * at its own pace (back-pressure reaches the child and the input). The stage failing (exit code,
 * signal) throws with its stderr tail; the input failing kills the stage and throws the input's
 * error; a consumer that stops early kills the stage.
 */
export async function* filterThrough(stage: Stage, input: AsyncIterable<Buffer>, signal?: AbortSignal): AsyncGenerator<Buffer> {
  signal?.throwIfAborted();
  const env = childEnv(stage);
  const command = await resolveCommand(stage, env);
  const child = spawn(command, stage.args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const stderr = new Tail(STDERR_TAIL_BYTES);
  child.stderr.on('data', (d: Buffer) => stderr.push(d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, sig) => resolve({ code, signal: sig }));
    child.on('error', () => resolve({ code: null, signal: null }));
  });
  let inputError: unknown;
  const feed = pipeStreams(Readable.from(input, { objectMode: false }), child.stdin).catch((err: unknown) => {
    // EPIPE: the stage stopped reading (its exit status says why); anything else is the input's own failure.
    if ((err as NodeJS.ErrnoException).code !== 'EPIPE' && (err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') inputError = err;
    child.kill('SIGKILL');
  });
  const onAbort = () => child.kill('SIGKILL');
  signal?.addEventListener('abort', onAbort, { once: true });
  let finishedReading = false;
  try {
    for await (const chunk of child.stdout) yield chunk as Buffer;
    finishedReading = true;
    await feed;
    const status = await exited;
    signal?.throwIfAborted();
    if (inputError !== undefined) throw inputError as Error;
    if (status.code !== 0) {
      const why = status.signal ? `killed by ${status.signal}` : `exit code ${status.code}`;
      throw new PipelineError(`stage "${stage.name}" failed (${why}): ${stderr.text().trim().slice(-MESSAGE_TAIL_CHARS) || 'no message'}`);
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    if (!finishedReading || child.exitCode === null) child.kill('SIGKILL');
  }
}
