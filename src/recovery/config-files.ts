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
import { lstat, mkdir, mkdtemp, open, readlink, realpath, rename, rm, symlink } from 'node:fs/promises';
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
  /** Target paths whose archived mode had setuid, setgid or sticky bits: restored (or kept) without them. */
  modeBitsStripped: string[];
}

const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);
const MAX_LINK_DEPTH = 40;

interface ArchiveEntry {
  /** As stored in the archive (for messages). */
  name: string;
  /** Normalised, relative to `/`, no trailing slash. */
  rel: string;
  type: string;
  linkpath: string | undefined;
  mode: number;
  uid: number | undefined;
  gid: number | undefined;
  size: number;
}

interface Planned {
  entry: ArchiveEntry;
  /** Where it goes, as configured (what is reported). */
  target: string;
  /** The same path under the root's real path (what is checked and written). */
  phys: string;
  /** Real path of the root it is confined to. */
  physRoot: string;
}

/** What is wrong with an entry on its own, whatever the roots. */
function entryProblem(entryPath: string, type: string, linkpath: string | undefined): string | undefined {
  if (entryPath.includes('\0')) return 'NUL in path';
  if (entryPath.startsWith('/') || /^[A-Za-z]:/.test(entryPath)) return 'absolute path';
  const p = entryPath.replace(/\/+$/, '');
  if (p.split('/').includes('..')) return "path contains '..'";
  if (p.split('/').every((s) => s === '' || s === '.') && type !== 'Directory') return 'empty path';
  switch (type) {
    case 'File':
    case 'OldFile':
    case 'ContiguousFile':
    case 'Directory':
      return undefined;
    case 'Link':
      return `hard link (to ${JSON.stringify(linkpath)})`;
    case 'CharacterDevice':
    case 'BlockDevice':
      return `device file (${type})`;
    case 'FIFO':
      return 'fifo';
    case 'SymbolicLink': {
      if (!linkpath) return 'symbolic link without a target';
      if (linkpath.includes('\0')) return 'NUL in symbolic link target';
      if (linkpath.startsWith('/')) return `symbolic link to an absolute path ${JSON.stringify(linkpath)}`;
      const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(p), linkpath));
      if (resolved === '..' || resolved.startsWith('../')) return `symbolic link ${JSON.stringify(linkpath)} escapes the archive`;
      return undefined;
    }
    default:
      return `unsupported entry type ${type}`;
  }
}

/** `a//./b/` → `a/b` (used only once every entry has passed entryProblem: no `..`, not absolute). */
function normalise(entryPath: string): string {
  return entryPath
    .split('/')
    .filter((s) => s !== '' && s !== '.')
    .join('/');
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
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

function inside(target: string, roots: string[]): boolean {
  return roots.some((r) => target === r || target.startsWith(r.endsWith('/') ? r : `${r}/`));
}

/** `p` with its existing part replaced by its real path (the rest, not created yet, appended). */
async function physicalPath(p: string): Promise<string> {
  const missing: string[] = [];
  let cur = p;
  for (;;) {
    try {
      return path.join(await realpath(cur), ...missing);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const up = path.dirname(cur);
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || up === cur) throw err;
      missing.unshift(path.basename(cur));
      cur = up;
    }
  }
}

/** `root`, then each folder below it down to `dir` (empty when `dir` is above `root`). */
function chain(root: string, dir: string): string[] {
  if (!inside(dir, [root])) return [];
  const out = [root];
  const rest = path.relative(root, dir);
  if (rest === '') return out;
  let cur = root;
  for (const seg of rest.split(path.sep)) {
    cur = path.join(cur, seg);
    out.push(cur);
  }
  return out;
}

/**
 * Resolves symbolic links as the kernel will once the archive is in place: `plan` holds the files and
 * links the archive puts inside the roots (by real path); anything else is read from disk. Folders
 * outside the roots are the operator's and taken as they are (the roots are real paths, so the folders
 * above them are real folders).
 */
class LinkResolver {
  constructor(
    private readonly physRoots: string[],
    private readonly plan: Map<string, ArchiveEntry>,
    /** What the roots are, for messages. */
    private readonly rootsLabel: string,
  ) {}

  /** Where the link `linkpath` in folder `dir` leads, or why it is refused. */
  async resolve(dir: string, linkpath: string, depth = 0): Promise<{ to: string } | { problem: string }> {
    if (depth > MAX_LINK_DEPTH) return { problem: 'goes through too many levels of symbolic links' };
    if (!linkpath || linkpath.includes('\0')) return { problem: 'has an empty or NUL target' };
    if (linkpath.startsWith('/')) return { problem: `leads to an absolute path ${JSON.stringify(linkpath)}` };
    const segs = linkpath.split('/').filter((s) => s !== '' && s !== '.');
    let cur = dir;
    let i = 0;
    for (; i < segs.length && segs[i] === '..'; i++) cur = path.dirname(cur);
    if (segs.slice(i).includes('..')) {
      return { problem: "goes back up ('..') after going down" };
    }
    for (const seg of segs.slice(i)) {
      const next = path.join(cur, seg);
      let link: string | undefined;
      if (inside(next, this.physRoots)) {
        const planned = this.plan.get(next);
        if (planned) {
          link = planned.type === 'SymbolicLink' ? planned.linkpath : undefined;
        } else if ((await lstatOrUndefined(next))?.isSymbolicLink()) {
          link = await readlink(next);
        }
      }
      if (link === undefined) {
        cur = next;
        continue;
      }
      const r = await this.resolve(cur, link, depth + 1);
      if ('problem' in r) return { problem: `goes through the symbolic link ${next} (-> ${JSON.stringify(link)}), which ${r.problem}` };
      cur = r.to;
    }
    if (!inside(cur, this.physRoots)) return { problem: `leads outside ${this.rootsLabel} (to ${cur})` };
    return { to: cur };
  }
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

function refuse(encryptedArchive: string, what: string, problems: string[]): ArtifactCorruptedError {
  return new ArtifactCorruptedError(
    `refusing the configuration archive ${encryptedArchive}: ${what} ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? ` (${problems.length} in all)` : ''}`,
  );
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
      throw new ArtifactCorruptedError(`cannot decrypt and decompress the configuration archive ${encryptedArchive}: ${(err as Error).message}`, { cause: err });
    }

