#!/usr/bin/env bash
# `npm test`: installs what is missing, starts the local stack, builds, lints, runs every test.
# Extra arguments go to mocha (e.g. `npm test -- --grep discovery`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
. "$here/lib.sh"
"$here/ensure-node-modules.sh"
"$here/stack.sh" up
timed build npx tsc -p tsconfig.json
timed lint npx eslint .
timed format-check npx prettier --check --log-level warn .
export TEMPORAL_TEST_SERVER_PATH="${TEMPORAL_TEST_SERVER_PATH:-$ODOO_DR_BIN/temporal-test-server}"
npx mocha "$@"
