/**
 * Fetches what a tenant's restore needs from the bucket alone (manifest, dump, filestore index,
 * blobs) into a folder with the same layout, each object verified against the manifest.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { DrConfig } from '../config';
import { readFilestoreIndex } from '../backup/filestore';
import { localPath, rel } from '../backup/layout';
import { readManifest, type Manifest } from '../backup/manifest';
import { InvalidInputError } from '../errors';
import { cloudKey, downloadFile } from '../storage/s3';

export async function fetchTenantFromCloud(
  config: DrConfig,
  session: string,
  tenant: string,
  mirror: string,
  signal?: AbortSignal,
): Promise<Manifest> {
  const cloud = config.cloud;
  if (!cloud) throw new InvalidInputError('restoring from the cloud copy needs DR_CLOUD_BUCKET');
  const get = async (relative: string, expect?: { bytes: number; sha256: string }) => {
    const dest = localPath(mirror, relative);
    await mkdir(path.dirname(dest), { recursive: true });
    await downloadFile(cloud, cloudKey(cloud, relative), dest, {
      ...(signal ? { signal } : {}),
      ...(expect ? { expectedBytes: expect.bytes, expectedSha256: expect.sha256 } : {}),
    });
    return dest;
  };
  // The cloud manifest verifies itself (checksum), independently of the local one.
  const manifest = await readManifest(await get(rel.manifest(session)));
  const entry = manifest.tenants[tenant];
  if (!entry?.database || !entry.filestore) throw new InvalidInputError(`tenant ${tenant} has no complete backup in ${session} (cloud copy)`);
  await get(entry.database.path, entry.database);
  const index = await get(entry.filestore.index.path, entry.filestore.index);
  const seen = new Set<string>();
  for await (const file of readFilestoreIndex(index)) {
    if (seen.has(file.sha1)) continue;
    seen.add(file.sha1);
    await get(rel.blob(file.sha1));
  }
  return manifest;
}
