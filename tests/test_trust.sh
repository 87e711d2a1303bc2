#!/usr/bin/env bash
# Signed versions against an attacker who controls the server (nginx here):
# every case is refused with its own message, and not one byte of the image
# is served (`hloop cat` writes nothing). The cases follow TUF's list: one
# flipped byte in an index, a channel or a signature; a channel signed by an
# untrusted key; a frozen (expired) channel with the server up (served, with a
# warning, when the server is down; refused then with --require-fresh); a
# replayed older channel, also after a client restart; a channel naming
# another index's digest (mix-and-match); an oversized channel; a revoked key;
# an unsigned index. Key rotation: a channel signed by a new key is accepted
# once that key is trusted.
source "$(dirname "$0")/lib.sh"
requires_root
requires nginx jq openssl
requires_fuse

STORE=$TMP/store
CACHE=$TMP/cache
mkdir -p "$TMP/keys" "$TMP/trusted"
random_file "$TMP/v1.img" $((3 * 1024 * 1024 + 100))
cp "$TMP/v1.img" "$TMP/v2.img"
printf 'version two' | dd of="$TMP/v2.img" bs=1 seek=1000 conv=notrunc status=none
"$HLOOP" pack "$TMP/v1.img" "$STORE" --name v1 -q || fail "pack v1"
"$HLOOP" pack "$TMP/v2.img" "$STORE" --name v2 -q || fail "pack v2"

"$HLOOP" key generate "$TMP/keys/a" >"$TMP/keygen.out" 2>&1 || { cat "$TMP/keygen.out" >&2; fail "key generate"; }
"$HLOOP" key generate "$TMP/keys/b" >/dev/null 2>&1 || fail "key generate b"
cp "$TMP/keys/a.pub" "$TMP/trusted/a.pub"
KEY_A_ID=$(grep -Eo '[0-9a-f]{16}' "$TMP/keygen.out" | head -1)
check_ne "key generate prints the key id" "" "$KEY_A_ID"
for v in v1 v2; do
  "$HLOOP" sign "$STORE/$v.idx" --key "$TMP/keys/a" >/dev/null 2>&1 || fail "sign $v"
done
"$HLOOP" publish "$STORE" --channel stable --index v1.idx --key "$TMP/keys/a" >/dev/null 2>&1 ||
  fail "publish v1"
start_nginx "$STORE"
CH=$URL/stable.channel
TRUST=(--trust-dir "$TMP/trusted")

# cat_url NAME URL ARGS...: hloop cat into $TMP/NAME.out, stderr in
# $TMP/NAME.err; sets RC.
cat_url() {
  local name=$1 url=$2
  shift 2
  RC=0
  "$HLOOP" cat "$url" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" || RC=$?
}
# expect_served NAME SHA URL ARGS...
expect_served() {
  local name=$1 want=$2 url=$3
  shift 3
  cat_url "$name" "$url" "$@"
  check_eq "$name: exit status" 0 "$RC"
  check_eq "$name: the image read back" "$want" "$(sha "$TMP/$name.out")"
  ((RC == 0)) || cat "$TMP/$name.err" >&2
}
# expect_refused NAME MESSAGE URL ARGS...: exit 1, MESSAGE on stderr, no byte out.
expect_refused() {
  local name=$1 msg=$2 url=$3
  shift 3
  cat_url "$name" "$url" "$@"
  check_eq "$name: refused (exit 1)" 1 "$RC"
  check_contains "$name: says why" "$msg" "$(cat "$TMP/$name.err")"
  check_eq "$name: not one byte served" 0 "$(fsize "$TMP/$name.out")"
}
V1=$(sha "$TMP/v1.img")
V2=$(sha "$TMP/v2.img")

