/**
 * `config-only` recovery, reading and planning (steps 2 and 3 of config-files.ts's module comment):
 * the archive's entries checked one by one and as a whole, then confined to the roots, following
 * symbolic links as the kernel will once the archive is in place. Nothing here writes.
 */
import { lstat, readlink, realpath } from 'node:fs/promises';
import path from 'node:path';
import * as tar from 'tar';
import { ArtifactCorruptedError, InvalidInputError } from '../errors';

export const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);
const MAX_LINK_DEPTH = 40;

export interface ArchiveEntry {
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

export interface Planned {
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

export async function lstatOrUndefined(p: string) {
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
export function chain(root: string, dir: string): string[] {
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

export function refuse(encryptedArchive: string, what: string, problems: string[]): ArtifactCorruptedError {
  return new ArtifactCorruptedError(
    `refusing the configuration archive ${encryptedArchive}: ${what} ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? ` (${problems.length} in all)` : ''}`,
  );
}

/**
 * Lists the archive and checks each entry on its own and the archive as a whole (step 2): refused
 * before anything is written. Returns the entries by normalised path.
 */
export async function listArchive(tarFile: string, encryptedArchive: string): Promise<Map<string, ArchiveEntry>> {
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
  return kinds;
}

/**
 * Confinement (step 3), against the roots' real paths and what is on disk: where each entry inside
 * the roots goes, and the targets outside them (`skipped`, never written). `rootsLabel` names the
 * roots in messages.
 */
export async function confineEntries(
  kinds: Map<string, ArchiveEntry>,
  where: { base: string; roots: string[]; rootsLabel: string; encryptedArchive: string },
): Promise<{ planned: Planned[]; skipped: string[] }> {
  const { base, roots, rootsLabel, encryptedArchive } = where;
  const problems: string[] = [];
  const skipped: string[] = [];
  const confinement = await Promise.all(roots.map(async (root) => ({ root, phys: await physicalPath(root) })));
  const physRoots = confinement.map((c) => c.phys);
  const planned: Planned[] = [];
  for (const entry of [...kinds.values()].sort((a, b) => a.rel.localeCompare(b.rel))) {
    if (entry.type === 'Directory') continue;
    const target = path.join(base, entry.rel);
    // The outermost root holding the entry: the one every folder is checked up to.
    const holder = confinement.filter((c) => inside(target, [c.root])).sort((a, b) => a.root.length - b.root.length)[0];
    if (!holder) {
      skipped.push(target);
      continue;
    }
    const phys = path.join(holder.phys, path.relative(holder.root, target));
    planned.push({ entry, target, phys, physRoot: holder.phys });
  }
  const plan = new Map(planned.map((p) => [p.phys, p.entry]));
  const resolver = new LinkResolver(physRoots, plan, rootsLabel);
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
  return { planned, skipped };
}
