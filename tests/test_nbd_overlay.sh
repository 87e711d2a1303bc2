#!/usr/bin/env bash
# hloop nbd --overlay (issue #4): a writable export. qemu-io writes of odd
# sizes and offsets (unaligned head, aligned body, unaligned tail), zeroes and
# trims; after FLUSH (and FUA writes) a kill -9 of the server loses nothing;
# the store and the cache are untouched; a wrong base is refused; commit of
# the overlay reads back (nbdcopy of the new index) as base + overlay.
source "$(dirname "$0")/lib.sh"
requires nbdinfo nbdcopy qemu-io jq

MIB=$((1024 * 1024))
IMG=$TMP/disk.img
random_file "$IMG" $((6 * MIB + 4096))
dd if=/dev/zero of="$IMG" bs=$MIB seek=2 count=1 conv=notrunc status=none
"$HLOOP" pack "$IMG" "$TMP/store" --name disk -q || fail "hloop pack failed"
random_file "$TMP/other.img" $((6 * MIB + 4096))
"$HLOOP" pack "$TMP/other.img" "$TMP/store" --name other -q || fail "hloop pack (other) failed"
start_hloop_serve "$TMP/store"
INDEX=$URL/disk.idx
hash_tree() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
store_before=$(hash_tree "$TMP/store")

SOCK=$TMP/nbd.sock
OV=$TMP/disk.overlay
start_hloop_nbd "$INDEX" --socket "$SOCK" --cache "$TMP/cache" --overlay "$OV"
URI=$NBD_URI
check_eq "with --overlay the export is writable" false "$(nbdinfo --json "$URI" | jq -r '.exports[0].is_read_only')"
check_eq "... and can flush" true "$(nbdinfo --json "$URI" | jq -r '.exports[0].can_flush')"

# The expected image, edited the same way with dd.
cp "$IMG" "$TMP/expect.img"
edit() {  # edit OFFSET LEN PATTERN: qemu-io write on the export, dd on the copy
  qemu-io -f raw -c "write -P $3 $1 $2" "$URI" >/dev/null || fail "qemu-io write $1 $2 failed"
  head -c "$2" /dev/zero | tr '\0' "\\$(printf '%03o' "$3")" |
    dd of="$TMP/expect.img" bs=1 seek="$1" conv=notrunc status=none
}
edit 1 1 0x11                       # one byte, unaligned
edit 4095 2 0x22                    # straddling a 4 KiB block
edit $((256 * 1024 - 100)) 9000 0x33  # straddling a chunk boundary, unaligned both ends
edit $((2 * MIB + 512)) 4096 0x44   # inside a zero chunk
edit $((6 * MIB + 4000)) 96 0x55    # the very end
qemu-io -f raw -c "write -z -u 131072 65536" "$URI" >/dev/null || fail "qemu-io write -z failed"
dd if=/dev/zero of="$TMP/expect.img" bs=1 seek=131072 count=65536 conv=notrunc status=none
qemu-io -f raw -c "write -P 0x66 -f 700000 3000" "$URI" >/dev/null || fail "qemu-io FUA write failed"
head -c 3000 /dev/zero | tr '\0' '\146' | dd of="$TMP/expect.img" bs=1 seek=700000 conv=notrunc status=none
qemu-io -f raw -c "flush" "$URI" >/dev/null || fail "qemu-io flush failed"

nbdcopy "$URI" "$TMP/read1.img" || fail "nbdcopy failed"
check_eq "reads through the export show every write" "$(sha "$TMP/expect.img")" "$(sha "$TMP/read1.img")"

# kill -9, restart with the same overlay: everything flushed is there.
kill -9 "$NBD_PID"; wait "$NBD_PID" 2>/dev/null || true
start_hloop_nbd "$INDEX" --socket "$SOCK.2" --cache "$TMP/cache" --overlay "$OV"
nbdcopy "$NBD_URI" "$TMP/read2.img" || fail "nbdcopy after restart failed"
check_eq "after kill -9 and a restart, the flushed writes are all there" "$(sha "$TMP/expect.img")" "$(sha "$TMP/read2.img")"
check_eq "the store was not modified by the writes" "$store_before" "$(hash_tree "$TMP/store")"
stop_pid "$NBD_PID"

# The overlay is bound to its base.
rc=0; "$HLOOP" nbd "$URL/other.idx" --socket "$TMP/x.sock" --cache "$TMP/cache" --overlay "$OV" \
  >"$TMP/wrong.out" 2>"$TMP/wrong.err" || rc=$?
check_eq "an overlay on another base is refused" 1 "$rc"
check_contains "... with a message naming both images" "not on other" "$(cat "$TMP/wrong.err")"
check "... and no socket is left behind" test ! -e "$TMP/x.sock"

# Commit into a new version and read it back over NBD without an overlay.
"$HLOOP" commit "$INDEX" --overlay "$OV" --store "$TMP/store" --name disk2 --cache "$TMP/cache" \
  >"$TMP/commit.out" 2>&1 || { cat "$TMP/commit.out" >&2; fail "hloop commit failed"; }
start_hloop_nbd "$URL/disk2.idx" --socket "$SOCK.3" --cache "$TMP/cache2"
nbdcopy "$NBD_URI" "$TMP/read3.img" || fail "nbdcopy of the committed image failed"
check_eq "the committed image over NBD is base + overlay" "$(sha "$TMP/expect.img")" "$(sha "$TMP/read3.img")"
check_eq "the committed index records its parent" "$("$HLOOP" info "$TMP/store/disk.idx" --json | jq -r .digest)" \
  "$("$HLOOP" info "$TMP/store/disk2.idx" --json | jq -r .parent.digest)"