# --- The good paths.
expect_served "channel" "$V1" "$CH" --cache "$CACHE" "${TRUST[@]}"
expect_served "signed index" "$V2" "$URL/v2.idx" "${TRUST[@]}"
expect_served "no trust configured" "$V1" "$CH" --trust-dir "$TMP/none"
# Local paths, relative ones too, go through the same rules.
RC=0
(cd "$TMP" && "$HLOOP" cat store/stable.channel "${TRUST[@]}" >"$TMP/relative.out" 2>"$TMP/relative.err") || RC=$?
check_eq "a relative channel path: exit status" 0 "$RC"
check_eq "a relative channel path: the image" "$V1" "$(sha "$TMP/relative.out")"
RC=0
(cd "$TMP/store" && "$HLOOP" cat v2.idx "${TRUST[@]}" >"$TMP/relative2.out" 2>"$TMP/relative2.err") || RC=$?
check_eq "a relative signed index path: exit status" 0 "$RC"
check_eq "a relative signed index path: the image" "$V2" "$(sha "$TMP/relative2.out")"
"$HLOOP" info "$CH" --json "${TRUST[@]}" >"$TMP/info.json" 2>"$TMP/info.err" || cat "$TMP/info.err" >&2
check_eq "info: the channel's sequence" 1 "$(jq -r .version.channel.sequence "$TMP/info.json")"
check_eq "info: authenticated" true "$(jq -r .version.authenticated "$TMP/info.json")"
check_eq "info: the key id" "$KEY_A_ID" "$(jq -r .version.key_id "$TMP/info.json")"

