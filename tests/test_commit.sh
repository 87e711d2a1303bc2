#!/usr/bin/env bash
# hloop commit: an image written through an overlay mount becomes a new
# version in the store.
#  - `hloop cat NEW` equals the file as the overlay mount showed it (and the
#    same writes applied to a copy of the image);
#  - the only new files in the store are the chunk files of changed chunks
#    whose content is new, and commit reports their number and bytes;
#  - NEW.idx names the base as its parent;
#  - an overlay in use, and a name taken by another image, are refused.
source "$(dirname "$0")/lib.sh"
requires_fuse
requires jq fallocate comm
CS=262144
STORE=$TMP/store
CACHE=$TMP/cache
OV=$TMP/disk.overlay
MNT=$TMP/mnt

# write_both OFFSET FILE-OF-BYTES: into the mounted file and the expected copy.
write_both() {
  dd if="$2" of="$MOUNT_FILE" bs=65536 seek="$1" oflag=seek_bytes conv=notrunc,fsync status=none ||
    fail "dd to $MOUNT_FILE at $1 failed"
  dd if="$2" of="$TMP/expected.img" bs=65536 seek="$1" oflag=seek_bytes conv=notrunc status=none
}
chunk_files() { (cd "$STORE" && find chunks -type f | LC_ALL=C sort); }

# ---- base: 40 chunks plus a short tail; chunks 6-7 zero, chunk 20 = chunk 21.
SIZE=$((40 * CS + 12345))
random_file "$TMP/base.img" $SIZE
dd if=/dev/zero of="$TMP/base.img" bs=$CS seek=6 count=2 conv=notrunc status=none
dd if="$TMP/base.img" of="$TMP/base.img" bs=$CS skip=20 seek=21 count=1 conv=notrunc status=none
"$HLOOP" pack "$TMP/base.img" "$STORE" --name disk --json >/dev/null || fail "pack failed"
BASE_DIGEST=$("$HLOOP" info "$STORE/disk.idx" --json | jq -r .digest)
start_hloop_serve "$STORE"
IDX=$URL/disk.idx
cp "$TMP/base.img" "$TMP/expected.img"

mount_image "$IDX" "$MNT" --cache "$CACHE" --overlay "$OV"
# Read it all first: the kernel keeps the pages (kernel_cache), and must
# not show stale ones after the writes and fallocate calls below.
cat "$MOUNT_FILE" >/dev/null
random_file "$TMP/a" 1000;   write_both $((CS - 300)) "$TMP/a"         # chunks 0 and 1
random_file "$TMP/b" 4096;   write_both $((4 * CS + 8192)) "$TMP/b"    # one block of chunk 4
random_file "$TMP/c" 10;     write_both $((6 * CS + 77)) "$TMP/c"      # zero chunk 6 gets data
dd if="$TMP/base.img" bs=$CS skip=30 count=1 status=none >"$TMP/d"
write_both $((12 * CS)) "$TMP/d"                                        # chunk 12 = chunk 30: no new file
random_file "$TMP/e" 5000;   write_both $((40 * CS + 7000)) "$TMP/e"   # the short last chunk
# Chunk 15 zeroed by punching a hole (TRIM), chunk 16 by a zero range.
fallocate -p -o $((15 * CS)) -l $CS "$MOUNT_FILE" || fail "fallocate --punch-hole failed"
fallocate -z -o $((16 * CS)) -l $CS "$MOUNT_FILE" || fail "fallocate --zero-range failed"
dd if=/dev/zero of="$TMP/expected.img" bs=$CS seek=15 count=2 conv=notrunc status=none
sync "$MOUNT_FILE"
cp "$MOUNT_FILE" "$TMP/mounted.img"
check_eq "the mount shows base + writes" "$(sha "$TMP/expected.img")" "$(sha "$TMP/mounted.img")"

