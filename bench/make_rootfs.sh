#!/usr/bin/env bash
# Build (once) the benchmark disk image and print its path on stdout.
#
# The image is an ext4 file system holding a real Debian root file system
# (debootstrap minbase bookworm with systemd-sysv, udev, kmod) plus, to reach a
# multi-GB image of real content, copies of some of the host's big /usr
# directories (shared libraries, compilers, headers) under /opt/host.
#
# Cached in $BENCH_CACHE (default /var/tmp/hloop-bench): rebuilt only when the
# settings change or BENCH_REBUILD=1.
#
# Settings (environment):
#   BENCH_IMG_SIZE   size of the ext4 image             (default 3G)
#   BENCH_EXTRA      host directories copied to /opt/host (default below;
#                    "" for the bare debootstrap tree)
#   BENCH_SUITE      Debian suite for debootstrap       (default bookworm)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

need_root
IMG_SIZE=${BENCH_IMG_SIZE:-3G}
SUITE=${BENCH_SUITE:-bookworm}
EXTRA=${BENCH_EXTRA-/usr/lib/x86_64-linux-gnu /usr/lib/gcc /usr/lib/llvm-14 /usr/include}

settings="suite=$SUITE size=$IMG_SIZE extra=$EXTRA"
# one cached image per setting: rootfs-<size>-<hash of settings>.img
IMG=$BENCH_CACHE/rootfs-$IMG_SIZE-$(echo "$settings" | sha256sum | cut -c1-8).img
STAMP=$IMG.settings
TREE=$BENCH_CACHE/debootstrap-$SUITE

mkdir -p "$BENCH_CACHE"
if [ "${BENCH_REBUILD:-0}" != 1 ] && [ -f "$IMG" ] && [ -f "$IMG.sha256" ] &&
    [ "$(cat "$STAMP" 2>/dev/null)" = "$settings" ]; then
    log "using cached image $IMG ($settings)"
    echo "$IMG"
    exit 0
fi

need_cmd mkfs.ext4 e2fsprogs
need_cmd debootstrap debootstrap

# 1. the Debian tree (kept: debootstrap takes ~40 s and needs the mirror)
if [ ! -f "$TREE/.complete" ]; then
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

# 2. staging tree = debootstrap tree (hard links) + host directories
STAGE=$BENCH_CACHE/stage.$$
on_exit "rm -rf '$STAGE'"
rm -f "$IMG" "$IMG.sha256" "$STAMP"
log "staging tree in $STAGE"
cp -al "$TREE" "$STAGE"
rm -f "$STAGE/.complete"
for d in $EXTRA; do
    [ -d "$d" ] || { log "skipping missing $d"; continue; }
    mkdir -p "$STAGE/opt/host$(dirname "$d")"
    log "copying host $d ($(du -sh "$d" 2>/dev/null | cut -f1))"
    cp -a "$d" "$STAGE/opt/host$(dirname "$d")/" || log "some files of $d were not copied"
done
content=$(du -sb "$STAGE" | cut -f1)
log "content: $(human "$content") in $(find "$STAGE" | wc -l) entries"

# 3. the ext4 image (fixed UUID and hash seed so that rebuilds are alike)
log "mkfs.ext4 -d ... $IMG $IMG_SIZE"
mkfs.ext4 -q -F -L hloop-bench -U 6c2d1a9e-1b7e-4f8e-9a0b-5a3c0e2d4f10 \
    -E hash_seed=2b1c6e0a-7d43-4b8f-8e5e-0f9a1d2c3b4a -d "$STAGE" "$IMG" "$IMG_SIZE" >&2
e2fsck -fn "$IMG" >/dev/null 2>&1 || log "warning: e2fsck -fn reports problems on $IMG"
rm -rf "$STAGE"

sha256sum "$IMG" | cut -d' ' -f1 >"$IMG.sha256"
{
    echo "content_bytes=$content"
    echo "image_bytes=$(stat -c %s "$IMG")"
    echo "allocated_bytes=$(du -B1 "$IMG" | cut -f1)"
} >"$IMG.info"
echo "$settings" >"$STAMP"
log "image ready: $IMG ($(human "$(stat -c %s "$IMG")"), $(human "$content") of files)"
echo "$IMG"
