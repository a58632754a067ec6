#!/usr/bin/env bash
# `npm run test:unit`: the fast tier. No service runs or is started: pure src/ units, the
# architecture rules, the workflows with stubbed activities on the Java time-skipping server (started
# in-process from the installed binary) and replay of recorded workflow histories. It uses a throwaway configuration
# whose services all point at port 1, so a test that reached for PostgreSQL, Temporal or S3 fails.
# Extra arguments go to mocha.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
. "$here/lib.sh"
"$here/ensure-node-modules.sh"
timed build npx tsc -p tsconfig.json
scratch=$(mktemp -d "${TMPDIR:-/tmp}/odoo-dr-unit.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
cat > "$scratch/unit.env" <<CONF
DR_BACKUP_DIR="$scratch/backups"
ODOO_DATA_DIR="$scratch/odoo-data"
POSTGRES_HOST="127.0.0.1"
POSTGRES_PORT="1"
POSTGRES_USER="postgres"
DR_AGE_RECIPIENTS="age1rh5kfd2egluawyk2wxkm70gkujaaedk4hdvnx04qzkjf4qgelgnsc6sld8"
DR_CLOUD_BUCKET="s3://unreachable/unit"
DR_S3_ENDPOINT="http://127.0.0.1:1"
TEMPORAL_ADDRESS="127.0.0.1:1"
CONF
ODOO_DR_TEST_CONFIG="$scratch/unit.env" ODOO_DR_PG_PORT=1 ODOO_DR_TEMPORAL_PORT=1 ODOO_DR_S3_PORT=1 PGHOST=127.0.0.1 PGPORT=1 \
  npx mocha --no-config --require dist/test/setup.js --timeout 60000 --exit \
  --reporter dist/test/reporter.js 'dist/test/unit/**/*.test.js' 'dist/test/replay/**/*.test.js' 'dist/test/workflows-stubbed/**/*.test.js' 'dist/test/architecture/**/*.test.js' "$@"
