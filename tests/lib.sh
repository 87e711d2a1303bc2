# shellcheck shell=bash disable=SC2034  # sets globals (URL, PORT, MOUNT_FILE...) for the tests
# Shared helpers for hloop's integration tests (tests/test_*.sh).
#
# Sourced by every test script, in the spirit of nbdkit's tests/functions.sh.
# ctest runs each test as `bash tests/test_X.sh` with:
#   HLOOP      path of the hloop binary under test
#   HLOOP_SRC  the source tree (defaults to the parent of this directory)
#
# Conventions:
#  - Every test gets its own temporary directory $TMP; everything it creates
#    (images, stores, caches, mount points, server configs, logs) lives there.
#  - Every resource that outlives a command (server, FUSE mount, loop device,
#    ext4 mount) is registered with cleanup_fn right after it is created.  The
#    EXIT trap runs the registered functions in reverse order, so teardown is
#    "ext4 mount -> loop device -> FUSE mount -> servers -> rm -rf $TMP" even
#    when the test dies half-way.  Cleanup functions are idempotent, so a test
#    may also tear things down itself.
#  - check_* record a failure and go on (so one run shows every broken check);
#    fail stops the test at once.  The exit status is 0 only if no check failed.
#  - A missing tool is a FAILURE, not a skip: CI installs everything.
#  - Ports: this suite uses 127.0.0.1:18000-18999 only (other suites use 19000+).

set -euo pipefail
set -E  # let the ERR trap fire inside functions too
export LC_ALL=C  # tool messages (dd: "Input/output error") and sort order

