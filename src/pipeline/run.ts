/** `runPipeline`: the steps of one pipeline run, from checking its commands to renaming its output into place. */
import { createHash, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import { DrError, PipelineError } from '../errors';
import { writeError } from './failures';
import { rememberWritten } from './hash';
import { PartialFile } from './partial';
import { childEnv, resolveCommand, type Stage } from './stage';
import { scrubberFor, Supervisor, type ResolvedStage } from './supervise';
import { BatchWriter } from './writer';

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
  /**
   * Transforms the last output in this process before it is hashed and written (the age encryption,
   * src/crypto/age-stream `ageSealer`: one process and one pipe copy fewer than an `age` stage).
   */
  sealOutput?: (output: AsyncIterable<Buffer>) => AsyncIterable<Buffer>;
}

const PROGRESS_INTERVAL_MS = 100;

/** What was read from the last output so far. */
interface Tally {
  hash: Hash;
  bytes: number;
}

/**
 * Runs `source | stages… > dest` (see the module comment of ./index). Resolves only when every child
 * has exited 0, the source ended, and the output was fully written, fsync'd and renamed.
 */
export async function runPipeline(opts: PipelineOptions): Promise<PipelineResult> {
  const sourceStream = listenedSourceStream(opts.source);
  const stages = await beforeStart(sourceStream, () => resolveStages(opts));
  const partial = await beforeStart(sourceStream, () => PartialFile.create(opts.dest, opts.uniquePartial));
  const supervisor = new Supervisor(
    stages,
    sourceStream,
    opts.signal,
    scrubberFor(
      opts.secrets,
      stages.map((s) => s.stage),
    ),
  );
  supervisor.watchAbort();
  supervisor.start(opts.dest);
  const feeding = supervisor.feedSource();
  const tally: Tally = { hash: createHash('sha256'), bytes: 0 };
  const writer = new BatchWriter(partial.handle);
  const writing = writeOutput(supervisor, writer, partial.path, tally, opts.onProgress, opts.sealOutput);
  await Promise.all([writing, feeding, supervisor.exited()]);
  await writer.settle(); // no write may still be running when the file is closed or removed
  supervisor.stopWatching();
  if (supervisor.failed) {
    await partial.discard();
    throw supervisor.failure();
  }
  return commitOutput(opts, partial, supervisor, tally);
}

function isStage(x: Stage | NodeJS.ReadableStream): x is Stage {
  return typeof (x as Stage).command === 'string' && Array.isArray((x as Stage).args);
}

/**
 * A stream source as a node Readable, wrapped and listened to at once: it may fail while the commands
 * are checked, before anyone reads it. Its errors are recorded where it is read (a destroyed stream
 * rethrows its error there).
 */
function listenedSourceStream(source: PipelineOptions['source']): Readable | undefined {
  if (isStage(source)) return undefined;
  const readable = source instanceof Readable ? source : new Readable().wrap(source);
  readable.on('error', () => undefined);
  return readable;
}

/** Runs a step before any child starts; if it fails, nothing will read the source stream, so it is destroyed. */
async function beforeStart<T>(sourceStream: Readable | undefined, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    sourceStream?.destroy();
    throw err;
  }
}

/**
 * Every stage with its executable and environment. Every command is checked before anything starts:
 * a missing age must not leave pg_dump running.
 */
async function resolveStages(opts: PipelineOptions): Promise<ResolvedStage[]> {
  opts.signal?.throwIfAborted();
  const all = isStage(opts.source) ? [opts.source, ...opts.stages] : [...opts.stages];
  const resolved: ResolvedStage[] = [];
  for (const stage of all) {
    const env = childEnv(stage);
    resolved.push({ stage, env, executable: await resolveCommand(stage, env) });
  }
  return resolved;
}

/** Reads the last output, hashes and counts it, and writes it to the partial file; failures are recorded as causes. */
async function writeOutput(
  supervisor: Supervisor,
  writer: BatchWriter,
  partialPath: string,
  tally: Tally,
  onProgress: PipelineOptions['onProgress'],
  sealOutput: PipelineOptions['sealOutput'],
): Promise<void> {
  const output = supervisor.output;
  if (!output || supervisor.failed) return;
  let lastProgress = 0;
  try {
    for await (const chunk of sealOutput ? sealOutput(output) : output) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
      tally.hash.update(buf);
      tally.bytes += buf.length;
      try {
        await writer.push(buf);
      } catch (err) {
        supervisor.writingFailed(() => writeError(err, partialPath));
        return;
      }
      if (onProgress && Date.now() - lastProgress >= PROGRESS_INTERVAL_MS) {
        lastProgress = Date.now();
        try {
          onProgress(writer.written);
        } catch (err) {
          supervisor.writingFailed(() => (err instanceof Error ? err : new PipelineError(String(err))));
          return;
        }
      }
    }
  } catch (err) {
    supervisor.outputFailed(err);
    return;
  }
  try {
    await writer.flush();
  } catch (err) {
    supervisor.writingFailed(() => writeError(err, partialPath));
  }
}

/** Reports the total, renames the complete output into place and returns what was written. */
async function commitOutput(opts: PipelineOptions, partial: PartialFile, supervisor: Supervisor, tally: Tally): Promise<PipelineResult> {
  try {
    opts.onProgress?.(tally.bytes);
    await partial.commit(opts.dest, opts.beforeRename, opts.durable !== false);
    const sha256 = tally.hash.digest('hex');
    if (opts.remember) await rememberWritten(opts.dest, tally.bytes, sha256);
    return { bytes: tally.bytes, sha256, stderr: supervisor.stderrTails() };
  } catch (err) {
    await partial.discard();
    throw err instanceof DrError ? err : writeError(err, partial.path);
  }
}
