/**
 * A zstd frame of raw (stored, uncompressed) blocks, written in-process (RFC 8878 §3.1.1): what
 * `zstd -d` reads like any other frame. For a few KiB, where starting a `zstd` process costs far more
 * than the bytes compression would save.
 */

const MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
/** Single segment (the window is the content), 4-byte content size, no checksum, no dictionary. */
const DESCRIPTOR = 0xa0;
/** A block holds at most 128 KiB. */
const MAX_BLOCK = 128 * 1024;
const RAW_BLOCK = 0;

export function zstdStoredFrame(content: Buffer): Buffer {
  if (content.length > 0xffff_ffff) throw new RangeError('a stored zstd frame holds at most 4 GiB');
  const header = Buffer.alloc(MAGIC.length + 1 + 4);
  MAGIC.copy(header, 0);
  header[4] = DESCRIPTOR;
  header.writeUInt32LE(content.length, 5);
  const parts: Buffer[] = [header];
  let offset = 0;
  // At least one block, the last one flagged (an empty content is one empty last block).
  do {
    const size = Math.min(MAX_BLOCK, content.length - offset);
    const last = offset + size >= content.length ? 1 : 0;
    const blockHeader = Buffer.alloc(3);
    blockHeader.writeUIntLE(last | (RAW_BLOCK << 1) | (size << 3), 0, 3);
    parts.push(blockHeader, content.subarray(offset, offset + size));
    offset += size;
  } while (offset < content.length);
  return Buffer.concat(parts);
}
