#!/usr/bin/env bash
# Corrupt chunks: a chunk file altered on the server (one byte flipped, size
# unchanged) makes reads of that chunk fail with EIO while every other chunk
# still reads correctly, and no altered byte is ever returned.  `hloop verify`
# passes before, and names the corrupt chunk (and later a missing chunk) after.
source "$(dirname "$0")/lib.sh"
requires_fuse
requires curl

CS=262144
NCHUNKS=9            # 8 full chunks + a short one
BAD=3                # the chunk we corrupt
MISSING=6            # the chunk we delete (for verify)
IMG=$TMP/disk.img
STORE=$TMP/store

random_file "$IMG" $((8 * CS + 1000))
"$HLOOP" pack "$IMG" "$STORE" --name disk >"$TMP/pack.out" 2>&1 || { cat "$TMP/pack.out" >&2; fail "hloop pack failed"; }
check_eq "all $NCHUNKS chunks stored" "$NCHUNKS" "$(count_chunk_files "$STORE")"

rc=0; out=$("$HLOOP" verify "$STORE" 2>&1) || rc=$?
check_eq "verify of the intact store exits 0" 0 "$rc"
(( rc == 0 )) || echo "$out" >&2

BAD_HASH=$(chunk_hash "$IMG" $BAD)
BAD_FILE=$(chunk_path "$STORE" "$BAD_HASH")
[[ -f $BAD_FILE ]] || fail "chunk file for chunk $BAD not found at $BAD_FILE"

# Flip one byte in the middle of the chunk file, keeping its size.
size=$(fsize "$BAD_FILE")
pos=$((size / 2))
orig=$(od -An -tu1 -j "$pos" -N1 "$BAD_FILE" | tr -d ' ')
printf "\\$(printf '%03o' $((orig ^ 0xff)))" | dd of="$BAD_FILE" bs=1 seek="$pos" conv=notrunc status=none
check_eq "corrupted chunk file keeps its size" "$size" "$(fsize "$BAD_FILE")"
check_ne "byte $pos of the chunk file changed" "$orig" "$(od -An -tu1 -j "$pos" -N1 "$BAD_FILE" | tr -d ' ')"

# --- verify names the corrupt chunk.
rc=0; out=$("$HLOOP" verify "$STORE" 2>&1) || rc=$?
check_eq "verify of the corrupt store exits 1" 1 "$rc"
check_contains "verify output names the corrupt chunk" "$BAD_HASH" "$out"
rc=0; out=$("$HLOOP" verify "$STORE" --index disk 2>&1) || rc=$?
check_eq "verify --index disk of the corrupt store exits 1" 1 "$rc"
check_contains "verify --index output names the corrupt chunk" "$BAD_HASH" "$out"

# --- reads through a mount.
start_hloop_serve "$STORE"
mount_image "$URL/disk.idx" "$TMP/mnt" --cache "$TMP/cache"
F=$MOUNT_FILE

# The corrupt chunk: the read fails with an I/O error and returns nothing.
rc=0
dd if="$F" of="$TMP/bad.out" bs=$CS skip=$BAD count=1 status=none 2>"$TMP/bad.err" || rc=$?
check_ne "reading chunk $BAD fails" 0 "$rc"
check_contains "... with an I/O error" "Input/output error" "$(cat "$TMP/bad.err")"
check_eq "... and returns no data" 0 "$(fsize "$TMP/bad.out")"
# A small read inside the chunk fails too (and again: the failure sticks).
rc=0; dd if="$F" of=/dev/null bs=1 skip=$((BAD * CS + 12345)) count=100 status=none 2>/dev/null || rc=$?
check_ne "a 100-byte read inside chunk $BAD fails" 0 "$rc"

# Every other chunk still reads correctly, also after the failure.
for ((i = 0; i < NCHUNKS; i++)); do
  (( i == BAD )) && continue
  len=$CS; (( i == NCHUNKS - 1 )) && len=1000
  rc=0; got=$(dd if="$F" bs=$CS skip=$i count=1 status=none 2>/dev/null | sha256sum | cut -d' ' -f1) || rc=$?
  check_eq "chunk $i reads back correctly" "$(sha_range "$IMG" $((i * CS)) $len)" "$got"
done

# A read spanning a good and the bad chunk must not return altered bytes: a
# full cat fails, and whatever came out before the failure is a prefix of the
# true image that stops before chunk $BAD.
drop_file_cache "$F"
rc=0; cat "$F" >"$TMP/full.out" 2>"$TMP/full.err" || rc=$?
check_ne "cat of the whole mounted file fails" 0 "$rc"
got=$(fsize "$TMP/full.out")
check_le "cat returned nothing from chunk $BAD onwards" "$got" $((BAD * CS))
check "bytes returned before the failure match the image" cmp -s -n "$got" "$TMP/full.out" "$IMG"

# hloop cat fails too (non-zero, not a crash).
rc=0; "$HLOOP" cat "$URL/disk.idx" -o "$TMP/cat.out" 2>"$TMP/cat.err" || rc=$?
check_ne "hloop cat of the corrupt image fails" 0 "$rc"
check_le "... with an ordinary exit status" "$rc" 127
unmount_fuse "$TMP/mnt" "$MOUNT_PID"
stop_server "$SERVER_PID"

# --- a missing chunk file.
MISSING_HASH=$(chunk_hash "$IMG" $MISSING)
rm -f "$(chunk_path "$STORE" "$MISSING_HASH")"
rc=0; out=$("$HLOOP" verify "$STORE" 2>&1) || rc=$?
check_eq "verify with a missing chunk exits 1" 1 "$rc"
check_contains "verify output names the missing chunk" "$MISSING_HASH" "$out"
check_contains "verify output still names the corrupt chunk" "$BAD_HASH" "$out"
missing_line=$(grep -F "$MISSING_HASH" <<<"$out" || true)
check_contains "the line naming the missing chunk says 'missing'" missing "$missing_line"
log "verify output:"; echo "$out"
