#!/usr/bin/env bash
# Relayout benchmark (issue 14): the boot of bench/make_debian.sh's Debian
# image in QEMU (TCG) through `hloop nbd`, over a 100 ms, 20 Mbit/s link
# shared by all connections (hloop-wanem --rtt 100 --rate 2441K), from the
# original layout and from a profile-guided relayout of it, cold and with
# the boot profile; against the local boot, and against the floor: the
# compressed size of the blocks that boot reads.
#
# 1. hloop pack IMAGE WWW --name debian; nginx serves WWW.
# 2. One untimed boot through `hloop nbd http://NGINX/debian.idx --no-profile
#    --record-profile PROFILE` (no emulator) records the boot profile.
# 3. hloop relayout WWW/debian.idx --profile PROFILE --store WWW --name
#    debian-hot --json: store growth = bytes_added / store_bytes (also du).
#    The floor = the stored size of the chunk files a cold client of
#    debian-hot needs for the profile's reads (relayout's after.bytes_fetched):
#    the hot chunks, i.e. the profile's blocks packed densely in order of
#    first read and compressed as the store compresses; blocks of zeros are
#    zero extents there and cost nothing.
# 4. Rows, BENCH_REPEAT boots each (interleaved: one of each row per
#    repetition), fresh cache, page cache dropped, a fresh hloop-wanem per
#    boot:
#      local         the raw image as the virtio disk (no network)
#      orig-cold     hloop nbd WAN/debian.idx --no-profile
#      orig-profile  hloop nbd WAN/debian.idx --profile PROFILE
#      hot-cold      hloop nbd WAN/debian-hot.idx --no-profile
#      hot-profile   hloop nbd WAN/debian-hot.idx --profile PROFILE (the same
#                    profile: on the relaid-out index its prefetch walks the
#                    hot chunks)
#    QEMU's NBD client is the disk (drive file=nbd+unix:///?socket=SOCK).
# Per row (medians): guest seconds to HLOOP-BOOT-FINISHED, ratio to local,
# bytes that crossed the link (hloop-wanem's bytes_server_to_client: chunk
# files, index, HTTP headers), chunk files and chunk bytes hloop fetched
# (nbd --stats-file), link bytes / floor. The goals are printed beside the
# figures; a missed goal is reported, never an error.
#
# Environment (see also lib.sh and bench/README.md):
#   HLOOP, HLOOP_WANEM, BENCH_CACHE, BENCH_KEEP=1, BENCH_WAIT_IDLE
#   BENCH_IMAGE        the image (default: bench/make_debian.sh)
#   BENCH_REPEAT       boots per row (default 3; the table shows medians)
#   BENCH_ROWS         subset of "local orig-cold orig-profile hot-cold
#                      hot-profile" (default: all)
#   BENCH_RTT          ms (default 100)
#   BENCH_RATE         hloop-wanem --rate, bytes/s (default 2441K: 20 Mbit/s)
#   BENCH_WAN_ARGS     more hloop-wanem arguments
#   BENCH_NBD_ARGS     more hloop nbd arguments (every row)
#   BENCH_RELAYOUT_ARGS more hloop relayout arguments
#   BENCH_BOOT_TIMEOUT wall seconds allowed per boot (default 600)
#   BENCH_OTHER_MAX    a boot during which other processes used more than
#                      this % of the CPUs is "disturbed" (default 10)
#   BENCH_RETRY_DISTURBED  boot a disturbed row again up to N times
#                      (default 0: the run has a time budget; disturbed
#                      boots are marked and left out of the medians when the
#                      row has clean ones)
#   BENCH_STOP_AT      a time (date -d): no boot starts after it; the report
#                      lists what was skipped
#   BENCH_QEMU_ARGS, BENCH_APPEND  extra QEMU arguments, kernel command line
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/boot_lib.sh"

