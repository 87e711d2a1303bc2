#!/usr/bin/env bash
# Internet-boot benchmark (issue 13): a whole machine boots its root file
# system from a web server through the hloop initramfs (dist/initramfs/:
# boot=hloop hloop.url=CHANNEL), timed in guest seconds to the
# HLOOP-BOOT-FINISHED marker of the test image (tests/vm/: Debian bookworm
# minbase, 1 GiB ext4, hloop-vm-guest.service after multi-user.target), beside
# the same image booted from a local disk. Rows:
#   local            the raw image as a virtio disk (-snapshot), the host's
#                    Debian initramfs /boot/initrd.img-KVER, root=/dev/vda
#   local-list       the same disk, but the small MODULES=list initramfs the
#                    netboot rows use (the hook is inert without boot=hloop):
#                    separates the initramfs's own cost from the network's
#   cold             boot=hloop through hloop-wanem --rtt RTT in front of
#                    nginx (the guest reaches the host's 127.0.0.1 as
#                    10.0.2.2), tmpfs cache and overlay (the defaults),
#                    hloop.profile=none
#   profile          the same with the boot profile: recorded on the host by
#                    an untimed boot of the image through
#                    `hloop nbd --record-profile` (the daemon in the guest
#                    never exits, so it cannot write one), published as
#                    NAME.profile beside the index, found there by default
# The image is a signed channel (hloop key generate / pack / publish); the
# initramfs trusts the key. Every boot: qemu-system-x86_64 -accel tcg -m 1024
# -device virtio-rng-pci -kernel /boot/vmlinuz-KVER -initrd INITRD, a fresh
# hloop-wanem per network boot (its bytes_server_to_client is "bytes
# fetched"), the page cache dropped before each boot.
#
# Also measured: the hloop daemon's RSS in the guest after the boot
# (HLOOP-DAEMON's third field), and the initramfs size the hook adds:
# mkinitramfs with the Debian default configuration (a copy of
# /etc/initramfs-tools: MODULES=most, COMPRESS=zstd) with and without
# hooks/hloop + scripts/hloop.
#
# It measures; it never fails on a missed goal. Goals (issue 13):
#   0 ms cold <= 1.05x local; 100 ms cold <= 1.5x; 100 ms profile <= 1.15x;
#   daemon RSS <= 64 MiB; initramfs growth <= 8 MiB.
#
# Environment (see also lib.sh and bench/README.md):
#   HLOOP, BENCH_CACHE, BENCH_KEEP=1, BENCH_WAIT_IDLE
#   BENCH_REPEAT         boots per row (default 3; the table shows the median)
#   BENCH_ROWS           subset of "local local-list cold profile"
#                        (default "local cold profile")
#   BENCH_RTTS           RTTs of the cold rows (default "0 100")
#   BENCH_PROFILE_RTTS   RTTs of the profile rows (default "100 0")
#   BENCH_NETBOOT_SIZES  1 (default): build the MODULES=most initramfs pair
#                        and report the growth; 0: skip it
#   BENCH_BOOT_TIMEOUT   wall seconds allowed per boot (default 300)
#   BENCH_OTHER_MAX      a boot during which processes other than this
#                        benchmark's used more than this % of the CPUs
#                        (default 10) is listed as "disturbed"; the row is
#                        booted again up to BENCH_RETRY_DISTURBED times
#                        (default 0); medians use the clean boots when any
#   BENCH_APPEND         extra kernel command line for every boot
#   BENCH_QEMU_ARGS      extra QEMU arguments for every boot (words)
#   BENCH_VARIANT_ROWS   extra rows, ROW:RTT[:K] words (ROW cold or profile),
#                        booted with the K-th (default 1st) of the '|'-separated
#                        BENCH_VARIANT_APPEND added to the kernel command
#                        line, e.g. "cold:100 cold:100:2" and
#                        "hloop.args=--readahead=0|hloop.cache=tmpfs,size=50%"
#   BENCH_STOP_AT        a time (date -d): no boot starts after it (the
#                        report says which were skipped); default none
#   BENCH_IP             the network rows' ip= (default dhcp; e.g. a static
#                        10.0.2.15::10.0.2.2:255.255.255.0::ens4:off)
# The whole script is one compound command: bash parses it before running
# it, so editing the file during a run cannot break the run.
{
set -euo pipefail
. "$(dirname "$0")/lib.sh"

need_root
need_hloop
need_cmd qemu-system-x86_64 qemu-system-x86
need_cmd mkinitramfs initramfs-tools
need_cmd lsinitramfs initramfs-tools
need_cmd curl curl
WANEM=${HLOOP_WANEM:-$(dirname "$HLOOP")/tools/wanem/hloop-wanem}
[ -x "$WANEM" ] || die "hloop-wanem not found at $WANEM (build target hloop-wanem)"
REPEAT=${BENCH_REPEAT:-3}
ROWS=${BENCH_ROWS:-local cold profile}
RTTS=${BENCH_RTTS:-0 100}
PROFILE_RTTS=${BENCH_PROFILE_RTTS:-100 0}
SIZES=${BENCH_NETBOOT_SIZES:-1}
TMO=${BENCH_BOOT_TIMEOUT:-300}
IPARG=${BENCH_IP:-dhcp}
STOP_AT=''
[ -z "${BENCH_STOP_AT:-}" ] || STOP_AT=$(date -d "$BENCH_STOP_AT" +%s) || die "BENCH_STOP_AT: not a time"
VARIANT_ROWS=${BENCH_VARIANT_ROWS:-}
VARIANT_APPEND=${BENCH_VARIANT_APPEND:-}
[ -z "$VARIANT_ROWS" ] || [ -n "$VARIANT_APPEND" ] || die "BENCH_VARIANT_ROWS needs BENCH_VARIANT_APPEND"
# variant ROW:RTT[:K] -> V_ROW V_RTT V_K V_APPEND
variant() {
    IFS=: read -r V_ROW V_RTT V_K <<<"$1"
    V_K=${V_K:-1}
    V_APPEND=$(awk -v k="$V_K" -F'|' '{ print $k }' <<<"$VARIANT_APPEND")
    [ -n "$V_APPEND" ] || die "BENCH_VARIANT_APPEND has no variant $V_K (for $1)"
}
OTHER_MAX=${BENCH_OTHER_MAX:-10}
RETRY=${BENCH_RETRY_DISTURBED:-0}
has_row() { [[ " $ROWS " == *" $1 "* ]]; }

make_workdir netboot
snapshot_hloop
cp "$WANEM" "$W/hloop-wanem"
WANEM=$W/hloop-wanem
RESULTS=$BENCH_CACHE/results
mkdir -p "$RESULTS"
REPORT=$RESULTS/netboot-$(date +%Y%m%d-%H%M%S).txt
export TMPDIR=$W/tmp   # QEMU's -snapshot overlay
mkdir -p "$TMPDIR"
T_RUN0=$SECONDS

# --- the image: tests/vm's, copied (another test may rebuild the cached one) --
SRC_IMG=$(bash "$REPO_DIR/tests/vm/make_debian_image.sh") || die "tests/vm/make_debian_image.sh failed"
IMAGE=$W/debian.img
cp --sparse=always "$SRC_IMG" "$IMAGE"
IMG_BYTES=$(stat -c %s "$IMAGE")
IMG_USED=$(du -B1 "$IMAGE" | cut -f1)
KVER=$(find /boot -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sed 's/^vmlinuz-//' | sort -V | tail -1)
KERNEL=/boot/vmlinuz-$KVER
DEBIAN_INITRD=/boot/initrd.img-$KVER
[ -f "$KERNEL" ] && [ -f "$DEBIAN_INITRD" ] && [ -d "/lib/modules/$KVER" ] || die "no kernel, initramfs or modules for $KVER in /boot"
# A copy: another test's dpkg -i / -r of a hloop package rebuilds the file
# in /boot (with or without the hook) while this runs.
cp "$DEBIAN_INITRD" "$W/initrd-debian.img"
DEBIAN_INITRD=$W/initrd-debian.img
lsinitramfs "$DEBIAN_INITRD" | grep -qx usr/bin/hloop && log "note: /boot/initrd.img-$KVER holds hloop (a package is installed)"
log "image $SRC_IMG ($IMG_BYTES bytes, $IMG_USED allocated), kernel $KVER"

# --- keys, the stripped hloop for the initramfs --------------------------------
KEYS=$W/keys
mkdir -p "$KEYS/trusted"
"$HLOOP" key generate "$KEYS/k1" >/dev/null
cp "$KEYS/k1.pub" "$KEYS/trusted/"
HLOOP_STRIPPED=$W/hloop-stripped
strip -o "$HLOOP_STRIPPED" "$HLOOP"

# The hook and script go where the package installs them,
# /usr/share/initramfs-tools/{hooks,scripts}, not into the -d CONFDIR: hooks
# there run after Debian's own, and busybox's (zz-busybox) would then have
# put its losetup at /usr/sbin/losetup first (copy_exec keeps the first
# copy), which lacks the --show the boot script needs. So mkinitramfs runs in a
# private mount namespace where those two directories are replaced by copies
# with (or, for the size comparison, without) hloop's files. This also keeps
# out a hloop package that another test may have installed meanwhile; the
# host's view is not changed.
SHARE=/usr/share/initramfs-tools
SHARE_PLAIN=$W/share-plain
SHARE_HLOOP=$W/share-hloop
mkdir -p "$SHARE_PLAIN"
cp -a "$SHARE/hooks" "$SHARE/scripts" "$SHARE_PLAIN/"
rm -f "$SHARE_PLAIN/hooks/hloop" "$SHARE_PLAIN/scripts/hloop"
cp -a "$SHARE_PLAIN" "$SHARE_HLOOP"
install -m 755 "$REPO_DIR/dist/initramfs/hook" "$SHARE_HLOOP/hooks/hloop"
install -m 644 "$REPO_DIR/dist/initramfs/script" "$SHARE_HLOOP/scripts/hloop"

# build_initrd OUT CONFDIR SHAREDIR: mkinitramfs -d CONFDIR -o OUT with
# SHAREDIR's hooks and scripts; OUT.list is its listing
build_initrd() {
    local out=$1 conf=$2 share=$3
    HLOOP_BIN=$HLOOP_STRIPPED HLOOP_TRUSTED_DIR=$KEYS/trusted \
        unshare -m --propagation private sh -c '
            mount --bind "$1/hooks" '"$SHARE"'/hooks && mount --bind "$1/scripts" '"$SHARE"'/scripts &&
            exec mkinitramfs -d "$2" -o "$3" "$4"' sh "$share" "$conf" "$out" "$KVER" >"$out.log" 2>&1 ||
        { tail -20 "$out.log" >&2; die "mkinitramfs -d $conf failed"; }
    lsinitramfs "$out" >"$out.list"
}
check_hook_in() { # LISTFILE WHAT
    local f
    for f in usr/bin/hloop scripts/hloop etc/hloop/trusted.d/k1.pub; do
        grep -qx "$f" "$1" || die "$2: lsinitramfs shows no $f"
    done
    # util-linux's losetup, not busybox's applet (a symlink to busybox)
    lsinitramfs -l "${1%.list}" | grep -E '^-.* usr/sbin/losetup$' >/dev/null ||
        die "$2: usr/sbin/losetup is not util-linux's (a link to busybox?)"
}

# 1. The initramfs the timed network boots use: the MODULES=list configuration
# of tests/test_netboot.sh (small, quick to unpack) plus the hook.
CONF_LIST=$W/conf-list
mkdir -p "$CONF_LIST/conf.d"
printf 'MODULES=list\nBUSYBOX=y\nCOMPRESS=zstd\nCOMPRESSLEVEL=1\n' >"$CONF_LIST/initramfs.conf"
printf '%s\n' virtio_pci virtio_net virtio_blk virtio_rng >"$CONF_LIST/modules"
INITRD_LIST=$W/initrd-list.img
log "mkinitramfs (MODULES=list, with the hook) for the timed boots"
build_initrd "$INITRD_LIST" "$CONF_LIST" "$SHARE_HLOOP"
check_hook_in "$INITRD_LIST.list" "the MODULES=list initramfs"
LIST_BYTES=$(stat -c %s "$INITRD_LIST")
DEBIAN_INITRD_BYTES=$(stat -c %s "$DEBIAN_INITRD")

# 2. The growth: the Debian default configuration with and without the hook.
SIZE_NOTE="not measured (BENCH_NETBOOT_SIZES=0)"
MOST_WITH='' MOST_WITHOUT='' GROWTH=''
if [ "$SIZES" = 1 ]; then
    CONF_PLAIN=$W/conf-default
    cp -a /etc/initramfs-tools "$CONF_PLAIN"
    rm -f "$CONF_PLAIN/hooks/hloop" "$CONF_PLAIN/scripts/hloop"
    log "mkinitramfs with /etc/initramfs-tools' configuration ($(grep -E '^(MODULES|COMPRESS)' "$CONF_PLAIN/initramfs.conf" | tr '\n' ' ')), without and with the hook"
    build_initrd "$W/initrd-most.img" "$CONF_PLAIN" "$SHARE_PLAIN"
    build_initrd "$W/initrd-most-hloop.img" "$CONF_PLAIN" "$SHARE_HLOOP"
    check_hook_in "$W/initrd-most-hloop.img.list" "the MODULES=most initramfs with the hook"
    if grep -Eqx 'usr/bin/hloop|scripts/hloop' "$W/initrd-most.img.list"; then
        die "the initramfs without the hook holds hloop's files"
    fi
    MOST_WITHOUT=$(stat -c %s "$W/initrd-most.img")
    MOST_WITH=$(stat -c %s "$W/initrd-most-hloop.img")
    GROWTH=$((MOST_WITH - MOST_WITHOUT))
    files_without=$(wc -l <"$W/initrd-most.img.list")
    files_with=$(wc -l <"$W/initrd-most-hloop.img.list")
    # what the hook added, largest first (uncompressed, from the listing)
    comm -13 <(sort "$W/initrd-most.img.list") <(sort "$W/initrd-most-hloop.img.list") >"$W/added.list"
    SIZE_NOTE="without $MOST_WITHOUT B ($files_without files), with $MOST_WITH B ($files_with files): +$GROWTH B ($(awk -v g="$GROWTH" 'BEGIN { printf "%.2f", g / 1048576 }') MiB compressed)"
    log "initramfs growth: $SIZE_NOTE"
fi

# --- the store: pack, sign, publish; nginx ------------------------------------
WWW=$W/www
NAME=debian
log "packing the image"
"$HLOOP" pack "$IMAGE" "$WWW" --name "$NAME" --json >"$W/pack.json" 2>"$W/pack.err" ||
    { cat "$W/pack.err" >&2; die "hloop pack failed"; }
IDX=$(cd "$WWW" && find . -name "$NAME.idx" -print -quit | sed 's|^\./||')
[ -n "$IDX" ] || die "no $NAME.idx under $WWW"
"$HLOOP" publish "$WWW" --channel "$NAME" --index "$IDX" --key "$KEYS/k1" >/dev/null || die "hloop publish failed"
STORE_BYTES=$(du -sb "$WWW" | cut -f1)
PROFILE_PUB=$WWW/${IDX%.idx}.profile
start_nginx "$WWW" "$W/nginx"

# --- processes and CPU accounting (as bench/boot.sh) ---------------------------
QEMU_PID='' WAN_PID='' NBD_PID=''
stop_all() {
    stop_pid "$QEMU_PID" 5; QEMU_PID=
    stop_pid "$NBD_PID" 5; NBD_PID=
    stop_pid "$WAN_PID" 5; WAN_PID=
}
on_exit stop_all

cpu_jiffies() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat; }
ours_jiffies() {
    local p t=0 v
    for p in $QEMU_PID $NBD_PID $WAN_PID $NGINX_PID $(pgrep -P "$NGINX_PID" 2>/dev/null); do
        v=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null) || continue
        t=$((t + ${v:-0}))
    done
    echo "$t"
}
others_since() {
    awk -v a="$1" -v b="$(cpu_jiffies)" -v o0="$2" -v o1="$(ours_jiffies)" 'BEGIN { split(a, x, " "); split(b, y, " ")
        busy = y[1] - x[1] - (o1 - o0); all = y[1] - x[1] + y[2] - x[2]
        if (busy < 0) busy = 0
        printf "%.0f", all ? 100 * busy / all : 0 }'
}

