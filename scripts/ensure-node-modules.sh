#!/usr/bin/env bash
# Installs the locked npm dependencies when node_modules is missing or older than the lockfile.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
stamp=node_modules/.package-lock.json
if [[ ! -f "$stamp" || package-lock.json -nt "$stamp" ]]; then
  timed npm-ci npm ci --no-audit --no-fund --loglevel=error
fi
