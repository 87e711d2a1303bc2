#!/usr/bin/env bash
# --cache-size bounds the disk cache: a full read of a 48 MiB image of
# incompressible data through a mount with --cache-size 8M returns the right
# bytes and the cache directory never grows past 8 MiB (+1 MiB for the index
# and metadata), measured while the read runs and after it.
source "$(dirname "$0")/lib.sh"
requires_root
requires_fuse
requires du

IMG=$TMP/disk.img
STORE=$TMP/store
CACHE=$TMP/cache
LIMIT=$((8 * 1024 * 1024))
SLACK=$((1024 * 1024))

random_file "$IMG" $((48 * 1024 * 1024))
IMG_SHA=$(sha "$IMG")
"$HLOOP" pack "$IMG" "$STORE" --name disk >"$TMP/pack.out" 2>&1 || { cat "$TMP/pack.out" >&2; fail "hloop pack failed"; }
start_hloop_serve "$STORE"

mkdir -p "$CACHE"
mount_image "$URL/disk.idx" "$TMP/mnt" --cache "$CACHE" --cache-size 8M

# du exits 1 when a file it saw is evicted before it stats it, but still
# prints the total: take the total either way (pipefail would end the test).
cache_bytes() { { du -sb "$CACHE" 2>/dev/null || true; } | cut -f1; }

# read_and_watch N: read the whole FUSE file while sampling the cache size.
read_and_watch() {
  local pass=$1 max=0 cur reader rc=0 t0=$SECONDS
  sha256sum "$MOUNT_FILE" >"$TMP/read.$pass" 2>"$TMP/read.$pass.err" &
  reader=$!
  while pid_alive "$reader"; do
    cur=$(cache_bytes); (( cur > max )) && max=$cur
    sleep 0.05
  done
  wait "$reader" || rc=$?
  cur=$(cache_bytes); (( cur > max )) && max=$cur
  check_eq "pass $pass: full read exit status" 0 "$rc"
  # Locally this takes about a second; 20 s catches stalls (e.g. a request
  # stuck behind idle keep-alive connections) without being flaky.
  check_le "pass $pass: full read time in seconds" $((SECONDS - t0)) 20
  check_eq "pass $pass: full read sha256" "$IMG_SHA" "$(cut -d' ' -f1 "$TMP/read.$pass")"
  check_le "pass $pass: cache size (max sampled during and after the read)" "$max" $((LIMIT + SLACK))
  log "pass $pass: max cache size $max bytes; now $(find "$CACHE" -type f | wc -l) files"
}

read_and_watch 1
# Second pass with the page cache out of the way: eviction must keep working.
drop_file_cache "$MOUNT_FILE"
read_and_watch 2

# The cache is really used (it holds at least one chunk), not just bounded.
check_ge "cache holds data after reading" "$(cache_bytes)" $((256 * 1024))
unmount_fuse "$TMP/mnt" "$MOUNT_PID"
check_le "cache size after unmount" "$(cache_bytes)" $((LIMIT + SLACK))
