#!/usr/bin/env bash
# Build (once) the bootable Debian image for tests/test_vm_boot.sh and print
# its path on stdout (progress goes to stderr). Beside it: IMG.vmlinuz and
# IMG.initrd (the host's kernel and initramfs to boot it with) and IMG.sha256.
#
# A trimmed copy of bench/make_debian.sh: an ext4 file system (no partition
# table: root=/dev/vda) holding Debian bookworm (debootstrap minbase with
# systemd-sysv, udev, kmod), plus
#   - hloop-vm-guest.service + /usr/local/sbin/hloop-vm-guest (tests/vm/): on
#     every boot, after multi-user.target, it reports the test token on the
#     serial console (writing it first with hloop.write=TOKEN on the kernel
#     command line), prints "HLOOP-BOOT-FINISHED UPTIME" and powers off;
#   - hostname, hosts, a fixed machine-id, root without a password, and no
#     root entry in /etc/fstab: / stays mounted as the kernel command line says
#     (rw, or ro for a read-only export), nothing remounts it.
# No kernel modules are copied in (the initramfs loads virtio and ext4; the
# booted system needs nothing else), which keeps the image small.
#
# Cached in $HLOOP_VM_CACHE (default /var/tmp/hloop-test-vm): the debootstrap
# tree (about 40 s, needs deb.debian.org) and the image, rebuilt only when the
# settings (suite, size, kernel, this script, the guest files) change or with
# HLOOP_VM_REBUILD=1. A lock serializes concurrent callers.
#
# Environment: HLOOP_VM_CACHE, HLOOP_VM_SIZE (1G), HLOOP_VM_SUITE (bookworm),
# HLOOP_VM_KERNEL (default: the newest /boot/vmlinuz-*), HLOOP_VM_REBUILD.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${HLOOP_VM_CACHE:-/var/tmp/hloop-test-vm}
SIZE=${HLOOP_VM_SIZE:-1G}
SUITE=${HLOOP_VM_SUITE:-bookworm}

log() { printf '[make_debian_image %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, image ownership)"
for c in debootstrap mkfs.ext4 e2fsck flock sha256sum; do
  command -v "$c" >/dev/null 2>&1 || die "'$c' is missing (bash scripts/deps.sh installs it)"
done
KVER=${HLOOP_VM_KERNEL:-$(find /boot -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sed 's/^vmlinuz-//' | sort -V | tail -1)}
if [ -z "$KVER" ] || [ ! -f "/boot/vmlinuz-$KVER" ]; then die "no kernel in /boot (apt-get install linux-image-amd64)"; fi
[ -f "/boot/initrd.img-$KVER" ] || die "no /boot/initrd.img-$KVER (update-initramfs -c -k $KVER)"

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9

inputs=$(cat "$0" "$HERE/hloop-vm-guest" "$HERE/hloop-vm-guest.service" | sha256sum | cut -c1-12)
settings="suite=$SUITE size=$SIZE kernel=$KVER inputs=$inputs"
IMG=$CACHE/debian-$SUITE-$SIZE-$(echo "$settings" | sha256sum | cut -c1-8).img
TREE=$CACHE/debootstrap-$SUITE

if [ "${HLOOP_VM_REBUILD:-0}" != 1 ] && [ -f "$IMG" ] && [ -f "$IMG.sha256" ] &&
  [ -f "$IMG.vmlinuz" ] && [ -f "$IMG.initrd" ] &&
  [ "$(cat "$IMG.settings" 2>/dev/null)" = "$settings" ]; then
  log "using cached $IMG"
  echo "$IMG"
  exit 0
fi

# 1. the Debian tree, kept across image rebuilds
if [ ! -f "$TREE/.complete" ] || [ "${HLOOP_VM_REBUILD:-0}" = 1 ]; then
  rm -rf "$TREE" "$TREE.partial"
  log "debootstrap --variant=minbase $SUITE (about 40 s)"
  debootstrap --variant=minbase --include=systemd-sysv,udev,kmod "$SUITE" "$TREE.partial" \
    >"$CACHE/debootstrap.log" 2>&1 || { tail -20 "$CACHE/debootstrap.log" >&2; die "debootstrap failed"; }
  rm -f "$TREE.partial"/var/cache/apt/archives/*.deb
  mv "$TREE.partial" "$TREE"
  touch "$TREE/.complete"
fi

# 2. a staging copy with the test's additions
STAGE=$CACHE/stage.$$
trap 'rm -rf "$STAGE" "$IMG.partial"' EXIT
for old in "$CACHE"/debian-*.img; do   # images of other settings are stale
  [ -e "$old" ] || continue
  log "removing stale $old"
  rm -f "$old" "$old".*
done
cp -a "$TREE" "$STAGE"
rm -f "$STAGE/.complete"
echo "# / is mounted as the kernel command line says (rw or ro); nothing remounts it" >"$STAGE/etc/fstab"
echo hloop-vm >"$STAGE/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\thloop-vm\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$STAGE/etc/hosts"
echo 686c6f6f70766d746573740000000001 >"$STAGE/etc/machine-id"   # not a "first boot"
sed -i 's/^root:[^:]*:/root::/' "$STAGE/etc/shadow"
echo v1 >"$STAGE/etc/hloop-test-version"   # tests/test_netboot.sh publishes a v2
install -m 755 "$HERE/hloop-vm-guest" "$STAGE/usr/local/sbin/hloop-vm-guest"
install -m 644 "$HERE/hloop-vm-guest.service" "$STAGE/etc/systemd/system/hloop-vm-guest.service"
ln -sf /etc/systemd/system/hloop-vm-guest.service \
  "$STAGE/etc/systemd/system/multi-user.target.wants/hloop-vm-guest.service"

# 3. the ext4 image (fixed UUID and hash seed: rebuilds are alike)
log "mkfs.ext4 -d ... $SIZE ($(du -sh "$STAGE" | cut -f1) of files)"
mkfs.ext4 -q -F -L hloop-vm -U 3d1c0b5a-6e7f-4a8b-9c0d-1e2f3a4b5c6d \
  -E hash_seed=5c4b3a29-1807-4f6e-8d5c-4b3a29180716 -d "$STAGE" "$IMG.partial" "$SIZE" >&2
e2fsck -fn "$IMG.partial" >/dev/null 2>&1 || die "e2fsck -fn reports problems on the new image"
rm -rf "$STAGE"
cp "/boot/vmlinuz-$KVER" "$IMG.vmlinuz"
cp "/boot/initrd.img-$KVER" "$IMG.initrd"
sha256sum "$IMG.partial" | cut -d' ' -f1 >"$IMG.sha256"
mv "$IMG.partial" "$IMG"
echo "$settings" >"$IMG.settings"
log "image ready: $IMG (kernel $KVER)"
echo "$IMG"
