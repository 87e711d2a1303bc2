#!/usr/bin/env bash
# Update flow in a VM: QEMU (TCG) boots the host's kernel with a busybox
# initramfs (tests/lib_guest.sh's cached base archive, with virtio_blk and
# ext4 instead of 9P) from `hloop nbd CHANNEL_URL --trust KEY.pub --socket
# SOCK --cache CACHE`; the guest's /init mounts /dev/vda (an ext4 image made
# by mkfs.ext4 -d) read-only, prints the marker file on the serial console
# and powers off.
#   v1 (marker "v1") is packed, signed and published on channel stable;
#   boot 1: v1;
#   v2 (marker "v2") is packed into the same store, signed and published;
#   `hloop fetch CHANNEL_URL --update` stages v2: it fetches only v2's new
#   chunks, and says so;
#   boot 2: v2, and the server's access log shows no chunk request during
#           that boot (only the small files: channel, index, signature,
#           mirror list, profile);
#   rollback: v1 published again (a higher sequence number);
#   boot 3: v1, again without a chunk request.
# Then: a second update fetches nothing; an update to a version with a
# chunk missing from the store fails, naming the chunk. The server is nginx
# with an access log of every request.
# shellcheck disable=SC2034  # GUEST_* are settings read by lib_guest.sh
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_guest.sh"
requires_root
requires_hloop
requires nginx mkfs.ext4 jq
GUEST_MODULES="virtio_pci virtio_blk crc32c_generic ext4"
GUEST_TIMEOUT=${HLOOP_UPDATE_BOOT_TIMEOUT:-120}
GUEST_MEM=256
guest_setup
guest_uncompressed_kernel

# The guest's /init: mount /dev/vda read-only, print the marker, power off.
# guest_run waits for its last line, "P9GUEST-END rc=N".
mkdir -p "$TMP/guest"
cat >"$TMP/guest/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /mnt
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
while read -r m; do insmod "/modules/$m.ko" || echo "INSMOD-FAIL $m"; done </modules/order
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
rc=1
if mount -t ext4 -o ro /dev/vda /mnt; then
  echo "MARKER $(cat /mnt/marker)"
  umount /mnt && rc=0
else
  echo "MOUNT-FAIL"
  dmesg | tail -n 5
fi
echo "UPTIME $(cut -d' ' -f1 /proc/uptime)"
echo "P9GUEST-END rc=$rc"
poweroff -f
sleep 10
EOF
chmod 755 "$TMP/guest/init"
INITRD=$TMP/initrd.cpio.gz
cp "$GUEST_BASE" "$INITRD"
(cd "$TMP/guest" && echo init | cpio -o -H newc -R 0:0 --quiet | gzip -1) >>"$INITRD"

# make_version NAME: an 8 MiB ext4 image whose /marker holds NAME, packed
# into the store as NAME.idx. The files besides the marker are the same in
# every version (the same seed), so versions share most chunks.
STORE=$TMP/store
make_version() {
  local name=$1 d=$TMP/tree.$1
  mkdir -p "$d"
  printf '%s\n' "$name" >"$d/marker"
  head -c 2M "$TMP/filler" >"$d/filler.bin"
  mkfs.ext4 -q -F -d "$d" -E root_owner=0:0 -U 6c8a0b7e-55f1-4f0e-9d3c-7a0f8c2e1b11 \
    "$TMP/$name.img" 8M || fail "mkfs.ext4 for $name failed"
  "$HLOOP" pack "$TMP/$name.img" "$STORE" --name "$name" -q || fail "hloop pack $name failed"
  "$HLOOP" sign "$STORE/$name.idx" --key "$KEY" >/dev/null || fail "hloop sign $name failed"
}
# publish NAME: channel stable points at NAME.idx (the next sequence number).
publish() {
  "$HLOOP" publish "$STORE" --channel stable --index "$1.idx" --key "$KEY" >"$TMP/publish.out" 2>&1 ||
    { cat "$TMP/publish.out" >&2; fail "hloop publish $1 failed"; }
}
KEY=$TMP/key
"$HLOOP" key generate "$KEY" >/dev/null || fail "hloop key generate failed"
TRUST=(--trust "$KEY.pub")
head -c 2M /dev/urandom >"$TMP/filler"
make_version v1
publish v1
start_nginx_timed "$STORE"
CH=$URL/stable.channel
CACHE=$TMP/cache
SOCK=$TMP/nbd.sock

# chunk_requests FROM: requests for chunk files in the access log after
# line FROM.
chunk_requests() { tail -n +"$(($1 + 1))" "$NGINX_LOG" | grep -c ' /chunks/' || true; }
# other_requests FROM: the URIs after line FROM that are neither chunk files
# nor the small files a client revalidates when it opens an image.
other_requests() {
  tail -n +"$(($1 + 1))" "$NGINX_LOG" | awk '{ print $6 }' |
    grep -Ev '^/chunks/|\.(channel|idx|sig|mirrors|profile)$' | paste -sd' ' || true
}
log_lines() { wc -l <"$NGINX_LOG"; }

