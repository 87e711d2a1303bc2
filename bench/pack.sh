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
#   BENCH_WAIT_IDLE  wait up to this many seconds before each tool for the
#                    machine to be quiet (< 10 % CPU busy); default 0
#   BENCH_REPEAT     runs of hloop and casync (cloop runs once unless
#                    BENCH_CLOOP_REPEAT=1: it takes minutes); the report shows
#                    the median run of each tool (default 1)
#   BENCH_KEEP=1     keep the outputs
#   BENCH_PERF=1     also profile hloop pack with perf (a second, untimed run)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

need_root
TOOLS=${BENCH_TOOLS:-hloop casync cloop}
CACHE_MODE=${BENCH_CACHE_MODE:-hot}
REPEAT=${BENCH_REPEAT:-1}
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

make_workdir pack
[[ " $TOOLS " == *" hloop "* ]] && snapshot_hloop
IMG_BYTES=$(stat -c %s "$IMAGE")
RESULTS=$BENCH_CACHE/results
mkdir -p "$RESULTS"
REPORT=$RESULTS/pack-$(date +%Y%m%d-%H%M%S).txt

prepare() {
    drop_caches
    [ "$CACHE_MODE" = hot ] && warm_files "$IMAGE"
    return 0
}

declare -A SECS CPU RSS SIZE ALLOC SYNC FILES CMD LOAD JSON NRUNS
ALLRUNS=()
# run_tool NAME REP CMD...: one timed run; results under the key NAME#REP
run_tool() {
    local name=$1 k="$1#$2" t0 t1
    shift 2
    CMD[$name]="$*"
    wait_idle
    prepare
    LOAD[$k]=$BUSY
    log "$name (run ${k#*#}): $* (CPU ${BUSY}% busy before)"
    SECS[$k]=$(timed_v "$W/$name.time" "$@") || die "$name failed"
    t0=$(now)
    sync
    t1=$(now)
    SYNC[$k]=$(elapsed "$t0" "$t1")
    CPU[$k]=$(cpu_from_timev "$W/$name.time")
    RSS[$k]=$(maxrss_from_timev "$W/$name.time")
    log "$name: ${SECS[$k]} s wall, ${CPU[$k]} s CPU, sync ${SYNC[$k]} s"
}

# Each run writes a new output directory; all are removed at the end, so no
# run pays for the deletion of another's files (ext4 inode allocation is
# slower right after many deletions).
for ((rep = 1; rep <= REPEAT; rep++)); do
    for t in $TOOLS; do
        [ "$t" = cloop ] && [ "$rep" -gt 1 ] && [ "${BENCH_CLOOP_REPEAT:-0}" != 1 ] && continue
        k="$t#$rep"
        case $t in
        hloop)
            # shellcheck disable=SC2086
            run_tool hloop "$rep" "$HLOOP" pack "$IMAGE" "$W/hloop-store.$rep" --name rootfs --json ${BENCH_HLOOP_ARGS:-}
            SIZE[$k]=$(du -sb "$W/hloop-store.$rep" | cut -f1)
            ALLOC[$k]=$(du -sB1 "$W/hloop-store.$rep" | cut -f1)
            FILES[$k]=$(find "$W/hloop-store.$rep" -type f | wc -l)
            JSON[$k]=$(tr -d '\n' <"$W/hloop.time.out")
            ;;
        casync)
            mkdir -p "$W/casync-store.$rep"
            run_tool casync "$rep" casync make --store="$W/casync-store.$rep" "$W/rootfs.$rep.caibx" "$IMAGE"
            SIZE[$k]=$(($(du -sb "$W/casync-store.$rep" | cut -f1) + $(stat -c %s "$W/rootfs.$rep.caibx")))
            ALLOC[$k]=$(($(du -sB1 "$W/casync-store.$rep" | cut -f1) + $(du -B1 "$W/rootfs.$rep.caibx" | cut -f1)))
            FILES[$k]=$(($(find "$W/casync-store.$rep" -type f | wc -l) + 1))
            ;;
        cloop)
            run_tool cloop "$rep" create_compressed_fs -q -B 262144 "$IMAGE" "$W/rootfs.$rep.cloop"
            SIZE[$k]=$(stat -c %s "$W/rootfs.$rep.cloop")
            ALLOC[$k]=$(du -B1 "$W/rootfs.$rep.cloop" | cut -f1)
            FILES[$k]=1
            ;;
        esac
        ALLRUNS+=("$k")
    done
