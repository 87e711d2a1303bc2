#!/usr/bin/env bash
# Offline use: `hloop fetch URL --cache C --all` downloads the index and every
# chunk; with the server stopped, `hloop mount URL MNT --cache C` (and
# `hloop cat`) still read back the whole image.
source "$(dirname "$0")/lib.sh"
requires_root
requires_fuse
requires curl

IMG=$TMP/disk.img
STORE=$TMP/store
CACHE=$TMP/cache

# ~10 MiB: random data, a zero region, a repeated block, and a short tail.
random_file "$TMP/a" $((4 * 1024 * 1024))
random_file "$TMP/b" $((256 * 1024))
{
  cat "$TMP/a"
  head -c $((2 * 1024 * 1024)) /dev/zero
  cat "$TMP/b" "$TMP/b" "$TMP/b"
  head -c $((3 * 1024 * 1024 + 777)) /dev/urandom
} >"$IMG"
IMG_SHA=$(sha "$IMG")
IMG_SIZE=$(fsize "$IMG")
check_eq "fixture image size" $(((4 + 2 + 3) * 1024 * 1024 + 3 * 262144 + 777)) "$IMG_SIZE"

"$HLOOP" pack "$IMG" "$STORE" --name disk >"$TMP/pack.out" 2>&1 || { cat "$TMP/pack.out" >&2; fail "hloop pack failed"; }
start_hloop_serve "$STORE"
IDX_URL=$URL/disk.idx

rc=0; "$HLOOP" fetch "$IDX_URL" --cache "$CACHE" --all >"$TMP/fetch.out" 2>&1 || rc=$?
check_eq "hloop fetch --all exit status" 0 "$rc"
(( rc == 0 )) || cat "$TMP/fetch.out" >&2
log "cache after fetch: $(du -sb "$CACHE" | cut -f1) bytes, $(find "$CACHE" -type f | wc -l) files"

stop_server "$SERVER_PID"
check_not "server is really down" curl -s -o /dev/null --max-time 2 "$IDX_URL"

# Mount with --daemon from the cache alone.
HLOOP_MOUNT_DAEMON=1 mount_image "$IDX_URL" "$TMP/mnt" --cache "$CACHE"
check_eq "offline FUSE file size" "$IMG_SIZE" "$(fsize "$MOUNT_FILE")"
rc=0; got=$(sha "$MOUNT_FILE") || rc=$?
check_eq "offline read of the whole image succeeds" 0 "$rc"
check_eq "offline FUSE file sha256" "$IMG_SHA" "$got"
# A read in the middle, after dropping the file's page cache.
drop_file_cache "$MOUNT_FILE"
check_eq "offline sha256 of 1 MiB at offset 5 MiB" "$(sha_range "$IMG" $((5 << 20)) $((1 << 20)))" \
  "$(dd if="$MOUNT_FILE" bs=1M skip=5 count=1 status=none 2>/dev/null | sha256sum | cut -d' ' -f1)"
unmount_fuse "$TMP/mnt"
check_not "offline mount released by umount" is_mounted "$TMP/mnt"

# hloop cat from the cache alone.
rc=0; "$HLOOP" cat "$IDX_URL" --cache "$CACHE" -o "$TMP/cat.out" 2>"$TMP/cat.err" || rc=$?
check_eq "offline hloop cat exit status" 0 "$rc"
(( rc == 0 )) || cat "$TMP/cat.err" >&2
check_eq "offline hloop cat sha256" "$IMG_SHA" "$(sha "$TMP/cat.out" 2>/dev/null || echo none)"

# Without the cache, the same mount must fail cleanly (proves the cache was used).
rc=0; timeout 30 "$HLOOP" cat "$IDX_URL" -o "$TMP/nocache.out" 2>"$TMP/nocache.err" || rc=$?
check_ne "hloop cat without cache fails while the server is down" 0 "$rc"
check_le "... with an ordinary exit status (no crash)" "$rc" 127
