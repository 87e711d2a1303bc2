# shellcheck shell=bash disable=SC2034  # sets globals (GUEST_*, P9_*) for the callers
# Host-side helpers for tests and benchmarks that use the Linux kernel's own
# 9P client inside a QEMU guest (the host kernel has no 9p file system).
#
# Source it AFTER tests/lib.sh (tests) or bench/lib.sh (benchmarks).  It uses
# from the caller: log, free_port, and a clean-up registry (cleanup_fn from
# tests/lib.sh, or on_exit from bench/lib.sh).  Scratch files go to
# $GUEST_WORK (default $TMP, else $W).
#
# The guest: the host's Debian kernel (/boot/vmlinuz-VER) and an initramfs of
#   1. a cached base archive: busybox-static and the kernel modules for
#      virtio-net and 9P over TCP (plain .ko, in dependency order), built once
#      per kernel version in $GUEST_CACHE/VER/ (default /var/tmp/hloop-guest);
#   2. a small per-run archive: tests/p9_guest/* (the /init and the battery
#      scripts) plus any files the caller adds (e.g. a sha256 manifest).
# The kernel unpacks both (concatenated gzip'd cpio newc archives).  /init
# reads hlt.KEY=VALUE words from the kernel command line, loads the modules,
# configures eth0 (10.0.2.15/24 via 10.0.2.2, QEMU user networking: the host's
# 127.0.0.1 is 10.0.2.2), mounts the 9P export on /mnt, runs the battery, and
# powers off.  Everything is printed on the serial console, which the host
# saves to a file and parses: "STEP name ok|FAIL detail", "TIME step SECONDS",
# "PHASE name SECONDS" (guest seconds), "VALUE key value", "P9GUEST-END rc=N".
# The guest: 1 vCPU (TCG is faster with one here: 9P round trips are latency
# bound), 1 GiB, virtio-net without option ROM, no disk.
#
# Environment:
#   HLOOP_GUEST_CACHE    cache dir for the base initramfs (/var/tmp/hloop-guest)
#   HLOOP_GUEST_KERNEL   kernel version to boot (default: newest /boot/vmlinuz-*
#                        with modules in /lib/modules)
#   HLOOP_GUEST_TIMEOUT  seconds allowed for one guest run (600; the test: 300)
#   HLOOP_GUEST_MEM      guest memory in MiB (1024)
#   HLOOP_GUEST_SMP      guest vCPUs (1)
#   HLOOP_GUEST_QEMU_ARGS  extra QEMU arguments (words)
#   HLOOP_GUEST_MODULES  modules to load (plus their dependencies)
#   HLOOP_GUEST_MSIZE    9P msize asked for by the guest (262144)
#   HLOOP_GUEST_OPTS     extra 9P mount options, comma-separated (e.g. cache=loose)
#   HLOOP_9P_TRACE=1     diod logs every decoded 9P message (-d 1) to its log,
#                        and the guest marks each step there with a failing
#                        lookup of MNT/.p9-step-NAME

GUEST_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GUEST_SCRIPTS=$GUEST_LIB_DIR/p9_guest
GUEST_CACHE=${HLOOP_GUEST_CACHE:-/var/tmp/hloop-guest}
GUEST_TIMEOUT=${HLOOP_GUEST_TIMEOUT:-600}
GUEST_MEM=${HLOOP_GUEST_MEM:-1024}
GUEST_SMP=${HLOOP_GUEST_SMP:-1}
GUEST_QEMU_ARGS=${HLOOP_GUEST_QEMU_ARGS:-}
GUEST_MSIZE=${HLOOP_GUEST_MSIZE:-262144}
GUEST_OPTS=${HLOOP_GUEST_OPTS:-}
# The modules the guest needs; their dependencies are added (modinfo) and the
# whole set loaded in dependency order.  For Debian 12's 6.1 kernel this gives
# virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio virtio_pci
# failover net_failover virtio_net 9pnet 9pnet_fd netfs fscache 9p.
GUEST_MODULES=${HLOOP_GUEST_MODULES:-virtio_pci virtio_net 9pnet_fd 9p}

