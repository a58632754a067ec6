/**
 * Signed sessions: the backup host signs each session's manifest with an Ed25519 key; readers
 * verify it against the trusted public keys before reading anything else of the session. The
 * manifest binds every artifact by SHA-256, so a verified manifest authenticates every byte.
 *
 * Format: OpenSSH signatures (PROTOCOL.sshsig, namespace `odoo-dr-session`, SHA-512), made with
 * node:crypto. Chosen because every operator already has the tool that verifies them, with no
 * odoo-dr at all: `ssh-keygen -Y verify -f allowed_signers -I odoo-dr -n odoo-dr-session -s
 * manifest.json.sig < manifest.json`; public keys are ordinary `ssh-ed25519 AAAA…` lines. The
 * private key is a PKCS#8 PEM file (mode 0600), refused when group or others may read it.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { ArtifactCorruptedError, EncryptionKeyError, InvalidInputError } from '../errors';

export const SIGNATURE_NAMESPACE = 'odoo-dr-session';
const MAGIC = Buffer.from('SSHSIG');
const KEY_TYPE = 'ssh-ed25519';
const HASH = 'sha512';
const BEGIN = '-----BEGIN SSH SIGNATURE-----';
const END = '-----END SSH SIGNATURE-----';

function sshString(data: Buffer | string): Buffer {
  const b = typeof data === 'string' ? Buffer.from(data) : data;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

class Reader {
  private at = 0;
  constructor(private readonly buf: Buffer) {}
  bytes(n: number): Buffer {
    if (this.at + n > this.buf.length) throw new ArtifactCorruptedError('the session signature is truncated');
    const out = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  uint32(): number {
    return this.bytes(4).readUInt32BE(0);
  }
  string(): Buffer {
    return this.bytes(this.uint32());
  }
  done(): boolean {
    return this.at === this.buf.length;
  }
}

function rawPublicKey(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new EncryptionKeyError('the signing key is not an Ed25519 key');
  return Buffer.from(jwk.x, 'base64url');
}

function publicBlob(raw: Buffer): Buffer {
  return Buffer.concat([sshString(KEY_TYPE), sshString(raw)]);
}

/** `ssh-ed25519 AAAA… comment`, as in authorized_keys and allowed_signers files. */
export function formatPublicKey(key: KeyObject, comment = 'odoo-dr'): string {
  return `${KEY_TYPE} ${publicBlob(rawPublicKey(key)).toString('base64')} ${comment}`.trim();
}

/** The 32-byte key of an `ssh-ed25519 AAAA… [comment]` line; clear errors otherwise. */
export function parsePublicKey(line: string): Buffer {
  const [type, b64] = line.trim().split(/\s+/);
  if (type !== KEY_TYPE || !b64) throw new InvalidInputError(`"${line.slice(0, 40)}…" is not an ssh-ed25519 public key (expected "ssh-ed25519 AAAA…")`);
  const r = new Reader(Buffer.from(b64, 'base64'));
  try {
    if (r.string().toString() !== KEY_TYPE) throw new Error('type');
    const raw = r.string();
    if (raw.length !== 32 || !r.done()) throw new Error('length');
    return Buffer.from(raw);
  } catch {
    throw new InvalidInputError(`"${line.slice(0, 40)}…" is not a valid ssh-ed25519 public key (damaged base64)`);
  }
}

/** The SHA-256 fingerprint ssh-keygen -l prints: `SHA256:…`. */
export function fingerprint(raw: Buffer): string {
  return `SHA256:${createHash('sha256').update(publicBlob(raw)).digest('base64').replace(/=+$/, '')}`;
}

function signedData(message: Buffer | string): Buffer {
  return Buffer.concat([MAGIC, sshString(SIGNATURE_NAMESPACE), sshString(''), sshString(HASH), sshString(createHash(HASH).update(message).digest())]);
}

/** An armored OpenSSH signature of `message` (the manifest's exact bytes). */
export function signMessage(message: Buffer | string, key: KeyObject): string {
  const raw = rawPublicKey(key);
  const signature = sign(null, signedData(message), key);
  const version = Buffer.alloc(4);
  version.writeUInt32BE(1);
  const blob = Buffer.concat([
    MAGIC,
    version,
    sshString(publicBlob(raw)),
    sshString(SIGNATURE_NAMESPACE),
    sshString(''),
    sshString(HASH),
    sshString(Buffer.concat([sshString(KEY_TYPE), sshString(signature)])),
  ]);
  const b64 = blob
    .toString('base64')
    .replace(/(.{70})/g, '$1\n')
    .replace(/\n$/, '');
  return `${BEGIN}\n${b64}\n${END}\n`;
}

