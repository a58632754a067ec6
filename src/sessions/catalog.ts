/**
 * Which session, from where: the local folder, the bucket, or (`auto`) whichever holds the
 * session's manifest, local first. `latest` means the newest complete session whose newest
 * validation did not fail; validation and drill results are stored with the session in both
 * places, so `latest` means the same thing after the host (and its local folder) is gone.
 */
import { randomBytes } from 'node:crypto';
import type { DrConfig } from '../config';
import { assertSessionName, assertTenantName, rel, sessionTime } from '../backup/layout';
import { parseManifest, type Manifest } from '../backup/manifest';
import { ArtifactCorruptedError, InvalidInputError } from '../errors';
import { formatPublicKey, readSigningKey, verifyMessage } from '../crypto/signing';
import { LocalSessionStore } from './local-store';
import { S3SessionStore } from './s3-store';
import { assertStorePath, type SessionStore } from './store';

/** `auto`: the local copy when this host has the session's manifest, else the bucket. */
export type SessionSource = 'auto' | 'local' | 'cloud';

/** A validation's or drill's outcome, kept with the session (`sessions/<s>/results/…json`). */
export interface SessionResult {
  kind: 'validation' | 'drill';
  session: string;
  status: 'pass' | 'fail';
  finishedAt: string;
  workflowId: string;
  tenant?: string;
  restoreTest: boolean;
  /** Measured restore time per GiB, when restores ran. */
  secondsPerGiB?: number;
  /** The first failed checks, readable. */
  failures: string[];
}

export type ValidationState = 'pass' | 'fail' | 'never';

export interface SessionSummary {
  session: string;
  startedAt: string;
  /** From a verified manifest; `incomplete` = no manifest (running or crashed); `corrupt` = it does not verify. */
  status: Manifest['status'] | 'incomplete' | 'corrupt';
  tenants: Record<string, 'complete' | 'failed'>;
  validation: ValidationState;
  location: 'local' | 'cloud';
  /** Fingerprint of the key that signed it (verified). */
  signedBy?: string;
  problem?: string;
}

export interface OpenedSession {
  session: string;
  store: SessionStore;
  manifest: Manifest;
  /** Fingerprint of the trusted key whose signature verified; undefined: unsigned, accepted by --allow-unsigned. */
  signedBy?: string;
}

/** Whose signatures are accepted, and whether unsigned sessions (made before signing) are. */
export interface TrustSettings {
  /** `ssh-ed25519 AAAA…` lines. */
  signers: () => Promise<string[]>;
  allowUnsigned: boolean;
}

/** DR_TRUSTED_SIGNERS, or else the public key of DR_SIGNING_KEY_FILE (a single backup host). */
export async function trustedSigners(config: Pick<DrConfig, 'signing'>): Promise<string[]> {
  if (config.signing.trusted.length) return config.signing.trusted;
  if (config.signing.keyFile) return [formatPublicKey(await readSigningKey(config.signing.keyFile))];
  return [];
}

export interface ResolvedSession extends OpenedSession {
  validation: ValidationState;
  warnings: string[];
}

/**
 * Every name and path a manifest gives is checked against the layout before anything uses it: tenant
 * names are Odoo database names, and every artifact lies inside the session's own folder.
 */
export function assertManifestPaths(manifest: Manifest, where: string): void {
  const inSession = `${rel.session(manifest.session)}/`;
  const check = (p: string, what: string) => {
    try {
      assertStorePath(p);
    } catch (err) {
      throw new ArtifactCorruptedError(`${where}: ${what} ${(err as Error).message}`);
    }
    if (!p.startsWith(inSession)) throw new ArtifactCorruptedError(`${where}: ${what} ${JSON.stringify(p)} is outside the session's folder ${inSession}`);
  };
  for (const [tenant, entry] of Object.entries(manifest.tenants)) {
    try {
      assertTenantName(tenant);
    } catch (err) {
      throw new ArtifactCorruptedError(`${where}: ${(err as Error).message}`);
    }
    if (entry.database) check(entry.database.path, `the dump of ${tenant}`);
    if (entry.filestore) check(entry.filestore.index.path, `the filestore index of ${tenant}`);
  }
  if (manifest.globals) check(manifest.globals.path, 'the cluster globals');
  if (manifest.config) check(manifest.config.path, 'the configuration archive');
}