_guest_fail() {
  if declare -F fail >/dev/null; then fail "$*"; else die "$*"; fi
}
_guest_on_exit() {
  if declare -F cleanup_fn >/dev/null; then cleanup_fn "$@"; else on_exit "$(printf '%q ' "$@")"; fi
}
_guest_work() {
  local w=${GUEST_WORK:-${TMP:-${W:-}}}
  [[ -n $w ]] || _guest_fail "lib_guest.sh: set GUEST_WORK (or TMP/W) first"
  echo "$w"
}

guest_requires() {
  local c
  for c in qemu-system-x86_64 cpio gzip modinfo timeout; do
    command -v "$c" >/dev/null 2>&1 || _guest_fail "required command '$c' is not installed (scripts/deps.sh installs it)"
  done
}

# guest_busybox: path of a statically linked busybox (package busybox-static).
guest_busybox() {
  local b
  for b in /bin/busybox /usr/bin/busybox; do
    # A static binary names no program interpreter.
    [[ -x $b ]] && ! grep -qa '/lib64/ld-linux' "$b" && { echo "$b"; return 0; }
  done
  return 1
}

# _guest_mod_order MOD...: the modules and their dependencies, dependencies
# first, one name a line (built-in ones left out).
_guest_mod_order() {
  local -A seen=()
  local order=()
  _visit() {
    local m=$1 deps d
    [[ -n ${seen[$m]:-} ]] && return 0
    seen[$m]=1
    deps=$(modinfo -k "$GUEST_KVER" -F depends "$m" 2>/dev/null) || true
    for d in ${deps//,/ }; do _visit "$d"; done
    order+=("$m")
  }
  local m
  for m in "$@"; do _visit "$m"; done
  printf '%s\n' "${order[@]}"
}

# guest_setup: pick the kernel and build (once) the cached base archive.
# Sets GUEST_KVER, GUEST_KERNEL (vmlinuz path) and GUEST_BASE (base.cpio.gz).
guest_setup() {
  guest_requires
  local v
  if [[ -n ${HLOOP_GUEST_KERNEL:-} ]]; then
    GUEST_KVER=$HLOOP_GUEST_KERNEL
  else
    GUEST_KVER=''
    for v in $(find /boot -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sed 's|^vmlinuz-||' | sort -V); do
      [[ -d /lib/modules/$v/kernel ]] && GUEST_KVER=$v
    done
  fi
  [[ -n $GUEST_KVER ]] || _guest_fail "no /boot/vmlinuz-* with modules in /lib/modules (apt-get install linux-image-amd64)"
  GUEST_KERNEL=/boot/vmlinuz-$GUEST_KVER
  [[ -r $GUEST_KERNEL ]] || _guest_fail "cannot read $GUEST_KERNEL (run as root)"
  local bb
  bb=$(guest_busybox) || _guest_fail "no statically linked busybox (apt-get install busybox-static)"

  local mods m path
  # shellcheck disable=SC2086  # a word list
  mods=$(_guest_mod_order $GUEST_MODULES)
  # The cache key: kernel version, busybox binary and module list.
  local key
  key=$( { echo "$GUEST_KVER"; sha256sum "$bb"; echo "$mods";
           for m in $mods; do modinfo -k "$GUEST_KVER" -n "$m"; done | xargs -r stat -c '%n %s %Y'; } |
         sha256sum | cut -c1-12)
  local dir=$GUEST_CACHE/$GUEST_KVER
  GUEST_BASE=$dir/base-$key.cpio.gz
  [[ -s $GUEST_BASE ]] && return 0

  mkdir -p "$dir"
  # Several runs may race to build the same archive: build in a private
  # directory and rename into place.
  local stage
  stage=$(mktemp -d "$dir/build.XXXXXX")
  mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,mnt,tmp,modules,etc}
  cp "$bb" "$stage/bin/busybox"
  : >"$stage/modules/order"
  for m in $mods; do
    path=$(modinfo -k "$GUEST_KVER" -n "$m" 2>/dev/null) || { rm -rf "$stage"; _guest_fail "module $m not found for kernel $GUEST_KVER"; }
    [[ -f $path ]] || continue   # "(builtin)"
    case $path in
      *.ko) cp "$path" "$stage/modules/$m.ko" ;;
      *.ko.xz) xz -dc "$path" >"$stage/modules/$m.ko" ;;
      *.ko.zst) zstd -qdc "$path" >"$stage/modules/$m.ko" ;;
      *.ko.gz) gzip -dc "$path" >"$stage/modules/$m.ko" ;;
      *) rm -rf "$stage"; _guest_fail "unknown module file type: $path" ;;
    esac
    echo "$m" >>"$stage/modules/order"
  done
  (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -6) >"$stage.cpio.gz" ||
    { rm -rf "$stage" "$stage.cpio.gz"; _guest_fail "building the base initramfs failed"; }
  mv "$stage.cpio.gz" "$GUEST_BASE"
  rm -rf "$stage"
  log "built guest base initramfs $GUEST_BASE (kernel $GUEST_KVER, modules: $(tr '\n' ' ' <<<"$mods"))"
}

