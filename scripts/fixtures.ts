/**
 * Fixture CLI (compiled to dist/scripts/fixtures.js):
 *
 *   node dist/scripts/fixtures.js sample|create|drop|real [--name N] [--move-lines N] [--files N]
 *        [--file-size N] [--partners N] [--seed N] [--data-dir DIR] [--zip FILE] [--no-real]
 *        [--config FILE] [--json]
 *
 *   sample   the demo fleet: SAMPLE_TENANTS + the real Odoo 17 tenant 'odoo17-demo' + non-tenant databases
 *   create   one generated tenant (--name required)
 *   drop     drop a tenant database and its filestore (--name required)
 *   real     load the real Odoo 17 backup (--name, default 'odoo17-demo'; --zip to use another Odoo zip)
 *
 * Connection settings come from the env file given by --config (dotenv format; default
 * config/dr-config.local.env when it exists) then the process environment: POSTGRES_HOST,
 * POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE, ODOO_DB_USER,
 * ODOO_DB_PASSWORD or ODOO_DB_PASSWORD_FILE (optional), ODOO_DATA_DIR.
 * This is deliberately minimal; the real configuration module lives in src/.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as dotenv from 'dotenv';
import { createNonTenants, createSampleFleet, createTenant, dropTenant, NON_TENANT_NAMES, REAL_ODOO_TENANT } from '../test/fixtures/odoo-tenants';
import type { PgAdminConnection, TenantInfo } from '../test/fixtures/odoo-tenants';
import { loadRealOdooTenant } from '../test/fixtures/real-odoo';

const USAGE = `usage: fixtures.js sample|create|drop|real [--name N] [--move-lines N] [--files N] [--file-size N]
       [--partners N] [--seed N] [--data-dir DIR] [--zip FILE] [--no-real] [--config FILE] [--json]`;

interface Args {
  command: string;
  flags: Map<string, string | true>;
}

const VALUE_FLAGS = new Set(['name', 'move-lines', 'files', 'file-size', 'partners', 'seed', 'data-dir', 'zip', 'config', 'owner']);
const BOOL_FLAGS = new Set(['json', 'no-real', 'help']);

function parseArgs(argv: string[]): Args {
  const flags = new Map<string, string | true>();
  let command = '';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--')) {
      const [k, inline] = a.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
      if (BOOL_FLAGS.has(k)) flags.set(k, true);
      else if (VALUE_FLAGS.has(k)) {
        const v = inline ?? argv[++i];
        if (v === undefined) throw new Error(`--${k} needs a value`);
        flags.set(k, v);
      } else throw new Error(`unknown option --${k}`);
    } else if (!command) command = a;
    else throw new Error(`unexpected argument ${JSON.stringify(a)}`);
  }
  return { command, flags };
}

function intFlag(args: Args, name: string): number | undefined {
  const v = args.flags.get(name);
  if (v === undefined) return undefined;
  const n = Number(String(v).replace(/_/g, ''));
  if (typeof v !== 'string' || !Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer`);
  return n;
}

function strFlag(args: Args, name: string): string | undefined {
  const v = args.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

function loadSettings(configFile: string | undefined): {
  admin: PgAdminConnection;
  owner: string;
  ownerPassword?: string;
  dataDir?: string;
} {
  let fileVars: Record<string, string> = {};
  const file = configFile ?? (fs.existsSync('config/dr-config.local.env') ? 'config/dr-config.local.env' : undefined);
  if (file) fileVars = dotenv.parse(fs.readFileSync(file));
  const get = (k: string): string | undefined => fileVars[k] ?? process.env[k] ?? undefined;
  const secret = (k: string): string | undefined => {
    const direct = get(k);
    if (direct !== undefined) return direct;
    const f = get(`${k}_FILE`);
    return f ? fs.readFileSync(path.resolve(f), 'utf8').replace(/\r?\n$/, '') : undefined;
  };
  const port = Number(get('POSTGRES_PORT') ?? '5432');
  if (!Number.isInteger(port) || port <= 0) throw new Error('POSTGRES_PORT must be a port number');
  const user = get('POSTGRES_USER') ?? 'postgres';
  return {
    admin: { host: get('POSTGRES_HOST') ?? '127.0.0.1', port, user, password: secret('POSTGRES_PASSWORD') },
    owner: get('ODOO_DB_USER') ?? user,
    ownerPassword: secret('ODOO_DB_PASSWORD'),
    dataDir: get('ODOO_DATA_DIR'),
  };
}

function line(t: TenantInfo): string {
  const rows = Object.values(t.tables).reduce((a, b) => a + b, 0);
  const aml = t.tables['account_move_line'];
  return `${t.name.padEnd(24)} owner=${t.owner} rows=${rows}${aml !== undefined ? ` (move lines ${aml})` : ''} attachments=${t.attachmentCount} files=${t.fileCount} bytes=${t.filestoreBytes}${t.dbSizeBytes ? ` db=${(t.dbSizeBytes / 1048576).toFixed(1)}MiB` : ''}`;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.flags.has('help') || !args.command) {
    process.stdout.write(`${USAGE}\n`);
    if (!args.flags.has('help')) process.exitCode = 2;
    return;
  }
  const settings = loadSettings(strFlag(args, 'config'));
  const owner = strFlag(args, 'owner') ?? settings.owner;
  const dataDir = strFlag(args, 'data-dir') ?? settings.dataDir;
  if (!dataDir) throw new Error('no data dir: give --data-dir or set ODOO_DATA_DIR');
  const json = args.flags.has('json');
  const name = strFlag(args, 'name');
  const started = Date.now();
  let tenants: TenantInfo[] = [];
  let nonTenants: string[] = [];
  let dropped: string | undefined;

  switch (args.command) {
    case 'sample': {
      tenants = await createSampleFleet(settings.admin, dataDir, {
        withRealOdoo: !args.flags.has('no-real'),
        owner,
        ownerPassword: settings.ownerPassword,
        zipPath: strFlag(args, 'zip'),
      });
      nonTenants = [NON_TENANT_NAMES.otherOwner, NON_TENANT_NAMES.template, NON_TENANT_NAMES.noConnect];
      break;
    }
    case 'create': {
      if (!name) throw new Error('create needs --name');
      tenants = [
        await createTenant(settings.admin, dataDir, {
          name,
          owner,
          moveLines: intFlag(args, 'move-lines'),
          files: intFlag(args, 'files'),
          fileSize: intFlag(args, 'file-size'),
          partners: intFlag(args, 'partners'),
          seed: intFlag(args, 'seed'),
        }),
      ];
      break;
    }
    case 'drop': {
      if (!name) throw new Error('drop needs --name');
      await dropTenant(settings.admin, dataDir, name);
      dropped = name;
      break;
    }
    case 'real': {
      tenants = [
        await loadRealOdooTenant(settings.admin, dataDir, {
          name: name ?? REAL_ODOO_TENANT,
          owner,
          ownerPassword: settings.ownerPassword,
          zipPath: strFlag(args, 'zip'),
        }),
      ];
      break;
    }
    case 'non-tenants': {
      nonTenants = await createNonTenants(settings.admin, { odooRole: owner });
      break;
    }
    default:
      throw new Error(`unknown command ${JSON.stringify(args.command)}\n${USAGE}`);
  }

  const seconds = (Date.now() - started) / 1000;
  if (json) {
    process.stdout.write(`${JSON.stringify({ command: args.command, seconds, tenants, nonTenants, dropped }, null, 2)}\n`);
    return;
  }
  for (const t of tenants) process.stdout.write(`${line(t)}\n`);
  for (const n of nonTenants) process.stdout.write(`${n.padEnd(24)} (non-tenant: Odoo must not list it)\n`);
  if (dropped) process.stdout.write(`dropped ${dropped}\n`);
  process.stdout.write(`done in ${seconds.toFixed(1)} s\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`fixtures: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
