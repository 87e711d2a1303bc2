#!/usr/bin/env bash
# hloop nbd against hostile and broken clients: a raw client
# (tests/nbd_raw_client.py) sends bad magic, unknown client flags, a 4 GB
# option, unknown options and commands, reads past the end, writes to the
# read-only export, a 4 GB write, and vanishes in the middle of the
# handshake, of a request header, of a write payload and with reads in
# flight; it also floods a connection with 2000 pipelined requests. Each
# must get the protocol's error or a closed connection, and after each the
# server is alive and a real client (nbdinfo, nbdcopy) still reads the
# image correctly.
source "$(dirname "$0")/lib.sh"
requires nbdinfo nbdcopy /usr/bin/python3
RAW=$HLOOP_SRC/tests/nbd_raw_client.py

IMG=$TMP/disk.img
random_file "$IMG" $((3 * 1024 * 1024))
truncate -s $((8 * 1024 * 1024)) "$IMG"   # a zero tail: holes
"$HLOOP" pack "$IMG" "$TMP/store" --name disk >"$TMP/pack.out" 2>&1 || { cat "$TMP/pack.out" >&2; fail "hloop pack failed"; }
SOCK=$TMP/nbd.sock
start_hloop_nbd "$TMP/store/disk.idx" --socket "$SOCK" --cache "$TMP/cache"
URI=$NBD_URI
IMG_SHA=$(sha "$IMG")

# A normal client still gets the right bytes, and the server is alive.
still_good() {
  local what=$1 size
  check "[$what] server process still alive" pid_alive "$NBD_PID"
  size=$(timeout 20 nbdinfo --size "$URI" 2>&1) || size="nbdinfo failed: $size"
  check_eq "[$what] nbdinfo --size afterwards" "$(fsize "$IMG")" "$size"
  rm -f "$TMP/copy.img"
  timeout 30 nbdcopy "$URI" "$TMP/copy.img" 2>"$TMP/nbdcopy.err" || cat "$TMP/nbdcopy.err" >&2
  check_eq "[$what] nbdcopy afterwards equals the image" "$IMG_SHA" "$(sha "$TMP/copy.img" 2>/dev/null || echo none)"
}

for scenario in bad-magic bad-client-flags huge-option unknown-option export-name-any read-past-end \
    unknown-command write-read-only huge-write bad-request-magic vanish-in-handshake vanish-mid-header \
    vanish-mid-write vanish-with-reads-in-flight flood; do
  rc=0
  timeout 50 /usr/bin/python3 "$RAW" "$SOCK" "$scenario" || rc=$?
  check_eq "[$scenario] the server answered as the protocol says" 0 "$rc"
  still_good "$scenario"
done

# A client that connects and says nothing holds only its own connection.
/usr/bin/python3 -c 'import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); time.sleep(30)' \
  "$SOCK" >/dev/null 2>&1 &
SILENT_PID=$!
kill_quietly() { kill "$1" 2>/dev/null || true; }
cleanup_fn kill_quietly "$SILENT_PID"
sleep 0.3
still_good "silent client connected"
kill_quietly "$SILENT_PID"

# The hostile clients were logged as such, and nothing crashed.
check_not "no sanitizer report in the server's log" grep -q "Sanitizer" "$NBD_LOG"
check_contains "bad magic was logged" "bad option magic" "$(cat "$NBD_LOG")"
stop_pid "$NBD_PID" 10
check_eq "hloop nbd exits 0 on SIGTERM after all that" 0 "$STOP_RC"
check_not "the socket file is removed" test -e "$SOCK"
