# Shared helpers for the hloop benchmarks. Source it; do not run it.
# shellcheck shell=bash

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
# Where cached inputs (the root file system image) and scratch directories live.
BENCH_CACHE=${BENCH_CACHE:-/var/tmp/hloop-bench}
HLOOP=${HLOOP:-$REPO_DIR/build/hloop}

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

need_root() { [ "$(id -u)" -eq 0 ] || die "run as root (drop_caches, FUSE, debootstrap)"; }

# need_cmd CMD [DEBIAN-PACKAGE]: install the package if CMD is missing.
need_cmd() {
    command -v "$1" >/dev/null 2>&1 && return 0
    local pkg=${2:-$1}
    log "installing $pkg (for $1)"
    if [ -z "${_BENCH_APT_UPDATED:-}" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || true
        _BENCH_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >&2 ||
        die "cannot install $pkg"
    command -v "$1" >/dev/null 2>&1 || die "$1 still missing after installing $pkg"
}

need_hloop() {
    [ -x "$HLOOP" ] || die "hloop binary not found at $HLOOP (build it: cmake -S $REPO_DIR -B $REPO_DIR/build -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja -C $REPO_DIR/build hloop)"
}

# snapshot_hloop: copy the binary into $W so that a rebuild during the run
# cannot change it under the benchmark; HLOOP then points at the copy.
snapshot_hloop() {
    cp "$HLOOP" "$W/hloop"
    HLOOP_DESC="$HLOOP (sha256 $(sha256sum "$W/hloop" | cut -c1-12), built $(stat -c %y "$HLOOP" | cut -d. -f1), repo HEAD $(cd "$REPO_DIR" && git rev-parse --short HEAD 2>/dev/null || echo 'none')$(cd "$REPO_DIR" && git diff --quiet HEAD -- src 2>/dev/null || echo ', src has uncommitted changes'))"
    HLOOP=$W/hloop
}

# load_note: the load average, to spot runs disturbed by other work
load_note() { cut -d' ' -f1-3 /proc/loadavg; }

# cpu_busy [SECONDS]: percent of all CPUs busy over a short sample (default 2 s)
cpu_busy() {
    local a b
    a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
    sleep "${1:-2}"
    b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ")
        busy = y[1] - x[1]; idle = y[2] - x[2]
        printf "%.0f", (busy + idle) ? 100 * busy / (busy + idle) : 0 }'
}

# wait_idle: with BENCH_WAIT_IDLE=SECONDS, wait up to that long until the
# machine is quiet (< BENCH_IDLE_BUSY percent busy, default 10) so that other
# work (builds, tests) does not disturb a measurement. Sets BUSY to the last
# sample either way.
wait_idle() {
    local limit=${BENCH_WAIT_IDLE:-0} max=${BENCH_IDLE_BUSY:-10} t0
    t0=$SECONDS
    while :; do
        BUSY=$(cpu_busy 2)
        [ "$BUSY" -lt "$max" ] && return 0
        if [ $((SECONDS - t0)) -ge "$limit" ]; then
            [ "$limit" -gt 0 ] && log "machine still ${BUSY}% busy after ${limit} s; measuring anyway"
            return 0
        fi
        sleep 5
    done
}