# boot NAME URL: serve URL with hloop nbd, boot it, stop hloop nbd. Sets
# MARKER (what the guest printed), BOOT_CHUNKS (chunk requests the server
# saw meanwhile) and BOOT_OTHERS (requests for other than small files).
boot() {
  local name=$1 url=$2 from
  from=$(log_lines)
  start_hloop_nbd "$url" --socket "$SOCK" --cache "$CACHE" "${TRUST[@]}"
  GUEST_QEMU_ARGS="-drive file=$NBD_URI,format=raw,if=virtio,readonly=on"
  if ! guest_run "$TMP/$name.console" "$INITRD"; then
    cat "$NBD_LOG" >&2 || true
    fail "$name: the guest did not finish"
  fi
  stop_pid "$NBD_PID" 10
  MARKER=$(sed -n 's/^MARKER //p' "$TMP/$name.console" | tail -n1)
  BOOT_CHUNKS=$(chunk_requests "$from")
  BOOT_OTHERS=$(other_requests "$from")
  log "$name ($url): marker '$MARKER', $BOOT_CHUNKS chunk requests, ${GUEST_WALL} s wall," \
    "guest uptime $(sed -n 's/^UPTIME //p' "$TMP/$name.console") s"
  [[ $GUEST_RC == 0 ]] || { tail -n 20 "$TMP/$name.console" >&2; soft_fail "$name: the guest could not mount /dev/vda"; }
}

boot boot1 "$CH"
check_eq "boot 1 sees v1's marker" v1 "$MARKER"
check_ge "boot 1 read chunks from the server" "$BOOT_CHUNKS" 1

make_version v2
publish v2
from=$(log_lines)
rc=0
"$HLOOP" fetch "$CH" --update --cache "$CACHE" "${TRUST[@]}" --json >"$TMP/update.json" 2>"$TMP/update.err" || rc=$?
check_eq "hloop fetch --update exit status" 0 "$rc"
((rc == 0)) || cat "$TMP/update.err" >&2
log "update: $(jq -c '{version, fetched, cached}' "$TMP/update.json")"
check_eq "the update names v2" v2.idx "$(jq -r .version.index "$TMP/update.json")"
check_eq "... the channel's sequence number 2" 2 "$(jq -r .version.channel.sequence "$TMP/update.json")"
check_eq "... authenticated" true "$(jq -r .version.authenticated "$TMP/update.json")"
fetched=$(jq -r .fetched.chunks "$TMP/update.json")
check_ge "the update fetched v2's new chunks" "$fetched" 1
check_ge "the update found v1's chunks cached" "$(jq -r .cached.chunks "$TMP/update.json")" 1
check_eq "the update's chunk requests are the chunks it says it fetched" "$fetched" "$(chunk_requests "$from")"
check_eq "fetched + cached = the version's distinct chunks" "$(jq -r .chunks "$TMP/update.json")" \
  "$(jq -r '.fetched.chunks + .cached.chunks' "$TMP/update.json")"
check_eq "stored bytes fetched = the sizes of the chunk files the server sent" \
  "$(jq -r .fetched.stored_bytes "$TMP/update.json")" \
  "$(tail -n +"$((from + 1))" "$NGINX_LOG" | awk '$6 ~ /^\/chunks\// { s += $4 } END { print s + 0 }')"

boot boot2 "$CH"
check_eq "boot 2 sees v2's marker" v2 "$MARKER"
check_eq "boot 2 made no chunk request (the update staged v2)" 0 "$BOOT_CHUNKS"
check_eq "boot 2 asked only for small files" "" "$BOOT_OTHERS"

# Rollback: v1 again, under a higher sequence number.
publish v1
boot boot3 "$CH"
check_eq "boot 3 (rollback) sees v1's marker" v1 "$MARKER"
check_eq "boot 3 made no chunk request (v1 is still cached)" 0 "$BOOT_CHUNKS"
check_eq "boot 3 asked only for small files" "" "$BOOT_OTHERS"

# A second update of a staged version fetches nothing.
rc=0
"$HLOOP" fetch "$CH" --update --cache "$CACHE" "${TRUST[@]}" --json >"$TMP/update2.json" 2>"$TMP/update2.err" || rc=$?
check_eq "a second hloop fetch --update exit status" 0 "$rc"
check_eq "a second update fetches nothing" 0 "$(jq -r .fetched.chunks "$TMP/update2.json")"
check_eq "... of v1 (the rollback), sequence 3" "v1.idx 3" \
  "$(jq -r '"\(.version.index) \(.version.channel.sequence)"' "$TMP/update2.json")"

# A version whose chunk is missing from the store: the update fails, naming it.
(cd "$STORE" && find chunks -type f | sort) >"$TMP/chunks.before"
make_version v3
victim=$(comm -13 "$TMP/chunks.before" <(cd "$STORE" && find chunks -type f | sort) | head -n1)
[[ -n $victim ]] || fail "v3 added no chunk file"
publish v3
rm -f "$STORE/$victim"
rc=0
"$HLOOP" fetch "$CH" --update --cache "$CACHE" "${TRUST[@]}" >"$TMP/update3.out" 2>&1 || rc=$?
check_eq "an update with a missing chunk exits 1" 1 "$rc"
check_contains "... naming the chunk" "$(basename "$victim")" "$(cat "$TMP/update3.out")"
