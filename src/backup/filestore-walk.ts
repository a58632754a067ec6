/** Iterating over a filestore's files with bounded memory and without starving the event loop. */
import type { Dirent } from 'node:fs';
import { opendir } from 'node:fs/promises';
import path from 'node:path';

/** Walks a filestore in a stable order, skipping Odoo's GC `checklist/` markers; bounded memory. */
export async function* walkFilestore(root: string, sub = ''): AsyncGenerator<string> {
  let dir;
  try {
    dir = await opendir(path.join(root, sub));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && sub === '') return;
    throw err;
  }
  const entries: Dirent[] = [];
  for await (const entry of dir) entries.push(entry);
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const relative = sub ? `${sub}/${entry.name}` : entry.name;
    if (sub === '' && entry.name === 'checklist') continue;
    if (entry.isDirectory()) yield* walkFilestore(root, relative);
    else if (entry.isFile()) yield relative;
  }
}

/** `items`, with a turn of the event loop every `n` of them (synchronous work per item must not starve timers and I/O). */
export async function* yieldingEvery<T>(n: number, items: AsyncIterable<T>): AsyncGenerator<T> {
  let i = 0;
  for await (const item of items) {
    if (++i % n === 0) await new Promise((resolve) => setImmediate(resolve));
    yield item;
  }
}

/** Runs `worker` over `items` with at most `limit` at once, in order of arrival. */
export async function forEachLimited<T>(items: AsyncIterable<T>, limit: number, worker: (item: T) => Promise<void>): Promise<void> {
  const running = new Set<Promise<void>>();
  let failure: Error | undefined;
  for await (const item of items) {
    if (failure) break;
    const p = worker(item).catch((err: unknown) => {
      failure ??= err instanceof Error ? err : new Error(String(err));
    });
    const tracked = p.finally(() => running.delete(tracked));
    running.add(tracked);
    if (running.size >= limit) await Promise.race(running);
  }
  await Promise.all(running);
  if (failure) throw failure;
}
