#!/usr/bin/env bash
# Proxy caches: through a real Squid started by the test, a second client's
# reads are served from the proxy's cache (Squid's log shows hits), and the
# origin server sends each chunk only once.  The proxy is named either with
# the environment (http_proxy, which libcurl honours) or with --proxy;
# no_proxy makes hloop go straight to the server.
#
# The origin is nginx with a timed access log (to count what it served),
# sending chunk files with the Cache-Control that `hloop serve` sends; a last
# part checks that Squid also caches what `hloop serve` itself sends.
source "$(dirname "$0")/lib.sh"
requires curl nginx squid awk

CS=262144
IMG=$TMP/disk.img
STORE=$TMP/store
random_file "$IMG" $((48 * CS + 777))   # random: 49 distinct chunks, the last one short
"$HLOOP" pack "$IMG" "$STORE" --name disk -q || fail "hloop pack failed"
NCHUNKS=$(count_chunk_files "$STORE")
check_eq "the store has one chunk file per chunk" 49 "$NCHUNKS"
SRC_SHA=$(sha "$IMG")

start_nginx_timed "$STORE"
ORIGIN=$URL
start_squid
# A port nothing listens on: a proxy setting that must not be used.
DEAD_PROXY=http://127.0.0.1:$(free_port)

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

lines() { if [[ -f $1 ]]; then wc -l <"$1"; else echo 0; fi; }

# since FILE N: the lines of FILE after its first N.
since() { tail -n +$(($2 + 1)) "$1"; }

# wait_squid_chunks N: wait (10 s) until Squid's log has at least NCHUNKS
# chunk lines after its first N (Squid writes a request's line when the
# answer is complete, which may be a moment after the client has it).
wait_squid_chunks() {
  local i
  for ((i = 0; i < 100; i++)); do
    (( $(since "$SQUID_LOG" "$1" | squid_chunk_lines | wc -l) >= NCHUNKS )) && return 0
    sleep 0.1
  done
  return 1
}

# Squid log fields: TIME ELAPSED CLIENT CODE/STATUS BYTES METHOD URL - HIER/PEER TYPE
squid_chunk_lines() { awk '$7 ~ /\/chunks\//' ; }
squid_chunk_hits() { awk '$7 ~ /\/chunks\// && $4 ~ /^TCP_(MEM_)?HIT\/200$/' ; }
# nginx log fields: MSEC REQUEST_TIME STATUS BYTES METHOD URI
origin_chunk_gets() { awk '$6 ~ /^\/chunks\// && $5 == "GET"' "$NGINX_LOG"; }

# run_cat NAME CMD...: run CMD (a `hloop cat ... -o $TMP/NAME.out`), check
# its status and output.
run_cat() {
  local name=$1 rc=0; shift
  timeout 120 "$@" >"$TMP/$name.log" 2>&1 || rc=$?
  if (( rc != 0 )); then cat "$TMP/$name.log" >&2; fi
  check_eq "$name: hloop exits 0" 0 "$rc"
  check_eq "$name: the image read is exact" "$SRC_SHA" "$(sha "$TMP/$name.out" 2>/dev/null || echo missing)"
}

# --- 1. Client 1, proxy from the environment, cold proxy: every chunk passes
# through Squid (misses), the origin sends each once.
s0=$(lines "$SQUID_LOG")
run_cat client1 env http_proxy="$SQUID_URL" \
  "$HLOOP" cat "$ORIGIN/disk.idx" -o "$TMP/client1.out" --cache "$TMP/cache1"
wait_squid_chunks "$s0" || true
s1=$(lines "$SQUID_LOG")
n=$(since "$SQUID_LOG" "$s0" | squid_chunk_lines | wc -l)
check_eq "client1 (http_proxy=): every chunk was fetched through Squid" "$NCHUNKS" "$n"
check_ge "client1: the index was fetched through Squid too" \
  "$(since "$SQUID_LOG" "$s0" | awk '$7 ~ /\/disk\.idx$/' | wc -l)" 1
check_eq "client1: the origin served each chunk once" "$NCHUNKS" "$(origin_chunk_gets | wc -l)"
check_eq "client1: ... and every chunk" "$NCHUNKS" "$(origin_chunk_gets | awk '{print $6}' | sort -u | wc -l)"

# --- 2. Client 2, separate empty cache, same proxy from the environment: its
# chunks come from Squid's cache, the origin sees none of them again.
o1=$(origin_chunk_gets | wc -l)
run_cat client2 env http_proxy="$SQUID_URL" \
  "$HLOOP" cat "$ORIGIN/disk.idx" -o "$TMP/client2.out" --cache "$TMP/cache2"
wait_squid_chunks "$s1" || true
s2=$(lines "$SQUID_LOG")
check_eq "client2 (http_proxy=): every chunk was asked of Squid" "$NCHUNKS" \
  "$(since "$SQUID_LOG" "$s1" | squid_chunk_lines | wc -l)"
hits=$(since "$SQUID_LOG" "$s1" | squid_chunk_hits | wc -l)
log "client2: $hits of $NCHUNKS chunk requests were Squid cache hits"
check_ge "client2: (nearly) all its chunks were Squid cache hits (TCP_HIT/TCP_MEM_HIT)" "$hits" $((NCHUNKS * 9 / 10))
check_eq "client2: the origin served no chunk again" "$o1" "$(origin_chunk_gets | wc -l)"

