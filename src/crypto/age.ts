/**
 * age encryption (https://age-encryption.org/v1), in-process, in the standard format: every file
 * written here decrypts with `age -d -i key`, and every file `age -r` writes decrypts here.
 *
 * Division of labour:
 * - `age-encryption` (the reference TypeScript implementation by age's author; ESM-only, loaded with a
 *   real dynamic `import()`) does everything that involves keys: identities, recipients, the header
 *   (X25519 stanzas and header MAC), and unwrapping the file key when decrypting.
 * - The payload (age's STREAM: ChaCha20-Poly1305 over 64 KiB chunks, nonce = 11-byte big-endian
 *   counter ‖ last-chunk flag, key = HKDF-SHA-256(file key, payload nonce, "payload")) is sealed and
 *   opened with node:crypto (OpenSSL), about 17× faster than the library's pure-JS ChaCha20 on this
 *   machine. Every header is self-checked: the library's own payload for an empty file must equal ours,
 *   so a library change that broke the construction would fail loudly, never write undecryptable files.
 *
 * Private keys never appear in messages: errors name the file and the line, never its content.
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { access, mkdir, open, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ArtifactCorruptedError, EncryptionKeyError } from '../errors';
import { runPipeline } from '../pipeline';

const loadAge = () => import('age-encryption');
type AgeModule = Awaited<ReturnType<typeof loadAge>>;
let agePromise: Promise<AgeModule> | undefined;
/** The age-encryption module (ESM), loaded once. */
function ageLib(): Promise<AgeModule> {
  agePromise ??= loadAge();
  return agePromise;
}

const MAGIC = 'age-encryption.org/v1\n';
const ARMOR = '-----BEGIN AGE ENCRYPTED FILE-----';
/** STREAM plaintext chunk size and Poly1305 tag size. */
const CHUNK = 64 * 1024;
const TAG = 16;
const SEALED_CHUNK = CHUNK + TAG;
const NONCE = 16;
/** Reads of the source file. */
const READ_SIZE = 1024 * 1024;
/** A header larger than this is not an age header we wrote (each recipient adds ~100 bytes). */
const MAX_HEADER = 1024 * 1024;
const MAX_IDENTITY_FILE = 1024 * 1024;
const X25519_IDENTITY = /^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$/;
const SECRET_KEY_TEXT = /AGE-SECRET-KEY-[0-9A-Z-]+/gi;

function messageOf(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(SECRET_KEY_TEXT, 'AGE-SECRET-KEY-***');
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null ? (err as NodeJS.ErrnoException).code : undefined;
}

// --- recipients (synchronous checks, usable while loading the configuration) ------------------------

const BECH32_CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const BECH32_GENERATOR = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

function bech32Polymod(values: number[]): number {
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= BECH32_GENERATOR[i]!;
  }
  return chk;
}

/** True when the bech32 (BIP-173, not bech32m) checksum of `hrp` + `data` (5-bit values) holds. */
function bech32ChecksumValid(hrp: string, data: number[]): boolean {
  const expanded = [...hrp].map((c) => c.charCodeAt(0) >> 5);
  expanded.push(0, ...[...hrp].map((c) => c.charCodeAt(0) & 31));
  return bech32Polymod([...expanded, ...data]) === 1;
}

/**
 * What is wrong with an X25519 age recipient (`age1…` as printed by `age-keygen -y`), or undefined if it
 * is valid: right shape, bech32 checksum, 32-byte key with zero padding. The same decoding as the
 * age-encryption library (checked against it in test/unit/config-values.test.ts), but synchronous, so
 * loadConfig can refuse a mistyped recipient before any backup is encrypted to it.
 * The text never repeats the input: a private key pasted by mistake must not end up in a message.
 */
/**
 * Whether `fileBytes` is the size of an age file (X25519 recipients, as odoo-dr writes them) holding
 * `plainBytes` of plaintext: header `age-encryption.org/v1` + 98 bytes per recipient + the MAC line
 * (70 + 98·r), then the payload nonce and one tag per 64 KiB chunk (at least one). A cheap check that
 * needs no identity: it catches truncated, extended and emptied blobs (a flipped byte needs a
 * decryption: validation does that).
 */
