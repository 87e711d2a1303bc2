#!/usr/bin/env bash
# A real VM on hloop nbd --overlay: QEMU (TCG) boots a debootstrap'd Debian
# image (tests/vm/make_debian_image.sh, cached under /var/tmp/hloop-test-vm)
# exported by `hloop nbd --overlay` (no -snapshot: the guest's writes go to
# the overlay), with / mounted rw.
#   boot 1: the guest writes a random token (hloop.write=TOKEN on the kernel
#           command line) to /var/lib/hloop-test/token, syncs, powers off;
#   hloop nbd is stopped with SIGTERM and started again on the same overlay;
#   boot 2: the guest finds the token;
#   hloop commit turns base + overlay into a new version in the same store;
#   boot 3: the new index exported without an overlay (read-only export,
#           read-only drive, / mounted ro): the guest finds the token;
#   boot 4 (issue 14): boot 1 recorded a profile (hloop nbd --record-profile);
#           `hloop relayout` packs its reads into hot chunks as debian-hot;
#           debian-hot boots like boot 1 (cold cache, new overlay, rw) and the
#           server (nginx, whose access log counts the bytes it sent) sends
#           fewer bytes for it than for boot 1.
# The store's original files and the cached image stay byte for byte the same.
# Each boot must print its boot-finished marker and power off within
# HLOOP_VM_BOOT_TIMEOUT seconds (default 240); else the test fails with the
# end of the serial console.
source "$(dirname "$0")/lib.sh"
requires_root
requires qemu-system-x86_64 debootstrap mkfs.ext4 jq nbdinfo
BOOT_TIMEOUT=${HLOOP_VM_BOOT_TIMEOUT:-240}
T0=$SECONDS

IMG=$(bash "$HLOOP_SRC/tests/vm/make_debian_image.sh") || fail "building the Debian test image failed"
[[ -f $IMG && -f $IMG.vmlinuz && -f $IMG.initrd && -f $IMG.sha256 ]] || fail "make_debian_image.sh gave no usable image: '$IMG'"
log "image $IMG ready after $((SECONDS - T0)) s"
check_eq "the cached image is intact before the test" "$(cat "$IMG.sha256")" "$(sha "$IMG")"

