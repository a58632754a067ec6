/** Recorded workflow histories (test/fixtures/histories/) and their replay, whole and cut short. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { REPO_ROOT } from './config';

export const HISTORIES_DIR = path.join(REPO_ROOT, 'test/fixtures/histories');
export type History = temporal.api.history.v1.History;

export function loadHistory(file: string): History {
  return temporal.api.history.v1.History.fromObject(JSON.parse(readFileSync(path.join(HISTORIES_DIR, file), 'utf8')) as object);
}

/** The history up to (not including) the `n`-th workflow task completion: what a new worker replays mid-run. */
export function cutHistory(history: History, n: number): History {
  const events: typeof history.events = [];
  let completions = 0;
  for (const e of history.events) {
    if (e.workflowTaskCompletedEventAttributes && ++completions === n) break;
    events.push(e);
  }
  return temporal.api.history.v1.History.create({ events });
}
