#!/usr/bin/env bash
# Fetches Temporal's Java time-skipping test server from Maven Central into the cache and writes
# a wrapper that exec's the JVM (sdk-core stops it with SIGKILL, so no shell may stay in between).
# Idempotent.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
dir="$ODOO_DR_CACHE/temporal-test-server-$TEMPORAL_TEST_SERVER_VERSION"
wrapper="$ODOO_DR_BIN/temporal-test-server"
mkdir -p "$ODOO_DR_BIN"

fetch() {
  if [[ -f "$dir/.complete" ]]; then log "temporal-test-server $TEMPORAL_TEST_SERVER_VERSION already fetched"; return; fi
  log "fetching temporal-test-server $TEMPORAL_TEST_SERVER_VERSION from Maven Central"
  rm -rf "$dir.tmp"
  # Pinned plugin: Maven 3.8's default dependency plugin (2.8) is too old.
  mvn -B -q -f "$here/temporal-test-server/pom.xml" \
    -Dtemporal.version="$TEMPORAL_TEST_SERVER_VERSION" \
    org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$dir.tmp/lib"
  rm -rf "$dir"; mv "$dir.tmp" "$dir"; touch "$dir/.complete"
}

write_wrapper() {
  local java
  java=$(command -v java)
  java=$(readlink -f "$java")
  cat > "$wrapper.tmp" <<WRAP
#!/bin/sh
# Temporal Java test server $TEMPORAL_TEST_SERVER_VERSION. Arguments: <port> [--enable-time-skipping].
# Fast-start JVM flags: sdk-core gives the server about 5 s to listen.
exec "$java" -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xshare:auto -Xss512k -Xmx512m \\
  -cp "$dir/lib/*" io.temporal.testserver.TestServer "\$@"
WRAP
  chmod +x "$wrapper.tmp"; mv "$wrapper.tmp" "$wrapper"
}

timed temporal-test-server fetch
write_wrapper
