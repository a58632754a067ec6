#!/usr/bin/env bash
# The local stack on 127.0.0.1: PostgreSQL, the Temporal dev server (with Web UI), versitygw (S3)
# and an alert catcher (SMTP + webhook receiver keeping what odoo-dr sends).
#   stack.sh up       install what is missing, start what is not running, write config/dr-config.local.env
#   stack.sh down     stop everything (data is kept; `down --purge` deletes it)
#   stack.sh status   report each service; exit 1 if one is down
# A second `up` is a no-op. Ports are fixed (scripts/lib.sh) and documented in the README.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/lib.sh"

PG_DATA="$ODOO_DR_STACK/postgres/data"
PG_SOCKET="$ODOO_DR_STACK/postgres/run"
PG_LOG="$ODOO_DR_STACK/postgres/postgres.log"
TEMPORAL_DB="$ODOO_DR_STACK/temporal/temporal.db"
TEMPORAL_PID="$ODOO_DR_STACK/temporal/temporal.pid"
TEMPORAL_LOG="$ODOO_DR_STACK/temporal/temporal.log"
S3_ROOT="$ODOO_DR_STACK/s3/data"
S3_PID="$ODOO_DR_STACK/s3/versitygw.pid"
S3_LOG="$ODOO_DR_STACK/s3/versitygw.log"
ALERTS_DIR="$ODOO_DR_STACK/alerts"
ALERTS_PID="$ALERTS_DIR/alert-catcher.pid"
ALERTS_LOG="$ALERTS_DIR/alert-catcher.log"
SECRETS="$ODOO_DR_STACK/secrets"
LOCAL_CONFIG="$repo/config/dr-config.local.env"

# Commands that touch PostgreSQL's files run as its own OS user when we are root.
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # wait_port PORT NAME SECONDS LOGFILE
  local i
  for ((i = 0; i < $3 * 10; i++)); do port_open "$1" && return 0; sleep 0.1; done
  log "$2 did not listen on 127.0.0.1:$1 within $3 s; last lines of $4:"; tail -n 20 "$4" >&2 || true
  return 1
}

random_secret() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

