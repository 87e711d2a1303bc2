#!/usr/bin/env bash
# Boot benchmark (the papers' boot table): boot a real Debian image
# (bench/make_debian.sh: debootstrap + systemd) in QEMU (TCG) and time it to
# the guest's boot-finished marker, in guest seconds (/proc/uptime when
# multi-user.target is reached), with the disk
#   local          the raw image file, page cache dropped
#   hloop-cold     hloop mount of the packed image, served by nginx through
#                  hloop-wanem at each RTT; empty cache dir, page cache dropped
#   hloop-profile  the same, with --profile FILE: the profile recorded by a
#                  previous boot (--record-profile), see BENCH_PROFILE_FROM
#   nbdkit         nbdkit's curl plugin with its readahead and cache filters on
#                  the raw image from the same nginx through the same emulator
#   nbd-cold       hloop nbd of the packed image on a Unix socket, QEMU's own
#                  NBD client as the disk (the way a hypervisor uses hloop);
#                  empty cache dir, through the same emulator
#   nbd-profile    the same, with --profile FILE recorded by a previous boot
#                  over hloop nbd
# Reports each as a ratio to the local boot, plus the bytes that crossed the
# emulated link (hloop-wanem's bytes_server_to_client, a fresh emulator per
# boot). It measures; it never fails on a missed goal.
#
# Every boot: qemu-system-x86_64 -accel tcg -m 1024 -kernel IMG.vmlinuz
# -initrd IMG.initrd -append 'root=/dev/vda console=ttyS0' -drive
# file=DISK,format=raw,if=virtio -snapshot (writes go to a temporary overlay).
# QEMU is killed if the marker does not appear within BENCH_BOOT_TIMEOUT.
#
# Order per repetition: local, local, the untimed profile recordings, then for
# each RTT: hloop-cold, hloop-profile, nbd-cold, nbd-profile, nbdkit; then
# local once more (three local boots per repetition, the table shows the
# median).
#
# Environment:
#   HLOOP, BENCH_CACHE, BENCH_KEEP=1, BENCH_WAIT_IDLE, BENCH_REPEAT (see lib.sh
#   and bench/README.md)
#   BENCH_IMAGE        the image (default: bench/make_debian.sh); IMAGE.vmlinuz
#                      and IMAGE.initrd must be beside it
#   BENCH_RTTS         RTTs in ms (default "0 50 100 200")
#   BENCH_ROWS         subset of "local hloop-cold hloop-profile nbd-cold
#                      nbd-profile nbdkit" (default: all)
#   BENCH_NBD_RTTS     RTTs of the nbd-* rows (default: BENCH_RTTS)
#   BENCH_MOUNT_ARGS   extra hloop mount arguments (default none)
#   BENCH_NBD_ARGS     extra hloop nbd arguments (default none)
#   BENCH_PROFILE_FROM where the profile comes from: "0" (default: one
#                      untimed cold boot at RTT 0 with --record-profile, used
#                      for every RTT) or "rtt" (a separate untimed cold boot
#                      with --record-profile at each RTT)
#   BENCH_NBDKIT_ARGS  extra nbdkit arguments (default "cache-on-read=true")
#   BENCH_WAN_ARGS     extra hloop-wanem arguments (default none: RTT only)
#   BENCH_BOOT_TIMEOUT seconds (wall) allowed for one boot (default 900)
#   BENCH_OTHER_MAX    a boot during which processes other than this
#                      benchmark's used more than this % of the CPUs (default
#                      10) is "disturbed": the row is booted again, up to
#                      BENCH_RETRY_DISTURBED times (default 2); all boots are
#                      listed, the medians use the clean ones
#   BENCH_QEMU_ARGS    extra QEMU arguments
#   BENCH_APPEND       extra kernel command line
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/boot_lib.sh"

