/**
 * age keys (https://age-encryption.org/v1): X25519 recipients (checked synchronously, so the
 * configuration can refuse a mistyped one), identity files (read, refused unless private to their
 * owner; generated like age-keygen's), and the decrypter built from identities.
 *
 * Everything that involves keys goes through `age-encryption` (the reference TypeScript implementation
 * by age's author; ESM-only, loaded with a real dynamic `import()`). Private keys never appear in
 * messages: errors name the file and the line, never its content.
 */
import { mkdir, open, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { EncryptionKeyError } from '../errors';

const loadAge = () => import('age-encryption');
type AgeModule = Awaited<ReturnType<typeof loadAge>>;
let agePromise: Promise<AgeModule> | undefined;
/** The age-encryption module (ESM), loaded once. */
export function ageLib(): Promise<AgeModule> {
  agePromise ??= loadAge();
  return agePromise;
}

const MAX_IDENTITY_FILE = 1024 * 1024;
const X25519_IDENTITY = /^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$/;
const SECRET_KEY_TEXT = /AGE-SECRET-KEY-[0-9A-Z-]+/gi;

/** An error's message with any age identity in it masked. */
export function messageWithoutKeys(err: unknown): string {
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
export function ageRecipientProblem(recipient: string): string | undefined {
  if (/^AGE-SECRET-KEY-/i.test(recipient)) {
    return 'is a private key (AGE-SECRET-KEY-…), not a recipient: use its public key (`age-keygen -y <key file>`) and keep the private key off this host';
  }
  if (/^AGE-PLUGIN-/i.test(recipient)) return 'is a plugin identity, not a recipient';
  if (/^ssh-|^ecdsa-/.test(recipient)) return 'is an SSH public key; odoo-dr encrypts to X25519 age recipients only (age1…, from age-keygen)';
  if (recipient !== recipient.toLowerCase()) {
    return recipient.toLowerCase().startsWith('age1')
      ? 'must be written in lower case, as age-keygen prints it'
      : 'is not an age recipient (expected age1…, as printed by `age-keygen -y`)';
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

/** The 32-byte X25519 public key of a valid recipient (checked with ageRecipientProblem first). */
export function recipientPublicKey(recipient: string): Buffer {
  const problem = ageRecipientProblem(recipient);
  if (problem) throw new EncryptionKeyError(`not an X25519 age recipient: ${JSON.stringify(recipient)} ${problem}`);
  // 52 five-bit groups after "age1" (the last 6 characters are the checksum) hold the 32 bytes.
  const groups = [...recipient.slice(4, 4 + 52)].map((c) => BECH32_CHARSET.indexOf(c));
  const key = Buffer.alloc(32);
  let acc = 0;
  let bits = 0;
  let at = 0;
  for (const g of groups) {
    acc = (acc << 5) | g;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      if (at < 32) key[at++] = (acc >> bits) & 0xff;
    }
    acc &= (1 << bits) - 1;
  }
  return key;
}

/** Refuses an empty list, and names what is wrong with the first recipient that is not an X25519 one. */
export function checkRecipients(recipients: string[]): void {
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

// --- keys -------------------------------------------------------------------------------------------

/** The encryption settings only (DrConfig has them): the configuration module itself uses this file. */
export interface EncryptionSettings {
  encryption: { recipients: readonly string[]; identityFile?: string };
}

/**
 * The recipients backups are encrypted to: DR_AGE_RECIPIENTS, else the public key of the identity in
 * DR_ENCRYPTION_KEY_FILE (which must then be private to its owner).
 */
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
    throw new EncryptionKeyError(`cannot read age identity file ${file} (${code ?? messageWithoutKeys(err)})`);
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
      throw new EncryptionKeyError(`cannot read age identity file ${file} (${errnoCode(err) ?? messageWithoutKeys(err)})`);
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
  return Promise.all(
    identity
      .split('\n')
      .filter(Boolean)
      .map((key) => lib.identityToRecipient(key)),
  );
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
    throw new EncryptionKeyError(`cannot create age identity file ${file} (${errnoCode(err) ?? messageWithoutKeys(err)})`);
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
    throw new EncryptionKeyError(`cannot write age identity file ${file} (${errnoCode(err) ?? messageWithoutKeys(err)})`);
  }
  return { recipient };
}

export type AgeDecrypter = InstanceType<AgeModule['Decrypter']>;

/** An age decrypter for `identity`, checked once (reuse it for many files: unwrapping a header is pure-JS X25519). */
export async function ageDecrypter(identity: string): Promise<AgeDecrypter> {
  const keys = parseIdentities(identity, 'the age identity');
  await validateIdentities(keys, 'the age identity');
  const lib = await ageLib();
  const decrypter = new lib.Decrypter();
  for (const key of keys) decrypter.addIdentity(key);
  return decrypter;
}
