#!/usr/bin/env bash
# The seed's setup-automation.sh: instead of cron lines, Temporal Schedules (odoo-dr schedules).
set -euo pipefail
# shellcheck source=seed-wrapper.sh
source "$(dirname "${BASH_SOURCE[0]}")/seed-wrapper.sh"

usage() {
  cat <<USAGE
Usage: $SEED_NAME [--backup-time HH:MM] [--test-schedule daily|weekly|monthly] [--monitor-interval MIN] [--dry-run] [--force] [--config FILE]
       $SEED_NAME --remove [--config FILE]
Creates or updates the schedules (backup, validation, monitor, drill, cleanup) in Temporal; --remove deletes them.
Runs: odoo-dr schedules apply [--backup-time HH:MM] [--test-schedule S] [--monitor-interval MIN] [--dry-run] [--force]
  or: odoo-dr schedules remove
USAGE
}

remove=0
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --backup-time | --test-schedule | --monitor-interval) args+=("$1" "$(seed_value "$@")"); shift 2 ;;
    --backup-time=* | --test-schedule=* | --monitor-interval=*) args+=("${1%%=*}" "${1#*=}"); shift ;;
    --dry-run | --force) args+=("$1"); shift ;;
    --remove) remove=1; shift ;;
    --config) SEED_GLOBAL+=(--config "$(seed_value "$@")"); shift 2 ;;
    *) seed_error "unknown option or argument: $1" ;;
  esac
done
if [[ $remove -eq 1 ]]; then
  [[ ${#args[@]} -eq 0 ]] || seed_error "--remove deletes the schedules: it takes no other option (got ${args[*]})"
  seed_exec schedules remove
fi
seed_exec schedules apply "${args[@]}"
