#!/usr/bin/env bash
# What a signed channel adds to opening an image (issue #12's goal: at most
# one extra round trip, under 1 ms of CPU).
#
# One store (a 64 MiB image, signed, published on channel "stable") behind
# nginx, reached directly (0 ms) and through hloop-wanem at each RTT. For each
# RTT, `hloop info` (which resolves and verifies exactly as every front end
# does when it opens an image, without reading chunks) is timed, BENCH_REPEAT
# times (default 9, median), for:
#   index      URL/v.idx, no trust configured (what opening cost before)
#   index+sig  URL/v.idx --trust KEY.pub (the index, then NAME.idx.sig)
#   channel    URL/stable.channel --trust KEY.pub (the channel, then the index)
# and the CPU time (user+sys) of each process. The peer here is hloop's own
# unsigned open: no peer tool signs an index this way (casync and desync sign
# nothing). Prints a Markdown table; results saved under $BENCH_CACHE/results.
#
# Environment: BENCH_RTTS (default "0 100"), BENCH_REPEAT (9), HLOOP, HLOOP_WANEM.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

need_root
need_hloop
need_cmd curl curl
WANEM=${HLOOP_WANEM:-$(dirname "$HLOOP")/tools/wanem/hloop-wanem}
[ -x "$WANEM" ] || die "hloop-wanem not found at $WANEM (build target hloop-wanem)"
RTTS=${BENCH_RTTS:-0 100}
REPEAT=${BENCH_REPEAT:-9}
RESULTS=$BENCH_CACHE/results
mkdir -p "$RESULTS"
REPORT=$RESULTS/trust-$(date +%Y%m%d-%H%M%S).txt

make_workdir trust
snapshot_hloop
STORE=$W/store
head -c $((64 * 1024 * 1024)) /dev/urandom >"$W/v.img"
"$HLOOP" pack "$W/v.img" "$STORE" --name v -q
"$HLOOP" key generate "$W/key" >/dev/null
"$HLOOP" sign "$STORE/v.idx" --key "$W/key" >/dev/null
"$HLOOP" publish "$STORE" --channel stable --index v.idx --key "$W/key" >/dev/null
start_nginx "$STORE" "$W/nginx"

# median of the numbers on stdin
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "n/a"; else print a[int((NR + 1) / 2)] }'; }

# measure BASE KIND: prints "WALL_MS CPU_MS" medians of REPEAT opens
measure() {
  local base=$1 kind=$2 i t0 t1 args=() url
  case $kind in
    index) url=$base/v.idx; args=(--trust-dir /nonexistent) ;;
    index+sig) url=$base/v.idx; args=(--trust-dir /nonexistent --trust "$W/key.pub") ;;
    channel) url=$base/stable.channel; args=(--trust-dir /nonexistent --trust "$W/key.pub") ;;
  esac
  : >"$W/wall" ; : >"$W/cpu"
  for ((i = 0; i < REPEAT; i++)); do
    export HLOOP_CACHE=$W/state.$kind  # the channel's sequence numbers
    t0=$(now)
    /usr/bin/time -f '%U %S' -o "$W/time" "$HLOOP" info "$url" "${args[@]}" >/dev/null 2>"$W/err" ||
      { cat "$W/err" >&2; die "hloop info $url failed"; }
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", (b - a) * 1000 }' >>"$W/wall"
    awk '{ printf "%.1f\n", ($1 + $2) * 1000 }' "$W/time" >>"$W/cpu"
  done
  echo "$(median <"$W/wall") $(median <"$W/cpu")"
}

{
  echo "# Opening an image: signed channel vs unsigned index ($(date -u '+%Y-%m-%d %H:%M UTC'))"
  echo
  echo "hloop: $HLOOP_DESC; load before: $(load_note); $REPEAT opens each, medians"
  echo
  echo "| RTT | index (unsigned) | index + .sig | channel | channel - index | CPU index / index+sig / channel |"
  echo "|---:|---:|---:|---:|---:|---:|"
} | tee "$REPORT"
for rtt in $RTTS; do
  base=http://127.0.0.1:$NGINX_PORT
  if [ "$rtt" != 0 ]; then
    port=$(free_port)
    "$WANEM" --listen "127.0.0.1:$port" --connect "127.0.0.1:$NGINX_PORT" --rtt "$rtt" \
      >"$W/wanem.$rtt.out" 2>"$W/wanem.$rtt.log" &
    wpid=$!
    on_exit "kill $wpid 2>/dev/null; wait $wpid 2>/dev/null"
    wait_http "http://127.0.0.1:$port/v.idx" 10 || die "wanem did not come up"
    base=http://127.0.0.1:$port
  fi
  read -r iw ic < <(measure "$base" index)
  read -r sw sc < <(measure "$base" index+sig)
  read -r cw cc < <(measure "$base" channel)
  delta=$(awk -v a="$cw" -v b="$iw" 'BEGIN { printf "%+.1f", a - b }')
  echo "| $rtt ms | $iw ms | $sw ms | $cw ms | $delta ms | $ic / $sc / $cc ms |" | tee -a "$REPORT"
  [ "$rtt" != 0 ] && { kill "$wpid" 2>/dev/null; wait "$wpid" 2>/dev/null || true; }
done
# The primitive's own cost, measured by OpenSSL (whose EVP Ed25519 hloop calls).
verify_us=$(openssl speed -seconds 1 ed25519 2>/dev/null |
  awk '/EdDSA \(Ed25519\)/ { printf "%.1f", 1e6 / $8 }')
{
  echo
  echo "Ed25519 verify (openssl speed ed25519, one core): ${verify_us:-n/a} us per signature."
  echo
  echo "Goal: channel - index at most one RTT; the CPU of verification (channel or"
  echo "index+sig minus index) under 1 ms. CPU figures are whole-process user+sys"
  echo "(10 ms clock ticks on this kernel: differences below that are noise)."
} | tee -a "$REPORT"
log "report: $REPORT"
