#!/usr/bin/env bash
# Read benchmark: sequential read of the image through an hloop FUSE mount of a
# store served by nginx on 127.0.0.1, cold and warm, beside curl fetching the
# raw image from the same nginx. Prints MB/s (10^6 bytes/s) and ratios.
# It measures; it never fails on a missed goal (it does fail if the mounted
# file's content is wrong).
#
# Passes, in this order:
#   raw-cold        curl raw.img, page cache dropped (nginx reads the disk)
#   raw-hot         curl raw.img again (raw.img in the page cache)
#   hloop-cold      empty hloop cache dir, page cache dropped (nginx reads the
#                   store from disk), fresh mount
#   hloop-cold-srv  empty hloop cache dir, page cache dropped, then the store's
#                   files read into the page cache (a server with a hot cache),
#                   fresh mount
#   hloop-warm-dropped  hloop cache dir full, page cache dropped, fresh mount
#   hloop-warm-hot      hloop cache dir full, page cache not dropped, fresh mount
#   hloop-reread        the same file read again on that mount
#   cat-nocache     diagnostic, no FUSE: hloop cat URL -o /dev/null without a
#                   disk cache (fetch + decompress + verify only), store files
#                   in the page cache
#   cat-cache       the same with an empty --cache dir (adds cache writes)
# then the mounted file's SHA-256 is checked against the image's.
#
# Environment:
#   HLOOP, BENCH_IMAGE (default bench/make_rootfs.sh), BENCH_KEEP=1,
#   BENCH_MOUNT_ARGS   extra arguments for hloop mount (default: --cache-size 8G)
#   BENCH_PASSES       subset of the passes above (default all)
#   BENCH_READ_TIMEOUT seconds allowed for one read (default 900)
#   BENCH_READ_AHEAD_KB  experiment: after each mount, write this to the FUSE
#                      mount's /sys/class/bdi/MAJ:MIN/read_ahead_kb (the
#                      kernel caps a FUSE mount's readahead at 128 KiB, so its
#                      read requests are 128 KiB; default: leave it alone)
#   BENCH_REPEAT       run the whole sequence of passes this many times and
#                      report the median run of each pass (default 1)
#   BENCH_WAIT_IDLE    wait up to this many seconds before each pass for the
#                      machine to be quiet (< 10 % CPU busy); default 0
#   BENCH_PERF=1       profile the hloop daemon with perf during the cold
#                      passes (this slows them a little: use for diagnosis)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

need_root
need_hloop
need_cmd curl curl
need_cmd fusermount3 fuse3
IMAGE=${BENCH_IMAGE:-$("$BENCH_DIR/make_rootfs.sh")}
[ -f "$IMAGE" ] || die "no image $IMAGE"
MOUNT_ARGS=${BENCH_MOUNT_ARGS---cache-size 8G}
PASSES=${BENCH_PASSES:-raw-cold raw-hot hloop-cold hloop-cold-srv hloop-warm-dropped hloop-warm-hot hloop-reread cat-nocache cat-cache}
TMO=${BENCH_READ_TIMEOUT:-900}
REPEAT=${BENCH_REPEAT:-1}
NAME=rootfs
IMG_BYTES=$(stat -c %s "$IMAGE")
RESULTS=$BENCH_CACHE/results
mkdir -p "$RESULTS"
REPORT=$RESULTS/read-$(date +%Y%m%d-%H%M%S).txt

make_workdir read
snapshot_hloop
WWW=$W/www
MNT=$W/mnt
CACHE=$W/cache
mkdir -p "$MNT" "$CACHE"

# 1. pack into the directory nginx serves
log "packing $IMAGE"
t0=$(now)
"$HLOOP" pack "$IMAGE" "$WWW" --name "$NAME" --json >"$W/pack.json" 2>"$W/pack.err" ||
    { cat "$W/pack.err" >&2; die "hloop pack failed"; }
t1=$(now)
log "packed in $(elapsed "$t0" "$t1") s: $(tr -d '\n' <"$W/pack.json")"
IDX=$(cd "$WWW" && find . -name "$NAME.idx" -print -quit | sed 's|^\./||')
[ -n "$IDX" ] || die "no $NAME.idx under the store $WWW"
STORE_BYTES=$(du -sb "$WWW" | cut -f1)
# the raw image beside it (a hard link when possible: same file system)
ln "$IMAGE" "$WWW/raw.img" 2>/dev/null || ln -s "$IMAGE" "$WWW/raw.img"

