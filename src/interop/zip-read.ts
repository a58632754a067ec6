/** Reading an Odoo backup zip without trusting it: its format, every entry checked, the manifest, files checked against their SHA-1 names. */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as yauzl from 'yauzl';
import { InvalidInputError } from '../errors';
import { classifyZipEntry, parseOdooManifest, type OdooZipManifest } from './odoo-format';

export type ImportFormat = 'odoo-zip' | 'sql' | 'custom';

const MANIFEST_MAX_BYTES = 4 * 1024 * 1024;

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export async function detectFormat(file: string): Promise<ImportFormat> {
  const fh = await open(file, 'r').catch((err: NodeJS.ErrnoException) => {
    throw new InvalidInputError(`cannot read ${file}: ${err.code === 'ENOENT' ? 'no such file' : (err.code ?? err.message)}`);
  });
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new InvalidInputError(`${file} is not a regular file`);
    const head = Buffer.alloc(5);
    const { bytesRead } = await fh.read(head, 0, 5, 0);
    if (bytesRead >= 4 && head.readUInt32LE(0) === 0x04034b50) return 'odoo-zip';
    if (bytesRead === 5 && head.toString('latin1') === 'PGDMP') return 'custom';
    return 'sql';
  } finally {
    await fh.close();
  }
}

export async function openZip(file: string): Promise<yauzl.ZipFile> {
  try {
    return await yauzl.openPromise(file, { lazyEntries: true, autoClose: false, decodeStrings: true, validateEntrySizes: true, strictFileNames: true });
  } catch (err) {
    throw new InvalidInputError(`${file} is not a readable zip: ${messageOf(err)}`);
  }
}

/** Iterates a zip's entries, every read error (unsafe name, bad sizes) a refusal naming the file. */
export async function* entries(zip: yauzl.ZipFile, file: string): AsyncGenerator<yauzl.Entry> {
  const it = zip.eachEntry()[Symbol.asyncIterator]();
  for (;;) {
    let next: IteratorResult<yauzl.Entry>;
    try {
      next = await it.next();
    } catch (err) {
      throw new InvalidInputError(`${file}: refused: ${messageOf(err)}`);
    }
    if (next.done) return;
    yield next.value;
  }
}

export async function readText(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of await zip.openReadStreamPromise(entry)) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** First pass, over the zip's directory: every entry acceptable, one dump.sql, the manifest read. */
export async function scanZip(file: string): Promise<{ manifest?: OdooZipManifest; files: number; warnings: string[] }> {
  const zip = await openZip(file);
  const seen = new Set<string>();
  const warnings: string[] = [];
  let manifest: OdooZipManifest | undefined;
  let dump = false;
  let files = 0;
  try {
    for await (const entry of entries(zip, file)) {
      let kind;
      try {
        kind = classifyZipEntry(entry.fileName, entry.externalFileAttributes >>> 16);
      } catch (err) {
        throw new InvalidInputError(`${file}: refused: ${messageOf(err)}`);
      }
      if (seen.has(entry.fileName)) throw new InvalidInputError(`${file}: refused: zip entry ${JSON.stringify(entry.fileName)} appears twice`);
      seen.add(entry.fileName);
      if (kind.kind === 'dump') dump = true;
      else if (kind.kind === 'file') files++;
      else if (kind.kind === 'ignored') warnings.push(`zip entry ${JSON.stringify(entry.fileName)} ignored (not part of an Odoo backup)`);
      else if (kind.kind === 'manifest') {
        if (entry.uncompressedSize > MANIFEST_MAX_BYTES)
          throw new InvalidInputError(`${file}: refused: manifest.json is implausibly large (${entry.uncompressedSize} bytes)`);
        try {
          manifest = parseOdooManifest(await readText(zip, entry), file);
        } catch (err) {
          throw new InvalidInputError(`${file}: refused: ${messageOf(err)}`);
        }
      }
    }
  } finally {
    if (zip.isOpen) zip.close();
  }
  if (!dump) throw new InvalidInputError(`${file}: refused: no dump.sql (not an Odoo backup zip; a "dump"-format backup is imported as the .dump file itself)`);
  if (!manifest) warnings.push(`${file} has no manifest.json: installed modules are not compared with it`);
  return { ...(manifest ? { manifest } : {}), files, warnings };
}

/** Writes one filestore file of the zip to `dest`, checking its content against its SHA-1 name. */
export async function extractFile(stream: Readable, dest: string, sha1: string, name: string): Promise<number> {
  const hash = createHash('sha1');
  let size = 0;
  await pipeline(
    stream,
    async function* (source: AsyncIterable<Buffer>) {
      for await (const chunk of source) {
        hash.update(chunk);
        size += chunk.length;
        yield chunk;
      }
    },
    createWriteStream(dest, { flags: 'wx', mode: 0o640 }),
  );
  const actual = hash.digest('hex');
  if (actual !== sha1) throw new InvalidInputError(`zip entry ${JSON.stringify(name)} does not hold the file it names (content SHA-1 ${actual}): refused`);
  return size;
}
