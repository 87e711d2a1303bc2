#!/usr/bin/env bash
# A foreground `hloop mount` stops cleanly: on SIGTERM, on SIGINT, and when
# the mount point is unmounted, the process exits 0 within a few seconds and
# the mount point is no longer a FUSE mount.
source "$(dirname "$0")/lib.sh"
requires_fuse

IMG=$TMP/disk.img
random_file "$IMG" $((2 * 1024 * 1024 + 5))
"$HLOOP" pack "$IMG" "$TMP/store" --name disk >"$TMP/pack.out" 2>&1 || { cat "$TMP/pack.out" >&2; fail "hloop pack failed"; }
start_hloop_serve "$TMP/store"

# wait_exit PID SECONDS: wait for PID to exit; sets EXIT_STATUS to its status,
# or "still-running".  (Not run in $(...): only this shell can wait for PID.)
wait_exit() {
  local pid=$1 i rc=0
  EXIT_STATUS=still-running
  for ((i = 0; i < $2 * 10; i++)); do
    if ! pid_alive "$pid"; then
      wait "$pid" || rc=$?
      EXIT_STATUS=$rc; return 0
    fi
    sleep 0.1
  done
}

for how in TERM INT umount; do
  mnt=$TMP/mnt.$how
  mount_image "$URL/disk.idx" "$mnt"
  check_eq "[$how] mounted file reads back" "$(sha "$IMG")" "$(sha "$MOUNT_FILE")"
  # The image file is closed here: an open file would rightly make umount fail.
  case $how in
    TERM) kill -TERM "$MOUNT_PID" ;;
    INT) kill -INT "$MOUNT_PID" ;;
    umount) umount "$mnt" || fusermount3 -u "$mnt" ;;
  esac
  wait_exit "$MOUNT_PID" 10; status=$EXIT_STATUS
  check_eq "[$how] hloop mount exits with status 0 within 10 s" 0 "$status"
  check_not "[$how] $mnt is no longer a mount point (/proc/mounts)" is_mounted "$mnt"
  check_not "[$how] mountpoint -q $mnt is false" timeout 5 mountpoint -q "$mnt"
  if [[ $status != 0 ]]; then cat "$MOUNT_LOG" >&2; fi
  unmount_fuse "$mnt" "$MOUNT_PID"   # no-op unless something above failed
done