need_root
need_hloop
need_cmd curl curl
need_cmd fusermount3 fuse3
need_cmd qemu-system-x86_64 qemu-system-x86
WANEM=${HLOOP_WANEM:-$(dirname "$HLOOP")/tools/wanem/hloop-wanem}
[ -x "$WANEM" ] || die "hloop-wanem not found at $WANEM (build target hloop-wanem)"
IMAGE=${BENCH_IMAGE:-$("$BENCH_DIR/make_debian.sh")}
[ -f "$IMAGE" ] || die "no image $IMAGE"
[ -f "$IMAGE.vmlinuz" ] && [ -f "$IMAGE.initrd" ] || die "no $IMAGE.vmlinuz / $IMAGE.initrd (bench/make_debian.sh makes them)"
RTTS=${BENCH_RTTS:-0 50 100 200}
ROWS=${BENCH_ROWS:-local hloop-cold hloop-profile nbd-cold nbd-profile nbdkit}
NBD_RTTS=${BENCH_NBD_RTTS:-$RTTS}
MOUNT_ARGS=${BENCH_MOUNT_ARGS:-}
NBD_ARGS=${BENCH_NBD_ARGS:-}
PROFILE_FROM=${BENCH_PROFILE_FROM:-0}
NBDKIT_ARGS=${BENCH_NBDKIT_ARGS-cache-on-read=true}
WAN_ARGS=${BENCH_WAN_ARGS:-}
TMO=${BENCH_BOOT_TIMEOUT:-900}
RETRY=${BENCH_RETRY_DISTURBED:-2}
LAST_DISTURBED=0
OTHER_MAX=${BENCH_OTHER_MAX:-10}
REPEAT=${BENCH_REPEAT:-1}
APPEND="root=/dev/vda console=ttyS0${BENCH_APPEND:+ $BENCH_APPEND}"
NAME=debian
IMG_BYTES=$(stat -c %s "$IMAGE")
RESULTS=$BENCH_CACHE/results
mkdir -p "$RESULTS"
REPORT=$RESULTS/boot-$(date +%Y%m%d-%H%M%S).txt
has_row() { [[ " $ROWS " == *" $1 "* ]]; }
if has_row nbdkit; then
    need_cmd nbdkit nbdkit
    [ -f "$(nbdkit --dump-config | sed -n 's/^plugindir=//p')/nbdkit-curl-plugin.so" ] ||
        die "nbdkit has no curl plugin"
fi

make_workdir boot
snapshot_hloop
cp "$WANEM" "$W/hloop-wanem"
WANEM=$W/hloop-wanem
WWW=$W/www
MNT=$W/mnt
CACHE=$W/cache
mkdir -p "$MNT" "$CACHE"
export TMPDIR=$W/tmp   # QEMU's -snapshot overlay, nbdkit's cache file
mkdir -p "$TMPDIR"

PROFILE_OK=0
MOUNT_HELP=$("$HLOOP" mount --help 2>/dev/null || true)
if [[ $MOUNT_HELP == *--record-profile* && $MOUNT_HELP == *--profile* ]]; then
    PROFILE_OK=1
fi
NBD_OK=0
"$HLOOP" nbd --help >/dev/null 2>&1 && NBD_OK=1
if ! [ "$NBD_OK" = 1 ] && { has_row nbd-cold || has_row nbd-profile; }; then
    log "this hloop has no nbd command: the nbd-* rows are skipped"
fi
STATS_OK=0
"$HLOOP" stats --help >/dev/null 2>&1 && STATS_OK=1

# --- the things a boot starts, stopped by one clean-up ------------------------
QEMU_PID='' WAN_PID='' NBDKIT_PID='' MOUNT_PID=''
stop_all() {
    stop_pid "$QEMU_PID" 5; QEMU_PID=
    if mountpoint -q "$MNT"; then umount "$MNT" 2>/dev/null || fusermount3 -u -z "$MNT" 2>/dev/null || true; fi
    stop_pid "$MOUNT_PID" 5; MOUNT_PID=
    stop_pid "$NBDKIT_PID" 5; NBDKIT_PID=
    stop_pid "$WAN_PID" 5; WAN_PID=
}
on_exit stop_all

# 1. pack into the directory nginx serves, the raw image beside it
log "packing $IMAGE"
t0=$(now)
"$HLOOP" pack "$IMAGE" "$WWW" --name "$NAME" --json >"$W/pack.json" 2>"$W/pack.err" ||
    { cat "$W/pack.err" >&2; die "hloop pack failed"; }
t1=$(now)
log "packed in $(elapsed "$t0" "$t1") s: $(tr -d '\n' <"$W/pack.json")"
IDX=$(cd "$WWW" && find . -name "$NAME.idx" -print -quit | sed 's|^\./||')
[ -n "$IDX" ] || die "no $NAME.idx under the store $WWW"
STORE_BYTES=$(du -sb "$WWW" | cut -f1)
ln "$IMAGE" "$WWW/$NAME.img" 2>/dev/null || cp "$IMAGE" "$WWW/$NAME.img"
start_nginx "$WWW" "$W/nginx"

