#!/usr/bin/env bash
# The publisher's side of trust: hloop key generate, sign and publish.
#  - key generate writes KEY (0600) and KEY.pub (0644, a PEM public key
#    openssl reads), prints the key id, and refuses to overwrite either;
#  - sign writes NAME.idx.sig and prints the key id and the index digest;
#    re-signing with another key replaces it;
#  - publish writes NAME.channel and NAME.idx.sig; each publish bumps the
#    sequence; --renew keeps the index and bumps sequence and expiry; a
#    rollback (an older index) gets the next sequence too;
#  - publish refuses an index whose chunk file was deleted, --index with
#    --renew, a bad --expires, and a channel file that does not parse.
source "$(dirname "$0")/lib.sh"
requires openssl
STORE=$TMP/store
KEY=$TMP/keys/release.key

random_file "$TMP/v1.img" $((3 * 262144 + 100))
random_file "$TMP/v2.img" $((3 * 262144 + 100))
"$HLOOP" pack "$TMP/v1.img" "$STORE" --name v1 >/dev/null || fail "pack v1 failed"
"$HLOOP" pack "$TMP/v2.img" "$STORE" --name v2 >/dev/null || fail "pack v2 failed"
V1_DIGEST=$(sha "$STORE/v1.idx")
V2_DIGEST=$(sha "$STORE/v2.idx")

# ---- key generate
mkdir -p "$TMP/keys"
out=$("$HLOOP" key generate "$KEY") || fail "key generate failed: $out"
KEY_ID=$(awk '/^key id:/ { print $3 }' <<<"$out")
check "key id is 16 hex digits" grep -qxE '[0-9a-f]{16}' <<<"$KEY_ID"
check_eq "private key mode 0600" 600 "$(stat -c %a "$KEY")"
check_eq "public key mode 0644" 644 "$(stat -c %a "$KEY.pub")"
check "openssl reads the public key" openssl pkey -pubin -in "$KEY.pub" -noout
check "openssl reads the private key" openssl pkey -in "$KEY" -noout
# The key id is the first 8 bytes of SHA-256 of the raw 32-byte public key,
# the last 32 bytes of the DER SubjectPublicKeyInfo.
RAW_ID=$(openssl pkey -pubin -in "$KEY.pub" -outform DER | tail -c 32 | sha256sum | cut -c1-16)
check_eq "key id = SHA-256 prefix of the raw public key" "$RAW_ID" "$KEY_ID"
before=$(sha "$KEY")
out=$("$HLOOP" key generate "$KEY" 2>&1) && soft_fail "key generate overwrote $KEY"
check_contains "refusal to overwrite names the key" "refusing to overwrite" "$out"
check_eq "the key is unchanged" "$before" "$(sha "$KEY")"
rm -f "$TMP/keys/other.key"
touch "$TMP/keys/other.key.pub"
check_not "key generate refuses an existing KEY.pub" "$HLOOP" key generate "$TMP/keys/other.key"
check_not "...and writes no private key" test -e "$TMP/keys/other.key"
rm -f "$TMP/keys/other.key.pub"
"$HLOOP" key generate "$TMP/keys/other.key" >"$TMP/other.out" || fail "second key generate failed"
OTHER_ID=$(awk '/^key id:/ { print $3 }' "$TMP/other.out")
check_ne "two keys have two ids" "$KEY_ID" "$OTHER_ID"

# ---- sign
out=$("$HLOOP" sign "$STORE/v1.idx" --key "$KEY") || fail "sign failed: $out"
check_contains "sign prints the key id" "key id: $KEY_ID" "$out"
check_contains "sign prints the digest" "digest: $V1_DIGEST" "$out"
check "v1.idx.sig written" test -s "$STORE/v1.idx.sig"
check_eq "signature file magic" HLOOPSIG "$(head -c 8 "$STORE/v1.idx.sig")"
sig1=$(sha "$STORE/v1.idx.sig")
out=$("$HLOOP" sign "$STORE/v1.idx" --key "$TMP/keys/other.key") || fail "re-sign failed: $out"
check_contains "re-sign prints the other key id" "key id: $OTHER_ID" "$out"
check_ne "re-signing replaced the signature" "$sig1" "$(sha "$STORE/v1.idx.sig")"
printf 'garbage' >"$TMP/bad.idx"
out=$("$HLOOP" sign "$TMP/bad.idx" --key "$KEY" 2>&1) && soft_fail "signed a non-index"
check_not "no signature for a non-index" test -e "$TMP/bad.idx.sig"

# ---- publish, publish again, renew, rollback
out=$("$HLOOP" publish "$STORE" --channel stable --index v1.idx --key "$KEY") ||
  fail "publish v1 failed: $out"