/** What list() takes from a verified manifest. */
interface ManifestFacts {
  status: Manifest['status'];
  tenants: Record<string, 'complete' | 'failed'>;
  signedBy?: string;
}

/** Verified manifests of this process (see SessionCatalog.manifestFacts), by store and session. */
const verifiedManifests = new Map<string, { identity: string; trust: string; facts: ManifestFacts }>();

const verifiedKey = (store: SessionStore, session: string) => `${store.location}\n${store.description}\n${session}`;

/** Forgets the remembered manifests of the store's sessions that are gone (the map stays as small as the folder). */
function forgetVerifiedExcept(store: SessionStore, present: string[]): void {
  const prefix = verifiedKey(store, '');
  const keep = new Set(present.map((n) => verifiedKey(store, n)));
  for (const key of verifiedManifests.keys()) if (key.startsWith(prefix) && !keep.has(key)) verifiedManifests.delete(key);
}

export class SessionCatalog {
  constructor(
    readonly local: SessionStore,
    readonly cloud: SessionStore | undefined,
    readonly trust: TrustSettings = { signers: () => Promise.resolve([]), allowUnsigned: false },
  ) {}

  static fromConfig(config: Pick<DrConfig, 'backupDir' | 'cloud' | 'signing'>, opts: { allowUnsigned?: boolean } = {}): SessionCatalog {
    let signers: Promise<string[]> | undefined;
    return new SessionCatalog(new LocalSessionStore(config.backupDir), config.cloud ? new S3SessionStore(config.cloud) : undefined, {
      signers: () => (signers ??= trustedSigners(config)),
      allowUnsigned: opts.allowUnsigned ?? false,
    });
  }

  /**
   * The manifest's text, its signature verified against the trusted keys before anything of it is
   * parsed. Unsigned: refused unless `allowUnsigned` (sessions made before signing existed).
   */
  private async verifiedText(store: SessionStore, session: string, text: string): Promise<{ text: string; signedBy?: string }> {
    const where = `${store.description}/${rel.manifest(session)}`;
    const signature = await store.signatureText(session);
    if (signature === undefined) {
      if (this.trust.allowUnsigned) return { text };
      throw new ArtifactCorruptedError(
        `${where} is not signed: refused (anyone who can write to the backups could have made it). ` +
          'For a session made before signing was set up, and only then, use --allow-unsigned',
      );
    }
    const signers = await this.trust.signers();
    if (signers.length === 0) {
      throw new ArtifactCorruptedError(`${where} is signed, but no key is trusted to verify it: set DR_TRUSTED_SIGNERS (or DR_SIGNING_KEY_FILE)`);
    }
    return { text, signedBy: verifyMessage(text, signature, signers, where) };
  }

  /** The stores `source` allows, in order of preference. */
  stores(source: SessionSource): SessionStore[] {
    if (source === 'cloud') {
      if (!this.cloud) throw new InvalidInputError('reading sessions from the bucket needs DR_CLOUD_BUCKET');
      return [this.cloud];
    }
    if (source === 'local' || !this.cloud) return [this.local];
    return [this.local, this.cloud];
  }

  private where(source: SessionSource): string {
    return this.stores(source)
      .map((s) => s.description)
      .join(' nor in ');
  }