# mount_hloop NAME URL ARGS...: fresh daemon mount at $MNT
mount_hloop() {
    local name=$1 url=$2 i
    shift 2
    # shellcheck disable=SC2086
    "$HLOOP" mount "$url" "$MNT" --cache "$CACHE" --daemon --log "$W/$name.daemon.log" $MOUNT_ARGS "$@" \
        >"$W/$name.mount.log" 2>&1 ||
        { cat "$W/$name.mount.log" "$W/$name.daemon.log" >&2 2>/dev/null; die "$name: hloop mount failed"; }
    for ((i = 0; i < 300; i++)); do
        mountpoint -q "$MNT" && [ -e "$MNT/$NAME" ] && break
        sleep 0.02
    done
    [ -e "$MNT/$NAME" ] || die "$name: $MNT/$NAME did not appear"
    MOUNT_PID=$(ps -eo pid=,args= | awk -v m="$MNT" '$0 ~ /hloop/ && index($0, " " m " ") { print $1; exit }')
}
umount_hloop() {
    local name=$1 i
    DAEMON_CPU=n/a
    [ -n "$MOUNT_PID" ] && DAEMON_CPU=$(proc_cpu "$MOUNT_PID")
    if [ "$STATS_OK" = 1 ]; then
        "$HLOOP" stats "$MNT" --json >"$W/$name.stats.json" 2>/dev/null || true
    fi
    umount "$MNT" 2>/dev/null || fusermount3 -u "$MNT" || die "cannot unmount $MNT"
    if [ -n "$MOUNT_PID" ]; then
        for ((i = 0; i < 300; i++)); do
            kill -0 "$MOUNT_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$MOUNT_PID" 2>/dev/null && { log "$name: daemon still running 30 s after unmount, killing it"; stop_pid "$MOUNT_PID" 2; }
    fi
    MOUNT_PID=
}

RUNS=$W/runs.tsv
: >"$RUNS"
REP=1
BUSY=-
# record ROW RTT DOWNLOADED-BYTES EXTRA: one boot, from the globals boot() set
record() {
    LAST_DISTURBED=0
    if [[ $OTHER_PCT =~ ^[0-9]+$ ]] && [ "$OTHER_PCT" -gt "$OTHER_MAX" ]; then LAST_DISTURBED=1; fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$REP" "$1" "$2" "$GUEST_S" "$WALL_S" "$ROOT_S" \
        "$3" "$VDA_MB" "$VDA_IOS" "${4:--}" "$BUSY" "$BOOT_BUSY" "$OTHER_PCT" \
        "$([ "$LAST_DISTURBED" = 1 ] && echo disturbed || echo clean)" >>"$RUNS"
    log "$1$([ "$2" = - ] || echo " @ $2 ms") (run $REP): guest $GUEST_S s to the marker (root mounted at $ROOT_S s), wall $WALL_S s, CPUs $BOOT_BUSY % busy (others $OTHER_PCT %), QEMU waited for a CPU $QEMU_WAIT ms ($QEMU_WAIT_PCT %), helpers $HELPERS_WAIT ms, guest read $VDA_MB MB in $VDA_IOS requests, downloaded $3 bytes${4:+, $4}"
}

row_local() {
    wait_idle
    drop_caches
    T_START=$(now)
    boot "local.$REP.$1" "file=$IMAGE,format=raw,if=virtio"
    record local - 0
}

# row_hloop ROW RTT [MOUNT ARGS...]
row_hloop() {
    local row=$1 rtt=$2 name extra
    shift 2
    name=$row.$rtt.$REP
    wait_idle
    rm -rf "$CACHE"; mkdir -p "$CACHE"
    drop_caches
    start_wan "$name" "$rtt"
    T_START=$(now)
    mount_hloop "$name" "http://127.0.0.1:$WAN_PORT/$IDX" "$@"
    boot "$name" "file=$MNT/$NAME,format=raw,if=virtio"
    umount_hloop "$name"
    stop_wan "$name"
    extra="hloop CPU s $DAEMON_CPU, $(cache_note)$(stats_note "$name")"
    record "$row" "$rtt" "$WAN_BYTES" "$extra"
}

NBD_STATS=''
[[ $("$HLOOP" nbd --help 2>/dev/null || true) == *--stats-file* ]] && NBD_STATS=1