# The overlay is locked while mounted: commit must wait for the unmount.
rc=0; "$HLOOP" commit "$IDX" --overlay "$OV" --store "$STORE" --name new --cache "$CACHE" >"$TMP/busy.log" 2>&1 || rc=$?
check_ne "commit of an overlay in use fails" 0 "$rc"
check_contains "... saying it is in use" "in use" "$(cat "$TMP/busy.log")"
check_eq "... and writes no index" "" "$(ls "$STORE"/new.idx 2>/dev/null || true)"
unmount_fuse "$MNT" "$MOUNT_PID"

# Chunks changed: 0 1 4 6 12 15 16 40; new content: 0 1 4 6 40 (12 repeats
# chunk 30, 15 and 16 are now zero).
EXPECT_NEW=5
FILES_BEFORE=$(chunk_files)
out=$("$HLOOP" commit "$IDX" --overlay "$OV" --store "$STORE" --name new --cache "$CACHE" --json) ||
  fail "hloop commit failed"
echo "$out"
check_eq "commit: chunks_total" 41 "$(jq -r .chunks_total <<<"$out")"
check_eq "commit: chunks_changed" 8 "$(jq -r .chunks_changed <<<"$out")"
check_eq "commit: chunks_new" $EXPECT_NEW "$(jq -r .chunks_new <<<"$out")"
check_eq "commit: chunks_zero (6 no longer, 7, 15, 16)" 3 "$(jq -r .chunks_zero <<<"$out")"
NEW_FILES=$(comm -13 <(echo "$FILES_BEFORE") <(chunk_files))
check_eq "the store gained exactly the new chunk files" $EXPECT_NEW "$(grep -c . <<<"$NEW_FILES" || true)"
check_eq "no chunk file was removed or renamed" "" "$(comm -23 <(echo "$FILES_BEFORE") <(chunk_files))"
# They are exactly the chunks of the expected image that the base lacked.
want=$(for i in 0 1 4 6 40; do h=$(chunk_hash "$TMP/expected.img" $i); echo "chunks/${h:0:2}/$h"; done | LC_ALL=C sort)
check_eq "the new files are the changed chunks' content" "$want" "$NEW_FILES"
bytes=0; for f in $NEW_FILES; do bytes=$((bytes + $(fsize "$STORE/$f"))); done
check_eq "commit: bytes_new is their size" $bytes "$(jq -r .bytes_new <<<"$out")"

check_eq "hloop cat NEW equals what the overlay mount showed" "$(sha "$TMP/mounted.img")" \
  "$("$HLOOP" cat "$URL/new.idx" | sha256sum | cut -d' ' -f1)"
info=$("$HLOOP" info "$STORE/new.idx" --json) || fail "hloop info new failed"
check_eq "NEW's parent is the base (digest)" "$BASE_DIGEST" "$(jq -r .parent.digest <<<"$info")"
check_eq "NEW's parent is the base (name)" disk "$(jq -r .parent.name <<<"$info")"
check_eq "the base index is unchanged" "$BASE_DIGEST" "$("$HLOOP" info "$STORE/disk.idx" --json | jq -r .digest)"
mount_image "$URL/new.idx" "$TMP/mnt-new" --cache "$CACHE"
check_eq "NEW mounts and reads the same" "$(sha "$TMP/mounted.img")" "$(sha "$MOUNT_FILE")"
unmount_fuse "$TMP/mnt-new" "$MOUNT_PID"

# ---- a second commit of the same overlay writes no chunk file; the human
# summary says how many chunks and bytes are new.
human=$("$HLOOP" commit "$IDX" --overlay "$OV" --store "$STORE" --name new2 --cache "$CACHE") ||
  fail "second commit failed"
echo "$human"
check_contains "human summary: new chunks and bytes" "0 new (0 B)" "$human"
check_eq "second commit: no new chunk files" $EXPECT_NEW "$(comm -13 <(echo "$FILES_BEFORE") <(chunk_files) | grep -c .)"

# ---- a name taken by another image is refused.
rc=0; "$HLOOP" commit "$IDX" --overlay "$OV" --store "$STORE" --name new --cache "$CACHE" >"$TMP/taken.log" 2>&1 || rc=$?
check_ne "commit over another image's name fails" 0 "$rc"
check_contains "... saying so" "exists" "$(cat "$TMP/taken.log")"
