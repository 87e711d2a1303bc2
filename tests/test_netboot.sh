#!/usr/bin/env bash
# Internet boot of a whole machine (docs/netboot.md): the Debian package is
# built and installed, mkinitramfs builds an initramfs with its hook for the
# packaged Debian kernel, a debootstrap'd Debian image (tests/vm/, with a
# guest script that reports on ttyS0) is packed twice (v1, v2), signed and
# published as a channel served by nginx, and QEMU (TCG, user networking)
# boots it, two machines at a time:
#   pxe:  diskless: iPXE (QEMU's TFTP hands out dist/netboot/boot.ipxe) loads
#         kernel and initramfs over HTTP; tmpfs overlay and cache; the guest
#         writes a file; the hloop daemon runs as '@hloop' after the switch,
#         with multi-user.target active (checked in every boot);
#   err-*: a wrong key, an unreachable server, a bad URL, no URL: each ends
#         with a clear message and the initramfs shell;
#   ovl1..3: the cache and a block-level overlay on partitions of a second
#         disk, the image by its signed index: ovl1 writes a file with sync and
#         one without; its server is stopped; ovl2 boots offline from the
#         cache and finds both (the shutdown flushed the unsynced one), writes
#         and syncs a third, and QEMU is killed; ovl3 finds it;
#   upd1..3: file-level persistence (hloop.persist=) through the channel, with
#         a dead second mirror: v1, then v2 after a publish, then v1 again
#         after a rollback publish, the user's file kept throughout.
# The package is purged at the end. HLOOP_NETBOOT_TIMEOUT: seconds per boot;
# HLOOP_NETBOOT_LOGS=DIR keeps the consoles.
source "$(dirname "$0")/lib.sh"
requires_root
requires qemu-system-x86_64 mkinitramfs dpkg debugfs sfdisk mkfs.ext4 nginx zstd
BOOT_TIMEOUT=${HLOOP_NETBOOT_TIMEOUT:-300}
T0=$SECONDS

IMG=$(bash "$HLOOP_SRC/tests/vm/make_debian_image.sh") || fail "building the Debian test image failed"
KVER=$(basename "$(readlink -f "$IMG.vmlinuz")")
KVER=$(find /boot -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sed 's/^vmlinuz-//' | sort -V | tail -1)
[ -d "/lib/modules/$KVER" ] || fail "no modules for kernel $KVER"

# 1. The package, installed as an administrator would.
dpkg-query -W -f='${Status}' hloop 2>/dev/null | grep -q 'ok installed' &&
  fail "a hloop package is installed already; this test installs and removes (purges) its own"
HLOOP_BIN=$HLOOP bash "$HLOOP_SRC/scripts/package.sh" "$TMP/deb" >"$TMP/package.log" 2>&1 ||
  { tail -20 "$TMP/package.log" >&2; fail "scripts/package.sh failed"; }
DEB=$(ls "$TMP"/deb/hloop_*.deb)
cleanup_fn dpkg -P hloop
dpkg -i "$DEB" >"$TMP/dpkg.log" 2>&1 || { cat "$TMP/dpkg.log" >&2; fail "dpkg -i $DEB failed"; }
check "the package installs the initramfs hook" test -x /usr/share/initramfs-tools/hooks/hloop
check "the package installs the boot script" test -f /usr/share/initramfs-tools/scripts/hloop

