# QEMU boot helpers shared by bench/boot.sh and bench/relayout.sh. Source it
# after lib.sh; do not run it. Defines functions only.
# shellcheck shell=bash
#
# The functions read these globals, which the calling script sets:
#   W            the work dir (logs, serial consoles, stats files)
#   IMAGE        the Debian image (bench/make_debian.sh); IMAGE.vmlinuz and
#                IMAGE.initrd beside it
#   APPEND       the kernel command line
#   TMO          wall seconds allowed for one boot
#   WANEM        hloop-wanem; WAN_ARGS: its extra arguments (e.g. --rate)
#   NGINX_PORT   the nginx that hloop-wanem forwards to (lib.sh start_nginx)
#   HLOOP, CACHE, NBD_ARGS, NBD_STATS (1: hloop nbd has --stats-file)
#   RETRY        how often run_row boots a disturbed row again
# and keep the ids of what they start in QEMU_PID, MOUNT_PID (the hloop
# daemon: mount or nbd), WAN_PID, NBDKIT_PID (the caller's clean-up stops them).

# start_wan NAME RTT: a fresh emulator in front of nginx; sets WAN_PORT
start_wan() {
    local name=$1 rtt=$2 i addr=''
    # shellcheck disable=SC2086
    "$WANEM" --listen 127.0.0.1:0 --connect "127.0.0.1:$NGINX_PORT" --rtt "$rtt" \
        --stats-file "$W/$name.wan.json" $WAN_ARGS >"$W/$name.wan.out" 2>"$W/$name.wan.err" &
    WAN_PID=$!
    for ((i = 0; i < 100; i++)); do
        addr=$(sed -n 's/^listening on //p' "$W/$name.wan.out" 2>/dev/null || true)
        [ -n "$addr" ] && break
        kill -0 "$WAN_PID" 2>/dev/null || break
        sleep 0.05
    done
    [ -n "$addr" ] || { cat "$W/$name.wan.err" >&2; die "hloop-wanem did not start"; }
    WAN_PORT=${addr##*:}
}
# stop_wan NAME -> sets WAN_BYTES (server to client)
stop_wan() {
    stop_pid "$WAN_PID" 10; WAN_PID=
    WAN_BYTES=$(grep -o '"bytes_server_to_client": *[0-9]*' "$W/$1.wan.json" 2>/dev/null | grep -o '[0-9]*$' || echo '?')
}

# cpu_jiffies -> "busy idle" jiffies of all CPUs; busy_since SNAPSHOT -> % busy since
cpu_jiffies() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat; }
busy_since() {
    awk -v a="$1" -v b="$(cpu_jiffies)" 'BEGIN { split(a, x, " "); split(b, y, " ")
        busy = y[1] - x[1]; idle = y[2] - x[2]
        printf "%.0f", (busy + idle) ? 100 * busy / (busy + idle) : 0 }'
}