HLOOP_SRC=${HLOOP_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
HLOOP=${HLOOP:-$HLOOP_SRC/build/hloop}
TEST_NAME=$(basename "$0" .sh)
FAILURES=0
CHECKS=0
_CLEANUP_FNS=()

# Report the failing command of an unexpected error (set -e would otherwise
# stop the test silently).
trap 'echo "ERROR: \"$BASH_COMMAND\" failed with status $? (${BASH_SOURCE[0]##*/}:$LINENO)" >&2' ERR
# Turn signals into a normal exit so the EXIT trap cleans up.
trap 'echo "interrupted" >&2; exit 130' INT TERM HUP

log() { echo "[$TEST_NAME] $*"; }

# fail MSG: stop the test now.
fail() {
  echo "FAIL: $*" >&2
  FAILURES=$((FAILURES + 1))
  exit 1
}

# soft_fail MSG: record a failure, keep going.
soft_fail() {
  echo "FAIL: $*" >&2
  FAILURES=$((FAILURES + 1))
}

ok() { CHECKS=$((CHECKS + 1)); echo "ok - $*"; }

# check_eq DESC EXPECTED ACTUAL
check_eq() {
  local desc=$1 expected=$2 actual=$3
  CHECKS=$((CHECKS + 1))
  if [[ "$expected" == "$actual" ]]; then
    echo "ok - $desc"
  else
    soft_fail "$desc: expected '$expected', got '$actual'"
  fi
}

# check_ne DESC UNEXPECTED ACTUAL
check_ne() {
  local desc=$1 unexpected=$2 actual=$3
  CHECKS=$((CHECKS + 1))
  if [[ "$unexpected" != "$actual" ]]; then
    echo "ok - $desc"
  else
    soft_fail "$desc: got '$actual', which it must not be"
  fi
}

# check DESC CMD [ARGS...]: CMD must succeed.
check() {
  local desc=$1; shift
  CHECKS=$((CHECKS + 1))
  if "$@"; then echo "ok - $desc"; else soft_fail "$desc (command: $*)"; fi
}

# check_not DESC CMD [ARGS...]: CMD must fail.
check_not() {
  local desc=$1; shift
  CHECKS=$((CHECKS + 1))
  if "$@"; then soft_fail "$desc (command unexpectedly succeeded: $*)"; else echo "ok - $desc"; fi
}

# check_le DESC VALUE LIMIT (integers)
check_le() {
  local desc=$1 value=$2 limit=$3
  CHECKS=$((CHECKS + 1))
  if (( value <= limit )); then echo "ok - $desc ($value <= $limit)"; else soft_fail "$desc: $value > $limit"; fi
}

# check_ge DESC VALUE MIN (integers)
check_ge() {
  local desc=$1 value=$2 min=$3
  CHECKS=$((CHECKS + 1))
  if (( value >= min )); then echo "ok - $desc ($value >= $min)"; else soft_fail "$desc: $value < $min"; fi
}

# check_contains DESC NEEDLE HAYSTACK (fixed string, case-insensitive)
check_contains() {
  local desc=$1 needle=$2 haystack=$3
  CHECKS=$((CHECKS + 1))
  if grep -qiF -- "$needle" <<<"$haystack"; then
    echo "ok - $desc"
  else
    soft_fail "$desc: '$needle' not found in: $haystack"
  fi
}

# ---------------------------------------------------------------- cleanup

# cleanup_fn CMD [ARGS...]: run CMD ARGS at exit (reverse registration order).
cleanup_fn() {
  local q
  q=$(printf '%q ' "$@")
  _CLEANUP_FNS+=("$q")
}

_run_cleanup() {
  local rc=$? i
  trap - ERR
  set +e
  for ((i = ${#_CLEANUP_FNS[@]} - 1; i >= 0; i--)); do
    eval "${_CLEANUP_FNS[i]}" || echo "warning: cleanup step failed: ${_CLEANUP_FNS[i]}" >&2
  done
  if [[ -n ${TMP:-} && -d $TMP ]]; then
    # Never remove a directory that still has something mounted below it.
    if grep -qF " $TMP/" /proc/mounts; then
      echo "warning: mounts left below $TMP; not removing it" >&2
      grep -F " $TMP/" /proc/mounts >&2
    else
      rm -rf "$TMP"
    fi
  fi
  if (( rc == 0 && FAILURES > 0 )); then rc=1; fi
  if (( rc == 0 )); then
    echo "PASS: $TEST_NAME ($CHECKS checks)"
  else
    echo "FAIL: $TEST_NAME (exit $rc, $FAILURES failed checks of $CHECKS)" >&2
  fi
  exit "$rc"
}
trap _run_cleanup EXIT

# --------------------------------------------------------------- prerequisites

# requires CMD...: each CMD must be on PATH, else the test fails.
requires() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || fail "required command '$c' is not installed (CI must install it)"
  done
}

requires_root() {
  [[ $(id -u) == 0 ]] || fail "this test needs root (FUSE, loop devices, mount)"
}

requires_hloop() {
  [[ -x $HLOOP ]] || fail "hloop binary not found or not executable: $HLOOP (set HLOOP=...)"
}

requires_fuse() {
  requires_root
  requires fusermount3 mountpoint
  [[ -c /dev/fuse ]] || fail "/dev/fuse is missing"
}

TMP=$(mktemp -d "/tmp/hloop-$TEST_NAME.XXXXXX")
# Commands run without --cache use $HLOOP_CACHE (else /var/cache/hloop as
# root): keep that inside the test too, so tests never share cached chunks or
# indexes with each other or with the machine.
export HLOOP_CACHE=$TMP/default-cache
requires_hloop
requires sha256sum dd head stat find sort cmp timeout

# ---------------------------------------------------------------- small utils

sha() { sha256sum "$1" | cut -d' ' -f1; }
fsize() { stat -c %s "$1"; }

# read_range FILE OFFSET LENGTH: the bytes, on stdout; fails on a read error.
read_range() {
  dd if="$1" bs=65536 iflag=skip_bytes,count_bytes skip="$2" count="$3" status=none
}

# sha_range FILE OFFSET LENGTH
sha_range() {
  local out
  out=$(read_range "$1" "$2" "$3" | sha256sum) || return 1
  echo "${out%% *}"
}

# random_file PATH BYTES
random_file() { head -c "$2" /dev/urandom >"$1"; }

# count_chunk_files STORE: number of chunk files in STORE/chunks.
count_chunk_files() {
  if [[ -d $1/chunks ]]; then find "$1/chunks" -type f | wc -l; else echo 0; fi
}

# chunk_path STORE HASH
chunk_path() { echo "$1/chunks/${2:0:2}/$2"; }

# chunk_hash IMAGE INDEX [CHUNK_SIZE]: sha256 of the raw content of chunk INDEX.
chunk_hash() {
  local cs=${3:-262144}
  sha_range "$1" $(($2 * cs)) "$cs"
}

# is_mounted DIR: DIR is a mount point according to /proc/mounts (never
# touches the file system, so it cannot hang on a dead FUSE server).
is_mounted() {
  local d
  d=$(realpath -m -s "$1")   # lexical only: no stat of a possibly dead mount
  awk -v d="$d" '$2 == d { found = 1 } END { exit !found }' /proc/mounts
}

# pid_alive PID: the process exists and is not a zombie (an exited child that
# this shell has not reaped yet still answers kill -0).
pid_alive() {
  [[ -n $1 ]] && kill -0 "$1" 2>/dev/null && [[ $(ps -o stat= -p "$1" 2>/dev/null) != Z* ]]
}

# stop_pid PID [TIMEOUT_S]: SIGTERM, wait, then SIGKILL.  Only for children
# this shell started.  Sets STOP_RC to the exit status (if it was our child).
stop_pid() {
  local pid=$1 t=${2:-10} i
  STOP_RC=
  [[ -n $pid ]] || return 0
  # Only signal our own children: a pid stopped before may have been reused.
  if pid_alive "$pid" && [[ $(ps -o ppid= -p "$pid" 2>/dev/null | tr -d ' ') == "$$" ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < t * 10; i++)); do
      pid_alive "$pid" || break
      sleep 0.1
    done
    if pid_alive "$pid"; then
      echo "warning: pid $pid did not stop on SIGTERM within ${t}s; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  local rc=0
  wait "$pid" 2>/dev/null || rc=$?
  STOP_RC=$rc
  return 0
}

# free_port: a TCP port in 18000-18999 that nothing listens on right now.
free_port() {
  local p i
  for ((i = 0; i < 300; i++)); do
    p=$((18000 + RANDOM % 1000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  fail "no free port found in 18000-18999"
}

# wait_http URL PID: wait (10 s) until URL answers anything over HTTP while
# PID stays alive.  Returns 1 if PID died or the time ran out.
wait_http() {
  local url=$1 pid=$2 i
  for ((i = 0; i < 100; i++)); do
    pid_alive "$pid" || return 1
    if curl -s -o /dev/null --max-time 2 "$url"; then return 0; fi
    sleep 0.1
  done
  return 1
}

# ------------------------------------------------------------------- servers
# Each start_* sets URL (http://127.0.0.1:PORT, no trailing slash), PORT and
# SERVER_PID, and registers the server's shutdown.  Servers run in the
# foreground of a background job so we always know their pid.

# start_hloop_serve STORE [EXTRA ARGS...]
start_hloop_serve() {
  local store=$1 attempt port pid log; shift
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    log=$TMP/hloop-serve.$port.log
    "$HLOOP" serve "$store" --listen "127.0.0.1:$port" "$@" >"$log" 2>&1 &
    pid=$!
    cleanup_fn stop_pid "$pid"
    if wait_http "http://127.0.0.1:$port/" "$pid"; then
      PORT=$port URL=http://127.0.0.1:$port SERVER_PID=$pid
      log "hloop serve $store on $URL (pid $pid)"
      return 0
    fi
    echo "hloop serve on port $port did not come up; its log:" >&2
    cat "$log" >&2 || true
    stop_pid "$pid" 2
  done
  fail "could not start hloop serve"
}

# start_nginx STORE: nginx (nginx-light) as a plain static server for STORE.
start_nginx() {
  requires nginx
  local store=$1 attempt port pid dir
  store=$(realpath "$store")
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    dir=$TMP/nginx.$port
    mkdir -p "$dir/tmp"
    # `user root` because $TMP is mode 0700 and workers would otherwise run as
    # nobody.  Every path nginx writes is under $dir, so the system nginx (if
    # any) is not touched.
    cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
user root;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 256; }
http {
  access_log $dir/access.log;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  default_type application/octet-stream;
  sendfile on;
  keepalive_timeout 60;
  server {
    listen 127.0.0.1:$port;
    root $store;
    location / { }
  }
}
EOF
    nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" >"$dir/stdout.log" 2>&1 &
    pid=$!
    cleanup_fn stop_pid "$pid"
    if wait_http "http://127.0.0.1:$port/" "$pid"; then
      PORT=$port URL=http://127.0.0.1:$port SERVER_PID=$pid
      log "nginx serving $store on $URL (pid $pid)"
      return 0
    fi
    echo "nginx on port $port did not come up:" >&2
    cat "$dir/error.log" "$dir/stdout.log" >&2 2>/dev/null || true
    stop_pid "$pid" 2
  done
  fail "could not start nginx"
}

# start_lighttpd STORE
start_lighttpd() {
  requires lighttpd
  local store=$1 attempt port pid dir
  store=$(realpath "$store")
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    dir=$TMP/lighttpd.$port
    mkdir -p "$dir"
    cat >"$dir/lighttpd.conf" <<EOF
server.document-root = "$store"
server.bind = "127.0.0.1"
server.port = $port
server.errorlog = "$dir/error.log"
server.upload-dirs = ( "$dir" )
server.modules = ( "mod_staticfile" )
mimetype.assign = ( "" => "application/octet-stream" )
EOF
    lighttpd -D -f "$dir/lighttpd.conf" >"$dir/stdout.log" 2>&1 &
    pid=$!
    cleanup_fn stop_pid "$pid"
    if wait_http "http://127.0.0.1:$port/" "$pid"; then
      PORT=$port URL=http://127.0.0.1:$port SERVER_PID=$pid
      log "lighttpd serving $store on $URL (pid $pid)"
      return 0
    fi
    echo "lighttpd on port $port did not come up:" >&2
    cat "$dir/error.log" "$dir/stdout.log" >&2 2>/dev/null || true
    stop_pid "$pid" 2
  done
  fail "could not start lighttpd"
}

# stop_server PID: stop a server started above (SIGTERM, wait).
stop_server() { stop_pid "$1" 10; }

# ------------------------------------------------------------------- mounts

# mount_image URL MNT [EXTRA ARGS...]
#   Mounts with `hloop mount` and waits (20 s) for the image file to appear.
#   Sets MOUNT_FILE (the image file inside MNT), MOUNT_PID (empty with
#   HLOOP_MOUNT_DAEMON=1) and MOUNT_LOG.  Default: foreground hloop mount run as
#   a background job (we know its pid and keep its stderr); HLOOP_MOUNT_DAEMON=1
#   uses --daemon instead.
mount_image() {
  requires_fuse
  local url=$1 mnt=$2 log i; shift 2
  mkdir -p "$mnt"
  mnt=$(realpath "$mnt")
  log=$TMP/mount.${mnt//\//_}.log
  MOUNT_LOG=$log MOUNT_FILE='' MOUNT_PID=''
  if [[ ${HLOOP_MOUNT_DAEMON:-0} == 1 ]]; then
    cleanup_fn unmount_fuse "$mnt" ""
    local rc=0
    # --log (where supported) keeps the detached process's messages.
    local logopt=()
    if "$HLOOP" mount --help 2>/dev/null | grep -q -- '--log'; then logopt=(--log "$log.daemon"); fi
    timeout 60 "$HLOOP" mount "$url" "$mnt" --daemon "${logopt[@]}" "$@" >"$log" 2>&1 </dev/null || rc=$?
    if (( rc != 0 )); then
      cat "$log" "$log.daemon" >&2 2>/dev/null || true
      fail "hloop mount --daemon $url exited with $rc"
    fi
  else
    # --default-signal: a background job of a non-interactive shell starts
    # with SIGINT ignored, and libfuse does not install its handler over an
    # ignored signal; a user's terminal would not do that.
    env --default-signal=INT,QUIT "$HLOOP" mount "$url" "$mnt" "$@" >"$log" 2>&1 </dev/null &
    MOUNT_PID=$!
    cleanup_fn unmount_fuse "$mnt" "$MOUNT_PID"
  fi
  for ((i = 0; i < 200; i++)); do
    if [[ -n $MOUNT_PID ]] && ! pid_alive "$MOUNT_PID"; then
      cat "$log" >&2
      local mrc=0; wait "$MOUNT_PID" || mrc=$?
      fail "hloop mount $url exited early (status $mrc)"
    fi
    if is_mounted "$mnt"; then
      MOUNT_FILE=$(timeout 10 find "$mnt" -mindepth 1 -maxdepth 1 -type f | head -n1 || true)
      if [[ -n $MOUNT_FILE ]]; then
        log "mounted $url at $mnt: $MOUNT_FILE"
        return 0
      fi
    fi
    sleep 0.1
  done
  cat "$log" "$log.daemon" >&2 2>/dev/null || true
  fail "hloop mount $url: no image file appeared in $mnt within 20 s"
}

# unmount_fuse MNT [PID]: unmount if mounted, then make sure PID exits.
unmount_fuse() {
  local mnt=$1 pid=${2:-} i
  if is_mounted "$mnt"; then
    fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt" 2>/dev/null || umount -l "$mnt" || true
  fi
  if [[ -n $pid ]] && pid_alive "$pid"; then
    for ((i = 0; i < 100; i++)); do
      pid_alive "$pid" || break
      sleep 0.1
    done
    stop_pid "$pid" 5
  elif [[ -n $pid ]]; then
    wait "$pid" 2>/dev/null || true
  fi
  return 0
}

# attach_loop FILE: read-only loop device for FILE; sets LOOPDEV.
attach_loop() {
  requires losetup
  LOOPDEV=$(losetup -r -f --show "$1") || fail "losetup -r -f --show $1 failed"
  cleanup_fn detach_loop "$LOOPDEV" "$(realpath "$1")"
  log "attached $1 as $LOOPDEV"
}

# detach_loop DEV BACKING_FILE: detach DEV only if it is still backed by our
# file (loop numbers are reused).
detach_loop() {
  local dev=$1 back=$2 cur
  cur=$(losetup -n -O BACK-FILE "$dev" 2>/dev/null | sed 's/[[:space:]]*$//' || true)
  # losetup may append " (deleted)".
  if [[ -n $cur && ( $cur == "$back" || $cur == "$back (deleted)" ) ]]; then
    losetup -d "$dev" || true
  fi
}

# mount_ro DEV DIR: read-only mount of a block device; registers the umount.
mount_ro() {
  mkdir -p "$2"
  mount -o ro "$1" "$2" || fail "mount -o ro $1 $2 failed"
  cleanup_fn umount_if_mounted "$(realpath "$2")"
}

umount_if_mounted() {
  if is_mounted "$1"; then umount "$1" || umount -l "$1" || true; fi
}

# ------------------------------------------------------------ test data

# make_test_tree DIR: a tree with files of many sizes, hard links, symlinks,
# sparse files and repeated content (~36 MiB of data).
make_test_tree() {
  local d=$1
  mkdir -p "$d/sub/deeper" "$d/dups" "$d/empty-dir" "$d/with space"
  : >"$d/empty"
  printf 'x' >"$d/one-byte"
  random_file "$d/f4095" 4095
  random_file "$d/f4096" 4096
  random_file "$d/f4097" 4097
  random_file "$d/sub/f1M+3" $((1024 * 1024 + 3))
  random_file "$d/sub/deeper/big-random" $((20 * 1024 * 1024 + 12345))
  # Identical multi-MB files (dedup inside the image).
  random_file "$d/dups/a" $((3 * 1024 * 1024))
  cp "$d/dups/a" "$d/dups/b"
  cp "$d/dups/a" "$d/dups/c"
  # Compressible text.
  seq 1 200000 >"$d/sub/numbers.txt"
  echo "hello hloop" >"$d/with space/file name.txt"
  # Hard links (one across directories).
  ln "$d/f4097" "$d/f4097.hardlink"
  ln "$d/f4097" "$d/sub/f4097.hardlink2"
  ln "$d/sub/numbers.txt" "$d/numbers.hardlink"
  # Symlinks: relative, absolute-dangling, to a directory, chained.
  ln -s f4095 "$d/link-to-f4095"
  ln -s /nonexistent/target "$d/dangling"
  ln -s sub/deeper "$d/link-to-dir"
  ln -s ../link-to-f4095 "$d/sub/chained-link"
  # Sparse files: holes with some data in the middle (and at the end).
  truncate -s 10M "$d/sparse"
  random_file "$TMP/sparse-part" 70000
  dd if="$TMP/sparse-part" of="$d/sparse" bs=4096 seek=1234 conv=notrunc status=none
  truncate -s $((5 * 1024 * 1024 + 17)) "$d/sub/sparse-tail"
  printf 'tail' | dd of="$d/sub/sparse-tail" bs=1 seek=$((5 * 1024 * 1024 + 13)) conv=notrunc status=none
  rm -f "$TMP/sparse-part"
}

# make_ext4_image TREE IMG [SIZE_BYTES]: ext4 image of TREE.  The default size
# 64 MiB + 1536 bytes is a multiple of 1 KiB (mkfs uses whole blocks) but not
# of any chunk size, so the last chunk is short.
make_ext4_image() {
  requires mkfs.ext4
  local tree=$1 img=$2 size=${3:-$((64 * 1024 * 1024 + 1536))}
  rm -f "$img"
  truncate -s "$size" "$img"
  mkfs.ext4 -q -F -E root_owner=0:0 -L hloop-test -d "$tree" "$img" >"$TMP/mkfs.log" 2>&1 ||
    { cat "$TMP/mkfs.log" >&2; fail "mkfs.ext4 -d $tree $img failed"; }
  [[ $(fsize "$img") == "$size" ]] || fail "mkfs.ext4 changed the image size"
}

# tree_manifest DIR: a sorted description of DIR that should be identical for
# the source tree and the tree read back from the image: entry types, file
# sizes, hard link counts, symlink targets, and the sha256 of every file.
tree_manifest() {
  (
    cd "$1"
    find . -mindepth 1 -path ./lost+found -prune -o -type d -printf 'dir %p\n'
    find . -mindepth 1 -path ./lost+found -prune -o -type l -printf 'symlink %p -> %l\n'
    find . -mindepth 1 -path ./lost+found -prune -o -type f -printf 'file %p size=%s links=%n\n'
    find . -mindepth 1 -path ./lost+found -prune -o -type f -print0 | xargs -0 -r sha256sum | sed 's/^/sha256 /'
  ) | LC_ALL=C sort
}

# drop_file_cache FILE: ask the kernel to drop FILE's pages from the page
# cache (posix_fadvise DONTNEED via dd), so the next read goes to hloop again.
drop_file_cache() { dd if="$1" iflag=nocache count=0 status=none 2>/dev/null || true; }

# jq_true FILTER FILE [JQ ARGS...]: FILTER is true for the JSON in FILE.
jq_true() { local f=$1 file=$2; shift 2; jq -e "$@" "$f" "$file" >/dev/null; }

# --- hloop-wanem, the WAN emulator (tools/wanem) --------------------------------
# requires_wanem: sets WANEM to the binary built beside $HLOOP.
requires_wanem() {
  WANEM=${HLOOP_WANEM:-$(dirname "$HLOOP")/tools/wanem/hloop-wanem}
  [[ -x $WANEM ]] || fail "hloop-wanem not found or not executable: $WANEM (build target hloop-wanem)"
}

# start_wanem NAME ARGS...: a proxy to $URL; sets WURL and WPID, stats in
# $TMP/NAME.json.  Waits for its "listening on HOST:PORT" line.
start_wanem() {
  local name=$1 i addr=''; shift
  "$WANEM" --listen 127.0.0.1:0 --connect "127.0.0.1:$PORT" \
    --stats-file "$TMP/$name.json" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
  WPID=$!
  cleanup_fn stop_pid "$WPID"
  for ((i = 0; i < 100; i++)); do
    addr=$(sed -n 's/^listening on //p' "$TMP/$name.out" 2>/dev/null || true)
    [[ -n $addr ]] && break
    pid_alive "$WPID" || break
    sleep 0.05
  done
  [[ -n $addr ]] || { cat "$TMP/$name.err" >&2; fail "hloop-wanem $* did not start"; }
  WURL=http://$addr
}

# start_nginx_timed STORE: like start_nginx, but each request is logged to
# $NGINX_LOG as "MSEC REQUEST_TIME STATUS BYTES METHOD URI" (MSEC: when the
# answer was sent, in seconds with ms), and chunk files carry the
# Cache-Control that `hloop serve` sends (so proxies may cache them).  Sets
# URL, PORT, SERVER_PID and NGINX_LOG.
start_nginx_timed() {
  requires nginx
  local store=$1 attempt port pid dir
  store=$(realpath "$store")
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    dir=$TMP/nginx-timed.$port
    mkdir -p "$dir/tmp"
    cat >"$dir/nginx.conf" <<EOF2
daemon off;
master_process on;
worker_processes 1;
user root;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 1024; }
http {
  log_format timed '\$msec \$request_time \$status \$body_bytes_sent \$request_method \$request_uri';
  access_log $dir/access.log timed;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  default_type application/octet-stream;
  sendfile on;
  keepalive_timeout 60;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:$port;
    root $store;
    location / { add_header Cache-Control "public, max-age=60"; }
    location /chunks/ { add_header Cache-Control "public, max-age=31536000, immutable"; }
  }
}
EOF2
    nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" >"$dir/stdout.log" 2>&1 &
    pid=$!
    cleanup_fn stop_pid "$pid"
    if wait_http "http://127.0.0.1:$port/" "$pid"; then
      PORT=$port URL=http://127.0.0.1:$port SERVER_PID=$pid NGINX_LOG=$dir/access.log
      : >"$NGINX_LOG"   # forget wait_http's probes
      log "nginx (timed log) serving $store on $URL (pid $pid)"
      return 0
    fi
    echo "nginx on port $port did not come up:" >&2
    cat "$dir/error.log" "$dir/stdout.log" >&2 2>/dev/null || true
    stop_pid "$pid" 2
  done
  fail "could not start nginx"
}

# start_squid: a real Squid caching proxy on 127.0.0.1 (memory cache only,
# objects up to 8 MiB), with its own config, logs and pid file under
# $TMP/squid.PORT, in the foreground (-N) of a background job.  Squid will not
# run as root, so it runs as the user `proxy` (Debian's squid package creates
# it); its directory is owned by that user and $TMP is made traversable.
# Sets SQUID_PORT, SQUID_URL (http://127.0.0.1:PORT), SQUID_PID and
# SQUID_LOG (the access log: "TIME ELAPSED CLIENT CODE/STATUS BYTES METHOD URL
# - HIERARCHY/PEER TYPE").  The system's squid service is not touched.
start_squid() {
  requires squid
  id proxy >/dev/null 2>&1 || fail "user 'proxy' is missing (it comes with Debian's squid package)"
  local attempt port pid dir
  chmod o+x "$TMP"
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    dir=$TMP/squid.$port
    mkdir -p "$dir"
    cat >"$dir/squid.conf" <<EOF2
http_port 127.0.0.1:$port
visible_hostname hloop-test-squid
cache_effective_user proxy
pid_filename $dir/squid.pid
cache_log $dir/cache.log
access_log stdio:$dir/access.log squid
cache_store_log none
logfile_rotate 0
coredump_dir $dir
netdb_filename none
pinger_enable off
shutdown_lifetime 0 seconds
# Memory cache only (no cache_dir), large enough for a test image.
cache_mem 256 MB
maximum_object_size_in_memory 8 MB
maximum_object_size 8 MB
memory_replacement_policy lru
acl localhost_src src 127.0.0.1/32
http_access allow localhost_src
http_access deny all
refresh_pattern . 0 20% 4320
EOF2
    chown -R proxy: "$dir"
    squid -N -d 1 -f "$dir/squid.conf" >"$dir/stdout.log" 2>&1 &
    pid=$!
    cleanup_fn stop_pid "$pid"
    if wait_http "http://127.0.0.1:$port/" "$pid"; then
      SQUID_PORT=$port SQUID_URL=http://127.0.0.1:$port SQUID_PID=$pid SQUID_LOG=$dir/access.log
      log "squid on $SQUID_URL (pid $pid), access log $SQUID_LOG"
      return 0
    fi
    echo "squid on port $port did not come up:" >&2
    cat "$dir/cache.log" "$dir/stdout.log" >&2 2>/dev/null || true
    stop_pid "$pid" 2
  done
  fail "could not start squid"
}


# ============================================================================
# --- mirrors and boot profiles (test_mirrors.sh, test_profile.sh) -----------
# Helpers added for the mirror and profile tests; nothing above depends on them.

# wanem_stat PID STATS_FILE FIELD: a counter of a running hloop-wanem, fresh
# (SIGUSR1 makes it rewrite STATS_FILE, atomically, by rename).
wanem_stat() {
  local pid=$1 file=$2 field=$3 i
  rm -f "$file"
  kill -USR1 "$pid" 2>/dev/null || { echo "wanem_stat: pid $pid is gone" >&2; return 1; }
  for ((i = 0; i < 100; i++)); do
    [[ -s $file ]] && break
    sleep 0.05
  done
  [[ -s $file ]] || { echo "wanem_stat: $file was not written" >&2; return 1; }
  jq -r ".$field" "$file"
}

# mount_stats_json MNT OUT: `hloop stats MNT --json` into the file OUT.
mount_stats_json() {
  timeout 20 "$HLOOP" stats "$1" --json >"$2" || fail "hloop stats $1 --json failed"
}

# mirror_field STATS_JSON URL FIELD: FIELD of the entry for mirror URL in
# .mirrors[] of a `hloop stats --json` file ("" if that mirror is missing).
mirror_field() {
  jq -r --arg u "$2" --arg f "$3" \
    '[.mirrors[] | select(.url == $u or .url == ($u + "/")) | .[$f]] | if length == 0 then "" else .[0] end' "$1"
}

# ranked_field RANKING_JSON URL FIELD: FIELD of mirror URL in the array that
# `hloop mirrors --json` prints ("" if missing).
ranked_field() {
  jq -r --arg u "$2" --arg f "$3" \
    '[.[] | select(.url == $u or .url == ($u + "/")) | .[$f]] | if length == 0 then "" else .[0] end' "$1"
}

# corrupt_chunk_file FILE: replace FILE by a copy (so hard links to it keep
# the good content) with 16 bytes in its middle changed (each + 128); same size.
corrupt_chunk_file() {
  local f=$1 size off
  cp -- "$f" "$f.corrupt.tmp"
  mv -f -- "$f.corrupt.tmp" "$f"
  size=$(fsize "$f")
  off=$((size / 2))
  dd if="$f" bs=1 skip="$off" count=16 status=none | tr '\000-\377' '\200-\377\000-\177' |
    dd of="$f" bs=1 seek="$off" conv=notrunc status=none
}

# attach_loop_dio FILE: like attach_loop, with --direct-io=on: the loop device
# reads FILE with O_DIRECT, so the kernel's read-ahead on FILE (a FUSE file)
# does not add reads; what reaches hloop is what the file system asked for.
attach_loop_dio() {
  requires losetup
  LOOPDEV=$(losetup -r -f --show --direct-io=on "$1") || fail "losetup -r -f --show --direct-io=on $1 failed"
  cleanup_fn detach_loop "$LOOPDEV" "$(realpath "$1")"
  log "attached $1 as $LOOPDEV (direct I/O)"
}

# ms_now: milliseconds since the epoch (for durations in logs and checks).
ms_now() { date +%s%3N; }

# wait_prefetch_done MNT [TIMEOUT_S]: wait until the mount's profile prefetch
# has gone through its whole list (.prefetch.done == .prefetch.total).
# Returns 1 at once when there is no profile (.prefetch.total == 0: the list
# is known when the mount is ready), 1 after TIMEOUT_S (60) otherwise.
wait_prefetch_done() {
  local mnt=$1 t=${2:-60} i st
  for ((i = 0; i < t * 10; i++)); do
    st=$(timeout 10 "$HLOOP" stats "$mnt" --json 2>/dev/null |
      jq -r '.prefetch | if .total == 0 then "none" elif .done == .total then "done" else "busy" end' || true)
    case $st in
      done) return 0 ;;
      none) echo "wait_prefetch_done: $mnt has no profile to prefetch" >&2; return 1 ;;
    esac
    sleep 0.1
  done
  return 1
}

# profile_chunks FILE [CHUNK_SIZE]: the chunks an hloop profile reads, one a
# line, in the order of their first mention, each once (comment lines and
# the header skipped).  Version 1 lists chunk numbers ("MS CHUNK"); version 2
# image byte ranges ("MS OFFSET LENGTH"), whose chunks of CHUNK_SIZE (262144)
# are listed.
profile_chunks() {
  # printf %.0f: mawk prints bigger numbers in exponent form and clamps %d
  # to 2^31 - 1.
  awk -v cs="${2:-262144}" 'NR > 1 && !/^#/ && NF == 2 && !seen[$2]++ { print $2 }
    NR > 1 && !/^#/ && NF == 3 && $3 > 0 {
      for (c = int($2 / cs); c <= int(($2 + $3 - 1) / cs); c++) {
        k = sprintf("%.0f", c)
        if (!seen[k]++) print k
      }
    }' "$1"
}

