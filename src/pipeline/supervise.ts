/**
 * Supervision of a pipeline's children: starting them connected to each other, feeding a stream
 * source to the first one, tearing everything down on the first failure (or an abort), and choosing,
 * once all have exited, the failure that explains the others.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { DrError, PipelineError, scrubSecrets } from '../errors';
import { errnoCode, messageOf } from './failures';
import { feed, FeedError } from './feed';
import { MESSAGE_TAIL_CHARS, STDERR_TAIL_BYTES, Tail, type Stage } from './stage';

/** How long a child may take to exit after SIGTERM before it gets SIGKILL. */
const KILL_GRACE_MS = 5_000;
/** How long, after SIGKILL, a stderr still held open (by something that escaped the process group) is waited for. */
const ABANDON_AFTER_KILL_MS = 1_000;
/** Env variable names whose values are scrubbed from messages even if the caller forgot them. */
const SECRET_ENV_NAME = /PASS|SECRET|TOKEN|CREDENTIAL|PRIVATE|API_KEY/i;
/** age identities never appear in messages, whoever printed them. */
const AGE_SECRET_KEY = /AGE-SECRET-KEY-[0-9A-Z-]+/gi;
/** What a stage prints when the next stage is gone. */
const BROKEN_OUTPUT = /broken pipe|connection reset|\bEPIPE\b|\bECONNRESET\b/i;

/** Where a failure happened; stages are 0…, node's writer comes after the last one. */
const ABORT_POSITION = -2;
const SOURCE_POSITION = -1;

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
  position: number;
  order: number;
  build: () => Error;
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

/** A child ready to start: its stage, the executable found for it and its environment. */
export interface ResolvedStage {
  stage: Stage;
  executable: string;
  env: NodeJS.ProcessEnv;
}

/** Removes from a text the given secrets, the values of stage env variables named like secrets, and age identities. */
export function scrubberFor(secrets: readonly string[] | undefined, stages: readonly Stage[]): (text: string) => string {
  const all = [...(secrets ?? [])];
  for (const stage of stages) {
    for (const [k, v] of Object.entries(stage.env ?? {})) if (v && SECRET_ENV_NAME.test(k)) all.push(v);
  }
  return (text: string) => scrubSecrets(text, all).replace(AGE_SECRET_KEY, 'AGE-SECRET-KEY-***');
}

/** Keys of the stages' stderr tails: their names, made unique (`zstd`, `zstd#2`). */
function uniqueKeys(stages: readonly ResolvedStage[]): string[] {
  const keys = new Set<string>();
  return stages.map(({ stage }) => {
    let key = stage.name;
    for (let n = 2; keys.has(key); n++) key = `${stage.name}#${n}`;
    keys.add(key);
    return key;
  });
}

export class Supervisor {
  private readonly procs: Proc[];
  private readonly causes: Cause[] = [];
  private order = 0;
  private tornDown = false;
  private killTimer: NodeJS.Timeout | undefined;
  private abandonTimer: NodeJS.Timeout | undefined;
  /** What node reads: the last child's stdout, or the source stream itself when there is no child. */
  output: Readable | undefined;

  constructor(
    private readonly stages: readonly ResolvedStage[],
    private readonly source: Readable | undefined,
    private readonly signal: AbortSignal | undefined,
    private readonly scrub: (text: string) => string,
  ) {
    const keys = uniqueKeys(stages);
    this.procs = stages.map(({ stage }, i) => ({
      stage,
      key: keys[i]!,
      signaled: false,
      settled: false,
      stderr: new Tail(STDERR_TAIL_BYTES),
      done: Promise.resolve(),
      abandon: () => undefined,
    }));
  }

  /** Whether something failed (or the signal aborted): everything is being torn down. */
  get failed(): boolean {
    return this.causes.length > 0;
  }

  /** Kills everything once the signal aborts; if it already has, starts nothing. */
  watchAbort(): void {
    this.signal?.addEventListener('abort', this.onAbort, { once: true });
    if (this.signal?.aborted) this.onAbort(); // aborted while the commands were checked
  }

  /** Clears the kill timers and the abort listener; counts an abort that came too late to tear anything down. */
  stopWatching(): void {
    clearTimeout(this.killTimer);
    clearTimeout(this.abandonTimer);
    this.signal?.removeEventListener('abort', this.onAbort);
    if (this.causes.length === 0 && this.signal?.aborted) this.onAbort();
  }

  /** Starts every child synchronously, so that no pipe is read by node in between; `dest` is named in errors. */
  start(dest: string): void {
    try {
      let prevStdout: Readable | undefined;
      for (const [i, p] of this.procs.entries()) {
        if (this.tornDown) break;
        const { executable, env } = this.stages[i]!;
        const stdin = i === 0 ? (this.source ? 'pipe' : 'ignore') : prevStdout!;
        const child = spawn(executable, p.stage.args, {
          env,
          stdio: [stdin, 'pipe', 'pipe'],
          detached: true, // own process group: killing it also kills its children
        });
        p.child = child;
        p.done = this.watch(p, i, child);
        if (prevStdout) prevStdout.destroy(); // the next child holds it now; node must not keep a reader
        prevStdout = child.stdout!;
      }
      this.output = prevStdout ?? this.source;
    } catch (err) {
      this.fail(SOURCE_POSITION, Rank.Primary, () => new PipelineError(`cannot start the pipeline to ${dest}: ${this.scrub(messageOf(err))}`, { cause: err }));
    }
  }