# guest_uncompressed_kernel: after guest_setup, point GUEST_KERNEL at the
# uncompressed ELF vmlinux inside the bzImage (cached next to the base
# archive). QEMU boots it directly through its PVH entry (the kernel needs
# CONFIG_PVH, as Debian's has), which skips the decompression of the kernel
# under TCG: 15-35 s of each boot on a loaded 2-core machine.
guest_uncompressed_kernel() {
  grep -qx 'CONFIG_PVH=y' "/boot/config-$GUEST_KVER" 2>/dev/null ||
    _guest_fail "kernel $GUEST_KVER has no CONFIG_PVH: QEMU cannot boot its vmlinux directly"
  local key out off tmp
  key=$(stat -c '%s-%Y' "$GUEST_KERNEL")
  out=$GUEST_CACHE/$GUEST_KVER/vmlinux-$key
  if [[ ! -s $out ]]; then
    tmp=$(mktemp "$out.XXXXXX")
    # The payload of a bzImage is one compressed stream; Debian uses xz.
    if off=$(grep -abo $'\xfd7zXZ\x00' "$GUEST_KERNEL" | head -n1 | cut -d: -f1) && [[ -n $off ]]; then
      tail -c +"$((off + 1))" "$GUEST_KERNEL" | xz -dc --single-stream >"$tmp" 2>/dev/null || true
    elif off=$(grep -abo $'\x28\xb5\x2f\xfd' "$GUEST_KERNEL" | head -n1 | cut -d: -f1) && [[ -n $off ]]; then
      tail -c +"$((off + 1))" "$GUEST_KERNEL" | zstd -qdc >"$tmp" 2>/dev/null || true
    fi
    [[ $(head -c 4 "$tmp" | od -An -tx1 | tr -d ' \n') == 7f454c46 ]] ||
      { rm -f "$tmp"; _guest_fail "no xz or zstd compressed ELF vmlinux found in $GUEST_KERNEL"; }
    mv "$tmp" "$out"
  fi
  GUEST_KERNEL=$out
}