# 2. Keys and the initramfs: k1 signs; the initramfs trusts k1 and k2.
mkdir -p "$TMP/keys/trusted"
"$HLOOP" key generate "$TMP/keys/k1" >/dev/null
"$HLOOP" key generate "$TMP/keys/k2" >/dev/null
cp "$TMP/keys/k1.pub" "$TMP/keys/k2.pub" "$TMP/keys/trusted/"
CONF=$TMP/initramfs-conf
mkdir -p "$CONF/scripts" "$CONF/hooks" "$CONF/conf.d"
# MODULES=list keeps the image small and quick to build; the hook adds fuse,
# loop, overlay and ext4 itself.
printf 'MODULES=list\nBUSYBOX=y\nCOMPRESS=zstd\nCOMPRESSLEVEL=1\n' >"$CONF/initramfs.conf"
printf '%s\n' virtio_pci virtio_net virtio_blk virtio_rng >"$CONF/modules"
STORE=$TMP/store
mkdir -p "$STORE/boot"
HLOOP_TRUSTED_DIR=$TMP/keys/trusted mkinitramfs -d "$CONF" -o "$STORE/boot/initrd.img" "$KVER" \
  >"$TMP/mkinitramfs.log" 2>&1 || { cat "$TMP/mkinitramfs.log" >&2; fail "mkinitramfs failed"; }
cp "/boot/vmlinuz-$KVER" "$STORE/boot/vmlinuz"
lsinitramfs "$STORE/boot/initrd.img" >"$TMP/initrd.list"
for f in usr/bin/hloop scripts/hloop etc/hloop/trusted.d/k1.pub etc/hloop/trusted.d/k2.pub; do
  check "the initramfs holds $f" grep -qx "$f" "$TMP/initrd.list"
done
check "the initramfs holds the fuse module" grep -q '/fuse.ko' "$TMP/initrd.list"
log "initramfs: $(stat -c %s "$STORE/boot/initrd.img") bytes; setup $((SECONDS - T0)) s"

# 3. Two versions of the image; the channel points at v1.
cp --sparse=always "$IMG" "$TMP/v2.img"
echo v2 >"$TMP/v2.version"
debugfs -w -R "rm /etc/hloop-test-version" "$TMP/v2.img" >/dev/null 2>&1
debugfs -w -R "write $TMP/v2.version /etc/hloop-test-version" "$TMP/v2.img" >/dev/null 2>&1
check_eq "v2 of the image says v2" v2 "$(debugfs -R 'cat /etc/hloop-test-version' "$TMP/v2.img" 2>/dev/null)"
"$HLOOP" pack "$IMG" "$STORE" --name debian-v1 -q || fail "pack v1"
"$HLOOP" pack "$TMP/v2.img" "$STORE" --name debian-v2 -q || fail "pack v2"
rm -f "$TMP/v2.img"
publish() { "$HLOOP" publish "$STORE" --channel debian --index "$1" --key "$TMP/keys/k1" >/dev/null || fail "publish $1"; }
publish debian-v1.idx
start_nginx "$STORE"
NGINX_PID=$SERVER_PID
GUEST_URL=http://10.0.2.2:$PORT
CHANNEL=$GUEST_URL/debian.channel

