#!/usr/bin/env bash
# gc and diff benchmark (issue #12): wall time of `hloop diff` of two indexes
# (2 GiB images: 8192 chunks of 256 KiB; and 100,000-chunk images) and of
# `hloop gc` over a store of 100,000 chunk files in 10 versions. Goals: diff
# under 50 ms, gc under 10 s. There is no peer tool; it prints the figures
# against the goals and never fails on a missed one.
#
# The stores are synthetic (tools/synth_store): real indexes with a real
# PARENT chain, and one chunk file per distinct chunk, but each chunk file
# holds a few bytes standing in for 256 KiB. gc and diff read indexes, and
# list, stat and unlink chunk files; they never read a chunk's content.
#
# Environment:
#   HLOOP        hloop binary                      (default build/hloop)
#   SYNTH        hloop-synth-store binary          (default build/tools/synth_store/hloop-synth-store)
#   BENCH_REPEAT diff runs; the report shows the median (default 5)
#   BENCH_KEEP=1 keep the stores
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SYNTH=${SYNTH:-$REPO_DIR/build/tools/synth_store/hloop-synth-store}
REPEAT=${BENCH_REPEAT:-5}
need_hloop
[ -x "$SYNTH" ] || die "no $SYNTH (ninja -C build hloop-synth-store)"
make_workdir history
snapshot_hloop

# median_ms CMD...: runs CMD $REPEAT times, prints the median wall time in ms.
median_ms() {
    local i t0 t1 times=()
    for ((i = 0; i < REPEAT; i++)); do
        t0=$(now)
        "$@" >/dev/null
        t1=$(now)
        times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1000 }')")
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
# median_field FIELD CMD...: runs CMD (JSON output) $REPEAT times, prints the
# median of FIELD (seconds) in ms.
median_field() {
    local f=$1 i; shift
    for ((i = 0; i < REPEAT; i++)); do "$@" | jq ".$f * 1000"; done |
        sort -n | awk '{ v[NR] = $1 } END { printf "%.1f\n", v[int((NR + 1) / 2)] }'
}
verdict() { awk -v v="$1" -v g="$2" 'BEGIN { print (v + 0 < g + 0) ? "meets" : "misses" }'; }

log "indexes for diff: two 2 GiB images (8192 chunks), two of 100,000 chunks"
"$SYNTH" "$W/d2g" --no-files --versions 2 --chunks 8192 --change 820 >&2
"$SYNTH" "$W/d100k" --no-files --versions 2 --chunks 100000 --change 10000 >&2
diff2g=$(median_ms "$HLOOP" diff "$W/d2g/v1.idx" "$W/d2g/v2.idx" --json)
diff100k=$(median_ms "$HLOOP" diff "$W/d100k/v1.idx" "$W/d100k/v2.idx" --json)
in2g=$(median_field seconds "$HLOOP" diff "$W/d2g/v1.idx" "$W/d2g/v2.idx" --json)
in100k=$(median_field seconds "$HLOOP" diff "$W/d100k/v1.idx" "$W/d100k/v2.idx" --json)
info=$(median_ms "$HLOOP" --version)  # process start alone, for scale

log "store for gc: 10 versions, 100,000 distinct chunk files"
t0=$(now)
"$SYNTH" "$W/store" --versions 10 --chunks 20000 --change 8889 >&2
make_s=$(elapsed "$t0" "$(now)")
files=$(find "$W/store/chunks" -type f | wc -l)
find "$W/store/chunks" -type f -exec touch -d '2 days ago' {} +
sync
# 1: nothing to remove (every chunk still referenced): mark and scan only.
t0=$(now); "$HLOOP" gc "$W/store" --json >"$W/gc0.json"; gc_none=$(elapsed "$t0" "$(now)")
# 2: --keep-last 3 --dry-run: all the work but the unlinks.
t0=$(now); "$HLOOP" gc "$W/store" --keep-last 3 --dry-run --json >"$W/gc3d.json"; gc_dry=$(elapsed "$t0" "$(now)")
# 3: --keep-last 3: deletes 7 indexes and the chunks only they use.
t0=$(now); "$HLOOP" gc "$W/store" --keep-last 3 --json >"$W/gc3.json"; gc_keep=$(elapsed "$t0" "$(now)")
removed=$(jq '.chunks_removed | length' "$W/gc3.json")
left=$(find "$W/store/chunks" -type f | wc -l)
# The floor: rm of 5000 of the remaining chunk files, scaled to $removed files
# (the file system's unlink cost; on a disk mounted with 'discard' it is large).
RM_N=5000
find "$W/store/chunks" -type f | head -n $RM_N >"$W/rm.list" || true  # find gets SIGPIPE
sync
t0=$(now); xargs rm -f <"$W/rm.list"; rm_s=$(elapsed "$t0" "$(now)")
rm_scaled=$(awk -v s="$rm_s" -v n="$removed" -v m=$RM_N 'BEGIN { printf "%.1f", s * n / m }')
fs="$(findmnt -n -o FSTYPE,OPTIONS -T "$W")"

cat <<REPORT
## hloop diff and gc (bench/history.sh)

| what | wall time | goal | |
|---|---|---|---|
| diff of two 2 GiB-image indexes (8192 chunks of 256 KiB): read both + compare, in process | ${in2g} ms | < 50 ms | $(verdict "$in2g" 50) |
| \`hloop diff --json\` of the same, whole command (process start included) | ${diff2g} ms | | |
| diff of two 100,000-chunk indexes: read both + compare, in process | ${in100k} ms | | |
| \`hloop diff --json\` of the same, whole command | ${diff100k} ms | | |
| \`hloop --version\` (process start alone, for scale) | ${info} ms | | |
| \`hloop gc\` of a store of $files chunk files, 10 versions, nothing to remove | ${gc_none} s | < 10 s | $(verdict "$gc_none" 10) |
| \`hloop gc --keep-last 3 --dry-run\`: all but the unlinks ($removed chunk files to remove) | ${gc_dry} s | < 10 s | $(verdict "$gc_dry" 10) |
| \`hloop gc --keep-last 3\`: 7 indexes and $removed chunk files removed ($left left) | ${gc_keep} s | < 10 s | $(verdict "$gc_keep" 10) |
| \`rm\` of $RM_N chunk files of that store, scaled to $removed files (the file system's floor) | ${rm_scaled} s | | |

Medians of $REPEAT runs for diff. Store file system: \`$fs\`.

Synthetic store made in ${make_s} s by tools/synth_store (tiny stand-in chunk files).

\`\`\`
$(machine_info)
\`\`\`
REPORT
