#!/usr/bin/env bash
# Pack benchmark: hloop pack vs casync make vs create_compressed_fs (cloop), all
# on the same image, in one run. Prints wall time, output size and ratios.
# It measures; it never fails on a missed goal.
#
# Environment:
#   HLOOP            hloop binary              (default build/hloop)
#   BENCH_IMAGE      image to pack             (default: bench/make_rootfs.sh)
#   BENCH_TOOLS      which tools to run        (default "hloop casync cloop")
#   BENCH_HLOOP_ARGS extra arguments for hloop pack (default none: zstd level 3,
#                    threads = nproc)
#   BENCH_CACHE_MODE "hot" (default): the image is read into the page cache
#                    before each tool, so no tool pays for the disk;
#                    "cold": page cache dropped before each tool
#   BENCH_KEEP=1     keep the outputs
set -euo pipefail
. "$(dirname "$0")/lib.sh"

need_root
TOOLS=${BENCH_TOOLS:-hloop casync cloop}
CACHE_MODE=${BENCH_CACHE_MODE:-hot}
IMAGE=${BENCH_IMAGE:-$("$BENCH_DIR/make_rootfs.sh")}
[ -f "$IMAGE" ] || die "no image $IMAGE"
for t in $TOOLS; do
    case $t in
    hloop) need_hloop ;;
    casync) need_cmd casync casync ;;
    cloop) need_cmd create_compressed_fs cloop-utils ;;
    *) die "unknown tool $t" ;;
    esac
done

W=$(make_workdir pack)
IMG_BYTES=$(stat -c %s "$IMAGE")
RESULTS=$BENCH_CACHE/results
mkdir -p "$RESULTS"
REPORT=$RESULTS/pack-$(date +%Y%m%d-%H%M%S).txt

prepare() {
    drop_caches
    [ "$CACHE_MODE" = hot ] && warm_files "$IMAGE"
    return 0
}

declare -A SECS CPU RSS SIZE ALLOC SYNC FILES CMD
run_tool() { # NAME CMD...
    local name=$1 t0 t1
    shift
    CMD[$name]="$*"
    prepare
    log "$name: $*"
    SECS[$name]=$(timed_v "$W/$name.time" "$@") || die "$name failed"
    t0=$(now)
    sync
    t1=$(now)
    SYNC[$name]=$(elapsed "$t0" "$t1")
    CPU[$name]=$(cpu_from_timev "$W/$name.time")
    RSS[$name]=$(maxrss_from_timev "$W/$name.time")
    log "$name: ${SECS[$name]} s wall, ${CPU[$name]} s CPU, sync ${SYNC[$name]} s"
}

for t in $TOOLS; do
    case $t in
    hloop)
        # shellcheck disable=SC2086
        run_tool hloop "$HLOOP" pack "$IMAGE" "$W/hloop-store" --name rootfs --json ${BENCH_HLOOP_ARGS:-}
        SIZE[hloop]=$(du -sb "$W/hloop-store" | cut -f1)
        ALLOC[hloop]=$(du -sB1 "$W/hloop-store" | cut -f1)
        FILES[hloop]=$(find "$W/hloop-store" -type f | wc -l)
        HLOOP_JSON=$(cat "$W/hloop.time.out")
        ;;
    casync)
        mkdir -p "$W/casync-store"
        run_tool casync casync make --store="$W/casync-store" "$W/rootfs.caibx" "$IMAGE"
        SIZE[casync]=$(($(du -sb "$W/casync-store" | cut -f1) + $(stat -c %s "$W/rootfs.caibx")))
        ALLOC[casync]=$(($(du -sB1 "$W/casync-store" | cut -f1) + $(du -B1 "$W/rootfs.caibx" | cut -f1)))
        FILES[casync]=$(($(find "$W/casync-store" -type f | wc -l) + 1))
        ;;
    cloop)
        run_tool cloop create_compressed_fs -q -B 262144 "$IMAGE" "$W/rootfs.cloop"
        SIZE[cloop]=$(stat -c %s "$W/rootfs.cloop")
        ALLOC[cloop]=$(du -B1 "$W/rootfs.cloop" | cut -f1)
        FILES[cloop]=1
        ;;
    esac
done

{
    echo "## pack benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo
    machine_info | sed 's/^/    /'
    echo "    image: $IMAGE, $IMG_BYTES bytes ($(human "$IMG_BYTES")), page cache: $CACHE_MODE"
    echo
    echo "| tool | command | wall s | CPU s (user+sys) | max RSS MB | sync after s | output bytes (du -sb) | on disk (du -B1) | files | MB/s in |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for t in $TOOLS; do
        c=${CMD[$t]//$W\//}
        c=${c//$IMAGE/IMAGE}
        c=${c//$HLOOP/hloop}
        echo "| $t | \`$c\` | ${SECS[$t]} | ${CPU[$t]} | ${RSS[$t]} | ${SYNC[$t]} | ${SIZE[$t]} | ${ALLOC[$t]} | ${FILES[$t]} | $(mbps "$IMG_BYTES" "${SECS[$t]}") |"
    done
    echo
    [ -n "${HLOOP_JSON:-}" ] && echo "hloop pack --json: \`$(echo "$HLOOP_JSON" | tr -d '\n')\`" && echo
    if [ -n "${SECS[hloop]:-}" ] && [ -n "${SECS[casync]:-}" ]; then
        r=$(ratio "${SECS[casync]}" "${SECS[hloop]}")
        echo "- speed: casync time / hloop time = **$r** (goal >= 5: $(ge "$r" 5 && echo met || echo MISSED))"
    fi
    if [ -n "${SECS[hloop]:-}" ] && [ -n "${SECS[cloop]:-}" ]; then
        echo "- speed: cloop time / hloop time = $(ratio "${SECS[cloop]}" "${SECS[hloop]}")"
    fi
    if [ -n "${SIZE[hloop]:-}" ] && [ -n "${SIZE[cloop]:-}" ]; then
        r=$(ratio "${SIZE[hloop]}" "${SIZE[cloop]}")
        echo "- size: hloop store / cloop file = **$r** (goal <= 1: $(ge 1 "$r" && echo met || echo MISSED)); on disk (du -B1): $(ratio "${ALLOC[hloop]}" "${ALLOC[cloop]}")"
    fi
    if [ -n "${SIZE[hloop]:-}" ] && [ -n "${SIZE[casync]:-}" ]; then
        echo "- size: hloop store / casync store = $(ratio "${SIZE[hloop]}" "${SIZE[casync]}")"
    fi
    for t in $TOOLS; do
        echo "- $t output / image = $(ratio "${SIZE[$t]}" "$IMG_BYTES")"
    done
} | tee "$REPORT"
log "report saved to $REPORT"
