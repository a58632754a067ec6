/**
 * Gathering the monitor's facts that do not need Temporal: tenants, the session catalog (local and
 * bucket, manifests' signatures verified as everywhere else), disks, PostgreSQL, Odoo's health URL,
 * memory and load. Every probe is independent: one that fails is reported as such, never throws.
 */
import { statfs } from 'node:fs/promises';
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import { readFile } from 'node:fs/promises';
import type { DrConfig } from '../config';
import { configSecrets } from '../config';
import { scrubSecrets } from '../errors';
import { sessionTime } from '../backup/layout';
import { checkHealth } from '../recovery/odoo-service';
import { withClient } from '../postgres';
import { SessionCatalog, type SessionResult } from '../sessions/catalog';
import { newestFirst } from '../sessions/store';
import { discoverTenants } from '../tenants';
import type { BackupRef, DiskFact, MonitorFacts, ResultRef } from './checks';

/** At most this many sessions are read per run, newest first (hourly backups: about a week locally). */
const MAX_SESSIONS = 200;

type Gathered = Omit<MonitorFacts, 'schedules' | 'worker'>;

export async function gatherHostFacts(config: DrConfig, now: Date): Promise<Gathered> {
  const secrets = configSecrets(config);
  const msg = (err: unknown) => scrubSecrets((err as Error).message ?? String(err), secrets);

  const [tenants, postgres, catalog, disks, odooHealth, resources] = await Promise.all([
    discoverTenants(config).then(
      (r) => ({ names: r.tenants.map((t) => t.name) }),
      (err: unknown) => ({ names: [] as string[], error: msg(err) }),
    ),
    withClient(config.postgres, config.postgres.maintenanceDb, async (c) => {
      const { rows } = await c.query<{ v: string; dir: string | null }>(
        // data_directory is readable by superusers and pg_read_all_settings only: null otherwise.
        "SELECT current_setting('server_version') AS v, current_setting('data_directory', true) AS dir",
      );
      return rows[0]!;
    }).then(
      (r) => ({ ok: true, detail: `PostgreSQL ${r.v.split(' ')[0]} at ${config.postgres.host}:${config.postgres.port}`, dataDir: r.dir }),
      (err: unknown) => ({ ok: false, detail: msg(err), dataDir: null as string | null }),
    ),
    readCatalog(config, now).catch((err: unknown): CatalogFacts => ({ error: msg(err) })),
    diskUsage('backup-dir', config.backupDir),
    odooHealthFact(config, msg),
    memoryAndLoad(),
  ]);

  const pgDisk: DiskFact = await pgDataDisk(config, postgres.ok, postgres.dataDir);
  return {
    at: now.toISOString(),
    tenants,
    backups: catalog.backups ?? {},
    ...(catalog.latestSession ? { latestSession: catalog.latestSession } : {}),
    ...(catalog.error ? { catalogError: catalog.error } : {}),
    cloud: catalog.cloud ?? { configured: Boolean(config.cloud) },
    ...(catalog.lastValidation ? { lastValidation: catalog.lastValidation } : {}),
    ...(catalog.lastDrill ? { lastDrill: catalog.lastDrill } : {}),
    disks: [disks, pgDisk],
    odooHealth,
    postgres: { ok: postgres.ok, detail: postgres.detail },
    resources,
  };
}

