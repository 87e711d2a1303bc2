#!/usr/bin/env bash
# The copy-on-write overlay through the FUSE front end:
#  - `hloop mount --overlay FILE` shows a writable file; dd at odd offsets
#    (conv=notrunc,fsync) and ext4 writes through a read-write loop device
#    read back as written;
#  - after fsync, kill -9 of the mount process loses nothing: a new mount
#    with the same overlay shows every byte, and the ext4 file system is clean;
#  - no byte of the store or of the cache changes (sha256 of every file);
#  - `hloop overlay info` reports the base and the blocks written;
#  - the overlay refuses another image version unless --force.
source "$(dirname "$0")/lib.sh"
requires_fuse
requires jq losetup mkfs.ext4 fsck.ext4 mount umount sync
STORE=$TMP/store
CACHE=$TMP/cache
OV=$TMP/disk.overlay
MNT=$TMP/mnt

# tree_sums DIR: sha256 of every file below DIR, sorted by path.
tree_sums() { (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum); }

# dd_both OFFSET FILE-OF-BYTES: write the bytes at OFFSET into the mounted
# file (fsync before dd exits) and into the expected image.
dd_both() {
  dd if="$2" of="$MOUNT_FILE" bs=65536 seek="$1" oflag=seek_bytes conv=notrunc,fsync status=none ||
    fail "dd to $MOUNT_FILE at $1 failed"
  dd if="$2" of="$TMP/expected.img" bs=65536 seek="$1" oflag=seek_bytes conv=notrunc status=none
}

# ---- a base image (ext4), packed and served; the cache filled beforehand
# so that every chunk file the test could touch is in the before/after sums.
mkdir -p "$TMP/tree"
make_test_tree "$TMP/tree"
make_ext4_image "$TMP/tree" "$TMP/base.img"
"$HLOOP" pack "$TMP/base.img" "$STORE" --name disk --json >/dev/null || fail "pack failed"
start_hloop_serve "$STORE"
IDX=$URL/disk.idx
"$HLOOP" fetch "$IDX" --all --cache "$CACHE" >/dev/null 2>&1 || fail "hloop fetch --all failed"
STORE_BEFORE=$(tree_sums "$STORE")
CACHE_BEFORE=$(tree_sums "$CACHE/chunks")
check_ne "the cache holds chunk files" "" "$CACHE_BEFORE"
BASE_DIGEST=$("$HLOOP" info "$STORE/disk.idx" --json | jq -r .digest)
cp "$TMP/base.img" "$TMP/expected.img"

# ---- without --overlay the file stays read-only.
mount_image "$IDX" "$MNT" --cache "$CACHE"
check_eq "without --overlay: mode 0444" 444 "$(stat -c %a "$MOUNT_FILE")"
check_not "without --overlay: a write fails" \
  dd if=/dev/zero of="$MOUNT_FILE" bs=512 count=1 conv=notrunc status=none
unmount_fuse "$MNT" "$MOUNT_PID"

# ---- mount with a new overlay and write at odd offsets.
mount_image "$IDX" "$MNT" --cache "$CACHE" --overlay "$OV"
check "the overlay file was created" test -f "$OV"
check_eq "with --overlay: mode 0644" 644 "$(stat -c %a "$MOUNT_FILE")"
check_contains "the FUSE mount is read-write" rw "$(findmnt -n -o OPTIONS "$MNT")"
check_eq "with --overlay: the file reads as the image" "$(sha "$TMP/base.img")" "$(sha "$MOUNT_FILE")"
random_file "$TMP/p1" 777
random_file "$TMP/p2" 5000
random_file "$TMP/p3" $((262144 + 3))
random_file "$TMP/p4" 1
dd_both 12345 "$TMP/p1"                          # inside one block
dd_both $((1048576 - 100)) "$TMP/p2"             # across a chunk boundary
dd_both $((3 * 262144 + 4095)) "$TMP/p3"         # head, body and tail
dd_both $(( $(fsize "$TMP/base.img") - 1 )) "$TMP/p4"  # the image's last byte
check_eq "dd writes read back through the mount" "$(sha "$TMP/expected.img")" "$(sha "$MOUNT_FILE")"
check_eq "the file keeps the image's size" "$(fsize "$TMP/base.img")" "$(fsize "$MOUNT_FILE")"
check_not "the file cannot grow" \
  dd if="$TMP/p4" of="$MOUNT_FILE" bs=1 seek="$(fsize "$TMP/base.img")" conv=notrunc status=none
