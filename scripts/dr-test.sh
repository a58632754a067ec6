#!/usr/bin/env bash
# The seed's dr-test.sh -m MODE [-c]: a disaster-recovery drill that waits for its report.
set -euo pipefail
# shellcheck source=seed-wrapper.sh
source "$(dirname "${BASH_SOURCE[0]}")/seed-wrapper.sh"

usage() {
  cat <<USAGE
Usage: $SEED_NAME [-m MODE] [-c] [--tenant DB]... [--config FILE]
  -m MODE       full (default) | backup-only | restore-only | validation-only
  -c            use the cloud copy (restore from the bucket)
  --tenant DB   only this tenant (repeatable)
Runs: odoo-dr drill -m MODE [-c] [--tenant DB]... --wait
Exit codes: 0 the drill passed, 1 it failed (a check, the RPO or the projected RTO), 2 bad usage.
USAGE
}

mode=full
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    -m | --mode) mode="$(seed_value "$@")"; shift 2 ;;
    --mode=*) mode="${1#*=}"; shift ;;
    -c | --cloud) args+=(-c); shift ;;
    --tenant) args+=(--tenant "$(seed_value "$@")"); shift 2 ;;
    --tenant=*) args+=(--tenant "${1#*=}"); shift ;;
    --config) SEED_GLOBAL+=(--config "$(seed_value "$@")"); shift 2 ;;
    *) seed_error "unknown option or argument: $1" ;;
  esac
done
seed_exec drill -m "$mode" "${args[@]}" --wait
