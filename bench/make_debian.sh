#!/usr/bin/env bash
# Build (once) a bootable Debian disk image for the boot benchmark and print
# its path on stdout. Beside it: IMG.vmlinuz and IMG.initrd (the kernel and
# initramfs to boot it with, copied from the host's /boot), IMG.sha256,
# IMG.info.
#
# The image is an ext4 file system (no partition table: root=/dev/vda) holding
# a Debian bookworm root file system (debootstrap minbase with systemd-sysv,
# udev, kmod; the tree bench/make_rootfs.sh caches), plus
#   - the kernel's modules (/lib/modules/KVER from the host), so udev loads
#     drivers from the image as on an installed system;
#   - /etc/fstab (/dev/vda as /), hostname, hosts, a fixed machine-id, root
#     without a password;
#   - hloop-boot-finished.service: a oneshot unit ordered after
#     multi-user.target that writes "HLOOP-BOOT-FINISHED <seconds of
#     /proc/uptime> vda_read_ios=N vda_read_sectors=N" (from
#     /sys/block/vda/stat) to /dev/ttyS0 and powers the guest off.
# Boot it with (writes go to a temporary overlay, never to the image):
#   qemu-system-x86_64 -accel tcg -m 1024 -display none -serial stdio \
#     -kernel IMG.vmlinuz -initrd IMG.initrd \
#     -append 'root=/dev/vda console=ttyS0' \
#     -drive file=IMG,format=raw,if=virtio -snapshot
#
# Cached in $BENCH_CACHE (default /var/tmp/hloop-bench): rebuilt only when the
# settings (suite, size, kernel, this script) change or BENCH_REBUILD=1.
#
# Settings (environment):
#   BENCH_DEBIAN_SIZE  size of the ext4 image           (default 2G)
#   BENCH_SUITE        Debian suite for debootstrap     (default bookworm)
#   BENCH_KERNEL       kernel version under /boot       (default: newest
#                      vmlinuz-*; linux-image-amd64 is installed if none)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

need_root
IMG_SIZE=${BENCH_DEBIAN_SIZE:-2G}
SUITE=${BENCH_SUITE:-bookworm}

if [ -z "${BENCH_KERNEL:-}" ] && ! ls /boot/vmlinuz-* >/dev/null 2>&1; then
    need_cmd update-initramfs initramfs-tools
    log "no kernel in /boot: installing linux-image-amd64"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-image-amd64 >&2 ||
        die "cannot install linux-image-amd64"
fi
KVER=${BENCH_KERNEL:-$(find /boot -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sed 's/^vmlinuz-//' | sort -V | tail -1)}
[ -n "$KVER" ] && [ -f "/boot/vmlinuz-$KVER" ] || die "no /boot/vmlinuz-$KVER"
[ -f "/boot/initrd.img-$KVER" ] || die "no /boot/initrd.img-$KVER (update-initramfs -c -k $KVER)"
[ -d "/lib/modules/$KVER" ] || die "no /lib/modules/$KVER"

settings="suite=$SUITE size=$IMG_SIZE kernel=$KVER script=$(sha256sum "$0" | cut -c1-12)"
IMG=$BENCH_CACHE/debian-$SUITE-$IMG_SIZE-$(echo "$settings" | sha256sum | cut -c1-8).img
STAMP=$IMG.settings
TREE=$BENCH_CACHE/debootstrap-$SUITE   # shared with make_rootfs.sh

mkdir -p "$BENCH_CACHE"
if [ "${BENCH_REBUILD:-0}" != 1 ] && [ -f "$IMG" ] && [ -f "$IMG.sha256" ] &&
    [ -f "$IMG.vmlinuz" ] && [ -f "$IMG.initrd" ] &&
    [ "$(cat "$STAMP" 2>/dev/null)" = "$settings" ]; then
    log "using cached image $IMG ($settings)"
    echo "$IMG"
    exit 0
fi

need_cmd mkfs.ext4 e2fsprogs
need_cmd debootstrap debootstrap

