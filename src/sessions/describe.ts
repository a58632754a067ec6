/**
 * One session described for an operator (`odoo-dr sessions show`): where it was read from, whether
 * its manifest's signature verified and by whom, each tenant's sizes and Odoo facts, what else it
 * holds, and its validation and drill results. Read only through the catalog, so nothing unverified
 * is shown as if it were the session.
 */
import type { Manifest } from '../backup/manifest';
import type { SessionCatalog, SessionResult, SessionSource, ValidationState } from './catalog';

export interface TenantDescription {
  status: 'complete' | 'failed';
  error?: string;
  durationMs: number;
  database?: { bytes: number; path: string };
  filestore?: { files: number; bytes: number; filesStored: number; filesReused: number; mismatched: number };
  odoo?: { series?: string; modules: number; attachments: number; databaseUuid?: string };
}

/** What the manifest says of the session as a whole (`cloud`: the bucket copy it records, null: local only). */
type ManifestFacts = Pick<
  Manifest,
  'session' | 'status' | 'startedAt' | 'finishedAt' | 'startedBy' | 'workflowId' | 'host' | 'postgres' | 'compression' | 'cloud' | 'warnings'
>;

export interface SessionDescription extends ManifestFacts {
  /** The store it was read from (`local` or `cloud`) and its readable place. */
  location: 'local' | 'cloud';
  where: string;
  /** Fingerprint of the trusted key whose signature verified; absent: unsigned, accepted by --allow-unsigned. */
  signedBy?: string;
  tenants: Record<string, TenantDescription>;
  /** Stored bytes of the session's own artifacts (dumps, indexes, globals, configuration; packs are shared). */
  bytes: number;
  globals: boolean;
  config: { paths: number; missing: string[] } | null;
  validation: ValidationState;
  /** Validation and drill results kept with the session, newest first. */
  results: SessionResult[];
}

export async function describeSession(catalog: SessionCatalog, session: string, source: SessionSource): Promise<SessionDescription> {
  const opened = await catalog.open(session, source);
  const m = opened.manifest;
  const results = await catalog.results(session);
  const tenants: Record<string, TenantDescription> = {};
  let bytes = (m.globals?.bytes ?? 0) + (m.config?.bytes ?? 0);
  for (const [name, t] of Object.entries(m.tenants).sort(([a], [b]) => (a < b ? -1 : 1))) {
    bytes += (t.database?.bytes ?? 0) + (t.filestore?.index.bytes ?? 0);
    tenants[name] = {
      status: t.status,
      ...(t.error ? { error: t.error } : {}),
      durationMs: t.durationMs,
      ...(t.database ? { database: { bytes: t.database.bytes, path: t.database.path } } : {}),
      ...(t.filestore
        ? {
            filestore: {
              files: t.filestore.files,
              bytes: t.filestore.bytes,
              filesStored: t.filestore.blobsStored,
              filesReused: t.filestore.blobsReused,
              mismatched: t.filestore.mismatched.length,
            },
          }
        : {}),
      ...(t.odoo
        ? {
            odoo: {
              ...(t.odoo.series ? { series: t.odoo.series } : {}),
              modules: Object.keys(t.odoo.modules).length,
              attachments: t.odoo.attachments.rows,
              ...(t.odoo.databaseUuid ? { databaseUuid: t.odoo.databaseUuid } : {}),
            },
          }
        : {}),
    };
  }
  return {
    session,
    location: opened.store.location,
    where: opened.store.description,
    status: m.status,
    ...(opened.signedBy ? { signedBy: opened.signedBy } : {}),
    startedAt: m.startedAt,
    finishedAt: m.finishedAt,
    startedBy: m.startedBy,
    workflowId: m.workflowId,
    host: m.host,
    postgres: m.postgres,
    compression: m.compression,
    cloud: m.cloud,
    tenants,
    bytes,
    globals: m.globals !== undefined,
    config: m.config ? { paths: m.config.paths.length, missing: m.config.missing } : null,
    warnings: m.warnings,
    validation: results.find((r) => r.kind === 'validation')?.status ?? 'never',
    results,
  };
}
