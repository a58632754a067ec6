/**
 * Marking the local folder's references: what a final index lists is remembered by the file's
 * identity, and an index rewritten in place (same size, same mtime) is read again.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { emptyReferences, markLocal } from '../../src/retention/collect';

const SESSION = 'backup_20261126_020000_aaaaaa';
const ROUND_TIME = new Date('2026-11-26T02:01:00Z');
const packA = 'a'.repeat(64);
const packB = 'b'.repeat(64);
const settle = () => new Promise((resolve) => setTimeout(resolve, 2_100));

describe('retention: marking local indexes', function () {
  this.timeout(30_000);
  let root: string;
  before(() => (root = mkdtempSync(path.join(tmpdir(), 'odoo-dr-mark-'))));
  after(() => rmSync(root, { recursive: true, force: true }));

  const marked = async () => {
    const refs = emptyReferences();
    await markLocal(root, new Set(), refs);
    return { packs: [...refs.packs].sort(), indexes: refs.indexes };
  };

  it('an index rewritten in place with its size and mtime put back is read again, not taken from memory', async () => {
    const dir = path.join(root, 'sessions', SESSION, 'tenants', 'acme');
    mkdirSync(dir, { recursive: true });
    const index = path.join(dir, 'filestore.jsonl');
    writeFileSync(index, `${JSON.stringify({ pack: packA, bytes: 10 })}\n`);
    utimesSync(index, ROUND_TIME, ROUND_TIME);
    await settle();
    assert.deepEqual(await marked(), { packs: [packA], indexes: 1 });
    assert.deepEqual(await marked(), { packs: [packA], indexes: 1 }, 'remembered: the same references');

    writeFileSync(index, `${JSON.stringify({ pack: packB, bytes: 10 })}\n`);
    utimesSync(index, ROUND_TIME, ROUND_TIME);
    await settle();
    assert.deepEqual(await marked(), { packs: [packB], indexes: 1 });

    // Just rewritten (timestamps too fresh to tell): read, whatever is remembered.
    writeFileSync(index, `${JSON.stringify({ pack: packA, bytes: 10 })}\n`);
    utimesSync(index, ROUND_TIME, ROUND_TIME);
    assert.deepEqual(await marked(), { packs: [packA], indexes: 1 });
  });
});
