#!/usr/bin/env bash
# 9P benchmark: the Linux kernel's 9P client in a QEMU guest (TCG) runs the
# battery of tests/test_9p_guest.sh against diod (Debian's 9P2000.L server)
# and against `hloop 9p`, and this prints the guest's timings of each phase
# as a Markdown table with hloop/diod ratios.  Times are guest seconds
# (/proc/uptime in the guest): under TCG they include the guest's own
# (emulated) CPU time, so compare ratios from one run, not absolute values.
#
# Phases (tests/p9_guest/battery.sh and image.sh):
#   metadata    ls, cat, create, rename, link, chmod, ..., 5000 creates in one
#               directory and its listing (dir-5000 is also shown alone)
#   largeread   a 40 MiB file read in 1 MiB requests, sha256 in the guest
#   largewrite  a 48 MiB file written (dd bs=1M conv=fsync) and read back
#   smallfiles  1500 small files created, read and deleted (each also alone)
#   image       sha256 of every file of a read-only export (host /etc and
#               part of /usr/bin), busybox sha256sum (4 KiB reads)
# Measures only: it never fails on a slow server, but a phase whose steps
# failed in the guest is shown as FAIL (its time means nothing).
#
# Environment:
#   HLOOP               the hloop binary (default build/hloop); while it has no
#                       `9p` subcommand only diod is measured
#   BENCH_9P_SERVERS    servers to measure (default "diod hloop")
#   BENCH_REPEAT        runs per server; the table shows the median (default 1)
#   BENCH_9P_IMAGE=0    skip the image (read-only export) battery
#   BENCH_KEEP=1        keep the work dir (guest consoles, server logs)
#   HLOOP_GUEST_*       guest settings, see tests/lib_guest.sh (msize, cache
#                       mode via HLOOP_GUEST_OPTS=cache=loose, memory, ...)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$REPO_DIR/tests/lib_guest.sh"

need_root
need_cmd qemu-system-x86_64 qemu-system-x86
need_cmd diod diod
need_cmd cpio cpio
guest_busybox >/dev/null || die "no statically linked busybox (apt-get install busybox-static)"
ls /boot/vmlinuz-* >/dev/null 2>&1 || die "no kernel in /boot (apt-get install linux-image-amd64)"

read -r -a SERVERS <<<"${BENCH_9P_SERVERS:-diod hloop}"
REPEAT=${BENCH_REPEAT:-1}
DO_IMAGE=${BENCH_9P_IMAGE:-1}
RESULTS=$BENCH_CACHE/results
mkdir -p "$RESULTS"
REPORT=$RESULTS/9p-$(date +%Y%m%d-%H%M%S).txt

make_workdir 9p
GUEST_WORK=$W
chmod o+x "$W"   # diod checks the export path as user "nobody" first

kinds=()
for k in "${SERVERS[@]}"; do
    case $k in
        diod) kinds+=(diod) ;;
        hloop)
            if hloop_9p_available; then
                snapshot_hloop
                kinds+=(hloop)
            else
                log "hloop 9p is not built yet ($HLOOP has no 9p subcommand): measuring diod only"
                HLOOP_NOTE="hloop 9p not available ($HLOOP has no 9p subcommand): not measured"
            fi
            ;;
        *) die "unknown server $k (diod or hloop)" ;;
    esac
