#!/usr/bin/env bash
# hloop 9p --image: the ext4 file system inside a packed image, served over
# nginx, exported read-only over 9P2000.L to a raw client: files read back
# with the right SHA-256, a big directory listed in small replies, every
# change refused with EROFS, only the chunks holding what was read fetched,
# --image mixed with --export and chosen by aname; and clear errors (nonzero
# exit) for an unreachable index, a missing one, and an image that holds no
# ext2/3/4 file system. (The Linux kernel client in a guest:
# test_9p_guest.sh.)
source "$(dirname "$0")/lib.sh"
requires_hloop
requires python3 mke2fs nginx

# --- An ext4 image: small and mid-sized files, a link, a directory of 600
# entries, and 24 MiB of random data that the client never reads.
SRC=$TMP/src
mkdir -p "$SRC/dir"
echo "hello from inside the image" >"$SRC/hello.txt"
random_file "$SRC/data.bin" 3000000
random_file "$SRC/unread.bin" $((24 * 1024 * 1024))
ln -s hello.txt "$SRC/link"
for i in $(seq 1 600); do : >"$SRC/dir/file-$i"; done
truncate -s 64M "$TMP/fs.img"  # an existing file: mke2fs says nothing
mke2fs -q -F -t ext4 -d "$SRC" "$TMP/fs.img"
"$HLOOP" pack "$TMP/fs.img" "$TMP/store" >/dev/null
head -c $((4 * 1024 * 1024)) /dev/urandom >"$TMP/random.img"  # no file system in it
"$HLOOP" pack "$TMP/random.img" "$TMP/store" >/dev/null
start_nginx "$TMP/store"
ACCESS_LOG=$TMP/nginx.$PORT/access.log
IMG=$URL/fs.idx

# Scenarios for the raw client (tests/p9_raw_client.py): `client.py ADDR
# SCENARIO [ARGS]`.
cat >"$TMP/client.py" <<'EOF'
import hashlib, struct, sys
from p9_raw_client import C, s

addr, scenario = sys.argv[1], sys.argv[2]
c = C(addr); c.version()
if scenario == 'sha':                      # sha PATH: sha256 of a file
    assert c.attach(0)[0] == 'ok'
    assert c.walk(0, 1, sys.argv[3].split('/'))[0] == 'ok'
    assert c.lopen(1, 0)[0] == 'ok'
    print(hashlib.sha256(c.read_all(1)).hexdigest())
elif scenario == 'ls':                     # ls DIR: entries, in replies of 512 bytes
    assert c.attach(0)[0] == 'ok'
    assert c.walk(0, 1, [sys.argv[3]])[0] == 'ok'
    assert c.lopen(1, 0o200000)[0] == 'ok'
    names = c.names(1, 512)
    print(len(names), len(set(names)))
elif scenario == 'readlink':
    assert c.attach(0)[0] == 'ok'
    assert c.walk(0, 1, [sys.argv[3]])[0] == 'ok'
    st, d = c.call(22, struct.pack('<I', 1)); print(d[2:].decode())
elif scenario == 'ro':                     # errnos of changes
    assert c.attach(0)[0] == 'ok'
    assert c.walk(0, 1, [])[0] == 'ok'
    e1 = c.call(14, struct.pack('<I', 1) + s('new') + struct.pack('<III', 0o1102, 0o644, 0))[1]
    e2 = c.call(72, struct.pack('<I', 0) + s('newdir') + struct.pack('<II', 0o755, 0))[1]
    e3 = c.call(76, struct.pack('<I', 0) + s('hello.txt') + struct.pack('<I', 0))[1]
    assert c.walk(0, 2, ['hello.txt'])[0] == 'ok'
    e4 = c.lopen(2, 2)[1]                  # O_RDWR
    print(e1, e2, e3, e4)
elif scenario == 'anames':                 # which export each aname reaches
    out = []
    for fid, aname in enumerate(sys.argv[3:]):
        st, d = c.attach(fid, aname)
        if st != 'ok': out.append('err%d' % d); continue
        out.append('img' if c.walk(fid, 100 + fid, ['hello.txt'])[0] == 'ok' else 'dir')
    print(' '.join(out))
EOF
client() { PYTHONPATH="$HLOOP_SRC/tests" python3 "$TMP/client.py" "$@"; }

