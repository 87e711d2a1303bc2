#!/usr/bin/env bash
# Profile-guided relayout (issue 14): `hloop relayout` packs the blocks a
# recorded "boot" read into a few hot chunk files and writes a new index of
# the same image.
#  1. an ext4 image with many small files (copied from /usr/share) between
#     big random and zero files is packed; a FUSE mount with
#     --record-profile reads a scattered subset of the small files through a
#     loop device: the profile;
#  2. relayout: the new index reads back bit-identical through `hloop cat`,
#     FUSE and NBD; `e2fsck -fn` is clean on a loop device over it; the files
#     read back right;
#  3. cold replay (fresh caches, nginx's access log counts the bytes sent):
#     the same reads fetch fewer bytes and chunk files from the relaid-out
#     index than from the original, as relayout's own estimate says;
#  4. a GPT disk with two partitions, ext4 in the second, relaid out with a
#     profile of reads in the second partition, reads back identical;
#  5. `pack --layout-from`: a second version (some files changed) keeps the
#     profile's reads in hot chunks (the profile's ranges read on a fresh
#     cache touch about as few chunk files as on the relayout, far fewer than
#     on a plain pack of that version; `hloop info --profile` agrees) and
#     shares the hot chunks of unchanged blocks;
#  6. `commit` over the relaid-out base keeps the layout;
#  7. errors: garbage, another format, a missing profile, --layout-from an
#     index without a layout, a --name clash: a message, a nonzero exit,
#     nothing written.
source "$(dirname "$0")/lib.sh"
requires_root
requires_fuse
requires jq curl e2fsck mkfs.ext4 sfdisk losetup nbdcopy nginx awk

CS=262144
MIB=$((1024 * 1024))
STORE=$TMP/store