start_nginx "$WWW" "$W/nginx"
BASE=http://127.0.0.1:$NGINX_PORT
URL=$BASE/$IDX

declare -A MBS NOTE
ORDER=()
RUNS=$W/runs.tsv
: >"$RUNS"
REP=1
BUSY=-

# record PASS SECONDS CPU CACHE-BYTES: one measurement
record() {
    [[ " ${ORDER[*]} " == *" $1 "* ]] || ORDER+=("$1")
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$REP" "$1" "$2" "$3" "$4" "$BUSY" >>"$RUNS"
    log "$1 (run $REP): $(mbps "$IMG_BYTES" "$2") MB/s ($2 s, hloop CPU $3)"
}

# read_file FILE PASS -> sets LAST_SECS: time a sequential read with dd bs=1M
read_file() {
    local f=$1 pass=$2 t0 t1 bytes
    t0=$(now)
    timeout "$TMO" dd if="$f" of=/dev/null bs=1M 2>"$W/$pass.dd" ||
        { cat "$W/$pass.dd" >&2; die "$pass: read of $f failed or timed out"; }
    t1=$(now)
    bytes=$(awk '/bytes/ { print $1; exit }' "$W/$pass.dd")
    [ "$bytes" = "$IMG_BYTES" ] || die "$pass: read $bytes bytes, expected $IMG_BYTES"
    LAST_SECS=$(elapsed "$t0" "$t1")
}

curl_raw() {
    local pass=$1 t0 t1 out
    t0=$(now)
    out=$(curl -sS -o /dev/null -w '%{http_code} %{size_download}' "$BASE/raw.img")
    t1=$(now)
    [ "$out" = "200 $IMG_BYTES" ] || die "$pass: curl said $out"
    record "$pass" "$(elapsed "$t0" "$t1")" - -
}

MOUNT_PID=
do_mount() {
    local pass=$1 t0 t1 i
    t0=$(now)
    # shellcheck disable=SC2086
    "$HLOOP" mount "$URL" "$MNT" --cache "$CACHE" --daemon --log "$W/$pass.daemon.log" $MOUNT_ARGS >"$W/$pass.mount.log" 2>&1 ||
        { cat "$W/$pass.mount.log" >&2; die "$pass: hloop mount failed"; }
    on_exit "mountpoint -q '$MNT' && { umount '$MNT' || fusermount3 -u -z '$MNT'; }"
    for ((i = 0; i < 300; i++)); do
        mountpoint -q "$MNT" && [ -e "$MNT/$NAME" ] && break
        sleep 0.1
    done
    [ -e "$MNT/$NAME" ] || die "$pass: $MNT/$NAME did not appear"
    t1=$(now)
    [ "$(stat -c %s "$MNT/$NAME")" = "$IMG_BYTES" ] || die "$pass: $MNT/$NAME has size $(stat -c %s "$MNT/$NAME"), expected $IMG_BYTES"
    RA_KB=$(cat "/sys/class/bdi/$(mountpoint -d "$MNT")/read_ahead_kb" 2>/dev/null || echo '?')
    if [ -n "${BENCH_READ_AHEAD_KB:-}" ]; then
        echo "$BENCH_READ_AHEAD_KB" >"/sys/class/bdi/$(mountpoint -d "$MNT")/read_ahead_kb" ||
            log "cannot set read_ahead_kb"
        RA_KB="$RA_KB, set to $(cat "/sys/class/bdi/$(mountpoint -d "$MNT")/read_ahead_kb")"
    fi
    # the daemon: the hloop process whose arguments name this mount point
    MOUNT_PID=$(ps -eo pid=,args= | awk -v m="$MNT" '$0 ~ /hloop/ && index($0, " " m " ") { print $1; exit }')
    log "$pass: mounted in $(elapsed "$t0" "$t1") s (daemon pid ${MOUNT_PID:-unknown})"
}

# do_umount PASS
do_umount() {
    local pass=$1 i
    umount "$MNT" 2>/dev/null || fusermount3 -u "$MNT" || die "cannot unmount $MNT"
    if [ -n "$MOUNT_PID" ]; then
        for ((i = 0; i < 100; i++)); do
            kill -0 "$MOUNT_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$MOUNT_PID" 2>/dev/null; then
            NOTE[$pass]="daemon $MOUNT_PID still running 10 s after unmount (killed)"
            log "${NOTE[$pass]}"
            kill "$MOUNT_PID" 2>/dev/null || true
        fi
    fi
    MOUNT_PID=
}

