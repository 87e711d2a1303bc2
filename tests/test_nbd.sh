#!/usr/bin/env bash
# hloop nbd with real NBD clients. An image with random data, a run of zero
# chunks and a patterned region (across chunk boundaries, odd size) is
# packed, served over HTTP, and exported with `hloop nbd` on a Unix socket
# and on TCP. Checks: the ready line; nbdinfo (size, read-only, multi-conn,
# block sizes, base:allocation, --list, --map shows the zero chunks as
# holes); nbdcopy (also with 4 connections, and two at once) equals the
# image; qemu-img info/compare; qemu-io reads of odd sizes and offsets
# (patterns, and hex dumps of random data); writes are refused; --daemon; --record-profile; SIGTERM and
# SIGINT stop it cleanly and remove the socket; usage errors.
source "$(dirname "$0")/lib.sh"
requires nbdinfo nbdcopy qemu-img qemu-io jq curl

MIB=$((1024 * 1024))
IMG=$TMP/disk.img
IMG_SIZE=$((12 * MIB + 1536))   # a multiple of 512, not of the 256K chunk size
random_file "$IMG" "$IMG_SIZE"
dd if=/dev/zero of="$IMG" bs=$MIB seek=3 count=2 conv=notrunc status=none             # zero chunks 12-19
head -c $((2 * MIB)) /dev/zero | tr '\0' '\253' |
  dd of="$IMG" bs=$MIB seek=5 conv=notrunc status=none                                 # 0xab at 5M-7M
IMG_SHA=$(sha "$IMG")
"$HLOOP" pack "$IMG" "$TMP/store" --name disk >"$TMP/pack.out" 2>&1 || { cat "$TMP/pack.out" >&2; fail "hloop pack failed"; }
start_hloop_serve "$TMP/store"
INDEX=$URL/disk.idx

# ---- Unix socket
SOCK=$TMP/nbd.sock
start_hloop_nbd "$INDEX" --socket "$SOCK" --cache "$TMP/cache" --record-profile "$TMP/boot.profile"
check_eq "ready line" "serving disk on nbd+unix:///?socket=$SOCK" "$NBD_LINE"
URI=$NBD_URI
check "socket file exists" test -S "$SOCK"

info=$(nbdinfo --json "$URI") || fail "nbdinfo failed"
check_eq "nbdinfo export-size" "$IMG_SIZE" "$(jq -r '.exports[0]."export-size"' <<<"$info")"
check_eq "nbdinfo is_read_only" true "$(jq -r '.exports[0].is_read_only' <<<"$info")"
check_eq "nbdinfo can_multi_conn" true "$(jq -r '.exports[0].can_multi_conn' <<<"$info")"
check_eq "nbdinfo can_cache" true "$(jq -r '.exports[0].can_cache' <<<"$info")"
check_eq "nbdinfo can_flush (nothing to flush on a read-only export)" false "$(jq -r '.exports[0].can_flush' <<<"$info")"
check_eq "nbdinfo block sizes" "1 4096 33554432" \
  "$(jq -r '.exports[0] | "\(.block_size_minimum) \(.block_size_preferred) \(.block_size_maximum)"' <<<"$info")"
check_eq "nbdinfo: fixed newstyle" newstyle-fixed "$(jq -r '.protocol' <<<"$info")"
check_eq "nbdinfo: structured replies" true "$(jq -r '.structured' <<<"$info")"
check_contains "base:allocation context" "base:allocation" "$(jq -c '.exports[0].contexts' <<<"$info")"
check_contains "nbdinfo --list names the image" '"export-name": "disk"' "$(nbdinfo --list --json "$URI")"
check_eq "any export name reaches the export" "$IMG_SIZE" "$(nbdinfo --size "nbd+unix:///some-other-name?socket=$SOCK")"

# --map: the zero chunks are one hole (type 3 = hole,zero) and nothing else is.
map=$(nbdinfo --map --json "$URI") || fail "nbdinfo --map failed"
check_eq "--map: 3M-5M is a hole" 1 \
  "$(jq '[.[] | select(.offset == 3145728 and .length == 2097152 and .type == 3)] | length' <<<"$map")"
