/**
 * `config-only` recovery: the session's configuration archive (`config.tar.zst.age`, paths stored
 * relative to `/`) put back where it came from, limited to `DR_CONFIG_PATHS`.
 *
 * 1. Decrypt (age, authenticated) and decompress (`zstd -d`) into a private temp folder.
 * 2. List the archive and refuse it as a whole if any entry is unsafe: an absolute path, a `..`
 *    segment, a hard link, a symbolic link whose target is absolute or leaves the archive, or a
 *    device/fifo. Then extract (node-tar, strict) into the temp folder.
 * 3. For each restored file or link whose target (`/<entry>`) is inside one of `DR_CONFIG_PATHS`:
 *    identical → left alone; different → the current file is renamed to
 *    `<file>.pre-recovery-<stamp>` (never overwriting an earlier one) and the restored one is
 *    written beside it and renamed into place (atomic). Entries outside `DR_CONFIG_PATHS` are
 *    never written (reported in `skipped`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, chown, copyFile, lstat, mkdir, mkdtemp, readdir, readlink, rename, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import * as tar from 'tar';
import type { DrConfig } from '../config';
import { decryptStream } from '../crypto/age';
import { ArtifactCorruptedError, InvalidInputError } from '../errors';
import { runPipeline } from '../pipeline';
import { ensureScratchRoot } from '../restore/scratch';
import { STAMP } from './names';

export interface RestoreConfigOptions {
  config: DrConfig;
  /** The session's `config.tar.zst.age`. */
  encryptedArchive: string;
  /** age private key text. */
  identity: string;
  /** `YYYYMMDDHHMMSS`: suffix of the kept files. */
  stamp: string;
  /** Report what would be restored and kept, change nothing. */
  dryRun?: boolean;
  /**
   * Put every archived file under this folder (`<targetRoot>/etc/odoo/odoo.conf`) for review,
   * instead of back in place under DR_CONFIG_PATHS.
   */
  targetRoot?: string;
}

export interface RestoreConfigResult {
  /** Target paths written (or that would be, in a dry run). */
  restored: string[];
  /** `<file>.pre-recovery-<stamp>` paths the replaced files were renamed to. */
  keptAs: string[];
  /** Target paths identical to the archive: left alone. */
  unchanged: string[];
  /** Archive entries outside DR_CONFIG_PATHS: never written. */
  skipped: string[];
}

