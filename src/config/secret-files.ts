/** Files holding secrets (POSTGRES_PASSWORD_FILE, the Temporal TLS key): refused unless private to their owner. */
import { closeSync, fstatSync, openSync, readFileSync, statSync } from 'node:fs';
import { pathCharacterProblem } from './values';

/**
 * Secret files that other code reads at run time (here only checked): variable → what the file holds.
 * TEMPORAL_TLS_CLIENT_KEY_PATH is read by @temporalio/envconfig in temporal/connection.ts.
 */
export const SECRET_FILES_USED_ELSEWHERE: Record<string, string> = {
  TEMPORAL_TLS_CLIENT_KEY_PATH: 'the private key of the Temporal TLS client certificate',
};

/** What each secret file read here holds, for the permission message. */
const SECRET_FILE_CONTENT: Record<string, string> = {
  POSTGRES_PASSWORD_FILE: 'the PostgreSQL password',
};

/**
 * The problem with a secret file's mode, worded like readIdentity's (src/crypto/age-keys.ts): refused when
 * group or others may access it, as ssh refuses a private key, with the exact fix.
 */
export function secretFileModeProblem(name: string, file: string, mode: number, what: string): string | undefined {
  if ((mode & 0o077) === 0) return undefined;
  return (
    `${name} ${file} is accessible by group or others (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); ` +
    `it holds ${what}, so it must be private to its owner: run \`chmod 600 ${file}\``
  );
}

/** Checks a secret file exists, is a regular file and is private to its owner; true when it is fine. */
export function checkSecretFile(name: string, file: string, what: string, problems: string[]): boolean {
  const bad = pathCharacterProblem(name, name, file);
  if (bad) {
    problems.push(bad);
    return false;
  }
  let st;
  try {
    st = statSync(file);
  } catch (err) {
    problems.push(`${name} must name a readable file, got ${JSON.stringify(file)} (${(err as NodeJS.ErrnoException).code})`);
    return false;
  }
  if (!st.isFile()) {
    problems.push(`${name} must name a regular file, got ${JSON.stringify(file)} (${st.isDirectory() ? 'a directory' : 'not a file'})`);
    return false;
  }
  const problem = secretFileModeProblem(name, file, st.mode, what);
  if (problem) problems.push(problem);
  return problem === undefined;
}

/** Reads a secret from a file (one trailing newline dropped), refusing a file group or others may access. */
export function readSecretFile(name: string, file: string, problems: string[]): string | undefined {
  const what = SECRET_FILE_CONTENT[name] ?? 'a secret';
  if (!checkSecretFile(name, file, what, problems)) return undefined;
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    // Re-checked on the open file: the file may have been replaced since the stat.
    const problem = secretFileModeProblem(name, file, fstatSync(fd).mode, what);
    if (problem) {
      problems.push(problem);
      return undefined;
    }
    return readFileSync(fd, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    problems.push(`${name} must name a readable file, got ${JSON.stringify(file)} (${(err as NodeJS.ErrnoException).code})`);
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