check_eq "--map: no other holes" 1 "$(jq '[.[] | select(.type != 0)] | length' <<<"$map")"
check_eq "--map covers the export" "$IMG_SIZE" "$(jq '[.[].length] | add' <<<"$map")"

# nbdcopy: whole export, then 4 connections, then two copies at once.
nbdcopy "$URI" "$TMP/copy1.img" || soft_fail "nbdcopy failed"
check_eq "nbdcopy equals the image" "$IMG_SHA" "$(sha "$TMP/copy1.img")"
nbdcopy --connections=4 --requests=32 "$URI" "$TMP/copy4.img" || soft_fail "nbdcopy --connections=4 failed"
check_eq "nbdcopy --connections=4 equals the image" "$IMG_SHA" "$(sha "$TMP/copy4.img")"
nbdcopy --connections=4 "$URI" "$TMP/par1.img" & p1=$!
nbdcopy --connections=2 "$URI" "$TMP/par2.img" & p2=$!
info_size=$(nbdinfo --size "$URI")
wait "$p1" || soft_fail "parallel nbdcopy 1 failed"
wait "$p2" || soft_fail "parallel nbdcopy 2 failed"
check_eq "parallel copy 1 equals the image" "$IMG_SHA" "$(sha "$TMP/par1.img")"
check_eq "parallel copy 2 equals the image" "$IMG_SHA" "$(sha "$TMP/par2.img")"
check_eq "nbdinfo during the copies" "$IMG_SIZE" "$info_size"
rm -f "$TMP"/copy*.img "$TMP"/par*.img

# qemu-img.
qinfo=$(qemu-img info --output=json "$URI") || fail "qemu-img info failed"
check_eq "qemu-img info virtual-size" "$IMG_SIZE" "$(jq -r '."virtual-size"' <<<"$qinfo")"
check "qemu-img compare with the source" qemu-img compare -q -f raw -F raw "$IMG" "$URI"

# qemu-io -r: reads of odd sizes at odd offsets, across chunk boundaries.
qio() { qemu-io -f raw -r -c "$1" "$URI" 2>&1 || true; }  # judged by its output
for spec in "0xab 5242880 2097152" "0xab 5300001 777777" "0xab 5505023 3" "0xab 7340031 1" \
    "0 3145728 2097152" "0 3145729 1" "0 4194303 262145"; do
  set -- $spec
  out=$(qio "read -P $1 $2 $3")
  if grep -q "read $3/$3 bytes at offset $2" <<<"$out" && ! grep -qi "fail" <<<"$out"; then
    ok "qemu-io read -P $1 of $3 bytes at $2"
  else
    soft_fail "qemu-io read -P $1 $2 $3: $out"
  fi
done
check_contains "qemu-io sees a wrong pattern as wrong (the check can fail)" "Pattern verification failed" \
  "$(qio 'read -P 0xcd 5300001 10')"
# Random data at odd offsets and sizes: qemu-io's hex dump (read -v)
# against the image's bytes.
qio_hex() {  # OFFSET LENGTH: the sha256 of the bytes qemu-io reads, as hex
  # Lines are "ADDRESS:  xx xx ... (16 bytes)  ascii"; the last one is short.
  qio "read -v $1 $2" | awk -v left="$2" '/^[0-9a-f]+:  / && left > 0 {
      n = left < 16 ? left : 16; s = substr($0, 11, 3 * n); gsub(/ /, "", s); printf "%s", s; left -= n }' |
    sha256sum
}
img_hex() { od -An -v -tx1 -j "$1" -N "$2" "$IMG" | tr -d ' \n' | sha256sum; }
for spec in "1 4095" "28679 12291" "958818 3885" "3100031 200002" "12581375 1537" "12582911 1"; do
  set -- $spec
  check_eq "qemu-io read -v of $2 bytes at $1 equals the image" "$(img_hex "$1" "$2")" "$(qio_hex "$1" "$2")"
done

# Writes are refused: the export is read-only.
out=$(qemu-io -f raw -c 'write -P 0x55 0 4096' "$URI" 2>&1) && soft_fail "qemu-io write succeeded: $out" ||
  ok "qemu-io write to the read-only export fails"
