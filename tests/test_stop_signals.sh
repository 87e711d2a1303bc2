#!/usr/bin/env bash
# A stop signal that arrives while hloop is finishing its shutdown work does
# not cut that work short. `fusermount -u` followed at once by SIGTERM (what
# a service manager does) must leave a complete recorded profile and no
# temporary file: here SIGTERM is sent again and again from the unmount until
# the process is gone, so every moment of the shutdown sees one. The same for
# `hloop nbd`, stopped by SIGTERM and signalled again while it shuts down.
# A profile that cannot be written (its path is a directory) leaves no
# temporary file either.
source "$(dirname "$0")/lib.sh"
requires_root
requires_fuse
requires nbdcopy

IMG=$TMP/disk.img
random_file "$IMG" $((4 * 1024 * 1024 + 4096))
IMG_BLOCKS=$(((4 * 1024 * 1024 + 4096) / 4096))
"$HLOOP" pack "$IMG" "$TMP/store" --name disk >"$TMP/pack.out" 2>&1 || { cat "$TMP/pack.out" >&2; fail "hloop pack failed"; }
start_hloop_serve "$TMP/store"
INDEX=$URL/disk.idx

# term_until_gone PID: SIGTERM to PID without pause (no fork between two
# signals) until it has exited (at most 20 s); then sets EXIT_STATUS to its
# exit status.
term_until_gone() {
  local pid=$1 deadline=$((SECONDS + 20)) rc=0 stat
  while ((SECONDS < deadline)); do
    kill -TERM "$pid" 2>/dev/null || break
    # A zombie (state Z) takes signals too: it has exited.
    { read -r stat <"/proc/$pid/stat"; } 2>/dev/null || break
    stat=${stat##*) }
    [[ ${stat:0:1} == Z ]] && break
  done
  if pid_alive "$pid"; then
    EXIT_STATUS=still-running
    return 0
  fi
  wait "$pid" || rc=$?
  EXIT_STATUS=$rc
}

# check_profile WHAT PROFILE: PROFILE is a complete profile of the image
# (version 2, every 4 KiB block of it once: the image was read whole and has
# no zeros) and no temporary file of it is left next to it.
check_profile() {
  local what=$1 profile=$2
  check "[$what] the profile was written" test -s "$profile"
  check_eq "[$what] profile: first line is the header" "hloop-profile 2" "$(head -n1 "$profile" 2>/dev/null || true)"
  check_eq "[$what] profile: every other line is a comment or 'MS OFFSET LENGTH'" "" \
    "$(tail -n +2 "$profile" 2>/dev/null | grep -Ev '^(#.*|[0-9]+ [0-9]+ [0-9]+)$' || true)"
  local n
  n=$(grep -Evc '^#|^hloop-profile' "$profile" 2>/dev/null || true)
  check_ge "[$what] profile: the ranges read are recorded" "${n:-0}" 1
  check_eq "[$what] profile: every block of the image, once" "$IMG_BLOCKS $IMG_BLOCKS" \
    "$(profile_blocks "$profile" 2>/dev/null | wc -l) $(profile_blocks "$profile" 2>/dev/null | sort -u | wc -l)"
  check_eq "[$what] no temporary file left" "" \
    "$(find "$(dirname "$profile")" -maxdepth 1 -name "$(basename "$profile").tmp*" -printf '%f ')"
}

# ---- hloop mount: fusermount -u, then SIGTERM at once (three times: the
# race has many moments).
for round in 1 2 3; do
  mnt=$TMP/mnt.$round
  profile=$TMP/profiles.$round/boot.profile
  mkdir -p "$(dirname "$profile")"
  mount_image "$INDEX" "$mnt" --cache "$TMP/cache.$round" --record-profile "$profile"
  check_eq "[mount $round] the file reads back" "$(sha "$IMG")" "$(sha "$MOUNT_FILE")"
  pid=$MOUNT_PID
  fusermount3 -u "$mnt"
  term_until_gone "$pid"
  check_eq "[mount $round] hloop mount exits 0 despite the SIGTERMs during its shutdown" 0 "$EXIT_STATUS"
  [[ $EXIT_STATUS == 0 ]] || cat "$MOUNT_LOG" >&2
  check_profile "mount $round" "$profile"
done

# The profile is usable: a mount replaying it starts (a bad --profile stops
# the mount with an error).
mount_image "$INDEX" "$TMP/mnt.replay" --cache "$TMP/cache.replay" --profile "$TMP/profiles.1/boot.profile"
check_eq "[replay] the file reads back" "$(sha "$IMG")" "$(sha "$MOUNT_FILE")"
unmount_fuse "$TMP/mnt.replay" "$MOUNT_PID"

# ---- hloop nbd: SIGTERM stops it, more SIGTERMs arrive while it shuts down.
for round in 1 2; do
  profile=$TMP/nbd-profiles.$round/boot.profile
  mkdir -p "$(dirname "$profile")"
  start_hloop_nbd "$INDEX" --socket "$TMP/nbd.$round.sock" --cache "$TMP/nbd-cache.$round" --record-profile "$profile"
  nbdcopy "$NBD_URI" "$TMP/copy.$round.img" || fail "nbdcopy failed"
  check_eq "[nbd $round] nbdcopy equals the image" "$(sha "$IMG")" "$(sha "$TMP/copy.$round.img")"
  term_until_gone "$NBD_PID"
  check_eq "[nbd $round] hloop nbd exits 0 despite the SIGTERMs during its shutdown" 0 "$EXIT_STATUS"
  [[ $EXIT_STATUS == 0 ]] || cat "$NBD_LOG" >&2
  check_profile "nbd $round" "$profile"
  check_not "[nbd $round] the socket file is removed" test -e "$TMP/nbd.$round.sock"
done

# ---- A profile that cannot be written leaves no temporary file.
mkdir -p "$TMP/bad/boot.profile/in-the-way"
mount_image "$INDEX" "$TMP/mnt.bad" --cache "$TMP/cache.bad" --record-profile "$TMP/bad/boot.profile"
sha "$MOUNT_FILE" >/dev/null
unmount_fuse "$TMP/mnt.bad" "$MOUNT_PID"
check_eq "[unwritable profile] no temporary file left" "" "$(find "$TMP/bad" -maxdepth 1 -name 'boot.profile.tmp*' -printf '%f ')"
check "[unwritable profile] the directory in the way is untouched" test -d "$TMP/bad/boot.profile/in-the-way"