# start_9p LOG ARGS...: hloop 9p in the background; sets P9_PID and P9_ADDR.
start_9p() {
  local log=$1 i; shift
  "$HLOOP" 9p --listen 127.0.0.1:0 "$@" >"$log" 2>&1 &
  P9_PID=$!
  cleanup_fn stop_pid "$P9_PID"
  for ((i = 0; i < 200; i++)); do
    grep -qs '^serving ' "$log" && break
    pid_alive "$P9_PID" || { cat "$log" >&2; fail "hloop 9p died while starting"; }
    sleep 0.1
  done
  P9_ADDR=$(sed -n 's/^serving .* on tcp \([^ ]*\)$/\1/p' "$log" | head -1)
  [[ -n $P9_ADDR ]] || { cat "$log" >&2; fail "no serving line"; }
}

# fetched: body bytes nginx has sent so far.
fetched() { awk '{ s += $10 } END { print s + 0 }' "$ACCESS_LOG"; }

# --- Serving the image.
before=$(fetched)
start_9p "$TMP/img.log" --image "$IMG" --cache "$TMP/cache" --readahead 0
check_contains "serving line names the image URL" "serving $IMG on tcp 127.0.0.1:" "$(cat "$TMP/img.log")"
check_eq "hello.txt" "$(sha "$SRC/hello.txt")" "$(client "$P9_ADDR" sha hello.txt)"
check_eq "data.bin (3 MB)" "$(sha "$SRC/data.bin")" "$(client "$P9_ADDR" sha data.bin)"
check_eq "a directory of 600 files in 512-byte replies: every entry once" "602 602" "$(client "$P9_ADDR" ls dir)"
check_eq "readlink" hello.txt "$(client "$P9_ADDR" readlink link)"
check_eq "lcreate, mkdir, unlinkat, open O_RDWR: EROFS" "30 30 30 30" "$(client "$P9_ADDR" ro)"
# Only what was read was fetched: not the 24 MiB of unread.bin (random, so
# stored as is).
store_bytes=$(du -sb "$TMP/store/chunks" | cut -f1)
got=$(( $(fetched) - before ))
log "fetched $got bytes of a store of $store_bytes"
check_le "fetched less than the store minus the unread 24 MiB (minus slack)" "$got" $((store_bytes - 16 * 1024 * 1024))
check_ge "fetched at least data.bin" "$got" 3000000
check_ge "the cache holds what was fetched" "$(du -sb "$TMP/cache" | cut -f1)" 3000000
stop_pid "$P9_PID" 10
check_eq "SIGTERM: exit status 0" 0 "$STOP_RC"

# --- Mixed with a directory export; chosen by aname.
mkdir -p "$TMP/plain"
start_9p "$TMP/mixed.log" --image "img=$IMG" --export "plain=$TMP/plain" --cache "$TMP/cache"
check_contains "serving line for the named image" "serving img=$IMG on tcp" "$(cat "$TMP/mixed.log")"
check_eq "aname img reaches the image, plain the directory, other nothing" "img dir err2" \
  "$(client "$P9_ADDR" anames img plain other)"
stop_pid "$P9_PID" 10

# --- Errors: clear messages, nonzero exit, never a crash.
# run_9p ARGS...: hloop 9p that must not start; sets RC and OUT.
run_9p() {
  RC=0
  OUT=$(timeout 60 "$HLOOP" 9p --listen 127.0.0.1:0 --cache "$TMP/cache" "$@" 2>&1 </dev/null) || RC=$?
}
dead=$(free_port)
run_9p --image "http://127.0.0.1:$dead/fs.idx"
check_eq "unreachable index: exit 1" 1 "$RC"
check_contains "unreachable index: says so" "http://127.0.0.1:$dead/fs.idx: cannot connect" "$OUT"
run_9p --image "$URL/missing.idx"
check_eq "missing index: exit 1" 1 "$RC"
check_contains "missing index: names it" "$URL/missing.idx" "$OUT"
run_9p --image "$URL/random.idx"
check_eq "no file system in the image: exit 1" 1 "$RC"
check_contains "no file system: says so" "$URL/random.idx: no ext2/3/4 file system (bad magic)" "$OUT"
run_9p --image "$IMG" --image "$URL/fs.idx"
check_eq "two exports with one name: exit 1" 1 "$RC"
check_contains "two exports with one name: says so" "two exports are named fs" "$OUT"
rc=0; "$HLOOP" 9p --listen 127.0.0.1:0 >/dev/null 2>&1 || rc=$?
check_eq "neither --export nor --image: usage error" 2 "$rc"
help=$("$HLOOP" 9p --help)
check_contains "--help describes --image" "--image" "$help"
check_contains "--help has the cache options" "--cache" "$help"
