#!/usr/bin/env bash
# hloop gc, log and diff (issue #12) on a store with three versions of a real
# image: v1 packed, v2 committed over v1, v3 committed over v2 (through an
# overlay mount each). The chunk files each version uses are computed here
# independently: sha256sum of the image's chunks (split -b), as named in the
# store (chunks/ab/<sha256>).
#  - log shows the chain; diff's new-bytes figure equals what commit and pack
#    reported as new;
#  - after an index is deleted by hand, gc removes exactly the chunks only
#    that version used; --dry-run changes nothing;
#  - --keep-last deletes the right indexes (and their .sig);
#  - the grace period protects fresh chunk files;
#  - a gc killed (kill -9) in the middle leaves a store hloop verify accepts.
source "$(dirname "$0")/lib.sh"
requires_fuse
requires jq split comm
CS=65536
N=64  # chunks per image
STORE=$TMP/store
CACHE=$TMP/cache

# chunk_set IMAGE: the chunk files IMAGE needs, "chunks/ab/<hash>", sorted
# (all-zero chunks have none).
chunk_set() {
  local d=$TMP/split.$$ f
  rm -rf "$d"; mkdir -p "$d"
  split -b $CS -a 4 "$1" "$d/c."
  for f in "$d"/c.*; do
    cmp -s "$f" <(head -c "$(fsize "$f")" /dev/zero) && continue
    h=$(sha "$f")
    echo "chunks/${h:0:2}/$h"
  done | LC_ALL=C sort -u
  rm -rf "$d"
}
chunk_files() { (cd "$1" && find chunks -type f | LC_ALL=C sort); }
union() { printf '%s\n' "$@" | LC_ALL=C sort -u; }
listing() { (cd "$1" && find . -type f -printf '%p %s %T@\n' | LC_ALL=C sort); }
age_chunks() { find "$1/chunks" -type f -exec touch -d '2 days ago' {} +; }
# write_chunks SRC_IDX OVERLAY IMAGE_COPY CHUNK...: new random data in CHUNKs
# through an overlay mount of SRC_IDX, and the same into IMAGE_COPY.
write_chunks() {
  local idx=$1 ov=$2 copy=$3 c; shift 3
  mount_image "$idx" "$TMP/mnt" --cache "$CACHE" --overlay "$ov"
  for c in "$@"; do
    random_file "$TMP/w" $CS
    dd if="$TMP/w" of="$MOUNT_FILE" bs=$CS seek="$c" conv=notrunc,fsync status=none || fail "write to chunk $c"
    dd if="$TMP/w" of="$copy" bs=$CS seek="$c" conv=notrunc status=none
  done
  unmount_fuse "$TMP/mnt" "$MOUNT_PID"
}

# ---- three versions.
random_file "$TMP/v1.img" $((N * CS))
dd if=/dev/zero of="$TMP/v1.img" bs=$CS seek=40 count=2 conv=notrunc status=none  # zero chunks
"$HLOOP" pack "$TMP/v1.img" "$STORE" --name v1 --chunk-size 64K -q || fail "pack v1 failed"
start_hloop_serve "$STORE"
cp "$TMP/v1.img" "$TMP/v2.img"
write_chunks "$URL/v1.idx" "$TMP/ov2" "$TMP/v2.img" 3 10 11 12 40
c2=$("$HLOOP" commit "$URL/v1.idx" --overlay "$TMP/ov2" --store "$STORE" --name v2 --cache "$CACHE" --json) ||
  fail "commit v2 failed"
cp "$TMP/v2.img" "$TMP/v3.img"
write_chunks "$URL/v2.idx" "$TMP/ov3" "$TMP/v3.img" 3 10 11 20 21 30
c3=$("$HLOOP" commit "$URL/v2.idx" --overlay "$TMP/ov3" --store "$STORE" --name v3 --cache "$CACHE" --json) ||
  fail "commit v3 failed"
stop_server "$SERVER_PID"
S1=$(chunk_set "$TMP/v1.img"); S2=$(chunk_set "$TMP/v2.img"); S3=$(chunk_set "$TMP/v3.img")
check_eq "the store holds the chunks of v1, v2 and v3" "$(union "$S1" "$S2" "$S3")" "$(chunk_files "$STORE")"
check "hloop verify accepts the store" "$HLOOP" verify "$STORE"

# ---- log: the chain, with what each version added.
log_json=$("$HLOOP" log "$STORE/v3.idx" --json) || fail "hloop log failed"
check_eq "log: three versions, newest first" "v3 v2 v1" "$(jq -r '[.versions[].name] | join(" ")' <<<"$log_json")"
check_eq "log: the chain ends at v1, which has no parent" null "$(jq -r .stopped <<<"$log_json")"
check_eq "log: v3's digest" "$(jq -r .digest <<<"$c3")" "$(jq -r '.versions[0].digest' <<<"$log_json")"
check_eq "log: v3 added what commit reported" "$(jq -r .bytes_new <<<"$c3")" "$(jq -r '.versions[0].added_bytes' <<<"$log_json")"
check_eq "log: v2 added what commit reported" "$(jq -r .bytes_new <<<"$c2")" "$(jq -r '.versions[1].added_bytes' <<<"$log_json")"
check_eq "log: image size" $((N * CS)) "$(jq -r '.versions[2].image_size' <<<"$log_json")"
human=$("$HLOOP" log "$STORE/v3.idx") || fail "hloop log (text) failed"
check_contains "log (text) names v1" "version v1" "$human"