# 4. Second disks: one with partitions for the cache and a block overlay (the
# ovl boots), one for file-level persistence (the upd boots, which run at the
# same time: QEMU locks a disk file for one machine).
# make_disk FILE LABEL SIZE_MB...: a GPT disk with one ext4 per LABEL/SIZE pair.
make_disk() {
  local disk=$1 script='label: gpt' part=0 start size total=64 labels=()
  shift
  while (($#)); do
    labels+=("$1") script+=$'\n'"size=${2}M, name=$1" total=$((total + $2))
    shift 2
  done
  truncate -s "${total}M" "$disk"
  sfdisk -q "$disk" <<<"$script" >/dev/null || fail "sfdisk $disk"
  # -b 4096: the size argument is then in 4 KiB blocks (without it, KiB)
  while read -r start size; do
    mkfs.ext4 -q -F -b 4096 -L "${labels[part]}" -E "offset=$((start * 512))" "$disk" \
      "$((size * 512 / 4096))" || fail "mkfs.ext4 of ${labels[part]} on $disk"
    part=$((part + 1))
  done < <(sfdisk -d "$disk" | sed -n 's/.*start= *\([0-9]*\), size= *\([0-9]*\).*/\1 \2/p')
  ((part == ${#labels[@]})) || fail "expected ${#labels[@]} partitions on $disk, got $part"
}
make_disk "$TMP/disk-ovl.raw" hl-cache 1024 hl-overlay 300
make_disk "$TMP/disk-persist.raw" hl-persist 300

# Boots run two at a time (CI's two cores; each TCG guest keeps one busy):
# boot_start NAME MODE APPEND [QEMU ARGS...] starts the packaged kernel and
# initramfs (unless the QEMU arguments say -boot n) with APPEND; boot_wait
# NAME waits for it and checks how it ended. MODE:
#   poweroff  the guest must print the boot-finished marker and power off;
#   hang      the guest prints the marker and waits: QEMU is killed (-9) then;
#   shell     the boot must stop in the initramfs shell (QEMU is killed then).
declare -A BOOT_PID BOOT_MODE BOOT_T0
kill_quietly() { kill -9 "$1" 2>/dev/null || true; }
boot_start() {
  local name=$1 mode=$2 append=$3
  shift 3
  local kernel=(-kernel "$STORE/boot/vmlinuz" -initrd "$STORE/boot/initrd.img"
    -append "boot=hloop console=ttyS0 ip=dhcp rw $append")
  local nic=(-netdev user,id=n0 -device virtio-net-pci,netdev=n0,romfile=)
  if [[ " $* " == *" -boot n "* ]]; then kernel=() nic=(); fi
  log "$name: booting ($append)"
  qemu-system-x86_64 -accel tcg -m 1024 -display none -monitor none -no-reboot \
    -serial "file:$TMP/$name.console" -device virtio-rng-pci "${kernel[@]}" "${nic[@]}" "$@" \
    >"$TMP/$name.qemu.out" 2>&1 </dev/null &
  BOOT_PID[$name]=$! BOOT_MODE[$name]=$mode BOOT_T0[$name]=$SECONDS
  cleanup_fn kill_quietly "$!"
}
# boot_wait NAME: sets CONSOLE (the serial console log) for console_value.
boot_wait() {
  local name=$1 pid=${BOOT_PID[$1]} mode=${BOOT_MODE[$1]} t=${BOOT_T0[$1]} rc=0 ended=
  CONSOLE=$TMP/$name.console
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS - t > BOOT_TIMEOUT)); then ended=timeout; break; fi
    if [[ $mode == hang ]] && grep -aq 'HLOOP-BOOT-FINISHED' "$CONSOLE" 2>/dev/null; then ended=killed; break; fi
    if grep -aq '^(initramfs)' "$CONSOLE" 2>/dev/null; then ended=shell; break; fi
    sleep 0.5
  done
  [[ -n $ended ]] && kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || rc=$?
  # HLOOP_NETBOOT_LOGS=DIR keeps every console for a look afterwards.
  [[ -n ${HLOOP_NETBOOT_LOGS:-} ]] && mkdir -p "$HLOOP_NETBOOT_LOGS" && cp "$CONSOLE" "$HLOOP_NETBOOT_LOGS/"
  local finished=missing
  grep -aq 'HLOOP-BOOT-FINISHED' "$CONSOLE" 2>/dev/null && finished=seen
  local good=0
  case $mode in
  poweroff) [[ -z $ended && $rc == 0 && $finished == seen ]] && good=1 ;;
  hang) [[ $ended == killed ]] && good=1 ;;
  shell) [[ $ended == shell && $finished == missing ]] && good=1 ;;
  esac
  if ((!good)); then
    echo "---- $name: last 60 lines of the serial console ----" >&2
    tail -n 60 "$CONSOLE" >&2 2>/dev/null || true
    cat "$TMP/$name.qemu.out" >&2 || true
    fail "$name ($mode): ended '${ended:-by itself}', qemu status $rc, boot-finished marker $finished"
  fi
  log "$name: $(console_value HLOOP-BOOT-FINISHED) s guest time, $((SECONDS - t)) s wall;" \
    "$(grep -ao 'HLOOP-[A-Z-]* .*' "$CONSOLE" | grep -v FINISHED | tr -d '\r' | paste -sd';' || true)"
}
# console_value KEY: what the guest printed after "KEY " (first such line).
# Not anchored: the serial getty's "login: " prompt may precede it on a line.
console_value() { grep -ao "$1 .*" "$CONSOLE" | head -n1 | tr -d '\r' | cut -d' ' -f2- || true; }
# check_daemon NAME: the daemon is alive after the switch, as root storage.
check_daemon() {
  local d
  d=$(console_value HLOOP-DAEMON)  # PID ARGV0 RSS_KB, or NONE
  check_eq "$1: the hloop daemon runs after the switch to the real root, marked '@' for systemd" \
    "@hloop" "$(cut -d' ' -f2 <<<"$d")"
  check_eq "$1: multi-user.target is active while the daemon runs" active "$(console_value HLOOP-TARGET)"
}

