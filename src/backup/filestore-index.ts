/**
 * Reading a tenant's filestore index (`filestore.jsonl`) back: streaming, strictly parsed (the index
 * is read back from storage: nothing in it is trusted beyond its shape; its SHA-256 is in the
 * signed manifest).
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { plausibleAgeSize } from '../crypto/age';
import { ArtifactCorruptedError } from '../errors';
import { parseIndexLine, SHA1_HEX, type FileEntry, type IndexLine } from './packs';

const isGone = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT';

/** Files of the reuse indexes: SHA-1 → size and pack, and each pack's stored size. */
export async function loadReusable(files: string[]): Promise<{ files: Map<string, { size: number; pack: string }>; packs: Map<string, number> }> {
  const out = { files: new Map<string, { size: number; pack: string }>(), packs: new Map<string, number>() };
  for (const file of files) {
    const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
    let n = 0;
    try {
      for await (const line of lines) {
        n++;
        if (!line.trim()) continue;
        const parsed = parseIndexLine(line, `${file}, line ${n}`);
        if (parsed.kind === 'pack') out.packs.set(parsed.record.pack, parsed.record.bytes);
        else if (parsed.entry.pack && SHA1_HEX.test(parsed.entry.sha1)) out.files.set(parsed.entry.sha1, { size: parsed.entry.size, pack: parsed.entry.pack });
      }
    } catch (err) {
      // An index that cannot be read only means less reuse.
      if (!isGone(err) && !(err instanceof ArtifactCorruptedError)) throw err;
    } finally {
      lines.close();
    }
  }
  return out;
}

/** Whether the stored blob at `file` has the size of an age file of `plainBytes` (see plausibleAgeSize). */
export async function blobSound(file: string, plainBytes: number): Promise<'sound' | 'absent' | 'damaged'> {
  const st = await stat(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!st) return 'absent';
  return st.isFile() && plausibleAgeSize(st.size, plainBytes) ? 'sound' : 'damaged';
}

/** Reads a filestore index back (streaming): its file entries and pack records, strictly parsed. */
export async function* readIndexLines(file: string): AsyncGenerator<IndexLine> {
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const line of lines) {
      n++;
      if (line.trim()) yield parseIndexLine(line, `filestore index ${file}, line ${n}`);
    }
  } finally {
    lines.close();
  }
}

/** The file entries of a filestore index (streaming). */
export async function* readFilestoreIndex(file: string): AsyncGenerator<FileEntry> {
  for await (const line of readIndexLines(file)) if (line.kind === 'file') yield line.entry;
}