export function plausibleAgeSize(fileBytes: number, plainBytes: number): boolean {
  const payload = NONCE + plainBytes + TAG * Math.max(1, Math.ceil(plainBytes / CHUNK));
  const header = fileBytes - payload;
  return header >= 70 + 98 && (header - 70) % 98 === 0;
}

export function ageRecipientProblem(recipient: string): string | undefined {
  if (/^AGE-SECRET-KEY-/i.test(recipient)) {
    return 'is a private key (AGE-SECRET-KEY-…), not a recipient: use its public key (`age-keygen -y <key file>`) and keep the private key off this host';
  }
  if (/^AGE-PLUGIN-/i.test(recipient)) return 'is a plugin identity, not a recipient';
  if (/^ssh-|^ecdsa-/.test(recipient)) return 'is an SSH public key; odoo-dr encrypts to X25519 age recipients only (age1…, from age-keygen)';
  if (recipient !== recipient.toLowerCase()) {
    return recipient.toLowerCase().startsWith('age1') ? 'must be written in lower case, as age-keygen prints it' : 'is not an age recipient (expected age1…, as printed by `age-keygen -y`)';
  }
  const separator = recipient.lastIndexOf('1');
  if (!recipient.startsWith('age1') || separator < 3) return 'is not an age recipient (expected age1…, as printed by `age-keygen -y`)';
  const hrp = recipient.slice(0, separator);
  if (hrp !== 'age') {
    const kind = hrp === 'age1pq' ? 'post-quantum' : `plugin (${hrp.slice(4)})`;
    return `is a ${kind} recipient; only X25519 recipients (age-keygen) are supported`;
  }
  const chars = recipient.slice(separator + 1);
  const bad = [...chars].filter((c) => !BECH32_CHARSET.includes(c));
  if (bad.length > 0) {
    return `contains ${[...new Set(bad)].map((c) => JSON.stringify(c)).join(', ')}, which never appear in an age recipient (mistyped?)`;
  }
  if (chars.length !== 58) {
    return `has ${recipient.length} characters; an X25519 age recipient has 62 (truncated or extra characters?)`;
  }
  const data = [...chars].map((c) => BECH32_CHARSET.indexOf(c));
  if (!bech32ChecksumValid(hrp, data)) return 'has a bad checksum: a character is mistyped or two are swapped (copy it again from `age-keygen -y`)';
  // 52 five-bit groups = 260 bits: a 32-byte key and 4 padding bits that must be zero.
  if ((data[51]! & 0x0f) !== 0) return 'is not a valid X25519 key (non-zero padding bits)';
  return undefined;
}

// --- keys -------------------------------------------------------------------------------------------

/**
 * The recipients backups are encrypted to: DR_AGE_RECIPIENTS, else the public key of the identity in
 * DR_ENCRYPTION_KEY_FILE (which must then be private to its owner).
 */
/** The encryption settings only (DrConfig has them): the configuration module itself uses this file. */
export interface EncryptionSettings {
  encryption: { recipients: readonly string[]; identityFile?: string };
}

export async function recipientsFor(config: EncryptionSettings): Promise<string[]> {
  const { recipients, identityFile } = config.encryption;
  if (recipients.length > 0) return [...recipients];
  if (identityFile) {
    const identities = (await readIdentity(identityFile)).split('\n');
    const lib = await ageLib();
    const derived = await Promise.all(identities.map((id) => lib.identityToRecipient(id)));
    return [...new Set(derived)];
  }
  throw new EncryptionKeyError(
    'no age recipient to encrypt backups to: set DR_AGE_RECIPIENTS to the public key(s) (age1…, the only thing a ' +
      'production host needs), or DR_ENCRYPTION_KEY_FILE to the identity file (its public key is then used); ' +
      '`odoo-dr setup` creates an identity',
  );
}

/**
 * Parses identity text (the content of an identity file, or keys joined by newlines): comments and
 * blank lines are skipped, every other line must be an X25519 identity. Never echoes a line.
 */