# --- 3. Client 3, the proxy named with --proxy (the environment names a dead
# proxy: the option wins).
HAVE_PROXY_OPT=0
# (grep -q on a pipe would end it early: SIGPIPE and pipefail would fail the test)
if grep -q -- '--proxy' <<<"$("$HLOOP" cat --help 2>&1)"; then HAVE_PROXY_OPT=1; fi
check_eq "hloop cat --help documents --proxy" 1 "$HAVE_PROXY_OPT"
run_cat client3 env http_proxy="$DEAD_PROXY" \
  "$HLOOP" cat "$ORIGIN/disk.idx" -o "$TMP/client3.out" --cache "$TMP/cache3" --proxy "$SQUID_URL"
wait_squid_chunks "$s2" || true
s3=$(lines "$SQUID_LOG")
check_eq "client3 (--proxy): every chunk was asked of Squid" "$NCHUNKS" \
  "$(since "$SQUID_LOG" "$s2" | squid_chunk_lines | wc -l)"
hits=$(since "$SQUID_LOG" "$s2" | squid_chunk_hits | wc -l)
check_ge "client3 (--proxy): (nearly) all its chunks were Squid cache hits" "$hits" $((NCHUNKS * 9 / 10))
check_eq "client3: the origin served no chunk again" "$o1" "$(origin_chunk_gets | wc -l)"

# --- 4. A FUSE mount with --proxy and a cold cache reads the image from Squid.
if grep -q -- '--proxy' <<<"$("$HLOOP" mount --help 2>&1)"; then
  ok "hloop mount --help documents --proxy"
  mount_image "$ORIGIN/disk.idx" "$TMP/mnt" --cache "$TMP/cache4" --proxy "$SQUID_URL"
  check_eq "mount (--proxy): the image read through the mount is exact" "$SRC_SHA" "$(sha "$MOUNT_FILE")"
  unmount_fuse "$TMP/mnt" "$MOUNT_PID"
  wait_squid_chunks "$s3" || true
  check_eq "mount (--proxy): every chunk was asked of Squid" "$NCHUNKS" \
    "$(since "$SQUID_LOG" "$s3" | squid_chunk_lines | wc -l)"
  hits=$(since "$SQUID_LOG" "$s3" | squid_chunk_hits | wc -l)
  check_ge "mount (--proxy): (nearly) all its chunks were Squid cache hits" "$hits" $((NCHUNKS * 9 / 10))
  check_eq "mount: the origin served no chunk again" "$o1" "$(origin_chunk_gets | wc -l)"
else
  soft_fail "hloop mount --help does not document --proxy"
fi

# --- 5. no_proxy: the proxy is set but bypassed for 127.0.0.1; Squid sees
# nothing, the origin serves every chunk (again).
sleep 0.5
s4=$(lines "$SQUID_LOG")
run_cat client5 env http_proxy="$SQUID_URL" no_proxy=127.0.0.1 \
  "$HLOOP" cat "$ORIGIN/disk.idx" -o "$TMP/client5.out" --cache "$TMP/cache5"
sleep 1   # time for any line Squid would write
check_eq "client5 (no_proxy=127.0.0.1): Squid's log has no new line" "$s4" "$(lines "$SQUID_LOG")"
check_eq "client5: the origin served every chunk directly" $((o1 + NCHUNKS)) "$(origin_chunk_gets | wc -l)"

# --- 6. What `hloop serve` sends is cacheable too: two clients through Squid,
# the second one's chunks are hits, and Squid went to the origin once per chunk.
# (Squid takes a max-age without a Date header as already expired: RFC 9110
# 6.6.1 wants a Date on every answer of a server with a clock.)
start_hloop_serve "$STORE"
chunk1=$(cd "$STORE" && find chunks -type f | head -n1)
check_contains "hloop serve: a chunk's answer has a Date header" "Date:" "$(curl -sI "$URL/$chunk1")"
s5=$(lines "$SQUID_LOG")
run_cat serve1 env http_proxy="$SQUID_URL" "$HLOOP" cat "$URL/disk.idx" -o "$TMP/serve1.out" --cache "$TMP/cache6"
wait_squid_chunks "$s5" || true
s6=$(lines "$SQUID_LOG")
run_cat serve2 env http_proxy="$SQUID_URL" "$HLOOP" cat "$URL/disk.idx" -o "$TMP/serve2.out" --cache "$TMP/cache7"
wait_squid_chunks "$s6" || true
check_eq "hloop serve origin: the first client's chunks went through Squid" "$NCHUNKS" \
  "$(sed -n "$((s5 + 1)),${s6}p" "$SQUID_LOG" | squid_chunk_lines | wc -l)"
hits=$(since "$SQUID_LOG" "$s6" | squid_chunk_hits | wc -l)
log "hloop serve origin: $hits of $NCHUNKS chunk requests of the second client were Squid cache hits"
check_ge "hloop serve origin: (nearly) all the second client's chunks were Squid cache hits" "$hits" $((NCHUNKS * 9 / 10))
check_eq "hloop serve origin: Squid fetched each chunk from it once" "$NCHUNKS" \
  "$(since "$SQUID_LOG" "$s5" | squid_chunk_lines | awk '$9 ~ /^HIER_DIRECT\//' | wc -l)"
