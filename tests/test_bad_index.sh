#!/usr/bin/env bash
# Bad indexes: wrong magic, truncated, a flipped byte (checksum mismatch), a
# tampered header field, an empty file, an HTML page, and a missing index (a
# 404 from hloop serve and from nginx).  `hloop info`, `hloop cat` and
# `hloop mount` must exit 1 with exactly one line on stderr naming the URL,
# for HTTP URLs and for plain paths.  A good index works as a plain path and
# as a file:// URL.
source "$(dirname "$0")/lib.sh"
requires_fuse
requires jq curl nginx

IMG=$TMP/disk.img
STORE=$TMP/store
random_file "$IMG" $((3 * 262144 + 5000))
"$HLOOP" pack "$IMG" "$STORE" --name good >"$TMP/pack.out" 2>&1 || { cat "$TMP/pack.out" >&2; fail "hloop pack failed"; }
GOOD=$STORE/good.idx
IDX_SIZE=$(fsize "$GOOD")

# flip_byte FILE OFFSET
flip_byte() {
  local b
  b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  printf "\\$(printf '%03o' $((b ^ 0x5a)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# The bad indexes, next to the good one (so chunk URLs would resolve).
cp "$GOOD" "$STORE/badmagic.idx"; printf 'NOTHLOOP' | dd of="$STORE/badmagic.idx" conv=notrunc status=none
head -c 100 "$GOOD" >"$STORE/trunc-header.idx"
head -c $((IDX_SIZE / 2)) "$GOOD" >"$STORE/trunc-half.idx"
head -c $((IDX_SIZE - 1)) "$GOOD" >"$STORE/trunc-1.idx"
cp "$GOOD" "$STORE/flipped.idx"; flip_byte "$STORE/flipped.idx" $((128 + 40 + 7))   # in the entry table
cp "$GOOD" "$STORE/chunksize.idx"; printf '\x00\x00\x00\x40' | dd of="$STORE/chunksize.idx" bs=1 seek=24 conv=notrunc status=none
: >"$STORE/empty.idx"
cat >"$STORE/html.idx" <<'HTML'
<!DOCTYPE html>
<html><head><title>Welcome</title></head>
<body><h1>Captive portal</h1><p>Please log in.</p></body></html>
HTML
BAD_FILES="badmagic trunc-header trunc-half trunc-1 flipped chunksize empty html"

# expect_clean_error DESC CMD...: exit status 1, exactly one non-empty stderr
# line, which names $WHERE.
expect_clean_error() {
  local desc=$1 rc=0 lines; shift
  "$@" >"$TMP/out" 2>"$TMP/err" </dev/null || rc=$?
  check_eq "$desc: exit status" 1 "$rc"
  lines=$(grep -c . "$TMP/err" || true)
  check_eq "$desc: one line on stderr" 1 "$lines"
  check_contains "$desc: stderr names the index" "$WHERE" "$(cat "$TMP/err")"
  if (( rc != 1 || lines != 1 )); then
    sed 's/^/    stderr: /' "$TMP/err" | head -n 10 >&2
  else
    sed 's/^/    /' "$TMP/err"
  fi
}

# try_all LABEL INDEX_URL_OR_PATH
try_all() {
  local label=$1 u=$2 mnt=$TMP/mnt.$RANDOM
  WHERE=$u
  expect_clean_error "[$label] info" timeout 60 "$HLOOP" info "$u"
  expect_clean_error "[$label] info --json" timeout 60 "$HLOOP" info "$u" --json
  expect_clean_error "[$label] cat" timeout 60 "$HLOOP" cat "$u" -o "$TMP/cat.out"
  mkdir -p "$mnt"
  expect_clean_error "[$label] mount" timeout 60 "$HLOOP" mount "$u" "$mnt"
  if is_mounted "$mnt"; then
    soft_fail "[$label] mount of a bad index left a mount behind"
    unmount_fuse "$mnt"
  fi
}

# --- over HTTP (hloop serve)
start_hloop_serve "$STORE"
HS_URL=$URL
for b in $BAD_FILES; do try_all "hloop-serve/$b" "$HS_URL/$b.idx"; done
try_all "hloop-serve/404" "$HS_URL/missing.idx"

# --- a 404 with an HTML body (nginx)
start_nginx "$STORE"
try_all "nginx/404" "$URL/missing.idx"
try_all "nginx/html" "$URL/html.idx"

# --- plain paths and file:// URLs
for b in $BAD_FILES; do try_all "path/$b" "$STORE/$b.idx"; done
try_all "path/missing" "$STORE/missing.idx"
try_all "file-url/flipped" "file://$STORE/flipped.idx"

# --- a good index works everywhere.
for u in "$GOOD" "file://$GOOD" "$HS_URL/good.idx"; do
  rc=0; info=$("$HLOOP" info "$u" --json 2>"$TMP/err") || rc=$?
  check_eq "good index via $u: info exit status" 0 "$rc"
  check_eq "good index via $u: info name" good "$(jq -r .name <<<"$info" 2>/dev/null || echo invalid-json)"
  check_eq "good index via $u: info hash" sha256 "$(jq -r .hash <<<"$info" 2>/dev/null || echo invalid-json)"
  rc=0; "$HLOOP" cat "$u" -o "$TMP/good.out" 2>"$TMP/err" || rc=$?
  check_eq "good index via $u: cat exit status" 0 "$rc"
  (( rc == 0 )) || cat "$TMP/err" >&2
  check_eq "good index via $u: cat sha256" "$(sha "$IMG")" "$(sha "$TMP/good.out" 2>/dev/null || echo none)"
  rm -f "$TMP/good.out"
done
# And mounts from a file:// URL.
mount_image "file://$GOOD" "$TMP/mnt.fileurl"
check_eq "good index via file:// : mounted sha256" "$(sha "$IMG")" "$(sha "$MOUNT_FILE")"
unmount_fuse "$TMP/mnt.fileurl" "$MOUNT_PID"
