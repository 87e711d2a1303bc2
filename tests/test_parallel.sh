#!/usr/bin/env bash
# Parallelism is real: with the emulator at 50 ms, a cold sequential read
# through a FUSE mount issues many transfers at once (seen in the server's
# log) and is several times faster than with one transfer at a time.
#
# Concurrency is measured at the server, independently of hloop: nginx logs
# when each request arrived (answer time minus request time); with one
# transfer at a time, two requests arrive at least one round trip (50 ms)
# apart, since the next one is sent only after the previous answer is back.
# So the most requests that arrive within 40 ms is a lower bound of the
# transfers the client had in flight.
source "$(dirname "$0")/lib.sh"
requires_root
requires_fuse
requires nginx awk sort jq
requires_wanem

RTT=50
CS=262144
NCHUNKS=128
IMG=$TMP/disk.img
random_file "$IMG" $((NCHUNKS * CS))   # 32 MiB of random data: 128 distinct chunks
"$HLOOP" pack "$IMG" "$TMP/store" --name disk -q || fail "hloop pack failed"
check_eq "the store has one chunk file per chunk" "$NCHUNKS" "$(count_chunk_files "$TMP/store")"
SRC_SHA=$(sha "$IMG")

start_nginx_timed "$TMP/store"
start_wanem wan --rtt "$RTT"

# max_arrivals_within LOGFILE MS: the most chunk requests in LOGFILE (nginx
# timed format) that arrived within MS milliseconds of each other.
max_arrivals_within() {
  awk '$6 ~ /^\/chunks\// { printf "%.3f\n", $1 - $2 }' "$1" | sort -n |
    awk -v w="$2" '{ t[NR] = $1 * 1000 }
      END { m = 0; j = 1
            for (i = 1; i <= NR; i++) { while (t[i] - t[j] >= w) j++; if (i - j + 1 > m) m = i - j + 1 }
            print m }'
}

# cold_read NAME MOUNT-ARGS...: mount the image through the emulator with an
# empty cache, read it sequentially once, unmount.  Sets READ_MS (the read's
# wall time, in ms), CONC (max requests arriving within 40 ms) and
# REQS (chunk requests the server saw), and checks what was read.
cold_read() {
  local name=$1 l0 t0 t1 got; shift
  HLOOP_MOUNT_DAEMON=1 mount_image "$WURL/disk.idx" "$TMP/mnt-$name" --cache "$TMP/cache-$name" "$@"
  l0=$(wc -l <"$NGINX_LOG")
  t0=$EPOCHREALTIME
  got=$(timeout 120 dd if="$MOUNT_FILE" bs=1M status=none | sha256sum | cut -d' ' -f1) || got=error
  t1=$EPOCHREALTIME
  READ_MS=$(( (${t1/./} - ${t0/./}) / 1000 ))
  check_eq "$name: the image read through the mount is exact" "$SRC_SHA" "$got"
  timeout 10 "$HLOOP" stats "$TMP/mnt-$name" --json >"$TMP/stats-$name.json" 2>&1 || true
  unmount_fuse "$TMP/mnt-$name"
  sleep 0.2
  tail -n +$((l0 + 1)) "$NGINX_LOG" >"$TMP/server-$name.log"
  REQS=$(awk '$6 ~ /^\/chunks\//' "$TMP/server-$name.log" | wc -l)
  CONC=$(max_arrivals_within "$TMP/server-$name.log" $((RTT * 4 / 5)))
  log "$name: read 32 MiB in $READ_MS ms; $REQS chunk requests, up to $CONC arriving within $((RTT * 4 / 5)) ms"
  check_eq "$name: the server sent each chunk once" "$NCHUNKS" "$REQS"
}

# --- Parallel (the defaults).
cold_read parallel
PAR_MS=$READ_MS PAR_CONC=$CONC
check_ge "parallel: many transfers were in flight at once (requests arriving within one round trip)" "$PAR_CONC" 4

# --- One transfer at a time: --connections 1 (transfers in flight per server).
SERIAL=(--connections 1)
cold_read serial "${SERIAL[@]}"
SER_MS=$READ_MS SER_CONC=$CONC
check_le "serial (${SERIAL[*]}): one transfer at a time" "$SER_CONC" 1

log "speed-up of parallel over serial: $SER_MS ms / $PAR_MS ms"
check_ge "parallel is at least 3 times faster than one transfer at a time ($SER_MS ms vs $PAR_MS ms; x10 shown)" \
  $((SER_MS * 10 / (PAR_MS > 0 ? PAR_MS : 1))) 30

# hloop's own statistics, where it has them (`hloop stats MNT --json`).  Only
# the parallel figure is checked: the engine's count also holds the index and
# its probes while the mount starts, which overlap (three HEADs, the index) and
# are not chunk transfers, so ">= 8" rules them out as the reason.
if [[ -s $TMP/stats-parallel.json ]] && jq -e . "$TMP/stats-parallel.json" >/dev/null 2>&1; then
  check_ge "hloop stats: parallel .fetch.max_inflight" "$(jq -r '.fetch.max_inflight // 0' "$TMP/stats-parallel.json")" 8
  log "hloop stats: serial .fetch.max_inflight is $(jq -r '.fetch.max_inflight // "missing"' "$TMP/stats-serial.json" 2>/dev/null || echo missing)"
else
  soft_fail "hloop stats $TMP/mnt-parallel --json gave no JSON: $(head -c 300 "$TMP/stats-parallel.json" 2>/dev/null)"
fi
