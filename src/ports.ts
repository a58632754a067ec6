/**
 * Ports: the narrow interfaces that use cases in src/ take instead of the whole configuration, so
 * a use case states what it touches and a unit test can hand it a temporary folder or a fake.
 * Activities build them from the configuration (see the README's layout section for which use
 * case takes which). Only ports some use case takes are defined here; grow them with the use cases.
 * Built from the configuration: SessionStore (src/sessions/store.ts), TenantFilestore
 * (src/recovery/tenant-filestore.ts `localTenantFilestore`), ShadowDatabases
 * (src/recovery/shadow-databases.ts `clusterShadowDatabases`), Notifier (src/notify.ts `configNotifier`); Clock is `systemClock`.
 */
import type { Check } from './odoo/checks';
import type { RestoreShadowOptions, RestoreShadowResult, VerifyShadowOptions } from './recovery/shadow';
import type { Ownership } from './restore/ownership';

/** The time a use case reads ("now"): the system's, or a fixed one in a unit test. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

export type Severity = 'info' | 'warning' | 'critical';

export interface Alert {
  severity: Severity;
  subject: string;
  text: string;
}

/** What became of an alert on each channel; a failing channel is reported here, never thrown. */
export interface AlertDelivery {
  email: 'sent' | 'not configured' | `failed: ${string}`;
  webhook: 'sent' | 'not configured' | `failed: ${string}`;
}

/** Where alerts go (the configured e-mail and webhook channels): src/notify.ts `configNotifier`. */
export interface Notifier {
  send(alert: Alert): Promise<AlertDelivery>;
}

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

/**
 * The PostgreSQL side of a recovery's shadow copy, over the cluster (src/recovery/shadow-databases.ts):
 * restore a session's dump (and filestore) into `<tenant>_dr_shadow_<id>`, verify it like the real
 * tenant, measure it, drop it.
 */
export interface ShadowDatabases {
  restore(req: Omit<RestoreShadowOptions, 'config'>): Promise<RestoreShadowResult>;
  verify(req: Omit<VerifyShadowOptions, 'config'>): Promise<Check[]>;
  /** The database's size on the server, in bytes. */
  sizeOf(database: string): Promise<number>;
  drop(tenant: string, id: string): Promise<void>;
}
