/**
 * Restored filestores get the owner and modes of what they replace — the tenant's filestore before
 * the disaster, else the filestore root, else ODOO_DATA_DIR — so that an Odoo running as its own
 * user can read and write them, whoever (root, a DR user) ran the restore.
 */
import type { Stats } from 'node:fs';
import { chmod, lchown, lstat, opendir, stat } from 'node:fs/promises';
import path from 'node:path';

export interface Ownership {
  uid: number;
  gid: number;
  /** Mode of the reference folder; files get it without the execute bits. */
  dirMode: number;
  from: string;
}

/** The first of `candidates` that exists gives the ownership to copy. */
export async function ownershipOf(candidates: string[]): Promise<Ownership | undefined> {
  for (const p of candidates) {
    const st: Stats | undefined = await stat(p).catch(() => undefined);
    if (st?.isDirectory()) return { uid: st.uid, gid: st.gid, dirMode: st.mode & 0o7777, from: p };
  }
  return undefined;
}

/** Applies `owner` to `root` and everything below it (links are not followed). Returns the files changed. */
export async function applyOwnership(root: string, owner: Ownership): Promise<number> {
  const asRoot = process.getuid?.() === 0;
  const fileMode = owner.dirMode & 0o666;
  let changed = 0;
  const visit = async (p: string, st: Stats): Promise<void> => {
    if (st.isSymbolicLink()) return;
    if (asRoot && (st.uid !== owner.uid || st.gid !== owner.gid)) await lchown(p, owner.uid, owner.gid);
    const mode = st.isDirectory() ? owner.dirMode : fileMode;
    if ((st.mode & 0o7777) !== mode) await chmod(p, mode);
    changed++;
    if (!st.isDirectory()) return;
    for await (const entry of await opendir(p)) {
      const child = path.join(p, entry.name);
      await visit(child, await lstat(child));
    }
  };
  await visit(root, await lstat(root));
  return changed;
}
