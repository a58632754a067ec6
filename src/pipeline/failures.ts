/** Reading Node's errors (errno codes, messages) and turning write failures into catalogued errors. */
import { DiskFullError, DrError, PipelineError } from '../errors';

export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null ? (err as NodeJS.ErrnoException).code : undefined;
}

export function isDiskFull(err: unknown): boolean {
  const code = errnoCode(err);
  return code === 'ENOSPC' || code === 'EDQUOT';
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function isFsError(err: unknown): boolean {
  return typeof (err as NodeJS.ErrnoException | undefined)?.syscall === 'string' && errnoCode(err)?.startsWith('E') === true;
}

/** The error to report for a failure while writing `file`: a full disk is a DiskFullError, naming the file. */
export function writeError(err: unknown, file: string): Error {
  if (isDiskFull(err)) return new DiskFullError(`no space left on device while writing ${file}`, { cause: err });
  if (err instanceof DrError) return err;
  if (isFsError(err)) return new PipelineError(`writing ${file} failed: ${messageOf(err)}`, { cause: err });
  return err instanceof Error ? err : new PipelineError(String(err));
}
