/**
 * The tenants `npm run bench` generates (test/fixtures/odoo-tenants.ts), named `bench-<id>-<key>`
 * so that the run's clean-up finds them, and the files added to a filestore before an incremental
 * backup.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createTenant, type TenantInfo, type TenantSpec } from '../../test/fixtures/odoo-tenants';
import { MiB } from '../harness';
import type { Bench } from './bench';

/** Move lines for a database of about `mb` MiB (pg_database_size): ~10 MiB of schema, then ~242 bytes per line. */
export function moveLinesFor(mb: number): number {
  return Math.max(1000, Math.round(((mb - 10) * MiB) / 254));
}

/** Adds `count` new files (random content, named by their SHA-1 as Odoo names them) to a filestore. */
export function addFiles(dir: string, count: number, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const data = randomBytes(size);
    const sha = createHash('sha1').update(data).digest('hex');
    const file = path.join(dir, sha.slice(0, 2), sha);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, data);
    out.push(file);
  }
  return out;
}

/** The run's tenant `key`, created once (scenarios share it: fs and s3 use the same filestore tenant). */
export async function benchTenant(b: Bench, key: string, spec: Omit<TenantSpec, 'name'>): Promise<TenantInfo> {
  const name = `${b.prefix}-${key}`;
  const known = b.tenants.get(name);
  if (known) return known;
  b.check();
  const t0 = performance.now();
  const info = await createTenant(b.admin, b.dataDir, { ...spec, name });
  b.tenants.set(name, info);
  const createMs = performance.now() - t0;
  console.log(
    `  created ${name}: database ${((info.dbSizeBytes ?? 0) / MiB).toFixed(1)} MiB, ${info.fileCount.toLocaleString('en-US')} files ` +
      `(${(info.filestoreBytes / MiB).toFixed(1)} MiB) in ${(createMs / 1000).toFixed(1)} s`,
  );
  return info;
}

/** The filestore tenant of the fs and s3 scenarios: --files files of --file-size bytes, a small database. */
export async function filestoreTenant(b: Bench): Promise<TenantInfo> {
  const t = await benchTenant(b, 'fs', { moveLines: 500, files: b.p.files, fileSize: b.p.fileSize });
  b.scenarioInfo.fs = { tenant: t.name, files: t.fileCount, filestoreBytes: t.filestoreBytes, databaseBytes: t.dbSizeBytes };
  return t;
}

/** The fleet scenario's --fleet tiny tenants (their names). */
export async function fleetTenants(b: Bench): Promise<string[]> {
  const names: string[] = [];
  const t0 = performance.now();
  for (let i = 0; i < b.p.fleet; i++) {
    const key = `fleet-${String(i).padStart(3, '0')}`;
    const name = `${b.prefix}-${key}`;
    if (!b.tenants.has(name)) b.tenants.set(name, await createTenant(b.admin, b.dataDir, { name, moveLines: 20, files: 2, fileSize: 512, partners: 4 }));
    names.push(name);
    b.check();
  }
  console.log(`  created ${names.length} tiny tenants in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  b.scenarioInfo.fleet = {
    tenants: names.length,
    databaseBytes: [...b.tenants.values()].filter((x) => names.includes(x.name)).reduce((a, x) => a + (x.dbSizeBytes ?? 0), 0),
  };
  return names;
}
