#!/usr/bin/env bash
# HTTPS, certificates and request headers (issue #3): through nginx with a
# certificate from a private CA, hloop refuses the server until it is given
# that CA with --cacert (never silently insecure), a server that demands a
# token gets it from --header, and --http2 really speaks HTTP/2.
source "$(dirname "$0")/lib.sh"
requires nginx
requires openssl

IMG=$TMP/disk.img
random_file "$IMG" $((3 * 1024 * 1024 + 777))
"$HLOOP" pack "$IMG" "$TMP/store" --name disk -q || fail "hloop pack failed"

# A private CA and a server certificate for 127.0.0.1, and a second CA that
# did not sign it.
pki=$TMP/pki; mkdir -p "$pki"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=hloop test CA" \
  -keyout "$pki/ca.key" -out "$pki/ca.pem" 2>/dev/null || fail "openssl: CA"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=other CA" \
  -keyout "$pki/other.key" -out "$pki/other.pem" 2>/dev/null || fail "openssl: other CA"
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$pki/server.key" \
  -out "$pki/server.csr" 2>/dev/null || fail "openssl: server key"
printf 'subjectAltName=IP:127.0.0.1\n' >"$pki/san.ext"
openssl x509 -req -in "$pki/server.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial \
  -days 2 -extfile "$pki/san.ext" -out "$pki/server.pem" 2>/dev/null || fail "openssl: sign"

port=$(free_port)
dir=$TMP/nginx-tls; mkdir -p "$dir/tmp"
cat >"$dir/nginx.conf" <<CONF
daemon off;
worker_processes 1;
user root;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 256; }
http {
  log_format proto '\$request_uri \$server_protocol \$status';
  access_log $dir/access.log proto;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:$port ssl http2;
    ssl_certificate $pki/server.pem;
    ssl_certificate_key $pki/server.key;
    root $TMP/store;
    location /private/ {
      alias $TMP/store/;
      if (\$http_authorization != "Bearer sesame") { return 403; }
    }
  }
}
CONF
nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" >"$dir/stdout.log" 2>&1 &
NGINX_PID=$!
cleanup_fn stop_pid "$NGINX_PID"
for _ in $(seq 100); do
  curl -sf --cacert "$pki/ca.pem" -o /dev/null "https://127.0.0.1:$port/disk.idx" && break
  sleep 0.1
done
URL=https://127.0.0.1:$port

# Unknown CA: refused quickly, with a message about the certificate, and no data.
start=$(date +%s)
rc=0; "$HLOOP" cat "$URL/disk.idx" -o "$TMP/out0" --cache "$TMP/c0" 2>"$TMP/err0" || rc=$?
check_eq "an HTTPS server signed by an unknown CA is refused" 1 "$rc"
check_contains "... saying why" "certificate" "$(cat "$TMP/err0")"
check_le "... at once, not after endless retries" $(( $(date +%s) - start )) 10
check_eq "... and nothing was written" 0 "$(stat -c %s "$TMP/out0" 2>/dev/null || echo 0)"

rc=0; "$HLOOP" cat "$URL/disk.idx" -o "$TMP/out1" --cacert "$pki/other.pem" 2>"$TMP/err1" || rc=$?
check_eq "a CA that did not sign the server's certificate does not help" 1 "$rc"

rc=0; "$HLOOP" cat "$URL/disk.idx" -o "$TMP/out2" --cacert "$pki/ca.pem" 2>"$TMP/err2" || rc=$?
check_eq "with --cacert the right CA, the image is read" 0 "$rc"
check_eq "... exactly" "$(sha "$IMG")" "$(sha "$TMP/out2")"

# A token in a header.
rc=0; "$HLOOP" cat "$URL/private/disk.idx" -o "$TMP/out3" --cacert "$pki/ca.pem" 2>"$TMP/err3" || rc=$?
check_eq "a server that wants a token refuses a client without one" 1 "$rc"
check_contains "... with its HTTP status in the message" "403" "$(cat "$TMP/err3")"
rc=0; "$HLOOP" cat "$URL/private/disk.idx" -o "$TMP/out4" --cacert "$pki/ca.pem" \
  --header "Authorization: Bearer sesame" 2>"$TMP/err4" || rc=$?
check_eq "--header passes the token" 0 "$rc"
check_eq "... and the image read with it is exact" "$(sha "$IMG")" "$(sha "$TMP/out4")"

# HTTP/2 when asked for, HTTP/1.1 otherwise.
: >"$dir/access.log"
sleep 0.3
"$HLOOP" cat "$URL/disk.idx" -o "$TMP/out5" --cacert "$pki/ca.pem" --http2 2>"$TMP/err5" || fail "--http2 read failed: $(cat "$TMP/err5")"
check_eq "the image read over HTTP/2 is exact" "$(sha "$IMG")" "$(sha "$TMP/out5")"
sleep 0.3
h2=$(grep -c "chunks/.* HTTP/2.0 200" "$dir/access.log" || true)
h1=$(grep -c "chunks/.* HTTP/1.1 200" "$dir/access.log" || true)
check_ge "--http2: chunk files came over HTTP/2" "$h2" 5
check_eq "--http2: none over HTTP/1.1" 0 "$h1"
: >"$dir/access.log"
"$HLOOP" cat "$URL/disk.idx" -o "$TMP/out6" --cacert "$pki/ca.pem" 2>/dev/null || fail "HTTP/1.1 read failed"
sleep 0.3
check_ge "without --http2: HTTP/1.1" "$(grep -c "chunks/.* HTTP/1.1 200" "$dir/access.log" || true)" 5

