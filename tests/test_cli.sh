#!/usr/bin/env bash
# Command-line interface: --help everywhere, usage errors exit 2, invalid chunk
# sizes are rejected with a clear message, size suffixes are accepted, and the
# --json outputs have the documented keys.
source "$(dirname "$0")/lib.sh"
requires jq

# run CMD...: sets RC, OUT (stdout) and ERR (stderr).
run() {
  RC=0
  "$@" >"$TMP/stdout" 2>"$TMP/stderr" </dev/null || RC=$?
  OUT=$(cat "$TMP/stdout"); ERR=$(cat "$TMP/stderr")
}

# --- help
run "$HLOOP" --help
check_eq "hloop --help exit status" 0 "$RC"
check_contains "hloop --help prints usage" usage "$OUT"
for c in pack info serve mount cat fetch verify stats mirrors log diff gc; do
  check_contains "hloop --help lists '$c'" "$c" "$OUT"
done
for c in pack info serve mount cat fetch verify stats mirrors log diff gc; do
  run "$HLOOP" "$c" --help
  check_eq "hloop $c --help exit status" 0 "$RC"
  check_contains "hloop $c --help prints usage" usage "$OUT"
  check_contains "hloop $c --help names the command" "$c" "$OUT"
done
run "$HLOOP" pack --help
for o in --name --chunk-size --codec --level --threads --json; do
  check_contains "pack --help documents $o" "$o" "$OUT"
done
run "$HLOOP" mount --help
for o in --cache --cache-size --daemon --mirror --no-mirror-list --connections --http2 --proxy --cacert \
    --header --io-timeout --retries --readahead --profile --no-profile --record-profile; do
  check_contains "mount --help documents $o" "$o" "$OUT"
done

# --- usage errors exit 2 with a message on stderr
usage_error() {
  local desc=$1; shift
  run "$@"
  check_eq "$desc: exit status 2" 2 "$RC"
  check_ne "$desc: says something on stderr" "" "$ERR"
}
usage_error "no command" "$HLOOP"
usage_error "unknown command" "$HLOOP" frobnicate
usage_error "unknown global option" "$HLOOP" --no-such-option
usage_error "unknown pack option" "$HLOOP" pack "$TMP/x" "$TMP/s" --no-such-option
usage_error "unknown mount option" "$HLOOP" mount http://127.0.0.1:1/x.idx "$TMP" --bogus
usage_error "pack without arguments" "$HLOOP" pack
usage_error "info without arguments" "$HLOOP" info
usage_error "serve without --listen" "$HLOOP" serve
usage_error "pack --codec bogus" "$HLOOP" pack "$TMP/x" "$TMP/s" --codec bogus

# --- chunk sizes
random_file "$TMP/img" $((1024 * 1024 + 1))
for bad in 3000 100000 3K 5M 8M 0 abc; do
  run "$HLOOP" pack "$TMP/img" "$TMP/s.bad" --chunk-size "$bad"
  check_ne "--chunk-size $bad is rejected" 0 "$RC"
  check_le "--chunk-size $bad: ordinary exit status" "$RC" 2
  check_contains "--chunk-size $bad: error mentions the chunk size" chunk "$ERR"
  check_eq "--chunk-size $bad: nothing written" 0 "$(count_chunk_files "$TMP/s.bad")"
done
run "$HLOOP" pack "$TMP/img" "$TMP/s.bad" --chunk-size 3000
log "message for --chunk-size 3000 (exit $RC): $ERR"

