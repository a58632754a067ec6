#!/usr/bin/env bash
# Break-glass restore of ONE tenant from an odoo-dr session, for the day odoo-dr itself is gone:
# no Node, no Temporal, no odoo-dr code. Needs only bash, age, zstd, pg_restore and psql, tar, jq,
# coreutils (sha256sum, sha1sum, stat, …), grep, awk, and for the bucket `aws` or `curl`.
# Nothing read back is trusted: the manifest's signature (ssh-keygen -Y verify, with --signer) and
# self-checksum, every artifact's size and SHA-256 from the manifest, every pack entry's name and
# type, every restored file's SHA-1 and size. It restores into a NEW database and a NEW folder;
# an existing one is replaced only with --force, and then kept under a *_pre_breakglass_* name.
# README: "Break-glass restore". Exit codes: 0 restored, 1 refused or failed, 2 bad usage or missing tool.
set -euo pipefail
umask 077

usage() {
  cat <<'EOF'
usage: break-glass-restore.sh --session DIR|s3://BUCKET/PREFIX/sessions/NAME --tenant DB --identity AGE_KEY_FILE
         [--signer 'ssh-ed25519 AAAA…'] [--target-db NEWDB] [--filestore-dir DIR] [--owner ROLE]
         [--create-owner] [--force] [--file PATH]… [--no-database] [--no-filestore] [--globals-out FILE]
         [--endpoint URL] [--s3-client aws|curl] [--region R] [--jobs N] [--work-dir DIR]

  --session        a session folder (DR_BACKUP_DIR/sessions/NAME) or its bucket address
  --signer         the backup host's public key (DR_TRUSTED_SIGNERS); without it the signature is NOT checked
  --target-db      database to create (default <tenant>_breakglass_<UTC stamp>); an existing one needs --force
  --filestore-dir  folder to fill (default ./filestore/<target-db>); an existing non-empty one needs --force
  --owner          role owning the restored objects (default odoo); --create-owner creates it (NOLOGIN) if missing
  --file PATH      restore only this filestore file (e.g. 3f/3f2a…; repeatable; implies --no-database)
  --globals-out    also write the session's roles (pg_dumpall --globals-only SQL) to FILE, for review
PostgreSQL: libpq's PGHOST, PGPORT, PGUSER, PGPASSWORD/PGPASSFILE (a role that may create databases).
Bucket: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN), AWS_REGION; --endpoint for non-AWS S3.
EOF
}

die() { printf 'break-glass: %s\n' "$*" >&2; exit 1; }
bad_usage() { printf 'break-glass: %s\n' "$*" >&2; usage >&2; exit 2; }
say() { printf '==> %s\n' "$*"; }

SESSION='' TENANT='' IDENTITY='' SIGNER='' TARGET_DB='' FS_DIR='' OWNER=odoo CREATE_OWNER=0 FORCE=0
DO_DB=1 DO_FS=1 GLOBALS_OUT='' ENDPOINT='' S3_CLIENT='' REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}"
JOBS=2 WORK_PARENT="${TMPDIR:-/var/tmp}" ONLY_FILES=()
while (($#)); do
  opt=$1
  case $opt in
    -h|--help) usage; exit 0 ;;
    --create-owner) CREATE_OWNER=1; shift; continue ;;
    --force) FORCE=1; shift; continue ;;
    --no-database) DO_DB=0; shift; continue ;;
    --no-filestore) DO_FS=0; shift; continue ;;
  esac
  (($# >= 2)) || bad_usage "$opt needs a value"
  case $opt in
    --session) SESSION=$2 ;; --tenant) TENANT=$2 ;; --identity) IDENTITY=$2 ;; --signer) SIGNER=$2 ;;
    --target-db) TARGET_DB=$2 ;; --filestore-dir) FS_DIR=$2 ;; --owner) OWNER=$2 ;;
    --file) ONLY_FILES+=("$2"); DO_DB=0 ;; --globals-out) GLOBALS_OUT=$2 ;; --endpoint) ENDPOINT=${2%/} ;;
    --s3-client) S3_CLIENT=$2 ;; --region) REGION=$2 ;; --jobs) JOBS=$2 ;; --work-dir) WORK_PARENT=$2 ;;
    *) bad_usage "unknown option $opt" ;;
  esac
  shift 2
done