async function diskUsage(id: DiskFact['id'], dir: string): Promise<DiskFact> {
  try {
    const s = await statfs(dir);
    // As df: used / (used + available to unprivileged users).
    const used = (s.blocks - s.bfree) * s.bsize;
    const avail = s.bavail * s.bsize;
    return { id, path: dir, usedPercent: used + avail > 0 ? (used / (used + avail)) * 100 : 0, freeBytes: avail, totalBytes: s.blocks * s.bsize };
  } catch (err) {
    return { id, path: dir, unknown: `cannot measure ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
}

/** PostgreSQL's data directory is measurable only when the server runs on this host and we may read the setting. */
async function pgDataDisk(config: DrConfig, reachable: boolean, dataDir: string | null): Promise<DiskFact> {
  const id = 'postgres-data' as const;
  if (!reachable) return { id, unknown: 'PostgreSQL unreachable' };
  if (!dataDir) return { id, unknown: `data_directory not readable by ${config.postgres.user} (needs pg_read_all_settings)` };
  const local = ['localhost', '127.0.0.1', '::1'].includes(config.postgres.host) || config.postgres.host.startsWith('/');
  if (!local) return { id, path: dataDir, unknown: `PostgreSQL runs on ${config.postgres.host}, not on this host` };
  const fact = await diskUsage(id, dataDir);
  return fact.unknown ? { id, path: dataDir, unknown: `${dataDir} is not visible from this host (another container or host?)` } : fact;
}

async function odooHealthFact(config: DrConfig, msg: (e: unknown) => string): Promise<MonitorFacts['odooHealth']> {
  if (!config.odoo.healthUrl) return { configured: false };
  try {
    const [h] = await checkHealth(config, [], { timeoutMs: 10_000 });
    return { configured: true, ok: h!.status === 'pass', detail: scrubSecrets(h!.message, configSecrets(config)) };
  } catch (err) {
    return { configured: true, ok: false, detail: msg(err) };
  }
}

/** MemAvailable from /proc/meminfo (what Linux can give without swapping); os.freemem elsewhere. */
async function memoryAndLoad(): Promise<MonitorFacts['resources']> {
  let available = freemem();
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(await readFile('/proc/meminfo', 'utf8'));
    if (m) available = Number(m[1]) * 1024;
  } catch {
    /* not Linux */
  }
  return { memTotalBytes: totalmem(), memAvailableBytes: available, load1: loadavg()[0] ?? 0, cpus: cpus().length };
}

interface CatalogFacts {
  backups?: MonitorFacts['backups'];
  latestSession?: MonitorFacts['latestSession'];
  cloud?: MonitorFacts['cloud'];
  lastValidation?: ResultRef;
  lastDrill?: ResultRef;
  error?: string;
}

const resultRef = (r: SessionResult): ResultRef => ({
  session: r.session,
  status: r.status,
  finishedAt: r.finishedAt,
  workflowId: r.workflowId,
  failures: r.failures,
});

/**
 * Newest complete and newest validated backup per tenant, the newest session, its cloud copy, and
 * the newest validation and drill results, from verified manifests (a session whose signature does
 * not verify counts for nothing).
 */
async function readCatalog(config: DrConfig, now: Date): Promise<CatalogFacts> {
  const catalog = SessionCatalog.fromConfig(config);
  let cloudNames: string[] = [];
  let cloudError: string | undefined;
  if (catalog.cloud) {
    try {
      cloudNames = await catalog.cloud.sessionNames();
    } catch (err) {
      cloudError = scrubSecrets((err as Error).message, configSecrets(config));
    }
  }
  const localNames = await catalog.local.sessionNames();
  const names = newestFirst([...localNames, ...cloudNames])
    .filter((n) => sessionTime(n).getTime() <= now.getTime() + 3_600_000)
    .slice(0, MAX_SESSIONS);
  const backups: NonNullable<CatalogFacts['backups']> = {};
  const out: CatalogFacts = { backups };
  for (const name of names) {
    let opened;
    try {
      opened = await catalog.open(name, cloudError ? 'local' : 'auto');
    } catch {
      continue; // running, crashed or not verifiable: not a backup
    }
    const m = opened.manifest;
    const ref: BackupRef = { session: name, at: sessionTime(name).toISOString() };
    const complete = Object.entries(m.tenants)
      .filter(([, t]) => t.status === 'complete')
      .map(([t]) => t);
    if (!out.latestSession) {
      out.latestSession = { ...ref, status: m.status, tenants: complete };
      if (catalog.cloud) out.cloud = await cloudState(catalog, name, opened.store.location, cloudError);
    }
    // A result dated in the future (a wrong clock, a forged document) would stay "the newest" and
    // hide every real one after it: beyond the skew sessions are allowed, it is not counted.
    const results = (await catalog.results(name).catch(() => [] as SessionResult[])).filter((r) => Date.parse(r.finishedAt) <= now.getTime() + 3_600_000);
    const validation = results.filter((r) => r.kind === 'validation');
    const drill = results.find((r) => r.kind === 'drill');
    if (drill && (!out.lastDrill || drill.finishedAt > out.lastDrill.finishedAt)) out.lastDrill = resultRef(drill);
    if (validation[0] && (!out.lastValidation || validation[0].finishedAt > out.lastValidation.finishedAt)) out.lastValidation = resultRef(validation[0]);
    for (const t of complete) {
      const b = (backups[t] ??= {});
      b.lastComplete ??= ref;
      // The newest result that covers the tenant (whole session or that tenant) decides.
      const verdict = validation.find((r) => r.tenant === undefined || r.tenant === t);
      if (verdict?.status === 'pass') b.lastValidated ??= ref;
    }
  }
  if (!out.cloud && catalog.cloud) out.cloud = { configured: true, ...(cloudError ? { error: cloudError } : {}) };
  return out;
}

async function cloudState(
  catalog: SessionCatalog,
  session: string,
  foundIn: 'local' | 'cloud',
  cloudError: string | undefined,
): Promise<MonitorFacts['cloud']> {
  if (cloudError) return { configured: true, session, error: cloudError };
  if (foundIn === 'cloud') return { configured: true, session, state: 'equal' }; // this host has no local copy to compare
  try {
    const [local, cloud] = await Promise.all([catalog.local.manifestText(session), catalog.cloud!.manifestText(session)]);
    const [ls, cs] = await Promise.all([catalog.local.signatureText(session), catalog.cloud!.signatureText(session)]);
    if (cloud === undefined) return { configured: true, session, state: 'missing' };
    return { configured: true, session, state: local === cloud && ls === cs ? 'equal' : 'different' };
  } catch (err) {
    return { configured: true, session, error: (err as Error).message };
  }
}