"$HLOOP" pack "$IMG" "$TMP/store" --name debian -q || fail "hloop pack failed"
(cd "$TMP/store" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$TMP/store.sha256"
start_nginx_timed "$TMP/store"
INDEX=$URL/debian.idx
SOCK=$TMP/nbd.sock
OV=$TMP/debian.overlay
TOKEN=$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')
log "token $TOKEN; setup took $((SECONDS - T0)) s"

# boot NAME DRIVE_OPTS APPEND_EXTRA: boot the export at $NBD_URI; wait (at
# most BOOT_TIMEOUT) for QEMU to exit. Fails unless the console shows the
# boot-finished marker and QEMU exited by itself (the guest powered off).
# Sets CONSOLE (the console log).
boot() {
  local name=$1 drive_opts=$2 append=$3 t=$SECONDS rc=0
  CONSOLE=$TMP/$name.console
  log "$name: booting $NBD_URI ($append)"
  timeout -k 5 "$BOOT_TIMEOUT" qemu-system-x86_64 -accel tcg -m 1024 -display none -monitor none \
    -no-reboot -nic none -serial "file:$CONSOLE" \
    -kernel "$IMG.vmlinuz" -initrd "$IMG.initrd" \
    -append "root=/dev/vda console=ttyS0 fsck.mode=skip panic=1 $append" \
    -drive "file=$NBD_URI,format=raw,if=virtio,cache=none$drive_opts" \
    >"$TMP/$name.qemu.out" 2>&1 </dev/null || rc=$?
  if ! grep -aq '^HLOOP-BOOT-FINISHED' "$CONSOLE" 2>/dev/null || ((rc != 0)); then
    echo "---- $name: last 40 lines of the serial console ----" >&2
    tail -n 40 "$CONSOLE" >&2 2>/dev/null || true
    echo "---- qemu's output ----" >&2
    cat "$TMP/$name.qemu.out" >&2 || true
    echo "---- hloop nbd's log ----" >&2
    cat "$NBD_LOG" >&2 || true
    if ((rc == 124 || rc == 137)); then
      fail "$name: no boot-finished marker and power-off within $BOOT_TIMEOUT s"
    fi
    fail "$name: qemu exited with status $rc; boot-finished marker $(grep -aq '^HLOOP-BOOT-FINISHED' "$CONSOLE" && echo seen || echo missing)"
  fi
  log "$name: $(grep -a '^HLOOP-BOOT-FINISHED' "$CONSOLE" | tr -d '\r') s guest time, $((SECONDS - t)) s wall;" \
    "units failed: $(grep -a 'FAILED.*Failed to start' "$CONSOLE" | sed 's/.*Failed to start //' | tr -d '\r' | paste -sd, || true)"
}
# console_value KEY: what the guest printed after "KEY " (first such line).
console_value() { grep -a "^$1 " "$CONSOLE" | head -n1 | tr -d '\r' | cut -d' ' -f2-; }
# nginx_mark: the access log's line count; nginx_sent MARK: "BYTES CHUNK_FILES"
# the server sent since MARK (every answer's body; distinct chunk files).
nginx_mark() { wc -l <"$NGINX_LOG"; }
nginx_sent() {
  tail -n +$(($1 + 1)) "$NGINX_LOG" | awk '
    { bytes += $4 } $6 ~ "^/chunks/" && $3 == 200 && !seen[$6]++ { files++ }
    END { printf "%d %d\n", bytes, files }'
}

# Boot 1: writable export on a new overlay; the guest writes the token. A
# cold cache: the bytes the server sends are boot 4's yardstick.
mark=$(nginx_mark)
start_hloop_nbd "$INDEX" --socket "$SOCK" --cache "$TMP/cache" --overlay "$OV" --record-profile "$TMP/boot1.profile" \
  --no-profile
boot boot1 "" "rw hloop.write=$TOKEN"
check_eq "boot 1: / is mounted rw" rw "$(console_value HLOOP-ROOT)"
check_eq "boot 1: the base image has no token" NONE "$(console_value HLOOP-FOUND)"
check_eq "boot 1: the guest wrote the token" "$TOKEN" "$(console_value HLOOP-WROTE)"
stop_pid "$NBD_PID"
check_eq "hloop nbd stops cleanly on SIGTERM after boot 1" 0 "$STOP_RC"
check "... and removes its socket" test ! -e "$SOCK"
SENT1=$(nginx_sent "$mark")
log "boot 1 (original layout, cold): the server sent ${SENT1% *} bytes, ${SENT1#* } chunk files"
check "boot 1 wrote its profile when hloop nbd stopped" test -s "$TMP/boot1.profile"
check "the overlay file exists and holds data" test -s "$OV"
"$HLOOP" overlay info "$OV" >"$TMP/overlay-info.txt" 2>&1 || { cat "$TMP/overlay-info.txt" >&2; fail "hloop overlay info failed"; }
log "overlay after boot 1: $(tr '\n' ' ' <"$TMP/overlay-info.txt")"

# Boot 2: a new hloop nbd on the same overlay; the token is there.
start_hloop_nbd "$INDEX" --socket "$SOCK" --cache "$TMP/cache" --overlay "$OV"
boot boot2 "" "rw"
check_eq "boot 2 (same overlay, new hloop nbd): / is mounted rw" rw "$(console_value HLOOP-ROOT)"
check_eq "boot 2: the guest finds the token written in boot 1" "$TOKEN" "$(console_value HLOOP-FOUND)"
stop_pid "$NBD_PID"
check_eq "hloop nbd stops cleanly on SIGTERM after boot 2" 0 "$STOP_RC"

# Commit base + overlay as a new version into the same store.
"$HLOOP" commit "$INDEX" --overlay "$OV" --store "$TMP/store" --name debian2 --cache "$TMP/cache" \
  >"$TMP/commit.out" 2>&1 || { cat "$TMP/commit.out" >&2; fail "hloop commit failed"; }
log "commit: $(tr '\n' ' ' <"$TMP/commit.out")"
check_eq "the committed index names the original as its parent" \
  "$("$HLOOP" info "$TMP/store/debian.idx" --json | jq -r .digest)" \
  "$("$HLOOP" info "$TMP/store/debian2.idx" --json | jq -r .parent.digest)"

# Boot 3: the new version, no overlay: a read-only export, a read-only drive,
# / mounted ro. The token is in the image itself now.
start_hloop_nbd "$URL/debian2.idx" --socket "$SOCK" --cache "$TMP/cache"
check_eq "without --overlay the export is read-only" true \
  "$(nbdinfo --json "$NBD_URI" | jq -r '.exports[0].is_read_only')"
boot boot3 ",readonly=on" "ro"
check_eq "boot 3 (committed version, no overlay): / is mounted ro" ro "$(console_value HLOOP-ROOT)"
check_eq "boot 3: the guest finds the token in the committed image" "$TOKEN" "$(console_value HLOOP-FOUND)"
stop_pid "$NBD_PID"
check_eq "hloop nbd stops cleanly on SIGTERM after boot 3" 0 "$STOP_RC"

# Boot 4: debian-hot, the original relaid out with boot 1's profile, booted
# as boot 1 was (a cold cache, a new overlay, / rw, a token written), so the
# guest reads what it read in boot 1 and only the layout differs. Both
# without a profile prefetch (relayout publishes debian-hot.profile beside
# the index, which hloop nbd would otherwise prefetch).
"$HLOOP" relayout "$INDEX" --profile "$TMP/boot1.profile" --store "$TMP/store" --name debian-hot --json \
  >"$TMP/relayout.json" 2>"$TMP/relayout.err" || { cat "$TMP/relayout.err" >&2; fail "hloop relayout failed"; }
log "relayout: $(jq -c '{hot_chunks, extents, bytes_added, before, after}' "$TMP/relayout.json")"
check_ge "relayout: hot chunks written" "$(jq .hot_chunks "$TMP/relayout.json")" 1
check_le "relayout's estimate: the boot fetches fewer bytes" \
  "$(jq .after.bytes_fetched "$TMP/relayout.json")" $(($(jq .before.bytes_fetched "$TMP/relayout.json") - 1))
TOKEN4=$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')
mark=$(nginx_mark)
start_hloop_nbd "$URL/debian-hot.idx" --socket "$SOCK" --cache "$TMP/cache-hot" --overlay "$TMP/hot.overlay" \
  --no-profile
boot boot4 "" "rw hloop.write=$TOKEN4"
check_eq "boot 4 (relaid out, new overlay): / is mounted rw" rw "$(console_value HLOOP-ROOT)"
check_eq "boot 4: the image has no token" NONE "$(console_value HLOOP-FOUND)"
check_eq "boot 4: the guest wrote its token" "$TOKEN4" "$(console_value HLOOP-WROTE)"
stop_pid "$NBD_PID"
check_eq "hloop nbd stops cleanly on SIGTERM after boot 4" 0 "$STOP_RC"
SENT4=$(nginx_sent "$mark")
log "boot 4 (relaid out, cold): the server sent ${SENT4% *} bytes, ${SENT4#* } chunk files;" \
  "boot 1 (original): ${SENT1% *} bytes, ${SENT1#* } chunk files"
check_le "boot 4 fetched fewer bytes than boot 1 (at most 3/4)" $((${SENT4% *} * 4)) $((${SENT1% *} * 3))
check_le "boot 4 fetched fewer chunk files than boot 1" "${SENT4#* }" $((${SENT1#* } - 1))

# Nothing wrote to the store's original files or to the image.
check "the store's original files are unchanged (sha256)" \
  bash -c "cd '$TMP/store' && sha256sum --quiet -c '$TMP/store.sha256'"
check_eq "the cached image is unchanged" "$(cat "$IMG.sha256")" "$(sha "$IMG")"
log "total $((SECONDS - T0)) s"
