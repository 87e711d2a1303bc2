#!/usr/bin/env bash
# Installs everything hloop needs to build, test and benchmark on Debian 12.
# Run as root. Safe to run again.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
packages=(
  # build
  g++ cmake ninja-build pkg-config
  libcurl4-openssl-dev libfuse3-dev libzstd-dev zlib1g-dev libssl-dev
  libcli11-dev nlohmann-json3-dev libcpp-httplib-dev libxxhash-dev
  libext2fs-dev  # `hloop 9p --image`: ext2/3/4 file systems inside images
  # unit tests, sanitizers, fuzzing
  libgtest-dev libgmock-dev clang libclang-rt-14-dev
  clang-format  # scripts/check_format.sh (CI)
  # integration tests: real servers and clients
  fuse3 nginx-light lighttpd e2fsprogs util-linux curl jq procps psmisc openssl
  squid  # a real caching proxy (tests/test_proxy.sh)
  # NBD clients, a raw client's interpreter (tests/nbd_raw_client.py), and
  # nbdkit to compare against in bench/nbd.sh
  libnbd-bin qemu-utils python3 nbdkit
  # a real VM booting over hloop nbd (tests/test_vm_boot.sh): QEMU, a
  # debootstrap'd Debian root, the Debian kernel and initramfs from /boot
  qemu-system-x86 debootstrap debian-archive-keyring linux-image-amd64
  # the kernel's 9P client in a QEMU guest (tests/test_9p_guest.sh, bench/9p.sh)
  busybox-static diod cpio
  # the internet boot (tests/test_netboot.sh): a partitioned second disk, the
  # initramfs compressor
  fdisk zstd
  # the Debian package (scripts/package.sh, tests/test_package.sh): man pages
  # from --help, dpkg-shlibdeps, the package checker, groff to check the pages,
  # update-initramfs for the package's trigger
  help2man dpkg-dev lintian groff-base initramfs-tools
  systemd  # systemd-analyze verify of the package's units (no need to run it as PID 1)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -qq
  # Debian starts nginx, lighttpd and squid (on port 3128) on installation;
  # the tests start their own.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  for svc in nginx lighttpd squid; do
    service "$svc" stop >/dev/null 2>&1 || true
  done
fi
