#!/usr/bin/env bash
# A server that goes away (issue #3): a read waits for it and completes,
# correct and without an error, once it is back. With --io-timeout the same
# read fails with EIO instead, and the mount works again when the server is.
source "$(dirname "$0")/lib.sh"
requires_root
requires_fuse
requires curl

CS=262144
IMG=$TMP/disk.img
STORE=$TMP/store
random_file "$IMG" $((48 * CS))
"$HLOOP" pack "$IMG" "$STORE" --name disk >"$TMP/pack.out" 2>&1 || { cat "$TMP/pack.out" >&2; fail "hloop pack failed"; }
start_hloop_serve "$STORE"
SERVE_PORT=$PORT

restart_server() {  # on the same port, so the mount's URL stays valid
  "$HLOOP" serve "$STORE" --listen "127.0.0.1:$SERVE_PORT" >"$TMP/serve2.log" 2>&1 &
  SERVER_PID=$!
  cleanup_fn stop_pid "$SERVER_PID"
  wait_http "http://127.0.0.1:$SERVE_PORT/" "$SERVER_PID" || fail "hloop serve did not come back"
}

# --- 1. Default: the read waits for the server.
mount_image "$URL/disk.idx" "$TMP/mnt" --cache "$TMP/cache1" --readahead 0 --kernel-readahead 0
F=$MOUNT_FILE
check_eq "first chunks read while the server is up" "$(sha_range "$IMG" 0 $CS)" \
  "$(dd if="$F" bs=$CS count=1 status=none | sha256sum | cut -d' ' -f1)"
stop_pid "$SERVER_PID" 10
! curl -s -o /dev/null "http://127.0.0.1:$SERVE_PORT/disk.idx" || fail "server still answers"

dd if="$F" of="$TMP/rest.out" bs=$CS skip=16 count=16 status=none 2>"$TMP/rest.err" &
reader=$!
sleep 10
check "the reader is still waiting after 10 s without a server" pid_alive "$reader"
restart_server
rc=0; wait "$reader" || rc=$?
check_eq "the read completes once the server is back" 0 "$rc"
check_eq "... with no error" "" "$(cat "$TMP/rest.err")"
check_eq "... and the right bytes" "$(sha_range "$IMG" $((16 * CS)) $((16 * CS)))" "$(sha "$TMP/rest.out")"
unmount_fuse "$TMP/mnt" "$MOUNT_PID"

# --- 2. --io-timeout 3: EIO instead of waiting, and recovery afterwards.
mount_image "$URL/disk.idx" "$TMP/mnt2" --cache "$TMP/cache2" --readahead 0 --kernel-readahead 0 --io-timeout 3
F=$MOUNT_FILE
stop_pid "$SERVER_PID" 10
start=$(date +%s)
rc=0
# timeout(1) only guards the test against a hang; the check is on EIO.
timeout 60 dd if="$F" of=/dev/null bs=$CS skip=40 count=1 status=none 2>"$TMP/eio.err" || rc=$?
took=$(( $(date +%s) - start ))
check_ne "a read with the server down fails" 0 "$rc"
check_contains "... with an I/O error" "Input/output error" "$(cat "$TMP/eio.err")"
check_le "... within a few seconds of the 3 s timeout (took ${took}s)" "$took" 20
restart_server
check_eq "after the server is back, the same range reads correctly" "$(sha_range "$IMG" $((40 * CS)) $CS)" \
  "$(dd if="$F" bs=$CS skip=40 count=1 status=none | sha256sum | cut -d' ' -f1)"