need_root
need_hloop
need_cmd jq jq
need_cmd qemu-system-x86_64 qemu-system-x86
WANEM=${HLOOP_WANEM:-$(dirname "$HLOOP")/tools/wanem/hloop-wanem}
[ -x "$WANEM" ] || die "hloop-wanem not found at $WANEM (build target hloop-wanem)"
"$HLOOP" relayout --help >/dev/null 2>&1 || die "this hloop has no relayout command"
[[ $("$HLOOP" nbd --help 2>/dev/null) == *--stats-file* ]] || die "this hloop nbd has no --stats-file"
IMAGE=${BENCH_IMAGE:-$("$BENCH_DIR/make_debian.sh")}
[ -f "$IMAGE" ] || die "no image $IMAGE"
[ -f "$IMAGE.vmlinuz" ] && [ -f "$IMAGE.initrd" ] || die "no $IMAGE.vmlinuz / $IMAGE.initrd (bench/make_debian.sh makes them)"

REPEAT=${BENCH_REPEAT:-3}
ROWS=${BENCH_ROWS:-local orig-cold orig-profile hot-cold hot-profile}
RTT=${BENCH_RTT:-100}
RATE=${BENCH_RATE:-2441K}
WAN_ARGS="--rate $RATE${BENCH_WAN_ARGS:+ $BENCH_WAN_ARGS}"
NBD_ARGS=${BENCH_NBD_ARGS:-}
NBD_STATS=1
RELAYOUT_ARGS=${BENCH_RELAYOUT_ARGS:-}
TMO=${BENCH_BOOT_TIMEOUT:-600}
OTHER_MAX=${BENCH_OTHER_MAX:-10}
RETRY=${BENCH_RETRY_DISTURBED:-0}
STOP_AT=''
[ -z "${BENCH_STOP_AT:-}" ] || STOP_AT=$(date -d "$BENCH_STOP_AT" +%s) || die "BENCH_STOP_AT: not a time"
APPEND="root=/dev/vda console=ttyS0${BENCH_APPEND:+ $BENCH_APPEND}"
NAME=debian
HOT=debian-hot
RESULTS=$BENCH_CACHE/results
mkdir -p "$RESULTS"
STAMP=$(date +%Y%m%d-%H%M%S)
REPORT=$RESULTS/relayout-$STAMP.txt
for r in $ROWS; do
    case $r in local | orig-cold | orig-profile | hot-cold | hot-profile) ;; *) die "BENCH_ROWS: unknown row $r" ;; esac
done
has_row() { [[ " $ROWS " == *" $1 "* ]]; }

make_workdir relayout
snapshot_hloop
cp "$WANEM" "$W/hloop-wanem"
WANEM=$W/hloop-wanem
WWW=$W/www
CACHE=$W/cache
export TMPDIR=$W/tmp # QEMU's -snapshot overlay
mkdir -p "$CACHE" "$TMPDIR"

QEMU_PID='' WAN_PID='' NBDKIT_PID='' MOUNT_PID=''
stop_all() {
    stop_pid "$QEMU_PID" 5; QEMU_PID=
    stop_pid "$MOUNT_PID" 5; MOUNT_PID=
    stop_pid "$WAN_PID" 5; WAN_PID=
}
on_exit stop_all

# --- 1. pack and serve ----------------------------------------------------
log "packing $IMAGE"
"$HLOOP" pack "$IMAGE" "$WWW" --name "$NAME" --json >"$W/pack.json" 2>"$W/pack.err" ||
    { cat "$W/pack.err" >&2; die "hloop pack failed"; }
[ -f "$WWW/$NAME.idx" ] || die "no $NAME.idx in the store $WWW"
STORE_DU0=$(du -sb "$WWW" | cut -f1)
start_nginx "$WWW" "$W/nginx"