# --- cleanup stack -----------------------------------------------------------
# Commands registered with on_exit run in reverse order when the script exits
# (normally, on error, or on INT/TERM).
_BENCH_CLEANUP=()
# stop_pid PID [SECONDS]: SIGTERM, wait up to SECONDS (10), then SIGKILL.
stop_pid() {
    local pid=$1 t=${2:-10} i
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || return 0
    for ((i = 0; i < t * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
on_exit() { _BENCH_CLEANUP+=("$*"); }
_bench_run_cleanup() {
    local rc=$? i
    trap - EXIT INT TERM
    for ((i = ${#_BENCH_CLEANUP[@]} - 1; i >= 0; i--)); do
        eval "${_BENCH_CLEANUP[$i]}" >/dev/null 2>&1 || true
    done
    exit "$rc"
}
trap _bench_run_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# make_workdir PREFIX: sets W to a new scratch directory under $BENCH_CACHE,
# removed on exit unless BENCH_KEEP=1. (Not for $(...): the cleanup must be
# registered in the main shell.)
make_workdir() {
    mkdir -p "$BENCH_CACHE"
    W=$(mktemp -d "$BENCH_CACHE/$1.XXXXXX")
    if [ "${BENCH_KEEP:-0}" != 1 ]; then
        on_exit "rm -rf '$W'"
    else
        log "keeping work dir $W (BENCH_KEEP=1)"
    fi
}

# --- measuring ---------------------------------------------------------------
now() { date +%s.%N; }

# elapsed START END -> seconds with 3 decimals
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# ratio A B -> A/B with 2 decimals ("n/a" if B is 0)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }

# mbps BYTES SECONDS -> MB/s (10^6 bytes per second), 1 decimal
mbps() { awk -v n="$1" -v s="$2" 'BEGIN { if (s + 0 == 0) print "n/a"; else printf "%.1f", n / 1e6 / s }'; }

# human BYTES -> e.g. 1.23 GB (10^9)
human() { awk -v n="$1" 'BEGIN { split("B kB MB GB TB", u, " "); i = 1; while (n >= 1000 && i < 5) { n /= 1000; i++ } printf (i == 1 ? "%d %s" : "%.2f %s"), n, u[i] }'; }

# ge A B -> exit 0 if A >= B (floating point)
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# warm_file FILE...: pull files into the page cache
warm_files() { cat "$@" >/dev/null; }

# timed_v OUTFILE CMD...: run CMD under /usr/bin/time -v (report in OUTFILE),
# print its wall seconds on stdout. CMD's own stdout goes to OUTFILE.out.
timed_v() {
    local out=$1 t0 t1 rc
    shift
    t0=$(now)
    /usr/bin/time -v -o "$out" "$@" >"$out.out" 2>"$out.err"
    rc=$?
    t1=$(now)
    if [ $rc -ne 0 ]; then
        log "command failed (rc=$rc): $*"
        sed 's/^/    /' "$out.err" | tail -20 >&2
        return $rc
    fi
    elapsed "$t0" "$t1"
}

# cpu_from_timev FILE -> "user+sys" seconds from a /usr/bin/time -v report
cpu_from_timev() {
    awk -F': ' '/User time \(seconds\)/ { u = $2 } /System time \(seconds\)/ { s = $2 }
        END { printf "%.2f", u + s }' "$1"
}
# maxrss_from_timev FILE -> max RSS in MB
maxrss_from_timev() {
    awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$1"
}

# proc_cpu PID -> "TOTAL (user U, sys S)" CPU seconds of a running process
proc_cpu() {
    local hz
    hz=$(getconf CLK_TCK)
    awk -v hz="$hz" '{ # field 2 (comm) may hold spaces: count from the end of ")"
        sub(/^.*\) /, ""); printf "%.2f (user %.2f, sys %.2f)", ($12 + $13) / hz, $12 / hz, $13 / hz }' \
        "/proc/$1/stat" 2>/dev/null || echo "n/a"
}
# cpu_split_from_timev FILE -> "TOTAL (user U, sys S)"
cpu_split_from_timev() {
    awk -F': ' '/User time \(seconds\)/ { u = $2 } /System time \(seconds\)/ { s = $2 }
        END { printf "%.2f (user %.2f, sys %.2f)", u + s, u, s }' "$1"
}

# --- optional profiling (BENCH_PERF=1) ---------------------------------------
perf_ok() {
    [ "${BENCH_PERF:-0}" = 1 ] || return 1
    command -v perf >/dev/null 2>&1 || { log "BENCH_PERF=1 but perf is missing (apt-get install linux-perf)"; return 1; }
}

# perf_summary DATAFILE: where the CPU time went, by library and by symbol
perf_summary() {
    echo "perf profile ($1): by shared object"
    perf report -i "$1" --no-children --sort dso --stdio -g none 2>/dev/null |
        grep '%' | grep -v '^#' | awk 'NR <= 8' | sed 's/  */ /g; s/^/    /'
    echo "by symbol (top 15)"
    perf report -i "$1" --no-children --sort dso,sym --stdio -g none 2>/dev/null |
        grep '%' | grep -v '^#' | awk 'NR <= 15' | sed 's/  */ /g; s/^/    /'
}

# --- ports and servers -------------------------------------------------------
port_in_use() { ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }

# free_port: a free TCP port in 19000-19999 on 127.0.0.1
free_port() {
    local p i
    for i in $(seq 1 200); do
        p=$((19000 + RANDOM % 1000))
        port_in_use "$p" || { echo "$p"; return 0; }
    done
    die "no free port in 19000-19999"
}

# wait_http URL [TIMEOUT-SECONDS]: wait until something answers HTTP at URL
wait_http() {
    local url=$1 t=${2:-20} i code
    for ((i = 0; i < t * 10; i++)); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "$url" 2>/dev/null)
        [ -n "$code" ] && [ "$code" != 000 ] && return 0
        sleep 0.1
    done
    return 1
}

# start_nginx ROOTDIR WORKDIR -> sets NGINX_PORT and NGINX_PID; stopped on exit.
# shellcheck disable=SC2034
# A throw-away config: 127.0.0.1 only, sendfile on, no access log.
start_nginx() {
    local root=$1 dir=$2 port _
    need_cmd nginx nginx-light
    mkdir -p "$dir/tmp" "$dir/logs"
    for _ in 1 2 3 4 5; do
        port=$(free_port)
        cat >"$dir/nginx.conf" <<EOF
user root;
worker_processes auto;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    types { }
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    server {
        listen 127.0.0.1:$port;
        root $root;
        location / { }
    }
}
EOF
        nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' 2>>"$dir/logs/stderr.log" &
        NGINX_PID=$!
        on_exit "kill $NGINX_PID; wait $NGINX_PID"
        if wait_http "http://127.0.0.1:$port/" 10; then
            NGINX_PORT=$port
            log "nginx (pid $NGINX_PID) serving $root on 127.0.0.1:$port"
            return 0
        fi
        kill "$NGINX_PID" 2>/dev/null; wait "$NGINX_PID" 2>/dev/null
        log "nginx did not come up on port $port, retrying"
    done
    die "cannot start nginx (see $dir/logs)"
}

# --- machine description -----------------------------------------------------
machine_info() {
    echo "nproc: $(nproc)"
    echo "cpu: $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "memory: $(free -h | awk '/^Mem:/ { print $2 " total, " $7 " available" }')"
    echo "kernel: $(uname -sr)"
    echo "load average at report time: $(load_note)"
    echo "os: $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "hloop: ${HLOOP_DESC:-$HLOOP}"
}
