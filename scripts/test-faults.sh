#!/usr/bin/env bash
# `npm run test:faults`: the fault suite on the real stack (worker kills, Temporal/S3/PostgreSQL
# restarts, a fault-injecting S3 proxy, full disks). Prints the fault table at the end.
# Extra arguments go to mocha (e.g. `npm run test:faults -- --grep proxy`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
. "$here/lib.sh"
"$here/ensure-node-modules.sh"
"$here/stack.sh" up
timed build npx tsc -p tsconfig.json
export TEMPORAL_TEST_SERVER_PATH="${TEMPORAL_TEST_SERVER_PATH:-$ODOO_DR_BIN/temporal-test-server}"
npx mocha --config .mocharc.faults.json "$@"