RUNS=$W/runs.tsv
: >"$RUNS"
REP=0
BUSY=-
# record ROW: one boot into runs.tsv, from what boot() and the row set:
# rep row guest_s wall_s root_s link_bytes chunk_files chunk_bytes vda_mb
# other_pct clean|disturbed note
record() {
    LAST_DISTURBED=0
    if [[ $OTHER_PCT =~ ^[0-9]+$ ]] && [ "$OTHER_PCT" -gt "$OTHER_MAX" ]; then LAST_DISTURBED=1; fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$REP" "$1" "$GUEST_S" "$WALL_S" "$ROOT_S" \
        "$LINK_BYTES" "$CHUNK_FILES" "$CHUNK_BYTES" "$VDA_MB" "$OTHER_PCT" \
        "$([ "$LAST_DISTURBED" = 1 ] && echo disturbed || echo clean)" "${NOTE:--}" >>"$RUNS"
    log "$1 (run $REP): guest $GUEST_S s (root mounted at $ROOT_S s), wall $WALL_S s, link $LINK_BYTES B, $CHUNK_FILES chunk files $CHUNK_BYTES B, guest read $VDA_MB MB, CPUs $BOOT_BUSY % busy (others $OTHER_PCT %)${NOTE:+; $NOTE}"
}
# from_stats NAME: CHUNK_FILES, CHUNK_BYTES and NOTE from hloop nbd's stats file
from_stats() {
    local f=$W/$1.stats.json
    CHUNK_FILES='?' CHUNK_BYTES='?' NOTE="hloop CPU s $DAEMON_CPU"
    [ -s "$f" ] || { NOTE="$NOTE, no stats file"; return 0; }
    CHUNK_FILES=$(jq -r '.fetch.chunks' "$f")
    CHUNK_BYTES=$(jq -r '.fetch.bytes' "$f")
    NOTE="$NOTE$(stats_note "$1")"
}

# profile_desc FILE: its version, records, and (version 2) the bytes and 4 KiB blocks it names
profile_desc() {
    awk 'NR == 1 { v = $2; next } /^#/ || NF == 0 { next } { n++; b += $3 }
        END { printf "%s, %d records", v == "" ? "?" : "version " v, n
              if (v == 2) printf " naming %d bytes (%d blocks of 4 KiB)", b, b / 4096
              else printf " (chunk numbers)" }' "$1"
    echo ", $(stat -c %s "$1") B file"
}

# --- 2. the profile: an untimed boot, no emulator ---------------------------
PROFILE=$W/boot.profile
name=record
log "recording the boot profile (untimed boot through hloop nbd, no emulator)"
drop_caches
T_START=$(now)
start_nbd "$name" "http://127.0.0.1:$NGINX_PORT/$NAME.idx" "$W/$name.sock" --no-profile --record-profile "$PROFILE"
boot "$name" "file=nbd+unix:///?socket=$W/$name.sock,format=raw,if=virtio"
stop_nbd
[[ $GUEST_S =~ ^[0-9.]+$ ]] || die "the recording boot did not finish ($GUEST_S): see $W/$name.serial"
[ -s "$PROFILE" ] || die "no profile written to $PROFILE"
LINK_BYTES=-
from_stats "$name"
PROFILE_DESC=$(profile_desc "$PROFILE")
NOTE="$NOTE, profile: $PROFILE_DESC"
record profile-record
cp "$PROFILE" "$RESULTS/relayout-$STAMP.profile"
PROFILE_HEAD=$(head -1 "$PROFILE")

# --- 3. relayout ----------------------------------------------------------
log "hloop relayout $NAME -> $HOT"
t0=$(now)
# shellcheck disable=SC2086
"$HLOOP" relayout "$WWW/$NAME.idx" --profile "$PROFILE" --store "$WWW" --name "$HOT" --json \
    $RELAYOUT_ARGS >"$W/relayout.json" 2>"$W/relayout.err" ||
    { cat "$W/relayout.err" >&2; die "hloop relayout failed"; }
