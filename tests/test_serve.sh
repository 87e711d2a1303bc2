#!/usr/bin/env bash
# hloop serve as an HTTP server: HEAD, Range, keep-alive, Cache-Control,
# 404s, no escape from the store directory, clean stop on SIGTERM.
source "$(dirname "$0")/lib.sh"
requires curl

STORE=$TMP/store
random_file "$TMP/img" $((2 * 262144 + 333))
"$HLOOP" pack "$TMP/img" "$STORE" --name disk >"$TMP/pack.out" 2>&1 || { cat "$TMP/pack.out" >&2; fail "hloop pack failed"; }
# A secret next to the store: the server must never hand it out.
echo "TOP-SECRET-$RANDOM$RANDOM" >"$TMP/secret.txt"
SECRET=$(cat "$TMP/secret.txt")
start_hloop_serve "$STORE"

CHUNK_HASH=$(chunk_hash "$TMP/img" 0)
CHUNK_REL=chunks/${CHUNK_HASH:0:2}/$CHUNK_HASH
CHUNK_FILE=$STORE/$CHUNK_REL
CHUNK_SIZE=$(fsize "$CHUNK_FILE")
CHUNK2_HASH=$(chunk_hash "$TMP/img" 1)
CHUNK2_REL=chunks/${CHUNK2_HASH:0:2}/$CHUNK2_HASH

# header NAME FILE: value of header NAME in a curl -D dump (last response).
header() { tr -d '\r' <"$2" | awk -v n="$(tr '[:upper:]' '[:lower:]' <<<"$1")" -F': ' 'tolower($1) == n { v = $2 } END { print v }'; }
status_of() { curl -s -o /dev/null -w '%{http_code}' --path-as-is "$@"; }

# --- GET: full body.
code=$(curl -s -D "$TMP/h.get" -o "$TMP/body.get" -w '%{http_code}' "$URL/$CHUNK_REL")
check_eq "GET chunk: status" 200 "$code"
check "GET chunk: body is the chunk file" cmp -s "$TMP/body.get" "$CHUNK_FILE"
check_eq "GET chunk: Content-Length" "$CHUNK_SIZE" "$(header Content-Length "$TMP/h.get")"
code=$(curl -s -o "$TMP/body.idx" -w '%{http_code}' "$URL/disk.idx")
check_eq "GET index: status" 200 "$code"
check "GET index: body is the index file" cmp -s "$TMP/body.idx" "$STORE/disk.idx"

# --- HEAD: headers only.  Use a raw connection so a stray body would show.
code=$(curl -s -I -D "$TMP/h.head" -o /dev/null -w '%{http_code}' "$URL/$CHUNK_REL")
check_eq "HEAD chunk: status" 200 "$code"
check_eq "HEAD chunk: Content-Length equals the file size" "$CHUNK_SIZE" "$(header Content-Length "$TMP/h.head")"
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'HEAD /%s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$CHUNK_REL" >&3
timeout 10 cat <&3 >"$TMP/raw.head" || true
exec 3<&- 3>&-
check "HEAD (raw): status line 200" grep -q '^HTTP/1\.[01] 200' "$TMP/raw.head"
after=$(sed -n '/^\r$/,$p' "$TMP/raw.head" | tail -n +2 | wc -c)
check_eq "HEAD (raw): no body after the headers" 0 "$after"

# --- Range.
code=$(curl -s -D "$TMP/h.range" -o "$TMP/body.range" -w '%{http_code}' -H 'Range: bytes=10-19' "$URL/$CHUNK_REL")
check_eq "Range bytes=10-19: status" 206 "$code"
check_eq "Range bytes=10-19: body length" 10 "$(fsize "$TMP/body.range")"
check "Range bytes=10-19: the right 10 bytes" cmp -s "$TMP/body.range" <(read_range "$CHUNK_FILE" 10 10)
check_eq "Range bytes=10-19: Content-Range" "bytes 10-19/$CHUNK_SIZE" "$(header Content-Range "$TMP/h.range")"
check_eq "Range bytes=10-19: Content-Length" 10 "$(header Content-Length "$TMP/h.range")"
code=$(curl -s -o "$TMP/body.suffix" -w '%{http_code}' -H 'Range: bytes=-7' "$URL/disk.idx")
check_eq "Range bytes=-7 on the index: status" 206 "$code"
check "Range bytes=-7: the last 7 bytes" cmp -s "$TMP/body.suffix" <(tail -c 7 "$STORE/disk.idx")
code=$(status_of -H "Range: bytes=$CHUNK_SIZE-" "$URL/$CHUNK_REL")
check_eq "Range starting at the end of the file: 416" 416 "$code"

