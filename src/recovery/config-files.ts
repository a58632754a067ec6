/**
 * `config-only` recovery: the session's configuration archive (`config.tar.zst.age`, paths stored
 * relative to `/`) put back where it came from, limited to `DR_CONFIG_PATHS` (or under `targetRoot`
 * for review). The archive comes from a bucket an attacker may be able to write to, so it is
 * untrusted: it is refused as a whole, before anything is written, unless every entry is safe, and
 * nothing outside the roots it is confined to is ever created or modified.
 *
 * 1. Decrypt (age, authenticated) and decompress (`zstd -d`) into a private temp folder.
 * 2. List the archive (node-tar, strict) and refuse it as a whole (ArtifactCorruptedError naming each
 *    entry and the reason) if any entry is unsafe: an absolute path, a `..` segment, a hard link, a
 *    device or fifo (any type but file, folder, symbolic link), a path listed twice, an entry below a
 *    path the archive makes a file or a symbolic link (written *through* a link), a symbolic link whose
 *    target is absolute or leaves the archive.
 * 3. Confinement: each root is taken at its real path (`realpath`, so `..` in a link and the checks
 *    below see the folders the kernel will). For every entry that falls inside a root, refuse the
 *    archive when
 *    - a folder between the root and the entry is a symbolic link on disk (nothing is ever written
 *      through an existing link, wherever it points; it may have been planted by an attacker or an
 *      earlier restore);
 *    - the entry is a symbolic link whose target, resolved as the kernel will once the archive is in
 *      place (following the archive's links and those already on disk), lands outside the roots, or
 *      that goes back up (`..`) after going down (`a/../..`: where that lands depends on what `a`
 *      becomes later, so it could escape after a later restore);
 *    - the path is already a symbolic link on disk that leads outside the roots.
 * 4. Then extract the regular files only (never links) into the temp folder, and for each entry inside
 *    the roots: identical → left alone; different → the current file is renamed to
 *    `<file>.pre-recovery-<stamp>` (never overwriting an earlier one) and the restored one is written
 *    beside it, in the verified parent, and renamed into place (`rename` never follows a symbolic link
 *    in the last component). Missing folders are created one at a time and checked not to be links;
 *    the temp file is opened with O_CREAT|O_EXCL|O_NOFOLLOW. Entries outside the roots are never
 *    written (reported in `skipped`). Folders are not restored as such (only created as parents).
 *
 * setuid, setgid and sticky bits are stripped, not refused: files are restored with `mode & 0o777`
 * and reported in `modeBitsStripped`. A configuration file never needs them, and a recovery should not
 * fail for a stray bit on a script; an archive cannot make anything setuid this way.
 * Ownership (as root) is restored before the mode, so the mode set is exactly `mode & 0o777`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { lstat, mkdir, mkdtemp, open, readlink, rename, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import * as tar from 'tar';
import type { DrConfig } from '../config';
import { decryptStream } from '../crypto/age';
import { ArtifactCorruptedError, InvalidInputError } from '../errors';
import { runPipeline } from '../pipeline';
import { ensureScratchRoot } from '../restore/scratch';
import { chain, confineEntries, FILE_TYPES, listArchive, lstatOrUndefined, refuse, type ArchiveEntry, type Planned } from './config-archive';
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
  /** Target paths whose archived mode had setuid, setgid or sticky bits: restored (or kept) without them. */
  modeBitsStripped: string[];
}

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Same kind and content as the archive entry (files: bytes and restored mode; links: target). */
async function same(entry: ArchiveEntry, blob: string | undefined, target: string): Promise<boolean> {
  const b = await lstatOrUndefined(target);
  if (!b) return false;
  if (entry.type === 'SymbolicLink') return b.isSymbolicLink() && (await readlink(target)) === entry.linkpath;
  if (!b.isFile() || b.size !== entry.size || (b.mode & 0o7777) !== (entry.mode & 0o777)) return false;
  return (await sha256(blob!)) === (await sha256(target));
}

