#!/usr/bin/env bash
# hloop-wanem, the WAN emulator other tests and benchmarks put between hloop
# and its server: real HTTP traffic (hloop serve on a packed random image)
# goes through it unchanged, and its latency, bandwidth cap and injected
# faults (corrupted byte, reset, stall) behave as documented in
# tools/wanem/proxy.h.  The timing checks test the emulator itself, with
# generous upper bounds; they assert nothing about hloop's speed.
source "$(dirname "$0")/lib.sh"
requires curl jq cmp

requires_wanem

# stop_wanem: SIGTERM (which writes the stats file) and check a clean exit.
stop_wanem() {
  stop_pid "$WPID" 5
  check_eq "hloop-wanem exits 0 on SIGTERM" 0 "$STOP_RC"
}

# ms SECONDS: curl's fractional seconds as integer milliseconds.
ms() { awk -v s="$1" 'BEGIN { printf "%d", s * 1000 }'; }

# --- a store with a 4 MiB chunk file (codec none: the file is the data)
random_file "$TMP/img" $((4 * 1024 * 1024 + 4096))
"$HLOOP" pack "$TMP/img" "$TMP/store" --chunk-size 4M --codec none -q
BIG=$(find "$TMP/store/chunks" -type f -size +4095k | head -n1)
[[ -n $BIG ]] || fail "pack made no 4 MiB chunk file"
REL=${BIG#"$TMP/store/"}
start_hloop_serve "$TMP/store"
curl -sSf -o "$TMP/direct" "$URL/$REL"
check_eq "direct download matches the chunk file" "$(sha "$BIG")" "$(sha "$TMP/direct")"

# --- (1) no faults: bytes arrive unchanged, also over many connections at once
start_wanem plain --rtt 20
curl -sSf -o "$TMP/plain" "$WURL/$REL"
check_eq "through the proxy: same sha256 as direct" "$(sha "$TMP/direct")" "$(sha "$TMP/plain")"
pids=()
for i in $(seq 1 32); do
  curl -sSf -o "$TMP/par.$i" "$WURL/$REL" & pids+=($!)
done
par_failed=0
for p in "${pids[@]}"; do wait "$p" || par_failed=$((par_failed + 1)); done
check_eq "32 parallel downloads through the proxy succeed" 0 "$par_failed"
bad=0
for i in $(seq 1 32); do cmp -s "$TMP/direct" "$TMP/par.$i" || bad=$((bad + 1)); done
check_eq "32 parallel downloads are all intact" 0 "$bad"
rm -f "$TMP"/par.*
stop_wanem
check "stats: 33 connections, no faults" jq_true \
  '.connections == 33 and .upstream_failures == 0 and .resets == 0 and .flips == 0 and .stalls == 0' \
  "$TMP/plain.json"
check "stats: server->client bytes cover 33 downloads" jq_true \
  ".bytes_server_to_client >= 33 * $(fsize "$BIG")" "$TMP/plain.json"

# --- (2) latency: a new connection pays 1 RTT handshake + 1 RTT request
start_wanem rtt --rtt 100
t=$(curl -sSf -o /dev/null -w '%{time_total}' "$URL/img.idx")
log "direct small request: $(ms "$t") ms"
t=$(curl -sSf -o "$TMP/idx" -w '%{time_total}' "$WURL/img.idx")
check_ge "--rtt 100: small request on a new connection takes >= 150 ms" "$(ms "$t")" 150
check_le "--rtt 100: ... and < 2 s" "$(ms "$t")" 1999
check "--rtt 100: index arrives intact" cmp -s "$TMP/idx" "$TMP/store/img.idx"
stop_wanem

# --- (3) bandwidth: 4 MiB at 2 MiB/s takes about 2 s
start_wanem rate --rate 2M
t=$(curl -sSf -o "$TMP/rate" -w '%{time_total}' "$WURL/$REL")
check_ge "--rate 2M: a 4 MiB download takes >= 1.7 s" "$(ms "$t")" 1700
check_le "--rate 2M: ... and < 10 s" "$(ms "$t")" 9999
check "--rate 2M: content intact" cmp -s "$TMP/direct" "$TMP/rate"
stop_wanem

# --- (4) a flipped byte: the same seed corrupts the same byte the same way
for run in 1 2; do
  start_wanem "flip$run" --flip-prob 1 --seed 7
  curl -sSf -o "$TMP/flip$run" "$WURL/$REL"
  stop_wanem
  check "--flip-prob 1 (run $run): stats count one flip" jq_true '.flips == 1' "$TMP/flip$run.json"
done
check_not "--flip-prob 1: the download differs from the source" cmp -s "$TMP/direct" "$TMP/flip1"
check_eq "--flip-prob 1: exactly one byte differs" 1 "$(cmp -l "$TMP/direct" "$TMP/flip1" | wc -l || true)"
check "--seed 7 twice: identical corrupted downloads" cmp -s "$TMP/flip1" "$TMP/flip2"

# --- (5) reset: curl sees the connection reset, with a partial body
start_wanem reset --reset-prob 1
rc=0
curl -sS -o "$TMP/reset" "$WURL/$REL" 2>"$TMP/reset.curl" || rc=$?
check_ne "--reset-prob 1: curl fails" 0 "$rc"
check_contains "--reset-prob 1: curl reports a reset" "reset" "$(cat "$TMP/reset.curl")"
check_le "--reset-prob 1: body is partial" "$(fsize "$TMP/reset" 2>/dev/null || echo 0)" $(($(fsize "$BIG") - 1))
stop_wanem
check "--reset-prob 1: stats count one reset" jq_true '.resets == 1' "$TMP/reset.json"

# --- a stall of 500 ms delays the download but loses nothing
start_wanem stall --stall-prob 1 --stall-ms 500
t=$(curl -sSf -o "$TMP/stall" -w '%{time_total}' "$WURL/$REL")
check_ge "--stall-ms 500: the download takes >= 500 ms" "$(ms "$t")" 500
check "--stall-ms 500: content intact" cmp -s "$TMP/direct" "$TMP/stall"
stop_wanem
check "--stall-ms 500: stats count one stall" jq_true '.stalls == 1' "$TMP/stall.json"

# --- usage errors exit 2
rc=0; "$WANEM" --connect 127.0.0.1:1 --rate 5X >/dev/null 2>&1 || rc=$?
check_eq "--rate 5X is a usage error" 2 "$rc"
rc=0; "$WANEM" >/dev/null 2>&1 || rc=$?
check_eq "missing --connect is a usage error" 2 "$rc"
