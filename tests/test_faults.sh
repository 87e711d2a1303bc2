#!/usr/bin/env bash
# Faults on the wire (issue #3): through hloop-wanem injecting connection
# resets, stalls and flipped bytes, a full read of an image still matches the
# source SHA-256 exactly: resets and stalls are retried, flipped bytes fail
# the chunk's hash check and the chunk is fetched again.
source "$(dirname "$0")/lib.sh"
requires curl

requires_wanem

IMG=$TMP/disk.img
random_file "$IMG" $((32 * 1024 * 1024 + 12345))
"$HLOOP" pack "$IMG" "$TMP/store" --name disk -q || fail "hloop pack failed"
start_hloop_serve "$TMP/store"

start_wanem wan --rtt 10 --seed 7 --reset-prob 0.3 --stall-prob 0.2 --stall-ms 0 \
  --flip-prob 0.5 --fault-bytes 2M

rc=0
timeout 300 "$HLOOP" cat "$WURL/disk.idx" -o "$TMP/out.img" --stall-timeout 2 \
  --log "$TMP/cat.log" -v || rc=$?
check_eq "hloop cat through the faulty link exits 0" 0 "$rc"
check_eq "the image read through resets, stalls and flipped bytes is exact" "$(sha "$IMG")" "$(sha "$TMP/out.img")"

kill -USR1 "$WPID"; sleep 0.5
flips=$(jq .flips "$TMP/wan.json"); resets=$(jq .resets "$TMP/wan.json"); stalls=$(jq .stalls "$TMP/wan.json")
log "injected: $flips flips, $resets resets, $stalls stalls"
check_ge "bytes were flipped on the way" "$flips" 1
check_ge "faults of every kind were injected" $((flips + resets + stalls)) 3
check_contains "hloop noticed the flipped bytes (hash mismatch in its log)" "hash mismatch" "$(cat "$TMP/cat.log")"
