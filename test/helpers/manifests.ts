/** A minimal sealed manifest's text, as a backup writes it (tests of the session stores and catalog). */
import { sealManifest, MANIFEST_FORMAT, MANIFEST_VERSION } from '../../src/backup/manifest';

export function manifestText(
  session: string,
  status: 'complete' | 'partial' = 'complete',
  tenants: Record<string, 'complete' | 'failed'> = { acme: 'complete' },
): string {
  const m = sealManifest({
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    session,
    status,
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: '2026-01-01T00:01:00.000Z',
    startedBy: 'test',
    workflowId: `backup/${session}`,
    host: 'test',
    postgres: { server: '15.0', pgDump: '15.0' },
    encryption: { format: 'age', recipients: [] },
    compression: { format: 'zstd', level: 1 },
    cloud: null,
    tenants: Object.fromEntries(Object.entries(tenants).map(([t, status]) => [t, { status, durationMs: 1 }])),
    warnings: [],
  });
  return `${JSON.stringify(m, null, 2)}\n`;
}