check_contains "first publish: sequence 1" "sequence: 1 (was 0)" "$out"
check_contains "publish prints the index" "index:    v1.idx" "$out"
check_contains "publish prints the digest" "digest:   $V1_DIGEST" "$out"
check_contains "publish prints the key id" "key id:   $KEY_ID" "$out"
check_contains "default expiry 7d" "(in 7d)" "$out"
check_eq "channel file magic" HLOOPCHN "$(head -c 8 "$STORE/stable.channel")"
# The sequence number: little-endian u64 at offset 12.
seq_at() { od -An -tu8 -j12 -N8 "$STORE/stable.channel" | tr -d ' '; }
check_eq "channel file holds sequence 1" 1 "$(seq_at)"
check "publish wrote the index signature with its key" \
  grep -qF "key id: $KEY_ID" <<<"$("$HLOOP" sign "$STORE/v1.idx" --key "$KEY")"

out=$("$HLOOP" publish "$STORE" --channel stable --index v2.idx --key "$KEY" --expires 12h) ||
  fail "publish v2 failed: $out"
check_contains "second publish: sequence 2" "sequence: 2 (was 1)" "$out"
check_contains "v2 digest" "digest:   $V2_DIGEST" "$out"
check "v2.idx.sig written by publish" test -s "$STORE/v2.idx.sig"
check_eq "channel file holds sequence 2" 2 "$(seq_at)"
# expires_at - issued_at = 12 h: i64 at offsets 28 and 36.
span=$(( $(od -An -td8 -j36 -N8 "$STORE/stable.channel") - $(od -An -td8 -j28 -N8 "$STORE/stable.channel") ))
check_eq "--expires 12h" 43200 "$span"

sleep 1
out=$("$HLOOP" publish "$STORE" --channel stable --renew --key "$KEY" --expires 7d) ||
  fail "renew failed: $out"
check_contains "renew: sequence 3" "sequence: 3 (was 2)" "$out"
check_contains "renew keeps the index" "index:    v2.idx (renewed)" "$out"
check_contains "renew keeps the digest" "digest:   $V2_DIGEST" "$out"
span=$(( $(od -An -td8 -j36 -N8 "$STORE/stable.channel") - $(od -An -td8 -j28 -N8 "$STORE/stable.channel") ))
check_eq "renew sets the new expiry" 604800 "$span"
rc=0; out=$("$HLOOP" publish "$STORE" --channel stable --renew --index v1.idx --key "$KEY" 2>&1) || rc=$?
check_eq "--renew with --index is a usage error" 2 "$rc"

out=$("$HLOOP" publish "$STORE" --channel stable --index v1.idx --key "$KEY") ||
  fail "rollback publish failed: $out"
check_contains "rollback: sequence 4" "sequence: 4 (was 3)" "$out"
check_contains "rollback: v1's digest" "digest:   $V1_DIGEST" "$out"
check_eq "channel file holds sequence 4" 4 "$(seq_at)"

# ---- refusals
out=$("$HLOOP" publish "$STORE" --channel stable --index v1.idx --key "$KEY" --expires 7w 2>&1) &&
  soft_fail "--expires 7w accepted"
check_contains "bad --expires named" "duration '7w'" "$out"
random_file "$TMP/v3.img" $((2 * 262144))
"$HLOOP" pack "$TMP/v3.img" "$STORE" --name v3 >/dev/null || fail "pack v3 failed"
victim=$(chunk_path "$STORE" "$(chunk_hash "$TMP/v3.img" 1)")
check "v3's chunk file exists" test -f "$victim"
rm -f "$victim"
before=$(sha "$STORE/stable.channel")
rc=0; out=$("$HLOOP" publish "$STORE" --channel stable --index v3.idx --key "$KEY" 2>&1) || rc=$?
check_eq "publish of an incomplete index fails" 1 "$rc"
check_contains "the refusal counts the missing chunks" "1 of 2 chunk files missing" "$out"
check_contains "the refusal names the missing file" "$victim" "$out"
check_eq "the channel is unchanged" "$before" "$(sha "$STORE/stable.channel")"
check_not "no signature for the incomplete index" test -e "$STORE/v3.idx.sig"
out=$("$HLOOP" publish "$STORE" --channel stable --index ../v1.idx --key "$KEY" 2>&1) &&
  soft_fail "an index outside the store was published"
check_contains "'..' refused" '".."' "$out"
printf 'garbage' >"$STORE/broken.channel"
out=$("$HLOOP" publish "$STORE" --channel broken --index v1.idx --key "$KEY" 2>&1) &&
  soft_fail "a channel file that does not parse was replaced"
check_contains "unparsable channel refused" "refusing to replace" "$out"
check_eq "unparsable channel left alone" garbage "$(cat "$STORE/broken.channel")"
chmod 644 "$KEY"
out=$("$HLOOP" publish "$STORE" --channel beta --index v2.idx --key "$KEY" 2>&1) ||
  soft_fail "publish with a 0644 key failed: $out"
check_contains "a readable private key is warned about" "chmod 600" "$out"
check_contains "a new channel starts at sequence 1" "sequence: 1 (was 0)" "$out"
for c in key sign publish; do
  check "hloop $c --help" "$HLOOP" $c --help >/dev/null
done

