/**
 * The filestore backup's packing, on a filestore made by hand (real age and zstd, no database): a
 * file whose content is not what its name says is reported and packed under its real SHA-1, never
 * under its name; small and large files and several packs come back whole through break-glass
 * (`age -d | zstd -d | tar -x`); an aborted backup leaves no child and no temporary pack.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { backupFilestore, readFilestoreIndex, type FilestoreEntry } from '../../src/backup/filestore';
import { localPath, rel } from '../../src/backup/layout';
import { PACK_TARGET_BYTES } from '../../src/backup/packs';
import { recipientsFor } from '../../src/crypto/age';
import { stackConfig, uniqueSuffix } from '../helpers/config';

const sha1 = (data: Buffer) => createHash('sha1').update(data).digest('hex');

describe('filestore backup packing (hand-made filestore, real age and zstd)', function () {
  this.timeout(300_000);
  const s = uniqueSuffix();
  const work = mkdtempSync(path.join(tmpdir(), 'odoo-dr-fsbackup-'));
  const backupDir = path.join(work, 'backups');
  const dataDir = path.join(work, 'odoo-data');
  const config = stackConfig({ DR_BACKUP_DIR: backupDir, DR_LOG_DIR: path.join(work, 'logs'), ODOO_DATA_DIR: dataDir });
  const tenant = `fsb-${s}`;
  const root = path.join(config.odoo.filestoreRoot, tenant);
  /** Relative path → content, as written. */
  const written = new Map<string, Buffer>();
  const put = (relative: string, data: Buffer) => {
    mkdirSync(path.dirname(path.join(root, relative)), { recursive: true });
    writeFileSync(path.join(root, relative), data);
    written.set(relative, data);
  };
  const odooName = (data: Buffer) => `${sha1(data).slice(0, 2)}/${sha1(data)}`;

  before(() => {
    mkdirSync(backupDir, { recursive: true });
    // Small files past two packs' worth, a few large ones (streamed from their handle), an empty one.
    for (let i = 0; i < Math.ceil((2.2 * PACK_TARGET_BYTES) / 8192); i++) {
      const data = randomBytes(8192);
      put(odooName(data), data);
    }
    for (let i = 0; i < 3; i++) {
      const data = randomBytes(1024 * 1024 + 1 + i * 700_000);
      put(odooName(data), data);
    }
    put(odooName(Buffer.alloc(0)), Buffer.alloc(0));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('packs every file under its real SHA-1, reports the one whose content is not its name, lists a duplicate once packed; break-glass gives back every content', async () => {
    const liar = randomBytes(5000);
    const liarName = `${'ab'}/${'ab'.repeat(20)}`;
    put(liarName, liar);
    const copy = [...written.entries()].find(([, d]) => d.length === 8192)!;
    put('custom/copy-of-a-file', copy[1]);
    const recipients = await recipientsFor(config);
    const session = `backup_20260101_000000_fb${s}`;
    const result = await backupFilestore({ config, session, tenant, recipients, cloud: false });
    assert.deepEqual(result.mismatched, [liarName]);
    assert.equal(result.files, written.size);
    assert.equal(result.blobsStored, written.size - 1, 'the copy is listed with the pack holding its content');
    assert.ok(result.packsStored >= 3, `${result.packsStored} packs`);

    const entries: FilestoreEntry[] = [];
    for await (const e of readFilestoreIndex(localPath(backupDir, rel.filestoreIndex(session, tenant)))) entries.push(e);
    const byPath = new Map(entries.map((e) => [e.path, e]));
    for (const [relative, data] of written) assert.equal(byPath.get(relative)?.sha1, sha1(data), relative);
    assert.equal(byPath.get(liarName)?.sha1, sha1(liar), 'listed under its real SHA-1');

    // Break-glass: every pack through the bare tools; the result is the filestore by content.
    const out = path.join(work, 'break-glass');
    mkdirSync(out);
    for (const pack of new Set(entries.map((e) => e.pack!))) {
      execFileSync('bash', [
        '-c',
        'age -d -i "$1" "$2" | zstd -d -q | tar -x -C "$3"',
        'bg',
        config.encryption.identityFile!,
        localPath(backupDir, rel.pack(pack)),
        out,
      ]);
    }
    const extracted = readdirSync(out, { recursive: true, withFileTypes: true }).filter((d) => d.isFile());
    assert.equal(extracted.length, written.size - 1);
    for (const [relative, data] of written) {
      const content = readFileSync(path.join(out, odooName(data)));
      assert.ok(content.equals(data), relative);
    }
    assert.throws(() => readFileSync(path.join(out, liarName)), /ENOENT/, 'nothing is packed under the wrong name');
    written.delete(liarName);
    written.delete('custom/copy-of-a-file');
    rmSync(path.join(root, liarName));
    rmSync(path.join(root, 'custom'), { recursive: true });
  });

  it('an aborted backup fails with the abort, leaves no zstd or age running and no temporary pack', async () => {
    const recipients = await recipientsFor(config);
    const controller = new AbortController();
    const session = `backup_20260101_000001_fb${s}`;
    let files = 0;
    const running = backupFilestore({
      config,
      session,
      tenant,
      recipients,
      cloud: false,
      signal: controller.signal,
      onProgress: (p) => {
        files = p.files;
        if (p.files > 0) controller.abort(new Error('stopped by the test'));
      },
    });
    await assert.rejects(running, /stopped by the test/);
    assert.ok(files > 0 && files < written.size, `${files} files before the abort`);
    const tmp = path.join(backupDir, 'packs', '.tmp');
    assert.deepEqual(
      readdirSync(tmp).filter((f) => !f.startsWith('.')),
      [],
    );
    const children = execFileSync('bash', ['-c', `pgrep -P ${process.pid} -a || true`], { encoding: 'utf8' });
    assert.doesNotMatch(children, /zstd|age/);
  });
});