# --- keep-alive: two URLs in one curl reuse one connection.
nc=$(curl -s -o /dev/null -o /dev/null -w '%{num_connects}\n' "$URL/$CHUNK_REL" "$URL/$CHUNK2_REL" | tr '\n' ' ')
check_eq "keep-alive: connections opened per request (second reuses the first)" "1 0 " "$nc"
curl -sv -o /dev/null -o /dev/null "$URL/$CHUNK_REL" "$URL/disk.idx" 2>"$TMP/verbose" || true
check "keep-alive: curl -v reports re-using the connection" grep -qi 're-using existing connection' "$TMP/verbose"
# ... also after a HEAD and after a 404.
nc=$(curl -s -o /dev/null -o /dev/null -o /dev/null -w '%{num_connects}\n' \
  "$URL/missing" "$URL/$CHUNK_REL" "$URL/$CHUNK2_REL" | tr '\n' ' ')
check_eq "keep-alive after a 404" "1 0 0 " "$nc"

# --- Cache-Control, on GET and on HEAD (a HEAD must carry GET's headers).
curl -s -D "$TMP/h.idx.get" -o /dev/null "$URL/disk.idx"
curl -s -I -D "$TMP/h.idx.head" -o /dev/null "$URL/disk.idx"
for method in get head; do
  cc=$(header Cache-Control "$TMP/h.$method")
  check_contains "chunk ${method^^}: Cache-Control has public" public "$cc"
  check_contains "chunk ${method^^}: Cache-Control has max-age=31536000" max-age=31536000 "$cc"
  check_contains "chunk ${method^^}: Cache-Control has immutable" immutable "$cc"
  # text/* could be recompressed or transcoded by proxies and CDNs.
  check_eq "chunk ${method^^}: Content-Type" application/octet-stream "$(header Content-Type "$TMP/h.$method")"
  # An index is a version (a channel names the current one): immutable too.
  cc=$(header Cache-Control "$TMP/h.idx.$method")
  check_eq "index ${method^^}: Cache-Control" "public, max-age=31536000, immutable" "$cc"
done
# Its signature likewise; a channel moves to each new version, so caches
# must revalidate it on every use; other files (a mirror list) get a short
# max-age. Each with its ETag and Last-Modified, on GET and HEAD.
echo "sig" >"$STORE/disk.idx.sig"
echo "channel" >"$STORE/stable.channel"
echo "http://127.0.0.1:1/" >"$STORE/disk.mirrors"
for method in get head; do
  flag=(); [[ $method == head ]] && flag=(-I)
  for f in disk.idx.sig stable.channel disk.mirrors; do
    code=$(curl -s "${flag[@]}" -D "$TMP/h.$f.$method" -o /dev/null -w '%{http_code}' "$URL/$f")
    check_eq "$f ${method^^}: status" 200 "$code"
    check_ne "$f ${method^^}: has an ETag" "" "$(header ETag "$TMP/h.$f.$method")"
    check_ne "$f ${method^^}: has a Last-Modified" "" "$(header Last-Modified "$TMP/h.$f.$method")"
  done
  check_eq "signature ${method^^}: Cache-Control" "public, max-age=31536000, immutable" \
    "$(header Cache-Control "$TMP/h.disk.idx.sig.$method")"
  check_eq "channel ${method^^}: Cache-Control" "no-cache" "$(header Cache-Control "$TMP/h.stable.channel.$method")"
  cc=$(header Cache-Control "$TMP/h.disk.mirrors.$method")
  check_contains "other file ${method^^}: Cache-Control has a max-age" max-age= "$cc"
  age=$(grep -o 'max-age=[0-9]*' <<<"$cc" | cut -d= -f2 || true)
  check_le "other file ${method^^}: max-age is short (<= 1 hour)" "${age:-999999999}" 3600
  check_not "other file ${method^^}: Cache-Control is not immutable" grep -qi immutable <<<"$cc"
