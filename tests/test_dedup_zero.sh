#!/usr/bin/env bash
# Deduplication and zero chunks:
#  A. 16 copies of one random 256K block -> exactly one chunk file, named by
#     the sha256 of the block.
#  B. a mix of zero chunks, distinct random chunks and repeats (with a short,
#     all-zero last chunk) -> one file per distinct non-zero chunk, none for
#     zero chunks; pack --json and info --json report the right counts.
#  C. an all-zero image -> no chunk files at all.
# Every image must cat back byte for byte.
source "$(dirname "$0")/lib.sh"
requires jq
CS=262144
ZERO_HASH=$(head -c $CS /dev/zero | sha256sum | cut -d' ' -f1)

# pack_json IMG STORE NAME: pack with --json, leave the JSON in $PACK_JSON.
pack_json() {
  PACK_JSON=$("$HLOOP" pack "$1" "$2" --name "$3" --json 2>"$TMP/pack.$3.err") ||
    { cat "$TMP/pack.$3.err" >&2; fail "hloop pack $1 failed"; }
  jq -e 'type == "object"' >/dev/null <<<"$PACK_JSON" || fail "pack --json did not print a JSON object: $PACK_JSON"
}

# cat_check DESC IDX IMG
cat_check() {
  local rc=0
  "$HLOOP" cat "$2" -o "$TMP/cat.out" 2>"$TMP/cat.err" || rc=$?
  check_eq "$1: hloop cat exit status" 0 "$rc"
  (( rc == 0 )) || cat "$TMP/cat.err" >&2
  check_eq "$1: hloop cat sha256" "$(sha "$3")" "$(sha "$TMP/cat.out" 2>/dev/null || echo none)"
  rm -f "$TMP/cat.out"
}

# ---- A: one block, 16 times.
random_file "$TMP/block" $CS
for i in $(seq 16); do cat "$TMP/block"; done >"$TMP/a.img"
BLOCK_HASH=$(sha "$TMP/block")
pack_json "$TMP/a.img" "$TMP/storeA" a
check_eq "A: pack chunks_total" 16 "$(jq -r .chunks_total <<<"$PACK_JSON")"
check_eq "A: pack chunks_unique" 1 "$(jq -r .chunks_unique <<<"$PACK_JSON")"
check_eq "A: pack chunks_new" 1 "$(jq -r .chunks_new <<<"$PACK_JSON")"
check_eq "A: pack chunks_zero" 0 "$(jq -r .chunks_zero <<<"$PACK_JSON")"
check_eq "A: pack bytes_read" $((16 * CS)) "$(jq -r .bytes_read <<<"$PACK_JSON")"
check_eq "A: exactly one chunk file" 1 "$(count_chunk_files "$TMP/storeA")"
check "A: the chunk file is named chunks/xx/<sha256 of the block>" test -f "$(chunk_path "$TMP/storeA" "$BLOCK_HASH")"
# bytes_written: the chunk file, with or without the index file.
cfs=$(fsize "$(chunk_path "$TMP/storeA" "$BLOCK_HASH")" 2>/dev/null || echo 0)
bw=$(jq -r .bytes_written <<<"$PACK_JSON")
check "A: pack bytes_written ($bw) is the chunk file's size ($cfs), plus the index's if counted" \
  test "$bw" == "$cfs" -o "$bw" == $((cfs + $(fsize "$TMP/storeA/a.idx")))
info=$("$HLOOP" info "$TMP/storeA/a.idx" --json) || fail "hloop info A failed"
check_eq "A: info chunk_count" 16 "$(jq -r .chunk_count <<<"$info")"
check_eq "A: info unique_chunks" 1 "$(jq -r .unique_chunks <<<"$info")"
check_eq "A: info zero_chunks" 0 "$(jq -r .zero_chunks <<<"$info")"
check_eq "A: info stored_bytes equals the chunk file's size" \
  "$(fsize "$(chunk_path "$TMP/storeA" "$BLOCK_HASH")" 2>/dev/null || echo none)" "$(jq -r .stored_bytes <<<"$info")"
cat_check A "$TMP/storeA/a.idx" "$TMP/a.img"