# Two servers on the same store: the ovl boots use their own, which is stopped
# for the offline boot while the others go on.
NGINX_A=$NGINX_PID
start_nginx "$STORE"
NGINX_B=$SERVER_PID
URL_B=http://10.0.2.2:$PORT

# The ovl chain: a block overlay is bound to one version, so these boots name
# the (signed) index of v1, not the channel the upd boots move.
OVL_DRIVE=(-drive "file=$TMP/disk-ovl.raw,format=raw,if=virtio,cache=writeback")
OVL="hloop.url=$URL_B/debian-v1.idx hloop.cache=LABEL=hl-cache hloop.overlay=LABEL=hl-overlay"
boot_start ovl1 poweroff "$OVL hloop.write=token-1 hloop.nosync=nosync-1" "${OVL_DRIVE[@]}"

# PXE: nothing but the web server. QEMU's TFTP hands out the shipped iPXE
# script, edited for this server.
mkdir -p "$TMP/tftp"
sed -e "s|^set server .*|set server $GUEST_URL|" \
  -e "s|^set extra .*|set extra console=ttyS0 rw hloop.write=pxe-token|" \
  "$HLOOP_SRC/dist/netboot/boot.ipxe" >"$TMP/tftp/boot.ipxe"
boot_start pxe poweroff "" -boot n -netdev "user,id=n0,tftp=$TMP/tftp,bootfile=boot.ipxe" \
  -device virtio-net-pci,netdev=n0
boot_wait pxe
check_eq "pxe: the channel gives v1" v1 "$(console_value HLOOP-VERSION)"
check_eq "pxe: / is writable (tmpfs overlay)" rw "$(console_value HLOOP-ROOT)"
check_eq "pxe: the guest wrote its file" pxe-token "$(console_value HLOOP-WROTE)"
check_daemon pxe
check "pxe: nginx served the kernel and the initramfs" \
  grep -q 'GET /boot/initrd.img HTTP' "$TMP/nginx.${GUEST_URL##*:}/access.log"

# Errors: each ends in the initramfs shell with a clear message.
# hloop.retry=0: one attempt, no retries (they would only repeat the message).
boot_start err-key shell "hloop.url=$CHANNEL hloop.trust=k2 hloop.retry=0"
boot_wait err-key
check_contains "err-key: the console says the channel is not signed by a trusted key" \
  "not trusted" "$(grep -a "^hloop: " "$CONSOLE")"
check "err-key: the console shows the failure" grep -aq 'root file system could not be mounted' "$CONSOLE"
boot_start err-server shell "hloop.url=http://10.0.2.2:1/debian.channel hloop.retry=0"
boot_wait err-server
check "err-server: the console says the server cannot be reached" grep -aq 'cannot connect' "$CONSOLE"
check "err-server: and that the mount failed" grep -aq 'root file system could not be mounted' "$CONSOLE"
boot_start err-url shell "hloop.url=$GUEST_URL/no-such.channel hloop.retry=0"
boot_wait err-url
check "err-url: the console says the URL was not found" grep -aq 'not found (HTTP 404)' "$CONSOLE"
boot_start err-none shell "hloop.retry=0"
boot_wait err-none
check "err-none: without hloop.url the console says what is missing" \
  grep -aq 'boot=hloop needs hloop.url=URL' "$CONSOLE"

