/**
 * age encryption: keys, the in-process library path and its interoperability with the real `age` CLI
 * (both ways), tampering and truncation, disk full. Keys are generated at run time with age-keygen.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { loadConfig } from '../../src/config';
import { ageSealer, decryptStream, decryptToFile, encryptFile, generateIdentity, plausibleAgeSize, readIdentity, recipientsFor } from '../../src/crypto/age';
import { ArtifactCorruptedError, DiskFullError, EncryptionKeyError, PipelineError } from '../../src/errors';
import { hashFile, runPipeline, zstdStage } from '../../src/pipeline';
import { rejection } from '../helpers/assert';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const sha1 = (data: Buffer) => createHash('sha1').update(data).digest('hex');

/** Everything a stream emits, and its error if any. */
async function drain(stream: NodeJS.ReadableStream): Promise<{ data: Buffer; error?: unknown }> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of stream) chunks.push(chunk as Buffer);
  } catch (error) {
    return { data: Buffer.concat(chunks), error };
  }
  return { data: Buffer.concat(chunks) };
}

/** `age -d -i key file`: status, stdout, stderr. */
function cliDecrypt(key: string, file: string) {
  const r = spawnSync('age', ['-d', '-i', key, file], { maxBuffer: 256 * 1024 * 1024 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

/** Sizes around the 64 KiB age chunk boundaries, an empty file and a multi-MiB one. */
const SIZES = [0, 1, 65_535, 65_536, 65_537, 2 * 65_536, 2 * 65_536 + 1, 5 * 1024 * 1024 + 123];

describe('age', function () {
  let dir: string;
  let key1: string;
  let key2: string;
  let recipient1: string;
  let recipient2: string;
  let identity1: string;
  let identity2: string;

  const keygen = (file: string) => {
    execFileSync('age-keygen', ['-o', file], { stdio: 'ignore' });
    chmodSync(file, 0o600);
    return execFileSync('age-keygen', ['-y', file], { encoding: 'utf8' }).trim();
  };
  const secretOf = (file: string) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('AGE-SECRET-KEY-1'))!;
  const input = (size: number) => {
    const file = path.join(dir, `plain-${size}.bin`);
    if (!existsSync(file)) writeFileSync(file, randomBytes(size));
    return file;
  };
  const noPartials = () =>
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.endsWith('.partial')),
      [],
    );
  const noSecretsIn = (err: unknown) => {
    const text = `${String(err)} ${(err as Error).stack ?? ''}`;
    for (const id of [identity1, identity2]) assert.ok(!text.includes(id.slice(16)), 'an identity leaked into an error');
  };

  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'odoo-dr-age-'));
    key1 = path.join(dir, 'key1.txt');
    key2 = path.join(dir, 'key2.txt');
    recipient1 = keygen(key1);
    recipient2 = keygen(key2);
    identity1 = secretOf(key1);
    identity2 = secretOf(key2);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('keys', () => {
    it('readIdentity returns the identity of an age-keygen file (mode 0600)', async () => {
      assert.equal(await readIdentity(key1), identity1);
    });

    it('readIdentity refuses a file readable by group or others, naming the file and the chmod fix', async () => {
      for (const mode of [0o644, 0o640, 0o604, 0o620]) {
        const file = path.join(dir, `open-${mode.toString(8)}.txt`);
        writeFileSync(file, readFileSync(key1));
        chmodSync(file, mode);
        const err = await rejection(readIdentity(file));
        assert.ok(err instanceof EncryptionKeyError, String(err));
        assert.ok(err.message.includes(file) && err.message.includes(`chmod 600 ${file}`), err.message);
        assert.match(err.message, new RegExp(`mode 0${mode.toString(8)}`));
        noSecretsIn(err);
      }
    });

    it('readIdentity: a missing, unreadable or malformed file is an EncryptionKeyError that never echoes the key', async () => {
      const missing = await rejection(readIdentity(path.join(dir, 'nope.txt')));
      assert.ok(missing instanceof EncryptionKeyError);
      assert.match(missing.message, /does not exist.*odoo-dr setup/);
      const folder = path.join(dir, 'a-folder');
      mkdirSync(folder, { mode: 0o700 });
      assert.ok((await rejection(readIdentity(folder))) instanceof EncryptionKeyError);
      const cases: Record<string, string> = {
        damaged: `# comment\n${identity1.slice(0, -3)}QQQ\n`,
        truncated: `${identity1.slice(0, 40)}\n`,
        ssh: '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n',
        empty: '# nothing here\n\n',
        plugin: 'AGE-PLUGIN-YUBIKEY-1QQQQQQQQQQ\n',
      };
      for (const [name, content] of Object.entries(cases)) {
        const file = path.join(dir, `bad-${name}.txt`);
        writeFileSync(file, content, { mode: 0o600 });
        const err = await rejection(readIdentity(file));
        assert.ok(err instanceof EncryptionKeyError, `${name}: ${String(err)}`);
        assert.ok(err.message.includes(file), err.message);
        noSecretsIn(err);
        assert.ok(!err.message.includes(identity1.slice(16, 40)), `${name}: key material in "${err.message}"`);
      }
      // Unreadable: root reads anything, so only check when not root.
      if (process.getuid?.() !== 0) {
        const locked = path.join(dir, 'locked.txt');
        writeFileSync(locked, readFileSync(key1), { mode: 0o000 });
        assert.ok((await rejection(readIdentity(locked))) instanceof EncryptionKeyError);
      }
    });

    it('generateIdentity writes a 0600 identity that age-keygen and age understand, and never overwrites', async () => {
      const file = path.join(dir, 'config', 'encryption.key');
      const umask = process.umask(0);
      let recipient: string;
      try {
        ({ recipient } = await generateIdentity(file));
      } finally {
        process.umask(umask);
      }
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.match(recipient, /^age1[02-9ac-hj-np-z]{58}$/);
      assert.equal(execFileSync('age-keygen', ['-y', file], { encoding: 'utf8' }).trim(), recipient);
      assert.match(readFileSync(file, 'utf8'), /^# created: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n# public key: age1\w+\nAGE-SECRET-KEY-1\w+\n$/);
      const before = readFileSync(file);
      const err = await rejection(generateIdentity(file));
      assert.ok(err instanceof EncryptionKeyError);
      assert.match(err.message, /already exists: refusing to overwrite/);
      assert.ok(readFileSync(file).equals(before), 'the existing key is untouched');
      // The CLI encrypts to it, the library decrypts with it.
      const plain = input(1000);
      const enc = path.join(dir, 'generated.age');
      execFileSync('age', ['-r', recipient, '-o', enc, plain]);
      await decryptToFile(await readIdentity(file), enc, path.join(dir, 'generated.out'));
      assert.ok(readFileSync(path.join(dir, 'generated.out')).equals(readFileSync(plain)));
    });

    it('recipientsFor: DR_AGE_RECIPIENTS, else the identity file’s public key, else an error naming both variables', async () => {
      const cwd = dir;
      const both = loadConfig({ env: { DR_AGE_RECIPIENTS: `${recipient1},${recipient2}`, DR_ENCRYPTION_KEY_FILE: key1 }, cwd });
      assert.deepEqual(await recipientsFor(both), [recipient1, recipient2]);
      const fromFile = loadConfig({ env: { DR_ENCRYPTION_KEY_FILE: key2 }, cwd });
      assert.deepEqual(await recipientsFor(fromFile), [recipient2]);
      const none = loadConfig({ env: {}, cwd });
      const err = await rejection(recipientsFor(none));
      assert.ok(err instanceof EncryptionKeyError);
      assert.match(err.message, /DR_AGE_RECIPIENTS/);
      assert.match(err.message, /DR_ENCRYPTION_KEY_FILE/);
      const open = path.join(dir, 'open-key.txt');
      writeFileSync(open, readFileSync(key1), { mode: 0o644 });
      chmodSync(open, 0o644);
      assert.ok((await rejection(recipientsFor(loadConfig({ env: { DR_ENCRYPTION_KEY_FILE: open }, cwd })))) instanceof EncryptionKeyError);
    });
  });

  describe('interoperability with the age CLI', () => {
    it('library encryptFile → `age -d -i key` (0 bytes, chunk boundaries, multi-MiB); sizes and hashes in one pass', async function () {
      this.timeout(60_000);
      for (const size of SIZES) {
        const plain = input(size);
        const enc = path.join(dir, `lib-${size}.age`);
        const result = await encryptFile([recipient1], plain, enc);
        const data = readFileSync(plain);
        assert.deepEqual({ plainBytes: result.plainBytes, plainSha1: result.plainSha1 }, { plainBytes: size, plainSha1: sha1(data) });
        assert.deepEqual({ bytes: result.bytes, sha256: result.sha256 }, await hashFile(enc));
        const out = cliDecrypt(key1, enc);
        assert.equal(out.status, 0, `age -d failed for ${size} bytes: ${out.stderr}`);
        assert.ok(out.stdout.equals(data), `plaintext differs for ${size} bytes`);
      }
      noPartials();
    });

    it('plausibleAgeSize: the size of every file encryptFile and the age CLI write fits its plaintext size; one byte more or less does not', async function () {
      this.timeout(60_000);
      for (const size of SIZES) {
        const plain = input(size);
        for (const [tag, recipients] of [
          ['one', [recipient1]],
          ['two', [recipient1, recipient2]],
        ] as const) {
          const enc = path.join(dir, `size-${tag}-${size}.age`);
          const { bytes } = await encryptFile([...recipients], plain, enc);
          assert.ok(plausibleAgeSize(bytes, size), `${tag} recipient(s), ${size} bytes: ${bytes}`);
          assert.ok(
            !plausibleAgeSize(bytes - 1, size) && !plausibleAgeSize(bytes + 1, size) && !plausibleAgeSize(bytes, size + 1),
            `${tag}, ${size}: off by one accepted`,
          );
        }
        const cli = path.join(dir, `size-cli-${size}.age`);
        execFileSync('age', ['-r', recipient1, '-o', cli, plain]);
        assert.ok(plausibleAgeSize(statSync(cli).size, size), `age CLI, ${size} bytes`);
      }
      assert.ok(!plausibleAgeSize(0, 0), 'an empty file is never a sound blob');
    });

    it('`age -r` (CLI) → library decryptToFile and decryptStream', async function () {
      this.timeout(60_000);
      for (const size of SIZES) {
        const plain = input(size);
        const enc = path.join(dir, `cli-${size}.age`);
        execFileSync('age', ['-r', recipient1, '-o', enc, plain]);
        const out = path.join(dir, `cli-${size}.out`);
        const result = await decryptToFile(identity1, enc, out);
        const data = readFileSync(plain);
        assert.deepEqual(result, { bytes: size, sha256: sha256(data) });
        assert.ok(readFileSync(out).equals(data));
        const streamed = await drain(decryptStream(identity1, enc));
        assert.equal(streamed.error, undefined);
        assert.ok(streamed.data.equals(data));
      }
    });

    it('what the age CLI encrypts (older sessions, break-glass re-encryption) is decrypted by the library', async () => {
      const plain = input(3 * 1024 * 1024 + 5);
      const enc = path.join(dir, 'stage.age');
      execFileSync('age', ['-e', '-r', recipient1, '-r', recipient2, '-o', enc, plain]);
      const out = path.join(dir, 'stage.out');
      await decryptToFile(identity2, enc, out);
      assert.ok(readFileSync(out).equals(readFileSync(plain)));
    });

    it('the pipeline’s in-process encryption (sealOutput) is read by `age -d | zstd -d` and by the library; every stream has its own file key', async () => {
      const plain = input(3 * 1024 * 1024 + 5);
      const data = readFileSync(plain);
      const sealer = ageSealer([recipient1, recipient2]);
      const written: Buffer[] = [];
      for (const name of ['seal-a', 'seal-b']) {
        const enc = path.join(dir, `${name}.zst.age`);
        const result = await runPipeline({ source: { name: 'cat', command: 'cat', args: [plain] }, stages: [zstdStage(1)], sealOutput: sealer, dest: enc });
        assert.deepEqual({ bytes: result.bytes, sha256: result.sha256 }, await hashFile(enc));
        for (const key of [key1, key2]) {
          const out = execFileSync('bash', ['-c', 'age -d -i "$1" "$2" | zstd -d', 'break-glass', key, enc], { maxBuffer: 64 * 1024 * 1024 });
          assert.ok(out.equals(data), `age -d -i ${path.basename(key)} | zstd -d`);
        }
        const viaLibrary = await drain(decryptStream(identity1, enc));
        assert.equal(viaLibrary.error, undefined);
        assert.ok(execFileSync('zstd', ['-d', '-c'], { input: viaLibrary.data, maxBuffer: 64 * 1024 * 1024 }).equals(data));
        written.push(readFileSync(enc));
      }
      // Same recipients, two streams: different payload nonces, so different keys and ciphertexts.
      assert.notDeepEqual(written[0]!.subarray(-1000), written[1]!.subarray(-1000));
    });

    it('in-process encryption seals chunks that span input buffers of any size, and an exact multiple of 64 KiB', async () => {
      for (const sizes of [[1, 65_535, 65_537, 3, 131_072, 10], [65_536, 65_536], [65_536 * 3], [0, 7], []]) {
        const pieces = sizes.map((n) => randomBytes(n));
        const enc = path.join(dir, 'pieces.age');
        await runPipeline({ source: Readable.from(pieces), stages: [], sealOutput: ageSealer([recipient1]), dest: enc });
        const expected = Buffer.concat(pieces);
        const r = cliDecrypt(key1, enc);
        assert.equal(r.status, 0, r.stderr);
        assert.ok(r.stdout.equals(expected), `inputs of ${sizes.join(', ')} bytes`);
        assert.ok(plausibleAgeSize(statSync(enc).size, expected.length));
      }
    });

    it('in-process encryption refuses what is not an X25519 recipient before reading anything', () => {
      for (const bad of [
        [],
        ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJtq/fX3ynXdjgUASsaSyEKWdBJhXtd7dUDIWgOjDv8o'],
        [recipient1.slice(0, -1)],
        [secretOf(key1)],
      ]) {
        assert.throws(() => ageSealer(bad), EncryptionKeyError);
      }
    });

    it('multiple recipients: either identity decrypts, with the CLI and with the library, both ways', async () => {
      const plain = input(200_000);
      const data = readFileSync(plain);
      const lib = path.join(dir, 'two-lib.age');
      await encryptFile([recipient1, recipient2], plain, lib);
      const cli = path.join(dir, 'two-cli.age');
      execFileSync('age', ['-r', recipient1, '-r', recipient2, '-o', cli, plain]);
      for (const [key, identity] of [
        [key1, identity1],
        [key2, identity2],
      ] as const) {
        for (const enc of [lib, cli]) {
          assert.ok(cliDecrypt(key, enc).stdout.equals(data), `age -d -i ${path.basename(key)} ${path.basename(enc)}`);
          assert.ok((await drain(decryptStream(identity, enc))).data.equals(data));
        }
      }
      // A file with both identities (as readIdentity returns them) works too.
      assert.ok((await drain(decryptStream(`${identity2}\n${identity1}`, lib))).data.equals(data));
    });

    it('every encryption uses a fresh file key and nonce', async () => {
      const plain = input(1000);
      const a = path.join(dir, 'fresh-a.age');
      const b = path.join(dir, 'fresh-b.age');
      const ra = await encryptFile([recipient1], plain, a);
      const rb = await encryptFile([recipient1], plain, b);
      assert.notEqual(ra.sha256, rb.sha256);
      assert.equal(ra.plainSha1, rb.plainSha1);
    });
  });

  describe('tampering and errors', () => {
    let enc: string;
    let data: Buffer;
    before(async () => {
      const plain = input(1024 * 1024 + 17);
      data = readFileSync(plain);
      enc = path.join(dir, 'victim.age');
      await encryptFile([recipient1], plain, enc);
    });
    const variant = (name: string, mutate: (b: Buffer) => Buffer) => {
      const file = path.join(dir, `${name}.age`);
      writeFileSync(file, mutate(Buffer.from(readFileSync(enc))));
      return file;
    };

    it('one flipped byte in the middle: CLI and library both fail; the library never emits wrong plaintext', async () => {
      const file = variant('flipped', (b) => {
        b[Math.floor(b.length / 2)]! ^= 0x01;
        return b;
      });
      const cli = cliDecrypt(key1, file);
      assert.notEqual(cli.status, 0, 'age -d must fail');
      assert.match(cli.stderr, /fail|error/i);
      const out = path.join(dir, 'flipped.out');
      const err = await rejection(decryptToFile(identity1, file, out));
      assert.ok(err instanceof ArtifactCorruptedError, String(err));
      assert.match(err.message, /corrupted or was tampered with: age chunk #\d+ .* fails authentication/);
      assert.ok(!existsSync(out) && !existsSync(`${out}.partial`), 'no output file');
      const streamed = await drain(decryptStream(identity1, file));
      assert.ok(streamed.error instanceof ArtifactCorruptedError);
      assert.ok(
        streamed.data.length < data.length && data.subarray(0, streamed.data.length).equals(streamed.data),
        'only authentic plaintext before the error',
      );
    });

    it('a damaged header, truncation (also at a chunk boundary) and trailing data are all detected', async () => {
      const sealed = 65_536 + 16;
      const headerLength = readFileSync(enc).indexOf('\n--- ') + 1;
      const cases: Record<string, (b: Buffer) => Buffer> = {
        'header-mac': (b) => {
          b[headerLength + 6]! ^= 0x01; // inside the MAC
          return b;
        },
        'header-stanza': (b) => {
          b[40]! ^= 0x01;
          return b;
        },
        nonce: (b) => {
          b[headerLength + 50]! ^= 0x01;
          return b;
        },
        'truncated-tail': (b) => b.subarray(0, b.length - 100),
        'truncated-chunk-boundary': (b) => {
          const payloadStart = b.indexOf('\n', headerLength) + 1 + 16;
          return b.subarray(0, payloadStart + 2 * sealed);
        },
        'trailing-garbage': (b) => Buffer.concat([b, Buffer.from('garbage')]),
        'header-only': (b) => b.subarray(0, headerLength + 10),
      };
      for (const [name, mutate] of Object.entries(cases)) {
        const file = variant(name, mutate);
        assert.notEqual(cliDecrypt(key1, file).status, 0, `age -d accepted ${name}`);
        const err = await rejection(decryptToFile(identity1, file, path.join(dir, `${name}.out`)));
        assert.ok(err instanceof ArtifactCorruptedError || err instanceof EncryptionKeyError, `${name}: ${String(err)}`);
        const streamed = await drain(decryptStream(identity1, file));
        assert.ok(streamed.error, `${name}: the stream must fail`);
        assert.ok(data.subarray(0, streamed.data.length).equals(streamed.data), `${name}: wrong plaintext emitted`);
      }
      noPartials();
    });

    it('the wrong identity is an EncryptionKeyError; a file that is not age is ArtifactCorruptedError', async () => {
      const wrong = await rejection(decryptToFile(identity2, enc, path.join(dir, 'wrong.out')));
      assert.ok(wrong instanceof EncryptionKeyError, String(wrong));
      assert.match(wrong.message, /none of the given age identities can decrypt/);
      noSecretsIn(wrong);
      const notAge = path.join(dir, 'not-age.bin');
      writeFileSync(notAge, 'PGDMP\u0001\u000e\u0000 plain custom-format dump');
      const err = await rejection(decryptToFile(identity1, notAge, path.join(dir, 'not-age.out')));
      assert.ok(err instanceof ArtifactCorruptedError);
      assert.match(err.message, /not an age-encrypted file/);
      const armored = path.join(dir, 'armored.age');
      execFileSync('age', ['-a', '-r', recipient1, '-o', armored, input(10)]);
      assert.match(String(await rejection(decryptToFile(identity1, armored, path.join(dir, 'armored.out')))), /ASCII-armored/);
    });

    it('bad recipients and identities are EncryptionKeyError; a missing source is the plain ENOENT', async () => {
      const plain = input(10);
      assert.ok((await rejection(encryptFile([], plain, path.join(dir, 'x.age')))) instanceof EncryptionKeyError);
      assert.ok((await rejection(encryptFile(['age1notakey'], plain, path.join(dir, 'x.age')))) instanceof EncryptionKeyError);
      const badChecksum = `${recipient1.slice(0, -1)}${recipient1.endsWith('q') ? 'p' : 'q'}`;
      assert.ok((await rejection(encryptFile([badChecksum], plain, path.join(dir, 'x.age')))) instanceof EncryptionKeyError);
      const damaged = await rejection(
        decryptToFile(`${identity1.slice(0, -1)}${identity1.endsWith('Q') ? 'P' : 'Q'}`, path.join(dir, 'lib-1.age'), path.join(dir, 'x.out')),
      );
      assert.ok(damaged instanceof EncryptionKeyError);
      noSecretsIn(damaged);
      const missing = await rejection(encryptFile([recipient1], path.join(dir, 'vanished.bin'), path.join(dir, 'vanished.age')));
      assert.equal((missing as NodeJS.ErrnoException).code, 'ENOENT');
      assert.ok(!existsSync(path.join(dir, 'vanished.age')) && !existsSync(path.join(dir, 'vanished.age.partial')));
      const missingEnc = await rejection(decryptToFile(identity1, path.join(dir, 'vanished.age'), path.join(dir, 'x.out')));
      assert.equal((missingEnc as NodeJS.ErrnoException).code, 'ENOENT');
    });

    it('encryptFile honours an abort signal and leaves no partial file', async () => {
      const plain = input(5 * 1024 * 1024 + 123);
      const dest = path.join(dir, 'aborted.age');
      const err = await rejection(encryptFile([recipient1], plain, dest, { signal: AbortSignal.abort() }));
      assert.equal(err.name, 'AbortError');
      const controller = new AbortController();
      const pending = encryptFile([recipient1], plain, dest, { signal: controller.signal });
      setImmediate(() => controller.abort(new Error('stop')));
      const late = await rejection(pending).catch(() => undefined);
      // Either it finished first (5 MiB is fast) or it was stopped cleanly.
      if (late !== undefined) assert.equal(late.message, 'stop');
      assert.ok(!existsSync(`${dest}.partial`));
    }).timeout(30_000);
  });

  describe('disk full', () => {
    let small: string;
    let mounted = false;
    before(() => {
      small = mkdtempSync(path.join(tmpdir(), 'odoo-dr-age-tmpfs-'));
      const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small], { encoding: 'utf8' });
      mounted = mount.status === 0;
      if (!mounted) console.log(`      (cannot mount a tmpfs: ${mount.stderr.trim() || mount.error?.message}; using /dev/full instead)`);
    });
    after(() => {
      if (mounted) spawnSync('umount', [small]);
      rmSync(small, { recursive: true, force: true });
    });

    it('encryptFile and decryptToFile: ENOSPC → DiskFullError naming the path, nothing left behind', async () => {
      const plain = input(3 * 1024 * 1024);
      const dest = path.join(small, 'blob.age');
      if (!mounted) symlinkSync('/dev/full', `${dest}.partial`);
      const err = await rejection(encryptFile([recipient1], plain, dest));
      assert.ok(err instanceof DiskFullError, String(err));
      assert.ok(err.message.includes(`${dest}.partial`), err.message);
      assert.ok(!(err instanceof PipelineError));
      assert.deepEqual(readdirSync(small), []);
      const enc = path.join(dir, 'big-for-disk.age');
      await encryptFile([recipient1], plain, enc);
      const out = path.join(small, 'restored.bin');
      if (!mounted) symlinkSync('/dev/full', `${out}.partial`);
      assert.ok((await rejection(decryptToFile(identity1, enc, out))) instanceof DiskFullError);
      assert.deepEqual(readdirSync(small), []);
    });
  });
});