# guest_initrd OUT [EXTRA_DIR]: OUT = base archive + an archive of
# tests/p9_guest (as /init and /p9/*) and of EXTRA_DIR's files (under /p9/).
guest_initrd() {
  local out=$1 extra=${2:-} stage
  stage=$(mktemp -d "$(_guest_work)/initrd.XXXXXX")
  mkdir -p "$stage/p9"
  cp "$GUEST_SCRIPTS/init" "$stage/init"
  cp "$GUEST_SCRIPTS"/*.sh "$stage/p9/"
  [[ -n $extra ]] && cp -a "$extra/." "$stage/p9/"
  chmod 755 "$stage/init" "$stage"/p9/*.sh
  cp "$GUEST_BASE" "$out"
  (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1) >>"$out"
  rm -rf "$stage"
}

# guest_run LOG INITRD WORD...: boot the guest with the given hlt.KEY=VALUE
# words on the kernel command line; the serial console goes to LOG (with \r
# removed).  Returns 0 if the guest reached "P9GUEST-END", 1 otherwise (QEMU
# failed, the guest hung and was killed after $GUEST_TIMEOUT s, or it died).
# Sets GUEST_WALL (wall seconds) and GUEST_RC (the guest battery's status).
guest_run() {
  local logf=$1 initrd=$2; shift 2
  local cmdline="console=ttyS0 panic=-1 quiet loglevel=3 hlt.msize=$GUEST_MSIZE"
  [[ -n $GUEST_OPTS ]] && cmdline+=" hlt.opts=$GUEST_OPTS"
  cmdline+=" $*"
  (( ${#cmdline} < 2000 )) || _guest_fail "kernel command line too long (${#cmdline} bytes)"
  local t0 t1 rc=0
  : >"$logf"
  t0=$(date +%s.%N)
  # shellcheck disable=SC2086  # GUEST_QEMU_ARGS: a word list
  timeout -k 10 "$GUEST_TIMEOUT" qemu-system-x86_64 -accel tcg -m "$GUEST_MEM" -smp "$GUEST_SMP" $GUEST_QEMU_ARGS \
    -nodefaults -display none -no-reboot -monitor none -serial "file:$logf.raw" \
    -kernel "$GUEST_KERNEL" -initrd "$initrd" -append "$cmdline" \
    -netdev user,id=n0 -device virtio-net-pci,netdev=n0,romfile= \
    </dev/null >"$logf.qemu-stderr" 2>&1 || rc=$?
  tr -d '\r' <"$logf.raw" >"$logf" 2>/dev/null || true
  rm -f "$logf.raw"
  t1=$(date +%s.%N)
  GUEST_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  GUEST_RC=$(sed -n 's/^P9GUEST-END rc=\([0-9]*\).*/\1/p' "$logf" | tail -n1 || true)
  if [[ -z $GUEST_RC ]]; then
    if (( rc == 124 || rc == 137 )); then
      echo "guest timed out after ${GUEST_TIMEOUT}s; last lines of its console:" >&2
    else
      echo "guest ended without P9GUEST-END (qemu status $rc); last lines of its console:" >&2
    fi
    tail -n 25 "$logf" >&2
    cat "$logf.qemu-stderr" >&2 2>/dev/null || true
    return 1
  fi
  return 0
}

# guest_value LOG KEY: the value of the guest's "VALUE KEY value" line.
guest_value() { sed -n "s/^VALUE $2 //p" "$1" | tail -n1 || true; }
# guest_phase LOG NAME: the guest seconds of "PHASE NAME seconds".
guest_phase() { sed -n "s/^PHASE $2 //p" "$1" | tail -n1 || true; }
# guest_step LOG NAME: "ok", "FAIL ...", or "missing".
guest_step() {
  local s
  s=$(grep -E "^STEP $2 (ok|FAIL)" "$1" | tail -n1 | cut -d' ' -f3- || true)
  echo "${s:-missing}"
}
# guest_steps LOG: every STEP line.
guest_steps() { grep -E '^STEP ' "$1" || true; }

# ------------------------------------------------------------------ servers
# Each start_* sets P9_PORT, P9_PID and P9_LOG and registers the server's
# shutdown.  The server runs in the foreground of a background job.