# 1. the Debian tree (kept: debootstrap takes ~40 s and needs the mirror)
if [ ! -f "$TREE/.complete" ] || [ "${BENCH_REBUILD:-0}" = 1 ]; then
    rm -rf "$TREE" "$TREE.partial"
    log "debootstrap --variant=minbase $SUITE (about 40 s)"
    debootstrap --variant=minbase --include=systemd-sysv,udev,kmod "$SUITE" "$TREE.partial" \
        >"$BENCH_CACHE/debootstrap.log" 2>&1 ||
        { tail -20 "$BENCH_CACHE/debootstrap.log" >&2; die "debootstrap failed"; }
    # drop the downloaded .debs: they are not part of an installed system
    rm -f "$TREE.partial"/var/cache/apt/archives/*.deb
    mv "$TREE.partial" "$TREE"
    touch "$TREE/.complete"
fi

# 2. staging tree: a real copy (not hard links: files are edited below, and the
# cached tree is shared with make_rootfs.sh)
STAGE=$BENCH_CACHE/stage-debian.$$
on_exit "rm -rf '$STAGE'"
rm -f "$IMG" "$IMG.sha256" "$STAMP" "$IMG.vmlinuz" "$IMG.initrd" "$IMG.info"
# images built by other versions of this script (2 GB each) are stale
for old in "$BENCH_CACHE"/debian-"$SUITE"-*.img; do
    [ -f "$old" ] || continue
    case $(cat "$old.settings" 2>/dev/null) in *"size=$IMG_SIZE "*) ;; *) continue ;; esac
    log "removing stale $old"
    rm -f "$old" "$old".*
done
log "staging tree in $STAGE"
cp -a "$TREE" "$STAGE"
rm -f "$STAGE/.complete"

log "adding /lib/modules/$KVER ($(du -sh "/lib/modules/$KVER" | cut -f1))"
mkdir -p "$STAGE/lib/modules"
cp -a "/lib/modules/$KVER" "$STAGE/lib/modules/"

echo "/dev/vda / ext4 rw,errors=remount-ro 0 1" >"$STAGE/etc/fstab"
echo hloop-boot >"$STAGE/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\thloop-boot\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$STAGE/etc/hosts"
# a fixed machine-id: not a "first boot" (no systemd-firstboot prompts), and
# the same image whenever it is rebuilt from the same tree
echo 4c6f6f7068626f6f7462656e63680001 >"$STAGE/etc/machine-id"
sed -i 's/^root:[^:]*:/root::/' "$STAGE/etc/shadow"   # root, no password

cat >"$STAGE/usr/local/sbin/hloop-boot-finished" <<'EOF'
#!/bin/sh
# hloop boot benchmark: report the guest's uptime once multi-user.target is
# reached, then power off.
read -r up _ </proc/uptime
# and what the boot read from the disk: /sys/block/vda/stat fields 1 and 3
set -- $(cat /sys/block/vda/stat 2>/dev/null)
echo "HLOOP-BOOT-FINISHED $up vda_read_ios=${1:-0} vda_read_sectors=${3:-0}" >/dev/ttyS0
exec systemctl --no-block poweroff
EOF
chmod 755 "$STAGE/usr/local/sbin/hloop-boot-finished"
cat >"$STAGE/etc/systemd/system/hloop-boot-finished.service" <<'EOF'
[Unit]
Description=hloop boot benchmark: boot-finished marker on ttyS0, then power off
# No default dependencies: otherwise multi-user.target, which wants this
# unit, would also be ordered after it.
DefaultDependencies=no
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/hloop-boot-finished

[Install]
WantedBy=multi-user.target
EOF
ln -sf /etc/systemd/system/hloop-boot-finished.service \
    "$STAGE/etc/systemd/system/multi-user.target.wants/hloop-boot-finished.service"
content=$(du -sb "$STAGE" | cut -f1)
log "content: $(human "$content") in $(find "$STAGE" | wc -l) entries"

# 3. the ext4 image (fixed UUID and hash seed so that rebuilds are alike)
log "mkfs.ext4 -d ... $IMG $IMG_SIZE"
mkfs.ext4 -q -F -L hloop-debian -U 1f0e2d3c-4b5a-4697-8877-665544332211 \
    -E hash_seed=0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d -d "$STAGE" "$IMG" "$IMG_SIZE" >&2
e2fsck -fn "$IMG" >/dev/null 2>&1 || log "warning: e2fsck -fn reports problems on $IMG"
rm -rf "$STAGE"
cp "/boot/vmlinuz-$KVER" "$IMG.vmlinuz"
cp "/boot/initrd.img-$KVER" "$IMG.initrd"

sha256sum "$IMG" | cut -d' ' -f1 >"$IMG.sha256"
{
    echo "content_bytes=$content"
    echo "image_bytes=$(stat -c %s "$IMG")"
    echo "allocated_bytes=$(du -B1 "$IMG" | cut -f1)"
    echo "kernel=$KVER"
} >"$IMG.info"
echo "$settings" >"$STAMP"
log "image ready: $IMG ($(human "$(stat -c %s "$IMG")"), $(human "$content") of files, kernel $KVER)"
echo "$IMG"