check_not "nbdcopy into the export fails" nbdcopy "$IMG" "$URI" 2>/dev/null
check_eq "the export is unchanged" "$(img_hex 0 4096)" "$(qio_hex 0 4096)"

# A second server on the same socket is refused; the first keeps serving.
rc=0; "$HLOOP" nbd "$INDEX" --socket "$SOCK" --cache "$TMP/cache" >"$TMP/second.out" 2>&1 || rc=$?
check_eq "a second server on a live socket fails" 1 "$rc"
check_contains "and says why" "in use" "$(cat "$TMP/second.out")"
check_eq "the first still serves" "$IMG_SIZE" "$(nbdinfo --size "$URI")"

# SIGTERM: exit 0, socket removed, profile written.
stop_pid "$NBD_PID" 10
check_eq "SIGTERM: hloop nbd exits 0" 0 "$STOP_RC"
check_not "SIGTERM: socket file removed" test -e "$SOCK"
check "--record-profile wrote the chunks read" test -s "$TMP/boot.profile"

# ---- TCP, port 0, --read-only, SIGINT
start_hloop_nbd "$INDEX" --listen 127.0.0.1:0 --cache "$TMP/cache" --read-only
port=${NBD_URI##*:}
check_eq "TCP ready line names the chosen port" "serving disk on nbd://127.0.0.1:$port" "$NBD_LINE"
check_ne "the chosen port is not 0" 0 "$port"
check_eq "nbdinfo over TCP" "$IMG_SIZE" "$(nbdinfo --size "nbd://127.0.0.1:$port")"
check "qemu-img compare over TCP" qemu-img compare -q -f raw -F raw "$IMG" "nbd://127.0.0.1:$port/disk"
nbdcopy --connections=4 "nbd://127.0.0.1:$port" "$TMP/tcp.img" || soft_fail "nbdcopy over TCP failed"
check_eq "nbdcopy over TCP equals the image" "$IMG_SHA" "$(sha "$TMP/tcp.img")"
rm -f "$TMP/tcp.img"
kill -INT "$NBD_PID"
for ((i = 0; i < 100; i++)); do pid_alive "$NBD_PID" || break; sleep 0.1; done
rc=0; wait "$NBD_PID" || rc=$?
check_eq "SIGINT: hloop nbd exits 0" 0 "$rc"

# ---- --daemon: returns once listening; the server lives on.
SOCK2=$TMP/daemon.sock
rc=0
timeout 30 "$HLOOP" nbd "$INDEX" --socket "$SOCK2" --cache "$TMP/cache" --daemon --log "$TMP/daemon.log" \
  >"$TMP/daemon.out" 2>&1 || rc=$?
check_eq "--daemon exits 0 once ready" 0 "$rc"
check_eq "--daemon prints the ready line" "serving disk on nbd+unix:///?socket=$SOCK2" "$(head -n1 "$TMP/daemon.out")"
DPID=$(ps -eo pid=,args= | awk -v s="$SOCK2" '$0 ~ /hloop nbd/ && index($0, s) { print $1 }' | head -n1)
stop_daemon() { [[ -n $1 ]] && kill -TERM "$1" 2>/dev/null || true; }
cleanup_fn stop_daemon "$DPID"
check_eq "the daemon serves" "$IMG_SIZE" "$(nbdinfo --size "nbd+unix:///?socket=$SOCK2")"
stop_daemon "$DPID"
for ((i = 0; i < 100; i++)); do [[ -e $SOCK2 ]] || break; sleep 0.1; done
check_not "the daemon removes its socket on SIGTERM" test -e "$SOCK2"

# ---- usage
rc=0; "$HLOOP" nbd "$INDEX" >/dev/null 2>&1 || rc=$?
check_eq "neither --socket nor --listen is a usage error" 2 "$rc"
rc=0; "$HLOOP" nbd "$INDEX" --socket "$TMP/x.sock" --listen 127.0.0.1:0 >/dev/null 2>&1 || rc=$?
check_eq "both --socket and --listen is a usage error" 2 "$rc"
help=$("$HLOOP" nbd --help)
for word in --socket --listen --read-only --daemon --cache --mirror --profile --record-profile nbdinfo qemu; do
  check_contains "--help mentions $word" "$word" "$help"
done
