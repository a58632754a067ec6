/** The tar header fields a pack member needs, read directly (packHeader) as node-tar reads them; a plan of files read pack by pack. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tar from 'tar';
import { localPath, rel } from '../../src/backup/layout';
import { packHeader, PackPlan, visitPackedFiles } from '../../src/backup/pack-reader';
import { writePack, type PackMember } from '../../src/backup/packs';
import { ageDecrypter, generateIdentity, readIdentity } from '../../src/crypto/age';

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

describe('pack reader: a plan of files read pack by pack', function () {
  this.timeout(60_000);
  let dir: string;
  let identity: string;
  let recipient: string;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-pack-plan-'));
    const key = path.join(dir, 'key.txt');
    ({ recipient } = await generateIdentity(key));
    identity = await readIdentity(key);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const member = (size: number): PackMember => {
    const data = randomBytes(size);
    const sha1 = createHash('sha1').update(data).digest('hex');
    return { sha1, size, mtime: new Date(), data, source: `test/${sha1}` };
  };
  const odooName = (sha1: string) => `${sha1.slice(0, 2)}/${sha1}`;

  it('hands each content once with every path holding it, Odoo-named or not, and names the files it cannot give', async () => {
    const [named, shared, renamed, empty] = [member(100), member(2000), member(300), member(0)];
    const written = await writePack({ root: dir, members: [named, shared, renamed, empty], recipients: [recipient], compressionLevel: 3 });
    const absent = member(10);
    const plan = new PackPlan();
    plan.record({ pack: written.id, bytes: written.bytes });
    const add = (path: string, m: PackMember, size = m.size) => plan.add({ path, sha1: m.sha1, size, pack: written.id });
    assert.equal(add(odooName(named.sha1), named), undefined);
    assert.equal(add(odooName(shared.sha1), shared), undefined);
    assert.equal(add('copies/shared.bin', shared), undefined);
    assert.equal(add('attachments/renamed.pdf', renamed), undefined);
    assert.equal(add(odooName(empty.sha1), empty), undefined);
    assert.equal(add(odooName(absent.sha1), absent), undefined);
    assert.match(add('copies/other-size.bin', shared, 1999) ?? '', /copies\/other-size\.bin: the index gives two sizes for content/);
    assert.equal(plan.files, 6);
    // The other pack of the plan is not stored.
    plan.record({ pack: 'f'.repeat(64), bytes: 10 });
    plan.add({ path: odooName(absent.sha1), sha1: absent.sha1, size: 10, pack: 'f'.repeat(64) });

    const given: { sha1: string; size: number; paths: string[]; content: string }[] = [];
    const problems: string[] = [];
    await visitPackedFiles({
      plan,
      open: (id) => Promise.resolve(id === written.id ? { file: localPath(dir, rel.pack(id)) } : undefined),
      decrypter: await ageDecrypter(identity),
      problem: (text) => problems.push(text),
      onFile: async (want, m) => {
        given.push({
          ...want,
          content: createHash('sha1')
            .update(await m.whole())
            .digest('hex'),
        });
      },
    });
    const sorted = given.sort((a, b) => a.size - b.size);
    assert.deepEqual(sorted, [
      { sha1: empty.sha1, size: 0, paths: [odooName(empty.sha1)], content: empty.sha1 },
      { sha1: named.sha1, size: 100, paths: [odooName(named.sha1)], content: named.sha1 },
      { sha1: renamed.sha1, size: 300, paths: ['attachments/renamed.pdf'], content: renamed.sha1 },
      { sha1: shared.sha1, size: 2000, paths: [odooName(shared.sha1), 'copies/shared.bin'], content: shared.sha1 },
    ]);
    assert.deepEqual(problems.sort(), [
      `${odooName(absent.sha1)}: not in pack ${rel.pack(written.id)} (content ${absent.sha1})`,
      `${odooName(absent.sha1)}: pack ${rel.pack('f'.repeat(64))} is missing (content ${absent.sha1})`,
    ]);
  });
});