/** Creates the missing folders from `physRoot` down to `dir` one at a time; refuses a link among them. */
async function ensureFolders(physRoot: string, dir: string): Promise<void> {
  const folders = chain(physRoot, dir);
  if (folders.length === 0) {
    await mkdir(dir, { recursive: true }); // the parent of a root that is a file: the operator's
    return;
  }
  await mkdir(path.dirname(physRoot), { recursive: true });
  for (const folder of folders) {
    try {
      await mkdir(folder);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const st = await lstat(folder);
    if (st.isSymbolicLink() || !st.isDirectory()) {
      throw new ArtifactCorruptedError(`refusing to write below ${folder}: it is not a folder (it changed during the restore)`);
    }
  }
}

/** Writes the whole file `blob` to a new file `tmp` (never following a link), then owner and mode. */
async function writeNew(blob: string, tmp: string, entry: ArchiveEntry): Promise<void> {
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    for await (const chunk of createReadStream(blob)) {
      const buf = chunk as Buffer;
      let off = 0;
      while (off < buf.length) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
    }
    if (process.getuid?.() === 0 && entry.uid !== undefined && entry.gid !== undefined) await fh.chown(entry.uid, entry.gid);
    await fh.chmod(entry.mode & 0o777);
  } finally {
    await fh.close();
  }
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
  const result: RestoreConfigResult = { restored: [], keptAs: [], unchanged: [], skipped: [], modeBitsStripped: [] };
  try {
    const tarFile = path.join(work, 'config.tar');
    try {
      await runPipeline({
        source: decryptStream(identity, encryptedArchive),
        stages: [{ name: 'zstd', command: 'zstd', args: ['-d', '-q', '-c'] }],
        dest: tarFile,
      });
    } catch (err) {
      throw new ArtifactCorruptedError(`cannot decrypt and decompress the configuration archive ${encryptedArchive}: ${(err as Error).message}`, {
        cause: err,
      });
    }

    // 1. Each entry on its own, and the archive as a whole: refused before anything is written.
    const kinds = await listArchive(tarFile, encryptedArchive);

    // 2. Confinement, against the roots' real paths and what is on disk.
    const rootsLabel = opts.targetRoot === undefined ? `DR_CONFIG_PATHS (${roots.join(', ')})` : `the target folder ${base}`;
    const { planned, skipped } = await confineEntries(kinds, { base, roots, rootsLabel, encryptedArchive });
    result.skipped.push(...skipped);

    // 3. The regular files' bytes, into the private temp folder (no link is ever extracted).
    const tree = path.join(work, 'tree');
    await mkdir(tree, { mode: 0o700 });
    await tar.x({
      file: tarFile,
      cwd: tree,
      strict: true,
      preservePaths: false,
      preserveOwner: false,
      // Regular files only; each written private (0600, readable whatever its archived mode): the
      // mode applied to the restored file is taken from the listing, never from this copy.
      filter: (_p, e) => {
        if (!('type' in e) || !FILE_TYPES.has(e.type)) return false;
        e.mode = 0o600;
        return true;
      },
    });

    const writes: { plannedEntry: Planned; keep: string | undefined }[] = [];
    for (const p of planned) {
      const { entry, target, phys } = p;
      const blob = entry.type === 'SymbolicLink' ? undefined : path.join(tree, entry.rel);
      if (blob) {
        const st = await lstatOrUndefined(blob);
        if (!st?.isFile() || st.size !== entry.size) {
          throw refuse(encryptedArchive, 'an entry did not extract as listed:', [JSON.stringify(entry.name)]);
        }
        if ((entry.mode & 0o7000) !== 0) result.modeBitsStripped.push(target);
      }
      if (await same(entry, blob, phys)) {
        result.unchanged.push(target);
        continue;
      }
      let keep: string | undefined;
      if (await lstatOrUndefined(phys)) {
        keep = `${path.basename(phys)}.pre-recovery-${stamp}`;
        // A re-run after a crash: an earlier kept copy is never overwritten.
        if (await lstatOrUndefined(path.join(path.dirname(phys), keep))) keep = `${keep}-${randomBytes(3).toString('hex')}`;
        result.keptAs.push(path.join(path.dirname(target), keep));
      }
      result.restored.push(target);
      writes.push({ plannedEntry: p, keep });
    }
    if (opts.dryRun) return result;

    // 4. Write, in the verified folders, never through a link.
    for (const { plannedEntry, keep } of writes) {
      const { entry, phys, physRoot } = plannedEntry;
      const dir = path.dirname(phys);
      await ensureFolders(physRoot, dir);
      const tmp = path.join(dir, `${path.basename(phys)}.odoo-dr-${randomBytes(4).toString('hex')}.tmp`);
      try {
        if (entry.type === 'SymbolicLink') await symlink(entry.linkpath!, tmp);
        else await writeNew(path.join(tree, entry.rel), tmp, entry);
        if (keep) await rename(phys, path.join(dir, keep));
        await rename(tmp, phys);
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
