#!/usr/bin/env bash
# Shared settings for the local-stack scripts. Sourced, never run.
# Tools live outside the checkout so CI on the same machine reuses them.
ODOO_DR_CACHE="${ODOO_DR_CACHE:-$HOME/.cache/odoo-dr}"
ODOO_DR_BIN="$ODOO_DR_CACHE/bin"



TEMPORAL_CLI_VERSION=1.5.1
VERSITYGW_VERSION=1.7.0
TEMPORAL_TEST_SERVER_VERSION="${TEMPORAL_TEST_SERVER_VERSION:-1.38.0}"

# Fixed, documented ports of the local stack (README "Local stack").
PG_PORT="${ODOO_DR_PG_PORT:-55432}"
TEMPORAL_PORT="${ODOO_DR_TEMPORAL_PORT:-57233}"
TEMPORAL_UI_PORT="${ODOO_DR_TEMPORAL_UI_PORT:-58233}"
S3_PORT="${ODOO_DR_S3_PORT:-57070}"
ALERT_SMTP_PORT="${ODOO_DR_ALERT_SMTP_PORT:-57025}"
ALERT_HTTP_PORT="${ODOO_DR_ALERT_HTTP_PORT:-57080}"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# timed NAME CMD...: run a step and print how long it took (CI prints each install time).
timed() {
  local name=$1; shift
  local start=$SECONDS
  "$@"
  local rc=$?
  log "step '$name' took $((SECONDS - start)) s (exit $rc)"
  return $rc
}

# PostgreSQL runs as an unprivileged OS user; its data must live where that user can reach.
ODOO_DR_STACK="${ODOO_DR_STACK_DIR:-/var/tmp/odoo-dr-stack}"
PG_MAJOR="${ODOO_DR_PG_MAJOR:-15}"
PG_BIN="/usr/lib/postgresql/$PG_MAJOR/bin"
S3_BUCKET=odoo-dr-local
S3_ACCESS_KEY=odoodrlocal
# Local-stack-only credentials for a server bound to 127.0.0.1; never used anywhere else.
S3_SECRET_KEY=odoo-dr-local-secret
