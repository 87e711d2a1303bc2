#!/usr/bin/env bash
# Incremental packing: re-packing a modified image into the same store under
# the same name writes only the chunks the change touched.
source "$(dirname "$0")/lib.sh"
requires jq
CS=262144
IMG=$TMP/disk.img
STORE=$TMP/store

# touched_chunks OFFSET LENGTH: number of chunks a write of LENGTH bytes at
# OFFSET overlaps.
touched_chunks() { echo $(( ($1 + $2 - 1) / CS - $1 / CS + 1 )); }

# modify OFFSET LENGTH: overwrite with fresh random bytes, in place.
modify() {
  random_file "$TMP/patch" "$2"
  dd if="$TMP/patch" of="$IMG" bs=65536 seek="$1" oflag=seek_bytes conv=notrunc status=none
}

cat_sha() {
  local rc=0
  "$HLOOP" cat "$STORE/disk.idx" -o "$TMP/cat.out" 2>"$TMP/cat.err" || rc=$?
  (( rc == 0 )) || { cat "$TMP/cat.err" >&2; echo "cat-failed-$rc"; return 0; }
  sha "$TMP/cat.out"; rm -f "$TMP/cat.out"
}

random_file "$IMG" $((64 * 1024 * 1024))
TOTAL=$(( (64 * 1024 * 1024) / CS ))

# --- first pack.
j=$("$HLOOP" pack "$IMG" "$STORE" --name disk --json) || fail "first pack failed"
check_eq "first pack: chunks_total" "$TOTAL" "$(jq -r .chunks_total <<<"$j")"
check_eq "first pack: chunks_new" "$TOTAL" "$(jq -r .chunks_new <<<"$j")"
files0=$(count_chunk_files "$STORE")
check_eq "first pack: one file per chunk" "$TOTAL" "$files0"

# --- unchanged re-pack writes nothing.
j=$("$HLOOP" pack "$IMG" "$STORE" --name disk --json) || fail "re-pack of the same image failed"
check_eq "unchanged re-pack: chunks_new" 0 "$(jq -r .chunks_new <<<"$j")"
# bytes_written may count the rewritten index file, but no chunk data.
bw=$(jq -r .bytes_written <<<"$j")
check "unchanged re-pack: bytes_written ($bw) is 0 or just the index" \
  test "$bw" == 0 -o "$bw" == "$(fsize "$STORE/disk.idx")"
check_eq "unchanged re-pack: no new chunk files" "$files0" "$(count_chunk_files "$STORE")"

# --- change ~3 MiB at an unaligned offset.
OFF1=$((10 * 1024 * 1024 + 100000)); LEN1=$((3 * 1024 * 1024))
modify $OFF1 $LEN1
EXP1=$(touched_chunks $OFF1 $LEN1)
log "changed $LEN1 bytes at $OFF1: expect $EXP1 new chunks"
j=$("$HLOOP" pack "$IMG" "$STORE" --name disk --json) || fail "second pack failed"
check_eq "second pack: chunks_total" "$TOTAL" "$(jq -r .chunks_total <<<"$j")"
check_eq "second pack: chunks_new = chunks touched by the change" "$EXP1" "$(jq -r .chunks_new <<<"$j")"
files1=$(count_chunk_files "$STORE")
check_eq "second pack: store grew by exactly $EXP1 chunk files" $((files0 + EXP1)) "$files1"
check_eq "second pack: new index cats back to the modified image" "$(sha "$IMG")" "$(cat_sha)"
info=$("$HLOOP" info "$STORE/disk.idx" --json) || fail "info after the second pack failed"
log "info after the second pack: parent=$(jq -c .parent <<<"$info")"

# --- change exactly 4 aligned chunks; human summary this time.
OFF2=$((40 * 1024 * 1024)); LEN2=$((4 * CS))
modify $OFF2 $LEN2
EXP2=$(touched_chunks $OFF2 $LEN2)
rc=0; human=$("$HLOOP" pack "$IMG" "$STORE" --name disk 2>&1) || rc=$?
check_eq "third pack (human output): exit status" 0 "$rc"
echo "$human"
check_contains "human summary mentions new chunks" new "$human"
check "human summary mentions the number of new chunks ($EXP2)" grep -qw -- "$EXP2" <<<"$human"
files2=$(count_chunk_files "$STORE")
check_eq "third pack: store grew by exactly $EXP2 chunk files" $((files1 + EXP2)) "$files2"
check_eq "third pack: new index cats back to the modified image" "$(sha "$IMG")" "$(cat_sha)"
