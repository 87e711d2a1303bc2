#!/usr/bin/env bash
# Readers of an index with a layout (issue 14): an EXTENTS record with one hot
# chunk (ranges across chunk 0, inside chunk 1, the image's 1-byte last
# chunk) and a zero extent inside a data chunk, written by
# tests/layout_index.py next to the original index. hloop info shows the
# layout and a profile's occupancy; verify, diff, cat, fetch --all and gc
# handle the hot chunk; the image reads back identical.
source "$(dirname "$0")/lib.sh"
requires jq python3

CS=262144
IMG=$TMP/img
random_file "$IMG" $((4 * CS + 1))
dd if=/dev/zero of="$IMG" bs=1 seek=400000 count=2000 conv=notrunc status=none
STORE=$TMP/store
"$HLOOP" pack "$IMG" "$STORE" --name a -q || fail "hloop pack failed"
HOT=$(python3 "$(dirname "$0")/layout_index.py" "$STORE" a b "$IMG" \
  100:1000 300000:1000 $((4 * CS)):1 --zero 400000:2000) || fail "layout_index.py failed"
HOT_FILE=$(chunk_path "$STORE" "$HOT")

# --- info: the layout, and a profile of chunks 0 and 1.
info=$("$HLOOP" info "$STORE/b.idx" --json) || fail "hloop info b failed"
check_eq "info: one hot chunk" 1 "$(jq -r .layout.hot_chunks <<<"$info")"
check_eq "info: four extents" 4 "$(jq -r .layout.extents <<<"$info")"
check_eq "info: one zero extent" 1 "$(jq -r .layout.zero_extents <<<"$info")"
check_eq "info: bytes mapped by extents" 4001 "$(jq -r .layout.mapped_bytes <<<"$info")"
check_eq "info: hot stored bytes" "$(fsize "$HOT_FILE")" "$(jq -r .layout.hot_stored_bytes <<<"$info")"
printf 'hloop-profile 1\n0 0\n1 1\n' >"$TMP/p.profile"
info=$("$HLOOP" info "$STORE/b.idx" --json --profile "$TMP/p.profile") || fail "info --profile failed"
check_eq "info --profile: chunks 0, 1 and the hot chunk touched" 3 "$(jq -r '.profiles[0].chunks_touched' <<<"$info")"
check_eq "info --profile: one of them hot" 1 "$(jq -r '.profiles[0].hot_chunks_touched' <<<"$info")"
# The 2000 bytes of the zero extent read as zeros: a profile replay leaves
# them out (they cost nothing), so they are not counted as read.
check_eq "info --profile: bytes read, zeros left out" $((2 * CS - 2000)) "$(jq -r '.profiles[0].bytes_read' <<<"$info")"
out=$("$HLOOP" info "$STORE/b.idx" --profile "$TMP/p.profile") || fail "info (human) failed"
check_contains "info (human) shows the layout" "1 hot chunks" "$out"
check_contains "info (human) shows the share mapped" "of the image" "$out"
check_contains "info (human) shows the occupancy" "occupancy:" "$out"

# --- verify and diff count the hot chunk.
out=$("$HLOOP" verify "$STORE") || fail "verify of the store failed: $out"
check_contains "verify checks the hot chunk too" "6 chunk files" "$out"
mv "$HOT_FILE" "$TMP/hot.saved"
rc=0; out=$("$HLOOP" verify "$STORE" 2>&1) || rc=$?
check_ne "verify without the hot chunk file fails" 0 "$rc"
check_contains "... naming it" "$HOT" "$out"
mv "$TMP/hot.saved" "$HOT_FILE"
d=$("$HLOOP" diff "$STORE/a.idx" "$STORE/b.idx" --json) || fail "diff failed"
check_eq "diff: the tables agree" 5 "$(jq -r .chunks_unchanged <<<"$d")"
check_eq "diff: B has a layout" true "$(jq -r .layout_b <<<"$d")"
check_eq "diff: one new hot chunk file" 1 "$(jq -r .new_hot_files <<<"$d")"
check_eq "diff: it is the whole download" "$(fsize "$HOT_FILE")" "$(jq -r .new_bytes <<<"$d")"

# --- cat reads it back; fetch --all stages the hot chunk and skips chunk 4,
# which the extents cover entirely.
"$HLOOP" cat "$STORE/b.idx" -o "$TMP/out" || fail "cat failed"
check_eq "cat of the relaid-out index is the image" "$(sha "$IMG")" "$(sha "$TMP/out")"
out=$("$HLOOP" fetch "$STORE/b.idx" --all --cache "$TMP/cache" 2>&1) || fail "fetch --all failed: $out"
check_contains "fetch --all stages 4 table chunks and the hot chunk" "all 5 distinct chunks" "$out"
check "the hot chunk is in the cache" test -n "$(find "$TMP/cache" -name "$HOT*" | head -1)"

# --- gc keeps the hot chunk of the index it keeps.
rm "$STORE/a.idx"
sleep 1.1
"$HLOOP" gc "$STORE" --grace 1s >/dev/null || fail "gc failed"
check "gc kept the hot chunk file" test -f "$HOT_FILE"
out=$("$HLOOP" verify "$STORE") || fail "verify after gc failed: $out"
"$HLOOP" cat "$STORE/b.idx" -o "$TMP/out2" || fail "cat after gc failed"
check_eq "cat after gc is the image" "$(sha "$IMG")" "$(sha "$TMP/out2")"
