/** The TenantFilestore port over the local disk: ODOO_DATA_DIR's filestore folder. */
import { mkdir, stat } from 'node:fs/promises';
import type { TenantFilestore } from '../ports';
import { applyOwnership, ownershipOf } from '../restore/ownership';
import { filestoreDir, filestoreShadowDir } from './names';

export interface FilestoreSettings {
  /** `<ODOO_DATA_DIR>/filestore`. */
  filestoreRoot: string;
  /** ODOO_DATA_DIR. */
  dataDir: string;
}

export function localTenantFilestore(settings: FilestoreSettings): TenantFilestore {
  const paths = { odoo: { filestoreRoot: settings.filestoreRoot } };
  return {
    async ensureRoot() {
      if (await stat(settings.filestoreRoot).catch(() => undefined)) return;
      await mkdir(settings.filestoreRoot, { recursive: true });
      const owner = await ownershipOf([settings.dataDir]);
      if (owner) await applyOwnership(settings.filestoreRoot, owner);
    },
    shadowDir: (tenant, id) => filestoreShadowDir(paths, tenant, id),
    ownerOf: (tenant) => ownershipOf([filestoreDir(paths, tenant), settings.filestoreRoot, settings.dataDir]),
  };
}
