/** The session store in a local folder (DR_BACKUP_DIR). */
import { copyFile, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { localPath, rel } from '../backup/layout';
import { ArtifactCorruptedError, DiskFullError } from '../errors';
import { hashFile } from '../pipeline';
import { assertStorePath, newestFirst, type ArtifactCheck, type ExpectedArtifact, type SessionStore } from './store';

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

/** Writes a file atomically: temp file, fsync, rename. */
async function writeAtomic(file: string, data: string | Buffer): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${randomBytes(4).toString('hex')}.partial`;
  const fh = await open(tmp, 'wx', 0o640);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    if ((err as NodeJS.ErrnoException).code === 'ENOSPC') throw new DiskFullError(`no space left on the backup disk writing ${file}`);
    throw err;
  }
  await fh.close();
  await rename(tmp, file);
}

/**
 * How old a file's ctime must be for its identity to be trusted: file timestamps tick coarsely
 * (jiffies; whole seconds on some file systems), so two writes close together may share one.
 */
const SETTLED_AFTER_MS = 2_000;

/**
 * A file's device, inode, size, mtime and ctime (undefined when absent): the same identity means the
 * same bytes, as any rewrite sets the ctime to now. `settled`: both times older than SETTLED_AFTER_MS,
 * without which an identity proves nothing.
 */
export async function fileIdentity(file: string): Promise<{ identity: string; settled: boolean } | undefined> {
  const settledBefore = BigInt(Date.now() - SETTLED_AFTER_MS) * 1_000_000n;
  const st = await stat(file, { bigint: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!st) return undefined;
  return { identity: `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`, settled: st.ctimeNs < settledBefore && st.mtimeNs < settledBefore };
}

export class LocalSessionStore implements SessionStore {
  readonly location = 'local' as const;
  readonly description: string;

  constructor(readonly root: string) {
    this.description = root;
  }

  private file(relPath: string): string {
    assertStorePath(relPath);
    return localPath(this.root, relPath);
  }

  /** The session's folder (the name is checked through its manifest's path). */
  private sessionDir(session: string, sub?: string): string {
    assertStorePath(rel.manifest(session));
    return localPath(this.root, sub ? `${rel.session(session)}/${sub}` : rel.session(session));
  }

  async sessionNames(): Promise<string[]> {
    return newestFirst(await readdir(path.join(this.root, 'sessions')).catch(() => [] as string[]));
  }

  async hasSession(session: string): Promise<boolean> {
    return exists(this.sessionDir(session));
  }

  async manifestText(session: string): Promise<string | undefined> {
    return readFile(this.file(rel.manifest(session)), 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
  }

  async signatureText(session: string): Promise<string | undefined> {
    return readFile(this.file(rel.signature(session)), 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
  }

  async manifestIdentity(session: string): Promise<string | undefined> {
    const manifest = await fileIdentity(this.file(rel.manifest(session)));
    const signature = await fileIdentity(this.file(rel.signature(session)));
    if (!manifest?.settled || (signature && !signature.settled)) return undefined;
    return `${manifest.identity}/${signature?.identity ?? 'unsigned'}`;
  }

  async putManifest(session: string, text: string, signature?: string): Promise<void> {
    const file = this.file(rel.manifest(session));
    if (signature !== undefined) await writeAtomic(this.file(rel.signature(session)), signature);
    await writeAtomic(file, text);
    if ((await readFile(file, 'utf8')) !== text) throw new ArtifactCorruptedError(`${file} did not read back as written`);
  }

  async putArtifact(file: string, expect: ExpectedArtifact): Promise<void> {
    const dest = this.file(expect.path);
    if (path.resolve(file) === path.resolve(dest)) return;
    await mkdir(path.dirname(dest), { recursive: true });
    const tmp = `${dest}.${randomBytes(4).toString('hex')}.partial`;
    await copyFile(file, tmp);
    const got = await hashFile(tmp);
    if (got.bytes !== expect.bytes || got.sha256 !== expect.sha256) {
      await rm(tmp, { force: true });
      throw new ArtifactCorruptedError(`${file} is not the artifact ${expect.path} (${got.bytes} bytes, sha256 ${got.sha256})`);
    }
    await rename(tmp, dest);
  }

  /** The stored file itself, once its bytes hash to the (signed) manifest's SHA-256. */
  async fetchArtifact(expect: ExpectedArtifact): Promise<string> {
    const file = this.file(expect.path);
    const st = await stat(file).catch(() => undefined);
    if (!st) throw new ArtifactCorruptedError(`${expect.path} is missing from ${this.root}`);
    if (st.size !== expect.bytes) throw new ArtifactCorruptedError(`${file} has ${st.size} bytes, the manifest says ${expect.bytes}`);
    const got = await hashFile(file);
    if (got.sha256 !== expect.sha256) throw new ArtifactCorruptedError(`${file} has SHA-256 ${got.sha256}, the manifest says ${expect.sha256}`);
    return file;
  }

  async checkArtifact(expect: ExpectedArtifact): Promise<ArtifactCheck> {
    const file = this.file(expect.path);
    let got;
    try {
      got = await hashFile(file);
    } catch (err) {
      return { ok: false, message: `${expect.path}: cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})` };
    }
    if (got.bytes !== expect.bytes) return { ok: false, message: `${expect.path}: ${got.bytes} bytes, manifest says ${expect.bytes}` };
    if (got.sha256 !== expect.sha256) return { ok: false, message: `${expect.path}: SHA-256 ${got.sha256} differs from the manifest's ${expect.sha256}` };
    return { ok: true, message: `${expect.path}: ${got.bytes} bytes, SHA-256 matches` };
  }

  async hasBlob(sha1: string): Promise<boolean> {
    return exists(this.file(rel.blob(sha1)));
  }

  async blobFile(sha1: string): Promise<{ file: string; bytes: number } | undefined> {
    const file = this.file(rel.blob(sha1));
    const st = await stat(file).catch(() => undefined);
    return st ? { file, bytes: st.size } : undefined;
  }

  async packFile(id: string): Promise<{ file: string; bytes: number } | undefined> {
    const file = this.file(rel.pack(id));
    const st = await stat(file).catch(() => undefined);
    return st ? { file, bytes: st.size } : undefined;
  }

  async putDocument(relPath: string, value: unknown): Promise<void> {
    await writeAtomic(this.file(relPath), `${JSON.stringify(value, null, 2)}\n`);
  }

  async getDocument(relPath: string): Promise<unknown> {
    const text = await readFile(this.file(relPath), 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new ArtifactCorruptedError(`${relPath} in ${this.root} is not valid JSON: ${(err as Error).message}`);
    }
  }

  async listDocuments(session: string, sub: string): Promise<string[]> {
    if (!/^[a-z]+$/.test(sub)) throw new Error(`bad document folder ${sub}`);
    const dir = `${rel.session(session)}/${sub}`;
    const names = await readdir(this.sessionDir(session, sub)).catch(() => [] as string[]);
    return names
      .filter((n) => n.endsWith('.json'))
      .map((n) => `${dir}/${n}`)
      .sort();
  }

  async deleteSession(session: string): Promise<void> {
    await rm(this.file(rel.manifest(session)), { force: true });
    await rm(this.sessionDir(session), { recursive: true, force: true });
  }
}
