/** The tar header fields a pack member needs, read directly (packHeader) as node-tar reads them. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as tar from 'tar';
import { packHeader } from '../../src/backup/pack-reader';

function encoded(fields: ConstructorParameters<typeof tar.Header>[0]): Buffer {
  const block = Buffer.alloc(512);
  new tar.Header(fields).encode(block, 0);
  return block;
}

describe('pack reader: packHeader', () => {
  it('reads path, size and type as node-tar does, octal and base-256 sizes alike', () => {
    for (const size of [0, 1, 511, 512, 8192, 1_000_000, 8 * 1024 ** 3 - 1, 8 * 1024 ** 3, 2 ** 40]) {
      const sha1 = randomBytes(20).toString('hex');
      const block = encoded({ path: `${sha1.slice(0, 2)}/${sha1}`, mode: 0o640, uid: 0, gid: 0, size, mtime: new Date(), type: 'File', uname: '', gname: '' });
      const theirs = new tar.Header(block);
      assert.deepEqual(packHeader(block), { path: theirs.path, size: theirs.size, type: 'File', cksumValid: true });
    }
  });

  it('joins the ustar prefix to the name', () => {
    const block = encoded({ path: `${'a'.repeat(120)}/${'b'.repeat(60)}`, mode: 0o640, size: 3, mtime: new Date(), type: 'File' });
    assert.equal(packHeader(block).path, new tar.Header(block).path);
  });

  it('names any other entry type, which the reader refuses', () => {
    for (const [type, flag] of [
      ['Directory', '5'],
      ['SymbolicLink', '2'],
      ['Link', '1'],
    ] as const) {
      const block = encoded({ path: 'ab/x', mode: 0o640, size: 0, mtime: new Date(), type, linkpath: type === 'Directory' ? '' : '/etc/passwd' });
      assert.equal(packHeader(block).type, `type "${flag}"`);
    }
  });

  it('any changed byte breaks the checksum; a bad size field is -1', () => {
    const sha1 = randomBytes(20).toString('hex');
    const block = encoded({ path: `${sha1.slice(0, 2)}/${sha1}`, mode: 0o640, size: 8192, mtime: new Date(), type: 'File' });
    for (const at of [0, 50, 124, 156, 300, 511]) {
      const changed = Buffer.from(block);
      changed[at] = changed[at]! ^ 1;
      assert.equal(packHeader(changed).cksumValid, false, `byte ${at}`);
    }
    const badSize = Buffer.from(block);
    badSize.write('0000001x', 124, 'latin1');
    assert.equal(packHeader(badSize).size, -1);
  });
});
