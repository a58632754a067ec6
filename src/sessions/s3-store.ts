/** The session store in an S3 bucket, under the DR_CLOUD_BUCKET prefix: the site's source of truth. */
import { localPath, rel } from '../backup/layout';
import { ArtifactCorruptedError } from '../errors';
import {
  cloudKey,
  deleteObjects,
  downloadFile,
  getSmallObject,
  headObject,
  listFolders,
  listObjects,
  putSmallObject,
  uploadFile,
  verifyObject,
  type CloudSettings,
} from '../storage/s3';
import { assertStorePath, newestFirst, type ArtifactCheck, type ExpectedArtifact, type SessionStore } from './store';

export class S3SessionStore implements SessionStore {
  readonly location = 'cloud' as const;
  readonly description: string;

  constructor(readonly cloud: CloudSettings) {
    this.description = `s3://${cloud.bucket}${cloud.prefix ? `/${cloud.prefix}` : ''}`;
  }

  private key(relPath: string): string {
    assertStorePath(relPath);
    return cloudKey(this.cloud, relPath);
  }

  private sessionPrefix(session: string): string {
    assertStorePath(rel.manifest(session));
    return `${cloudKey(this.cloud, rel.session(session))}/`;
  }

  async sessionNames(): Promise<string[]> {
    // One request per 1000 sessions (common prefixes), not one per object.
    return newestFirst(await listFolders(this.cloud, cloudKey(this.cloud, 'sessions/')));
  }

  async hasSession(session: string): Promise<boolean> {
    for await (const _obj of listObjects(this.cloud, this.sessionPrefix(session), { pageSize: 1 })) return true;
    return false;
  }

  async manifestText(session: string): Promise<string | undefined> {
    const body = await getSmallObject(this.cloud, this.key(rel.manifest(session)));
    return body?.toString('utf8');
  }

  async signatureText(session: string): Promise<string | undefined> {
    return (await getSmallObject(this.cloud, this.key(rel.signature(session)), 64 * 1024))?.toString('utf8');
  }

  async putManifest(session: string, text: string, signature?: string): Promise<void> {
    if (signature !== undefined) await putSmallObject(this.cloud, this.key(rel.signature(session)), Buffer.from(signature, 'utf8'), 'text/plain');
    const key = this.key(rel.manifest(session));
    await putSmallObject(this.cloud, key, Buffer.from(text, 'utf8'));
    const back = await getSmallObject(this.cloud, key);
    if (back?.toString('utf8') !== text) throw new ArtifactCorruptedError(`s3://${this.cloud.bucket}/${key} did not read back as written`);
  }

  async putArtifact(file: string, expect: ExpectedArtifact): Promise<void> {
    await uploadFile({ cloud: this.cloud, key: this.key(expect.path), file, expectedBytes: expect.bytes, expectedSha256: expect.sha256 });
  }

  async fetchArtifact(expect: ExpectedArtifact, scratchDir: string, signal?: AbortSignal): Promise<string> {
    const dest = localPath(scratchDir, expect.path);
    await downloadFile(this.cloud, this.key(expect.path), dest, {
      expectedBytes: expect.bytes,
      expectedSha256: expect.sha256,
      ...(signal ? { signal } : {}),
    });
    return dest;
  }

  /**
   * Downloads and hashes the bytes (never trusts uploader-set metadata: `x-amz-meta-sha256` is
   * whatever the last writer said). S3's own checksums cannot stand in for it: for multipart
   * uploads they are composite (a hash of part hashes), not the object's SHA-256.
   */
  async checkArtifact(expect: ExpectedArtifact, signal?: AbortSignal): Promise<ArtifactCheck> {
    const key = this.key(expect.path);
    const check = await verifyObject(this.cloud, key, { bytes: expect.bytes, sha256: expect.sha256 }, { deep: true, ...(signal ? { signal } : {}) });
    return { ok: check.ok, message: check.message };
  }

  async hasBlob(sha1: string): Promise<boolean> {
    return (await headObject(this.cloud, this.key(rel.blob(sha1)))) !== null;
  }

  async blobFile(sha1: string, scratchDir: string, signal?: AbortSignal): Promise<{ file: string; bytes: number } | undefined> {
    const relPath = rel.blob(sha1);
    const dest = localPath(scratchDir, relPath);
    try {
      const got = await downloadFile(this.cloud, this.key(relPath), dest, signal ? { signal } : {});
      return { file: dest, bytes: got.bytes };
    } catch (err) {
      if ((err as Error).name === 'ArtifactNotFoundError' || (await headObject(this.cloud, this.key(relPath))) === null) return undefined;
      throw err;
    }
  }

  async packFile(id: string, bytes: number, scratchDir: string, signal?: AbortSignal): Promise<{ file: string; bytes: number } | undefined> {
    const relPath = rel.pack(id);
    const dest = localPath(scratchDir, relPath);
    // A missing pack is an ArtifactCorruptedError naming it (the index says it is there).
    await downloadFile(this.cloud, this.key(relPath), dest, { expectedBytes: bytes, expectedSha256: id, ...(signal ? { signal } : {}) });
    return { file: dest, bytes };
  }

  async putDocument(relPath: string, value: unknown): Promise<void> {
    await putSmallObject(this.cloud, this.key(relPath), Buffer.from(`${JSON.stringify(value, null, 2)}\n`, 'utf8'));
  }

  async getDocument(relPath: string): Promise<unknown> {
    const body = await getSmallObject(this.cloud, this.key(relPath));
    if (body === undefined) return undefined;
    try {
      return JSON.parse(body.toString('utf8')) as unknown;
    } catch (err) {
      throw new ArtifactCorruptedError(`${relPath} in ${this.description} is not valid JSON: ${(err as Error).message}`);
    }
  }

  async listDocuments(session: string, sub: string): Promise<string[]> {
    if (!/^[a-z]+$/.test(sub)) throw new Error(`bad document folder ${sub}`);
    const base = cloudKey(this.cloud, rel.session(session));
    const prefix = `${this.sessionPrefix(session)}${sub}/`;
    const out: string[] = [];
    for await (const obj of listObjects(this.cloud, prefix)) {
      const name = obj.key.slice(prefix.length);
      if (name.endsWith('.json') && !name.includes('/')) out.push(`${rel.session(session)}/${obj.key.slice(base.length + 1)}`);
    }
    return out.sort();
  }

  async deleteSession(session: string): Promise<void> {
    const manifestKey = this.key(rel.manifest(session));
    const keys: string[] = [];
    for await (const obj of listObjects(this.cloud, this.sessionPrefix(session))) keys.push(obj.key);
    await deleteObjects(
      this.cloud,
      keys.filter((k) => k === manifestKey),
    );
    await deleteObjects(
      this.cloud,
      keys.filter((k) => k !== manifestKey),
    );
  }
}
