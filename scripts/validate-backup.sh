#!/usr/bin/env bash
# The seed's validate-backup.sh [SESSION_DIR]: validate a session (default: the latest) and wait.
set -euo pipefail
# shellcheck source=seed-wrapper.sh
source "$(dirname "${BASH_SOURCE[0]}")/seed-wrapper.sh"

usage() {
  cat <<USAGE
Usage: $SEED_NAME [SESSION_DIR | SESSION | latest] [--restore-test] [-c] [--tenant DB] [--config FILE]
Validates a backup session: checksums, decryption, archives, cloud copy, age against the RPO;
with --restore-test a restore into a neutralized scratch copy. A session folder
(/var/backups/odoo/backup_20261126_020000_k3x9q2) is taken by its name.
Runs: odoo-dr validate SESSION --wait [--restore-test] [-c] [--tenant DB]
Exit codes: 0 every check passed, 1 a check failed, 2 bad usage or configuration, 3 a service is unreachable.
USAGE
}

session=''
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --restore-test) args+=(--restore-test); shift ;;
    -c | --cloud) args+=(-c); shift ;;
    --tenant) args+=(--tenant "$(seed_value "$@")"); shift 2 ;;
    --tenant=*) args+=(--tenant "${1#*=}"); shift ;;
    --config) SEED_GLOBAL+=(--config "$(seed_value "$@")"); shift 2 ;;
    -*) seed_error "unknown option: $1" ;;
    *)
      [[ -z "$session" ]] || seed_error "one session only (got \"$session\" and \"$1\")"
      # A session folder is named after the session; a trailing slash is harmless.
      session="$(basename -- "${1%/}")"
      shift
      ;;
  esac
done
seed_exec validate "${session:-latest}" --wait "${args[@]}"
