#!/usr/bin/env bash
# hloop 9p as a program: it listens where it says, serves a directory to a raw
# 9P2000.L client over TCP and a Unix socket, keeps the client inside the
# export, refuses changes when read-only, picks exports by aname, and stops
# cleanly on SIGTERM. (The Linux kernel client in a guest: test_9p_guest.sh.)
source "$(dirname "$0")/lib.sh"
requires_hloop
requires python3

EXPORT=$TMP/export
mkdir -p "$EXPORT/sub" "$TMP/outside"
echo "hello from the export" >"$EXPORT/hello.txt"
echo "TOP-SECRET-$RANDOM" >"$TMP/outside/secret"
ln -s ../outside "$EXPORT/escape"

# Scenarios for the raw client (tests/p9_raw_client.py): `client.py ADDR
# SCENARIO`, ADDR = HOST:PORT or a socket path.
cat >"$TMP/client.py" <<'EOF'
import struct, sys
from p9_raw_client import C

addr, scenario = sys.argv[1], sys.argv[2]
c = C(addr); c.version()
if scenario == 'rw':
    assert c.attach(0)[0] == 'ok'
    assert c.walk(0, 1, ['hello.txt'])[0] == 'ok'
    assert c.lopen(1, 0)[0] == 'ok'
    st, d = c.read(1, 0, 4096); print(d[4:].decode(), end='')
    assert c.walk(0, 2, [])[0] == 'ok'
    assert c.lcreate(2, 'new.txt')[0] == 'ok', 'lcreate'
    assert c.write(2, b'written over 9p\n')[0] == 'ok'
    assert c.clunk(2)[0] == 'ok'
    st, d = c.walk(0, 3, ['escape', 'secret'])          # stops at the link
    assert st == 'ok' and struct.unpack('<H', d[:2])[0] == 1, d
    st, d = c.walk(0, 3, ['..', '..', 'outside'])      # '..' stays at the root
    assert st == 'ok' and struct.unpack('<H', d[:2])[0] == 2, d
    assert c.walk(0, 5, ['../outside']) == ('err', 22)
elif scenario == 'ro':
    assert c.attach(0)[0] == 'ok'
    assert c.walk(0, 1, [])[0] == 'ok'
    print(c.lcreate(1, 'new.txt')[1])                  # EROFS
elif scenario == 'names':
    print(c.attach(0, 'a')[0], c.attach(1, '/b')[0], c.attach(2, 'c')[1])
EOF
client() { PYTHONPATH="$HLOOP_SRC/tests" python3 "$TMP/client.py" "$@"; }

# start_9p LOG ARGS...: runs hloop 9p in the background; sets P9_PID and
# P9_WHERE (what follows "on " in its "serving" line).
start_9p() {
  local log=$1 i; shift
  "$HLOOP" 9p "$@" >"$log" 2>&1 &
  P9_PID=$!
  cleanup_fn stop_pid "$P9_PID"
  for ((i = 0; i < 100; i++)); do
    grep -qs '^serving ' "$log" && break
    pid_alive "$P9_PID" || { cat "$log" >&2; fail "hloop 9p died while starting"; }
    sleep 0.1
  done
  P9_WHERE=$(sed -n 's/^serving .* on \([a-z]*\) \([^ ]*\).*/\2/p' "$log" | head -1)
  [[ -n $P9_WHERE ]] || { cat "$log" >&2; fail "no serving line"; }
}

# --- TCP, read and write, confinement.
start_9p "$TMP/tcp.log" --listen 127.0.0.1:0 --export "$EXPORT"
check_contains "serving line names the directory and the address" "serving $EXPORT on tcp 127.0.0.1:" "$(cat "$TMP/tcp.log")"
out=$(client "$P9_WHERE" rw) || soft_fail "rw client failed: $out"
check_eq "read a file" "hello from the export" "$out"
check_eq "created a file" "written over 9p" "$(cat "$EXPORT/new.txt" 2>/dev/null)"
check_not "nothing appeared outside" test -e "$TMP/outside/new.txt"
stop_pid "$P9_PID" 10
check_eq "SIGTERM: exit status 0" 0 "$STOP_RC"

# --- Unix socket, read-only.
rm -f "$EXPORT/new.txt"
start_9p "$TMP/ro.log" --socket "$TMP/9p.sock" --export "$EXPORT" --read-only
check_eq "socket mode" 600 "$(stat -c %a "$TMP/9p.sock")"
check_eq "read-only: lcreate gets EROFS" 30 "$(client "$TMP/9p.sock" ro)"
check_not "read-only: nothing created" test -e "$EXPORT/new.txt"
stop_pid "$P9_PID" 10
check_eq "SIGTERM (socket): exit status 0" 0 "$STOP_RC"
check_not "the socket is removed" test -e "$TMP/9p.sock"

# --- Several exports, chosen by aname.
mkdir -p "$TMP/b"
start_9p "$TMP/names.log" --listen 127.0.0.1:0 --export "a=$EXPORT" --export "b=$TMP/b"
check_eq "aname a and /b attach; c is ENOENT" "ok ok 2" "$(client "$P9_WHERE" names)"
stop_pid "$P9_PID" 10

# --- Usage errors.
rc=0; "$HLOOP" 9p --export "$EXPORT" >/dev/null 2>&1 || rc=$?
check_eq "no --listen or --socket: usage error" 2 "$rc"
rc=0; "$HLOOP" 9p --listen 127.0.0.1:0 --export "$TMP/missing" >/dev/null 2>&1 || rc=$?
check_eq "missing export: failure" 1 "$rc"
check_contains "--help shows a guest mount line" "mount -t 9p -o trans=tcp" "$("$HLOOP" 9p --help)"