done
[ ${#kinds[@]} -gt 0 ] || die "no server to measure"

guest_setup
log "guest kernel $GUEST_KVER"
guest_initrd "$W/initrd.img"

# The image export: the host's /etc and /usr/bin files up to 16 MiB (the same
# as tests/test_9p_guest.sh).
if [ "$DO_IMAGE" = 1 ]; then
    IMG=$W/export-img
    mkdir -p "$IMG/usr/bin" "$W/image-extra"
    cp -a /etc "$IMG/etc"
    total=0
    while IFS= read -r -d '' f; do
        sz=$(stat -c %s "$f")
        [ $((total + sz)) -le $((16 * 1024 * 1024)) ] || continue
        cp -a "$f" "$IMG/usr/bin/"
        total=$((total + sz))
    done < <(find /usr/bin -maxdepth 1 -type f -print0 | LC_ALL=C sort -z)
    nl=$'\n'
    find "$IMG" \( -name '*\\*' -o -name "*$nl*" \) -delete
    (cd "$IMG" && find etc usr/bin -type f -print0 | xargs -0 -r sha256sum) | LC_ALL=C sort \
        >"$W/image-extra/manifest.sha256"
    IMG_FILES=$(wc -l <"$W/image-extra/manifest.sha256")
    IMG_BYTES=$(cd "$IMG" && find etc usr/bin -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
    guest_initrd "$W/initrd-image.img" "$W/image-extra"
fi

ROWS="metadata dir-5000 largeread largewrite smallfiles small-create small-read small-delete"
[ "$DO_IMAGE" = 1 ] && ROWS="$ROWS image"

# value LOGFILE ROW: the guest seconds of a phase or a step, or FAIL.
value() {
    local f=$1 r=$2 steps
    case $r in
        metadata|largeread|largewrite|smallfiles|image)
            # A phase fails if any step between the previous PHASE line and
            # its own failed.
            if awk -v p="$r" '/^PHASE / { if ($2 == p) { exit bad ? 0 : 1 } bad = 0 }
                              /^STEP [^ ]+ FAIL/ { bad = 1 }' "$f"; then
                echo FAIL
            else
                guest_phase "$f" "$r"
            fi ;;
        *)
            steps=$(guest_step "$f" "$r")
            if [ "${steps%% *}" = ok ]; then
                sed -n "s/^TIME $r //p" "$f" | tail -n1
            else
                echo FAIL
            fi ;;
    esac
}

# median of numbers (FAIL if any is FAIL or missing)
median() {
    local v
    for v in "$@"; do [[ $v =~ ^[0-9.]+$ ]] || { echo FAIL; return; }; done
    [ $# -gt 0 ] || { echo FAIL; return; }
    printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 }
        END { print (NR % 2) ? v[(NR + 1) / 2] : sprintf("%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

declare -A RES=()
for kind in "${kinds[@]}"; do
    for ((rep = 1; rep <= REPEAT; rep++)); do
        ex=$W/export-rw.$kind.$rep
        p9_prepare_rw_export "$ex"
        start_9p_server "$kind" "$ex"
        wait_idle
        logf=$W/console-rw.$kind.$rep.log
        log "$kind run $rep/$REPEAT: read-write battery (machine ${BUSY:-?}% busy)"
        p9_battery_words rw
        guest_run "$logf" "$W/initrd.img" "${P9_WORDS[@]}" ||
            log "$kind: the guest did not finish (see $logf)"
        _p9_stop "$P9_PID"
        grep -E '^STEP [^ ]+ FAIL' "$logf" >&2 || true
        for r in $ROWS; do
            [ "$r" = image ] && continue
            RES[$kind,$r]="${RES[$kind,$r]:-} $(value "$logf" "$r")"
        done
        RES[$kind,msize]=$(guest_value "$logf" msize)
        rm -rf "$ex"
        if [ "$DO_IMAGE" = 1 ]; then
            if [ "$kind" = hloop ] && ! "$HLOOP" 9p --help 2>&1 | grep -q -- '--read-only'; then
                RES[$kind,image]=" n/a"
                continue
            fi
            start_9p_server "$kind" "$IMG" ro
            wait_idle
            logf=$W/console-image.$kind.$rep.log
            log "$kind run $rep/$REPEAT: image battery"
            p9_battery_words image
            guest_run "$logf" "$W/initrd-image.img" "${P9_WORDS[@]}" ||
                log "$kind: the guest did not finish (see $logf)"
            _p9_stop "$P9_PID"
            grep -E '^STEP [^ ]+ FAIL' "$logf" >&2 || true
            RES[$kind,image]="${RES[$kind,image]:-} $(value "$logf" image)"
        fi
    done
done

label() {
    case $1 in
        metadata) echo "metadata (all metadata steps)" ;;
        dir-5000) echo "  of which: 5000 creates + listing" ;;
        largeread) echo "large read, 40 MiB" ;;
        largewrite) echo "large write, 48 MiB + read back" ;;
        smallfiles) echo "small files, 1500" ;;
        small-create) echo "  create" ;;
        small-read) echo "  read" ;;
        small-delete) echo "  delete (rm -r)" ;;
        image) echo "image: sha256 of ${IMG_FILES:-?} files, $(human "${IMG_BYTES:-0}")" ;;
    esac
}