/**
 * Verifies an armored signature of `message` against the trusted keys (`ssh-ed25519 …` lines);
 * returns the signer's fingerprint. Throws ArtifactCorruptedError naming what is wrong.
 */
export function verifyMessage(message: Buffer | string, armored: string, trusted: string[], what: string): string {
  const text = armored.trim();
  if (!text.startsWith(BEGIN) || !text.endsWith(END)) throw new ArtifactCorruptedError(`${what}: the signature is not an SSH signature`);
  const r = new Reader(Buffer.from(text.slice(BEGIN.length, -END.length).replace(/\s+/g, ''), 'base64'));
  if (!r.bytes(6).equals(MAGIC) || r.uint32() !== 1) throw new ArtifactCorruptedError(`${what}: the signature is not an SSH signature (version 1)`);
  const pub = new Reader(r.string());
  const namespace = (() => {
    if (pub.string().toString() !== KEY_TYPE) throw new ArtifactCorruptedError(`${what}: signed with a key that is not ssh-ed25519`);
    return r.string().toString();
  })();
  const signerRaw = pub.string();
  r.string(); // reserved
  const hash = r.string().toString();
  const sigBlob = new Reader(r.string());
  if (namespace !== SIGNATURE_NAMESPACE) throw new ArtifactCorruptedError(`${what}: the signature is for "${namespace}", not ${SIGNATURE_NAMESPACE}`);
  if (hash !== HASH) throw new ArtifactCorruptedError(`${what}: the signature uses ${hash}, expected ${HASH}`);
  if (sigBlob.string().toString() !== KEY_TYPE) throw new ArtifactCorruptedError(`${what}: the signature is not ssh-ed25519`);
  const signature = sigBlob.string();
  const signer = fingerprint(signerRaw);
  const trustedRaw = trusted.map((t) => parsePublicKey(t));
  if (!trustedRaw.some((k) => k.equals(signerRaw))) {
    throw new ArtifactCorruptedError(
      `${what}: signed by ${signer}, which is not in DR_TRUSTED_SIGNERS (trusted: ${trustedRaw.map(fingerprint).join(', ') || 'none'})`,
    );
  }
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: signerRaw.toString('base64url') }, format: 'jwk' });
  if (!verify(null, signedData(message), key, signature)) {
    throw new ArtifactCorruptedError(`${what}: the signature by ${signer} does not match: the manifest was changed after it was signed`);
  }
  return signer;
}

/** Reads the signing key (PKCS#8 PEM); refuses a file group or others may read, as ssh does. */
export async function readSigningKey(file: string): Promise<KeyObject> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new EncryptionKeyError(
      code === 'ENOENT'
        ? `signing key ${file} does not exist: create it with \`odoo-dr keys signing FILE --create\``
        : `cannot read signing key ${file} (${code ?? String(err)})`,
    );
  }
  try {
    const st = await fh.stat();
    if ((st.mode & 0o077) !== 0) {
      throw new EncryptionKeyError(
        `signing key ${file} is accessible by group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}): run \`chmod 600 ${file}\``,
      );
    }
    try {
      const key = createPrivateKey(await fh.readFile('utf8'));
      rawPublicKey(key);
      return key;
    } catch (err) {
      if (err instanceof EncryptionKeyError) throw err;
      throw new EncryptionKeyError(`signing key ${file} is not an Ed25519 private key in PEM (damaged key; not shown)`);
    }
  } finally {
    await fh.close();
  }
}

/** Creates a new signing key (mode 0600); never overwrites. Returns its public key line. */
export async function generateSigningKey(file: string, comment = 'odoo-dr'): Promise<string> {
  const { privateKey } = generateKeyPairSync('ed25519');
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  let fh: FileHandle;
  try {
    fh = await open(file, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new EncryptionKeyError(`${file} already exists: refusing to overwrite a signing key`);
    throw err;
  }
  try {
    await fh.writeFile(privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await fh.sync();
  } finally {
    await fh.close();
  }
  return formatPublicKey(privateKey, comment);
}