function parseIdentities(text: string, where: string): string[] {
  const keys: string[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (X25519_IDENTITY.test(line)) keys.push(line);
    else if (line.startsWith('AGE-PLUGIN-')) {
      throw new EncryptionKeyError(`${where}, line ${i + 1}: age plugin identities are not supported; use an X25519 identity (age-keygen)`);
    } else if (line.startsWith('AGE-SECRET-KEY-PQ-')) {
      throw new EncryptionKeyError(
        `${where}, line ${i + 1}: post-quantum identities are not supported (the age 1.1 CLI used for break-glass restores cannot use them); use age-keygen`,
      );
    } else if (line.startsWith('AGE-SECRET-KEY-')) {
      throw new EncryptionKeyError(`${where}, line ${i + 1} is not a valid age identity (damaged or truncated key; not shown)`);
    } else {
      throw new EncryptionKeyError(`${where}, line ${i + 1} is not an age identity (expected AGE-SECRET-KEY-1…, as written by age-keygen)`);
    }
  }
  if (keys.length === 0) throw new EncryptionKeyError(`${where} contains no age identity (AGE-SECRET-KEY-1…, as written by age-keygen)`);
  return keys;
}

/** Checks each identity decodes (bech32 checksum), without ever putting it in a message. */
async function validateIdentities(keys: string[], where: string): Promise<void> {
  const lib = await ageLib();
  for (const [n, key] of keys.entries()) {
    try {
      await lib.identityToRecipient(key);
    } catch {
      throw new EncryptionKeyError(`${where}: identity #${n + 1} is not a valid age identity (damaged key; not shown)`);
    }
  }
}

/**
 * Reads an age identity file (as written by age-keygen or generateIdentity) and returns its identities,
 * one per line. Refuses a file that group or others may access: the key decrypts every backup.
 */
export async function readIdentity(file: string): Promise<string> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT') {
      throw new EncryptionKeyError(
        `age identity file ${file} does not exist: create it with \`odoo-dr setup\` (or \`age-keygen -o ${file}\`), ` +
          'or point DR_ENCRYPTION_KEY_FILE at the identity backups were encrypted to',
      );
    }
    throw new EncryptionKeyError(`cannot read age identity file ${file} (${code ?? messageOf(err)})`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new EncryptionKeyError(`age identity file ${file} is not a regular file`);
    if ((st.mode & 0o077) !== 0) {
      throw new EncryptionKeyError(
        `age identity file ${file} is accessible by group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); ` +
          `it decrypts every backup, so it must be private to its owner: run \`chmod 600 ${file}\``,
      );
    }
    if (st.size > MAX_IDENTITY_FILE) throw new EncryptionKeyError(`${file} is too large to be an age identity file`);
    let text: string;
    try {
      text = await fh.readFile('utf8');
    } catch (err) {
      throw new EncryptionKeyError(`cannot read age identity file ${file} (${errnoCode(err) ?? messageOf(err)})`);
    }
    const keys = parseIdentities(text, `age identity file ${file}`);
    await validateIdentities(keys, `age identity file ${file}`);
    return keys.join('\n');
  } finally {
    await fh.close();
  }
}

/** The public recipients of identities read by readIdentity (one per line). */
export async function identityRecipients(identity: string): Promise<string[]> {
  const lib = await ageLib();
  return Promise.all(identity.split('\n').filter(Boolean).map((key) => lib.identityToRecipient(key)));
}

/** Writes a new X25519 identity to `file` (mode 0600, like age-keygen's output); never overwrites. */
export async function generateIdentity(file: string): Promise<{ recipient: string }> {
  const lib = await ageLib();
  const identity = await lib.generateX25519Identity();
  const recipient = await lib.identityToRecipient(identity);
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  let fh: FileHandle;
  try {
    fh = await open(file, 'wx', 0o600);
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') {
      throw new EncryptionKeyError(
        `${file} already exists: refusing to overwrite an age identity (backups encrypted to it could no longer be ` +
          'decrypted); move it away first if you really want a new one',
      );
    }
    throw new EncryptionKeyError(`cannot create age identity file ${file} (${errnoCode(err) ?? messageOf(err)})`);
  }
  const created = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  try {
    await fh.chmod(0o600); // whatever the umask
    await fh.writeFile(`# created: ${created}\n# public key: ${recipient}\n${identity}\n`);
    await fh.sync();
    await fh.close();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(file, { force: true });
    throw new EncryptionKeyError(`cannot write age identity file ${file} (${errnoCode(err) ?? messageOf(err)})`);
  }
  return { recipient };
}