# record_profile FRONT RTT -> PROFILE_FRONT: an untimed cold boot with
# --record-profile, FRONT being mount or nbd
record_profile() {
    local front=$1 rtt=$2 name=record-$1.$2.$REP profile url sock
    profile=$W/profile-$front.$rtt
    rm -f "$profile"
    rm -rf "$CACHE"; mkdir -p "$CACHE"
    drop_caches
    start_wan "$name" "$rtt"
    T_START=$(now)
    url="http://127.0.0.1:$WAN_PORT/$IDX"
    if [ "$front" = mount ]; then
        mount_hloop "$name" "$url" --no-profile --record-profile "$profile"
        boot "$name" "file=$MNT/$NAME,format=raw,if=virtio"
        umount_hloop "$name"
    else
        sock=$W/$name.sock
        start_nbd "$name" "$url" "$sock" --no-profile --record-profile "$profile"
        boot "$name" "file=nbd+unix:///?socket=$sock,format=raw,if=virtio"
        stop_nbd
    fi
    stop_wan "$name"
    [ -s "$profile" ] || die "no profile written to $profile"
    record "profile-record-$front" "$rtt" "$WAN_BYTES" "hloop CPU s $DAEMON_CPU, $(cache_note)$(stats_note "$name"), profile $(wc -l <"$profile") lines $(stat -c %s "$profile") B"
    cp "$profile" "$RESULTS/$(basename "$REPORT" .txt).profile-$front.$rtt"
    printf -v "PROFILE_$front" '%s' "$profile"
}

# row_nbd ROW RTT [NBD ARGS...]: QEMU's NBD client on hloop nbd
row_nbd() {
    local row=$1 rtt=$2 name sock
    shift 2
    name=$row.$rtt.$REP
    sock=$W/$name.sock
    wait_idle
    rm -rf "$CACHE"; mkdir -p "$CACHE"
    drop_caches
    start_wan "$name" "$rtt"
    T_START=$(now)
    start_nbd "$name" "http://127.0.0.1:$WAN_PORT/$IDX" "$sock" "$@"
    boot "$name" "file=nbd+unix:///?socket=$sock,format=raw,if=virtio"
    stop_nbd
    stop_wan "$name"
    record "$row" "$rtt" "$WAN_BYTES" "hloop CPU s $DAEMON_CPU, $(cache_note)$(stats_note "$name")"
}

