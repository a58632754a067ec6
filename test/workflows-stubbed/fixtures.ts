/* eslint-disable @typescript-eslint/require-await -- stubbed activities are async functions that have nothing to wait for */
/** Results the stubbed activities return: the shapes of activities/index.ts, filled with small plausible values. */
import type { Activities, TenantBackupDone } from '../../activities';
import { uniqueSuffix } from '../helpers/config';
import type { StubImpls } from './stubs';

type Plan = Awaited<ReturnType<Activities['planRecovery']>>;

export const SESSION = 'backup_20261126_020000_stubbed0';

/** Tenant names unique to one test: their lock workflows (`lock/tenant/<name>`) never meet another test's. */
export function tenantNames(...prefixes: string[]): string[] {
  const s = uniqueSuffix();
  return prefixes.map((p) => `${p}-${s}`);
}

/** A plan of `tenants`, one shadow and one swap at a time (the calls then come in a fixed order). */
export function recoveryPlan(tenants: string[], extra: Partial<Plan> = {}): Plan {
  return {
    session: SESSION,
    mode: 'full',
    fromCloud: false,
    readFrom: 'local',
    sessionStartedAt: '2026-11-26T02:00:00.000Z',
    site: false,
    globals: false,
    parallelism: 1,
    rtoMinutes: 240,
    alreadyRecovered: [],
    tenants: tenants.map((tenant) => ({
      tenant,
      exists: true,
      filestoreExists: true,
      currentDatabaseBytes: 1000,
      dumpBytes: 500,
      filestoreFiles: 3,
      filestoreBytes: 300,
      steps: [],
    })),
    space: [],
    expectedMinutes: undefined,
    warnings: [],
    validation: 'pass',
    ...extra,
  };
}

const ok = async () => undefined;
const delivered = async () => ({ email: 'sent' as const, webhook: 'not configured' as const });

export function recoveryImpls(plan: Plan): StubImpls {
  return {
    planRecovery: async () => plan,
    appendAuditRecord: ok,
    sendAlert: delivered,
    prepareRecoveryShadow: async () => ({ checks: [], bytes: 1234 }),
    dropRecoveryShadow: ok,
    stopOdoo: async () => ({ ran: true, output: 'stopped', durationMs: 1 }),
    startOdoo: async () => ({ ran: true, output: 'started', durationMs: 1 }),
    swapInTenant: async () => ({ downtimeMs: 5 }),
    swapBackTenant: ok,
    checkRecoveryHealth: async ({ tenants }) => [
      { name: 'odoo-http', status: 'pass', message: 'HTTP 200' },
      ...tenants.map((t) => ({ name: `tenant:${t}`, status: 'pass' as const, message: 'answers' })),
    ],
    markTenantRecovered: ok,
  };
}

export function tenantDone(): TenantBackupDone {
  return {
    entry: { status: 'complete', durationMs: 10 },
    databaseBytes: 100,
    filestore: { files: 2, bytes: 20, blobsStored: 2, blobsReused: 0, blobsUploaded: 0 } as TenantBackupDone['filestore'],
  };
}

/**
 * A backup session's activities. `sizes`: each tenant's database size (small ones are batched).
 * The manifest's status is derived from the tenants the workflow reports, as finalisation does:
 * complete when all are, failed when none is, partial otherwise.
 */
export function backupImpls(sizes: Record<string, number>, cloud = false): StubImpls {
  return {
    discoverTenants: async ({ include } = {}) => ({
      tenants: Object.entries(sizes)
        .filter(([name]) => !include || include.includes(name))
        .map(([name, databaseBytes]) => ({ name, databaseBytes, filestoreDir: `/srv/odoo/filestore/${name}`, filestoreExists: true, connectable: true })),
      excluded: [],
      missing: (include ?? []).filter((n) => !(n in sizes)),
      invalidNames: [],
      odooRole: 'odoo',
    }),
    prepareBackupSession: async ({ session }) => ({
      session,
      postgres: { server: '16.4', serverMajor: 16, pgDump: '16.4' },
      recipients: ['age1stub'],
      cloud: cloud ? { bucket: 'stub', prefix: 'backups' } : null,
      maxParallel: 2,
      workerQueue: undefined,
    }),
    backupTenant: async () => tenantDone(),
    backupTenants: async ({ tenants }) => ({ tenants: Object.fromEntries(tenants.map((t) => [t, { status: 'complete' as const, done: tenantDone() }])) }),
    backupClusterGlobals: async () => ({ name: 'globals.sql.age', bytes: 10, sha256: 'x' }) as never,
    backupConfiguration: async () => ({ artifact: { name: 'config.tar.age', bytes: 10, sha256: 'y' }, warnings: [] }) as never,
    finalizeBackupSession: async ({ session, tenants }) => {
      const statuses = Object.values(tenants).map((t) => t.status);
      const status = statuses.every((s) => s === 'complete') ? 'complete' : statuses.every((s) => s === 'failed') ? 'failed' : 'partial';
      return { session, status, manifestPath: `/backups/${session}/manifest.json`, tenants, warnings: [] };
    },
    applyBackupRetention: async () => ({ localDeleted: [], cloudDeleted: [] }) as never,
    appendAuditRecord: ok,
    sendAlert: delivered,
  };
}
