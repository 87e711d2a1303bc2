#!/usr/bin/env bash
# Round trip through real web servers: an ext4 image built from a varied tree
# is packed, served by hloop serve, nginx and lighttpd in turn, mounted with
# hloop mount, attached to a loop device, fsck'd, mounted read-only, and every
# file compared with the source tree.  Also packs with 64K chunks and the zlib
# and none codecs and checks `hloop cat` round trips.
source "$(dirname "$0")/lib.sh"
requires_root
requires_fuse
requires mkfs.ext4 e2fsck losetup mount umount nginx lighttpd curl jq truncate

TREE=$TMP/tree
IMG=$TMP/disk.img
STORE=$TMP/store
CHUNK=262144

make_test_tree "$TREE"
make_ext4_image "$TREE" "$IMG"
IMG_SIZE=$(fsize "$IMG")
IMG_SHA=$(sha "$IMG")
check_ne "image size is not a multiple of the chunk size" 0 $((IMG_SIZE % CHUNK))
tree_manifest "$TREE" >"$TMP/manifest.src"
log "image: $IMG_SIZE bytes, sha256 $IMG_SHA; tree manifest has $(wc -l <"$TMP/manifest.src") lines"

# Sanity check of the fixture itself: the ext4 image must hold the tree.
e2fsck -fn "$IMG" >"$TMP/e2fsck.src.log" 2>&1 || { cat "$TMP/e2fsck.src.log" >&2; fail "source image does not fsck clean"; }

"$HLOOP" pack "$IMG" "$STORE" --name disk >"$TMP/pack.out" 2>&1 || { cat "$TMP/pack.out" >&2; fail "hloop pack failed"; }
[[ -f $STORE/disk.idx ]] || fail "pack did not write $STORE/disk.idx"
info=$("$HLOOP" info "$STORE/disk.idx" --json) || fail "hloop info failed"
check_eq "info image_size" "$IMG_SIZE" "$(jq -r .image_size <<<"$info")"
check_eq "info chunk_size" "$CHUNK" "$(jq -r .chunk_size <<<"$info")"
check_eq "info chunk_count" $(((IMG_SIZE + CHUNK - 1) / CHUNK)) "$(jq -r .chunk_count <<<"$info")"
check_eq "info name" disk "$(jq -r .name <<<"$info")"

# round_trip SERVER_KIND: mount the image served at $URL and check everything.
round_trip() {
  local kind=$1
  local mnt=$TMP/mnt.$kind fsdir=$TMP/fs.$kind
  mount_image "$URL/disk.idx" "$mnt" --cache "$TMP/cache.$kind"
  check_eq "[$kind] FUSE file name" disk "$(basename "$MOUNT_FILE")"
  check_eq "[$kind] FUSE file size" "$IMG_SIZE" "$(fsize "$MOUNT_FILE")"
  check_eq "[$kind] FUSE file sha256" "$IMG_SHA" "$(sha "$MOUNT_FILE")"
  check_not "[$kind] FUSE file is read-only (open for write fails)" \
    bash -c 'exec 3>>"$1"' _ "$MOUNT_FILE" 2>/dev/null

  attach_loop "$MOUNT_FILE"
  local dev=$LOOPDEV rc=0
  e2fsck -fn "$dev" >"$TMP/e2fsck.$kind.log" 2>&1 || rc=$?
  check_eq "[$kind] e2fsck -fn $dev exit status" 0 "$rc"
  (( rc == 0 )) || cat "$TMP/e2fsck.$kind.log" >&2

  mount_ro "$dev" "$fsdir"
  tree_manifest "$fsdir" >"$TMP/manifest.$kind"
  if diff -u "$TMP/manifest.src" "$TMP/manifest.$kind" >"$TMP/manifest.$kind.diff"; then
    ok "[$kind] every file, symlink and hard link matches the source tree"
  else
    head -n 40 "$TMP/manifest.$kind.diff" >&2
    soft_fail "[$kind] tree read back through ext4 differs from the source tree"
  fi

  # Tear down in order: ext4 mount, loop device, FUSE mount.
  umount_if_mounted "$fsdir"
  detach_loop "$dev" "$(realpath "$MOUNT_FILE")"
  unmount_fuse "$mnt" "$MOUNT_PID"
  check_not "[$kind] mount point released" is_mounted "$mnt"
}

# 1. hloop's own server, mounted with --daemon.
start_hloop_serve "$STORE"
HLOOP_MOUNT_DAEMON=1 round_trip hloop-serve
stop_server "$SERVER_PID"

# 2. nginx.
start_nginx "$STORE"
round_trip nginx
stop_server "$SERVER_PID"

# 3. lighttpd.
start_lighttpd "$STORE"
round_trip lighttpd
LIGHTTPD_PID=$SERVER_PID

# 4. Other chunk size and codecs: `hloop cat` round trips, over HTTP and from
#    a plain path.
for codec in zlib none zstd; do
  s=$TMP/store64.$codec
  "$HLOOP" pack "$IMG" "$s" --name img64 --chunk-size 64K --codec "$codec" >"$TMP/pack64.$codec.out" 2>&1 ||
    { cat "$TMP/pack64.$codec.out" >&2; soft_fail "pack --chunk-size 64K --codec $codec failed"; continue; }
  info=$("$HLOOP" info "$s/img64.idx" --json) || { soft_fail "info of the $codec store failed"; continue; }
  check_eq "[64K/$codec] info chunk_size" 65536 "$(jq -r .chunk_size <<<"$info")"
  check_eq "[64K/$codec] info codec" "$codec" "$(jq -r .codec <<<"$info")"
  check_eq "[64K/$codec] info chunk_count" $(((IMG_SIZE + 65535) / 65536)) "$(jq -r .chunk_count <<<"$info")"
  rc=0; "$HLOOP" cat "$s/img64.idx" -o "$TMP/cat64.$codec" 2>"$TMP/cat64.$codec.err" || rc=$?
  check_eq "[64K/$codec] hloop cat PATH exit status" 0 "$rc"
  check_eq "[64K/$codec] hloop cat PATH sha256" "$IMG_SHA" "$(sha "$TMP/cat64.$codec" 2>/dev/null || echo none)"
  rm -f "$TMP/cat64.$codec"
done
# Codec none: chunk files hold the raw data, so the store is not smaller than
# the non-zero part of the image; and an HTTP cat through lighttpd.
stop_server "$LIGHTTPD_PID"
start_lighttpd "$TMP/store64.none"
rc=0; "$HLOOP" cat "$URL/img64.idx" >"$TMP/cat64.http" 2>"$TMP/cat64.http.err" || rc=$?
check_eq "[64K/none] hloop cat URL (lighttpd) exit status" 0 "$rc"
check_eq "[64K/none] hloop cat URL (lighttpd) to stdout sha256" "$IMG_SHA" "$(sha "$TMP/cat64.http")"
(( rc == 0 )) || cat "$TMP/cat64.http.err" >&2
stop_server "$SERVER_PID"