done
# A channel revalidates: a conditional GET with its ETag gets a 304 that
# still says no-cache.
etag=$(header ETag "$TMP/h.stable.channel.get")
code=$(curl -s -D "$TMP/h.ch304" -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$URL/stable.channel")
check_eq "channel: conditional GET with its ETag: 304" 304 "$code"
check_eq "channel: the 304 says no-cache" "no-cache" "$(header Cache-Control "$TMP/h.ch304")"
rm -f "$STORE/disk.idx.sig" "$STORE/stable.channel" "$STORE/disk.mirrors"

# --- 404s.
check_eq "missing index: 404" 404 "$(status_of "$URL/nope.idx")"
check_eq "missing chunk: 404" 404 "$(status_of "$URL/chunks/00/$(printf '0%.0s' {1..64})")"
check_eq "HEAD of a missing file: 404" 404 "$(status_of -I "$URL/nope.idx")"

# --- path escapes: 4xx and never the content.
for p in \
  "/../../../../../../etc/passwd" \
  "/chunks/../../../../../../etc/passwd" \
  "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd" \
  "/%2E%2E/%2E%2E/%2E%2E/%2E%2E/%2E%2E/etc/passwd" \
  "/..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd" \
  "/chunks/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd" \
  "/..%5c..%5c..%5c..%5cetc%5cpasswd" \
  "/%252e%252e/%252e%252e/etc/passwd" \
  "//etc/passwd" \
  "/../secret.txt" \
  "/%2e%2e/secret.txt" \
  "/chunks/../../secret.txt" \
  "/.%2e/secret.txt"; do
  code=$(curl -s -o "$TMP/esc.body" -w '%{http_code}' --path-as-is "$URL$p" || echo curl-failed)
  if grep -q 'root:.*:0:0:' "$TMP/esc.body" 2>/dev/null || grep -qF "$SECRET" "$TMP/esc.body" 2>/dev/null; then
    soft_fail "path escape $p returned the file outside the store!"
  else
    ok "path escape $p: content not returned"
  fi
  CHECKS=$((CHECKS + 1))
  if [[ $code =~ ^4[0-9][0-9]$ ]]; then echo "ok - path escape $p: status $code"; else soft_fail "path escape $p: status $code, want 4xx"; fi
  rm -f "$TMP/esc.body"
done
# Raw request line (no client-side normalisation at all).
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'GET /../../../../../../etc/passwd HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
timeout 10 cat <&3 >"$TMP/raw.esc" || true
exec 3<&- 3>&-
check_not "raw GET /../../etc/passwd does not return /etc/passwd" grep -q 'root:.*:0:0:' "$TMP/raw.esc"
check "raw GET /../../etc/passwd gets a 4xx" grep -qE '^HTTP/1\.[01] 4[0-9][0-9]' "$TMP/raw.esc"

# --- idle keep-alive connections must not starve new clients.  hloop mount
# keeps up to ~24 connections alive (FUSE threads + prefetch workers); a server
# with a fixed pool of threads, one per connection, would make the next client
# wait until an idle connection times out.
fds=()
for ((i = 0; i < 16; i++)); do
  exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"
  printf 'GET /disk.idx HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' >&$fd
  fds+=("$fd")
done
sleep 0.5
t0=$(date +%s%N)
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL/disk.idx" || true)
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check_eq "a new request while 16 idle keep-alive connections are open: status (took ${ms} ms)" 200 "$code"
for fd in "${fds[@]}"; do exec {fd}<&-; done

# --- stops on SIGTERM.
kill -TERM "$SERVER_PID"
for ((i = 0; i < 50; i++)); do pid_alive "$SERVER_PID" || break; sleep 0.1; done
check_not "hloop serve exits within 5 s of SIGTERM" pid_alive "$SERVER_PID"
rc=0; wait "$SERVER_PID" 2>/dev/null || rc=$?
CHECKS=$((CHECKS + 1))
if [[ $rc == 0 || $rc == 143 ]]; then echo "ok - hloop serve exit status after SIGTERM ($rc)"; else soft_fail "hloop serve exit status after SIGTERM: $rc"; fi
