/**
 * Which worker process made a leftover: `<host>.<pid>`. The next worker started on the same host
 * removes what a process that is gone left (scratch folders, scratch databases, restore roles).
 */
import { hostname } from 'node:os';

/** This process: `<host>.<pid>`. */
export const PROCESS_OWNER = `${hostname()}.${process.pid}`;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** `<host>.<pid>` names a process of this host that is gone (its leftovers are nobody's). */
export function deadOwnerHere(owner: string | undefined): boolean {
  const m = owner ? /^(.+)\.(\d+)$/.exec(owner) : null;
  return Boolean(m && m[1] === hostname() && Number(m[2]) !== process.pid && !processAlive(Number(m[2])));
}