ensure_secrets() {
  mkdir -p "$SECRETS"; chmod 700 "$SECRETS"
  [[ -s "$SECRETS/postgres.password" ]] || { random_secret > "$SECRETS/postgres.password"; }
  [[ -s "$SECRETS/odoo.password" ]] || { random_secret > "$SECRETS/odoo.password"; }
  chmod 600 "$SECRETS"/*.password
  # The backup encrypts to the public recipient; the private identity is only for validate/restore.
  if [[ ! -s "$SECRETS/encryption.key" ]]; then
    age-keygen -o "$SECRETS/encryption.key.tmp" 2>/dev/null
    mv "$SECRETS/encryption.key.tmp" "$SECRETS/encryption.key"
  fi
  chmod 600 "$SECRETS/encryption.key"
  # The backup host signs session manifests (Ed25519, PKCS#8 PEM); readers trust its public key.
  if [[ ! -s "$SECRETS/signing.key" ]]; then
    node -e '
      const c = require("node:crypto"), fs = require("node:fs");
      const { privateKey } = c.generateKeyPairSync("ed25519");
      fs.writeFileSync(process.argv[1], privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600, flag: "wx" });
    ' "$SECRETS/signing.key.tmp"
    mv "$SECRETS/signing.key.tmp" "$SECRETS/signing.key"
  fi
  chmod 600 "$SECRETS/signing.key"
}

# `ssh-ed25519 AAAA… comment` of the signing key (what DR_TRUSTED_SIGNERS lists).
signing_public_key() {
  node -e '
    const c = require("node:crypto"), fs = require("node:fs");
    const x = Buffer.from(c.createPrivateKey(fs.readFileSync(process.argv[1])).export({ format: "jwk" }).x, "base64url");
    const str = (b) => { const l = Buffer.alloc(4); l.writeUInt32BE(b.length); return Buffer.concat([l, b]); };
    process.stdout.write("ssh-ed25519 " + Buffer.concat([str(Buffer.from("ssh-ed25519")), str(x)]).toString("base64") + " odoo-dr-local-stack");
  ' "$SECRETS/signing.key"
}

# --- PostgreSQL -------------------------------------------------------------------------------
pg_up() {
  mkdir -p "$ODOO_DR_STACK/postgres"
  if [[ $(id -u) -eq 0 ]]; then chown postgres: "$ODOO_DR_STACK/postgres"; chmod 755 "$ODOO_DR_STACK"; fi
  if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
    log "initdb PostgreSQL $PG_MAJOR cluster in $PG_DATA"
    local pwfile; pwfile=$(mktemp); cp "$SECRETS/postgres.password" "$pwfile"
    [[ $(id -u) -eq 0 ]] && chown postgres "$pwfile"
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --pwfile="$pwfile" --auth-local=peer \
      --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pwfile"
    cat >> "$PG_DATA/postgresql.conf" <<CONF
# odoo-dr local stack
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_SOCKET'
max_connections = 200
shared_buffers = 256MB
fsync = on
CONF
  fi
  as_pg mkdir -p "$PG_SOCKET"
  if as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    log "PostgreSQL already running on 127.0.0.1:$PG_PORT"
  else
    log "starting PostgreSQL $PG_MAJOR on 127.0.0.1:$PG_PORT"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start >/dev/null
  fi
  # The role that owns tenant databases, as Odoo's db_user does.
  local odoo_pw; odoo_pw=$(cat "$SECRETS/odoo.password")
  as_pg "$PG_BIN/psql" -h "$PG_SOCKET" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
    -v pw="$odoo_pw" >/dev/null <<'SQL'
SELECT format('CREATE ROLE odoo LOGIN CREATEDB PASSWORD %L', :'pw')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'odoo') \gexec
SELECT format('ALTER ROLE odoo PASSWORD %L', :'pw') \gexec
SQL
}

pg_down() {
  if [[ -f "$PG_DATA/PG_VERSION" ]] && as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    log "stopping PostgreSQL"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null
  fi
}

pg_status() {
  if [[ -f "$PG_DATA/PG_VERSION" ]] && as_pg "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
    echo "postgres   up    127.0.0.1:$PG_PORT (PostgreSQL $PG_MAJOR, data $PG_DATA)"
  else
    echo "postgres   down  127.0.0.1:$PG_PORT"; return 1
  fi
}

# --- Temporal dev server ----------------------------------------------------------------------
temporal_up() {
  mkdir -p "$(dirname "$TEMPORAL_DB")"
  if pid_alive "$TEMPORAL_PID" && port_open "$TEMPORAL_PORT"; then
    log "Temporal dev server already running on 127.0.0.1:$TEMPORAL_PORT"; return
  fi
  log "starting Temporal dev server on 127.0.0.1:$TEMPORAL_PORT (UI http://127.0.0.1:$TEMPORAL_UI_PORT)"
  # setsid: the server outlives the shell that started it (npm run, CI step).
  setsid "$ODOO_DR_BIN/temporal" server start-dev --ip 127.0.0.1 --port "$TEMPORAL_PORT" \
    --ui-port "$TEMPORAL_UI_PORT" --db-filename "$TEMPORAL_DB" --namespace default \
    --log-level error --log-format json \
    --search-attribute OdooDrTenants=KeywordList --search-attribute OdooDrSession=Keyword \
    --dynamic-config-value frontend.enableUpdateWorkflowExecution=true \
    --dynamic-config-value frontend.enableUpdateWorkflowExecutionAsyncAccepted=true \
    --dynamic-config-value system.enableActivityEagerExecution=true \
    >"$TEMPORAL_LOG" 2>&1 </dev/null &
  echo $! > "$TEMPORAL_PID"
  wait_port "$TEMPORAL_PORT" "Temporal dev server" 60 "$TEMPORAL_LOG"
  # The frontend port opens before the namespace is served; wait until it answers.
  local i
  for ((i = 0; i < 300; i++)); do
    "$ODOO_DR_BIN/temporal" operator namespace describe --address "127.0.0.1:$TEMPORAL_PORT" -n default \
      >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  log "Temporal dev server did not serve namespace 'default' within 60 s"; return 1
}

stop_pidfile() { # stop_pidfile PIDFILE NAME
  if pid_alive "$1"; then
    local pid; pid=$(cat "$1"); log "stopping $2 (pid $pid)"
    kill "$pid" 2>/dev/null || true
    local i; for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$1"
}

temporal_status() {
  if pid_alive "$TEMPORAL_PID" && port_open "$TEMPORAL_PORT"; then
    echo "temporal   up    127.0.0.1:$TEMPORAL_PORT (Web UI http://127.0.0.1:$TEMPORAL_UI_PORT)"
  else
    echo "temporal   down  127.0.0.1:$TEMPORAL_PORT"; return 1
  fi
}

# --- versitygw (S3) ---------------------------------------------------------------------------
s3_up() {
  mkdir -p "$S3_ROOT" "$ODOO_DR_STACK/s3/versions"
  if pid_alive "$S3_PID" && port_open "$S3_PORT"; then
    log "versitygw already running on 127.0.0.1:$S3_PORT"
  else
    log "starting versitygw (S3, posix backend) on 127.0.0.1:$S3_PORT"
    ROOT_ACCESS_KEY="$S3_ACCESS_KEY" ROOT_SECRET_KEY="$S3_SECRET_KEY" \
      setsid "$ODOO_DR_BIN/versitygw" --port "127.0.0.1:$S3_PORT" --quiet \
      posix --versioning-dir "$ODOO_DR_STACK/s3/versions" "$S3_ROOT" >"$S3_LOG" 2>&1 </dev/null &
    echo $! > "$S3_PID"
    wait_port "$S3_PORT" versitygw 30 "$S3_LOG"
  fi
}

s3_status() {
  if pid_alive "$S3_PID" && port_open "$S3_PORT"; then
    echo "s3         up    http://127.0.0.1:$S3_PORT (versitygw, bucket $S3_BUCKET, data $S3_ROOT)"
  else
    echo "s3         down  http://127.0.0.1:$S3_PORT"; return 1
  fi
}

# --- alert catcher (SMTP + webhook) ------------------------------------------------------------
alerts_up() {
  mkdir -p "$ALERTS_DIR"
  if pid_alive "$ALERTS_PID" && port_open "$ALERT_SMTP_PORT" && port_open "$ALERT_HTTP_PORT"; then
    log "alert catcher already running (SMTP 127.0.0.1:$ALERT_SMTP_PORT, webhook :$ALERT_HTTP_PORT)"
  else
    stop_pidfile "$ALERTS_PID" "alert catcher"
    log "starting the alert catcher (SMTP 127.0.0.1:$ALERT_SMTP_PORT, webhook http://127.0.0.1:$ALERT_HTTP_PORT/hook)"
    setsid node "$here/alert-catcher.js" --dir "$ALERTS_DIR" --smtp-port "$ALERT_SMTP_PORT" --http-port "$ALERT_HTTP_PORT" \
      >"$ALERTS_LOG" 2>&1 </dev/null &
    echo $! > "$ALERTS_PID"
    wait_port "$ALERT_SMTP_PORT" "alert catcher" 30 "$ALERTS_LOG"
    wait_port "$ALERT_HTTP_PORT" "alert catcher" 30 "$ALERTS_LOG"
  fi
}

alerts_status() {
  if pid_alive "$ALERTS_PID" && port_open "$ALERT_SMTP_PORT" && port_open "$ALERT_HTTP_PORT"; then
    echo "alerts     up    smtp://127.0.0.1:$ALERT_SMTP_PORT, http://127.0.0.1:$ALERT_HTTP_PORT/hook (inbox $ALERTS_DIR/inbox.jsonl)"
  else
    echo "alerts     down  smtp://127.0.0.1:$ALERT_SMTP_PORT"; return 1
  fi
}

# --- configuration for the local stack --------------------------------------------------------
write_local_config() {
  mkdir -p "$repo/config" "$ODOO_DR_STACK/backups" "$ODOO_DR_STACK/odoo-data/filestore" "$ODOO_DR_STACK/odoo-config"
  local recipient; recipient=$(age-keygen -y "$SECRETS/encryption.key")
  local tmp="$LOCAL_CONFIG.tmp"
  cat > "$tmp" <<CONF
# Written by \`npm run stack:up\` for the local stack on this machine. Do not edit: it is rewritten.
# Use it with: odoo-dr --config config/dr-config.local.env <command>
DR_BACKUP_DIR="$ODOO_DR_STACK/backups"
ODOO_DATA_DIR="$ODOO_DR_STACK/odoo-data"
DR_CONFIG_PATHS="$ODOO_DR_STACK/odoo-config"

POSTGRES_HOST="127.0.0.1"
POSTGRES_PORT="$PG_PORT"
POSTGRES_USER="postgres"
POSTGRES_PASSWORD_FILE="$SECRETS/postgres.password"
ODOO_DB_USER="odoo"

DR_CLOUD_BUCKET="s3://$S3_BUCKET/backups"
DR_S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
DR_S3_FORCE_PATH_STYLE="true"
DR_CLOUD_REGION="us-east-1"
AWS_ACCESS_KEY_ID="$S3_ACCESS_KEY"
AWS_SECRET_ACCESS_KEY="$S3_SECRET_KEY"

DR_AGE_RECIPIENTS="$recipient"
DR_ENCRYPTION_KEY_FILE="$SECRETS/encryption.key"
DR_SIGNING_KEY_FILE="$SECRETS/signing.key"
DR_TRUSTED_SIGNERS="$(signing_public_key)"

# The stack's alert catcher (inbox: $ALERTS_DIR/inbox.jsonl) is not wired in here, so tests
# choose their own channels; the demo points odoo-dr at it with:
#   DR_SMTP_HOST=127.0.0.1 DR_SMTP_PORT=$ALERT_SMTP_PORT DR_NOTIFICATION_EMAIL=ops@local-stack.test DR_WEBHOOK_URL=http://127.0.0.1:$ALERT_HTTP_PORT/hook

TEMPORAL_ADDRESS="127.0.0.1:$TEMPORAL_PORT"
TEMPORAL_NAMESPACE="default"
DR_TASK_QUEUE="odoo-dr"
CONF
  chmod 600 "$tmp"; mv "$tmp" "$LOCAL_CONFIG"
}

ensure_bucket() {
  # Through the S3 API (not mkdir) so the gateway records the bucket's owner and ACL.
  "$here/ensure-node-modules.sh"
  S3_ENDPOINT="http://127.0.0.1:$S3_PORT" S3_BUCKET="$S3_BUCKET" \
    AWS_ACCESS_KEY_ID="$S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$S3_SECRET_KEY" \
    node "$here/ensure-bucket.js"
}

cmd=${1:-status}
case "$cmd" in
  up)
    timed install-system "$here/install-system.sh"
    timed install-go-tools "$here/install-go-tools.sh"
    timed install-test-server "$here/install-test-server.sh"
    mkdir -p "$ODOO_DR_STACK"
    ensure_secrets
    timed postgres pg_up
    timed temporal temporal_up
    timed s3 s3_up
    ensure_bucket
    timed alerts alerts_up
    write_local_config
    log "local stack is up; configuration: config/dr-config.local.env"
    ;;
  down)
    stop_pidfile "$TEMPORAL_PID" "Temporal dev server"
    stop_pidfile "$S3_PID" versitygw
    stop_pidfile "$ALERTS_PID" "alert catcher"
    pg_down
    if [[ "${2:-}" == "--purge" ]]; then log "deleting $ODOO_DR_STACK"; rm -rf "$ODOO_DR_STACK" "$LOCAL_CONFIG"; fi
    ;;
  status)
    rc=0
    pg_status || rc=1
    temporal_status || rc=1
    s3_status || rc=1
    alerts_status || rc=1
    [[ -f "$LOCAL_CONFIG" ]] && echo "config     $LOCAL_CONFIG" || { echo "config     missing (run npm run stack:up)"; rc=1; }
    exit $rc
    ;;
  stop|start)
    # One service of a running stack, for the fault suite (PostgreSQL/Temporal/S3 restarts).
    svc=${2:-}
    case "$cmd:$svc" in
      stop:postgres) pg_down ;;
      stop:temporal) stop_pidfile "$TEMPORAL_PID" "Temporal dev server" ;;
      stop:s3) stop_pidfile "$S3_PID" versitygw ;;
      start:postgres) pg_up ;;
      start:temporal) temporal_up ;;
      start:s3) s3_up ;;
      stop:alerts) stop_pidfile "$ALERTS_PID" "alert catcher" ;;
      start:alerts) alerts_up ;;
      *) echo "usage: $0 stop|start postgres|temporal|s3|alerts" >&2; exit 2 ;;
    esac
    ;;
  *) echo "usage: $0 up|down [--purge]|status|stop SERVICE|start SERVICE" >&2; exit 2 ;;
esac
