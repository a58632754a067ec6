/**
 * Tiny packs (a small tenant's filestore) are framed in-process (zstd raw blocks); they
 * read back with the standard tools exactly as packs written through zstd and age do (break-glass:
 * `age -d -i key PACK | zstd -d | tar -x`).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { localPath, rel } from '../../src/backup/layout';
import { SMALL_PACK_BYTES, writePack, type PackMember } from '../../src/backup/packs';
import { generateIdentity } from '../../src/crypto/age';
import { zstdStoredFrame } from '../../src/pipeline';

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

describe('small packs: a stored zstd frame written in-process', function () {
  this.timeout(60_000);
  let dir: string;
  let key: string;
  let recipient: string;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-small-pack-'));
    key = path.join(dir, 'key.txt');
    ({ recipient } = await generateIdentity(key));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('zstd -d reads a stored frame of any size, over several blocks too', () => {
    for (const size of [0, 1, 4096, 128 * 1024, 128 * 1024 + 1, 300_000]) {
      const content = randomBytes(size);
      const frame = zstdStoredFrame(content);
      assert.ok(frame.subarray(0, 4).equals(ZSTD_MAGIC));
      const back = execFileSync('zstd', ['-d', '-q', '-c'], { input: frame, maxBuffer: 16 * 1024 * 1024 });
      assert.ok(back.equals(content), `${size} bytes`);
    }
  });

  const members = (count: number, size: number): PackMember[] =>
    Array.from({ length: count }, () => {
      const data = randomBytes(size);
      const sha1 = createHash('sha1').update(data).digest('hex');
      return { sha1, size, mtime: new Date(), data, source: `test/${sha1}` };
    });

  /** Writes a pack of `files` and extracts it with age, zstd and tar; returns the decrypted frame. */
  const roundTrip = async (files: PackMember[]) => {
    const root = path.join(dir, randomBytes(4).toString('hex'));
    mkdirSync(root);
    const written = await writePack({ root, members: files, recipients: [recipient], compressionLevel: 3 });
    const file = localPath(root, rel.pack(written.id));
    const stored = readFileSync(file);
    assert.equal(stored.length, written.bytes);
    assert.equal(createHash('sha256').update(stored).digest('hex'), written.id);
    const frame = execFileSync('age', ['-d', '-i', key, file], { maxBuffer: 64 * 1024 * 1024 });
    const out = path.join(root, 'extracted');
    mkdirSync(out);
    execFileSync('sh', ['-c', 'age -d -i "$1" "$2" | zstd -d -q | tar -x -C "$3"', 'sh', key, file, out]);
    for (const m of files) assert.ok(readFileSync(path.join(out, m.sha1.slice(0, 2), m.sha1)).equals(m.data!), m.sha1);
    return frame;
  };

  it('a pack of a few small files is a stored frame (no zstd process), and extracts with the standard tools', async () => {
    const frame = await roundTrip(members(3, 700));
    assert.ok(frame.subarray(0, 4).equals(ZSTD_MAGIC));
    // Single segment, 4-byte content size: the in-process frame, not zstd's.
    assert.equal(frame[4], 0xa0);
    assert.equal(frame.readUInt32LE(5), frame.length - 9 - 3);
  });

  it(`above ${SMALL_PACK_BYTES / 1024} KiB of tar, the pack is compressed by zstd as before`, async () => {
    // Compressible content: zstd's frame is far smaller than the tar.
    const files = members(40, 4096).map((m) => {
      const data = Buffer.alloc(4096, m.sha1);
      return { ...m, data, sha1: createHash('sha1').update(data).digest('hex') };
    });
    const frame = await roundTrip(files);
    assert.ok(frame.subarray(0, 4).equals(ZSTD_MAGIC));
    assert.ok(frame.length < SMALL_PACK_BYTES / 4, `compressed: ${frame.length} bytes`);
  });
});
