#!/usr/bin/env bash
# The seed's enhanced-backup.sh: back up every tenant and wait for the session (cron's exit code).
set -euo pipefail
# shellcheck source=seed-wrapper.sh
source "$(dirname "${BASH_SOURCE[0]}")/seed-wrapper.sh"

usage() {
  cat <<USAGE
Usage: $SEED_NAME [--tenant DB]... [--no-cloud] [--config FILE]
Backs up every tenant (database, filestore), cluster roles and configuration, encrypted, locally and
to DR_CLOUD_BUCKET, and waits for the session to finish.
Runs: odoo-dr backup --wait [--tenant DB]... [--no-cloud]
Exit codes: 0 session complete, 1 not complete, 2 bad usage or configuration, 3 a service is unreachable.
USAGE
}

args=(backup --wait)
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --tenant) args+=(--tenant "$(seed_value "$@")"); shift 2 ;;
    --tenant=*) args+=(--tenant "${1#*=}"); shift ;;
    --no-cloud | --local-only) args+=(--no-cloud); shift ;;
    --config) SEED_GLOBAL+=(--config "$(seed_value "$@")"); shift 2 ;;
    *) seed_error "unknown option or argument: $1" ;;
  esac
done
seed_exec "${args[@]}"