for spec in 4K:4096 64K:65536 1M:1048576 4M:4194304 65536:65536; do
  arg=${spec%%:*} want=${spec#*:}
  run "$HLOOP" pack "$TMP/img" "$TMP/s.$arg" --name img --chunk-size "$arg"
  check_eq "--chunk-size $arg accepted" 0 "$RC"
  (( RC == 0 )) || echo "$ERR" >&2
  run "$HLOOP" info "$TMP/s.$arg/img.idx" --json
  check_eq "--chunk-size $arg gives chunk_size $want" "$want" "$(jq -r .chunk_size <<<"$OUT" 2>/dev/null || echo invalid-json)"
done

# --- the name defaults to the image file name without its extension.
cp "$TMP/img" "$TMP/My-Disk.raw"
run "$HLOOP" pack "$TMP/My-Disk.raw" "$TMP/s.default"
check_eq "pack with default name: exit status" 0 "$RC"
check "default index name is My-Disk.idx" test -f "$TMP/s.default/My-Disk.idx"

# --- pack --json: one JSON object with the documented keys, nothing else on stdout.
run "$HLOOP" pack "$TMP/img" "$TMP/s.json" --name img --json --level 3 --threads 2 --codec zstd
check_eq "pack --json exit status" 0 "$RC"
check "pack --json stdout is exactly one JSON object" jq_true 'length == 1 and (.[0] | type == "object")' "$TMP/stdout" -s
for k in chunks_total chunks_unique chunks_new chunks_zero bytes_read bytes_written seconds; do
  check "pack --json has numeric key $k" jq_true '.[$k] | type == "number"' "$TMP/stdout" --arg k "$k"
done
check_eq "pack --json bytes_read" "$(fsize "$TMP/img")" "$(jq -r .bytes_read "$TMP/stdout")"
check_eq "pack --json chunks_total" 5 "$(jq -r .chunks_total "$TMP/stdout")"

# --- info --json keys and defaults.
run "$HLOOP" info "$TMP/s.json/img.idx" --json
check_eq "info --json exit status" 0 "$RC"
for k in name image_size chunk_size codec hash chunk_count unique_chunks zero_chunks stored_bytes digest created parent; do
  check "info --json has key $k" jq_true 'has($k)' "$TMP/stdout" --arg k "$k"
done
check_eq "info hash" sha256 "$(jq -r .hash "$TMP/stdout")"
check_eq "info codec" zstd "$(jq -r .codec "$TMP/stdout")"
check_eq "info default chunk_size is 256K" 262144 "$(jq -r .chunk_size "$TMP/stdout")"
check_eq "info image_size" "$(fsize "$TMP/img")" "$(jq -r .image_size "$TMP/stdout")"
check "info digest is the sha256 of the index file" \
  test "$(jq -r .digest "$TMP/stdout")" == "$(sha "$TMP/s.json/img.idx")"
check "info parent is null or an object" jq_true '.parent == null or (.parent | type == "object")' "$TMP/stdout"
run "$HLOOP" info "$TMP/s.json/img.idx"
check_eq "info (human) exit status" 0 "$RC"
check_ne "info (human) prints something" "" "$OUT"
check_contains "info (human) says the index has no layout" "layout:      none" "$OUT"
run "$HLOOP" info "$TMP/s.json/img.idx" --json
check "info --json layout is null without extents" jq_true '.layout == null and .hot_chunks == 0' "$TMP/stdout"

# --- info --profile (issue 14): how a profile's reads fall on chunk files.
run "$HLOOP" info --help
check_contains "info --help documents --profile" --profile "$OUT"
check_contains "info --help explains occupancy" occupancy "$OUT"
# Chunks 0, 2 and the 1-byte last chunk 4 (0 again: counted once).
printf 'hloop-profile 1\n# by hand\n0 0\n5 2\n6 4\n7 0\n' >"$TMP/boot.profile"
run "$HLOOP" info "$TMP/s.json/img.idx" --json --profile "$TMP/boot.profile" --profile "$TMP/boot.profile"
check_eq "info --profile exit status" 0 "$RC"
check_eq "info --profile: one entry per --profile" 2 "$(jq -r '.profiles | length' "$TMP/stdout")"
check_eq "info --profile bytes_read" $((2 * 262144 + 1)) "$(jq -r '.profiles[0].bytes_read' "$TMP/stdout")"
check_eq "info --profile chunks_touched" 3 "$(jq -r '.profiles[0].chunks_touched' "$TMP/stdout")"
check "info --profile occupancy of whole chunks is 1" jq_true '.profiles[0].occupancy == 1' "$TMP/stdout"
check "info --profile bytes_fetched are the stored chunk files" \
  jq_true '.profiles[0].bytes_fetched > .profiles[0].bytes_read and .profiles[0].hot_chunks_touched == 0' "$TMP/stdout"
run "$HLOOP" info "$TMP/s.json/img.idx" --profile "$TMP/boot.profile"
check_eq "info --profile (human) exit status" 0 "$RC"
check_contains "info --profile (human) prints the occupancy" "occupancy: 100.0 %" "$OUT"
printf 'not a profile\n' >"$TMP/bad.profile"
run "$HLOOP" info "$TMP/s.json/img.idx" --profile "$TMP/bad.profile"
check_eq "info --profile of a bad profile exits 1" 1 "$RC"
check_contains "... naming it" bad.profile "$ERR"
usage_error "info --profile of a missing file" "$HLOOP" info "$TMP/s.json/img.idx" --profile "$TMP/nope.profile"

# --- runtime errors exit 1.
run "$HLOOP" pack "$TMP/does-not-exist.img" "$TMP/s.err"
check_eq "pack of a missing image exits 1" 1 "$RC"
check_contains "... and names it" does-not-exist.img "$ERR"
run "$HLOOP" verify "$TMP/no-such-store"
check_ne "verify of a missing store fails" 0 "$RC"
check_le "... with an ordinary exit status" "$RC" 2

# --- stats and mirrors on things that are not what they need.
mkdir -p "$TMP/plain-dir"
run "$HLOOP" stats "$TMP/plain-dir"
check_eq "stats of a directory that is not a mount exits 1" 1 "$RC"
check_contains "... saying so" "not an hloop mount" "$ERR"
run "$HLOOP" mirrors "$TMP/s.json/img.idx"
check_eq "mirrors of a local path exits 1" 1 "$RC"
check_contains "... saying it needs a URL" "http" "$ERR"
usage_error "a malformed --mirror is a usage error" "$HLOOP" cat "$TMP/s.json/img.idx" --mirror ftp://x/ -o /dev/null
usage_error "--header without a colon is a usage error" "$HLOOP" cat "$TMP/s.json/img.idx" --header nocolon -o /dev/null
usage_error "--profile with --no-profile is a usage error" "$HLOOP" mount "$TMP/s.json/img.idx" "$TMP/plain-dir" --profile x --no-profile
