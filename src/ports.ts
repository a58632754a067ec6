/**
 * Ports: the narrow interfaces that use cases in src/ take instead of the whole configuration, so
 * a use case states what it touches and a unit test can hand it a temporary folder or a fake.
 * Activities build them from the configuration (see the README's layout section for which use
 * case takes which). Only ports some use case takes are defined here; grow them with the use cases.
 */
import type { Ownership } from './restore/ownership';

/** Where backup sessions are read and written (a local folder, an S3 bucket prefix): src/sessions/store.ts. */
export type { SessionStore } from './sessions/store';

/** The Odoo filestore of the tenants on this host (`<ODOO_DATA_DIR>/filestore/<tenant>`). */
export interface TenantFilestore {
  /** Creates the filestore root when it is missing (a fresh host), owned like the Odoo data folder. */
  ensureRoot(): Promise<void>;
  /** The folder a recovery restores the tenant's files into before the swap (same file system as the tenant's). */
  shadowDir(tenant: string, id: string): string;
  /** Who the tenant's files belong to: its live folder's owner, else the filestore root's, else the data folder's. */
  ownerOf(tenant: string): Promise<Ownership | undefined>;
}