RELAYOUT_S=$(elapsed "$t0" "$(now)")
cp "$W/relayout.json" "$RESULTS/relayout-$STAMP.relayout.json"
STORE_DU1=$(du -sb "$WWW" | cut -f1)
rj() { jq -r "$1" "$W/relayout.json"; }
BYTES_ADDED=$(rj .bytes_added)
# relayout's store_bytes counts the new image's chunk files, hot chunks
# included; the store before is what pack stored (the store holds only it)
STORE_BYTES=$(rj .store_bytes)
STORE0=$(jq -r .stored_bytes "$W/pack.json")
FLOOR=$(rj .after.bytes_fetched)
log "relayout in $RELAYOUT_S s: $(rj .hot_chunks) hot chunks, $BYTES_ADDED B added to $STORE0 B; floor $FLOOR B"
[ "$(rj .dropped_bytes)" = 0 ] ||
    log "warning: relayout left $(rj .dropped_bytes) B of the profile out (extent table full): the floor includes the table chunks those bytes need"

# --- 4. the boots -----------------------------------------------------------
# row_local: the raw image, no network
row_local() {
    local name=local.$REP
    wait_idle
    drop_caches
    T_START=$(now)
    boot "$name" "file=$IMAGE,format=raw,if=virtio"
    LINK_BYTES=0 CHUNK_FILES=0 CHUNK_BYTES=0 NOTE=
    record local
}
# row_nbd ROW INDEX NBD-ARGS...: QEMU on hloop nbd of WAN/INDEX, fresh cache
row_nbd() {
    local row=$1 idx=$2 name=$1.$REP sock
    shift 2
    sock=$W/$name.sock
    wait_idle
    rm -rf "$CACHE"; mkdir -p "$CACHE"
    drop_caches
    start_wan "$name" "$RTT"
    T_START=$(now)
    start_nbd "$name" "http://127.0.0.1:$WAN_PORT/$idx" "$sock" "$@"
    boot "$name" "file=nbd+unix:///?socket=$sock,format=raw,if=virtio"
    stop_nbd
    stop_wan "$name"
    LINK_BYTES=$WAN_BYTES
    from_stats "$name"
    record "$row"
}
SKIPPED=''
# maybe_boot ROW FUNCTION ARGS...: boot the row unless BENCH_STOP_AT has passed
maybe_boot() {
    local row=$1
    shift
    has_row "$row" || return 0
    if [ -n "$STOP_AT" ] && [ "$(date +%s)" -ge "$STOP_AT" ]; then
        log "BENCH_STOP_AT ($BENCH_STOP_AT) has passed: $row of run $REP skipped"
        SKIPPED="$SKIPPED $row($REP)"
        return 0
    fi
    run_row "$@"
}
for ((REP = 1; REP <= REPEAT; REP++)); do
    maybe_boot local row_local
    maybe_boot orig-cold row_nbd orig-cold "$NAME.idx" --no-profile
    maybe_boot orig-profile row_nbd orig-profile "$NAME.idx" --profile "$PROFILE"
    maybe_boot hot-cold row_nbd hot-cold "$HOT.idx" --no-profile
    maybe_boot hot-profile row_nbd hot-profile "$HOT.idx" --profile "$PROFILE"
done