// --- STREAM (payload) ---------------------------------------------------------------------------------

function payloadKey(fileKey: Uint8Array, nonce: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', fileKey, nonce, 'payload', 32));
}

function chunkNonce(counter: number, last: boolean): Buffer {
  if (counter >= 2 ** 48) throw new Error('age STREAM counter overflow');
  const nonce = Buffer.alloc(12);
  nonce.writeUIntBE(counter, 5, 6);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

function seal(key: Buffer, counter: number, last: boolean, plain: Buffer): Buffer[] {
  const cipher = createCipheriv('chacha20-poly1305', key, chunkNonce(counter, last), { authTagLength: TAG });
  const out = cipher.update(plain);
  cipher.final();
  return [out, cipher.getAuthTag()];
}

/** Encrypts a plaintext stream into STREAM chunks (one output buffer per input buffer). */
async function* sealChunks(key: Buffer, plain: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let pending: Buffer = Buffer.alloc(0);
  let counter = 0;
  for await (const data of plain) {
    pending = pending.length > 0 ? Buffer.concat([pending, data]) : data;
    const out: Buffer[] = [];
    let offset = 0;
    // A full chunk is sealed as non-final only once more data follows it.
    while (pending.length - offset > CHUNK) {
      out.push(...seal(key, counter++, false, pending.subarray(offset, offset + CHUNK)));
      offset += CHUNK;
    }
    pending = pending.subarray(offset);
    if (out.length > 0) yield Buffer.concat(out);
  }
  yield Buffer.concat(seal(key, counter, true, pending));
}

/** Decrypts STREAM chunks; any altered, reordered, dropped or truncated chunk fails before its plaintext is released. */
async function* openChunks(key: Buffer, sealed: AsyncIterable<Buffer>, src: string, payloadStart: number): AsyncGenerator<Buffer> {
  let pending: Buffer = Buffer.alloc(0);
  let counter = 0;
  const open = (last: boolean, chunk: Buffer): Buffer => {
    const decipher = createDecipheriv('chacha20-poly1305', key, chunkNonce(counter, last), { authTagLength: TAG });
    decipher.setAuthTag(chunk.subarray(chunk.length - TAG));
    const plain = decipher.update(chunk.subarray(0, chunk.length - TAG));
    try {
      decipher.final();
    } catch {
      const at = payloadStart + counter * SEALED_CHUNK;
      throw new ArtifactCorruptedError(
        `${src} is corrupted or was tampered with: age chunk #${counter} (bytes ${at}–${at + chunk.length}) fails authentication` +
          (last ? ' (or the file is truncated)' : ''),
      );
    }
    return plain;
  };
  for await (const data of sealed) {
    pending = pending.length > 0 ? Buffer.concat([pending, data]) : data;
    const out: Buffer[] = [];
    let offset = 0;
    while (pending.length - offset > SEALED_CHUNK) {
      out.push(open(false, pending.subarray(offset, offset + SEALED_CHUNK)));
      counter++;
      offset += SEALED_CHUNK;
    }
    pending = pending.subarray(offset);
    if (out.length > 0) yield Buffer.concat(out);
  }
  if (pending.length < TAG) throw new ArtifactCorruptedError(`${src} is truncated: its last age chunk is missing or incomplete`);
  if (pending.length === TAG && counter > 0) {
    throw new ArtifactCorruptedError(`${src} is invalid: its last age chunk is empty (truncated or tampered with)`);
  }
  yield open(true, pending);
}

async function* readChunks(fh: FileHandle): AsyncGenerator<Buffer> {
  for (;;) {
    const buf = Buffer.allocUnsafe(READ_SIZE);
    const { bytesRead } = await fh.read(buf, 0, READ_SIZE, null);
    if (bytesRead === 0) return;
    yield buf.subarray(0, bytesRead);
  }
}

async function* prepend(first: Buffer, rest: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  if (first.length > 0) yield first;
  for (;;) {
    const next = await rest.next();
    if (next.done) return;
    yield next.value;
  }
}

// --- header -----------------------------------------------------------------------------------------------

function checkRecipients(recipients: string[]): void {
  if (recipients.length === 0) {
    throw new EncryptionKeyError('age encryption needs at least one recipient: set DR_AGE_RECIPIENTS or DR_ENCRYPTION_KEY_FILE');
  }
  for (const [i, r] of recipients.entries()) {
    const problem = ageRecipientProblem(r);
    // Never echo something shaped like a private key.
    const shown = /^AGE-(SECRET|PLUGIN)-/i.test(r) ? `recipient #${i + 1}` : JSON.stringify(r);
    if (problem) throw new EncryptionKeyError(`not an X25519 age recipient: ${shown} ${problem}`);
  }
}

/**
 * A new header for `recipients` and the file key it wraps. The library builds the header; a recipient
 * that adds no stanza receives the file key (the Recipient interface's documented input). The library's
 * own encryption of an empty payload is then checked against ours.
 */
async function newHeader(recipients: string[]): Promise<{ header: Buffer; fileKey: Uint8Array }> {
  const lib = await ageLib();
  const encrypter = new lib.Encrypter();
  for (const r of recipients) {
    try {
      encrypter.addRecipient(r);
    } catch (err) {
      throw new EncryptionKeyError(`not a valid age recipient: ${JSON.stringify(r)} (${messageOf(err)})`);
    }
  }
  let fileKey: Uint8Array | undefined;
  encrypter.addRecipient({
    wrapFileKey(key: Uint8Array) {
      fileKey = Uint8Array.from(key);
      return [];
    },
  });
  const empty = Buffer.from(await encrypter.encrypt(new Uint8Array(0)));
  const header = empty.subarray(0, empty.length - NONCE - TAG);
  const libNonce = empty.subarray(empty.length - NONCE - TAG, empty.length - TAG);
  if (
    fileKey?.length !== 16 ||
    !header.subarray(0, MAGIC.length).equals(Buffer.from(MAGIC)) ||
    headerEnd(header) !== header.length ||
    !Buffer.concat(seal(payloadKey(fileKey, libNonce), 0, true, Buffer.alloc(0))).equals(empty.subarray(empty.length - TAG))
  ) {
    throw new Error('age-encryption produced an unexpected file layout (library changed?): refusing to encrypt');
  }
  return { header: Buffer.from(header), fileKey };
}

/** Offset just past the header's MAC line (`--- …\n`), or -1 if the buffer does not hold it all. */
function headerEnd(buf: Buffer): number {
  const mac = buf.indexOf('\n--- ');
  if (mac < 0) return -1;
  const eol = buf.indexOf('\n', mac + 1);
  return eol < 0 ? -1 : eol + 1;
}

// --- files ----------------------------------------------------------------------------------------------

/**
 * Encrypts `src` to `dest` for `recipients` (streaming; `dest.partial`, fsync, rename). Returns size and
 * SHA-256 of the encrypted file and size and SHA-1 of the plaintext, computed in the same pass.
 * A missing `src` rejects with the plain ENOENT error (a filestore file may vanish during a backup).
 */
export async function encryptFile(
  recipients: string[],
  src: string,
  dest: string,
  opts: { signal?: AbortSignal } = {},
): Promise<{ bytes: number; sha256: string; plainBytes: number; plainSha1: string }> {
  checkRecipients(recipients);
  opts.signal?.throwIfAborted();
  const { header, fileKey } = await newHeader(recipients);
  const fh = await open(src, 'r');
  try {
    const sha1 = createHash('sha1');
    let plainBytes = 0;
    const nonce = randomBytes(NONCE);
    const key = payloadKey(fileKey, nonce);
    async function* plaintext(): AsyncGenerator<Buffer> {
      for await (const buf of readChunks(fh)) {
        sha1.update(buf);
        plainBytes += buf.length;
        yield buf;
      }
    }
    async function* ciphertext(): AsyncGenerator<Buffer> {
      yield Buffer.concat([header, nonce]);
      yield* sealChunks(key, plaintext());
    }
    const result = await runPipeline({
      source: Readable.from(ciphertext(), { objectMode: false }),
      stages: [],
      dest,
      signal: opts.signal,
    });
    return { bytes: result.bytes, sha256: result.sha256, plainBytes, plainSha1: sha1.digest('hex') };
  } finally {
    await fh.close().catch(() => undefined);
  }
}

async function decrypterFor(identity: string): Promise<InstanceType<AgeModule['Decrypter']>> {
  const keys = parseIdentities(identity, 'the age identity');
  await validateIdentities(keys, 'the age identity');
  const lib = await ageLib();
  const decrypter = new lib.Decrypter();
  for (const key of keys) decrypter.addIdentity(key);
  return decrypter;
}

async function* decryptChunks(identity: string, src: string): AsyncGenerator<Buffer> {
  const decrypter = await decrypterFor(identity);
  const fh = await open(src, 'r');
  try {
    yield* openAgeStream(decrypter, readChunks(fh), src);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** An age decrypter for `identity`, checked once (reuse it for many files: unwrapping a header is pure-JS X25519). */
export type AgeDecrypter = InstanceType<AgeModule['Decrypter']>;
export const ageDecrypter = decrypterFor;

/**
 * Decrypts an age stream read from `source` (`name` is used in messages). Same guarantees as
 * decryptStream: only authenticated plaintext is yielded; any tampering or truncation throws.
 */
export async function* openAgeStream(decrypter: AgeDecrypter, source: AsyncIterable<Buffer> | AsyncIterator<Buffer>, src: string): AsyncGenerator<Buffer> {
  const reader: AsyncIterator<Buffer> = Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : source;
  let buf: Buffer = Buffer.alloc(0);
  let end = -1;
  while (end < 0 && buf.length <= MAX_HEADER) {
    const next = await reader.next();
    if (next.done) break;
    buf = Buffer.concat([buf, next.value]);
    end = headerEnd(buf);
  }
  if (!buf.subarray(0, MAGIC.length).equals(Buffer.from(MAGIC))) {
    if (buf.subarray(0, ARMOR.length).toString('latin1') === ARMOR) {
      throw new ArtifactCorruptedError(`${src} is ASCII-armored; odoo-dr writes and reads binary age files (decrypt it with age -d)`);
    }
    throw new ArtifactCorruptedError(`${src} is not an age-encrypted file (no age-encryption.org/v1 header)`);
  }
  if (end < 0) throw new ArtifactCorruptedError(`${src} is truncated or corrupted: its age header is incomplete`);
  let fileKey: Uint8Array;
  try {
    fileKey = await decrypter.decryptHeader(buf.subarray(0, end));
  } catch (err) {
    const message = messageOf(err);
    if (/no identity matched/i.test(message)) {
      throw new EncryptionKeyError(
        `none of the given age identities can decrypt ${src}: it was encrypted to other recipients ` +
          '(wrong DR_ENCRYPTION_KEY_FILE?), or its header is damaged',
      );
    }
    if (/HMAC/i.test(message)) {
      throw new ArtifactCorruptedError(`${src} is corrupted or was tampered with: its age header fails authentication`);
    }
    throw new ArtifactCorruptedError(`${src} has an invalid age header (${message})`);
  }
  let rest = buf.subarray(end);
  while (rest.length < NONCE) {
    const next = await reader.next();
    if (next.done) throw new ArtifactCorruptedError(`${src} is truncated: it ends inside the age payload nonce`);
    rest = Buffer.concat([rest, next.value]);
  }
  const key = payloadKey(fileKey, rest.subarray(0, NONCE));
  yield* openChunks(key, prepend(rest.subarray(NONCE), reader), src, end + NONCE);
}

/**
 * Streaming decryption of an age file. The stream errors (ArtifactCorruptedError) on any tampering or
 * truncation, and EncryptionKeyError if no identity matches; only authenticated plaintext is emitted,
 * but a consumer must treat an error at any point as the failure of the whole file.
 */
export function decryptStream(identity: string, src: string): NodeJS.ReadableStream {
  return Readable.from(decryptChunks(identity, src), { objectMode: false });
}

/** Decrypts `src` to `dest` (streaming; `dest.partial`, fsync, rename); size and SHA-256 of the plaintext. */
export async function decryptToFile(identity: string, src: string, dest: string): Promise<{ bytes: number; sha256: string }> {
  await decrypterFor(identity); // key problems first, with their own message
  await access(src); // a missing file rejects with its plain ENOENT error
  const result = await runPipeline({ source: decryptStream(identity, src), stages: [], dest });
  return { bytes: result.bytes, sha256: result.sha256 };
}