# ---- diff: new bytes equal commit's and pack's figures; chunk counts.
d23=$("$HLOOP" diff "$STORE/v2.idx" "$STORE/v3.idx" --json) || fail "hloop diff failed"
check_eq "diff v2 v3: new_bytes equals commit's bytes_new" "$(jq -r .bytes_new <<<"$c3")" "$(jq -r .new_bytes <<<"$d23")"
check_eq "diff v2 v3: new files equal commit's chunks_new" "$(jq -r .chunks_new <<<"$c3")" "$(jq -r .new_files <<<"$d23")"
check_eq "diff v2 v3: chunks changed" 6 "$(jq -r .chunks_changed <<<"$d23")"
check_eq "diff v2 v3: ranges (10-11 and 20-21 merged)" \
  "$((3 * CS))+$CS $((10 * CS))+$((2 * CS)) $((20 * CS))+$((2 * CS)) $((30 * CS))+$CS" \
  "$(jq -r '[.ranges[] | "\(.offset)+\(.length)"] | join(" ")' <<<"$d23")"
d12=$("$HLOOP" diff "$STORE/v1.idx" "$STORE/v2.idx" --json) || fail "hloop diff v1 v2 failed"
check_eq "diff v1 v2: new_bytes equals commit's bytes_new" "$(jq -r .bytes_new <<<"$c2")" "$(jq -r .new_bytes <<<"$d12")"
check_eq "diff v1 v2: chunk 40 zero -> data is added" 1 "$(jq -r .chunks_added <<<"$d12")"
P=$TMP/pstore
"$HLOOP" pack "$TMP/v1.img" "$P" --name p1 --chunk-size 64K -q || fail "pack p1 failed"
p2=$("$HLOOP" pack "$TMP/v2.img" "$P" --name p2 --chunk-size 64K --json) || fail "pack p2 failed"
check_eq "diff p1 p2: new_bytes equals pack's bytes_new" "$(jq -r .bytes_new <<<"$p2")" \
  "$("$HLOOP" diff "$P/p1.idx" "$P/p2.idx" --json | jq -r .new_bytes)"

# Copies for --keep-last and for the kill test, before anything is deleted.
cp -a "$STORE" "$TMP/keep"
cp -a "$STORE" "$TMP/kill"

# ---- v2's index deleted by hand: --dry-run changes nothing, then gc removes
# exactly the chunks only v2 used.
age_chunks "$STORE"
rm "$STORE/v2.idx"
ONLY2=$(comm -23 <(echo "$S2") <(union "$S1" "$S3"))
check_ne "v2 has chunks of its own (the test needs some)" "" "$ONLY2"
before=$(listing "$STORE")
dry=$("$HLOOP" gc "$STORE" --dry-run --json) || fail "gc --dry-run failed"
check_eq "--dry-run: the store is unchanged" "$before" "$(listing "$STORE")"
check_eq "--dry-run: lists the chunks only v2 used" "$ONLY2" \
  "$(jq -r '.chunks_removed[] | "chunks/\(.[0:2])/\(.)"' <<<"$dry" | LC_ALL=C sort)"
out=$("$HLOOP" gc "$STORE" --json) || fail "gc failed"
check_eq "gc: removed exactly the chunks only v2 used" "$ONLY2" \
  "$(jq -r '.chunks_removed[] | "chunks/\(.[0:2])/\(.)"' <<<"$out" | LC_ALL=C sort)"
check_eq "gc: the store holds the chunks of v1 and v3" "$(union "$S1" "$S3")" "$(chunk_files "$STORE")"
bytes=0; for f in $ONLY2; do bytes=$((bytes + $(fsize "$TMP/keep/$f"))); done
check_eq "gc: bytes freed" "$bytes" "$(jq -r .bytes_freed <<<"$out")"
check_eq "gc without --keep-last deletes no index" "v1.idx v3.idx" "$(cd "$STORE" && echo *.idx)"
check "hloop verify accepts the store after gc" "$HLOOP" verify "$STORE"
out=$("$HLOOP" gc "$STORE" --json) || fail "second gc failed"
check_eq "a second gc removes nothing" 0 "$(jq -r '.chunks_removed | length' <<<"$out")"
human=$("$HLOOP" gc "$STORE") || fail "gc (text) failed"
check_contains "gc (text) says what it freed" "freed 0 B" "$human"