# ---------------------------------------------------------------- the image
# d00..d11 each hold a twelfth of /usr/share/perl5 and /usr/share/zoneinfo
# (small files) next to a big random file and a file of zeros, so the small
# files of a "boot" lie scattered over the whole image.
TREE=$TMP/tree
mkdir -p "$TREE"
(cd /usr/share && find perl5 zoneinfo -type f | LC_ALL=C sort) >"$TMP/srcfiles"
nsrc=$(wc -l <"$TMP/srcfiles")
((nsrc >= 600)) || fail "only $nsrc files in /usr/share/perl5 and /usr/share/zoneinfo (perl-modules and tzdata are part of Debian)"
for k in $(seq -w 0 11); do
  mkdir -p "$TREE/d$k"
  awk -v k=$((10#$k)) 'NR % 12 == k' "$TMP/srcfiles" | (cd /usr/share && xargs cp --parents -t "$TREE/d$k")
  random_file "$TREE/d$k/random.bin" $((MIB + 10#$k * 98765))
  head -c $((MIB / 2 + 10#$k * 4096)) /dev/zero >"$TREE/d$k/zeros.bin"
done
# The "boot": every fourth small file of each directory, and the first 64 KiB
# of three random files.
(cd "$TREE" && find . -type f ! -name '*.bin' | LC_ALL=C sort | awk 'NR % 4 == 1') >"$TMP/bootfiles"
printf '%s\n' ./d02/random.bin ./d07/random.bin ./d11/random.bin >"$TMP/bootheads"
log "tree: $(find "$TREE" -type f | wc -l) files, $(du -sm "$TREE" | cut -f1) MiB; the boot reads $(wc -l <"$TMP/bootfiles") files"
IMG=$TMP/disk.img
make_ext4_image "$TREE" "$IMG" $((96 * MIB + 1536))
IMG_SHA=$(sha "$IMG")
"$HLOOP" pack "$IMG" "$STORE" --name disk -q || fail "hloop pack failed"

start_nginx_timed "$STORE"
BASE=$URL

# nginx_mark: the access log's current line count.
nginx_mark() { wc -l <"$NGINX_LOG"; }
# nginx_sent MARK: "BYTES CHUNK_FILES" the server sent after MARK: bytes of
# every answer (index included), distinct chunk files.
nginx_sent() {
  tail -n +$(($1 + 1)) "$NGINX_LOG" | awk '
    { bytes += $4 } $6 ~ "^/chunks/" && $3 == 200 && !seen[$6]++ { files++ }
    END { printf "%d %d\n", bytes, files }'
}

# boot_reads MNT_FILE OUT [OFFSET SIZE]: loop-mount the ext4 file system in
# MNT_FILE (at OFFSET, SIZE bytes when given) read-only with direct I/O (no
# kernel read-ahead on the FUSE file: hloop sees what ext4 asks for), read the
# boot's files into OUT as "sha256 path" lines, tear it down.
boot_reads() {
  local file=$1 out=$2 off=${3:-} size=${4:-} dir=$TMP/ext4 f
  if [[ -n $off ]]; then
    LOOPDEV=$(losetup -r -f --show --direct-io=on -o "$off" --sizelimit "$size" "$file") ||
      fail "losetup -o $off $file failed"
    cleanup_fn detach_loop "$LOOPDEV" "$(realpath "$file")"
  else
    attach_loop_dio "$file"
  fi
  mount_ro "$LOOPDEV" "$dir"
  (cd "$dir" && xargs -d '\n' sha256sum <"$TMP/bootfiles") >"$out"
  while read -r f; do
    echo "$(head -c 65536 "$dir/$f" | sha256sum | cut -d' ' -f1)  $f-head" >>"$out"
  done <"$TMP/bootheads"
  umount_if_mounted "$(realpath "$dir")"
  detach_loop "$LOOPDEV" "$(realpath "$file")"
}
(cd "$TREE" && xargs -d '\n' sha256sum <"$TMP/bootfiles") >"$TMP/boot.expected"
while read -r f; do
  echo "$(head -c 65536 "$TREE/$f" | sha256sum | cut -d' ' -f1)  $f-head"
done <"$TMP/bootheads" >>"$TMP/boot.expected"

# profile_ranges PROFILE: the profile's reads as "OFFSET LENGTH" lines.
profile_ranges() {
  local version
  version=$(head -n1 "$1")
  case $version in
    "hloop-profile 1") awk -v cs=$CS 'NR > 1 && !/^#/ && NF == 2 { print $2 * cs, cs }' "$1" ;;
    "hloop-profile 2") awk 'NR > 1 && !/^#/ && NF == 3 { print $2, $3 }' "$1" ;;
    *) echo "profile_ranges: $1: unknown header '$version'" >&2; return 1 ;;
  esac
}

# replay_profile INDEX_URL PROFILE: read the profile's ranges through a FUSE
# mount with a fresh cache, no read-ahead and direct I/O (no kernel
# read-ahead either); sets TOUCHED to the number of distinct chunk files the
# server sent.
replay_profile() {
  local url=$1 profile=$2 n=$((++REPLAYS)) mark off len
  profile_ranges "$profile" >"$TMP/ranges" || fail "cannot read $profile"
  mount_image "$url" "$TMP/replay$n" --cache "$TMP/replay-cache$n" --readahead 0 --cluster 0 --no-profile
  mark=$(nginx_mark)
  while read -r off len; do
    dd if="$MOUNT_FILE" of=/dev/null bs=65536 iflag=direct,skip_bytes,count_bytes skip="$off" count="$len" \
      status=none || fail "replay of $profile against $url: read of $len at $off failed"
  done <"$TMP/ranges"
  unmount_fuse "$TMP/replay$n" "$MOUNT_PID"
  TOUCHED=$(nginx_sent "$mark" | cut -d' ' -f2)
}
REPLAYS=0

# ------------------------------------------------------------------------------
log "--- 1. recording the boot"
PROFILE=$TMP/boot.profile
mount_image "$BASE/disk.idx" "$TMP/mnt-rec" --cache "$TMP/cache-rec" --record-profile "$PROFILE"
boot_reads "$MOUNT_FILE" "$TMP/boot.rec"
check "recording: the boot's files read right" cmp -s "$TMP/boot.expected" "$TMP/boot.rec"
unmount_fuse "$TMP/mnt-rec" "$MOUNT_PID"
[[ -s $PROFILE ]] || fail "no profile written at $PROFILE after the unmount"
log "profile: $(head -n1 "$PROFILE"), $(grep -vc '^#' "$PROFILE") lines"

# ------------------------------------------------------------------------------
log "--- 2. relayout: the same image"
chunks_before=$(count_chunk_files "$STORE")
"$HLOOP" relayout "$BASE/disk.idx" --profile "$PROFILE" --store "$STORE" --name hot --json \
  >"$TMP/relayout.json" 2>"$TMP/relayout.err" || { cat "$TMP/relayout.err" >&2; fail "hloop relayout failed"; }
jq -c . "$TMP/relayout.json"
J() { jq -r "$1" "$TMP/relayout.json"; }
HOT=$(J .hot_chunks)
check_ge "relayout: hot chunks were written" "$HOT" 1
check_ge "relayout: extents map the profile's reads" "$(J .extents)" 1
check_eq "relayout: the new chunk files are the new hot chunks" \
  $((chunks_before + $(J .hot_chunks_new))) "$(count_chunk_files "$STORE")"
check "relayout: bytes_added counts what the store grew by" test "$(J .bytes_added)" -gt 0
check_eq "the new index is in the store" "$STORE/hot.idx" "$(J .index)"

check_eq "hloop cat of the relaid-out index is the image" "$IMG_SHA" \
  "$("$HLOOP" cat "$BASE/hot.idx" --cache "$TMP/cache-cat" | sha256sum | cut -d' ' -f1)"
mount_image "$BASE/hot.idx" "$TMP/mnt-hot" --cache "$TMP/cache-fuse"
check_eq "the relaid-out image through FUSE is the image" "$IMG_SHA" "$(sha "$MOUNT_FILE")"
attach_loop "$MOUNT_FILE"
e2fsck -fn "$LOOPDEV" >"$TMP/e2fsck.out" 2>&1 && rc=0 || rc=$?
check_eq "e2fsck -fn on a loop device over the relaid-out image is clean" 0 "$rc"
((rc == 0)) || cat "$TMP/e2fsck.out" >&2
mount_ro "$LOOPDEV" "$TMP/ext4-hot"
check_eq "the files read back right (the whole tree)" "$(tree_manifest "$TREE" | sha256sum)" \
  "$(tree_manifest "$TMP/ext4-hot" | sha256sum)"
umount_if_mounted "$(realpath "$TMP/ext4-hot")"
detach_loop "$LOOPDEV" "$(realpath "$MOUNT_FILE")"
unmount_fuse "$TMP/mnt-hot" "$MOUNT_PID"

start_hloop_nbd "$BASE/hot.idx" --socket "$TMP/nbd.sock" --cache "$TMP/cache-nbd"
nbdcopy --connections=4 "$NBD_URI" "$TMP/nbd.img" || soft_fail "nbdcopy of the relaid-out image failed"
check_eq "the relaid-out image through NBD is the image" "$IMG_SHA" "$(sha "$TMP/nbd.img")"
rm -f "$TMP/nbd.img"
stop_pid "$NBD_PID"

# ------------------------------------------------------------------------------
log "--- 3. cold replay of the boot: original against relaid-out"
# cold_boot NAME INDEX_URL: the boot's reads on a fresh cache; sets SENT
# ("BYTES CHUNK_FILES" the server sent while mounted).
cold_boot() {
  local mark
  mark=$(nginx_mark)
  mount_image "$2" "$TMP/mnt-$1" --cache "$TMP/cache-$1" --no-profile
  boot_reads "$MOUNT_FILE" "$TMP/boot.$1"
  check "$1: the boot's files read right" cmp -s "$TMP/boot.expected" "$TMP/boot.$1"
  unmount_fuse "$TMP/mnt-$1" "$MOUNT_PID"
  SENT=$(nginx_sent "$mark")
  log "$1: the server sent ${SENT% *} bytes, ${SENT#* } chunk files"
}
cold_boot orig "$BASE/disk.idx"; orig=$SENT
cold_boot relaid "$BASE/hot.idx"; relaid=$SENT
check_le "the relaid-out boot fetched fewer bytes than the original (at most half)" \
  $((${relaid% *} * 2)) "${orig% *}"
check_le "... from fewer chunk files" "${relaid#* }" $((${orig#* } - 1))
log "relayout's estimate: before $(J .before.bytes_fetched) bytes in $(J .before.chunk_files) files," \
  "after $(J .after.bytes_fetched) bytes in $(J .after.chunk_files) files"
check_le "relayout's estimate: after fetches fewer bytes than before (at most half)" \
  $(($(J .after.bytes_fetched) * 2)) "$(J .before.bytes_fetched)"
check_le "relayout's estimate: ... in fewer chunk files" "$(J .after.chunk_files)" "$(J .before.chunk_files)"

# ------------------------------------------------------------------------------
log "--- 4. a partitioned disk"
# GPT, partition 1 (8 MiB of random bytes), partition 2 (ext4 of d03-d06).
# Loop devices with --partscan give no partition nodes on this machine (no
# udev), so the ext4 in partition 2 is reached with losetup -o/--sizelimit.
PTREE=$TMP/ptree
mkdir -p "$PTREE"
cp -a "$TREE"/d0[3-6] "$PTREE"/
PIMG=$TMP/parted.img
truncate -s $((48 * MIB)) "$PIMG"
printf 'label: gpt\nstart=2048, size=16384, type=linux\nstart=18432, size=73728, type=linux\n' |
  sfdisk -q "$PIMG" || fail "sfdisk failed"
P1=$((2048 * 512)) P2=$((18432 * 512)) P2SIZE=$((73728 * 512))
random_file "$TMP/p1" $((16384 * 512))
dd if="$TMP/p1" of="$PIMG" bs=$MIB seek=$P1 oflag=seek_bytes conv=notrunc status=none
make_ext4_image "$PTREE" "$TMP/p2.img" "$P2SIZE"
dd if="$TMP/p2.img" of="$PIMG" bs=$MIB seek=$P2 oflag=seek_bytes conv=notrunc status=none
rm -f "$TMP/p1" "$TMP/p2.img"
PIMG_SHA=$(sha "$PIMG")
"$HLOOP" pack "$PIMG" "$STORE" --name parted -q || fail "hloop pack of the partitioned disk failed"
grep '^\./d0[3-6]/' "$TMP/bootfiles" >"$TMP/bootfiles.p" || true
(cd "$PTREE" && xargs -d '\n' sha256sum <"$TMP/bootfiles.p") >"$TMP/pboot.expected"
grep -v '^\./d0[3-6]/' "$TMP/bootfiles" >"$TMP/bootfiles.rest" || true
# boot_reads reads $TMP/bootfiles and $TMP/bootheads: point them at partition 2's files.
mv "$TMP/bootfiles" "$TMP/bootfiles.all"; cp "$TMP/bootfiles.p" "$TMP/bootfiles"
mv "$TMP/bootheads" "$TMP/bootheads.all"; : >"$TMP/bootheads"
mount_image "$BASE/parted.idx" "$TMP/mnt-prec" --cache "$TMP/cache-prec" --record-profile "$TMP/parted.profile"
boot_reads "$MOUNT_FILE" "$TMP/pboot.rec" "$P2" "$P2SIZE"
check "partitioned: the files of partition 2 read right while recording" cmp -s "$TMP/pboot.expected" "$TMP/pboot.rec"
unmount_fuse "$TMP/mnt-prec" "$MOUNT_PID"
"$HLOOP" relayout "$BASE/parted.idx" --profile "$TMP/parted.profile" --store "$STORE" --name parted-hot --json \
  >"$TMP/prelayout.json" || fail "hloop relayout of the partitioned disk failed"
check_ge "partitioned: hot chunks were written" "$(jq .hot_chunks "$TMP/prelayout.json")" 1
check_eq "partitioned: hloop cat of the relaid-out disk is the disk" "$PIMG_SHA" \
  "$("$HLOOP" cat "$BASE/parted-hot.idx" --cache "$TMP/cache-pcat" | sha256sum | cut -d' ' -f1)"
mount_image "$BASE/parted-hot.idx" "$TMP/mnt-phot" --cache "$TMP/cache-phot"
check_eq "partitioned: the relaid-out disk through FUSE is the disk" "$PIMG_SHA" "$(sha "$MOUNT_FILE")"
# ptable FILE: sfdisk's dump without the file's name.
ptable() { sfdisk -d "$1" | grep -v '^device:' | sed "s|^$1||"; }
check_eq "partitioned: the partition table reads back" "$(ptable "$PIMG")" "$(ptable "$MOUNT_FILE")"
LOOPDEV=$(losetup -r -f --show -o "$P2" --sizelimit "$P2SIZE" "$MOUNT_FILE") || fail "losetup -o $P2 failed"
cleanup_fn detach_loop "$LOOPDEV" "$(realpath "$MOUNT_FILE")"
e2fsck -fn "$LOOPDEV" >"$TMP/pe2fsck.out" 2>&1 && rc=0 || rc=$?
check_eq "partitioned: e2fsck -fn of partition 2 is clean" 0 "$rc"
((rc == 0)) || cat "$TMP/pe2fsck.out" >&2
detach_loop "$LOOPDEV" "$(realpath "$MOUNT_FILE")"
boot_reads "$MOUNT_FILE" "$TMP/pboot.hot" "$P2" "$P2SIZE"
check "partitioned: the files of partition 2 read right from the relaid-out disk" \
  cmp -s "$TMP/pboot.expected" "$TMP/pboot.hot"
unmount_fuse "$TMP/mnt-phot" "$MOUNT_PID"
start_hloop_nbd "$BASE/parted-hot.idx" --socket "$TMP/pnbd.sock" --cache "$TMP/cache-pnbd"
nbdcopy "$NBD_URI" "$TMP/pnbd.img" || soft_fail "nbdcopy of the relaid-out disk failed"
check_eq "partitioned: the relaid-out disk through NBD is the disk" "$PIMG_SHA" "$(sha "$TMP/pnbd.img")"
rm -f "$TMP/pnbd.img"
stop_pid "$NBD_PID"
mv "$TMP/bootfiles.all" "$TMP/bootfiles"; mv "$TMP/bootheads.all" "$TMP/bootheads"

# ------------------------------------------------------------------------------
log "--- 5. a second version with --layout-from"
# v2: a copy of the image with a few files changed, added and removed (on a
# loop device over the copy: a plain file, not the store).
IMG2=$TMP/disk2.img
cp "$IMG" "$IMG2"
LOOP2=$(losetup -f --show "$IMG2") || fail "losetup $IMG2 failed"
cleanup_fn detach_loop "$LOOP2" "$(realpath "$IMG2")"
mkdir -p "$TMP/v2"
mount "$LOOP2" "$TMP/v2" || fail "mount $LOOP2 failed"
cleanup_fn umount_if_mounted "$(realpath "$TMP/v2")"
changed=$(sed -n '5p;40p;75p' "$TMP/bootfiles" | tr '\n' ' ')
for f in $changed; do random_file "$TMP/v2/$f" $(($(fsize "$TMP/v2/$f") + 100)); done
random_file "$TMP/v2/d05/new.bin" $((700 * 1024))
rm -f "$TMP/v2/d09/zeros.bin"
umount "$TMP/v2"
detach_loop "$LOOP2" "$(realpath "$IMG2")"
IMG2_SHA=$(sha "$IMG2")
log "v2 changed:$changed"
chunks_before=$(count_chunk_files "$STORE")
"$HLOOP" pack "$IMG2" "$STORE" --name v2-hot --layout-from hot --json >"$TMP/pack-v2.json" ||
  fail "hloop pack --layout-from hot failed"
jq -c .layout "$TMP/pack-v2.json"
"$HLOOP" pack "$IMG2" "$STORE" --name v2-plain -q || fail "hloop pack of v2 failed"
check_eq "v2 --layout-from: hloop cat is v2" "$IMG2_SHA" \
  "$("$HLOOP" cat "$BASE/v2-hot.idx" --cache "$TMP/cache-v2cat" | sha256sum | cut -d' ' -f1)"
check_eq "v2 --layout-from: the layout has as many hot chunks as the relayout" "$HOT" \
  "$(jq .layout.hot_chunks "$TMP/pack-v2.json")"
hot_new=$(jq .layout.hot_chunks_new "$TMP/pack-v2.json")
log "v2: $hot_new of $HOT hot chunks new; the store grew by $(($(count_chunk_files "$STORE") - chunks_before)) chunk files"
check_le "v2 --layout-from: the hot chunks of unchanged blocks are shared (few new hot chunks)" \
  "$hot_new" $((HOT / 2))
mount_image "$BASE/v2-hot.idx" "$TMP/mnt-v2" --cache "$TMP/cache-v2"
check_eq "v2 --layout-from: the image through FUSE is v2" "$IMG2_SHA" "$(sha "$MOUNT_FILE")"
unmount_fuse "$TMP/mnt-v2" "$MOUNT_PID"

replay_profile "$BASE/hot.idx" "$PROFILE"; files_hot=$TOUCHED
replay_profile "$BASE/v2-hot.idx" "$PROFILE"; files_v2hot=$TOUCHED
replay_profile "$BASE/v2-plain.idx" "$PROFILE"; files_v2plain=$TOUCHED
log "the profile replayed touches $files_hot chunk files of hot, $files_v2hot of v2-hot, $files_v2plain of v2-plain"
check_le "v2 --layout-from: the replay touches about as few chunk files as the relayout" \
  "$files_v2hot" $((files_hot + files_hot / 4 + 2))
check_le "v2 --layout-from: ... and at most 2/3 as many as the plain pack of v2" \
  $((files_v2hot * 3)) $((files_v2plain * 2))
# hloop info --profile counts the same from the index alone.
for v in hot:$files_hot v2-hot:$files_v2hot v2-plain:$files_v2plain; do
  check_eq "hloop info ${v%%:*} --profile: chunk files touched as in the replay" "${v#*:}" \
    "$("$HLOOP" info "$STORE/${v%%:*}.idx" --profile "$PROFILE" --json | jq '.profiles[0].chunks_touched')"
done

# ------------------------------------------------------------------------------
log "--- 6. commit over the relaid-out base"
cp "$IMG" "$TMP/expected-c.img"
mount_image "$BASE/hot.idx" "$TMP/mnt-c" --cache "$TMP/cache-c" --overlay "$TMP/c.overlay"
random_file "$TMP/w" 10000
for off in $((3 * CS + 100)) $((200 * CS)) $((370 * CS - 5000)); do
  dd if="$TMP/w" of="$MOUNT_FILE" bs=65536 seek="$off" oflag=seek_bytes conv=notrunc,fsync status=none
  dd if="$TMP/w" of="$TMP/expected-c.img" bs=65536 seek="$off" oflag=seek_bytes conv=notrunc status=none
done
unmount_fuse "$TMP/mnt-c" "$MOUNT_PID"
"$HLOOP" commit "$BASE/hot.idx" --overlay "$TMP/c.overlay" --store "$STORE" --name hot-c --cache "$TMP/cache-c" \
  --json >"$TMP/commit.json" || fail "hloop commit over the relaid-out base failed"
jq -c .layout "$TMP/commit.json"
check_ge "commit: keeps the base's layout (layout.hot_chunks)" "$(jq '.layout.hot_chunks // 0' "$TMP/commit.json")" 1
check_eq "commit: the new version reads back right" "$(sha "$TMP/expected-c.img")" \
  "$("$HLOOP" cat "$BASE/hot-c.idx" --cache "$TMP/cache-ccat" | sha256sum | cut -d' ' -f1)"

# ------------------------------------------------------------------------------
log "--- 7. errors"
store_state() { (cd "$STORE" && find . -type f | LC_ALL=C sort | xargs sha256sum) | sha256sum; }
# try_relayout NAME ARGS...: RC and ERR of `hloop relayout`; checks that the
# store is untouched.
try_relayout() {
  local before; before=$(store_state)
  RC=0
  ERR=$("$HLOOP" relayout "$@" 2>&1) || RC=$?
  check_eq "... the store is untouched" "$before" "$(store_state)"
}
head -c 3000 /dev/urandom >"$TMP/garbage.profile"
try_relayout "$BASE/disk.idx" --profile "$TMP/garbage.profile" --store "$STORE" --name bad1
check_ne "a garbage profile: relayout fails" 0 "$RC"
check_contains "... naming the file" "$TMP/garbage.profile" "$ERR"
check_contains "... saying it is not a profile" "not an hloop profile" "$ERR"
log "message: $ERR"
printf 'hloop-profile 99\n1 2\n' >"$TMP/v99.profile"
try_relayout "$BASE/disk.idx" --profile "$TMP/v99.profile" --store "$STORE" --name bad2
check_ne "a profile of another format version: relayout fails" 0 "$RC"
check_contains "... naming the version" "version 99" "$ERR"
log "message: $ERR"
try_relayout "$BASE/disk.idx" --profile "$TMP/no-such.profile" --store "$STORE" --name bad3
check_ne "a missing profile: relayout fails" 0 "$RC"
check_contains "... naming the file" "$TMP/no-such.profile" "$ERR"
log "message: $ERR"
printf 'hloop-profile 1\n1 100000\n' >"$TMP/beyond.profile"
try_relayout "$BASE/disk.idx" --profile "$TMP/beyond.profile" --store "$STORE" --name bad4
check_ne "a profile that reads nothing of the image: relayout fails" 0 "$RC"
check_contains "... saying so" "nothing" "$ERR"
log "message: $ERR"
try_relayout "$BASE/disk.idx" --profile "$PROFILE" --store "$STORE" --name v2-plain
check_ne "--name of another image in the store: relayout fails" 0 "$RC"
check_contains "... naming the index" "v2-plain.idx" "$ERR"
log "message: $ERR"

before=$(store_state)
RC=0
ERR=$("$HLOOP" pack "$IMG2" "$STORE" --name bad5 --layout-from disk 2>&1) || RC=$?
check_ne "pack --layout-from an index without a layout fails" 0 "$RC"
check_contains "... saying it has no layout" "no layout" "$ERR"
check_eq "... the store is untouched" "$before" "$(store_state)"
log "message: $ERR"
RC=0
ERR=$("$HLOOP" pack "$IMG2" "$STORE" --name bad6 --layout-from no-such 2>&1) || RC=$?
check_ne "pack --layout-from a missing index fails" 0 "$RC"
check_contains "... naming it" "no-such" "$ERR"
check_eq "... the store is untouched" "$before" "$(store_state)"
log "message: $ERR"