# ours_jiffies: CPU time (user + system, all threads) of the processes this
# script runs for a boot: QEMU, the hloop daemon, hloop-wanem, nbdkit, nginx
ours_jiffies() {
    local p t=0 v
    for p in $QEMU_PID $MOUNT_PID $WAN_PID $NBDKIT_PID $NGINX_PID $(pgrep -P "$NGINX_PID" 2>/dev/null); do
        v=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null) || continue
        t=$((t + ${v:-0}))
    done
    echo "$t"
}
# rq_wait_ms PID...: milliseconds the threads of these processes spent runnable
# but waiting for a CPU (/proc/PID/task/*/schedstat, field 2)
rq_wait_ms() {
    local p
    for p in "$@"; do
        [ -n "$p" ] && cat /proc/"$p"/task/*/schedstat 2>/dev/null
    done | awk '{ w += $2 } END { printf "%.0f", w / 1e6 }'
}
# others_since SNAPSHOT OURS -> % of all CPUs used by anything else since then
others_since() {
    awk -v a="$1" -v b="$(cpu_jiffies)" -v o0="$2" -v o1="$(ours_jiffies)" 'BEGIN { split(a, x, " "); split(b, y, " ")
        busy = y[1] - x[1] - (o1 - o0); all = y[1] - x[1] + y[2] - x[2]
        if (busy < 0) busy = 0
        printf "%.0f", all ? 100 * busy / all : 0 }'
}

# boot NAME DRIVE-SPEC: boot QEMU on that disk; sets GUEST_S (guest seconds at
# the marker, or "timeout"/"failed"), WALL_S (wall seconds from T_START, set
# by the caller before preparing the disk, to the marker), ROOT_S (guest
# seconds at which the root file system was mounted), VDA_MB (MB the guest
# read from vda), VDA_IOS.
boot() {
    local name=$1 drive=$2 log=$W/$1.serial t_end line i
    GUEST_S=failed WALL_S=- ROOT_S=- VDA_MB=- VDA_IOS=- BOOT_BUSY=- OTHER_PCT=-
    QEMU_WAIT=- HELPERS_WAIT=- QEMU_WAIT_PCT=-
    : >"$log"
    local stat0 ours0 helpers_wait0 t0
    stat0=$(cpu_jiffies)
    ours0=$(ours_jiffies)
    helpers_wait0=$(rq_wait_ms $MOUNT_PID $NBDKIT_PID $WAN_PID)
    t0=$(now)
    # shellcheck disable=SC2086
    qemu-system-x86_64 -accel tcg -m 1024 -display none -monitor none -no-reboot \
        -serial "file:$log" -kernel "$IMAGE.vmlinuz" -initrd "$IMAGE.initrd" \
        -append "$APPEND" -drive "$drive" -snapshot ${BENCH_QEMU_ARGS:-} \
        >"$W/$name.qemu.out" 2>&1 &
    QEMU_PID=$!
    t_end=$((SECONDS + TMO))
    while :; do
        line=$(grep -a -o 'HLOOP-BOOT-FINISHED [0-9.]* vda_read_ios=[0-9]* vda_read_sectors=[0-9]*' "$log" | head -1 || true)
        if [ -n "$line" ]; then
            WALL_S=$(elapsed "$T_START" "$(now)")
            BOOT_BUSY=$(busy_since "$stat0")
            OTHER_PCT=$(others_since "$stat0" "$ours0")
            QEMU_WAIT=$(rq_wait_ms "$QEMU_PID")
            HELPERS_WAIT=$(( $(rq_wait_ms $MOUNT_PID $NBDKIT_PID $WAN_PID) - helpers_wait0 ))
            QEMU_WAIT_PCT=$(awk -v w="$QEMU_WAIT" -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", w / 10 / (b - a) }')
            break
        fi
        if ! kill -0 "$QEMU_PID" 2>/dev/null; then
            log "$name: QEMU exited without the marker"
            tail -5 "$W/$name.qemu.out" >&2
            break
        fi
        if [ "$SECONDS" -ge "$t_end" ]; then
            GUEST_S=timeout
            log "$name: no marker after $TMO s, killing QEMU"
            break
        fi
        sleep 0.1
    done
    if [ -n "$line" ]; then
        set -- $line
        GUEST_S=$2
        VDA_IOS=${3#vda_read_ios=}
        VDA_MB=$(awk -v s="${4#vda_read_sectors=}" 'BEGIN { printf "%.1f", s * 512 / 1e6 }')
        # let it power off by itself (it reads a little more on the way down)
        for ((i = 0; i < 600; i++)); do
            kill -0 "$QEMU_PID" 2>/dev/null || break
            sleep 0.1
        done
    fi
    stop_pid "$QEMU_PID" 5; QEMU_PID=
    ROOT_S=$(grep -a -o '\[ *[0-9.]*\] EXT4-fs (vda): mounted' "$log" | head -1 | grep -o '[0-9][0-9.]*' | head -1 || true)
    ROOT_S=${ROOT_S:--}
}

# stats_note NAME: a summary of `hloop stats --json` taken just before the unmount
stats_note() {
    [ -s "$W/$1.stats.json" ] && command -v jq >/dev/null 2>&1 || return 0
    jq -r '", stats: reads \(.reads.count) waited \(.reads.waits) (avg \(.reads.wait_ms_avg) ms, max \(.reads.wait_ms_max) ms), fetched \(.fetch.chunks) chunks \(.fetch.bytes) B in \(.fetch.transfers) transfers (max in flight \(.fetch.max_inflight)), read-ahead issued \(.readahead.issued) window \(.readahead.window), prefetch \(.prefetch.done)/\(.prefetch.total) useful \(.prefetch.useful)"' \
        "$W/$1.stats.json" 2>/dev/null | tr -d '\n' || true
}

# cache_note: chunks and bytes in the hloop cache dir
cache_note() {
    echo "cache $(find "$CACHE" -type f | wc -l) files $(du -sb "$CACHE" | cut -f1) B"
}

# start_nbd NAME URL SOCKET ARGS...: hloop nbd in the background on SOCKET,
# with a fresh cache; sets MOUNT_PID (it plays the mount daemon's part)
start_nbd() {
    local name=$1 url=$2 sock=$3 i
    shift 3
    rm -f "$sock"
    # shellcheck disable=SC2086
    "$HLOOP" nbd "$url" --socket "$sock" --cache "$CACHE" --log "$W/$name.daemon.log" ${NBD_STATS:+--stats-file "$W/$name.stats.json"} $NBD_ARGS "$@" \
        >"$W/$name.nbd.out" 2>&1 &
    MOUNT_PID=$!
    for ((i = 0; i < 600; i++)); do
        [ -S "$sock" ] && grep -q '^serving' "$W/$name.nbd.out" 2>/dev/null && break
        kill -0 "$MOUNT_PID" 2>/dev/null || break
        sleep 0.02
    done
    [ -S "$sock" ] || { cat "$W/$name.nbd.out" "$W/$name.daemon.log" >&2 2>/dev/null; die "$name: hloop nbd did not start"; }
}
stop_nbd() {
    DAEMON_CPU=n/a
    [ -n "$MOUNT_PID" ] && DAEMON_CPU=$(proc_cpu "$MOUNT_PID")
    stop_pid "$MOUNT_PID" 30; MOUNT_PID=
}

# run_row FUNCTION ARGS...: one boot; again (up to BENCH_RETRY_DISTURBED more
# times, after waiting for quiet) while other work used more than
# BENCH_OTHER_MAX % of the CPUs during it. Every attempt is listed.
run_row() {
    local a
    for ((a = 0; a <= RETRY; a++)); do
        "$@"
        [ "$LAST_DISTURBED" = 0 ] && return 0
        [ "$a" -lt "$RETRY" ] && log "other work used $OTHER_PCT % of the CPUs during that boot: booting the row again"
    done
    return 0
}