# Block-level overlay and cache on the second disk.
boot_wait ovl1
check_eq "ovl1: a new overlay has no file" NONE "$(console_value HLOOP-FOUND)"
check_eq "ovl1: the guest wrote and synced its file" token-1 "$(console_value HLOOP-WROTE)"
check_eq "ovl1: the guest wrote a file without sync" nosync-1 "$(console_value HLOOP-NOSYNC-WROTE)"
check_daemon ovl1
# Offline: this chain's server stopped; ovl1 filled the cache partition.
stop_pid "$NGINX_B"
boot_start ovl2 hang "$OVL hloop.write=token-2 hloop.end=hang" "${OVL_DRIVE[@]}"  # offline

# Update and rollback through the channel, with file-level persistence.
PERSIST_DRIVE=(-drive "file=$TMP/disk-persist.raw,format=raw,if=virtio,cache=writeback")
# hloop.mirror=: the ovl chain's server as a second mirror, stopped by now:
# these boots also show that a dead mirror is passed over.
PERSIST="hloop.url=$CHANNEL hloop.mirror=$URL_B hloop.persist=LABEL=hl-persist"
boot_start upd1 poweroff "$PERSIST hloop.write=user-file" "${PERSIST_DRIVE[@]}"
boot_wait upd1
check_eq "upd1: the channel gives v1" v1 "$(console_value HLOOP-VERSION)"
check_eq "upd1: / is an overlayfs over the image" overlay "$(console_value HLOOP-ROOTFS)"
check_eq "upd1: the user wrote a file" user-file "$(console_value HLOOP-WROTE)"
check_daemon upd1
publish debian-v2.idx

boot_wait ovl2
check_eq "ovl2 (offline): the synced file survived a clean reboot" token-1 "$(console_value HLOOP-FOUND)"
check_eq "ovl2 (offline): the unsynced file survived it too (flushed at shutdown)" nosync-1 \
  "$(console_value HLOOP-NOSYNC-FOUND)"
check_eq "ovl2 (offline): the image is v1 from the cached index" v1 "$(console_value HLOOP-VERSION)"
check "ovl2 (offline): the console warns that the cached index is used" \
  grep -aq 'using the cached copy of the index' "$CONSOLE"
check_daemon ovl2
check_eq "ovl2 (offline): the guest wrote and synced a new file, then QEMU was killed" token-2 \
  "$(console_value HLOOP-WROTE)"
# The server back (on a new port): the file system's journal recovery after
# the hard reset may read blocks no boot read before.
start_nginx "$STORE"
NGINX_B=$SERVER_PID
OVL="hloop.url=http://10.0.2.2:$PORT/debian-v1.idx hloop.cache=LABEL=hl-cache hloop.overlay=LABEL=hl-overlay"
boot_start ovl3 poweroff "$OVL" "${OVL_DRIVE[@]}"

boot_start upd2 poweroff "$PERSIST" "${PERSIST_DRIVE[@]}"
boot_wait upd2
check_eq "upd2: after the publish, the machine boots v2" v2 "$(console_value HLOOP-VERSION)"
check_eq "upd2: the user's file survived the update" user-file "$(console_value HLOOP-FOUND)"
publish debian-v1.idx
boot_start upd3 poweroff "$PERSIST" "${PERSIST_DRIVE[@]}"
boot_wait upd3
check_eq "upd3: after the rollback publish, the machine boots v1" v1 "$(console_value HLOOP-VERSION)"
check_eq "upd3: the user's file survived the rollback" user-file "$(console_value HLOOP-FOUND)"

boot_wait ovl3
check_eq "ovl3: the synced file survived QEMU being killed" token-2 "$(console_value HLOOP-FOUND)"
check_daemon ovl3

dpkg -P hloop >"$TMP/dpkg-r.log" 2>&1 || { cat "$TMP/dpkg-r.log" >&2; fail "dpkg -P hloop failed"; }
check "dpkg -P removes the hook" test ! -e /usr/share/initramfs-tools/hooks/hloop
log "total $((SECONDS - T0)) s"
