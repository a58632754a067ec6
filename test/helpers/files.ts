import { closeSync, openSync, readSync, statSync, writeSync } from 'node:fs';

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