# _p9_wait_port PORT PID: wait (10 s) until PORT accepts TCP connections.
_p9_wait_port() {
  local port=$1 pid=$2 i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

# _p9_stop PID: SIGTERM, wait up to 5 s, SIGKILL; never fails.
_p9_stop() {
  local pid=$1 i
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid" 2>/dev/null || true
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    [[ $(ps -o stat= -p "$pid" 2>/dev/null) == Z* ]] && break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  return 0
}

# start_diod EXPORT [ro]: diod (Debian's 9P2000.L server) as root in the
# foreground on 127.0.0.1:PORT, from a generated config file: no
# authentication, the one export (with opts="ro" for a read-only export: the
# command line's `-o ro` is NOT applied to exports given with -e, diod 1.0.24
# then happily writes), no squashing (allsquash off: the guest's root acts as
# root).  Not -N / userdb = 0: the kernel's first attach is uname "nobody"
# with n_uname -1, which diod without a user database refuses (EPERM, "user
# lookup"); with it, "nobody" is looked up by name (the host needs that user,
# and the export's path must be searchable by it), later attaches by uid (0).
start_diod() {
  local export=$1 mode=${2:-rw} attempt port pid logf conf args exp
  export=$(realpath "$export")
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    logf=$(_guest_work)/diod.$port.log
    conf=$(_guest_work)/diod.$port.conf
    exp="\"$export\""
    [[ $mode == ro ]] && exp="{ path=\"$export\", opts=\"ro\" }"
    printf '%s\n' "listen = { \"127.0.0.1:$port\" }" "exports = { $exp }" \
      "auth_required = 0" "allsquash = 0" >"$conf"
    args=(-f -c "$conf" -L "$logf")
    [[ ${HLOOP_9P_TRACE:-0} == 1 ]] && args+=(-d 1)
    diod "${args[@]}" </dev/null >>"$logf.out" 2>&1 &
    pid=$!
    _guest_on_exit _p9_stop "$pid"
    if _p9_wait_port "$port" "$pid"; then
      P9_PORT=$port P9_PID=$pid P9_LOG=$logf P9_ANAME=$export
      log "diod ($mode) exporting $export on 127.0.0.1:$port (pid $pid)"
      return 0
    fi
    echo "diod on port $port did not come up:" >&2
    cat "$conf" "$logf" "$logf.out" >&2 2>/dev/null || true
    _p9_stop "$pid"
  done
  _guest_fail "could not start diod"
}

# hloop_9p_available: `hloop 9p` exists.  (`hloop 9p --help` alone is not
# enough: CLI11 prints the top-level help and exits 0 for an unknown
# subcommand, so its help must also mention --export.)
hloop_9p_available() {
  [[ -x ${HLOOP:-} ]] && "$HLOOP" 9p --help >/dev/null 2>&1 &&
    grep -q -- '--export' <<<"$("$HLOOP" 9p --help 2>&1)"
}

# start_hloop_9p EXPORT [ro]: `hloop 9p --listen 127.0.0.1:PORT --export DIR`
# (ro: with --read-only; fails if hloop 9p has no such option).
start_hloop_9p() {
  local export=$1 mode=${2:-rw} attempt port pid logf args
  export=$(realpath "$export")
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    logf=$(_guest_work)/hloop9p.$port.log
    args=(9p --listen "127.0.0.1:$port" --export "$export")
    if [[ $mode == ro ]]; then
      grep -q -- '--read-only' <<<"$("$HLOOP" 9p --help 2>&1)" || _guest_fail "hloop 9p has no --read-only option"
      args+=(--read-only)
    fi
    "$HLOOP" "${args[@]}" </dev/null >"$logf" 2>&1 &
    pid=$!
    _guest_on_exit _p9_stop "$pid"
    if _p9_wait_port "$port" "$pid"; then
      P9_PORT=$port P9_PID=$pid P9_LOG=$logf P9_ANAME=$export
      log "hloop 9p ($mode) exporting $export on 127.0.0.1:$port (pid $pid)"
      return 0
    fi
    echo "hloop 9p on port $port did not come up:" >&2
    cat "$logf" >&2 2>/dev/null || true
    _p9_stop "$pid"
  done
  _guest_fail "could not start hloop 9p"
}

# hloop_9p_has_image: `hloop 9p` can export an image's file system (--image).
hloop_9p_has_image() {
  hloop_9p_available && grep -q -- '--image' <<<"$("$HLOOP" 9p --help 2>&1)"
}

# start_hloop_9p_image URL CACHE_DIR: `hloop 9p --listen 127.0.0.1:PORT
# --image URL --cache CACHE_DIR`: the ext2/3/4 file system inside the image,
# read-only. With one export any aname reaches it (P9_ANAME is "image").
start_hloop_9p_image() {
  local url=$1 cache=$2 attempt port pid logf
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    logf=$(_guest_work)/hloop9p-image.$port.log
    "$HLOOP" 9p --listen "127.0.0.1:$port" --image "$url" --cache "$cache" </dev/null >"$logf" 2>&1 &
    pid=$!
    _guest_on_exit _p9_stop "$pid"
    # The port opens only once the index and the file system's superblock
    # are read: allow for that.
    if _p9_wait_port "$port" "$pid"; then
      P9_PORT=$port P9_PID=$pid P9_LOG=$logf P9_ANAME=image
      log "hloop 9p exporting the file system of $url on 127.0.0.1:$port (pid $pid)"
      return 0
    fi
    echo "hloop 9p --image on port $port did not come up:" >&2
    cat "$logf" >&2 2>/dev/null || true
    _p9_stop "$pid"
    # Only a port taken meanwhile is worth another try.
    grep -q "in use" "$logf" 2>/dev/null || break
  done
  _guest_fail "could not start hloop 9p --image $url"
}

# start_9p_server KIND EXPORT [ro]: KIND is diod or hloop.
start_9p_server() {
  case $1 in
    diod) start_diod "$2" "${3:-rw}" ;;
    hloop) start_hloop_9p "$2" "${3:-rw}" ;;
    *) _guest_fail "unknown 9P server kind '$1' (diod or hloop)" ;;
  esac
}