# profile_blocks FILE: the 4 KiB blocks of a version 2 hloop profile, one a
# line, in its order, repeats kept (a block's number is its offset / 4096).
profile_blocks() {
  awk 'NR > 1 && !/^#/ && NF == 3 && $3 > 0 {
      for (b = int($2 / 4096); b <= int(($2 + $3 - 1) / 4096); b++) printf "%.0f\n", b
    }' "$1"
}

# ext4_file_whole_blocks IMG PATH: the 4 KiB blocks (offset / 4096) of the
# ext4 image IMG that hold nothing but data of PATH (with a file system block
# size under 4 KiB, a 4 KiB block may be shared with other files), sorted as
# text, for comm.
ext4_file_whole_blocks() {
  local img=$1 path=$2 bs
  bs=$(dumpe2fs -h "$img" 2>/dev/null | awk -F: '/^Block size/ { print $2 + 0 }')
  [[ -n $bs ]] || return 1
  debugfs -R "blocks $path" "$img" 2>/dev/null | tr ' ' '\n' | awk -v bs="$bs" \
    'NF { n[sprintf("%.0f", int($1 * bs / 4096))]++ } END { for (b in n) if (n[b] * bs >= 4096) print b }' |
    sort -u
}

# ext4_file_chunks IMG PATH [CHUNK_SIZE]: the chunks that hold PATH's data
# blocks in the ext4 image IMG (debugfs), sorted, unique.
ext4_file_chunks() {
  local img=$1 path=$2 cs=${3:-262144} bs
  bs=$(dumpe2fs -h "$img" 2>/dev/null | awk -F: '/^Block size/ { print $2 + 0 }')
  [[ -n $bs ]] || return 1
  debugfs -R "blocks $path" "$img" 2>/dev/null | tr ' ' '\n' | awk -v bs="$bs" -v cs="$cs" \
    'NF { print int($1 * bs / cs) }' | sort -n -u
}
# ============================================================================