# --- Flipped bytes (the server sends them every time: a verdict that repeats).
flip() {  # flip FILE OFFSET: inverts one byte
  local b
  b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  printf '%b' "$(printf '\\%03o' $((b ^ 0xff)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
cp "$STORE/v1.idx" "$TMP/v1.idx.good"
flip "$STORE/v1.idx" 200
expect_refused "flipped index byte" "v1.idx" "$CH" --cache "$TMP/cache-flip" "${TRUST[@]}" --retries 2
cp "$TMP/v1.idx.good" "$STORE/v1.idx"

cp "$STORE/stable.channel" "$TMP/stable.channel.1"
flip "$STORE/stable.channel" 40
expect_refused "flipped channel byte" "stable.channel" "$CH" --cache "$TMP/cache-flip" "${TRUST[@]}" --retries 2
cp "$TMP/stable.channel.1" "$STORE/stable.channel"

cp "$STORE/v2.idx.sig" "$TMP/v2.idx.sig.good"
flip "$STORE/v2.idx.sig" $(($(fsize "$STORE/v2.idx.sig") - 3))
expect_refused "flipped signature byte" "v2.idx.sig" "$URL/v2.idx" "${TRUST[@]}" --retries 2
cp "$TMP/v2.idx.sig.good" "$STORE/v2.idx.sig"

# --- An index without a signature, with trust configured.
mv "$STORE/v2.idx.sig" "$TMP/v2.sig.away"
expect_refused "unsigned index" "not signed" "$URL/v2.idx" "${TRUST[@]}" --retries 2
mv "$TMP/v2.sig.away" "$STORE/v2.idx.sig"

# --- Signed by a key that is not trusted.
"$HLOOP" publish "$STORE" --channel other --index v2.idx --key "$TMP/keys/b" >/dev/null 2>&1 ||
  fail "publish with key b"
expect_refused "untrusted key" "not trusted" "$URL/other.channel" "${TRUST[@]}" --retries 2

# --- Key rotation: trusting b makes the same channel acceptable, without re-packing.
expect_served "rotated key" "$V2" "$URL/other.channel" "${TRUST[@]}" --trust "$TMP/keys/b.pub"
# --- Revocation: a channel by a key removed from the trust set is refused.
rm "$TMP/trusted/a.pub"
expect_refused "revoked key" "not trusted" "$CH" --cache "$CACHE" "${TRUST[@]}" --trust "$TMP/keys/b.pub" --retries 2
cp "$TMP/keys/a.pub" "$TMP/trusted/a.pub"

# --- Mix-and-match: the channel names v1's digest; the server sends v2 as v1.idx.
cp "$STORE/v2.idx" "$STORE/v1.idx"
expect_refused "mix-and-match" "do not belong together" "$CH" --cache "$TMP/cache-mix" "${TRUST[@]}" --retries 2
cp "$TMP/v1.idx.good" "$STORE/v1.idx"

# --- Oversized channel: refused before it is read whole.
head -c $((8 * 1024 * 1024)) /dev/urandom >"$STORE/huge.channel"
expect_refused "oversized channel" "limit" "$URL/huge.channel" "${TRUST[@]}" --retries 2

# --- Rollback: the client saw sequence 2; the server goes back to sequence 1.
"$HLOOP" publish "$STORE" --channel stable --index v2.idx --key "$TMP/keys/a" >/dev/null 2>&1 ||
  fail "publish v2"
expect_served "channel v2" "$V2" "$CH" --cache "$CACHE" "${TRUST[@]}"
cp "$STORE/stable.channel" "$TMP/stable.channel.2"
cp "$TMP/stable.channel.1" "$STORE/stable.channel"
expect_refused "replayed older channel" "rollback" "$CH" --cache "$CACHE" "${TRUST[@]}" --retries 2
# A new process (a restart) remembers it: the sequence numbers are in the cache directory.
expect_refused "replayed older channel after a restart" "lower than 2" "$CH" --cache "$CACHE" "${TRUST[@]}" --retries 2
# A rollback the publisher means: the old index under a higher sequence number.
cp "$TMP/stable.channel.2" "$STORE/stable.channel"
"$HLOOP" publish "$STORE" --channel stable --index v1.idx --key "$TMP/keys/a" >/dev/null 2>&1 ||
  fail "rollback publish"
check_eq "the rollback publish has the next sequence number" 3 \
  "$("$HLOOP" info "$CH" --json "${TRUST[@]}" | jq -r .version.channel.sequence)"
expect_served "rolled back to v1" "$V1" "$CH" --cache "$CACHE" "${TRUST[@]}"

# --- A mount keeps its version; `hloop stats` shows it, and that the channel moved on.
mount_image "$CH" "$TMP/mnt" --cache "$CACHE" "${TRUST[@]}"
check_eq "the mount serves v1" "$V1" "$(sha "$MOUNT_FILE")"
mount_stats_json "$TMP/mnt" "$TMP/stats1.json"
check_eq "stats: the sequence served" 3 "$(jq -r .version.channel.sequence "$TMP/stats1.json")"
check_eq "stats: signed by key a" "$KEY_A_ID" "$(jq -r .version.key_id "$TMP/stats1.json")"
check_eq "stats: the channel names no newer version yet" false \
  "$(jq -r .version.latest.newer "$TMP/stats1.json")"
"$HLOOP" publish "$STORE" --channel stable --index v2.idx --key "$TMP/keys/a" >/dev/null 2>&1 ||
  fail "publish v2 under a mount"
sleep 6  # the mount checks the channel at most every 5 s
mount_stats_json "$TMP/mnt" "$TMP/stats2.json"
check_eq "stats: the channel now names a newer version" true \
  "$(jq -r .version.latest.newer "$TMP/stats2.json")"
check_eq "stats: ... v2.idx, sequence 4" "v2.idx 4" \
  "$(jq -r '"\(.version.latest.index) \(.version.latest.sequence)"' "$TMP/stats2.json")"
check_eq "the mount still serves v1" "$V1" "$(sha "$MOUNT_FILE")"
check_contains "stats (text) tells the user" "the channel now names v2.idx" \
  "$("$HLOOP" stats "$TMP/mnt")"
unmount_fuse "$TMP/mnt" "$MOUNT_PID"

# --- Freeze: a channel past its expiry is refused while the server is up...
"$HLOOP" publish "$STORE" --channel stable --index v1.idx --key "$TMP/keys/a" --expires 1s >/dev/null 2>&1 ||
  fail "publish with --expires 1s"
expect_served "fresh short-lived channel" "$V1" "$CH" --cache "$CACHE" "${TRUST[@]}"
sleep 2
expect_refused "expired channel, server up" "expired" "$CH" --cache "$CACHE" "${TRUST[@]}" --retries 2
# ... and served from the cache, with a warning naming the version and its age, when it is down.
stop_server "$SERVER_PID"
expect_served "expired channel, server down" "$V1" "$CH" --cache "$CACHE" "${TRUST[@]}" --retries 2
check_contains "offline: the warning names the version" "sequence 5" "$(cat "$TMP/expired channel, server down.err")"
check_contains "offline: ... and its age" "expired" "$(cat "$TMP/expired channel, server down.err")"
expect_refused "expired channel, server down, --require-fresh" "require-fresh" "$CH" --cache "$CACHE" \
  "${TRUST[@]}" --retries 2 --require-fresh

log "$CHECKS checks, $FAILURES failed"
exit $((FAILURES > 0))