# ---------------------------------------------------------- export contents
# Fixed names the battery (tests/p9_guest/battery.sh) relies on.
P9_BIG_READ_BYTES=$((40 * 1024 * 1024))   # big40.bin, read by the guest
P9_HELLO_TEXT='hello from the host, through 9P'

# p9_prepare_rw_export DIR: hello.txt and big40.bin (random); sets
# P9_HELLO_SHA and P9_BIG_SHA.  The guest works in DIR/w, which must not exist.
p9_prepare_rw_export() {
  local d=$1
  mkdir -p "$d"
  printf '%s\n' "$P9_HELLO_TEXT" >"$d/hello.txt"
  head -c "$P9_BIG_READ_BYTES" /dev/urandom >"$d/big40.bin"
  P9_HELLO_SHA=$(sha256sum "$d/hello.txt" | cut -d' ' -f1)
  P9_BIG_SHA=$(sha256sum "$d/big40.bin" | cut -d' ' -f1)
}

# p9_battery_words KIND: sets P9_WORDS, the kernel command line words for a
# battery (rw: battery.sh, image: image.sh) against the server started last.
p9_battery_words() {
  P9_WORDS=("hlt.port=$P9_PORT" "hlt.aname=$P9_ANAME" "hlt.battery=$1")
  [[ $1 == rw ]] && P9_WORDS+=("hlt.hellosha=$P9_HELLO_SHA" "hlt.bigsha=$P9_BIG_SHA" "hlt.bigsize=$P9_BIG_READ_BYTES")
  [[ ${HLOOP_9P_TRACE:-0} == 1 ]] && P9_WORDS+=(hlt.trace=1)
  return 0
}