hloop_pass() { # PASS: mount, read, unmount
    local pass=$1 perf_pid='' secs reread='' cpu
    do_mount "$pass"
    if [[ $pass == hloop-cold* ]] && [ "$REP" = 1 ] && [ -n "$MOUNT_PID" ] && perf_ok; then
        perf record -F 499 -g -p "$MOUNT_PID" -o "$W/$pass.perf" >/dev/null 2>&1 &
        perf_pid=$!
        sleep 0.5
    fi
    read_file "$MNT/$NAME" "$pass"
    secs=$LAST_SECS
    cpu=n/a
    [ -n "$MOUNT_PID" ] && cpu=$(proc_cpu "$MOUNT_PID")
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid" 2>/dev/null; wait "$perf_pid" 2>/dev/null || true
        PERF_TXT+=$'\n'"[$pass] $(perf_summary "$W/$pass.perf")"
    fi
    if [[ " $PASSES " == *" hloop-reread "* ]] && [ "$pass" = hloop-warm-hot ]; then
        read_file "$MNT/$NAME" hloop-reread
        reread=$LAST_SECS
    fi
    if [ "$pass" = "$LAST_HLOOP_PASS" ] && [ "$REP" = 1 ]; then
        log "checking the mounted file's SHA-256"
        SUM=$(sha256sum "$MNT/$NAME" | cut -d' ' -f1)
    fi
    do_umount "$pass"
    record "$pass" "$secs" "$cpu" "$(du -sb "$CACHE" | cut -f1)"
    [ -n "$reread" ] && record hloop-reread "$reread" "(in the line above)" -
    return 0
}

PERF_TXT=
LAST_HLOOP_PASS=$(for p in $PASSES; do case $p in hloop-cold*|hloop-warm*) echo "$p" ;; esac; done | tail -1)
SUM=

for ((REP = 1; REP <= REPEAT; REP++)); do
    for p in $PASSES; do
        [ "$p" = hloop-reread ] && continue
        wait_idle
        case $p in
        raw-cold) drop_caches; curl_raw raw-cold ;;
        raw-hot) warm_files "$IMAGE"; curl_raw raw-hot ;;
        hloop-cold)
            rm -rf "$CACHE"; mkdir -p "$CACHE"; drop_caches
            hloop_pass hloop-cold ;;
        hloop-cold-srv)
            rm -rf "$CACHE"; mkdir -p "$CACHE"; drop_caches
            find "$WWW" -type f ! -name raw.img -exec cat {} + >/dev/null
            hloop_pass hloop-cold-srv ;;
        hloop-warm-dropped)
            [ -n "$(ls -A "$CACHE")" ] || die "hloop-warm-dropped needs a cold pass before it"
            drop_caches
            hloop_pass hloop-warm-dropped ;;
        hloop-warm-hot)
            [ -n "$(ls -A "$CACHE")" ] || die "hloop-warm-hot needs a cold pass before it"
            hloop_pass hloop-warm-hot ;;
        cat-nocache | cat-cache)
            find "$WWW" -type f ! -name raw.img -exec cat {} + >/dev/null
            rm -rf "$W/catcache"; mkdir -p "$W/catcache"
            cargs=()
            # shellcheck disable=SC2206
            [ "$p" = cat-cache ] && cargs=(--cache "$W/catcache" $MOUNT_ARGS)
            log "$p: hloop cat ${cargs[*]}"
            secs=$(timed_v "$W/$p.time" timeout "$TMO" "$HLOOP" cat "$URL" -o /dev/null "${cargs[@]}") ||
                die "$p: hloop cat failed"
            record "$p" "$secs" "$(cpu_split_from_timev "$W/$p.time")" "$(du -sb "$W/catcache" | cut -f1)"
            ;;
        *) die "unknown pass $p" ;;
        esac
    done
done

EXPECT=$(cat "$IMAGE.sha256" 2>/dev/null || sha256sum "$IMAGE" | cut -d' ' -f1)
VERIFY="not checked"
if [ -n "$SUM" ]; then
    if [ "$SUM" = "$EXPECT" ]; then VERIFY="ok (sha256 matches the image)"; else VERIFY="MISMATCH: mounted $SUM, image $EXPECT"; fi
fi