# The ext4 image is damaged by those writes: start over with a fresh file
# system written through a read-write loop device on the FUSE file.
LOOPDEV=$(losetup -f --show "$MOUNT_FILE") || fail "losetup (read-write) of the FUSE file failed"
cleanup_fn detach_loop "$LOOPDEV" "$(realpath "$MOUNT_FILE")"
mkfs.ext4 -q -F -L overlaid "$LOOPDEV" >"$TMP/mkfs2.log" 2>&1 || { cat "$TMP/mkfs2.log" >&2; fail "mkfs.ext4 on the loop device failed"; }
mkdir -p "$TMP/ext4"
mount "$LOOPDEV" "$TMP/ext4" || fail "mount $LOOPDEV failed"
cleanup_fn umount_if_mounted "$TMP/ext4"
random_file "$TMP/payload" $((3 * 1024 * 1024 + 17))
cp "$TMP/payload" "$TMP/ext4/payload"
echo "written through the overlay" >"$TMP/ext4/note.txt"
mkdir "$TMP/ext4/dir"
sync
umount "$TMP/ext4" || fail "umount of the ext4 file system failed"
losetup -d "$LOOPDEV"
sync "$MOUNT_FILE"  # fsync(2) of the FUSE file: the overlay flushes
cp "$MOUNT_FILE" "$TMP/after.img"
check_ne "the ext4 writes changed the file" "$(sha "$TMP/base.img")" "$(sha "$TMP/after.img")"

# ---- kill -9 after fsync; the data must be there on the next mount.
kill -KILL "$MOUNT_PID"
wait "$MOUNT_PID" 2>/dev/null || true
unmount_fuse "$MNT" ""
check_eq "store unchanged after writes and kill -9" "$STORE_BEFORE" "$(tree_sums "$STORE")"
check_eq "cache unchanged after writes and kill -9" "$CACHE_BEFORE" "$(tree_sums "$CACHE/chunks")"

info=$("$HLOOP" overlay info "$OV" --json) || fail "hloop overlay info failed"
echo "$info"
check_eq "overlay info: base digest" "$BASE_DIGEST" "$(jq -r .base.digest <<<"$info")"
check_eq "overlay info: base name" disk "$(jq -r .base.name <<<"$info")"
check_eq "overlay info: image size" "$(fsize "$TMP/base.img")" "$(jq -r .image_size <<<"$info")"
data_blocks=$(jq -r .data_blocks <<<"$info")
check_ge "overlay info: blocks with data (ext4 wrote a few MiB)" "$data_blocks" $(( (3 * 1024 * 1024) / 4096 ))
check_eq "overlay info: bytes = 4096 x data blocks" $((data_blocks * 4096)) "$(jq -r .bytes <<<"$info")"
check_ge "overlay info: mkfs's discard (TRIM through the loop device) made zero blocks" \
  "$(jq -r .zero_blocks <<<"$info")" 1
check_eq "overlay info: blocks_written = data + zero" \
  $((data_blocks + $(jq -r .zero_blocks <<<"$info"))) "$(jq -r .blocks_written <<<"$info")"
check_le "overlay info: the file occupies little more than its data" \
  "$(jq -r .allocated_bytes <<<"$info")" $((data_blocks * 4096 + 1024 * 1024))
human=$("$HLOOP" overlay info "$OV") || fail "hloop overlay info (human) failed"
check_contains "overlay info (human) names the base digest" "$BASE_DIGEST" "$human"
check_contains "overlay info (human) counts the blocks" "$data_blocks with data" "$human"

