#!/usr/bin/env bash
# The seed's setup-encryption.sh: creates the configuration and the keys if missing (never
# overwrites) and checks every service: odoo-dr setup.
set -euo pipefail
# shellcheck source=seed-wrapper.sh
source "$(dirname "${BASH_SOURCE[0]}")/seed-wrapper.sh"

usage() {
  cat <<USAGE
Usage: $SEED_NAME [--check] [--dir DIR] [--config FILE]
Creates the configuration from the example, the age identity and the signing key when missing
(never overwriting a key), prints the public keys, and checks PostgreSQL, S3, SMTP and Temporal.
Runs: odoo-dr setup [--check] [--dir DIR]
USAGE
}

args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --check) args+=(--check); shift ;;
    --dir) args+=(--dir "$(seed_value "$@")"); shift 2 ;;
    --config) SEED_GLOBAL+=(--config "$(seed_value "$@")"); shift 2 ;;
    *) seed_error "unknown option or argument: $1" ;;
  esac
done
# The seed's script wrote config/dr-config.env next to itself: so does this one when none is named.
if [[ -z "${DR_CONFIG:-}" && ${#SEED_GLOBAL[@]} -eq 0 ]]; then SEED_GLOBAL+=(--config "$SEED_ROOT/config/dr-config.env"); fi
seed_exec setup "${args[@]}"