# ---- B: pattern of chunks.  Z = zero chunk, digits = distinct random blocks,
# repeats of a digit = identical chunks.  The image ends with a 100000-byte
# all-zero partial chunk (a zero chunk too).
PATTERN="Z 1 Z Z 2 1 3 Z 4 2 2 Z 5 1 Z Z 6 3"
for b in 1 2 3 4 5 6; do random_file "$TMP/blk$b" $CS; done
: >"$TMP/b.img"
for c in $PATTERN; do
  if [[ $c == Z ]]; then head -c $CS /dev/zero; else cat "$TMP/blk$c"; fi
done >"$TMP/b.img"
head -c 100000 /dev/zero >>"$TMP/b.img"
n_chunks=$(( $(wc -w <<<"$PATTERN") + 1 ))
n_zero=$(( $(tr ' ' '\n' <<<"$PATTERN" | grep -c Z) + 1 ))
n_unique=6
pack_json "$TMP/b.img" "$TMP/storeB" b
check_eq "B: pack chunks_total" "$n_chunks" "$(jq -r .chunks_total <<<"$PACK_JSON")"
check_eq "B: pack chunks_zero" "$n_zero" "$(jq -r .chunks_zero <<<"$PACK_JSON")"
check_eq "B: pack chunks_unique" "$n_unique" "$(jq -r .chunks_unique <<<"$PACK_JSON")"
check_eq "B: pack chunks_new" "$n_unique" "$(jq -r .chunks_new <<<"$PACK_JSON")"
check_eq "B: number of chunk files = distinct non-zero chunks" "$n_unique" "$(count_chunk_files "$TMP/storeB")"
for b in 1 2 3 4 5 6; do
  check "B: chunk file for block $b exists" test -f "$(chunk_path "$TMP/storeB" "$(sha "$TMP/blk$b")")"
done
check_not "B: no chunk file for the zero block" test -e "$(chunk_path "$TMP/storeB" "$ZERO_HASH")"
info=$("$HLOOP" info "$TMP/storeB/b.idx" --json) || fail "hloop info B failed"
check_eq "B: info chunk_count" "$n_chunks" "$(jq -r .chunk_count <<<"$info")"
check_eq "B: info unique_chunks" "$n_unique" "$(jq -r .unique_chunks <<<"$info")"
check_eq "B: info zero_chunks" "$n_zero" "$(jq -r .zero_chunks <<<"$info")"
check_eq "B: info image_size" "$(fsize "$TMP/b.img")" "$(jq -r .image_size <<<"$info")"
stored=$(find "$TMP/storeB/chunks" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
check_eq "B: info stored_bytes = total size of the chunk files" "$stored" "$(jq -r .stored_bytes <<<"$info")"
cat_check B "$TMP/storeB/b.idx" "$TMP/b.img"

# Same image through a server, so zero chunks are also synthesised on the
# HTTP path (no request may be needed for them).
start_hloop_serve "$TMP/storeB"
rc=0; "$HLOOP" cat "$URL/b.idx" >"$TMP/b.http" 2>"$TMP/b.http.err" || rc=$?
check_eq "B: hloop cat over HTTP exit status" 0 "$rc"
check_eq "B: hloop cat over HTTP sha256" "$(sha "$TMP/b.img")" "$(sha "$TMP/b.http")"
stop_server "$SERVER_PID"

# ---- C: all zero (with a short last chunk).
head -c $((3 * CS + 4096)) /dev/zero >"$TMP/c.img"
pack_json "$TMP/c.img" "$TMP/storeC" c
check_eq "C: pack chunks_zero" 4 "$(jq -r .chunks_zero <<<"$PACK_JSON")"
check_eq "C: pack chunks_unique" 0 "$(jq -r .chunks_unique <<<"$PACK_JSON")"
check_eq "C: no chunk files" 0 "$(count_chunk_files "$TMP/storeC")"
info=$("$HLOOP" info "$TMP/storeC/c.idx" --json) || fail "hloop info C failed"
check_eq "C: info zero_chunks" 4 "$(jq -r .zero_chunks <<<"$info")"
check_eq "C: info unique_chunks" 0 "$(jq -r .unique_chunks <<<"$info")"
check_eq "C: info stored_bytes" 0 "$(jq -r .stored_bytes <<<"$info")"
cat_check C "$TMP/storeC/c.idx" "$TMP/c.img"
