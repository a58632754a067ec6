/**
 * restoreConfigArchive against hostile configuration archives (node-tar style regression tests): the
 * archive comes from a bucket an attacker may write to. Each attack archive is a real tar (headers
 * crafted with node-tar's Header, as node-tar's own tests do), compressed with the zstd CLI and
 * encrypted with the age CLI to a fresh key, paths relative to `/` as `archiveConfiguration` writes
 * them. Every attack archive starts with a harmless entry, so "refused before anything is written" is
 * checked, and a canary folder outside the roots must stay exactly as it was.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tar from 'tar';
import { archiveConfiguration } from '../../src/backup/cluster';
import { localPath } from '../../src/backup/layout';
import type { DrConfig } from '../../src/config';
import { readIdentity } from '../../src/crypto/age';
import { ArtifactCorruptedError } from '../../src/errors';
import { restoreConfigArchive } from '../../src/recovery/config-files';
import { rejection } from '../helpers/assert';
import { stackConfig } from '../helpers/config';

const STAMP = '20260102030405';

interface RawEntry {
  path: string;
  type?: 'File' | 'Directory' | 'SymbolicLink' | 'Link' | 'CharacterDevice' | 'BlockDevice' | 'FIFO';
  data?: string;
  linkpath?: string;
  mode?: number;
  devmaj?: number;
  devmin?: number;
}

/** A tar file built block by block: one header per entry (node-tar's Header), the data, two zero blocks. */
function rawTar(entries: RawEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const type = e.type ?? 'File';
    const data = Buffer.from(e.data ?? '');
    const h = new tar.Header({
      path: e.path,
      type,
      mode: e.mode ?? (type === 'Directory' ? 0o755 : 0o644),
      uid: 0,
      gid: 0,
      size: type === 'File' ? data.length : 0,
      mtime: new Date('2026-01-01T00:00:00Z'),
      ...(e.linkpath !== undefined ? { linkpath: e.linkpath } : {}),
      ...(e.devmaj !== undefined ? { devmaj: e.devmaj, devmin: e.devmin ?? 0 } : {}),
    });
    h.encode();
    assert.ok(!h.needPax && h.block, `test bug: ${e.path} needs a pax header`);
    blocks.push(h.block);
    if (type === 'File' && data.length) {
      blocks.push(data, Buffer.alloc((512 - (data.length % 512)) % 512));
    }
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** Recursive description of a folder (kind, mode, bytes or link target) to compare before and after. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const visit = (rel: string) => {
    const p = path.join(dir, rel);
    const st = lstatSync(p);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isSymbolicLink()) out[rel] = `link -> ${readlinkSync(p)}`;
    else if (st.isDirectory()) {
      out[rel] = `dir ${mode}`;
      for (const name of readdirSync(p).sort()) visit(rel ? `${rel}/${name}` : name);
    } else if (st.isFile()) out[rel] = `file ${mode} nlink=${st.nlink} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`;
    else out[rel] = `other ${st.mode.toString(8)}`;
  };
  if (existsSync(dir)) visit('');
  return out;
}

/** `/tmp/x/root` → `tmp/x/root`: archive paths are relative to `/`. */
const rel = (p: string) => p.replace(/^\/+/, '');