# --- report -----------------------------------------------------------------
num() { [[ $1 =~ ^[0-9.]+$ ]]; }
mb() { if num "$1"; then awk -v n="$1" 'BEGIN { printf "%.1f", n / 1e6 }'; else echo "${1:--}"; fi; }
# col ROW FIELD -> the median of that column over the row's clean boots (all
# boots if none is clean); a boot that timed out or failed counts as slower
# than any other
col() {
    local sel
    sel=$(awk -F'\t' -v r="$1" '$2 == r && $11 == "clean"' "$RUNS")
    [ -n "$sel" ] || sel=$(awk -F'\t' -v r="$1" '$2 == r' "$RUNS")
    [ -n "$sel" ] || return 0
    echo "$sel" | awk -F'\t' -v f="$2" '{ v = $f; print (v ~ /^[0-9.]+$/) ? v : 1e18 }' | sort -g |
        awk '{ r[NR] = $0 } END { m = r[int((NR + 1) / 2)]; if (m == 1e18) print "-"; else print m }'
}
runs_of() { awk -F'\t' -v r="$1" '$2 == r { printf "%s%s%s", (n++ ? ", " : ""), $3, ($11 == "clean" ? "" : " (disturbed)") }' "$RUNS"; }
count_of() { awk -F'\t' -v r="$1" '$2 == r && $11 == "clean" { n++ } END { print n + 0 }' "$RUNS"; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.1f", 100 * a / b }'; }

LOCAL_S=$(col local 3)
declare -A GS LB
{
    echo "## relayout benchmark (issue 14), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo
    machine_info | sed 's/^/    /'
    echo "    qemu: $(qemu-system-x86_64 --version | head -1)"
    echo "    image: $IMAGE, $(stat -c %s "$IMAGE") bytes, $(tr '\n' ' ' <"$IMAGE.info")"
    echo "    pack: hloop pack IMAGE WWW --name $NAME: $(tr -d '\n' <"$W/pack.json")"
    echo "    boot: qemu-system-x86_64 -accel tcg -m 1024 -kernel IMG.vmlinuz -initrd IMG.initrd -append '$APPEND' -drive DISK,format=raw,if=virtio -snapshot ${BENCH_QEMU_ARGS:-}"
    echo "    network rows: nginx $(nginx -v 2>&1 | sed 's|.*/||') on 127.0.0.1 behind a fresh hloop-wanem --rtt $RTT $WAN_ARGS per boot; hloop nbd http://WAN/INDEX --socket SOCK --cache EMPTYDIR --stats-file F $NBD_ARGS (--no-profile | --profile PROFILE); DISK = file=nbd+unix:///?socket=SOCK; page cache dropped before each boot"
    echo "    profile: one untimed boot through hloop nbd http://NGINX/$NAME.idx --no-profile --record-profile PROFILE (no emulator): $PROFILE_DESC; saved as $RESULTS/relayout-$STAMP.profile"
    echo "    relayout: hloop relayout WWW/$NAME.idx --profile PROFILE --store WWW --name $HOT --json $RELAYOUT_ARGS, $RELAYOUT_S s:"
    jq -c . "$W/relayout.json" | sed 's/^/        /'
    echo "    boots per row: $REPEAT, interleaved (one of each row per run); a boot is disturbed when other processes used > $OTHER_MAX % of the CPUs during it (booted again up to $RETRY times); each column below is the median over the row's clean boots"
    [ -z "$SKIPPED" ] || echo "    skipped (BENCH_STOP_AT=$BENCH_STOP_AT):$SKIPPED"
    echo
    echo "Store: $STORE0 B of chunk files before the relayout (pack's stored_bytes); relayout added $BYTES_ADDED B ($(pct "$BYTES_ADDED" "$STORE0") %), the relaid-out image's chunk files are $STORE_BYTES B (relayout's store_bytes, hot chunks included; du of the store directory, indexes included: $STORE_DU0 -> $STORE_DU1 B, +$(pct $((STORE_DU1 - STORE_DU0)) "$STORE_DU0") %). Indexes (fetched once per boot, part of the link bytes): $NAME.idx $(stat -c %s "$WWW/$NAME.idx") B, $HOT.idx $(stat -c %s "$WWW/$HOT.idx") B."
    echo "Floor: $(mb "$FLOOR") MB = the $(rj .hot_chunks) hot chunk files a cold client of $HOT needs for the profile's reads ($(rj .after.chunk_files) chunk files; relayout's after.bytes_fetched): the $(mb "$(rj .profile_bytes)") MB the profile read, $(mb "$(rj .hot_bytes_packed)") MB of it not zero, packed in order of first read and compressed$(case $PROFILE_HEAD in "hloop-profile 1") echo "; this profile (format 1) names whole chunks, so the floor is the profiled chunks recompressed, not the blocks read" ;; esac). The same reads on $NAME's layout touch $(rj .before.chunk_files) chunk files of $(mb "$(rj .before.bytes_fetched)") MB ($(ratio "$(rj .before.bytes_fetched)" "$FLOOR")x the floor)."
    echo
    echo "| row | guest s | ratio to local | wall s | MB over the link | link bytes / floor | chunk files fetched | chunk MB fetched | chunk bytes / floor | clean boots | runs (guest s) |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    for row in local orig-cold orig-profile hot-cold hot-profile profile-record; do
        [ -n "$(awk -F'\t' -v r="$row" '$2 == r' "$RUNS")" ] || continue
        gs=$(col "$row" 3)
        lb=$(col "$row" 6)
        cb=$(col "$row" 8)
        r=n/a
        num "$gs" && num "$LOCAL_S" && r=$(ratio "$gs" "$LOCAL_S")
        GS[$row]=$gs LB[$row]=$lb
        lf=- cf=-
        if [ "$row" != local ]; then
            num "$lb" && lf=$(ratio "$lb" "$FLOOR")
            num "$cb" && cf=$(ratio "$cb" "$FLOOR")
        fi
        echo "| $row | $gs | $r | $(col "$row" 4) | $(mb "$lb") | $lf | $(col "$row" 7) | $(mb "$cb") | $cf | $(count_of "$row") | $(runs_of "$row") |"
    done
    echo
    echo "(profile-record: the untimed recording boot, no emulator; its link bytes are not measured.)"
    echo
    echo "Goals (issue 14):"
    # goal_local LABEL LIMIT ROW: guest s / local <= LIMIT
    goal_local() {
        local g=${GS[$3]:-}
        if num "$g" && num "$LOCAL_S"; then
            local r
            r=$(ratio "$g" "$LOCAL_S")
            echo "- $1 <= ${2}x the local boot: $3 **${r}x** ($(ge "$2" "$r" && echo met || echo MISSED))"
        else
            echo "- $1 <= ${2}x the local boot: not measured (${g:-no $3 row})"
        fi
    }
    b=${LB[hot-cold]:-}
    if num "$b"; then
        r=$(ratio "$b" "$FLOOR")
        echo "- bytes fetched by a cold boot <= 1.15x the floor: hot-cold **${r}x** ($(ge 1.15 "$r" && echo met || echo MISSED)); link bytes, index and HTTP included; orig-cold: $(num "${LB[orig-cold]:-}" && ratio "${LB[orig-cold]}" "$FLOOR" || echo -)x"
    else
        echo "- bytes fetched by a cold boot <= 1.15x the floor: not measured"
    fi
    goal_local "cold boot without any profile at $RTT ms" 1.2 hot-cold
    goal_local "boot with the profile at $RTT ms" 1.05 hot-profile
    g=$(pct "$BYTES_ADDED" "$STORE0")
    echo "- store growth from the relayout <= 5 % of the store: **$g %** ($(ge 5 "$g" && echo met || echo MISSED))"
    echo "- for comparison, the original layout: cold $(num "${GS[orig-cold]:-}" && num "$LOCAL_S" && ratio "${GS[orig-cold]}" "$LOCAL_S" || echo -)x, with the profile $(num "${GS[orig-profile]:-}" && num "$LOCAL_S" && ratio "${GS[orig-profile]}" "$LOCAL_S" || echo -)x the local boot"
    echo
    echo "All boots (run, row, guest s, wall s, root mounted at (guest s), link bytes, chunk files, chunk bytes, MB read by the guest, % of the CPUs other processes used, clean/disturbed, notes):"
    echo
    echo '```'
    cat "$RUNS"
    echo '```'
} | tee "$REPORT"
log "report saved to $REPORT"
