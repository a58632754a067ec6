#!/usr/bin/env bash
# `npm run demo`: the main job on the embedded local stack with sample tenants.
# Installs what is missing, starts the stack, loads the sample tenants (generated ones and the
# real Odoo 17 backup), runs an odoo-dr worker, discovers the tenants and backs them all up
# (local disk and the local S3 server), validates the session with real restore tests and runs a
# restore-only drill, then simulates a disaster (a tenant's database dropped) and recovers it from
# the S3 copy, and ends with a site loss: a second, empty cluster and a new Temporal server recover
# every tenant from the bucket alone. On the way it applies the schedules, runs a monitoring check
# and shows the alerts odoo-dr sent (caught by the stack's SMTP and webhook catcher). All through Temporal.
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

# The demo works on its sample tenants only, whatever else the stack's cluster holds (tests' tenants).
export DR_TENANTS="acme,globex-eu,initech.fr,odoo17-demo"
# Alerts of this demo go to the stack's catcher (scripts/alert-catcher.js): e-mail and webhook.
export DR_SMTP_HOST=127.0.0.1 DR_SMTP_PORT="$ALERT_SMTP_PORT" DR_SMTP_FROM=odoo-dr@local-stack.test
export DR_NOTIFICATION_EMAIL=ops@local-stack.test DR_WEBHOOK_URL="http://127.0.0.1:$ALERT_HTTP_PORT/hook"
inbox="$ODOO_DR_STACK/alerts/inbox.jsonl"
inbox_start=$( { cat "$inbox" 2>/dev/null || true; } | wc -l)
# What the catcher received since the demo started: channel, subject, first lines.
show_alerts() {
  tail -n +"$((inbox_start + 1))" "$inbox" 2>/dev/null | node -e '
    const lines = require("fs").readFileSync(0, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
    for (const m of lines.filter((m) => m.channel === "email")) {
      console.log(`  e-mail to ${m.to}: ${m.subject}`);
      for (const l of m.text.split("\n").slice(0, 3)) console.log(`      ${l}`);
    }
    const hooks = lines.filter((m) => m.channel === "webhook").length;
    console.log(`  (${lines.length - hooks} e-mail(s) and ${hooks} webhook post(s) received by the catcher; all in ${process.argv[1]})`);
  ' "$inbox"
}

worker_log="$ODOO_DR_STACK/demo-worker.log"
log "starting an odoo-dr worker (log: $worker_log)"
node bin/odoo-dr --config "$CONFIG" worker >"$worker_log" 2>&1 &
worker=$!
# The demo's schedules go with its worker: left behind, they would start runs nobody executes.
trap 'node bin/odoo-dr --config "$CONFIG" schedules remove >/dev/null 2>&1 || true; kill -TERM $worker 2>/dev/null; wait $worker 2>/dev/null || true' EXIT
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
echo "== odoo-dr schedules apply (Temporal Schedules: backups every DR_RPO_HOURS, daily validation and cleanup, hourly monitoring, weekly drill)"
node bin/odoo-dr --config "$CONFIG" schedules apply
echo
echo "== odoo-dr schedules list"
node bin/odoo-dr --config "$CONFIG" schedules list
echo
echo "== odoo-dr monitor --wait (monitorWorkflow: backup ages against the RPO, completeness, cloud sync, disks, services, integrity)"
node bin/odoo-dr --config "$CONFIG" monitor --wait || true
echo
echo "== odoo-dr status (the report it wrote: $ODOO_DR_STACK/backups/logs/dr-status.json)"
node bin/odoo-dr --config "$CONFIG" status || true
echo
echo "== disaster: the database of tenant globex-eu is lost (DROP DATABASE)"
export PGHOST=127.0.0.1 PGPORT="$PG_PORT" PGUSER=postgres PGPASSWORD="$(cat "$ODOO_DR_STACK/secrets/postgres.password")"
checksum() { "$PG_BIN/psql" -Atq -d "$1" -c "SELECT count(*) || ' rows, md5 ' || md5(string_agg(l::text, '' ORDER BY l.id)) FROM account_move_line l" 2>/dev/null || echo "(no database)"; }
before_globex=$(checksum globex-eu); before_acme=$(checksum acme)
echo "globex-eu before: $before_globex"
"$PG_BIN/psql" -q -d postgres -c 'DROP DATABASE "globex-eu" WITH (FORCE)'
echo "globex-eu now:    $(checksum globex-eu)"
echo
echo "== odoo-dr monitor --wait: the monitor notices (a tenant backed up in the latest session has no database any more) and alerts"
node bin/odoo-dr --config "$CONFIG" monitor --wait || true
echo
echo "== odoo-dr recover -m database-only -c --tenant globex-eu --yes --wait (recoveryWorkflow, from the S3 copy)"
node bin/odoo-dr --config "$CONFIG" recover -m database-only -c --tenant globex-eu --yes --wait || true
after_globex=$(checksum globex-eu); after_acme=$(checksum acme)
echo "globex-eu after:  $after_globex  $([[ "$after_globex" == "$before_globex" ]] && echo '(back as backed up)' || echo '(DIFFERENT!)')"
echo "acme untouched:   $after_acme  $([[ "$after_acme" == "$before_acme" ]] && echo '(unchanged)' || echo '(CHANGED!)')"
echo
echo "== odoo-dr monitor --wait: globex-eu is back; its alert clears with a recovery message"
node bin/odoo-dr --config "$CONFIG" monitor --wait >/dev/null || true
node bin/odoo-dr --config "$CONFIG" status | grep -E 'globex-eu|^odoo-dr status' || true
echo
echo "== the alerts odoo-dr sent during the demo (monitoring, the lost tenant and its recovery), as the on-call operator got them"
show_alerts
echo
echo "== site loss: the whole host is gone. A new host (empty PostgreSQL cluster, empty folders, new Temporal server) gets only the configuration, the bucket and the key"
node dist/scripts/site-loss-demo.js
echo
echo "Temporal Web UI: http://127.0.0.1:$TEMPORAL_UI_PORT/namespaces/default/workflows (workflow IDs backup/<session>, monitor/<stamp>, recovery/<tenant>/<stamp>)"
echo "The demo's schedules are removed with its worker; on a real site: odoo-dr schedules apply, and keep a worker running (README, Automation)"
echo "Stop the stack with: npm run stack:down"