describe('configuration restore: hostile archives', function () {
  this.timeout(60_000);
  let dir: string;
  let recipient: string;
  let identity: string;
  /** Per test: <t>/root is DR_CONFIG_PATHS, <t>/canary is outside it. */
  let t: string;
  let root: string;
  let canary: string;
  let config: DrConfig;
  let n = 0;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-cfg-attacks-'));
    const key = path.join(dir, 'key');
    execFileSync('age-keygen', ['-o', key], { stdio: 'ignore' });
    chmodSync(key, 0o600);
    recipient = execFileSync('age-keygen', ['-y', key], { encoding: 'utf8' }).trim();
    identity = await readIdentity(key);
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  beforeEach(() => {
    // Real path: the messages and results name paths as configured, and /tmp may be a link elsewhere.
    t = mkdtempSync(path.join(realpathSync(dir), 't-'));
    root = path.join(t, 'root');
    canary = path.join(t, 'canary');
    mkdirSync(root);
    mkdirSync(canary);
    writeFileSync(path.join(root, 'odoo.conf'), '[options]\ndb_user = odoo\n', { mode: 0o640 });
    writeFileSync(path.join(canary, 'keep.txt'), 'canary\n');
    config = stackConfig({ DR_CONFIG_PATHS: root, DR_BACKUP_DIR: path.join(t, 'backups') });
  });

  /** tar bytes → `<name>.tar.zst.age`, the format restoreConfigArchive reads. */
  function seal(tarBytes: Buffer): string {
    const base = path.join(t, `archive-${n++}`);
    writeFileSync(`${base}.tar`, tarBytes);
    execFileSync('zstd', ['-q', '-f', `${base}.tar`, '-o', `${base}.tar.zst`]);
    execFileSync('age', ['-r', recipient, '-o', `${base}.tar.zst.age`, `${base}.tar.zst`]);
    return `${base}.tar.zst.age`;
  }

  /** An attack archive: a harmless first entry (a changed odoo.conf), then the given entries. */
  function attack(entries: RawEntry[]): string {
    return seal(rawTar([{ path: `${rel(root)}/`, type: 'Directory' }, { path: `${rel(root)}/odoo.conf`, data: 'from the archive\n' }, ...entries]));
  }

  /** The restore is refused as a whole (ArtifactCorruptedError matching each pattern); nothing changed on disk. */
  async function assertRefused(archive: string, patterns: RegExp[], opts: { dryRun?: boolean; targetRoot?: string } = {}) {
    const before = { root: snapshot(root), canary: snapshot(canary), top: readdirSync(t).sort() };
    const err = await rejection(restoreConfigArchive({ config, encryptedArchive: archive, identity, stamp: STAMP, ...opts }));
    assert.ok(err instanceof ArtifactCorruptedError, `expected ArtifactCorruptedError, got ${String(err)}`);
    for (const p of patterns) assert.match(err.message, p);
    assert.deepEqual(snapshot(root), before.root, 'nothing is written under the root');
    assert.deepEqual(snapshot(canary), before.canary, 'the canary outside the root is untouched');
    assert.deepEqual(
      readdirSync(t)
        .filter((x) => x !== 'backups')
        .sort(),
      before.top.filter((x) => x !== 'backups'),
      'nothing created beside the root',
    );
    return err;
  }

  it('a benign archive restores correctly, with a legitimate relative link inside the roots (in place and for review)', async () => {
    const other = path.join(t, 'other'); // archived, but not in DR_CONFIG_PATHS at restore time
    mkdirSync(path.join(root, 'nginx', 'sites-available'), { recursive: true });
    mkdirSync(path.join(root, 'nginx', 'sites-enabled'));
    mkdirSync(path.join(root, 'conf.d'));
    mkdirSync(other);
    writeFileSync(path.join(root, 'same.txt'), 'unchanged\n');
    writeFileSync(path.join(root, 'nginx', 'sites-available', 'site'), 'server { listen 80; }\n', { mode: 0o640 });
    symlinkSync('../sites-available/site', path.join(root, 'nginx', 'sites-enabled', 'site'));
    writeFileSync(path.join(root, 'conf.d', 'extra.conf'), 'workers = 4\n');
    writeFileSync(path.join(other, 'outside.conf'), 'original outside\n');
    // A real archive, made by the backup (tar of DR_CONFIG_PATHS relative to /, zstd, age).
    const made = await archiveConfiguration({
      config: stackConfig({ DR_CONFIG_PATHS: `${root},${other}`, DR_BACKUP_DIR: path.join(t, 'backups') }),
      session: 'backup_20260101_000001_cfattack',
      recipients: [recipient],
    });
    const archive = localPath(path.join(t, 'backups'), made.artifact!.path);

    // Damage after the backup.
    writeFileSync(path.join(root, 'odoo.conf'), '[options]\ndb_user = broken\n');
    rmSync(path.join(root, 'nginx', 'sites-enabled', 'site'));
    rmSync(path.join(root, 'conf.d'), { recursive: true });
    writeFileSync(path.join(other, 'outside.conf'), 'changed outside\n');
    const canaryBefore = snapshot(canary);
    const expected = [path.join(root, 'conf.d', 'extra.conf'), path.join(root, 'nginx', 'sites-enabled', 'site'), path.join(root, 'odoo.conf')];

    const dry = await restoreConfigArchive({ config, encryptedArchive: archive, identity, stamp: STAMP, dryRun: true });
    assert.deepEqual([...dry.restored].sort(), expected);
    assert.ok(!existsSync(path.join(root, 'conf.d')), 'a dry run changes nothing');

    const r = await restoreConfigArchive({ config, encryptedArchive: archive, identity, stamp: STAMP });
    assert.deepEqual([...r.restored].sort(), expected);
    assert.deepEqual(r.keptAs, [path.join(root, `odoo.conf.pre-recovery-${STAMP}`)]);
    assert.deepEqual([...r.unchanged].sort(), [path.join(root, 'nginx', 'sites-available', 'site'), path.join(root, 'same.txt')]);
    assert.deepEqual(r.skipped, [path.join(other, 'outside.conf')]);
    assert.deepEqual(r.modeBitsStripped, []);
    assert.equal(readFileSync(path.join(root, 'odoo.conf'), 'utf8'), '[options]\ndb_user = odoo\n');
    assert.equal(statSync(path.join(root, 'odoo.conf')).mode & 0o7777, 0o640);
    assert.equal(readFileSync(path.join(root, `odoo.conf.pre-recovery-${STAMP}`), 'utf8'), '[options]\ndb_user = broken\n');
    assert.equal(readFileSync(path.join(root, 'conf.d', 'extra.conf'), 'utf8'), 'workers = 4\n');
    const link = path.join(root, 'nginx', 'sites-enabled', 'site');
    assert.ok(lstatSync(link).isSymbolicLink());
    assert.equal(readlinkSync(link), '../sites-available/site');
    assert.equal(readFileSync(link, 'utf8'), 'server { listen 80; }\n');
    assert.equal(readFileSync(path.join(other, 'outside.conf'), 'utf8'), 'changed outside\n', 'outside DR_CONFIG_PATHS: never written');
    assert.deepEqual(snapshot(canary), canaryBefore);

    const again = await restoreConfigArchive({ config, encryptedArchive: archive, identity, stamp: STAMP });
    assert.deepEqual(again.restored, []);
    assert.deepEqual(again.keptAs, []);

    // For review: everything under the target folder, the link still resolving inside it.
    const review = path.join(t, 'review');
    const rv = await restoreConfigArchive({ config, encryptedArchive: archive, identity, stamp: STAMP, targetRoot: review });
    assert.deepEqual(rv.skipped, []);
    assert.equal(readFileSync(path.join(review, rel(other), 'outside.conf'), 'utf8'), 'original outside\n');
    const reviewLink = path.join(review, rel(root), 'nginx', 'sites-enabled', 'site');
    assert.equal(readlinkSync(reviewLink), '../sites-available/site');
    assert.equal(realpathSync(reviewLink), path.join(review, rel(root), 'nginx', 'sites-available', 'site'));
    assert.equal(readFileSync(path.join(other, 'outside.conf'), 'utf8'), 'changed outside\n');
    assert.deepEqual(snapshot(canary), canaryBefore);
  });

  it("attack 1: '..' segments are refused", async () => {
    const archive = attack([
      { path: `${rel(root)}/../canary/pwned`, data: 'pwned\n' },
      { path: `../../../../../../../../..${canary}/pwned2`, data: 'pwned\n' },
    ]);
    const err = await assertRefused(archive, [/unsafe entries/, /canary\/pwned"/, /canary\/pwned2"/, /'\.\.'/]);
    assert.match(err.message, new RegExp(archive.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    // A dry run is refused the same way.
    await assertRefused(archive, [/'\.\.'/], { dryRun: true });
  });

  it('attack 2: absolute paths are refused', async () => {
    const archive = attack([{ path: `${canary}/pwned`, data: 'pwned\n' }]);
    await assertRefused(archive, [new RegExp(`"${canary}/pwned": absolute path`)]);
  });

  it('attack 3: an absolute symbolic link leading out is refused', async () => {
    const archive = attack([{ path: `${rel(root)}/ssh`, type: 'SymbolicLink', linkpath: canary }]);
    await assertRefused(archive, [/root\/ssh": symbolic link to an absolute path/]);
  });

  it('attack 4: a relative symbolic link inside the archive tree but leading outside DR_CONFIG_PATHS is refused', async () => {
    // `root/ssh -> ../canary` stays inside the archive (tmp/…/canary) yet leaves the root once restored.
    const archive = attack([{ path: `${rel(root)}/ssh`, type: 'SymbolicLink', linkpath: '../canary' }]);
    await assertRefused(archive, [/root\/ssh": symbolic link "\.\.\/canary" leads outside DR_CONFIG_PATHS \(/, new RegExp(`to ${canary}`)]);
    // The same for review: the link would leave the target folder.
    await assertRefused(attack([{ path: `${rel(root)}/ssh`, type: 'SymbolicLink', linkpath: '../../../../../../../../../etc' }]), [/escapes the archive/], {
      targetRoot: path.join(t, 'review'),
    });
  });

  it("attack 4b: a link that goes down through another link and back up ('a/../..') is refused", async () => {
    // s/t/a -> ../.. is the root (fine on its own); s/t/e -> a/../../canary looks like root/s/canary
    // lexically, but the kernel follows a first: root/.. /.. → canary, outside.
    const archive = attack([
      { path: `${rel(root)}/s/t/a`, type: 'SymbolicLink', linkpath: '../..' },
      { path: `${rel(root)}/s/t/e`, type: 'SymbolicLink', linkpath: 'a/../../canary' },
    ]);
    await assertRefused(archive, [/s\/t\/e": symbolic link "a\/\.\.\/\.\.\/canary" goes back up \('\.\.'\) after going down/]);
  });

  it('attack 4c: a link through a symbolic link already on disk that leads outside is refused', async () => {
    symlinkSync('../canary', path.join(root, 'planted')); // left by an attacker or an earlier restore
    const archive = attack([{ path: `${rel(root)}/keys`, type: 'SymbolicLink', linkpath: 'planted/keep.txt' }]);
    await assertRefused(archive, [
      new RegExp(
        `root/keys": symbolic link "planted/keep.txt" goes through the symbolic link ${root}/planted \\(-> "\\.\\./canary"\\), which leads outside DR_CONFIG_PATHS`,
      ),
    ]);
  });

  it('attack 5a: a symbolic link, then a file written through it in the same archive, is refused', async () => {
    // As in the issue: an absolute link, then a file below it.
    await assertRefused(
      attack([
        { path: `${rel(root)}/link`, type: 'SymbolicLink', linkpath: canary },
        { path: `${rel(root)}/link/file`, data: 'pwned\n' },
      ]),
      [/root\/link": symbolic link to an absolute path/, /root\/link\/file": written through ".*root\/link", which the archive makes a symbolic link/],
    );
    // A relative one (inside the archive tree) gets no further.
    await assertRefused(
      attack([
        { path: `${rel(root)}/link`, type: 'SymbolicLink', linkpath: '../canary' },
        { path: `${rel(root)}/link/file`, data: 'pwned\n' },
      ]),
      [/root\/link\/file": written through ".*root\/link", which the archive makes a symbolic link/],
    );
    // Even a link inside the root is never written through.
    mkdirSync(path.join(root, 'sub'));
    await assertRefused(
      attack([
        { path: `${rel(root)}/link`, type: 'SymbolicLink', linkpath: 'sub' },
        { path: `${rel(root)}/link/file`, data: 'pwned\n' },
      ]),
      [/written through/],
    );
  });

  it('attack 5b: a symbolic link already on disk in DR_CONFIG_PATHS (planted) is never written through', async () => {
    symlinkSync(canary, path.join(root, 'link'));
    const archive = attack([
      { path: `${rel(root)}/link/`, type: 'Directory' },
      { path: `${rel(root)}/link/file`, data: 'pwned\n' },
    ]);
    await assertRefused(archive, [new RegExp(`root/link/file": ${root}/link is a symbolic link on disk`)]);
    assert.ok(!existsSync(path.join(canary, 'file')));
  });

  it('attack 5c: a later restore never writes through a link an earlier restore created', async () => {
    // The issue's sequence: `link -> outside` in one archive, `link/file` in the next. The first is
    // refused now; the second then finds no link and writes a real folder inside the root.
    await assertRefused(attack([{ path: `${rel(root)}/link`, type: 'SymbolicLink', linkpath: '../canary' }]), [
      /root\/link": symbolic link "\.\.\/canary" leads outside/,
    ]);
    const second = await restoreConfigArchive({
      config,
      encryptedArchive: seal(rawTar([{ path: `${rel(root)}/link/file`, data: 'fine\n' }])),
      identity,
      stamp: STAMP,
    });
    assert.deepEqual(second.restored, [path.join(root, 'link', 'file')]);
    assert.ok(lstatSync(path.join(root, 'link')).isDirectory());
    assert.deepEqual(readdirSync(canary), ['keep.txt']);

    // A link inside the root, created by a restore: a later archive cannot write through it either.
    mkdirSync(path.join(root, 'sub'));
    writeFileSync(path.join(root, 'sub', 'a.conf'), 'a\n');
    const first = await restoreConfigArchive({
      config,
      encryptedArchive: seal(rawTar([{ path: `${rel(root)}/conf.d`, type: 'SymbolicLink', linkpath: 'sub' }])),
      identity,
      stamp: STAMP,
    });
    assert.deepEqual(first.restored, [path.join(root, 'conf.d')]);
    assert.equal(readlinkSync(path.join(root, 'conf.d')), 'sub');
    const archive = attack([{ path: `${rel(root)}/conf.d/pwned.conf`, data: 'pwned\n' }]);
    await assertRefused(archive, [/conf\.d\/pwned\.conf": .*root\/conf\.d is a symbolic link on disk/]);
    assert.ok(!existsSync(path.join(root, 'sub', 'pwned.conf')));
  });

  it('attack 5d: a file whose path is already a symbolic link leading outside is refused', async () => {
    symlinkSync('../canary/keep.txt', path.join(root, 'secret.conf'));
    const archive = attack([{ path: `${rel(root)}/secret.conf`, data: 'pwned\n' }]);
    await assertRefused(archive, [/secret\.conf": .*secret\.conf is already a symbolic link on disk that leads outside/]);
    assert.equal(readlinkSync(path.join(root, 'secret.conf')), '../canary/keep.txt');
  });

  it('attack 5e: a path listed twice (a link, then a file of the same name) is refused', async () => {
    const archive = attack([
      { path: `${rel(root)}/dup`, type: 'SymbolicLink', linkpath: 'odoo.conf' },
      { path: `${rel(root)}/dup`, data: 'second\n' },
    ]);
    await assertRefused(archive, [/root\/dup": listed twice/]);
  });

  it('attack 6: hard links are refused', async () => {
    const archive = attack([{ path: `${rel(root)}/hl`, type: 'Link', linkpath: `${rel(canary)}/keep.txt` }]);
    await assertRefused(archive, [/root\/hl": hard link/]);
    assert.equal(statSync(path.join(canary, 'keep.txt')).nlink, 1);
  });

  it('attack 7: device files and fifos are refused', async () => {
    const cases: [RawEntry, RegExp][] = [
      [{ path: `${rel(root)}/null`, type: 'CharacterDevice', devmaj: 1, devmin: 3 }, /root\/null": device file \(CharacterDevice\)/],
      [{ path: `${rel(root)}/disk`, type: 'BlockDevice', devmaj: 7, devmin: 0 }, /root\/disk": device file \(BlockDevice\)/],
      [{ path: `${rel(root)}/pipe`, type: 'FIFO' }, /root\/pipe": fifo/],
    ];
    for (const [entry, pattern] of cases) await assertRefused(attack([entry]), [pattern]);
  });

  it('attack 8: setuid, setgid and sticky bits are stripped (mode & 0o777) and reported', async () => {
    const archive = seal(
      rawTar([
        { path: `${rel(root)}/tool.sh`, data: '#!/bin/sh\necho hi\n', mode: 0o7755 },
        { path: `${rel(root)}/plain.conf`, data: 'x\n', mode: 0o640 },
      ]),
    );
    const tool = path.join(root, 'tool.sh');
    const dry = await restoreConfigArchive({ config, encryptedArchive: archive, identity, stamp: STAMP, dryRun: true });
    assert.deepEqual(dry.modeBitsStripped, [tool]);
    const r = await restoreConfigArchive({ config, encryptedArchive: archive, identity, stamp: STAMP });
    assert.deepEqual(r.modeBitsStripped, [tool]);
    assert.deepEqual([...r.restored].sort(), [path.join(root, 'plain.conf'), tool]);
    assert.equal(statSync(tool).mode & 0o7777, 0o755);
    assert.equal(statSync(path.join(root, 'plain.conf')).mode & 0o7777, 0o640);
    // Stripped, so a re-run finds it identical (and still reports the stripped bits).
    const again = await restoreConfigArchive({ config, encryptedArchive: archive, identity, stamp: STAMP });
    assert.deepEqual(again.restored, []);
    assert.deepEqual(again.modeBitsStripped, [tool]);
  });
});
