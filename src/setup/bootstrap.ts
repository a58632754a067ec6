/**
 * First-time set-up on a host: the configuration file made from the example, the age identity and
 * the session signing key. Nothing existing is ever overwritten: a replaced identity would make
 * every backup encrypted to the old one undecryptable.
 */
import { existsSync } from 'node:fs';
import { mkdir, open, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { generateIdentity, identityRecipients, readIdentity } from '../crypto/age';
import { formatPublicKey, generateSigningKey, parsePublicKey, readSigningKey } from '../crypto/signing';
import type { DrConfig } from '../config';
import { firstLine, ok, problem, warning, type SetupCheck } from './report';

/** Where setup puts keys when the configuration does not say: /etc/odoo-dr for root, else ~/.config/odoo-dr. */
export function defaultKeyDir(uid: number | undefined = process.getuid?.(), home = homedir()): string {
  return uid === 0 ? '/etc/odoo-dr' : path.join(home, '.config', 'odoo-dr');
}

/**
 * The example with `values` set: each `#NAME="…"` line of the example becomes `NAME="value"` in
 * place (so the documentation stays next to it); a name the example lacks is appended.
 */
export function fillExample(example: string, values: Record<string, string>): string {
  let text = example;
  for (const [name, value] of Object.entries(values)) {
    if (/["\n\\$`]/.test(value)) throw new Error(`${name}: value ${JSON.stringify(value)} cannot be written to an env file as is`);
    const line = new RegExp(`^#${name}=.*$`, 'm');
    text = line.test(text) ? text.replace(line, `${name}="${value}"`) : `${text.trimEnd()}\n${name}="${value}"\n`;
  }
  return text;
}

/** Writes a new configuration file (mode 0600: it may get passwords); refuses to replace one. */
export async function writeNewConfig(file: string, content: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const fh = await open(file, 'wx', 0o600).catch((err: NodeJS.ErrnoException) => {
    throw new Error(err.code === 'EEXIST' ? `${file} already exists: not replaced` : `cannot create ${file} (${err.code ?? err.message})`);
  });
  try {
    await fh.chmod(0o600);
    await fh.writeFile(content);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function readExample(file: string): Promise<string> {
  return readFile(file, 'utf8');
}

export interface KeyState {
  file: string;
  /** created now, existed already, or missing (only with --check). */
  state: 'created' | 'existing' | 'missing' | 'unusable';
  /** age recipient (age1…) or signing public key line (ssh-ed25519 …). */
  publicKey?: string;
}

export interface KeysResult {
  identity?: KeyState;
  signing?: KeyState;
  checks: SetupCheck[];
}

/** Creates the age identity when `create` and it is absent; reads it (mode checked) either way. */
export async function ensureIdentity(file: string, create: boolean): Promise<KeyState & { error?: string }> {
  if (!existsSync(file)) {
    if (!create) return { file, state: 'missing' };
    const { recipient } = await generateIdentity(file);
    return { file, state: 'created', publicKey: recipient };
  }
  try {
    const recipients = await identityRecipients(await readIdentity(file));
    return { file, state: 'existing', ...(recipients[0] ? { publicKey: recipients[0] } : {}) };
  } catch (err) {
    return { file, state: 'unusable', error: firstLine(err) };
  }
}

export async function ensureSigningKey(file: string, create: boolean, comment: string): Promise<KeyState & { error?: string }> {
  if (!existsSync(file)) {
    if (!create) return { file, state: 'missing' };
    return { file, state: 'created', publicKey: await generateSigningKey(file, comment) };
  }
  try {
    return { file, state: 'existing', publicKey: formatPublicKey(await readSigningKey(file), comment) };
  } catch (err) {
    return { file, state: 'unusable', error: firstLine(err) };
  }
}

const sameSigner = (a: string, b: string): boolean => {
  try {
    return parsePublicKey(a).equals(parsePublicKey(b));
  } catch {
    return false;
  }
};

/**
 * The keys of a loaded configuration: created when configured and absent (unless `check`), then
 * checked against DR_AGE_RECIPIENTS and DR_TRUSTED_SIGNERS.
 */
export async function setUpKeys(config: DrConfig, opts: { check: boolean; comment: string }): Promise<KeysResult> {
  const checks: SetupCheck[] = [];
  const out: KeysResult = { checks };
  const { identityFile, recipients } = config.encryption;
  const again = 'odoo-dr setup';

  if (identityFile) {
    const id = await ensureIdentity(identityFile, !opts.check);
    out.identity = { file: id.file, state: id.state, ...(id.publicKey ? { publicKey: id.publicKey } : {}) };
    if (id.state === 'missing') {
      checks.push(
        problem(
          'keys',
          'age identity',
          `DR_ENCRYPTION_KEY_FILE ${identityFile} does not exist`,
          `${again} (creates it), or restore your offline copy to ${identityFile}`,
        ),
      );
    } else if (id.state === 'unusable') {
      checks.push(problem('keys', 'age identity', id.error ?? 'unusable', `fix the file (see the message) or restore your offline copy to ${identityFile}`));
    } else if (recipients.length && id.publicKey && !recipients.includes(id.publicKey)) {
      checks.push(
        problem(
          'keys',
          'age identity',
          `${id.state === 'created' ? 'created' : 'found'} ${identityFile}, but its recipient ${id.publicKey} is not in DR_AGE_RECIPIENTS: this host cannot decrypt what it backs up`,
          `add ${id.publicKey} to DR_AGE_RECIPIENTS`,
        ),
      );
    } else {
      checks.push(ok('keys', 'age identity', `${id.state === 'created' ? 'created' : 'found'} ${identityFile} (mode 0600), recipient ${id.publicKey ?? '?'}`));
    }
  } else if (recipients.length) {
    checks.push(
      ok(
        'keys',
        'age identity',
        `backups are encrypted to ${recipients.length} recipient(s) of DR_AGE_RECIPIENTS; no identity on this host (it is needed only to validate and restore)`,
      ),
    );
  } else {
    checks.push(
      problem(
        'keys',
        'age identity',
        'neither DR_ENCRYPTION_KEY_FILE nor DR_AGE_RECIPIENTS is set: backups cannot be encrypted',
        `set DR_ENCRYPTION_KEY_FILE="${path.join(defaultKeyDir(), 'encryption.key')}" and run ${again}`,
      ),
    );
  }

  const { keyFile, trusted } = config.signing;
  if (keyFile) {
    const sk = await ensureSigningKey(keyFile, !opts.check, opts.comment);
    out.signing = { file: sk.file, state: sk.state, ...(sk.publicKey ? { publicKey: sk.publicKey } : {}) };
    if (sk.state === 'missing') {
      checks.push(
        problem(
          'keys',
          'signing key',
          `DR_SIGNING_KEY_FILE ${keyFile} does not exist: sessions made here would be unsigned and refused`,
          `${again} (creates it)`,
        ),
      );
    } else if (sk.state === 'unusable') {
      checks.push(problem('keys', 'signing key', sk.error ?? 'unusable', `fix the file (see the message), or move it away and run ${again}`));
    } else if (trusted.length && sk.publicKey && !trusted.some((t) => sameSigner(t, sk.publicKey!))) {
      checks.push(
        problem(
          'keys',
          'signing key',
          `${keyFile}'s public key is not in DR_TRUSTED_SIGNERS: validation here would refuse the sessions made here`,
          `add "${sk.publicKey}" to DR_TRUSTED_SIGNERS`,
        ),
      );
    } else {
      checks.push(ok('keys', 'signing key', `${sk.state === 'created' ? 'created' : 'found'} ${keyFile} (mode 0600)`));
    }
  } else if (trusted.length) {
    checks.push(
      warning(
        'keys',
        'signing key',
        `DR_SIGNING_KEY_FILE is not set: this host trusts ${trusted.length} signer(s) but cannot sign, so backups made here are refused by readers`,
        `on the backup host: set DR_SIGNING_KEY_FILE="${path.join(defaultKeyDir(), 'signing.key')}" and run ${again}`,
      ),
    );
  } else {
    checks.push(
      problem(
        'keys',
        'signing key',
        'neither DR_SIGNING_KEY_FILE nor DR_TRUSTED_SIGNERS is set: sessions would be unsigned and validation, drills and recovery refuse unsigned sessions',
        `set DR_SIGNING_KEY_FILE="${path.join(defaultKeyDir(), 'signing.key')}" and run ${again}`,
      ),
    );
  }
  return out;
}