# median_row PASS: the run with the median time (the faster middle one for an
# even count), as "seconds<TAB>cpu<TAB>cache<TAB>busy<TAB>min MB/s<TAB>max MB/s"
median_row() {
    awk -F'\t' -v p="$1" -v n="$IMG_BYTES" '$2 == p' "$RUNS" | sort -t$'\t' -k3,3g |
        awk -F'\t' -v n="$IMG_BYTES" '{ r[NR] = $0; s[NR] = $3 }
            END { if (!NR) exit; m = int((NR + 1) / 2); split(r[m], f, "\t")
                  printf "%s\t%s\t%s\t%s\t%.1f\t%.1f\n", f[3], f[4], f[5], f[6], n / 1e6 / s[NR], n / 1e6 / s[1] }'
}

{
    echo "## read benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo
    machine_info | sed 's/^/    /'
    echo "    image: $IMAGE, $IMG_BYTES bytes ($(human "$IMG_BYTES")); store: $STORE_BYTES bytes"
    echo "    server: nginx $(nginx -v 2>&1 | sed 's|.*/||') on 127.0.0.1:$NGINX_PORT, sendfile on"
    echo "    mount: hloop mount $BASE/$IDX MNT --cache CACHEDIR --daemon $MOUNT_ARGS"
    echo "    read: dd if=MNT/$NAME of=/dev/null bs=1M; raw: curl -o /dev/null $BASE/raw.img"
    echo "    FUSE mount read_ahead_kb: ${RA_KB:-?}"
    echo "    runs per pass: $REPEAT (the table shows the median run; MB/s = 10^6 bytes/s)"
    echo
    echo "| pass | what | seconds | MB/s | MB/s range | hloop CPU s | cache dir bytes after | CPU busy % before |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|"
    for p in "${ORDER[@]}"; do
        case $p in
        raw-cold) what="curl raw.img, page cache dropped" ;;
        raw-hot) what="curl raw.img, raw.img in page cache" ;;
        hloop-cold) what="empty cache dir, page cache dropped (nginx reads the store from disk)" ;;
        hloop-cold-srv) what="empty cache dir, store files in page cache" ;;
        hloop-warm-dropped) what="full cache dir, page cache dropped, remounted" ;;
        hloop-warm-hot) what="full cache dir, page cache kept, remounted" ;;
        hloop-reread) what="second read on the same mount" ;;
        cat-nocache) what="diagnostic: hloop cat -o /dev/null, no disk cache, store in page cache" ;;
        cat-cache) what="diagnostic: hloop cat -o /dev/null, empty --cache dir, store in page cache" ;;
        *) what= ;;
        esac
        IFS=$'\t' read -r secs cpu cache busy lo hi <<<"$(median_row "$p")"
        MBS[$p]=$(mbps "$IMG_BYTES" "$secs")
        echo "| $p | $what | $secs | ${MBS[$p]} | $lo - $hi | $cpu | $cache | $busy |"
    done
    echo
    for p in "${!NOTE[@]}"; do echo "- note ($p): ${NOTE[$p]}"; done
    echo "- content check: $VERIFY"
    if [ -n "$PERF_TXT" ]; then echo; echo '```'; echo "$PERF_TXT"; echo '```'; echo; fi
    c=${MBS[hloop-cold]:-}
    [ -n "$c" ] && echo "- cold: **$c MB/s** (goal >= 400: $(ge "$c" 400 && echo met || echo MISSED))"
    c=${MBS[hloop-cold-srv]:-}
    [ -n "$c" ] && echo "- cold, server cache hot: **$c MB/s** (goal >= 400: $(ge "$c" 400 && echo met || echo MISSED))"
    for p in hloop-warm-dropped hloop-warm-hot; do
        c=${MBS[$p]:-}
        [ -n "$c" ] && echo "- $p: **$c MB/s** (goal >= 1000: $(ge "$c" 1000 && echo met || echo MISSED))"
    done
    for p in hloop-cold hloop-cold-srv hloop-warm-dropped hloop-warm-hot hloop-reread cat-nocache cat-cache; do
        [ -n "${MBS[$p]:-}" ] || continue
        line="- $p:"
        for r in raw-cold raw-hot; do
            [ -n "${MBS[$r]:-}" ] && line+=" / $r = $(ratio "${MBS[$p]}" "${MBS[$r]}");"
        done
        echo "${line%;}"
    done
    echo
    echo "All runs (run, pass, seconds, hloop CPU, cache bytes, CPU busy % before):"
    echo
    echo '```'
    cat "$RUNS"
    echo '```'
} | tee "$REPORT"
log "report saved to $REPORT"
case $VERIFY in MISMATCH*) die "content mismatch" ;; esac
