import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';

/** Damages a file in place: one bit flipped (by default in its middle), as a disk or a hand might. */
export function flipByte(file: string, at = Math.floor(statSync(file).size / 2), mask = 0x01): void {
  const fd = openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, at);
    b[0] = b[0]! ^ mask;
    writeSync(fd, b, 0, 1, at);
  } finally {
    closeSync(fd);
  }
}

/** Every file of a filestore as `<path>:<sha1>`, sorted; Odoo's `checklist/` GC markers left out (not tenant data). */
export function filestoreFiles(dir: string): string[] {
  const walk = (d: string, prefix = ''): string[] =>
    existsSync(d)
      ? readdirSync(d, { withFileTypes: true })
          .filter((e) => !(prefix === '' && e.name === 'checklist'))
          .flatMap((e) =>
            e.isDirectory()
              ? walk(path.join(d, e.name), `${prefix}${e.name}/`)
              : [
                  `${prefix}${e.name}:${createHash('sha1')
                    .update(readFileSync(path.join(d, e.name)))
                    .digest('hex')}`,
                ],
          )
      : [];
  return walk(dir).sort();
}
