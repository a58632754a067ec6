/** One filter process read at the consumer's pace (e.g. `zstd -d` while unpacking). */
import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { pipeline as pipeStreams } from 'node:stream/promises';
import { PipelineError } from '../errors';
import { childEnv, MESSAGE_TAIL_CHARS, resolveCommand, STDERR_TAIL_BYTES, Tail, type Stage } from './stage';

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