done

# keep, per tool, the run with the median wall time (faster middle for an even count)
for t in $TOOLS; do
    mapfile -t ks < <(for k in "${ALLRUNS[@]}"; do [ "${k%#*}" = "$t" ] && echo "${SECS[$k]} $k"; done | sort -g | cut -d' ' -f2)
    m=${ks[$(((${#ks[@]} - 1) / 2))]}
    for arr in SECS CPU RSS SIZE ALLOC SYNC FILES LOAD JSON; do
        declare -n ref=$arr
        ref[$t]=${ref[$m]:-}
        unset -n ref
    done
    NRUNS[$t]=${#ks[@]}
done
HLOOP_JSON=${JSON[hloop]:-}

PERF_TXT=
if [[ " $TOOLS " == *" hloop "* ]] && perf_ok; then
    prepare
    log "profiling hloop pack with perf (untimed)"
    # shellcheck disable=SC2086
    perf record -F 499 -g -o "$W/pack.perf" -- "$HLOOP" pack "$IMAGE" "$W/hloop-perf-store" --name rootfs -q ${BENCH_HLOOP_ARGS:-} >/dev/null 2>"$W/perf.err" &&
        PERF_TXT=$(perf_summary "$W/pack.perf")
    rm -rf "$W/hloop-perf-store"
fi

{
    echo "## pack benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo
    machine_info | sed 's/^/    /'
    echo "    image: $IMAGE, $IMG_BYTES bytes ($(human "$IMG_BYTES")), page cache: $CACHE_MODE"
    echo
    echo "| tool | command | wall s | CPU s (user+sys) | max RSS MB | sync after s | output bytes (du -sb) | on disk (du -B1) | files | MB/s in | CPU busy % before | runs |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for t in $TOOLS; do
        c=${CMD[$t]//$W\//}
        c=${c//$IMAGE/IMAGE}
        c=${c//$HLOOP/hloop}
        c=$(sed -E 's/(store|rootfs)\.[0-9]+/\1/g' <<<"$c")
        echo "| $t | \`$c\` | ${SECS[$t]} | ${CPU[$t]} | ${RSS[$t]} | ${SYNC[$t]} | ${SIZE[$t]} | ${ALLOC[$t]} | ${FILES[$t]} | $(mbps "$IMG_BYTES" "${SECS[$t]}") | ${LOAD[$t]} | ${NRUNS[$t]} |"
    done
    echo
    [ -n "${HLOOP_JSON:-}" ] && echo "hloop pack --json: \`$(echo "$HLOOP_JSON" | tr -d '\n')\`" && echo
    if [ -n "${SECS[hloop]:-}" ] && [ -n "${SECS[casync]:-}" ]; then
        r=$(ratio "${SECS[casync]}" "${SECS[hloop]}")
        echo "- speed: casync time / hloop time = **$r** (goal >= 5: $(ge "$r" 5 && echo met || echo MISSED)); counting the sync after each: $(ratio "$(awk -v a="${SECS[casync]}" -v b="${SYNC[casync]}" 'BEGIN { print a + b }')" "$(awk -v a="${SECS[hloop]}" -v b="${SYNC[hloop]}" 'BEGIN { print a + b }')") (hloop pack ends with syncfs itself; casync and cloop do not sync)"
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
    if [ -n "$PERF_TXT" ]; then echo; echo '```'; echo "$PERF_TXT"; echo '```'; fi
    echo
    echo "All runs (tool#run: wall s, CPU s, sync s, output bytes, CPU busy % before):"
    echo
    echo '```'
    for k in "${ALLRUNS[@]}"; do echo "$k: ${SECS[$k]} ${CPU[$k]} ${SYNC[$k]} ${SIZE[$k]} ${LOAD[$k]}"; done
    echo '```'
} | tee "$REPORT"
log "report saved to $REPORT"
