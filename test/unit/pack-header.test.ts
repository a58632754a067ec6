/** The pack member's tar header, written by hand for speed: byte for byte what node-tar writes, and read back by tar. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as tar from 'tar';
import { BLOCK, tarEntryBytes, writeTarEntryHeader } from '../../src/backup/packs';

function nodeTarHeader(sha1: string, size: number, mtime: Date): Buffer {
  const block = Buffer.alloc(BLOCK);
  new tar.Header({ path: `${sha1.slice(0, 2)}/${sha1}`, mode: 0o640, uid: 0, gid: 0, size, mtime, type: 'File', uname: '', gname: '' }).encode(block, 0);
  return block;
}

describe('pack member tar header', () => {
  it('is what node-tar writes, for sizes and mtimes across the octal field widths and beyond them', () => {
    const sizes = [0, 1, 511, 512, 8192, 1024 * 1024, 0o7777777777, 0o77777777777, 0o77777777777 + 1, 2 ** 40];
    const mtimes = [new Date(0), new Date(999), new Date(1_700_000_000_123), new Date(0o7777777777 * 1000), new Date(0o77777777777 * 1000), new Date(-5000)];
    for (const size of sizes)
      for (const mtime of mtimes) {
        const sha1 = createHash('sha1').update(randomBytes(8)).digest('hex');
        // Written into a dirty buffer at an offset, as into a reused slab.
        const slab = randomBytes(3 * BLOCK);
        writeTarEntryHeader(slab, BLOCK, sha1, size, mtime);
        assert.deepEqual(slab.subarray(BLOCK, 2 * BLOCK), nodeTarHeader(sha1, size, mtime), `size ${size}, mtime ${mtime.toISOString()}`);
      }
  });

  it('is parsed back by node-tar with its name, size, mode and mtime', () => {
    const sha1 = createHash('sha1').update('x').digest('hex');
    const block = Buffer.alloc(BLOCK);
    writeTarEntryHeader(block, 0, sha1, 12345, new Date(1_700_000_000_000));
    const parsed = new tar.Header(block);
    assert.equal(parsed.cksumValid, true);
    assert.equal(parsed.path, `${sha1.slice(0, 2)}/${sha1}`);
    assert.equal(parsed.size, 12345);
    assert.equal(parsed.mode, 0o640);
    assert.equal(parsed.type, 'File');
    assert.equal(parsed.mtime?.getTime(), 1_700_000_000_000);
  });

  it('entry sizes count the header and the padding to a whole block', () => {
    assert.equal(tarEntryBytes(0), BLOCK);
    assert.equal(tarEntryBytes(1), 2 * BLOCK);
    assert.equal(tarEntryBytes(BLOCK), 2 * BLOCK);
    assert.equal(tarEntryBytes(BLOCK + 1), 3 * BLOCK);
  });
});
