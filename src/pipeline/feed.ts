/** Feeding a node stream to the first child's stdin. */
import type { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { messageOf } from './failures';

/** Which side of `feed` failed. */
export class FeedError extends Error {
  constructor(
    readonly side: 'source' | 'stdin',
    readonly error: unknown,
  ) {
    super(messageOf(error));
  }
}

/** Copies a stream into a child's stdin, honouring backpressure. Rejects with a FeedError. */
export async function feed(source: Readable, stdin: Writable): Promise<void> {
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