  /** The session's verified manifest and the store it came from; clear errors otherwise. */
  async open(session: string, source: SessionSource): Promise<OpenedSession> {
    assertSessionName(session);
    let seen: SessionStore | undefined;
    for (const store of this.stores(source)) {
      const text = await store.manifestText(session);
      if (text === undefined) {
        if (!seen && (await store.hasSession(session))) seen = store;
        continue;
      }
      const verified = await this.verifiedText(store, session, text);
      const manifest = parseManifest(verified.text, `${store.description}/${rel.manifest(session)}`);
      if (manifest.session !== session) {
        throw new ArtifactCorruptedError(`${store.description}/${rel.manifest(session)} describes session ${manifest.session}, not ${session}`);
      }
      assertManifestPaths(manifest, `${store.description}/${rel.manifest(session)}`);
      return { session, store, manifest, ...(verified.signedBy ? { signedBy: verified.signedBy } : {}) };
    }
    if (seen) {
      throw new InvalidInputError(`session ${session} has no manifest in ${seen.description}: it is still in progress, or it crashed`);
    }
    throw new InvalidInputError(`session ${session} does not exist in ${this.where(source)}`);
  }

  /** Validation and drill results of the session from every store that has them, newest first. */
  async results(session: string): Promise<SessionResult[]> {
    const byName = new Map<string, SessionResult>();
    for (const store of this.stores('auto')) {
      let paths: string[];
      try {
        paths = await store.listDocuments(session, 'results');
      } catch {
        continue; // an unreachable bucket must not hide the local results
      }
      for (const p of paths) {
        const name = p.slice(p.lastIndexOf('/') + 1);
        if (byName.has(name)) continue;
        const doc = (await store.getDocument(p).catch(() => undefined)) as SessionResult | undefined;
        if (doc && (doc.status === 'pass' || doc.status === 'fail') && (doc.kind === 'validation' || doc.kind === 'drill')) byName.set(name, doc);
      }
    }
    return [...byName.values()].sort((a, b) => (a.finishedAt < b.finishedAt ? 1 : a.finishedAt > b.finishedAt ? -1 : 0));
  }

  async validationOf(session: string): Promise<ValidationState> {
    const newest = (await this.results(session)).find((r) => r.kind === 'validation');
    return newest ? newest.status : 'never';
  }

  /** Keeps a result with the session, in every store that holds the session. Returns where it went. */
  async saveResult(result: SessionResult): Promise<string[]> {
    const stamp = result.finishedAt.replace(/[-:.]/g, '');
    const relPath = `${rel.session(result.session)}/results/${result.kind}-${stamp}-${randomBytes(3).toString('hex')}.json`;
    const written: string[] = [];
    for (const store of this.stores('auto')) {
      if (!(await store.hasSession(result.session))) continue;
      await store.putDocument(relPath, result);
      written.push(`${store.description}/${relPath}`);
    }
    return written;
  }

  /**
   * `latest` (or nothing): the newest complete session whose newest validation did not fail; with
   * `tenants`, the newest complete or partial one in which each of them is complete (a session in
   * which another tenant failed, or that lacks this one, is no reason to go back further for
   * everybody, nor a session to recover this one from). A named session is opened; one that failed
   * validation is refused unless `force`.
   */
  async resolve(wanted: string | undefined, source: SessionSource, opts: { force?: boolean; tenants?: string[] } = {}): Promise<ResolvedSession> {
    const warnings: string[] = [];
    if (wanted && wanted !== 'latest') {
      const opened = await this.open(wanted, source);
      const validation = await this.validationOf(wanted);
      if (validation === 'fail') {
        if (!opts.force) throw new InvalidInputError(`session ${wanted} failed validation: refused (use --force to use it anyway)`);
        warnings.push(`session ${wanted} FAILED validation; used anyway because --force was given`);
      }
      if (opened.manifest.status !== 'complete') warnings.push(`session ${wanted} is ${opened.manifest.status}: only its complete tenants can be used`);
      return { ...opened, validation, warnings };
    }
    const names = new Set<string>();
    for (const store of this.stores(source)) for (const n of await store.sessionNames()) names.add(n);
    for (const name of [...names].sort().reverse()) {
      let opened: OpenedSession;
      try {
        opened = await this.open(name, source);
      } catch {
        continue; // in progress, crashed or corrupt: not a candidate
      }
      const wanted = opts.tenants ?? [];
      if (wanted.length === 0 ? opened.manifest.status !== 'complete' : !wanted.every((t) => opened.manifest.tenants[t]?.status === 'complete')) continue;
      const validation = await this.validationOf(name);
      if (validation === 'fail') {
        warnings.push(`skipped ${name}: it failed validation`);
        continue;
      }
      if (validation === 'never') warnings.push(`session ${name} was never validated (run odoo-dr validate ${name} --restore-test)`);
      return { ...opened, validation, warnings };
    }
    const of = opts.tenants?.length ? ` with a complete backup of ${opts.tenants.join(', ')}` : '';
    throw new InvalidInputError(`no complete, non-failed backup session${of} in ${this.where(source)}`);
  }

