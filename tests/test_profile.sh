#!/usr/bin/env bash
# Boot profiles (issues #3, #14): a mount with --record-profile writes the
# 4 KiB blocks it read, in first-read order (profile version 2: "MS OFFSET
# LENGTH"); replayed with --profile on a cold cache, the chunks holding them
# are fetched before they are read (the statistics show it), and neither
# recording nor replaying changes a byte read.  A version 1 profile (chunk
# numbers) is still read.  NAME.profile next to the index is used
# automatically unless --no-profile; a bad profile given with --profile stops
# the mount with an error naming it, a bad NAME.profile is ignored with a
# warning.
source "$(dirname "$0")/lib.sh"
requires_root
requires_fuse
requires curl jq debugfs dumpe2fs losetup

requires_wanem

CS=262144
# An ext4 image with 20 random files; the reads below touch 3 of them.
TREE=$TMP/tree
mkdir -p "$TREE/data" "$TREE/etc"
for i in $(seq -w 1 20); do
  random_file "$TREE/data/f$i" $((1536 * 1024 + 10#$i * 7777))
done
seq 1 100000 >"$TREE/etc/numbers.txt"
echo "hello profile" >"$TREE/etc/small"
READ_FILES=(data/f02 data/f07 data/f11 etc/numbers.txt etc/small)
IMG=$TMP/disk.img
make_ext4_image "$TREE" "$IMG"
IMG_SHA=$(sha "$IMG")
IMG_SIZE=$(fsize "$IMG")
STORE=$TMP/store
"$HLOOP" pack "$IMG" "$STORE" --name disk -q || fail "hloop pack failed"
NCHUNKS=$(( ($(fsize "$IMG") + CS - 1) / CS ))
NONZERO=$("$HLOOP" info "$STORE/disk.idx" --json | jq '.chunk_count - .zero_chunks' 2>/dev/null || echo "")
[[ $NONZERO =~ ^[0-9]+$ ]] || NONZERO=$(count_chunk_files "$STORE")
log "image: $NCHUNKS chunks, $NONZERO not zero"

start_hloop_serve "$STORE"
start_wanem wan --rtt 50
BASE=$WURL
INDEX_URL=$BASE/disk.idx

# read_files MNT_FILE OUT: loop-mount the image file read-only, sha256 the
# READ_FILES (and list the tree) into OUT, then tear the loop mount down.
# The loop device uses direct I/O: without it the kernel's read-ahead on the
# FUSE file adds reads that depend on timing, and a replay could read chunks
# the recording did not (or the other way round).
read_files() {
  local file=$1 out=$2 dir=$TMP/ext4 f
  attach_loop_dio "$file"
  mount_ro "$LOOPDEV" "$dir"
  : >"$out"
  find "$dir/data" "$dir/etc" -printf '%p %s\n' >/dev/null
  for f in "${READ_FILES[@]}"; do
    echo "$f $(sha "$dir/$f")" >>"$out"
  done
  umount_if_mounted "$(realpath "$dir")"
  detach_loop "$LOOPDEV" "$(realpath "$file")"
}
EXPECTED=$TMP/expected.sha
for f in "${READ_FILES[@]}"; do echo "$f $(sha "$TREE/$f")"; done >"$EXPECTED"

# stat_of JSON FILTER
stat_of() { jq -r "$2" "$1"; }

# ------------------------------------------------------------------------------
# 1. Record.
log "--- 1. recording"
PROFILE=$TMP/boot.profile
mount_image "$INDEX_URL" "$TMP/mnt1" --cache "$TMP/cache1" --record-profile "$PROFILE"
t0=$(ms_now)
read_files "$MOUNT_FILE" "$TMP/read1.sha"
log "reads while recording: $(($(ms_now) - t0)) ms"
check "recording: the files read are exact" cmp -s "$EXPECTED" "$TMP/read1.sha"
mount_stats_json "$TMP/mnt1" "$TMP/stats1.json"
recorded=$(stat_of "$TMP/stats1.json" .profile_recorded)
log "recording: $recorded blocks recorded, $(stat_of "$TMP/stats1.json" .fetch.chunks) chunks fetched"
check_ge "recording: hloop stats counts recorded blocks" "$recorded" 1
unmount_fuse "$TMP/mnt1" "$MOUNT_PID"
[[ -s $PROFILE ]] || fail "no profile written at $PROFILE after the unmount"

# The format (version 2): a header, comments, then "MS OFFSET LENGTH" lines
# in 4 KiB blocks; only a range ending at the image's end (64 MiB + 1536)
# may end with a partial block.
check_eq "profile: first line is the header" "hloop-profile 2" "$(head -n1 "$PROFILE")"
check_eq "profile: every other line is a comment or 'MS OFFSET LENGTH'" "" \
  "$(tail -n +2 "$PROFILE" | grep -Ev '^(#.*|[0-9]+ [0-9]+ [0-9]+)$' || true)"
check_eq "profile: ranges are whole 4 KiB blocks inside the image (a partial one only at its end)" "" \
  "$(awk -v size="$IMG_SIZE" 'NR > 1 && !/^#/ && ($2 % 4096 != 0 || $3 == 0 || $2 + $3 > size ||
      ($3 % 4096 != 0 && $2 + $3 != size))' "$PROFILE")"
awk 'NR > 1 && !/^#/ { print $1 }' "$PROFILE" >"$TMP/ms"
check "profile: the times never go back" sort -n -c "$TMP/ms"
profile_blocks "$PROFILE" >"$TMP/blocks"
nblocks=$(wc -l <"$TMP/blocks")
check_eq "profile: its ranges hold as many blocks as hloop stats said were recorded" "$recorded" "$nblocks"
check_eq "profile: no block twice" "$nblocks" "$(sort -n -u "$TMP/blocks" | wc -l)"
sort -u "$TMP/blocks" >"$TMP/blocks.sorted"  # for comm: sorted as text
profile_chunks "$PROFILE" $CS >"$TMP/chunks"
n=$(wc -l <"$TMP/chunks")
log "profile: $nblocks blocks in $(grep -Evc '^#|^hloop-profile' "$PROFILE") ranges, on $n chunks"
check_eq "profile: every chunk number is in the image" "" "$(awk -v n="$NCHUNKS" '$1 >= n' "$TMP/chunks")"
check_le "profile: a subset of the image's data chunks (3 of 20 files read)" "$n" $((NONZERO / 2))
missing=
for f in data/f02 data/f07 data/f11; do
  for c in $(ext4_file_chunks "$IMG" "/$f" $CS); do
    grep -qx "$c" "$TMP/chunks" || missing+=" $f:$c"
  done
done
check_eq "profile: every chunk holding data of a file read is in it" "" "$missing"
extra=
for f in data/f15 data/f16 data/f17 data/f18; do
  for c in $(ext4_file_chunks "$IMG" "/$f" $CS); do
    grep -qx "$c" "$TMP/chunks" && extra+=" $f:$c"
  done
done
check_eq "profile: no chunk of files that were not read (read-ahead is not recorded)" "" "$extra"
# The same at the block level: every 4 KiB block of the files read, and none
# of those that hold only data of files not read (the file system's blocks
# may be 1 KiB).
missing=
for f in data/f02 data/f07 data/f11; do
  ext4_file_chunks "$IMG" "/$f" 4096 | sort -u >"$TMP/fblocks"
  [[ -s $TMP/fblocks ]] || fail "debugfs listed no blocks of /$f"
  m=$(comm -23 "$TMP/fblocks" "$TMP/blocks.sorted" | wc -l)
  [[ $m == 0 ]] || missing+=" $f:$m"
done
check_eq "profile: every block holding data of a file read is in it" "" "$missing"
extra=
for f in data/f15 data/f16 data/f17 data/f18; do
  ext4_file_whole_blocks "$IMG" "/$f" >"$TMP/fblocks"
  [[ -s $TMP/fblocks ]] || fail "debugfs listed no blocks of /$f"
  m=$(comm -12 "$TMP/fblocks" "$TMP/blocks.sorted" | wc -l)
  [[ $m == 0 ]] || extra+=" $f:$m"
done
check_eq "profile: no block of files that were not read" "" "$extra"
log "profile: $n chunks: $(head -c 200 <(tr '\n' ' ' <"$TMP/chunks"))"

# ------------------------------------------------------------------------------
# 2. Replay on a cold cache.  No read-ahead, so every chunk the reads need
# and the profile lacks would show up as a fetch during the reads.
log "--- 2. replaying"
mount_image "$INDEX_URL" "$TMP/mnt2" --cache "$TMP/cache2" --profile "$PROFILE" --readahead 0
t0=$(ms_now)
wait_prefetch_done "$TMP/mnt2" 60 || fail "replay: no profile prefetch, or it did not finish within 60 s"
log "prefetch of the profile took $(($(ms_now) - t0)) ms"
mount_stats_json "$TMP/mnt2" "$TMP/stats2a.json"
check_eq "replay: prefetch.total is the profile's length" "$n" "$(stat_of "$TMP/stats2a.json" .prefetch.total)"
check_eq "replay: no prefetch failed" 0 "$(stat_of "$TMP/stats2a.json" .prefetch.failed)"
check_eq "replay: nothing was read yet, so nothing useful yet" 0 "$(stat_of "$TMP/stats2a.json" .prefetch.useful)"
check_eq "replay: the prefetched chunks are in the disk cache" "$n" "$(stat_of "$TMP/stats2a.json" .cache.disk_chunks)"
t0=$(ms_now)
read_files "$MOUNT_FILE" "$TMP/read2.sha"
log "reads after the prefetch: $(($(ms_now) - t0)) ms"
check "replay: the files read are exact" cmp -s "$EXPECTED" "$TMP/read2.sha"
mount_stats_json "$TMP/mnt2" "$TMP/stats2b.json"
jq -c '.reads, .fetch, .cache, .prefetch' "$TMP/stats2b.json"
useful=$(stat_of "$TMP/stats2b.json" .prefetch.useful)
fetched=$(( $(stat_of "$TMP/stats2b.json" .fetch.chunks) - $(stat_of "$TMP/stats2a.json" .fetch.chunks) ))
transfers=$(( $(stat_of "$TMP/stats2b.json" .fetch.transfers) - $(stat_of "$TMP/stats2a.json" .fetch.transfers) ))
log "replay: $useful useful of $n prefetched; $fetched chunks fetched during the reads ($transfers transfers)"
check_ge "replay: prefetch.useful > 0" "$useful" 1
check_ge "replay: nearly every prefetched chunk was read after its prefetch (useful >= 90%)" \
  "$useful" $((n * 9 / 10))
check_le "replay: (almost) no chunk had to be fetched during the reads" "$fetched" $((n / 10))
check_le "replay: (almost) no transfer during the reads" "$transfers" $((n / 10))
check_ge "replay: the reads were served by the disk cache" \
  "$(stat_of "$TMP/stats2b.json" .cache.disk_hits)" "$useful"
check_eq "replay: the whole image reads back exact" "$IMG_SHA" "$(sha "$MOUNT_FILE")"
unmount_fuse "$TMP/mnt2" "$MOUNT_PID"

# ------------------------------------------------------------------------------
# 3. Published as NAME.profile: used automatically; --no-profile turns it off.
log "--- 3. NAME.profile"
cp "$PROFILE" "$STORE/disk.profile"
mount_image "$INDEX_URL" "$TMP/mnt3" --cache "$TMP/cache3" --readahead 0
wait_prefetch_done "$TMP/mnt3" 60 || fail "NAME.profile: no profile prefetch, or it did not finish within 60 s"
mount_stats_json "$TMP/mnt3" "$TMP/stats3a.json"
check_eq "NAME.profile: used without --profile (prefetch.total)" "$n" "$(stat_of "$TMP/stats3a.json" .prefetch.total)"
read_files "$MOUNT_FILE" "$TMP/read3.sha"
check "NAME.profile: the files read are exact" cmp -s "$EXPECTED" "$TMP/read3.sha"
mount_stats_json "$TMP/mnt3" "$TMP/stats3b.json"
check_ge "NAME.profile: prefetch.useful > 0" "$(stat_of "$TMP/stats3b.json" .prefetch.useful)" 1
unmount_fuse "$TMP/mnt3" "$MOUNT_PID"

# The control: the same reads on a cold cache with --no-profile must wait for
# the network (this is what the profile saved above).
mount_image "$INDEX_URL" "$TMP/mnt4" --cache "$TMP/cache4" --readahead 0 --no-profile
sleep 0.5
mount_stats_json "$TMP/mnt4" "$TMP/stats4a.json"
check_eq "--no-profile: prefetch.total == 0" 0 "$(stat_of "$TMP/stats4a.json" .prefetch.total)"
t0=$(ms_now)
read_files "$MOUNT_FILE" "$TMP/read4.sha"
log "reads without a profile: $(($(ms_now) - t0)) ms"
check "--no-profile: the files read are exact" cmp -s "$EXPECTED" "$TMP/read4.sha"
mount_stats_json "$TMP/mnt4" "$TMP/stats4b.json"
jq -c '.reads, .fetch, .prefetch' "$TMP/stats4b.json"
fetched4=$(( $(stat_of "$TMP/stats4b.json" .fetch.chunks) - $(stat_of "$TMP/stats4a.json" .fetch.chunks) ))
check_ge "--no-profile: the same reads fetch (nearly all) the profile's chunks while reading" "$fetched4" $((n * 9 / 10))
check_eq "--no-profile: prefetch.useful == 0" 0 "$(stat_of "$TMP/stats4b.json" .prefetch.useful)"
unmount_fuse "$TMP/mnt4" "$MOUNT_PID"

# A version 1 profile (chunk numbers, as hloop wrote before issue 14) of the
# same chunks is still read: the same prefetch.
{ echo "hloop-profile 1"; echo "# the chunks of $PROFILE"; awk '{ print NR, $1 }' "$TMP/chunks"; } >"$TMP/v1.profile"
mount_image "$INDEX_URL" "$TMP/mnt7" --cache "$TMP/cache7" --readahead 0 --profile "$TMP/v1.profile"
wait_prefetch_done "$TMP/mnt7" 60 || fail "version 1 profile: no profile prefetch, or it did not finish within 60 s"
mount_stats_json "$TMP/mnt7" "$TMP/stats7.json"
check_eq "version 1 profile: prefetch.total is its length" "$n" "$(stat_of "$TMP/stats7.json" .prefetch.total)"
check_eq "version 1 profile: the prefetched chunks are in the disk cache" "$n" "$(stat_of "$TMP/stats7.json" .cache.disk_chunks)"
unmount_fuse "$TMP/mnt7" "$MOUNT_PID"

# --profile also takes a URL.
mount_image "$INDEX_URL" "$TMP/mnt6" --cache "$TMP/cache6" --readahead 0 --profile "$BASE/disk.profile"
wait_prefetch_done "$TMP/mnt6" 60 || fail "--profile URL: no profile prefetch, or it did not finish within 60 s"
mount_stats_json "$TMP/mnt6" "$TMP/stats6.json"
check_eq "--profile URL: prefetch.total is the profile's length" "$n" "$(stat_of "$TMP/stats6.json" .prefetch.total)"
check_eq "--profile URL: the prefetched chunks are in the disk cache" "$n" "$(stat_of "$TMP/stats6.json" .cache.disk_chunks)"
unmount_fuse "$TMP/mnt6" "$MOUNT_PID"

# ------------------------------------------------------------------------------
# 4. Bad profiles.
log "--- 4. bad profiles"
# try_mount NAME ARGS...: hloop mount --daemon that is expected to fail; if it
# mounts after all, it is unmounted.  Sets RC and ERR (its messages).
try_mount() {
  local name=$1; shift
  mkdir -p "$TMP/$name"
  cleanup_fn unmount_fuse "$(realpath "$TMP/$name")" ""
  RC=0
  timeout 60 "$HLOOP" mount "$INDEX_URL" "$TMP/$name" --daemon --cache "$TMP/cache-$name" "$@" \
    >"$TMP/$name.out" 2>&1 </dev/null || RC=$?
  ERR=$(cat "$TMP/$name.out")
  unmount_fuse "$(realpath "$TMP/$name")" ""
}
head -c 3000 /dev/urandom >"$TMP/garbage.profile"
try_mount bad1 --profile "$TMP/garbage.profile"
check_ne "--profile GARBAGE: the mount fails" 0 "$RC"
check_contains "... with an error naming the file" "$TMP/garbage.profile" "$ERR"
check_contains "... saying what is wrong" "not an hloop profile" "$ERR"
log "message: $ERR"

printf 'hloop-profile 1\n10 3\n20 banana\n' >"$TMP/badline.profile"
try_mount bad2 --profile "$TMP/badline.profile"
check_ne "--profile with a bad line: the mount fails" 0 "$RC"
check_contains "... naming the file and the line" "$TMP/badline.profile: line 3" "$ERR"
log "message: $ERR"

printf 'hloop-profile 2\n10 0 4096\n20 4097 4096\n' >"$TMP/unaligned.profile"
try_mount bad4 --profile "$TMP/unaligned.profile"
check_ne "--profile with an unaligned offset: the mount fails" 0 "$RC"
check_contains "... naming the file and the line" "$TMP/unaligned.profile: line 3" "$ERR"
check_contains "... saying what is wrong" "offset 4097 is not a multiple of 4096" "$ERR"
log "message: $ERR"

printf 'hloop-profile 3\n10 0 4096 7\n' >"$TMP/v3.profile"
try_mount bad5 --profile "$TMP/v3.profile"
check_ne "--profile of version 3: the mount fails" 0 "$RC"
check_contains "... naming both versions" "profile format version 3, this hloop reads versions 1 and 2" "$ERR"
log "message: $ERR"

try_mount bad3 --profile "$TMP/no-such.profile"
check_ne "--profile MISSING_FILE: the mount fails" 0 "$RC"
check_contains "... with an error naming the file" "$TMP/no-such.profile" "$ERR"
log "message: $ERR"

# A garbage NAME.profile is only a warning: the mount works without it.
head -c 3000 /dev/urandom >"$STORE/disk.profile"
mount_image "$INDEX_URL" "$TMP/mnt5" --cache "$TMP/cache5"
sleep 0.5
mount_stats_json "$TMP/mnt5" "$TMP/stats5.json"
check_eq "garbage NAME.profile: ignored (prefetch.total == 0)" 0 "$(stat_of "$TMP/stats5.json" .prefetch.total)"
check_eq "garbage NAME.profile: the image still reads exact" "$IMG_SHA" "$(sha "$MOUNT_FILE")"
check_contains "garbage NAME.profile: a warning names it" "disk.profile" "$(cat "$MOUNT_LOG")"
check_contains "garbage NAME.profile: ... and says it is ignored" "ignoring the profile" "$(cat "$MOUNT_LOG")"
log "warning: $(grep -i profile "$MOUNT_LOG" | head -n 3)"
unmount_fuse "$TMP/mnt5" "$MOUNT_PID"
