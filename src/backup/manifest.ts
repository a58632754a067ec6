/**
 * The session manifest: versioned, self-checksummed and signed (src/crypto/signing.ts), written last
 * by the session store. A session is complete only when its manifest says so and its signature and
 * checksum verify; anything else is not a usable backup.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { ArtifactCorruptedError } from '../errors';
import type { Artifact } from './artifact';
import type { OdooFacts } from '../odoo/facts';
import type { FilestoreResult } from './filestore';

export const MANIFEST_FORMAT = 'odoo-dr-session';
export const MANIFEST_VERSION = 1;

export type { Artifact } from './artifact';

export type TenantStatus = 'complete' | 'failed';

export interface TenantEntry {
  status: TenantStatus;
  error?: string;
  durationMs: number;
  database?: Artifact & { pgDump: string };
  /** The filestore backup as made (file list artifact, counts, blobs stored/reused/uploaded, name mismatches). */
  filestore?: Omit<FilestoreResult, 'missing'>;
  odoo?: OdooFacts;
}

export type SessionStatus = 'complete' | 'partial' | 'failed';

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  version: typeof MANIFEST_VERSION;
  session: string;
  status: SessionStatus;
  startedAt: string;
  finishedAt: string;
  startedBy: string;
  workflowId: string;
  host: string;
  postgres: { server: string; pgDump: string };
  encryption: { format: 'age'; recipients: string[] };
  compression: { format: 'zstd'; level: number };
  cloud: { bucket: string; prefix: string } | null;
  tenants: Record<string, TenantEntry>;
  globals?: Artifact & { warnings: string[] };
  config?: Artifact & { paths: string[]; missing: string[] };
  /** Problems that did not fail the session (but are reported). */
  warnings: string[];
  /** Hex SHA-256 of the canonical JSON of everything else. */
  checksum: string;
}

/** JSON with sorted keys: the same manifest always hashes the same. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

export function manifestChecksum(manifest: Omit<Manifest, 'checksum'> | Manifest): string {
  const { checksum: _ignored, ...rest } = manifest as Manifest;
  return createHash('sha256').update(canonicalJson(rest)).digest('hex');
}

export function sealManifest(body: Omit<Manifest, 'checksum'>): Manifest {
  return { ...body, checksum: manifestChecksum(body) };
}

const header = z.object({
  format: z.literal(MANIFEST_FORMAT),
  version: z.number().int(),
  session: z.string(),
  status: z.enum(['complete', 'partial', 'failed']),
  tenants: z.record(z.string(), z.object({ status: z.enum(['complete', 'failed']) }).passthrough()),
  checksum: z.string().regex(/^[0-9a-f]{64}$/),
});

/** Parses and verifies a manifest's text; errors name what is wrong. */
export function parseManifest(text: string, where: string): Manifest {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ArtifactCorruptedError(`${where} is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = header.safeParse(data);
  if (!parsed.success) {
    throw new ArtifactCorruptedError(
      `${where} is not an odoo-dr manifest: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
    );
  }
  if (parsed.data.version > MANIFEST_VERSION) {
    throw new ArtifactCorruptedError(
      `${where} has manifest version ${parsed.data.version}; this odoo-dr understands up to ${MANIFEST_VERSION}: upgrade odoo-dr`,
    );
  }
  const manifest = data as Manifest;
  const expected = manifestChecksum(manifest);
  if (expected !== manifest.checksum) {
    throw new ArtifactCorruptedError(`${where} was modified after it was written (its checksum does not match its content)`);
  }
  return manifest;
}

export async function readManifest(file: string): Promise<Manifest> {
  return parseManifest(await readFile(file, 'utf8'), file);
}
