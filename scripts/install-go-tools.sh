#!/usr/bin/env bash
# Builds the Temporal CLI (dev server) and versitygw (S3) from the Go module proxy into the cache.
# Idempotent: a binary already built at the pinned version is kept.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
mkdir -p "$ODOO_DR_BIN"

install_temporal() {
  local stamp="$ODOO_DR_BIN/.temporal-$TEMPORAL_CLI_VERSION"
  if [[ -x "$ODOO_DR_BIN/temporal" && -f "$stamp" ]]; then log "temporal CLI $TEMPORAL_CLI_VERSION already installed"; return; fi
  log "building temporal CLI $TEMPORAL_CLI_VERSION (go install; first time takes minutes)"
  # Later tags carry a replace directive and cannot be go-installed.
  CGO_ENABLED=0 GOBIN="$ODOO_DR_BIN" GOFLAGS=-mod=mod go install -trimpath \
    -ldflags="-s -w -X github.com/temporalio/cli/temporalcli.Version=$TEMPORAL_CLI_VERSION" \
    "github.com/temporalio/cli/cmd/temporal@v$TEMPORAL_CLI_VERSION"
  touch "$stamp"
}

install_versitygw() {
  local stamp="$ODOO_DR_BIN/.versitygw-$VERSITYGW_VERSION"
  if [[ -x "$ODOO_DR_BIN/versitygw" && -f "$stamp" ]]; then log "versitygw $VERSITYGW_VERSION already installed"; return; fi
  log "building versitygw $VERSITYGW_VERSION"
  CGO_ENABLED=0 GOBIN="$ODOO_DR_BIN" go install -trimpath -ldflags="-s -w" \
    "github.com/versity/versitygw/cmd/versitygw@v$VERSITYGW_VERSION"
  touch "$stamp"
}

case "${1:-all}" in
  temporal) timed temporal-cli install_temporal ;;
  versitygw) timed versitygw install_versitygw ;;
  all) timed temporal-cli install_temporal; timed versitygw install_versitygw ;;
esac
