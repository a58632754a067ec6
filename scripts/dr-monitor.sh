#!/usr/bin/env bash
# The seed's dr-monitor.sh: one monitoring pass (backup age, completeness, cloud sync, disk,
# services), the status report written and alerts sent; waits for it.
set -euo pipefail
# shellcheck source=seed-wrapper.sh
source "$(dirname "${BASH_SOURCE[0]}")/seed-wrapper.sh"

usage() {
  cat <<USAGE
Usage: $SEED_NAME [--json] [--status] [--config FILE]
  --json     print the status report as JSON
  --status   print the last status report only (odoo-dr status), run no checks
Runs: odoo-dr monitor --wait   (or: odoo-dr status)
Exit codes: 0 healthy, 1 something needs attention, 2 bad usage, 3 a service is unreachable.
USAGE
}

verb=(monitor --wait)
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --json) SEED_GLOBAL+=(--json); shift ;;
    --status) verb=(status); shift ;;
    --config) SEED_GLOBAL+=(--config "$(seed_value "$@")"); shift 2 ;;
    *) seed_error "unknown option or argument: $1" ;;
  esac
done
seed_exec "${verb[@]}"