row_nbdkit() {
    local rtt=$1 name=nbdkit.$1.$REP sock i
    wait_idle
    drop_caches
    start_wan "$name" "$rtt"
    sock=$W/$name.sock
    rm -rf "$TMPDIR"/*
    T_START=$(now)
    # shellcheck disable=SC2086
    nbdkit -f -U "$sock" --filter=readahead --filter=cache curl \
        "url=http://127.0.0.1:$WAN_PORT/$NAME.img" $NBDKIT_ARGS >"$W/$name.nbdkit.log" 2>&1 &
    NBDKIT_PID=$!
    for ((i = 0; i < 300; i++)); do
        [ -S "$sock" ] && break
        kill -0 "$NBDKIT_PID" 2>/dev/null || break
        sleep 0.02
    done
    [ -S "$sock" ] || { cat "$W/$name.nbdkit.log" >&2; die "nbdkit did not start"; }
    boot "$name" "file=nbd+unix:///?socket=$sock,format=raw,if=virtio"
    local cpu
    cpu=$(proc_cpu "$NBDKIT_PID")
    stop_pid "$NBDKIT_PID" 10; NBDKIT_PID=
    stop_wan "$name"
    record nbdkit "$rtt" "$WAN_BYTES" "nbdkit CPU s $cpu, $(grep -v '^$' "$W/$name.nbdkit.log" | head -3 | tr '\n' ' ' | cut -c1-200)"
}

in_list() { [[ " $2 " == *" $1 "* ]]; }
for ((REP = 1; REP <= REPEAT; REP++)); do
    if has_row local; then run_row row_local a; run_row row_local b; fi
    if [ "$PROFILE_OK" = 1 ] && [ "$PROFILE_FROM" != rtt ]; then
        has_row hloop-profile && record_profile mount "$PROFILE_FROM"
        has_row nbd-profile && [ "$NBD_OK" = 1 ] && record_profile nbd "$PROFILE_FROM"
    fi
    for rtt in $(echo "$RTTS" "$NBD_RTTS" | tr ' ' '\n' | sort -nu); do
        if in_list "$rtt" "$RTTS"; then
            has_row hloop-cold && run_row row_hloop hloop-cold "$rtt" --no-profile
            if has_row hloop-profile && [ "$PROFILE_OK" = 1 ]; then
                [ "$PROFILE_FROM" = rtt ] && record_profile mount "$rtt"
                run_row row_hloop hloop-profile "$rtt" --profile "$PROFILE_mount"
            fi
        fi
        if in_list "$rtt" "$NBD_RTTS" && [ "$NBD_OK" = 1 ]; then
            has_row nbd-cold && run_row row_nbd nbd-cold "$rtt" --no-profile
            if has_row nbd-profile && [ "$PROFILE_OK" = 1 ]; then
                [ "$PROFILE_FROM" = rtt ] && record_profile nbd "$rtt"
                run_row row_nbd nbd-profile "$rtt" --profile "$PROFILE_nbd"
            fi
        fi
        in_list "$rtt" "$RTTS" && has_row nbdkit && run_row row_nbdkit "$rtt"
    done
    if has_row local; then run_row row_local c; fi
done

# --- report ---------------------------------------------------------------
# median ROW RTT -> the median run (the faster middle one for an even count)
# of that row as its TSV line; boots that timed out sort last
median() {
    local sel
    sel=$(awk -F'\t' -v r="$1" -v t="$2" '$2 == r && $3 == t && $14 == "clean"' "$RUNS")
    [ -n "$sel" ] || sel=$(awk -F'\t' -v r="$1" -v t="$2" '$2 == r && $3 == t' "$RUNS")
    [ -n "$sel" ] || return 0
    echo "$sel" |
        awk -F'\t' 'BEGIN { OFS = "\t" } { k = ($4 ~ /^[0-9.]+$/) ? $4 : 1e9; print k, $0 }' |
        sort -t$'\t' -k1,1g | cut -f2- |
        awk '{ r[NR] = $0 } END { if (NR) print r[int((NR + 1) / 2)] }'
}
runs_of() { awk -F'\t' -v r="$1" -v t="$2" '$2 == r && $3 == t { printf "%s%s%s", (n++ ? ", " : ""), $4, ($14 == "clean" ? "" : " (disturbed)") }' "$RUNS"; }
mb() { case $1 in '' | - | '?') echo "$1" ;; *) awk -v n="$1" 'BEGIN { printf "%.1f", n / 1e6 }' ;; esac; }
num() { [[ $1 =~ ^[0-9.]+$ ]]; }

IFS=$'\t' read -r _ _ _ LOCAL_S LOCAL_WALL _ _ _ _ _ _ _ _ _ <<<"$(median local -)" || true
LOCAL_S=${LOCAL_S:-}
declare -A G
{
    echo "## boot benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo
    machine_info | sed 's/^/    /'
    echo "    qemu: $(qemu-system-x86_64 --version | head -1)"
    echo "    image: $IMAGE, $IMG_BYTES bytes ($(human "$IMG_BYTES")), $(tr '\n' ' ' <"$IMAGE.info")"
    echo "    store: $STORE_BYTES bytes; pack: $(tr -d '\n' <"$W/pack.json")"
    echo "    boot: qemu-system-x86_64 -accel tcg -m 1024 -kernel IMG.vmlinuz -initrd IMG.initrd -append '$APPEND' -drive DISK,format=raw,if=virtio -snapshot ${BENCH_QEMU_ARGS:-}"
    echo "    server: nginx $(nginx -v 2>&1 | sed 's|.*/||') on 127.0.0.1, through hloop-wanem --rtt RTT ${WAN_ARGS} (a fresh one per boot)"
    echo "    hloop: hloop mount http://WAN/$IDX MNT --cache EMPTYDIR --daemon $MOUNT_ARGS [--profile FILE]; DISK = file=MNT/$NAME"
    [ "$NBD_OK" = 1 ] && { has_row nbd-cold || has_row nbd-profile; } &&
        echo "    hloop nbd: hloop nbd http://WAN/$IDX --socket SOCK --cache EMPTYDIR $NBD_ARGS [--profile FILE]; DISK = file=nbd+unix:///?socket=SOCK"
    if [ "$PROFILE_OK" = 1 ]; then
        if [ "$PROFILE_FROM" = rtt ]; then
            echo "    profile: recorded at each RTT by an untimed cold boot with --record-profile FILE just before the profile row"
        else
            echo "    profile: recorded once per repetition, for each front end (mount, nbd), by an untimed cold boot at RTT $PROFILE_FROM ms with --record-profile FILE"
        fi
    else
        echo "    profile: NOT MEASURED: this hloop has no mount --record-profile/--profile"
    fi
    has_row nbdkit && echo "    nbdkit: $(nbdkit --version) -U SOCK --filter=readahead --filter=cache curl url=http://WAN/$NAME.img $NBDKIT_ARGS (cache file in an empty TMPDIR); DISK = file=nbd+unix:///?socket=SOCK"
    echo "    runs per row: $REPEAT (local: 3 per run); the table shows the median run of the clean boots (a boot is disturbed when other processes used > $OTHER_MAX % of the CPUs during it; such a row was booted again, up to $RETRY times)"
    echo
    echo "| row | RTT ms | guest s to marker | ratio to local | wall s to marker | root mounted at (guest s) | MB downloaded | MB read by the guest (requests) | CPU % during the boot: all / others | runs (guest s) |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    print_row() { # ROW RTT
        local row=$1 rtt=$2 m r
        m=$(median "$row" "$rtt")
        [ -n "$m" ] || return 0
        IFS=$'\t' read -r _ _ _ gs ws rs bytes vmb vios _ _ bb ob _ <<<"$m"
        r=n/a
        num "$gs" && num "$LOCAL_S" && r=$(ratio "$gs" "$LOCAL_S")
        G[$row.$rtt]=$gs
        echo "| $row | $rtt | $gs | $r | $ws | $rs | $(mb "$bytes") | $vmb ($vios) | $bb / $ob | $(runs_of "$row" "$rtt") |"
    }
    print_row local -
    for rtt in $(echo "$RTTS" "$NBD_RTTS" | tr ' ' '\n' | sort -nu); do
        for row in hloop-cold hloop-profile nbd-cold nbd-profile nbdkit; do print_row "$row" "$rtt"; done
    done
    for rtt in $(echo "$PROFILE_FROM" $RTTS | tr ' ' '\n' | grep -v rtt | sort -nu); do
        print_row profile-record-mount "$rtt"
        print_row profile-record-nbd "$rtt"
    done
    echo
    if num "$LOCAL_S"; then
        # goal LABEL LIMIT VALUE: "VALUE/local <= LIMIT"
        goal() {
            if num "$3"; then
                local r
                r=$(ratio "$3" "$LOCAL_S")
                echo "- goal: $1 <= ${2}x local: **${r}x** ($(ge "$2" "$r" && echo met || echo MISSED))"
            else
                echo "- goal: $1 <= ${2}x local: not measured (${3:-no row})"
            fi
        }
        # faster LABEL VALUE NBDKIT: nbdkit-curl / VALUE >= 3
        faster() {
            if num "$2" && num "$3"; then
                echo "- goal: $1 >= 3x faster than nbdkit-curl at 100 ms: nbdkit / hloop = **$(ratio "$3" "$2")x** ($(ge "$(ratio "$3" "$2")" 3 && echo met || echo MISSED))"
            elif num "$2" && [ "$3" = timeout ]; then
                echo "- goal: $1 >= 3x faster than nbdkit-curl at 100 ms: nbdkit timed out after $TMO s: >= $(ratio "$TMO" "$2")x (met)"
            fi
        }
        n=${G[nbdkit.100]:-}
        if has_row hloop-cold || has_row hloop-profile; then
            echo "Issue 3 (hloop mount, FUSE):"
            goal "mount at 100 ms with profile" 1.15 "${G[hloop-profile.100]:-}"
            goal "mount at 100 ms without profile" 1.5 "${G[hloop-cold.100]:-}"
            faster "mount without profile" "${G[hloop-cold.100]:-}" "$n"
            faster "mount with profile" "${G[hloop-profile.100]:-}" "$n"
        fi
        if has_row nbd-cold || has_row nbd-profile; then
            echo
            echo "Issue 4 (hloop nbd):"
            goal "nbd at 0 ms" 1.05 "${G[nbd-cold.0]:-}"
            goal "nbd at 100 ms with profile" 1.15 "${G[nbd-profile.100]:-}"
            goal "nbd at 100 ms without profile" 1.5 "${G[nbd-cold.100]:-}"
            faster "nbd without profile" "${G[nbd-cold.100]:-}" "$n"
        fi
    fi
    echo
    echo "All boots (run, row, RTT ms, guest s, wall s, root mounted at, bytes downloaded, MB read by the guest, guest read requests, notes, CPU busy % just before, CPU busy % during the boot (of 2 CPUs; QEMU alone keeps about one busy), % used by other processes than this benchmark's, clean/disturbed (others > $OTHER_MAX %: the row was booted again, up to $RETRY times; medians use the clean boots)):"
    echo
    echo '```'
    cat "$RUNS"
    echo '```'
} | tee "$REPORT"
log "report saved to $REPORT"
