#!/usr/bin/env bash
# `npm run demo`: the main job on the embedded local stack with sample tenants.
# Installs what is missing, starts the stack, loads the sample tenants (generated ones and the
# real Odoo 17 backup), runs an odoo-dr worker, discovers the tenants and backs them all up
# (local disk and the local S3 server), validates the session with real restore tests and runs a
# restore-only drill, then simulates a disaster (a tenant's database dropped) and recovers it from
# the S3 copy, and ends with a site loss: a second, empty cluster and a new Temporal server recover
# every tenant from the bucket alone. All through Temporal.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
. "$here/lib.sh"
CONFIG=config/dr-config.local.env
"$here/ensure-node-modules.sh"
"$here/stack.sh" up
timed build npx tsc -p tsconfig.json

# The configuration odoo-dr archives with every session (DR_CONFIG_PATHS of the local stack).
mkdir -p "$ODOO_DR_STACK/odoo-config"
[[ -f "$ODOO_DR_STACK/odoo-config/odoo.conf" ]] || printf '[options]\ndb_user = odoo\nworkers = 4\n' > "$ODOO_DR_STACK/odoo-config/odoo.conf"

log "loading the sample tenants (generated Odoo-like tenants + the real Odoo 17 backup)"
node dist/scripts/fixtures.js --config "$CONFIG" sample

worker_log="$ODOO_DR_STACK/demo-worker.log"
log "starting an odoo-dr worker (log: $worker_log)"
node bin/odoo-dr --config "$CONFIG" worker >"$worker_log" 2>&1 &
worker=$!
trap 'kill -TERM $worker 2>/dev/null; wait $worker 2>/dev/null || true' EXIT
for _ in $(seq 1 150); do grep -q "state: 'RUNNING'" "$worker_log" 2>/dev/null && break; sleep 0.2; done

echo
echo "== odoo-dr tenants (tenantDiscoveryWorkflow on the Temporal dev server)"
node bin/odoo-dr --config "$CONFIG" tenants
echo
echo "== odoo-dr backup --wait (backupWorkflow: every tenant to $ODOO_DR_STACK/backups and to s3://$S3_BUCKET/backups)"
node bin/odoo-dr --config "$CONFIG" backup --wait
echo
echo "== odoo-dr sessions list --cloud"
node bin/odoo-dr --config "$CONFIG" sessions list --cloud | head -n 6
echo
echo "== odoo-dr validate latest --restore-test --wait (validationWorkflow: checksums, decryption, archives, blobs, restore into neutralized scratch copies)"
node bin/odoo-dr --config "$CONFIG" validate latest --restore-test --wait || true
echo
echo "== odoo-dr drill -m restore-only --wait (drillWorkflow: achieved RPO, restore rate, projected fleet RTO)"
node bin/odoo-dr --config "$CONFIG" drill -m restore-only --wait || true
echo
echo "== disaster: the database of tenant globex-eu is lost (DROP DATABASE)"
export PGHOST=127.0.0.1 PGPORT="$PG_PORT" PGUSER=postgres PGPASSWORD="$(cat "$ODOO_DR_STACK/secrets/postgres.password")"
checksum() { "$PG_BIN/psql" -Atq -d "$1" -c "SELECT count(*) || ' rows, md5 ' || md5(string_agg(l::text, '' ORDER BY l.id)) FROM account_move_line l" 2>/dev/null || echo "(no database)"; }
before_globex=$(checksum globex-eu); before_acme=$(checksum acme)
echo "globex-eu before: $before_globex"
"$PG_BIN/psql" -q -d postgres -c 'DROP DATABASE "globex-eu" WITH (FORCE)'
echo "globex-eu now:    $(checksum globex-eu)"
echo
echo "== odoo-dr recover -m database-only -c --tenant globex-eu --yes --wait (recoveryWorkflow, from the S3 copy)"
node bin/odoo-dr --config "$CONFIG" recover -m database-only -c --tenant globex-eu --yes --wait || true
after_globex=$(checksum globex-eu); after_acme=$(checksum acme)
echo "globex-eu after:  $after_globex  $([[ "$after_globex" == "$before_globex" ]] && echo '(back as backed up)' || echo '(DIFFERENT!)')"
echo "acme untouched:   $after_acme  $([[ "$after_acme" == "$before_acme" ]] && echo '(unchanged)' || echo '(CHANGED!)')"
echo
echo "== site loss: the whole host is gone. A new host (empty PostgreSQL cluster, empty folders, new Temporal server) gets only the configuration, the bucket and the key"
node dist/scripts/site-loss-demo.js
echo
echo "Temporal Web UI: http://127.0.0.1:$TEMPORAL_UI_PORT/namespaces/default/workflows (workflow IDs backup/<session>, backup/<session>/<tenant>)"
echo "Stop the stack with: npm run stack:down"
