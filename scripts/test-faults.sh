#!/usr/bin/env bash
# `npm run test:faults`: the fault suite on the real stack (worker kills, Temporal/S3/PostgreSQL
# restarts, a fault-injecting S3 proxy, full disks). Prints the fault table at the end.
# Extra arguments go to mocha (e.g. `npm run test:faults -- --grep proxy`, or one compiled file:
# `npm run test:faults -- dist/test/faults/s3.fault.js`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
. "$here/lib.sh"
"$here/ensure-node-modules.sh"
"$here/stack.sh" up
timed build npx tsc -p tsconfig.json
export TEMPORAL_TEST_SERVER_PATH="${TEMPORAL_TEST_SERVER_PATH:-$ODOO_DR_BIN/temporal-test-server}"
# The spec glob is given here, not in the config: a file named on the command line runs alone.
files=()
for a in "$@"; do [[ "$a" == *.js ]] && files+=("$a"); done
if ((${#files[@]} == 0)); then set -- "$@" dist/test/faults/*.fault.js; fi
npx mocha --config .mocharc.faults.json "$@"
