#!/usr/bin/env bash
# Opening an image is as robust as reading it (issue #12): through hloop-wanem
# flipping bytes and resetting connections, the small files read to open an
# image are fetched again until a copy passes its check, like a corrupt chunk,
# and every open succeeds with exact output. Each open is repeated, so a
# regression (an index fetched once) shows as a failed open.
#
# The files fetched through the faulty link are listed in OPEN_TARGETS (a URL
# and what `hloop info` must print for it); a channel file or a signed index
# is one more entry there, on the same link.
source "$(dirname "$0")/lib.sh"
requires jq

requires_wanem

IMG=$TMP/disk.img
random_file "$IMG" $((2 * 1024 * 1024 + 777))
"$HLOOP" pack "$IMG" "$TMP/store" --name disk --chunk-size 64K -q || fail "hloop pack failed"
IDX_SHA=$(sha "$TMP/store/disk.idx")
IDX_SIZE=$(fsize "$TMP/store/disk.idx")
start_hloop_serve "$TMP/store"

# Faults fall in the first 2 index lengths of a connection's answers (where
# the index and the small files are), on most connections.
start_wanem wan --rtt 2 --seed 12 --flip-prob 0.7 --reset-prob 0.3 \
  --fault-bytes $((2 * IDX_SIZE))
BIG_WURL=$WURL BIG_WPID=$WPID

# A signed index and a channel: their signature and channel files cross the
# same faulty link, and must be retried until they arrive intact too.
"$HLOOP" key generate "$TMP/key" >/dev/null || fail "hloop key generate failed"
"$HLOOP" sign "$TMP/store/disk.idx" --key "$TMP/key" >/dev/null || fail "hloop sign failed"
"$HLOOP" publish "$TMP/store" --channel stable --index disk.idx --key "$TMP/key" >/dev/null ||
  fail "hloop publish failed"
TRUST="--trust-dir $TMP/none --trust $TMP/key.pub"
# The channel and the signature are a few hundred bytes: a second link puts
# its faults in the first 600 bytes of a connection's answers (headers and
# these small files), so they are hit too.
SMALL_WURL=$WURL
start_wanem small --rtt 2 --seed 7 --flip-prob 1 --reset-prob 0.2 --fault-bytes 600
SMALL_WURL=$WURL
WURL=$BIG_WURL

# URL, expected index digest, opens, and options of every target opened
# through a faulty link.
OPEN_TARGETS=("$WURL/disk.idx $IDX_SHA 10"
  "$SMALL_WURL/disk.idx $IDX_SHA 6 $TRUST"
  "$SMALL_WURL/stable.channel $IDX_SHA 10 $TRUST")

# open_through_faults URL DIGEST RUNS [OPTIONS...]: RUNS times `hloop info
# --json` (the index alone) and `hloop cat` (the whole image) through the
# faulty link.
open_through_faults() {
  local url=$1 digest=$2 runs=$3 i rc info_ok=0 cat_ok=0
  shift 3
  for ((i = 1; i <= runs; i++)); do
    rc=0
    timeout 120 "$HLOOP" info "$url" --json "$@" >"$TMP/info.$i.json" 2>>"$TMP/open.log" || rc=$?
    [[ $rc == 0 && $(jq -r .digest "$TMP/info.$i.json") == "$digest" ]] && info_ok=$((info_ok + 1))
    rc=0
    timeout 120 "$HLOOP" cat "$url" -o "$TMP/out.img" --stall-timeout 2 --log "$TMP/cat.$i.log" \
      -v "$@" 2>>"$TMP/open.log" || rc=$?
    [[ $rc == 0 && $(sha "$TMP/out.img") == "$(sha "$IMG")" ]] && cat_ok=$((cat_ok + 1))
    cat "$TMP/cat.$i.log" >>"$TMP/open.log"
    rm -f "$TMP/out.img"
  done
  check_eq "$url $*: $runs of $runs hloop info through flips and resets print the index digest" \
    "$runs" "$info_ok"
  check_eq "$url $*: $runs of $runs hloop cat through flips and resets give the exact image" \
    "$runs" "$cat_ok"
}

for target in "${OPEN_TARGETS[@]}"; do
  read -r url digest runs options <<<"$target"
  # shellcheck disable=SC2086  # options are words
  open_through_faults "$url" "$digest" "$runs" $options
done

flips=$(wanem_stat "$BIG_WPID" "$TMP/wan.json" flips)
resets=$(wanem_stat "$BIG_WPID" "$TMP/wan.json" resets)
log "injected: $flips flips, $resets resets"
check_ge "bytes were flipped on the way" "$flips" 1
check_ge "connections were reset on the way" "$resets" 1
# The faults hit the index itself (else this test shows nothing): a corrupt
# copy was refused and fetched again.
check_contains "a corrupt copy of the index was fetched again" \
  "checksum mismatch; fetching it again" "$(cat "$TMP/open.log")"
# ... and so were corrupt copies of the channel. (The signature comes later
# on its connection, where faults are rarer: that it arrives intact is what
# the opens above show; GetChecked's unit tests cover its retry.)
check "a corrupt copy of the channel was fetched again" \
  grep -qE 'stable\.channel: .*fetching it again' "$TMP/open.log"
