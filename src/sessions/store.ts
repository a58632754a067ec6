/**
 * The session store: everything that reads or writes backup sessions goes through this interface,
 * with one implementation per place (a local folder, an S3 bucket prefix) and one conformance
 * suite that both pass (test/integration/session-store.test.ts), as restic does for its backends.
 *
 * Paths are relative to the store's root and use the session layout of src/backup/layout.ts
 * (`sessions/<session>/…`, `blobs/<aa>/<sha1>.age`). Every path is checked against that layout
 * before use, so a name read from a manifest can never reach outside the store.
 */
import { InvalidInputError } from '../errors';
import { SESSION_NAME } from '../backup/layout';

export type StoreLocation = 'local' | 'cloud';

/** What a manifest says an artifact is: the bytes to expect. */
export interface ExpectedArtifact {
  path: string;
  bytes: number;
  sha256: string;
}

export interface ArtifactCheck {
  ok: boolean;
  message: string;
}

export interface SessionStore {
  readonly location: StoreLocation;
  /** Where it is, for messages: a folder or `s3://bucket/prefix`. */
  readonly description: string;
  /** Names of the sessions with anything stored, newest first. */
  sessionNames(): Promise<string[]>;
  /** Whether anything of the session is stored here. */
  hasSession(session: string): Promise<boolean>;
  /** The manifest's text, or undefined when the session has none here (absent, in progress, crashed). */
  manifestText(session: string): Promise<string | undefined>;
  /** The manifest's signature (armored OpenSSH signature), or undefined when there is none. */
  signatureText(session: string): Promise<string | undefined>;
  /**
   * What identifies the manifest and signature files as stored (local folder only: device, inode,
   * size, mtime and ctime of each): equal identities mean the same bytes, as rewriting either file
   * changes its ctime, which nobody can set back. Undefined when the manifest is absent, or when a
   * file changed too recently for its timestamps to tell (they tick coarsely): read it then.
   */
  manifestIdentity?(session: string): Promise<string | undefined>;
  /** Stores the manifest, its signature first (written last by a backup: its presence means finished). */
  putManifest(session: string, text: string, signature?: string): Promise<void>;
  /** Copies a local file into the store under `relPath`, verified against `expect`. */
  putArtifact(file: string, expect: ExpectedArtifact): Promise<void>;
  /**
   * A local file holding the artifact: the stored file itself for a local store, a verified
   * download under `scratchDir` for the bucket. The caller removes `scratchDir` when done.
   */
  fetchArtifact(expect: ExpectedArtifact, scratchDir: string, signal?: AbortSignal): Promise<string>;
  /** Size and SHA-256 of the stored artifact against the manifest's (never throws for a mismatch). */
  checkArtifact(expect: ExpectedArtifact, signal?: AbortSignal): Promise<ArtifactCheck>;
  /** Whether the filestore blob is stored. */
  hasBlob(sha1: string): Promise<boolean>;
  /**
   * A local file holding the blob (the stored file itself for a local store, a download under
   * `scratchDir` for the bucket), or undefined when it is not stored.
   */
  blobFile(sha1: string, scratchDir: string, signal?: AbortSignal): Promise<{ file: string; bytes: number } | undefined>;
  /**
   * A local file holding the filestore pack `id` (the stored file itself for a local store; for
   * the bucket a download under `scratchDir`, its size and SHA-256 — the id — verified), or
   * undefined when it is not stored.
   */
  packFile(id: string, bytes: number, scratchDir: string, signal?: AbortSignal): Promise<{ file: string; bytes: number } | undefined>;
  /** A small JSON document (tenant entries, validation results). */
  putDocument(relPath: string, value: unknown): Promise<void>;
  /** The document, or undefined when absent. */
  getDocument(relPath: string): Promise<unknown>;
  /** Relative paths of the documents directly under a session's folder `sub` (e.g. `results`). */
  listDocuments(session: string, sub: string): Promise<string[]>;
  /** Deletes the session, manifest first (a half-deleted session never looks complete). */
  deleteSession(session: string): Promise<void>;
}

const SEGMENT = /^[A-Za-z0-9_.@+-]+$/;

/**
 * Refuses any relative path that is not made of plain segments under `sessions/<session>/` or
 * `blobs/`: no `..`, no absolute path, no empty or odd segment.
 */
export function assertStorePath(relPath: string): void {
  const parts = relPath.split('/');
  const ok =
    parts.length >= 2 &&
    parts.every((p) => p !== '' && p !== '.' && p !== '..' && SEGMENT.test(p)) &&
    ((parts[0] === 'sessions' && SESSION_NAME.test(parts[1]!) && parts.length >= 3) ||
      (parts[0] === 'blobs' &&
        parts.length === 3 &&
        /^[0-9a-f]{2}$/.test(parts[1]!) &&
        /^[0-9a-f]{40}\.age$/.test(parts[2]!) &&
        parts[2]!.startsWith(parts[1]!)) ||
      (parts[0] === 'packs' &&
        parts.length === 3 &&
        /^[0-9a-f]{2}$/.test(parts[1]!) &&
        /^[0-9a-f]{64}\.tar\.zst\.age$/.test(parts[2]!) &&
        parts[2]!.startsWith(parts[1]!)));
  if (!ok) {
    throw new InvalidInputError(
      `${JSON.stringify(relPath)} is not a path of the backup layout (sessions/<session>/…, packs/<aa>/<sha256>.tar.zst.age or blobs/<aa>/<sha1>.age)`,
    );
  }
}

/** Newest first: session names sort by their time stamp. */
export function newestFirst(names: Iterable<string>): string[] {
  return [...new Set(names)]
    .filter((n) => SESSION_NAME.test(n))
    .sort()
    .reverse();
}
