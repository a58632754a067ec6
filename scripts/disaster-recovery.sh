#!/usr/bin/env bash
# The seed's disaster-recovery.sh -m MODE [-c] [-s] [-t] [SESSION|latest]: a recovery that waits for
# its end. odoo-dr asks for an approval before it changes anything: give it from another terminal
# (the command is printed) or with -y.
set -euo pipefail
# shellcheck source=seed-wrapper.sh
source "$(dirname "${BASH_SOURCE[0]}")/seed-wrapper.sh"

usage() {
  cat <<USAGE
Usage: $SEED_NAME -m MODE [-c] [-s SESSION] [-t] [-y] [--tenant DB]... [--config FILE] [SESSION | latest]
  -m MODE        full | database-only | files-only | config-only (required)
  -c             from the cloud copy (the bucket), when the local session is gone
  -s SESSION     the session (or give it as the last argument); default latest.
                 A bare -s (the seed's "skip the safety backup") is accepted and changes nothing:
                 odoo-dr always keeps the replaced state as a pre-recovery copy (a rename, no copy)
  -t             test: print the plan, change nothing (odoo-dr recover --dry-run)
  -y, --yes      approve at start (scripted use; recorded in the audit log)
  --tenant DB    only this tenant (repeatable); default every tenant of the session
Runs: odoo-dr recover -m MODE [-c] [-t] [--yes] [--tenant DB]... [-s SESSION] --wait
Exit codes: 0 recovered (or plan shown), 1 failed, rolled back, rejected or expired, 2 bad usage.
USAGE
}

is_session() { [[ "$1" == latest || "$1" =~ ^backup_[0-9]{8}_[0-9]{6}_ ]]; }

mode=''
session=''
args=()
set_session() {
  [[ -z "$session" ]] || seed_error "the session is given twice (\"$session\" and \"$1\")"
  session=$1
}
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    -m | --mode) mode="$(seed_value "$@")"; shift 2 ;;
    --mode=*) mode="${1#*=}"; shift ;;
    -c | --cloud) args+=(-c); shift ;;
    -s | --session)
      if [[ $# -gt 1 && "$2" != -* ]]; then set_session "$2"; shift 2
      else
        printf '%s: -s: odoo-dr keeps the replaced state as a pre-recovery copy in every recovery (DR_PRE_RECOVERY_RETENTION_DAYS)\n' "$SEED_NAME" >&2
        shift
      fi
      ;;
    -t | --test | --dry-run)
      if [[ $# -gt 1 && "$2" != -* ]] && ! is_session "$2"; then
        seed_error "-t is test mode (a dry run) and \"$2\" is not a session: to choose tenants use --tenant $2"
      fi
      args+=(-t); shift
      ;;
    -y | --yes) args+=(--yes); shift ;;
    --tenant) args+=(--tenant "$(seed_value "$@")"); shift 2 ;;
    --tenant=*) args+=(--tenant "${1#*=}"); shift ;;
    --config) SEED_GLOBAL+=(--config "$(seed_value "$@")"); shift 2 ;;
    -*) seed_error "unknown option: $1" ;;
    *) set_session "$1"; shift ;;
  esac
done
[[ -n "$mode" ]] || seed_error '-m MODE is required (full, database-only, files-only or config-only)'
seed_exec recover -m "$mode" "${args[@]}" ${session:+-s "$session"} --wait