# --- hloop nbd ------------------------------------------------------------------
# start_hloop_nbd URL (--socket PATH | --listen HOST:PORT) [EXTRA ARGS...]:
#   runs `hloop nbd` as a background job and waits (20 s) for its
#   "serving NAME on URI" line.  Sets NBD_PID, NBD_URI (the URI it printed),
#   NBD_LINE (the whole line) and NBD_LOG (its stderr); registers its stop.
start_hloop_nbd() {
  local url=$1 i; shift
  local out=$TMP/nbd.$RANDOM.out
  NBD_LOG=${out%.out}.log NBD_URI='' NBD_LINE=''
  "$HLOOP" nbd "$url" "$@" >"$out" 2>"$NBD_LOG" </dev/null &
  NBD_PID=$!
  cleanup_fn stop_pid "$NBD_PID"
  for ((i = 0; i < 200; i++)); do
    NBD_LINE=$(head -n1 "$out" 2>/dev/null || true)
    if [[ $NBD_LINE == serving* ]]; then
      NBD_URI=${NBD_LINE##* on }
      log "hloop nbd $url: $NBD_LINE (pid $NBD_PID)"
      return 0
    fi
    pid_alive "$NBD_PID" || break
    sleep 0.1
  done
  cat "$out" "$NBD_LOG" >&2 || true
  fail "hloop nbd $url $* did not print its ready line"
}