# start_wan NAME RTT -> WAN_PORT
start_wan() {
    local name=$1 rtt=$2 i addr=''
    "$WANEM" --listen 127.0.0.1:0 --connect "127.0.0.1:$NGINX_PORT" --rtt "$rtt" \
        --stats-file "$W/$name.wan.json" >"$W/$name.wan.out" 2>"$W/$name.wan.err" &
    WAN_PID=$!
    for ((i = 0; i < 100; i++)); do
        addr=$(sed -n 's/^listening on //p' "$W/$name.wan.out" 2>/dev/null || true)
        [ -n "$addr" ] && break
        kill -0 "$WAN_PID" 2>/dev/null || break
        sleep 0.05
    done
    [ -n "$addr" ] || { cat "$W/$name.wan.err" >&2; die "hloop-wanem did not start"; }
    WAN_PORT=${addr##*:}
}
stop_wan() { # NAME -> WAN_BYTES
    stop_pid "$WAN_PID" 10; WAN_PID=
    WAN_BYTES=$(grep -o '"bytes_server_to_client": *[0-9]*' "$W/$1.wan.json" 2>/dev/null | grep -o '[0-9]*$' || echo '?')
}

# ktime LOG REGEX -> the guest time of the first kernel message matching REGEX
ktime() {
    grep -a -E "^\[ *[0-9]+\.[0-9]+\] .*($2)" "$1" | head -1 | sed -E 's/^\[ *([0-9.]+)\].*/\1/' || true
}

# tstime LOG.ts REGEX -> guest-equivalent seconds of the first line matching
tstime() {
    awk -v re="$2" '!z && / \[ *0\.0+\] / { z = $1; seen = 1 }
        seen && $0 ~ re { printf "%.1f", $1 - z; exit }' "$1" 2>/dev/null || true
}

# boot NAME INITRD APPEND QEMU-ARGS...: sets GUEST_S (or timeout/failed),
# WALL_S, RUNINIT_S (kernel done: /init started), LOOP_S (the loop device on
# the hloop mount appeared), ROOT_S (root ext4 mounted), RSS_KB, OTHER_PCT
boot() {
    local name=$1 initrd=$2 append=$3 log=$W/$1.serial t0 t_end line stat0 ours0 i
    shift 3
    GUEST_S=failed WALL_S=- RUNINIT_S=- LOOP_S=- ROOT_S=- RSS_KB=- OTHER_PCT=- NET_S= MOUNTING_S=
    : >"$log"
    stat0=$(cpu_jiffies)
    ours0=$(ours_jiffies)
    t0=$(now)
    # The serial console goes to LOG, and through stdout to a host-side
    # timestamper (LOG.ts: host seconds since the start of QEMU, each line):
    # the initramfs's own messages carry no kernel timestamp. Under TCG the
    # guest clock follows the host's.
    qemu-system-x86_64 -accel tcg -m 1024 -display none -monitor none -no-reboot \
        -chardev "stdio,id=s0,signal=off,logfile=$log" -serial chardev:s0 \
        -device virtio-rng-pci -kernel "$KERNEL" -initrd "$initrd" \
        -append "console=ttyS0 rw $append${BENCH_APPEND:+ $BENCH_APPEND}" "$@" ${BENCH_QEMU_ARGS:-} \
        2>"$W/$name.qemu.out" </dev/null \
        > >(perl -MTime::HiRes=time -e '$| = 1; my $t0 = time; while (<STDIN>) { tr/\r//d; printf "%8.3f %s", time - $t0, $_ }' >"$log.ts") &
    QEMU_PID=$!
    t_end=$((SECONDS + TMO))
    line=''
    while :; do
        line=$(grep -a -o 'HLOOP-BOOT-FINISHED [0-9.]*' "$log" | head -1 || true)
        if [ -n "$line" ]; then
            WALL_S=$(elapsed "$t0" "$(now)")
            OTHER_PCT=$(others_since "$stat0" "$ours0")
            break
        fi
        if ! kill -0 "$QEMU_PID" 2>/dev/null; then
            log "$name: QEMU exited without the marker"; tail -5 "$W/$name.qemu.out" >&2; break
        fi
        if grep -aq '^(initramfs)' "$log"; then
            log "$name: the initramfs shell: the boot failed"; tail -30 "$log" >&2; break
        fi
        if [ "$SECONDS" -ge "$t_end" ]; then
            GUEST_S=timeout; log "$name: no marker after $TMO s"; break
        fi
        sleep 0.1
    done
    if [ -n "$line" ]; then
        GUEST_S=${line#* }
        for ((i = 0; i < 300; i++)); do   # it powers off by itself
            kill -0 "$QEMU_PID" 2>/dev/null || break
            sleep 0.1
        done
    fi
    stop_pid "$QEMU_PID" 5; QEMU_PID=
    RUNINIT_S=$(ktime "$log" 'Run /init as init process')
    LOOP_S=$(ktime "$log" 'loop0: detected capacity change')
    ROOT_S=$(ktime "$log" 'EXT4-fs \((vda|loop0)\): mounted')
    RUNINIT_S=${RUNINIT_S:--} LOOP_S=${LOOP_S:--} ROOT_S=${ROOT_S:--}
    # from LOG.ts, as guest seconds (host time minus that of the kernel's
    # first message): DHCP done, `hloop mount` started
    NET_S=$(tstime "$log.ts" 'IP-Config: .* complete')
    MOUNTING_S=$(tstime "$log.ts" 'hloop: mounting ')
    local d
    # HLOOP-DAEMON PID ARGV0 RSS_KB (not always at the start of a line: the
    # getty's login prompt may come first)
    d=$(grep -a -o 'HLOOP-DAEMON [0-9]* [^ ]* [0-9]*' "$log" | head -1 || true)
    [ -n "$d" ] && RSS_KB=$(awk '{ print ($4 == "" ? "-" : $4) }' <<<"$d")
    [ "${GUEST_S}" = failed ] || [ "${GUEST_S}" = timeout ] || return 0
    return 0
}

RUNS=$W/runs.tsv
: >"$RUNS"
LAST_DISTURBED=0
# record ROW RTT N BYTES NOTE
record() {
    local state=clean
    LAST_DISTURBED=0
    if [[ $OTHER_PCT =~ ^[0-9]+$ ]] && [ "$OTHER_PCT" -gt "$OTHER_MAX" ]; then state=disturbed LAST_DISTURBED=1; fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$GUEST_S" "$WALL_S" \
        "$RUNINIT_S" "$LOOP_S" "$ROOT_S" "$4" "$RSS_KB" "$OTHER_PCT" "$state" "${NET_S:--}" "${MOUNTING_S:--}" "${5:--}" >>"$RUNS"
    log "$1$([ "$2" = - ] || echo " @ $2 ms") #$3: guest $GUEST_S s (kernel done $RUNINIT_S, DHCP done ${NET_S:--}, hloop mount started ${MOUNTING_S:--}, loop $LOOP_S, root $ROOT_S), wall $WALL_S s, fetched $4 B, daemon RSS $RSS_KB kB, others $OTHER_PCT % ($state)${5:+, $5}"
}

NETDEV=(-netdev user,id=n0 -device virtio-net-pci,netdev=n0,romfile=)
CHANNEL_REL=$NAME.channel

row_local() { # N
    wait_idle
    drop_caches
    boot "local.$1" "$DEBIAN_INITRD" "root=/dev/vda" -drive "file=$IMAGE,format=raw,if=virtio" -snapshot
    record local - "$1" 0
}
row_local_list() { # N
    wait_idle
    drop_caches
    boot "local-list.$1" "$INITRD_LIST" "root=/dev/vda" -drive "file=$IMAGE,format=raw,if=virtio" -snapshot
    record local-list - "$1" 0
}
# row_net ROW RTT N [MORE KERNEL COMMAND LINE]: ROW cold, profile, or
# cold+vK / profile+vK (variant K: the K-th BENCH_VARIANT_APPEND added)
row_net() {
    local row=$1 rtt=$2 n=$3 name=$1.$2.$3 prof=hloop.profile=none more=${4:-}
    [ "${row%+v*}" = profile ] && prof=''
    wait_idle
    drop_caches
    start_wan "$name" "$rtt"
    boot "$name" "$INITRD_LIST" "boot=hloop ip=$IPARG hloop.url=http://10.0.2.2:$WAN_PORT/$CHANNEL_REL${prof:+ $prof}${more:+ $more}" \
        "${NETDEV[@]}"
    stop_wan "$name"
    record "$row" "$rtt" "$n" "$WAN_BYTES"
}

# The profile, recorded on the host: QEMU boots the image as a local disk
# would (Debian initramfs, root=/dev/vda) from `hloop nbd --record-profile`
# of the channel, straight from nginx; written when hloop nbd exits.
record_profile() {
    local name=record-profile sock=$W/record.sock i prof=$W/recorded.profile
    drop_caches
    rm -rf "$W/nbd-cache"; mkdir -p "$W/nbd-cache"
    rm -f "$sock" "$prof"
    "$HLOOP" nbd "http://127.0.0.1:$NGINX_PORT/$CHANNEL_REL" --socket "$sock" --cache "$W/nbd-cache" \
        --trust-dir "$KEYS/trusted" --no-profile --record-profile "$prof" --log "$W/$name.daemon.log" \
        >"$W/$name.nbd.out" 2>&1 &
    NBD_PID=$!
    for ((i = 0; i < 600; i++)); do
        [ -S "$sock" ] && grep -q '^serving' "$W/$name.nbd.out" 2>/dev/null && break
        kill -0 "$NBD_PID" 2>/dev/null || break
        sleep 0.05
    done
    [ -S "$sock" ] || { cat "$W/$name.nbd.out" "$W/$name.daemon.log" >&2 2>/dev/null; die "hloop nbd did not start"; }
    boot "$name" "$DEBIAN_INITRD" "root=/dev/vda" -drive "file=nbd+unix:///?socket=$sock,format=raw,if=virtio" -snapshot
    stop_pid "$NBD_PID" 30; NBD_PID=
    record profile-record - 1 "$(du -sb "$W/nbd-cache" | cut -f1)" "hloop nbd cache bytes in the fetched column"
    [ -s "$prof" ] || die "hloop nbd wrote no profile to $prof"
    cp "$prof" "$PROFILE_PUB"
    # Version 2 (issue 14): "MS OFFSET LENGTH" lines, 4 KiB blocks; version 1: "MS CHUNK".
    PROFILE_NOTE="$(awk 'NR > 1 && !/^#/ && NF == 2 { c++ }
        NR > 1 && !/^#/ && NF == 3 { r++; b += int(($3 + 4095) / 4096) }
        END { if (c) printf "%d chunks", c; else printf "%d ranges of %d 4 KiB blocks", r, b }' "$prof"), $(stat -c %s "$prof") B"
    cp "$prof" "$RESULTS/$(basename "$REPORT" .txt).profile"
    log "profile: $PROFILE_NOTE, published as ${PROFILE_PUB#$WWW/}"
}

# run_row FUNCTION ARGS...: again (up to BENCH_RETRY_DISTURBED times) when disturbed;
# nothing once BENCH_STOP_AT has passed
STOPPED=''
run_row() {
    local a
    if [ -n "$STOP_AT" ] && [ "$(date +%s)" -ge "$STOP_AT" ]; then
        if [ -z "$STOPPED" ]; then
            log "BENCH_STOP_AT ($BENCH_STOP_AT) has passed: no more boots"
            STOPPED="skipped after BENCH_STOP_AT=$BENCH_STOP_AT: boot $n of $*, and the rest"
        fi
        return 0
    fi
    for ((a = 0; a <= RETRY; a++)); do
        "$@"
        [ "$LAST_DISTURBED" = 0 ] && return 0
        [ "$a" -lt "$RETRY" ] && log "other processes used $OTHER_PCT % of the CPUs during that boot: booting it again"
    done
    return 0
}

PROFILE_NOTE='not recorded'
T_BOOT0=$SECONDS
has_row profile && record_profile
for ((n = 1; n <= REPEAT; n++)); do
    has_row local && run_row row_local "$n"
    has_row local-list && run_row row_local_list "$n"
    if has_row cold; then for rtt in $RTTS; do run_row row_net cold "$rtt" "$n"; done; fi
    if has_row profile; then for rtt in $PROFILE_RTTS; do run_row row_net profile "$rtt" "$n"; done; fi
    for v in $VARIANT_ROWS; do
        variant "$v"
        run_row row_net "$V_ROW+v$V_K" "$V_RTT" "$n" "$V_APPEND"
    done
done
T_BOOT1=$SECONDS

# --- report ---------------------------------------------------------------------
# median ROW RTT -> the median boot's TSV line (clean boots when there are any)
median() {
    local sel
    sel=$(awk -F'\t' -v r="$1" -v t="$2" '$1 == r && $2 == t && $12 == "clean"' "$RUNS")
    [ -n "$sel" ] || sel=$(awk -F'\t' -v r="$1" -v t="$2" '$1 == r && $2 == t' "$RUNS")
    [ -n "$sel" ] || return 0
    echo "$sel" | awk -F'\t' 'BEGIN { OFS = "\t" } { k = ($4 ~ /^[0-9.]+$/) ? $4 : 1e9; print k, $0 }' |
        sort -t$'\t' -k1,1g | cut -f2- | awk '{ r[NR] = $0 } END { if (NR) print r[int((NR + 1) / 2)] }'
}
runs_of() { awk -F'\t' -v r="$1" -v t="$2" '$1 == r && $2 == t { printf "%s%s%s", (n++ ? ", " : ""), $4, ($12 == "clean" ? "" : " (disturbed)") }' "$RUNS"; }
num() { [[ $1 =~ ^[0-9.]+$ ]]; }
mb() { num "$1" && awk -v n="$1" 'BEGIN { printf "%.1f", n / 1e6 }' || echo "$1"; }
IFS=$'\t' read -r _ _ _ LOCAL_S _ <<<"$(median local -)" || true
LOCAL_S=${LOCAL_S:-}
RSS_MAX=$(awk -F'\t' '$10 ~ /^[0-9]+$/ && $10 > m { m = $10 } END { print m + 0 }' "$RUNS")
RSS_MED=$(awk -F'\t' '$10 ~ /^[0-9]+$/ { print $10 }' "$RUNS" | sort -n | awk '{ r[NR] = $0 } END { if (NR) print r[int((NR + 1) / 2)] }')
{
    echo "## internet-boot benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo
    machine_info | sed 's/^/    /'
    echo "    qemu: $(qemu-system-x86_64 --version | head -1)"
    echo "    image: $SRC_IMG, $IMG_BYTES bytes, $IMG_USED allocated; store $STORE_BYTES bytes; pack: $(tr -d '\n' <"$W/pack.json")"
    echo "    kernel: $KERNEL"
    echo "    local: -initrd $DEBIAN_INITRD ($DEBIAN_INITRD_BYTES B) -append 'console=ttyS0 rw root=/dev/vda' -drive file=IMG,format=raw,if=virtio -snapshot"
    echo "    network rows: -initrd (mkinitramfs MODULES=list virtio_pci virtio_net virtio_blk virtio_rng, zstd -1, + dist/initramfs hook and script: $LIST_BYTES B)"
    echo "      -netdev user -device virtio-net-pci -append 'console=ttyS0 rw boot=hloop ip=$IPARG hloop.url=http://10.0.2.2:WAN/$CHANNEL_REL [hloop.profile=none]'"
    echo "      tmpfs cache and overlay (the defaults); a fresh hloop-wanem --rtt RTT in front of nginx $(nginx -v 2>&1 | sed 's|.*/||') per boot"
    echo "    every boot: qemu-system-x86_64 -accel tcg -m 1024 -device virtio-rng-pci -kernel /boot/vmlinuz-$KVER; page cache dropped before"
    echo "    profile: recorded on the host by one untimed boot through hloop nbd --record-profile (Debian initramfs, root=/dev/vda): $PROFILE_NOTE; published as ${PROFILE_PUB#$WWW/}"
    [ -z "$STOPPED" ] || echo "    NOT COMPLETE: $STOPPED"
    echo "    boots per row: $REPEAT (median; a boot is disturbed when other processes used > $OTHER_MAX % of the CPUs); boots took $((T_BOOT1 - T_BOOT0)) s, the whole run $((SECONDS - T_RUN0)) s"
    echo
    echo "| row | median guest s | ratio to local | goal | met? | bytes fetched | daemon RSS in the guest | kernel done / DHCP done / hloop mount started / image attached (loop0) / root mounted (guest s) | boots (guest s) |"
    echo "|---|---:|---:|---:|---|---:|---:|---|---|"
    print_row() { # LABEL ROW RTT GOAL
        local m gs bytes rss rinit loop root net mnt r met=- goal=${4:--}
        m=$(median "$2" "$3")
        [ -n "$m" ] || return 0
        IFS=$'\t' read -r _ _ _ gs _ rinit loop root bytes rss _ _ net mnt _ <<<"$m"
        r=n/a
        num "$gs" && num "$LOCAL_S" && r=$(ratio "$gs" "$LOCAL_S")
        if [ "$goal" != - ] && num "$r"; then met=$(ge "${goal%x}" "$r" && echo yes || echo NO); fi
        [ "$goal" = - ] || goal="<= ${goal}x"
        num "$rss" && rss="$(awk -v k="$rss" 'BEGIN { printf "%.1f MiB", k / 1024 }')"
        echo "| $1 | $gs | $r | $goal | $met | $(mb "$bytes") MB | $rss | $rinit / $net / $mnt / $loop / $root | $(runs_of "$2" "$3") |"
    }
    print_row local local - ''
    print_row "local, MODULES=list initramfs" local-list - ''
    for rtt in $RTTS; do
        g=''; [ "$rtt" = 0 ] && g=1.05; [ "$rtt" = 100 ] && g=1.5
        print_row "$rtt ms cold" cold "$rtt" "$g"
    done
    for rtt in $PROFILE_RTTS; do
        g=''; [ "$rtt" = 100 ] && g=1.15
        print_row "$rtt ms profile" profile "$rtt" "$g"
    done
    for v in $VARIANT_ROWS; do
        variant "$v"
        print_row "$V_RTT ms $V_ROW, $V_APPEND" "$V_ROW+v$V_K" "$V_RTT" ''
    done
    echo
    if [ "$RSS_MAX" -gt 0 ]; then
        echo "- daemon RSS in the guest after the boot: median $(awk -v k="$RSS_MED" 'BEGIN { printf "%.1f", k / 1024 }') MiB, max $(awk -v k="$RSS_MAX" 'BEGIN { printf "%.1f", k / 1024 }') MiB; goal <= 64 MiB: $([ "$RSS_MAX" -le 65536 ] && echo met || echo MISSED)"
    else
        echo "- daemon RSS: not measured (no HLOOP-DAEMON line)"
    fi
    if [ -n "$GROWTH" ]; then
        echo "- initramfs growth (mkinitramfs with /etc/initramfs-tools' configuration, MODULES=most, with vs without the hook): $SIZE_NOTE; goal <= 8 MiB: $([ "$GROWTH" -le 8388608 ] && echo met || echo MISSED)"
        echo "  what the hook adds (files): $(tr '\n' ' ' <"$W/added.list" | cut -c1-600)"
    else
        echo "- initramfs growth: $SIZE_NOTE"
    fi
    echo "- Debian initramfs ($DEBIAN_INITRD): $DEBIAN_INITRD_BYTES B; the timed MODULES=list one with the hook: $LIST_BYTES B; the stripped hloop binary: $(stat -c %s "$HLOOP_STRIPPED") B (unstripped $(stat -c %s "$HLOOP") B)"
    echo
    echo "All boots (row, RTT ms, n, guest s, wall s, kernel done, loop device, root mounted, bytes fetched, daemon RSS kB, % CPU used by other processes, clean/disturbed, DHCP done, hloop mount started, note):"
    echo
    echo '```'
    cat "$RUNS"
    echo '```'
} | tee "$REPORT"
log "report saved to $REPORT"
exit 0
}