{
    echo "# 9P benchmark: Linux 9P client in a QEMU guest (TCG), guest seconds"
    echo
    echo "guest kernel $GUEST_KVER, msize asked $GUEST_MSIZE (negotiated: $(for k in "${kinds[@]}"; do printf '%s %s; ' "$k" "${RES[$k,msize]:-?}"; done | sed 's/; $//'))"
    echo "mount options: trans=tcp,version=9p2000.L${GUEST_OPTS:+,$GUEST_OPTS} (cache=none unless given); runs per server: $REPEAT (median shown)"
    [ -n "${HLOOP_NOTE:-}" ] && echo "$HLOOP_NOTE"
    echo
    header="| phase |"
    sep="|---|"
    for k in "${kinds[@]}"; do header+=" $k (s) |"; sep+="---:|"; done
    has_ratio=0
    if [[ " ${kinds[*]} " == *" diod "* && " ${kinds[*]} " == *" hloop "* ]]; then
        header+=" hloop / diod |"; sep+="---:|"; has_ratio=1
    fi
    echo "$header"
    echo "$sep"
    for r in $ROWS; do
        line="| $(label "$r") |"
        for k in "${kinds[@]}"; do
            # shellcheck disable=SC2086
            RES[$k,$r,med]=$(median ${RES[$k,$r]:-FAIL})
            [ "${RES[$k,$r]:-}" = " n/a" ] && RES[$k,$r,med]=n/a
            line+=" ${RES[$k,$r,med]} |"
        done
        if [ $has_ratio = 1 ]; then
            a=${RES[hloop,$r,med]} b=${RES[diod,$r,med]}
            if [[ $a =~ ^[0-9.]+$ && $b =~ ^[0-9.]+$ ]]; then line+=" $(ratio "$a" "$b") |"; else line+=" - |"; fi
        fi
        echo "$line"
    done
    if [ "$REPEAT" -gt 1 ]; then
        echo
        echo "all runs:"
        for k in "${kinds[@]}"; do
            for r in $ROWS; do echo "  $k $r:${RES[$k,$r]:-}"; done
        done
    fi
    echo
    echo "large read: $(for k in "${kinds[@]}"; do v=${RES[$k,largeread,med]}; [[ $v =~ ^[0-9.]+$ ]] && printf '%s %s MB/s; ' "$k" "$(mbps $((40 * 1048576)) "$v")"; done | sed 's/; $//')"
    echo "large write (48 MiB written + read back): $(for k in "${kinds[@]}"; do v=${RES[$k,largewrite,med]}; [[ $v =~ ^[0-9.]+$ ]] && printf '%s %s MB/s; ' "$k" "$(mbps $((2 * 48 * 1048576)) "$v")"; done | sed 's/; $//')"
    echo
    echo "Guest seconds under TCG vary a lot with the host's load (the same server measured twice"
    echo "differed by up to 1.5x on a busy 2-core machine): use BENCH_REPEAT=3 BENCH_WAIT_IDLE=120."
    echo
    machine_info
} | tee "$REPORT"
log "report saved to $REPORT"