    // 1. Each entry on its own, and the archive as a whole: refused before anything is written.
    const entries: ArchiveEntry[] = [];
    const problems: string[] = [];
    try {
      await tar.t({
        file: tarFile,
        strict: true,
        onReadEntry: (e) => {
          const problem = entryProblem(e.path, e.type, e.linkpath);
          if (problem) problems.push(`${JSON.stringify(e.path)}: ${problem}`);
          // Kept even when unsafe, so that the checks below name every problem at once.
          entries.push({
            name: e.path,
            rel: normalise(e.path),
            type: e.type,
            linkpath: e.linkpath,
            mode: e.mode ?? 0o644,
            uid: e.uid,
            gid: e.gid,
            size: e.size,
          });
        },
      });
    } catch (err) {
      throw new ArtifactCorruptedError(`the configuration archive ${encryptedArchive} is not a valid tar archive: ${(err as Error).message}`, { cause: err });
    }
    const kinds = new Map<string, ArchiveEntry>();
    for (const e of entries) {
      const earlier = kinds.get(e.rel);
      if (earlier) problems.push(`${JSON.stringify(e.name)}: listed twice (also as ${JSON.stringify(earlier.name)})`);
      else kinds.set(e.rel, e);
    }
    for (const e of entries) {
      const segs = e.rel.split('/');
      for (let n = 1; n < segs.length; n++) {
        const parent = kinds.get(segs.slice(0, n).join('/'));
        if (parent && parent.type !== 'Directory') {
          const what = parent.type === 'SymbolicLink' ? 'a symbolic link' : 'a file';
          problems.push(`${JSON.stringify(e.name)}: written through ${JSON.stringify(parent.name)}, which the archive makes ${what}`);
          break;
        }
      }
    }
    if (problems.length) throw refuse(encryptedArchive, 'unsafe entries', problems);

    // 2. Confinement, against the roots' real paths and what is on disk.
    const confinement = await Promise.all(roots.map(async (root) => ({ root, phys: await physicalPath(root) })));
    const physRoots = confinement.map((c) => c.phys);
    const planned: Planned[] = [];
    for (const entry of [...kinds.values()].sort((a, b) => a.rel.localeCompare(b.rel))) {
      if (entry.type === 'Directory') continue;
      const target = path.join(base, entry.rel);
      // The outermost root holding the entry: the one every folder is checked up to.
      const holder = confinement.filter((c) => inside(target, [c.root])).sort((a, b) => a.root.length - b.root.length)[0];
      if (!holder) {
        result.skipped.push(target);
        continue;
      }
      const phys = path.join(holder.phys, path.relative(holder.root, target));
      planned.push({ entry, target, phys, physRoot: holder.phys });
    }
    const plan = new Map(planned.map((p) => [p.phys, p.entry]));
    const resolver = new LinkResolver(physRoots, plan, opts.targetRoot === undefined ? `DR_CONFIG_PATHS (${roots.join(', ')})` : `the target folder ${base}`);
    const conflicts: string[] = [];
    for (const { entry, target, phys, physRoot } of planned) {
      const name = JSON.stringify(entry.name);
      for (const folder of phys === physRoot ? [] : chain(physRoot, path.dirname(phys))) {
        const st = await lstatOrUndefined(folder);
        if (!st) break;
        if (st.isSymbolicLink()) {
          problems.push(`${name}: ${folder} is a symbolic link on disk (nothing is ever written through one)`);
          break;
        }
        if (!st.isDirectory()) {
          conflicts.push(`cannot restore ${target}: ${folder} is not a folder`);
          break;
        }
      }
      const current = await lstatOrUndefined(phys);
      if (current?.isDirectory()) conflicts.push(`cannot restore ${target}: a folder is in its place`);
      if (current?.isSymbolicLink()) {
        const r = await resolver.resolve(path.dirname(phys), await readlink(phys));
        if ('problem' in r) problems.push(`${name}: ${target} is already a symbolic link on disk that ${r.problem}`);
      }
      if (entry.type === 'SymbolicLink') {
        const r = await resolver.resolve(path.dirname(phys), entry.linkpath!);
        if ('problem' in r) problems.push(`${name}: symbolic link ${JSON.stringify(entry.linkpath)} ${r.problem}`);
      }
    }
    if (problems.length) throw refuse(encryptedArchive, 'unsafe entries', problems);
    if (conflicts.length) throw new InvalidInputError(conflicts.slice(0, 5).join('; '));

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
