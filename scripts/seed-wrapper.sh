#!/usr/bin/env bash
# Shared by the seed's script names (enhanced-backup.sh, disaster-recovery.sh, …): each maps the
# seed's flags onto one `odoo-dr` command, so runbooks and cron lines keep working. Sourced, never run.
#
# The CLI is bin/odoo-dr next to this folder, or $ODOO_DR when set. Without DR_CONFIG, the
# checkout's config/dr-config.env is used when it exists (the seed's scripts sourced it from their
# own folder, so they worked from cron whatever the working directory).
SEED_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SEED_NAME="$(basename "$0")"
if [[ -z "${DR_CONFIG:-}" && -f "$SEED_ROOT/config/dr-config.env" ]]; then
  export DR_CONFIG="$SEED_ROOT/config/dr-config.env"
fi
# Global options of odoo-dr (before the command).
SEED_GLOBAL=()

# seed_error MESSAGE: bad usage, nothing run (exit 2 like odoo-dr's usage errors).
seed_error() {
  printf '%s: %s\n' "$SEED_NAME" "$1" >&2
  printf 'Run %s --help for usage.\n' "$SEED_NAME" >&2
  exit 2
}

# seed_value FLAG REST...: the value following FLAG, or a usage error when there is none.
seed_value() {
  local flag=$1
  shift
  if [[ $# -eq 0 || "$1" == -* ]]; then seed_error "$flag needs a value"; fi
  printf '%s' "$1"
}

# seed_exec ARGS...: replaces this shell with odoo-dr (its exit code is the script's).
seed_exec() {
  if [[ -n "${ODOO_DR:-}" ]]; then
    exec "$ODOO_DR" "${SEED_GLOBAL[@]}" "$@"
  fi
  exec "$SEED_ROOT/bin/odoo-dr" "${SEED_GLOBAL[@]}" "$@"
}