[[ -n $SESSION ]] || bad_usage "--session is required"
[[ -n $TENANT ]] || bad_usage "--tenant is required"
[[ -n $IDENTITY ]] || bad_usage "--identity is required (the age private key, AGE-SECRET-KEY-1…)"
[[ -r $IDENTITY ]] || bad_usage "--identity $IDENTITY is not a readable file"
# Odoo's own rule for database names (they become folder names too).
[[ $TENANT =~ ^[a-zA-Z0-9][a-zA-Z0-9_.-]+$ ]] || bad_usage "--tenant \"$TENANT\" is not a valid Odoo database name"
[[ $JOBS =~ ^[1-9][0-9]?$ ]] || bad_usage "--jobs must be a number from 1 to 99, got \"$JOBS\""
[[ $OWNER =~ ^[a-zA-Z_][a-zA-Z0-9_.-]*$ ]] || bad_usage "--owner \"$OWNER\" is not a role name this script accepts"
((DO_DB || DO_FS)) || bad_usage "--no-database and --no-filestore: nothing to restore"
STAMP=$(date -u +%Y%m%d%H%M%S)
[[ -n $TARGET_DB ]] || TARGET_DB="${TENANT}_breakglass_${STAMP}"
[[ $TARGET_DB =~ ^[a-zA-Z0-9][a-zA-Z0-9_.-]+$ && ${#TARGET_DB} -le 63 ]] ||
  bad_usage "--target-db \"$TARGET_DB\" is not a valid Odoo database name of at most 63 characters"
[[ -n $FS_DIR ]] || FS_DIR="$PWD/filestore/$TARGET_DB"
for f in "${ONLY_FILES[@]}"; do [[ $f =~ ^[0-9a-f]{2}/[0-9a-f]{40}$ ]] || bad_usage "--file \"$f\" is not a filestore path <aa>/<sha1>"; done

# --- where the session is -------------------------------------------------------------------------
if [[ $SESSION == s3://* ]]; then
  rest=${SESSION#s3://}; rest=${rest%/}
  BUCKET=${rest%%/*}; key=${rest#"$BUCKET"}; key=${key#/}
  [[ $key =~ ^(([A-Za-z0-9._-]+/)*)sessions/(backup_[0-9]{8}_[0-9]{6}_[a-z0-9]{6,12})$ ]] ||
    bad_usage "--session $SESSION is not s3://BUCKET/[PREFIX/]sessions/backup_YYYYMMDD_HHMMSS_<id>"
  ROOT_PREFIX=${BASH_REMATCH[1]} NAME=${BASH_REMATCH[3]} REMOTE=1
  [[ $BUCKET =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] || bad_usage "\"$BUCKET\" is not a bucket name"
  if [[ -z $S3_CLIENT ]]; then if command -v aws >/dev/null; then S3_CLIENT=aws; else S3_CLIENT=curl; fi; fi
  [[ $S3_CLIENT == aws || $S3_CLIENT == curl ]] || bad_usage "--s3-client must be aws or curl"
else
  [[ -d $SESSION ]] || bad_usage "--session $SESSION is not a folder (nor an s3:// address)"
  SESSION=$(cd "$SESSION" && pwd -P); NAME=${SESSION##*/}; ROOT=${SESSION%/*}; ROOT=${ROOT%/sessions}
  [[ $NAME =~ ^backup_[0-9]{8}_[0-9]{6}_[a-z0-9]{6,12}$ && ${SESSION%/*} == */sessions ]] ||
    bad_usage "--session $SESSION is not <backup dir>/sessions/backup_YYYYMMDD_HHMMSS_<id>"
  REMOTE=0
fi

# --- tools: fail early, naming every missing one --------------------------------------------------
need=(age zstd tar jq sha256sum sha1sum stat awk grep sort find mkfifo tee mktemp)
((DO_DB)) && need+=(pg_restore psql)
[[ -n $SIGNER ]] && need+=(ssh-keygen)
((REMOTE)) && need+=("$S3_CLIENT")
missing=()
for t in "${need[@]}"; do command -v "$t" >/dev/null || missing+=("$t"); done
((${#missing[@]} == 0)) || { printf 'break-glass: missing tools: %s (install them: Debian packages age zstd postgresql-client tar jq openssh-client curl)\n' "${missing[*]}" >&2; exit 2; }
if ((REMOTE)); then
  [[ -n ${AWS_ACCESS_KEY_ID:-} && -n ${AWS_SECRET_ACCESS_KEY:-} ]] || bad_usage "reading the bucket needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment"
fi

WORK=$(mktemp -d "$WORK_PARENT/odoo-dr-break-glass.XXXXXX") || die "cannot create a work folder in $WORK_PARENT (--work-dir)"
CREATED_DB='' KEPT_DB='' FS_PARTIAL=''
cleanup() {
  local rc=$?
  rm -rf -- "$WORK"   # plaintext dumps and packs never outlive the script
  if ((rc != 0)); then
    [[ -n $FS_PARTIAL ]] && rm -rf -- "$FS_PARTIAL"
    if [[ -n $CREATED_DB ]] && psql -X -q -v ON_ERROR_STOP=1 -d postgres -v db="$CREATED_DB" >/dev/null 2>&1 <<<'DROP DATABASE IF EXISTS :"db" WITH (FORCE)'; then
      printf 'break-glass: dropped the unfinished database "%s"\n' "$CREATED_DB" >&2
    fi
    # --force had renamed the existing database away: it goes back under its name.
    if [[ -n $KEPT_DB ]] && psql -X -q -v ON_ERROR_STOP=1 -d postgres -v kept="$KEPT_DB" -v db="$TARGET_DB" >/dev/null 2>&1 <<<'ALTER DATABASE :"kept" RENAME TO :"db"; ALTER DATABASE :"db" ALLOW_CONNECTIONS true'; then
      printf 'break-glass: database "%s" is back under its name\n' "$TARGET_DB" >&2
    fi
    printf 'break-glass: FAILED, nothing was left behind\n' >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# fetch REL DEST: copies (bucket) or links (folder) one object of the layout; exit 3 of the helper = absent.
fetch() {
  local rel=$1 dest=$2
  if ((REMOTE == 0)); then
    [[ -f $ROOT/$rel ]] || return 3
    ln -s "$ROOT/$rel" "$dest"
  elif [[ $S3_CLIENT == aws ]]; then
    local args=(--only-show-errors --region "$REGION"); [[ -n $ENDPOINT ]] && args+=(--endpoint-url "$ENDPOINT")
    aws "${args[@]}" s3 cp "s3://$BUCKET/$ROOT_PREFIX$rel" "$dest" 2>"$WORK/s3.err" || {
      grep -qE '404|Not Found|NoSuchKey|does not exist' "$WORK/s3.err" && return 3
      die "cannot download s3://$BUCKET/$ROOT_PREFIX$rel: $(head -c 400 "$WORK/s3.err")"; }
  else
    # AWS itself: virtual-hosted style (newer buckets have no path style); other endpoints: path style.
    local url="https://$BUCKET.s3.$REGION.amazonaws.com" code
    [[ -n $ENDPOINT ]] && url="$ENDPOINT/$BUCKET"
    # Credentials go through curl's config on stdin, never on the command line (visible in ps).
    # S3 wants the payload's SHA-256 signed along (a GET has an empty one); curl 7.x does not add it itself.
    code=$({ printf 'user = "%s:%s"\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"
             printf 'header = "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"\n'
             [[ -n ${AWS_SESSION_TOKEN:-} ]] && printf 'header = "x-amz-security-token: %s"\n' "$AWS_SESSION_TOKEN"; true; } |
      curl -K - --silent --show-error --retry 5 --aws-sigv4 "aws:amz:$REGION:s3" -o "$dest" -w '%{http_code}' \
        "$url/$ROOT_PREFIX$rel" 2>"$WORK/s3.err") || die "cannot download $url/$ROOT_PREFIX$rel: $(head -c 400 "$WORK/s3.err")"
    [[ $code == 404 ]] && { rm -f "$dest"; return 3; }
    [[ $code == 200 ]] || die "cannot download s3://$BUCKET/$ROOT_PREFIX$rel: HTTP $code $(head -c 300 "$dest" 2>/dev/null | tr -d '\n')"
  fi
}

# verified_plain SRC BYTES SHA256 NAME OUT: checks SRC's size, then decrypts and decompresses it into
# OUT while hashing the very bytes decrypted (one read: what is checked is what is restored).
verified_plain() {
  local src=$1 bytes=$2 sha=$3 name=$4 out=$5 size got
  size=$(stat -L -c %s "$src")
  [[ $size == "$bytes" ]] || die "$name is $size bytes, the manifest says $bytes: refused (damaged or replaced)"
  rm -f "$WORK/hash.fifo"; mkfifo "$WORK/hash.fifo"
  sha256sum <"$WORK/hash.fifo" >"$WORK/hash.out" & local hasher=$!
  if ! tee "$WORK/hash.fifo" <"$src" | age -d -i "$IDENTITY" 2>"$WORK/age.err" | zstd -d -q -c >"$out"; then
    wait "$hasher" || true
    die "$name cannot be decrypted/decompressed: $(head -c 300 "$WORK/age.err") (wrong --identity, or a damaged file)"
  fi
  wait "$hasher"
  got=$(cut -d' ' -f1 "$WORK/hash.out")
  [[ $got == "$sha" ]] || die "$name has SHA-256 $got, the manifest says $sha: refused (damaged or replaced)"
}

# place_files STAGE SOURCE < "sha1<TAB>size<TAB>path" lines: copies STAGE/<aa>/<sha1> to each path under
# FS_PARTIAL (its SHA-1 was checked in STAGE; every file is checked again, with its size, at the end).
place_files() {
  local stage=$1 src=$2 sha size p
  : >"$WORK/plain.list"
  while IFS=$'\t' read -r sha size p; do
    [[ -f $stage/${sha:0:2}/$sha ]] || die "$src does not hold $p (content $sha)"
    if [[ $p == "${sha:0:2}/$sha" ]]; then printf '%s\n' "$p" >>"$WORK/plain.list"   # Odoo's own layout: copied in one go
    else mkdir -p "$(dirname -- "$FS_PARTIAL/$p")"; cp -- "$stage/${sha:0:2}/$sha" "$FS_PARTIAL/$p"; fi
  done
  if [[ -s $WORK/plain.list ]]; then
    tar -C "$stage" -cf - --verbatim-files-from -T "$WORK/plain.list" | tar -C "$FS_PARTIAL" -xf - --no-same-owner ||
      die "copying the files of $src failed"
  fi
}

# --- 1. the manifest: signature, self-checksum, the tenant's entry ---------------------------------
say "session $NAME ($([[ $REMOTE == 1 ]] && echo "s3://$BUCKET/$ROOT_PREFIX via $S3_CLIENT" || echo "$ROOT")), tenant $TENANT"
fetch "sessions/$NAME/manifest.json" "$WORK/manifest.json" || die "sessions/$NAME/manifest.json not found: not a finished session"
cp -L "$WORK/manifest.json" "$WORK/manifest.checked"; M=$WORK/manifest.checked   # one copy: what is verified is what is read
if [[ -n $SIGNER ]]; then
  fetch "sessions/$NAME/manifest.json.sig" "$WORK/manifest.sig" || die "sessions/$NAME/manifest.json.sig not found: the session is not signed"
  printf 'odoo-dr %s\n' "$SIGNER" >"$WORK/allowed_signers"
  ssh-keygen -Y verify -f "$WORK/allowed_signers" -I odoo-dr -n odoo-dr-session -s "$WORK/manifest.sig" <"$M" >"$WORK/sig.out" 2>&1 ||
    die "the manifest's signature does not verify against --signer: refused ($(head -c 300 "$WORK/sig.out" | tr '\n' ' '))"
  say "manifest signature verified (ssh-keygen -Y verify, namespace odoo-dr-session)"
else
  printf 'WARNING: no --signer given: the manifest signature is NOT checked; anyone who can write the backups could have made this session\n' >&2
fi
jq -e 'type == "object"' "$M" >/dev/null 2>&1 || die "manifest.json is not valid JSON"
[[ $(jq -r '.format' "$M") == odoo-dr-session ]] || die "manifest.json is not an odoo-dr session manifest"
[[ $(jq -r '.version' "$M") == 1 ]] || die "manifest.json has version $(jq -r .version "$M"); this script reads version 1"
# The checksum is the SHA-256 of the manifest's canonical JSON (keys sorted, no spaces) without it.
[[ $(jq -cS 'del(.checksum)' "$M" | tr -d '\n' | sha256sum | cut -d' ' -f1) == "$(jq -r .checksum "$M")" ]] ||
  die "manifest.json was modified after it was written (its checksum does not match)"
[[ $(jq -r '.session' "$M") == "$NAME" ]] || die "manifest.json is the manifest of $(jq -r .session "$M"), not of $NAME"
tstatus=$(jq -r --arg t "$TENANT" '.tenants[$t].status // "absent"' "$M")
[[ $tstatus == complete ]] || die "tenant $TENANT is $tstatus in $NAME (tenants: $(jq -r '[.tenants | to_entries[] | select(.value.status == "complete") | .key] | join(", ")' "$M"))"
say "manifest checked: session $(jq -r .status "$M"), made $(jq -r .finishedAt "$M") on $(jq -r .host "$M"), PostgreSQL $(jq -r .postgres.server "$M"), Odoo $(jq -r --arg t "$TENANT" '.tenants[$t].odoo.series // "?"' "$M")"
TDIR="sessions/$NAME/tenants/$TENANT"
# artifact FIELD EXPECTED_PATH: sets A_BYTES and A_SHA of the tenant's artifact (false: absent); refuses any other path.
artifact() {
  local a p
  a=$(jq -r --arg t "$TENANT" ".tenants[\$t]$1 | select(.) | \"\\(.path) \\(.bytes) \\(.sha256)\"" "$M")
  [[ -n $a ]] || return 1
  read -r p A_BYTES A_SHA <<<"$a"
  [[ $p == "$2" && $A_BYTES =~ ^[0-9]+$ && $A_SHA =~ ^[0-9a-f]{64}$ ]] || die "the manifest's entry for $2 is malformed ($a): refused"
}

# sql DB VAR=VALUE… <<< STATEMENTS: psql with variables (:'v' literal, :"v" identifier), from stdin only.
sql() {
  local db=$1 vars=(); shift
  for v in "$@"; do vars+=(-v "$v"); done
  psql -X -q -tA -v ON_ERROR_STOP=1 -d "$db" "${vars[@]}" 2>"$WORK/pg.err" || die "PostgreSQL refused: $(head -c 400 "$WORK/pg.err")"
}

# --- 2. before any heavy work: what would refuse the restore at its end ---------------------------
if ((DO_DB)); then
  psql -X -d postgres -c 'SELECT 1' >/dev/null 2>"$WORK/pg.err" ||
    die "cannot connect to PostgreSQL (PGHOST=${PGHOST:-local socket} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-$(id -un)}): $(head -c 300 "$WORK/pg.err")"
  n=$(sql postgres r="$OWNER" <<<"SELECT count(*) FROM pg_roles WHERE rolname = :'r'")
  ((n == 1 || CREATE_OWNER)) || die "role \"$OWNER\" does not exist: create the roles first (--globals-out FILE, review it, psql -f FILE), or pass --create-owner"
  n=$(sql postgres db="$TARGET_DB" <<<"SELECT count(*) FROM pg_database WHERE datname = :'db'")
  ((n == 0 || FORCE)) || die "database \"$TARGET_DB\" exists: choose another --target-db, or --force to keep it as ${TARGET_DB:0:40}_pre_breakglass_$STAMP and replace it"
fi
if ((DO_FS)) && ((${#ONLY_FILES[@]} == 0)) && [[ -d $FS_DIR ]] && [[ -n $(ls -A "$FS_DIR") ]]; then
  ((FORCE)) || die "$FS_DIR exists and is not empty: choose another --filestore-dir, or --force to keep it as ${FS_DIR%/}.pre-breakglass-$STAMP"
fi

# --- 3. globals (for review only: nothing is executed) ---------------------------------------------
if [[ -n $GLOBALS_OUT ]]; then
  g=$(jq -r '.globals | select(.) | "\(.path) \(.bytes) \(.sha256)"' "$M"); read -r gp gb gs <<<"$g"
  [[ $gp == "sessions/$NAME/globals.sql.zst.age" && $gb =~ ^[0-9]+$ ]] || die "the session has no usable globals artifact"
  fetch "$gp" "$WORK/globals.age" || die "$gp is missing"
  verified_plain "$WORK/globals.age" "$gb" "$gs" "$gp" "$GLOBALS_OUT"
  say "roles (pg_dumpall --globals-only) written to $GLOBALS_OUT: review it, then run the statements you need with psql"
fi

# --- 4. the dump: decrypted and checked before anything is created ---------------------------------
if ((DO_DB)); then
  artifact .database "$TDIR/database.dump.zst.age" || die "tenant $TENANT has no database dump in $NAME"
  db_bytes=$A_BYTES db_sha=$A_SHA
  need_major=$(jq -r --arg t "$TENANT" '.tenants[$t].database.pgDump' "$M" | cut -d. -f1)
  have=$(pg_restore --version | awk '{print $NF}'); have_major=${have%%.*}
  [[ $need_major =~ ^[0-9]+$ ]] || die "the manifest does not say which pg_dump made the dump"
  ((have_major >= need_major)) || die "the dump was made by pg_dump $need_major; this pg_restore is $have: install postgresql-client-$need_major (or put its bin folder first in PATH)"
  fetch "$TDIR/database.dump.zst.age" "$WORK/dump.age" || die "$TDIR/database.dump.zst.age is missing"
  verified_plain "$WORK/dump.age" "$db_bytes" "$db_sha" "$TDIR/database.dump.zst.age" "$WORK/database.dump"
  rm -f "$WORK/dump.age"
  pg_restore --list "$WORK/database.dump" >/dev/null 2>"$WORK/pg.err" || die "the decrypted dump is not a pg_dump archive: $(head -c 300 "$WORK/pg.err")"
  say "database dump verified ($db_bytes bytes, SHA-256 $db_sha)"
fi

# --- 5. the filestore: index checked, every pack checked, every file's SHA-1 and size checked ------
if ((DO_FS)); then
  artifact .filestore.index "$TDIR/filestore.jsonl" || die "tenant $TENANT has no filestore index in $NAME"
  fetch "$TDIR/filestore.jsonl" "$WORK/index.src" || die "$TDIR/filestore.jsonl is missing"
  cp -L "$WORK/index.src" "$WORK/index.jsonl"
  [[ $(stat -c %s "$WORK/index.jsonl") == "$A_BYTES" && $(sha256sum <"$WORK/index.jsonl" | cut -d' ' -f1) == "$A_SHA" ]] ||
    die "$TDIR/filestore.jsonl does not have the size and SHA-256 the manifest gives: refused"
  # Each line, strictly: {path,sha1,size[,pack]} or {pack,bytes}; a path must stay inside the folder.
  jq -r '
    def unsafe: . == "" or startswith("/") or startswith("checklist/") or (explode | any(. < 32 or . == 127 or . == 92))
      or (split("/") | any(. == "" or . == "." or . == ".."));
    def bad(m): "BAD\tline \(input_line_number): \(m)";
    if type != "object" then bad("not an object")
    elif has("path") then
      if (.path | type) != "string" or (.sha1 | type) != "string" or (.size | type) != "number" then bad("a file entry without path, sha1 and size")
      elif (.sha1 | test("^[0-9a-f]{40}$") | not) then bad("invalid sha1")
      elif .size < 0 or .size != (.size | floor) then bad("invalid size")
      elif has("pack") and ((.pack | type) != "string" or (.pack | test("^[0-9a-f]{64}$") | not)) then bad("invalid pack name")
      elif (.path | unsafe) then bad("unsafe path \(.path | tojson) (absolute, .., control characters): refused")
      else "F\t\(.sha1)\t\(.size)\t\(.pack // "-")\t\(.path)" end
    elif has("pack") and has("bytes") then
      if (.pack | type) != "string" or (.pack | test("^[0-9a-f]{64}$") | not) or (.bytes | type) != "number" or .bytes <= 0 then bad("invalid pack record")
      else "P\t\(.pack)\t\(.bytes)" end
    else bad("neither a file entry nor a pack record") end' "$WORK/index.jsonl" >"$WORK/index.tsv" 2>"$WORK/jq.err" ||
    die "$TDIR/filestore.jsonl is not valid JSON lines: $(head -c 300 "$WORK/jq.err")"
  if grep -q '^BAD' "$WORK/index.tsv"; then die "$TDIR/filestore.jsonl: $(grep '^BAD' "$WORK/index.tsv" | head -3 | cut -f2 | tr '\n' ';')"; fi
  grep '^F' "$WORK/index.tsv" | cut -f2- >"$WORK/files.tsv" || true      # sha1 size pack path
  grep '^P' "$WORK/index.tsv" | cut -f2- | sort -u >"$WORK/packs.tsv" || true  # pack bytes
  if ((${#ONLY_FILES[@]})); then
    printf '%s\n' "${ONLY_FILES[@]}" | awk -F'\t' 'NR == FNR { want[$0] = 1; next } ($4 in want) { print; found[$4] = 1 }
      END { for (w in want) if (!(w in found)) { print "not in the index: " w > "/dev/stderr"; bad = 1 } exit bad }' - "$WORK/files.tsv" >"$WORK/sel.tsv" 2>"$WORK/sel.err" ||
      die "$(cat "$WORK/sel.err") (tenant $TENANT, session $NAME)"
    mv "$WORK/sel.tsv" "$WORK/files.tsv"
  fi
  awk -F'\t' 'NR == FNR { if ($1 in b && b[$1] != $2) { print "pack " $1 " listed with two sizes"; exit 1 } b[$1] = $2; next }
    $3 != "-" && !($3 in b) { print "pack " $3 " has no {pack, bytes} record"; exit 1 }
    ($1 in sz) && sz[$1] != $2 { print "content " $1 " listed with two sizes"; exit 1 } { sz[$1] = $2 }' \
    "$WORK/packs.tsv" "$WORK/files.tsv" >"$WORK/idx.err" || die "$TDIR/filestore.jsonl contradicts itself: $(cat "$WORK/idx.err")"
  FS_PARTIAL="${FS_DIR%/}.breakglass-partial-$STAMP"
  mkdir -p "$FS_PARTIAL"
  npacks=0
  for id in $(awk -F'\t' '$3 != "-" { print $3 }' "$WORK/files.tsv" | sort -u); do
    bytes=$(awk -F'\t' -v id="$id" '$1 == id { print $2 }' "$WORK/packs.tsv")
    prel="packs/${id:0:2}/$id.tar.zst.age"
    fetch "$prel" "$WORK/pack.age" || die "$prel is missing (listed by the tenant's index)"
    verified_plain "$WORK/pack.age" "$bytes" "$id" "$prel" "$WORK/pack.tar"   # a pack's name is its SHA-256
    rm -f "$WORK/pack.age"
    # Only regular files named <aa>/<sha1> (no links, no directories, no other path) are extracted.
    tar -tvf "$WORK/pack.tar" | awk '$1 !~ /^-/ { exit 1 }' || die "$prel holds an entry that is not a regular file: refused"
    tar -tf "$WORK/pack.tar" | awk '!/^[0-9a-f][0-9a-f]\/[0-9a-f]+$/ || length($0) != 43 || substr($0, 1, 2) != substr($0, 4, 2) { exit 1 }' ||
      die "$prel holds an entry not named <aa>/<sha1>: refused"
    rm -rf "$WORK/stage"; mkdir "$WORK/stage"
    tar -xf "$WORK/pack.tar" -C "$WORK/stage" --no-same-owner --no-same-permissions
    rm -f "$WORK/pack.tar"
    # The files this pack must give: content present, its SHA-1 and size right, then copied to each path.
    awk -F'\t' -v id="$id" '$3 == id && !seen[$1]++ { print $1 "  " substr($1, 1, 2) "/" $1 }' "$WORK/files.tsv" >"$WORK/check.sha1"
    (cd "$WORK/stage" && sha1sum --quiet --strict -c "$WORK/check.sha1") >"$WORK/sha.err" 2>&1 ||
      die "$prel does not hold the files the index says it holds: $(head -c 300 "$WORK/sha.err")"
    awk -F'\t' -v id="$id" '$3 == id { print $1 "\t" $2 "\t" $4 }' "$WORK/files.tsv" | place_files "$WORK/stage" "$prel"
    npacks=$((npacks + 1))
  done
  # Sessions made before packs: one encrypted blob per file (its name is its content's SHA-1).
  awk -F'\t' '$3 == "-" { print $1 "\t" $2 "\t" $4 }' "$WORK/files.tsv" | sort -t$'\t' -k1,1 >"$WORK/blobs.tsv"
  if [[ -s $WORK/blobs.tsv ]]; then
    rm -rf "$WORK/stage"; mkdir "$WORK/stage"; prev=''
    while IFS=$'\t' read -r sha _ _ <&3; do
      [[ $sha == "$prev" ]] && continue
      prev=$sha brel="blobs/${sha:0:2}/$sha.age"
      fetch "$brel" "$WORK/blob.age" || die "$brel is missing (listed by the tenant's index)"
      mkdir -p "$WORK/stage/${sha:0:2}"
      age -d -i "$IDENTITY" -o "$WORK/stage/${sha:0:2}/$sha" "$WORK/blob.age" 2>"$WORK/age.err" </dev/null || die "$brel cannot be decrypted: $(head -c 300 "$WORK/age.err")"
      rm -f "$WORK/blob.age"
    done 3<"$WORK/blobs.tsv"
    place_files "$WORK/stage" "blobs/" <"$WORK/blobs.tsv"
  fi
  # The final word: every file at its final path, read back, has the SHA-1 and the size the index gives.
  awk -F'\t' '{ print $1 "  " $4 }' "$WORK/files.tsv" >"$WORK/final.sha1"
  [[ -s $WORK/final.sha1 ]] || printf 'da39a3ee5e6b4b0d3255bfef95601890afd80709  /dev/null\n' >"$WORK/final.sha1"   # an empty filestore
  (cd "$FS_PARTIAL" && sha1sum --quiet --strict -c "$WORK/final.sha1") >"$WORK/sha.err" 2>&1 || die "restored files do not verify: $(head -c 300 "$WORK/sha.err")"
  (cd "$FS_PARTIAL" && find . -type f -printf '%s\t%P\n') | awk -F'\t' 'NR == FNR { want[$4] = $2; n++; next }
    !($2 in want) || want[$2] != $1 { print "unexpected size or file: " $2; exit 1 } { seen++ } END { if (seen != n) { print seen " files, the index lists " n; exit 1 } }' \
    "$WORK/files.tsv" - >"$WORK/size.err" || die "restored files do not match the index: $(cat "$WORK/size.err")"
  FS_FILES=$(wc -l <"$WORK/files.tsv"); FS_BYTES=$(awk -F'\t' '{ s += $2 } END { print s + 0 }' "$WORK/files.tsv")
  say "filestore verified: $FS_FILES files, $FS_BYTES bytes from $npacks packs (each file's SHA-1 and size checked)"
fi

# --- 6. the database: a new one, owned by --owner, the dump replayed with that role's rights -------
if ((DO_DB)); then
  n=$(sql postgres r="$OWNER" <<<"SELECT count(*) FROM pg_roles WHERE rolname = :'r'")
  if ((n == 0)); then sql postgres r="$OWNER" <<<'CREATE ROLE :"r" NOLOGIN'; say "role \"$OWNER\" created (NOLOGIN: give it LOGIN and a password for Odoo)"; fi
  n=$(sql postgres db="$TARGET_DB" <<<"SELECT count(*) FROM pg_database WHERE datname = :'db'")
  if ((n == 1)); then
    KEPT_DB="${TARGET_DB:0:40}_pre_breakglass_$STAMP"
    sql postgres db="$TARGET_DB" kept="$KEPT_DB" >/dev/null <<'SQL'
ALTER DATABASE :"db" ALLOW_CONNECTIONS false;
SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :'db' AND pid <> pg_backend_pid();
ALTER DATABASE :"db" RENAME TO :"kept";
ALTER DATABASE :"kept" ALLOW_CONNECTIONS true;
SQL
    say "existing database \"$TARGET_DB\" kept as \"$KEPT_DB\""
  fi
  # Odoo creates its databases from template0 with LC_COLLATE 'C'.
  sql postgres db="$TARGET_DB" o="$OWNER" <<<"CREATE DATABASE :\"db\" OWNER :\"o\" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C'"
  CREATED_DB=$TARGET_DB
  # --no-owner --role: every object is created by, and owned by, the tenant's role (as Odoo has it).
  pg_restore -d "$TARGET_DB" -j "$JOBS" --exit-on-error --no-owner --role="$OWNER" "$WORK/database.dump" 2>"$WORK/pg.err" ||
    die "pg_restore into \"$TARGET_DB\" failed: $(tail -c 600 "$WORK/pg.err")"
  rm -f "$WORK/database.dump"
  tables=$(sql "$TARGET_DB" <<<"SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
  say "database \"$TARGET_DB\" restored (owner $OWNER, $tables tables)"
fi

# --- 7. the filestore goes into place only now (all or nothing) -----------------------------------
if ((DO_FS)); then
  mkdir -p "$FS_DIR"
  if ((${#ONLY_FILES[@]})); then
    while IFS=$'\t' read -r sha _ _ p; do
      if [[ -f $FS_DIR/$p ]]; then
        if [[ $(sha1sum <"$FS_DIR/$p" | cut -d' ' -f1) == "$sha" ]]; then say "$p is already in place with the right content"; continue; fi
        ((FORCE)) || die "$FS_DIR/$p exists with other content: --force keeps it as $p.pre-breakglass-$STAMP and restores the backup's"
        mv -- "$FS_DIR/$p" "$FS_DIR/$p.pre-breakglass-$STAMP"
      fi
      mkdir -p "$(dirname -- "$FS_DIR/$p")"; mv -- "$FS_PARTIAL/$p" "$FS_DIR/$p"; say "restored $FS_DIR/$p"
    done <"$WORK/files.tsv"
    rm -rf -- "$FS_PARTIAL"
  else
    if [[ -n $(ls -A "$FS_DIR") ]]; then mv -- "$FS_DIR" "${FS_DIR%/}.pre-breakglass-$STAMP"; say "existing $FS_DIR kept as ${FS_DIR%/}.pre-breakglass-$STAMP"; else rmdir -- "$FS_DIR"; fi
    mv -- "$FS_PARTIAL" "$FS_DIR"
  fi
  FS_PARTIAL=''
fi
CREATED_DB=''
echo
say "RESTORED tenant $TENANT from $NAME"
if ((DO_DB)); then echo "    database:  $TARGET_DB (PGHOST=${PGHOST:-local socket}), owner $OWNER"; fi
if ((DO_FS)); then echo "    filestore: $FS_DIR ($FS_FILES files, $FS_BYTES bytes, every SHA-1 checked); give it to Odoo's OS user: chown -R odoo: '$FS_DIR'"; fi
if ((DO_DB)); then echo "    it keeps the tenant's database.uuid, crons and mail servers: neutralize it before Odoo serves it, unless it replaces the tenant"; fi
exit 0