  /** Copies a stream source into the first child; resolves when done or failed (the failure is recorded). */
  async feedSource(): Promise<void> {
    if (!this.source || this.procs.length === 0 || this.tornDown) return;
    const first = this.procs[0]!;
    try {
      await feed(this.source, first.child!.stdin!);
    } catch (err) {
      if (this.tornDown) return;
      if (err instanceof FeedError && err.side === 'source') {
        this.sourceFailed(err.error);
      } else {
        // Writing to the first child failed (EPIPE): it exited without reading everything.
        const inner = err instanceof FeedError ? err.error : err;
        this.fail(0, Rank.Consequence, () => this.describe(first, `stopped reading its input before the end (${errnoCode(inner) ?? messageOf(inner)})`));
      }
    }
  }

  /** Resolves once every child has exited and its stderr is closed (or was given up on). */
  async exited(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.done));
  }

  /** Records a failure of node's writing side (after the last stage). */
  writingFailed(build: () => Error): void {
    this.fail(this.procs.length, Rank.Primary, build);
  }

  /** Records that reading `output` failed (unless that is the teardown destroying it). */
  outputFailed(err: unknown): void {
    if (this.tornDown) return; // destroyed by the teardown, whose cause is recorded
    if (this.output === this.source) {
      this.sourceFailed(err);
    } else {
      const last = this.procs[this.procs.length - 1]!;
      this.writingFailed(() => new PipelineError(`reading the output of stage "${last.key}" failed: ${messageOf(err)}`, { cause: err }));
    }
  }

  /** Each stage's stderr tail, scrubbed, by stage key. */
  stderrTails(): Record<string, string> {
    return Object.fromEntries(this.procs.map((p) => [p.key, this.scrub(p.stderr.text()).trim()]));
  }

  /** The failure that explains the others (see Rank). Only once `failed`. */
  failure(): Error {
    const ranked = this.causes.map((c) => ({ ...c, r: c.rank() }));
    const best = ranked.reduce((a, b) => {
      if (a.r !== b.r) return b.r < a.r ? b : a;
      if (a.position !== b.position) return (a.r === Rank.Primary ? b.position < a.position : b.position > a.position) ? b : a;
      return b.order < a.order ? b : a;
    });
    return best.build();
  }

  private readonly onAbort = (): void =>
    this.fail(ABORT_POSITION, Rank.Primary, () => (this.signal?.reason instanceof Error ? this.signal.reason : new Error(String(this.signal?.reason))));

  private sourceFailed(err: unknown): void {
    this.fail(SOURCE_POSITION, Rank.Primary, () =>
      err instanceof DrError ? err : new PipelineError(`the source stream failed: ${this.scrub(messageOf(err))}`, { cause: err }),
    );
  }

  private fail(position: number, rank: Rank | (() => Rank), build: () => Error): void {
    this.causes.push({ rank: typeof rank === 'function' ? rank : () => rank, position, order: this.order++, build });
    this.teardown();
  }

  private teardown(): void {
    if (this.tornDown) return;
    this.tornDown = true;
    for (const p of this.procs) this.kill(p, 'SIGTERM');
    if (this.procs.some((p) => !p.settled)) {
      this.killTimer = setTimeout(() => {
        for (const p of this.procs) this.kill(p, 'SIGKILL');
        // Whatever escaped the process group and still holds a stderr must not hang us.
        this.abandonTimer = setTimeout(() => this.procs.forEach((p) => p.abandon()), ABANDON_AFTER_KILL_MS);
      }, KILL_GRACE_MS);
    }
    this.output?.destroy();
    this.source?.destroy();
  }

  /**
   * Signals a stage's process group (it was started detached, so this reaches its own children too),
   * also after the stage itself exited while something of its group still holds its stderr.
   */
  private kill(p: Proc, sig: NodeJS.Signals): void {
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
  }

  /** Settles once the child has exited and its stderr closed; records its failure, if any. */
  private watch(p: Proc, position: number, child: ChildProcess): Promise<void> {
    return new Promise<void>((resolve) => {
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
          this.fail(
            position,
            Rank.Primary,
            () => new PipelineError(`stage "${p.key}": cannot start ${p.stage.command}: ${this.scrub(err.message)}`, { cause: err }),
          );
          stderrClosed = true;
          settle();
        }
      });
      child.on('exit', (code, sig) => {
        exited = true;
        p.status = { code, signal: sig };
        if (code !== 0) this.exitFailed(p, position, code, sig);
        settle();
      });
    });
  }

  /** Records a non-zero exit, classified once its stderr is complete. */
  private exitFailed(p: Proc, position: number, code: number | null, sig: NodeJS.Signals | null): void {
    const signaledFirst = p.signaled;
    const rank = (): Rank => {
      if (sig !== null && signaledFirst && (sig === 'SIGTERM' || sig === 'SIGKILL')) return Rank.Killed;
      if (sig === 'SIGPIPE' || BROKEN_OUTPUT.test(p.stderr.text())) return Rank.Consequence;
      return signaledFirst ? Rank.AfterSignal : Rank.Primary;
    };
    this.fail(position, rank, () => {
      const what = sig !== null ? `was killed by ${sig}` : `exited with code ${code}`;
      switch (rank()) {
        case Rank.Killed:
          return this.describe(p, `${what} after the pipeline failed`);
        case Rank.Consequence:
          return this.describe(p, `${what}: a later stage stopped reading its output`);
        default:
          return this.describe(p, what);
      }
    });
  }

  private describe(p: Proc, what: string): PipelineError {
    const tail = this.scrub(p.stderr.text()).trim();
    const quoted = tail.length > MESSAGE_TAIL_CHARS ? `…${tail.slice(-MESSAGE_TAIL_CHARS)}` : tail;
    return new PipelineError(`stage "${p.key}" (${p.stage.command}) ${what}${quoted ? `; its error output:\n${quoted}` : ' (no error output)'}`);
  }
}