function entryProblem(entryPath: string, type: string, linkpath: string | undefined): string | undefined {
  const p = entryPath.replace(/\/+$/, '');
  if (p === '' || p.startsWith('/') || /^[A-Za-z]:/.test(p)) return 'absolute path';
  if (p.split('/').includes('..')) return "path contains '..'";
  if (p.includes('\0')) return 'NUL in path';
  if (type === 'Link') return 'hard link';
  if (type === 'SymbolicLink') {
    if (!linkpath || linkpath.startsWith('/')) return `symbolic link to an absolute path ${JSON.stringify(linkpath)}`;
    const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(p), linkpath));
    if (resolved === '..' || resolved.startsWith('../')) return `symbolic link ${JSON.stringify(linkpath)} escapes the archive`;
    return undefined;
  }
  if (!['File', 'OldFile', 'ContiguousFile', 'Directory'].includes(type)) return `unsupported entry type ${type}`;
  return undefined;
}

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function lstatOrUndefined(p: string) {
  try {
    return await lstat(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Same kind and content (files: bytes and mode; links: target). */
async function same(restored: string, target: string): Promise<boolean> {
  const a = await lstat(restored);
  const b = await lstatOrUndefined(target);
  if (!b) return false;
  if (a.isSymbolicLink() || b.isSymbolicLink()) {
    return a.isSymbolicLink() && b.isSymbolicLink() && (await readlink(restored)) === (await readlink(target));
  }
  if (!b.isFile() || a.size !== b.size || (a.mode & 0o7777) !== (b.mode & 0o7777)) return false;
  return (await sha256(restored)) === (await sha256(target));
}

async function* walk(root: string, sub = ''): AsyncGenerator<string> {
  const entries = await readdir(path.join(root, sub), { withFileTypes: true });
  entries.sort((a, b) => a.name.localeCompare(b.name));
  for (const e of entries) {
    const rel = sub ? `${sub}/${e.name}` : e.name;
    if (e.isDirectory()) yield* walk(root, rel);
    else yield rel;
  }
}

function inside(target: string, roots: string[]): boolean {
  return roots.some((r) => target === r || target.startsWith(r.endsWith('/') ? r : `${r}/`));
}

/** Restores the configuration archive (see the module comment). */
export async function restoreConfigArchive(opts: RestoreConfigOptions): Promise<RestoreConfigResult> {
  const { config, encryptedArchive, identity, stamp } = opts;
  if (!STAMP.test(stamp)) throw new InvalidInputError(`recovery stamp ${JSON.stringify(stamp)} must be YYYYMMDDHHMMSS`);
  if (opts.targetRoot === undefined && config.configPaths.length === 0) {
    throw new InvalidInputError('DR_CONFIG_PATHS is empty: there is nowhere to restore the configuration to (or give --config-target DIR)');
  }
  const base = opts.targetRoot === undefined ? '/' : path.resolve(opts.targetRoot);
  const roots = opts.targetRoot === undefined ? config.configPaths.map((p) => path.resolve(p)) : [base];
  const work = await mkdtemp(path.join(await ensureScratchRoot(config), 'config-restore-'));
  const result: RestoreConfigResult = { restored: [], keptAs: [], unchanged: [], skipped: [] };
  try {
    const tarFile = path.join(work, 'config.tar');
    try {
      await runPipeline({
        source: decryptStream(identity, encryptedArchive),
        stages: [{ name: 'zstd', command: 'zstd', args: ['-d', '-q', '-c'] }],
        dest: tarFile,
      });
    } catch (err) {
      throw new ArtifactCorruptedError(`cannot decrypt and decompress the configuration archive ${encryptedArchive}: ${(err as Error).message}`, { cause: err });
    }

    // Refuse the whole archive if one entry is unsafe: nothing half-restored.
    const problems: string[] = [];
    await tar.t({
      file: tarFile,
      onReadEntry: (entry) => {
        const problem = entryProblem(entry.path, entry.type, entry.linkpath);
        if (problem) problems.push(`${JSON.stringify(entry.path)}: ${problem}`);
      },
    });
    if (problems.length) {
      throw new ArtifactCorruptedError(
        `refusing the configuration archive ${encryptedArchive}: unsafe entries ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? ` (${problems.length} in all)` : ''}`,
      );
    }
    const tree = path.join(work, 'tree');
    await mkdir(tree, { mode: 0o700 });
    await tar.x({ file: tarFile, cwd: tree, strict: true, preservePaths: false, preserveOwner: process.getuid?.() === 0 });

    for await (const relPath of walk(tree)) {
      const restored = path.join(tree, relPath);
      const target = path.join(base, relPath);
      if (!inside(target, roots)) {
        result.skipped.push(target);
        continue;
      }
      if (await same(restored, target)) {
        result.unchanged.push(target);
        continue;
      }
      const current = await lstatOrUndefined(target);
      let keep: string | undefined;
      if (current) {
        if (current.isDirectory()) throw new InvalidInputError(`cannot restore ${target}: a folder is in its place`);
        keep = `${target}.pre-recovery-${stamp}`;
        // A re-run after a crash: an earlier kept copy is never overwritten.
        if (await lstatOrUndefined(keep)) keep = `${target}.pre-recovery-${stamp}-${randomBytes(3).toString('hex')}`;
      }
      result.restored.push(target);
      if (keep) result.keptAs.push(keep);
      if (opts.dryRun) continue;

      await mkdir(path.dirname(target), { recursive: true });
      const tmp = `${target}.odoo-dr-${randomBytes(4).toString('hex')}.tmp`;
      const st = await lstat(restored);
      try {
        if (st.isSymbolicLink()) {
          await symlink(await readlink(restored), tmp);
        } else {
          await copyFile(restored, tmp);
          await chmod(tmp, st.mode & 0o7777);
          if (process.getuid?.() === 0) await chown(tmp, st.uid, st.gid);
        }
        if (keep) await rename(target, keep);
        await rename(tmp, target);
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
    }
    return result;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
