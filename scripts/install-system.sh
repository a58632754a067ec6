#!/usr/bin/env bash
# Debian packages the stack needs: PostgreSQL 15 (server and clients), age, zstd, ssh-keygen, jq, curl.
# Idempotent: apt is only called when something is missing.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

need=()
[[ -x "$PG_BIN/postgres" && -x "$PG_BIN/pg_dump" ]] || need+=("postgresql-$PG_MAJOR" "postgresql-client-$PG_MAJOR")
command -v age >/dev/null && command -v age-keygen >/dev/null || need+=(age)
command -v zstd >/dev/null || need+=(zstd)
# ssh-keygen verifies session signatures without odoo-dr (break-glass, tests).
command -v ssh-keygen >/dev/null || need+=(openssh-client)
# jq and curl: the break-glass script (scripts/break-glass-restore.sh) and its test.
command -v jq >/dev/null || need+=(jq)
command -v curl >/dev/null || need+=(curl)
for tool in go java mvn node npm; do
  command -v "$tool" >/dev/null || { log "missing $tool: this machine image is expected to provide it"; exit 1; }
done
if ((${#need[@]})); then
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo
  log "installing Debian packages: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  log "Debian packages already installed (postgresql-$PG_MAJOR, age, zstd)"
fi