mount_image "$IDX" "$MNT" --cache "$CACHE" --overlay "$OV"
check_eq "after kill -9 and a new mount: every byte is there" "$(sha "$TMP/after.img")" "$(sha "$MOUNT_FILE")"
LOOPDEV=$(losetup -r -f --show "$MOUNT_FILE") || fail "losetup -r failed"
cleanup_fn detach_loop "$LOOPDEV" "$(realpath "$MOUNT_FILE")"
check "fsck.ext4 -n: the file system written before kill -9 is clean" fsck.ext4 -n "$LOOPDEV"
mount -o ro "$LOOPDEV" "$TMP/ext4" || fail "mount -o ro $LOOPDEV failed"
cleanup_fn umount_if_mounted "$TMP/ext4"
check_eq "the file written into ext4 survived" "$(sha "$TMP/payload")" "$(sha "$TMP/ext4/payload")"
check_eq "the note survived" "written through the overlay" "$(cat "$TMP/ext4/note.txt")"
umount "$TMP/ext4"
losetup -d "$LOOPDEV"
# A second mount of the same overlay while this one runs is refused.
mkdir -p "$TMP/mnt2"
rc=0; "$HLOOP" mount "$IDX" "$TMP/mnt2" --cache "$CACHE" --overlay "$OV" >"$TMP/mnt2.log" 2>&1 || rc=$?
check_ne "a second mount of an overlay in use fails" 0 "$rc"
check_contains "... saying it is in use" "in use" "$(cat "$TMP/mnt2.log")"
unmount_fuse "$MNT" "$MOUNT_PID"
check_eq "store unchanged at the end" "$STORE_BEFORE" "$(tree_sums "$STORE")"
check_eq "cache unchanged at the end" "$CACHE_BEFORE" "$(tree_sums "$CACHE/chunks")"

# ---- another version of the image (same size): refused unless --force.
# A fresh overlay with one known write, so the result is exact.
cp "$TMP/base.img" "$TMP/v2.img"
random_file "$TMP/p5" 4096
dd if="$TMP/p5" of="$TMP/v2.img" bs=4096 seek=5000 conv=notrunc status=none
"$HLOOP" pack "$TMP/v2.img" "$STORE" --name disk-v2 --json >/dev/null || fail "pack v2 failed"
OV2=$TMP/second.overlay
mount_image "$IDX" "$MNT" --cache "$CACHE" --overlay "$OV2"
random_file "$TMP/p6" 3000
dd if="$TMP/p6" of="$MOUNT_FILE" bs=3000 seek=1 conv=notrunc,fsync status=none || fail "dd to the second overlay failed"
unmount_fuse "$MNT" "$MOUNT_PID"
cp "$TMP/v2.img" "$TMP/v2-expected.img"
dd if="$TMP/p6" of="$TMP/v2-expected.img" bs=3000 seek=1 conv=notrunc status=none
rc=0; "$HLOOP" mount "$URL/disk-v2.idx" "$MNT" --cache "$CACHE" --overlay "$OV2" >"$TMP/wrong.log" 2>&1 || rc=$?
check_ne "an overlay on another base is refused" 0 "$rc"
check_contains "... naming the base it was made on" "made on disk " "$(cat "$TMP/wrong.log")"
check_contains "... and how to override" "--force" "$(cat "$TMP/wrong.log")"
check_not "... and nothing was mounted" is_mounted "$MNT"
mount_image "$URL/disk-v2.idx" "$MNT" --cache "$CACHE" --overlay "$OV2" --force
check_eq "with --force: v2 with the overlay's write on top" "$(sha "$TMP/v2-expected.img")" "$(sha "$MOUNT_FILE")"
unmount_fuse "$MNT" "$MOUNT_PID"
check_eq "with --force the overlay still names its own base" \
  "$BASE_DIGEST" "$("$HLOOP" overlay info "$OV2" --json | jq -r .base.digest)"
check_eq "the second overlay holds its two blocks" 2 "$("$HLOOP" overlay info "$OV2" --json | jq -r .data_blocks)"
