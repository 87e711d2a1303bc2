#!/usr/bin/env bash
# NBD read benchmark: warm sequential read of an image through `hloop nbd`
# against nbdkit's file plugin serving the same raw image (from the page
# cache), both on Unix sockets, read with `nbdcopy URI null:` (4 connections,
# many requests in flight, holes skipped via base:allocation on both).
# Prints MB/s (10^6 bytes/s) and the ratio hloop/nbdkit (goal >= 0.8).
# It measures; it never fails on a missed goal (it does fail if a copy of the
# hloop export differs from the image).
#
# Passes:
#   nbdkit        nbdkit -U S file IMAGE; IMAGE in the page cache
#   hloop-disk    hloop nbd with a full disk cache (hloop fetch --all) and the
#                 default 64M memory cache: every chunk is read from the cache
#                 file, checked (XXH3) and decompressed
#   hloop-memory  hloop nbd with a memory cache larger than the image, read
#                 once before measuring: chunks come from memory
#
# Environment:
#   HLOOP, BENCH_IMAGE (default: a generated image of BENCH_NBD_SIZE, default
#   1G: three quarters random data, one quarter zeros), BENCH_REPEAT (runs per
#   pass, the best is reported; default 3), BENCH_NBD_ARGS (extra arguments
#   for hloop nbd), BENCH_KEEP=1.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

need_hloop
need_cmd nbdcopy libnbd-bin
need_cmd nbdkit nbdkit
REPEAT=${BENCH_REPEAT:-3}
make_workdir nbd
snapshot_hloop

IMAGE=${BENCH_IMAGE:-}
if [ -z "$IMAGE" ]; then
    size=$(numfmt --from=iec "${BENCH_NBD_SIZE:-1G}")
    IMAGE=$W/disk.img
    log "generating a $(human "$size") image"
    head -c $((size / 4 * 3)) /dev/urandom >"$IMAGE"
    truncate -s "$size" "$IMAGE"
fi
SIZE=$(stat -c %s "$IMAGE")
log "packing $IMAGE"
"$HLOOP" pack "$IMAGE" "$W/store" --name disk >"$W/pack.log" 2>&1 || die "hloop pack failed"
log "filling the disk cache"
"$HLOOP" fetch "$W/store/disk.idx" --all --cache "$W/cache" >"$W/fetch.log" 2>&1 || die "hloop fetch --all failed"

# start_server NAME CMD...: run CMD in the background until it listens on
# $W/NAME.sock.
start_server() {
    local name=$1 i
    shift
    "$@" >"$W/$name.log" 2>&1 &
    on_exit "kill $!"
    for ((i = 0; i < 200; i++)); do
        [ -S "$W/$name.sock" ] && return 0
        sleep 0.1
    done
    die "$name did not start: $(cat "$W/$name.log")"
}

# best_of URI: the best MB/s of REPEAT runs of nbdcopy URI null:
best_of() {
    local uri=$1 best=0 r t0 t1 mb
    for ((r = 0; r < REPEAT; r++)); do
        t0=$(now)
        nbdcopy "$uri" null: || die "nbdcopy $uri failed"
        t1=$(now)
        mb=$(mbps "$SIZE" "$(elapsed "$t0" "$t1")")
        log "  $uri: $mb MB/s"
        ge "$mb" "$best" && best=$mb
    done
    echo "$best"
}

unix_uri() { echo "nbd+unix:///?socket=$W/$1.sock"; }

warm_files "$IMAGE"
start_server nbdkit nbdkit -f -U "$W/nbdkit.sock" file "$IMAGE"
wait_idle
log "nbdkit file plugin"
KIT=$(best_of "$(unix_uri nbdkit)")

# shellcheck disable=SC2086  # BENCH_NBD_ARGS is a list of arguments
start_server hloop-disk "$HLOOP" nbd "$W/store/disk.idx" --socket "$W/hloop-disk.sock" --cache "$W/cache" \
    ${BENCH_NBD_ARGS:-}
wait_idle
log "hloop nbd, disk cache"
DISK=$(best_of "$(unix_uri hloop-disk)")

mem=$(( (SIZE / 1048576 + 256) ))M
# shellcheck disable=SC2086
start_server hloop-memory "$HLOOP" nbd "$W/store/disk.idx" --socket "$W/hloop-memory.sock" --cache "$W/cache" \
    --memory-cache "$mem" ${BENCH_NBD_ARGS:-}
nbdcopy "$(unix_uri hloop-memory)" "$W/copy.img" || die "nbdcopy of the hloop export failed"
cmp -s "$IMAGE" "$W/copy.img" || die "the copy of the hloop export differs from the image"
rm -f "$W/copy.img"
wait_idle
log "hloop nbd, memory cache"
MEMORY=$(best_of "$(unix_uri hloop-memory)")

cat <<EOF
## hloop nbd vs nbdkit file (warm read, nbdcopy to null:)

image: $(human "$SIZE") ($IMAGE), best of $REPEAT runs; $(nproc) CPUs; load $(load_note)
hloop: $HLOOP_DESC

| server | MB/s | vs nbdkit |
|---|---|---|
| nbdkit file (page cache) | $KIT | 1.00 |
| hloop nbd, disk cache | $DISK | $(ratio "$DISK" "$KIT") |
| hloop nbd, memory cache | $MEMORY | $(ratio "$MEMORY" "$KIT") |
EOF
