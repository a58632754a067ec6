/**
 * How a backup session's tenants are grouped into activities (pure and deterministic: used by
 * backupWorkflow, unit-tested alone).
 *
 * A tenant's fixed cost (a snapshot, three processes, the filestore walk, its entry) dwarfs the dump
 * of a tiny database, and each activity costs the orchestration a few round trips to Temporal. Small
 * tenants therefore go several to one activity (`backupTenants`, which heartbeats each finished
 * tenant so that a retry skips them); every other tenant is one activity of its own (`backupTenant`),
 * as before, with its own heartbeats, resume point and retries.
 */

export interface BatchSettings {
  /** Tenants whose database is at most this size (pg_database_size) may share an activity; 0: never. */
  smallBytes: number;
  /** At most this many tenants in one activity (1: no batches). */
  maxTenants: number;
  /** About this many database bytes at most in one activity. */
  maxBytes: number;
  /**
   * Tenants in each of the first `parallel` batches. Each tenant's lock is taken before its batch
   * starts, one lock after the other: small first batches get every slot working early, and the
   * locks of the next batches are taken while they run.
   */
  firstTenants: number;
  /** Units made ready ahead (locks taken) while every slot is busy; default: as many as slots (a round). */
  ahead?: number;
}

export const DEFAULT_BATCH: BatchSettings = { smallBytes: 64 * 1024 * 1024, maxTenants: 10, maxBytes: 256 * 1024 * 1024, firstTenants: 3 };

export interface PlannedUnit {
  /** Several small tenants in one `backupTenants` activity; otherwise one tenant, one `backupTenant`. */
  batch: boolean;
  tenants: string[];
  /** Σ database bytes (for the order). */
  bytes: number;
}

type Sized = { name: string; databaseBytes: number };

/**
 * Deals `tenants` (largest first) into `count` batches: each to the batch with the fewest bytes so
 * far (then the fewest tenants) that still has room for `max` tenants. Sizes and counts even out.
 */
function deal(tenants: Sized[], count: number, max: number): PlannedUnit[] {
  const batches = Array.from({ length: count }, () => ({ tenants: [] as string[], bytes: 0 }));
  for (const t of tenants) {
    let best: (typeof batches)[number] | undefined;
    for (const b of batches) {
      if (b.tenants.length >= max) continue;
      if (!best || b.bytes < best.bytes || (b.bytes === best.bytes && b.tenants.length < best.tenants.length)) best = b;
    }
    best!.tenants.push(t.name);
    best!.bytes += t.databaseBytes;
  }
  return batches.filter((b) => b.tenants.length > 0).map((b) => ({ batch: b.tenants.length > 1, tenants: b.tenants, bytes: b.bytes }));
}

/**
 * Units of work, in the order to start them: the largest tenants first, one each (a big tenant
 * started last would make the session as long as its own backup); then the small ones in batches:
 * a first round of `parallel` batches of `firstTenants`, then the rest in a number of batches that is
 * a multiple of `parallel` (the last round keeps every slot busy) and large enough for `maxTenants`
 * and `maxBytes`. With no more small tenants than `parallel`, each is a unit of its own.
 */
export function planBackupUnits(tenants: Sized[], parallel: number, settings: BatchSettings = DEFAULT_BATCH): PlannedUnit[] {
  const bySize = [...tenants].sort((a, b) => b.databaseBytes - a.databaseBytes || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const canBatch = settings.maxTenants > 1 && settings.smallBytes > 0;
  const small = canBatch ? bySize.filter((t) => t.databaseBytes <= settings.smallBytes) : [];
  const large = bySize.filter((t) => !small.includes(t));
  const units: PlannedUnit[] = large.map((t) => ({ batch: false, tenants: [t.name], bytes: t.databaseBytes }));
  const p = Math.max(1, parallel);
  if (small.length <= p) return [...units, ...small.map((t) => ({ batch: false, tenants: [t.name], bytes: t.databaseBytes }))];
  const first = Math.max(1, Math.min(settings.firstTenants, settings.maxTenants));
  const firstRound = small.slice(0, p * first);
  const rest = small.slice(firstRound.length);
  units.push(...deal(firstRound, p, first));
  if (rest.length > 0) {
    const bytes = rest.reduce((sum, t) => sum + t.databaseBytes, 0);
    const needed = Math.max(Math.ceil(rest.length / settings.maxTenants), Math.ceil(bytes / Math.max(1, settings.maxBytes)));
    units.push(...deal(rest, Math.min(rest.length, p * Math.ceil(needed / p)), settings.maxTenants));
  }
  return units;
}