  /**
   * Sessions of one place, newest first, each with its verified status and validation.
   * `validation: false`: not looked up (each says `never`), for callers that look up only the ones
   * they need (retention: src/retention/policy.ts).
   */
  async list(store: SessionStore, opts: { validation?: boolean } = {}): Promise<SessionSummary[]> {
    const out: SessionSummary[] = [];
    const names = await store.sessionNames();
    for (const session of names) {
      const base = { session, startedAt: sessionTime(session).toISOString(), location: store.location, tenants: {} };
      try {
        const facts = await this.manifestFacts(store, session);
        if (facts === undefined) {
          out.push({ ...base, status: 'incomplete', validation: 'never' });
          continue;
        }
        out.push({
          ...(facts.signedBy ? { signedBy: facts.signedBy } : {}),
          ...base,
          status: facts.status,
          tenants: { ...facts.tenants },
          validation: (opts.validation ?? true) ? await this.validationOf(session) : 'never',
        });
      } catch (err) {
        out.push({ ...base, status: 'corrupt', validation: 'never', problem: (err as Error).message });
      }
    }
    forgetVerifiedExcept(store, names);
    return out;
  }

  /**
   * What list() needs of a session's manifest (undefined: it has none), once its signature verified.
   * Remembered in this process against the files' identity (SessionStore.manifestIdentity) and the
   * trust settings, so that an unchanged manifest is not read and verified again at every backup;
   * the identity is taken before the read and checked again after it, so a file replaced meanwhile
   * is never remembered under the old one's identity.
   */
  private async manifestFacts(store: SessionStore, session: string): Promise<ManifestFacts | undefined> {
    const identity = await store.manifestIdentity?.(session);
    const key = verifiedKey(store, session);
    // Unreadable trusted keys: nothing remembered (verifiedText says why).
    const trust =
      identity === undefined
        ? undefined
        : await this.trust.signers().then(
            (keys) => `${this.trust.allowUnsigned}\n${keys.join('\n')}`,
            () => undefined,
          );
    const known = trust === undefined ? undefined : verifiedManifests.get(key);
    if (known && known.identity === identity && known.trust === trust) return known.facts;
    const text = await store.manifestText(session);
    if (text === undefined) return undefined;
    const verified = await this.verifiedText(store, session, text);
    const m = parseManifest(verified.text, `${store.description}/${rel.manifest(session)}`);
    const facts: ManifestFacts = {
      status: m.status,
      tenants: Object.fromEntries(Object.entries(m.tenants).map(([k, v]) => [k, v.status])),
      ...(verified.signedBy ? { signedBy: verified.signedBy } : {}),
    };
    if (identity !== undefined && trust !== undefined && (await store.manifestIdentity?.(session)) === identity)
      verifiedManifests.set(key, { identity, trust, facts });
    return facts;
  }

  /** The newest verified restore rate (seconds per GiB) from the session's results, if any. */
  async restoreRate(session: string): Promise<number | undefined> {
    return (await this.results(session)).map((r) => r.secondsPerGiB).find((x): x is number => typeof x === 'number' && x > 0);
  }
}