# ---- the grace period protects fresh chunk files: an image packed and its
# index deleted (as by a pack in progress) keeps its chunks until they age.
random_file "$TMP/fresh.img" $((4 * CS))
"$HLOOP" pack "$TMP/fresh.img" "$STORE" --name fresh --chunk-size 64K -q || fail "pack fresh failed"
rm "$STORE/fresh.idx"
FRESH=$(chunk_set "$TMP/fresh.img")
out=$("$HLOOP" gc "$STORE" --json) || fail "gc (grace) failed"
check_eq "grace: no fresh chunk removed" 0 "$(jq -r '.chunks_removed | length' <<<"$out")"
check_eq "grace: the fresh chunks are counted as young" 4 "$(jq -r .chunks_young <<<"$out")"
OLD=$(head -n 2 <<<"$FRESH")
for f in $OLD; do touch -d '2 hours ago' "$STORE/$f"; done
out=$("$HLOOP" gc "$STORE" --grace 1h --json) || fail "gc --grace 1h failed"
check_eq "--grace 1h: only the two chunk files older than an hour are removed" "$OLD" \
  "$(jq -r '.chunks_removed[] | "chunks/\(.[0:2])/\(.)"' <<<"$out" | LC_ALL=C sort)"
rc=0; "$HLOOP" gc "$STORE" --grace 1fortnight >"$TMP/bad.log" 2>&1 || rc=$?
check_ne "a bad --grace is refused" 0 "$rc"

# ---- --keep-last: v3 is the only history's head; 2 keeps v3 and v2.
K=$TMP/keep
age_chunks "$K"
echo "signature" >"$K/v1.idx.sig"
dry=$("$HLOOP" gc "$K" --keep-last 1 --dry-run --json) || fail "gc --keep-last 1 --dry-run failed"
check_eq "--keep-last 1 --dry-run: would remove v1 and v2" '["v1","v2"]' "$(jq -c .indexes_removed <<<"$dry")"
out=$("$HLOOP" gc "$K" --keep-last 2 --json) || fail "gc --keep-last 2 failed"
check_eq "--keep-last 2: removes v1" '["v1"]' "$(jq -c .indexes_removed <<<"$out")"
check_eq "--keep-last 2: v2 and v3 remain" "v2.idx v3.idx" "$(cd "$K" && echo *.idx)"
check_eq "--keep-last 2: v1's signature went with it" "" "$(ls "$K"/*.sig 2>/dev/null || true)"
check_eq "--keep-last 2: the store holds the chunks of v2 and v3" "$(union "$S2" "$S3")" "$(chunk_files "$K")"
check "hloop verify accepts the store after --keep-last" "$HLOOP" verify "$K"
rc=0; "$HLOOP" gc "$K" --keep-last 0 >"$TMP/bad.log" 2>&1 || rc=$?
check_ne "--keep-last 0 is refused" 0 "$rc"

# ---- a corrupt index: gc refuses and removes nothing.
X=$TMP/corrupt
cp -a "$TMP/keep" "$X"
printf 'garbage' | dd of="$X/v3.idx" bs=1 seek=300 conv=notrunc status=none
before=$(listing "$X")
rc=0; "$HLOOP" gc "$X" --keep-last 1 >"$TMP/corrupt.log" 2>&1 || rc=$?
check_ne "gc with a corrupt index fails" 0 "$rc"
check_contains "... naming the index" "v3.idx" "$(cat "$TMP/corrupt.log")"
check_eq "... and changes nothing" "$before" "$(listing "$X")"

# ---- kill -9 in the middle (HLOOP_TEST_GC_PAUSE_MS: a pause before each
# deletion, test only) leaves a store verify accepts; a new gc finishes.
K9=$TMP/kill
age_chunks "$K9"
WANT_LEFT=$S3
n_before=$(chunk_files "$K9" | wc -l)
HLOOP_TEST_GC_PAUSE_MS=300 "$HLOOP" gc "$K9" --keep-last 1 >"$TMP/k9.log" 2>&1 &
gcpid=$!
# Kill it as soon as it has removed a chunk file (it removes 2 indexes and
# 10 chunk files, 300 ms apart).
for ((i = 0; i < 200; i++)); do
  (( $(chunk_files "$K9" | wc -l) < n_before )) && break
  sleep 0.05
done
kill -9 $gcpid
wait $gcpid 2>/dev/null || true
n_mid=$(chunk_files "$K9" | wc -l)
log "chunk files: $n_before before, $n_mid after the kill, $(wc -l <<<"$WANT_LEFT") wanted"
check "killed gc had removed the indexes and some chunks" test ! -e "$K9/v1.idx" -a ! -e "$K9/v2.idx" -a "$n_mid" -lt "$n_before"
check "killed gc had not finished" test "$n_mid" -gt "$(wc -l <<<"$WANT_LEFT")"
check "hloop verify accepts the store after kill -9" "$HLOOP" verify "$K9"
"$HLOOP" gc "$K9" --keep-last 1 >/dev/null || fail "gc after the kill failed"
check_eq "a new gc finishes: the chunks of v3 remain" "$WANT_LEFT" "$(chunk_files "$K9")"

