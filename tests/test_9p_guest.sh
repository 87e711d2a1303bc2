#!/usr/bin/env bash
# A 9P2000.L server checked with the Linux kernel's own 9P client: a QEMU
# guest (TCG, the host's Debian kernel, a busybox initramfs; tests/lib_guest.sh)
# mounts the server's export over TCP (trans=tcp from 10.0.2.2) and runs
#   1. the read-write battery (tests/p9_guest/battery.sh): ls -l, cat, create,
#      append, truncate, mkdir/rmdir (ENOTEMPTY), rename (same dir, across
#      dirs, over a file), hard link, symlink, chmod, chown, touch -d, mkfifo,
#      unlink (also of an open file), rm -r, df, dd conv=fsync, exclusive
#      create, a 5000-entry directory, a 40 MiB read with sha256, a 48 MiB
#      write read back, 1500 small files created, read and deleted; then this
#      script checks from the host what the guest left in the export;
#   2. the image battery (tests/p9_guest/image.sh) on a read-only file tree
#      (copies of the host's /etc and /usr/bin files): the sha256 of every
#      file under etc/ and usr/bin/ against the host's list, and every kind
#      of write refused with EROFS. For hloop the tree is an ext4 image
#      (mke2fs -d, plus 32 MiB the guest never reads), packed, served by
#      nginx and exported with `hloop 9p --image URL`; the host then checks
#      that hloop fetched only what the guest read. diod cannot read an image:
#      it exports the tree as a read-only directory instead.
#
# Servers: the arguments, else $HLOOP_9P_SERVERS, else "diod hloop":
#   diod   Debian's 9P2000.L server (the reference: the batteries must pass)
#   hloop  `hloop 9p --listen 127.0.0.1:PORT --export DIR` and `... --image
#          URL` (skipped, with a note, while $HLOOP has no 9p subcommand;
#          without --image the image battery falls back to `--export DIR
#          --read-only`)
# e.g. `bash tests/test_9p_guest.sh diod`, `HLOOP_9P_SERVERS=hloop ...`.
# HLOOP_9P_TRACE=1: diod logs every 9P message, and the guest marks each step
# in that log with a failing lookup of ".p9-step-NAME".
# HLOOP_9P_KEEP=DIR: copy the guests' consoles and the servers' logs there.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_guest.sh"
requires_root
requires diod qemu-system-x86_64 cpio gzip modinfo

if (($#)); then
  SERVERS=("$@")
else
  read -r -a SERVERS <<<"${HLOOP_9P_SERVERS:-diod hloop}"
fi

RW_STEPS="mount ls-l cat workdir create append truncate mkdir-rmdir rename-same-dir
  rename-cross-dir rename-over hardlink symlink chmod chown touch-d mkfifo unlink unlink-open
  rm-r df dd-fsync excl-create dir-5000 largeread-40M largewrite-48M small-create small-read
  small-delete umount"
IMAGE_STEPS="mount manifest sha256-all erofs-target erofs-create erofs-excl-create erofs-mkdir
  erofs-append erofs-trunc-open erofs-truncate erofs-unlink erofs-rename erofs-chmod
  erofs-chown erofs-touch erofs-symlink erofs-link erofs-mkfifo erofs-unchanged umount"
# usr/bin in the image export: the host's /usr/bin files, in name order, up to
# this many MiB (all of /usr/bin is ~400 MB: too slow to hash under TCG).
IMAGE_BIN_MB=${HLOOP_9P_IMAGE_BIN_MB:-16}

# The kernel client's first attach is as user "nobody" (uname "nobody",
# n_uname -1); diod then checks the export's path as that user, so the path
# down to it must be searchable by others.
chmod o+x "$TMP"

# One guest run takes 1-3 minutes (more on a busy machine); ctest allows the
# whole test 600 s.
# shellcheck disable=SC2034  # used by lib_guest.sh
GUEST_TIMEOUT=${HLOOP_GUEST_TIMEOUT:-300}

guest_setup
log "guest kernel $GUEST_KVER, base initramfs $GUEST_BASE"
INITRD=$TMP/initrd.img
guest_initrd "$INITRD"

# q CMD...: CMD's output and errors, never failing (for check_eq arguments).
q() { "$@" 2>&1 || true; }

# check_guest_steps KIND LOG STEPS: every expected step reported ok.
# Returns 1 (after one failure) if the guest did not even mount the export.
check_guest_steps() {
  local kind=$1 logf=$2 s r
  r=$(guest_step "$logf" mount)
  if [[ $r != ok ]]; then
    soft_fail "[$kind] the guest could not mount the export: $r"
    return 1
  fi
  for s in $3; do
    r=$(guest_step "$logf" "$s")
    check_eq "[$kind] guest step $s" ok "${r%% *}"
    [[ ${r%% *} == ok ]] || echo "    guest said: STEP $s $r" >&2
  done
  check_eq "[$kind] no step failed in the guest" "" "$(grep -E '^STEP [^ ]+ FAIL' "$logf" || true)"
}

print_phases() {
  local logf=$1 p
  for p in "${@:2}"; do
    printf '    PHASE %-11s %s s\n' "$p" "$(guest_phase "$logf" "$p")"
  done
}

# --------------------------------------------------------- read-write battery
run_rw() {
  local kind=$1 ex=$TMP/export-rw.$1 logf=$TMP/console-rw.$1.log w
  p9_prepare_rw_export "$ex"
  start_9p_server "$kind" "$ex"
  local pid=$P9_PID
  log "[$kind] guest: read-write battery (console: $logf)"
  p9_battery_words rw
  if ! guest_run "$logf" "$INITRD" "${P9_WORDS[@]}"; then
    soft_fail "[$kind] read-write battery: the guest did not finish (see above)"
  fi
  log "[$kind] guest finished in ${GUEST_WALL}s wall, battery status ${GUEST_RC:-none}; negotiated msize $(guest_value "$logf" msize)"
  guest_steps "$logf" | sed 's/^/    /'
  print_phases "$logf" metadata largeread largewrite smallfiles
  check "[$kind] server still running after the battery" pid_alive "$pid"
  stop_pid "$pid"
  check_guest_steps "$kind" "$logf" "$RW_STEPS" || { rm -rf "$ex"; return 0; }
  check_eq "[$kind] guest battery exit status" 0 "${GUEST_RC:-none}"

  # What the guest left in the export, seen from the host.
  w=$ex/w
  local k="[$kind] host:"
  if [[ ! -d $w ]]; then
    soft_fail "$k the guest's work dir w/ does not exist"
    rm -rf "$ex"
    return 0
  fi
  check_eq "$k hello.txt unchanged" "$P9_HELLO_SHA" "$(q sha "$ex/hello.txt")"
  check_eq "$k big40.bin unchanged" "$P9_BIG_SHA" "$(q sha "$ex/big40.bin")"
  check_eq "$k create.txt content (create + append)" $'one\ntwo' "$(q cat "$w/create.txt")"
  check_eq "$k create.txt owner (the guest's root, not squashed)" 0:0 "$(q stat -c %u:%g "$w/create.txt")"
  check_eq "$k create.txt mode (0666 & ~umask 022)" 644 "$(q stat -c %a "$w/create.txt")"
  check_eq "$k trunc.txt size" 100000 "$(q stat -c %s "$w/trunc.txt")"
  check_eq "$k trunc.txt content" "$( { printf 01234; head -c 99995 /dev/zero; } | sha256sum | cut -d' ' -f1)" "$(q sha "$w/trunc.txt")"
  check_eq "$k trunc0.txt size" 0 "$(q stat -c %s "$w/trunc0.txt")"
  check "$k d_full/f kept (rmdir of a non-empty dir failed)" test -f "$w/d_full/f"
  check_not "$k d_empty removed" test -e "$w/d_empty"
  check_eq "$k r_dir/r_c (renamed twice)" r1 "$(q cat "$w/r_dir/r_c")"
  check_eq "$k r_dir/r_sub2/inner (renamed directory)" s "$(q cat "$w/r_dir/r_sub2/inner")"
  check_eq "$k old rename names gone" "" "$(cd "$w" && { ls -d r_a r_b r_sub o_src 2>/dev/null || true; })"
  check_eq "$k o_dst replaced by o_src" new "$(q cat "$w/o_dst")"
  check_eq "$k h1 link count" 2 "$(q stat -c %h "$w/h1")"
  check_eq "$k h2 is the same inode as h1" "$(q stat -c %i "$w/h1")" "$(q stat -c %i "$w/h2")"
  # For information (qid.path only has to be unique per file): diod sends
  # the host's st_ino as qid.path, and Linux 6.1's v9fs_qid2ino() makes the
  # guest's st_ino qid.path + 2.
  log "$k h1 is host inode $(q stat -c %i "$w/h1"); the guest saw $(sed -n 's/^STEP hardlink ok (\(.*\))$/\1/p' "$logf")"
  check_eq "$k symlink sl" create.txt "$(q readlink "$w/sl")"
  check_eq "$k symlink sl2" /nonexistent/target "$(q readlink "$w/sl2")"
  check_eq "$k chmod 640" 640 "$(q stat -c %a "$w/mode")"
  check_eq "$k chmod 711 (directory)" 711 "$(q stat -c %a "$w/dmode")"
  check_eq "$k chown 1234:5678" 1234:5678 "$(q stat -c %u:%g "$w/own")"
  check_eq "$k touch -d mtime" 981173106 "$(q stat -c %Y "$w/touched")"
  check_eq "$k touch -d atime" 981173106 "$(q stat -c %X "$w/touched")"
  check "$k fifo is a FIFO" test -p "$w/fifo"
  check_eq "$k unlinked names gone" "" "$(cd "$w" && { ls -d unl unl_open tree small 2>/dev/null || true; })"
  check_eq "$k dd.bin size" 1048576 "$(q stat -c %s "$w/dd.bin")"
  check "$k dd.bin is all zeros" cmp -s -n 1048576 "$w/dd.bin" /dev/zero
  check_eq "$k excl content" first "$(q cat "$w/excl")"
  check_eq "$k many/ holds f0..f4999" "$(seq 0 4999 | sed 's/^/f/' | sort | sha256sum)" \
    "$( (ls -A "$w/many" 2>&1 || true) | sort | sha256sum)"
  check_eq "$k big48.bin size" $((48 * 1024 * 1024)) "$(q stat -c %s "$w/big48.bin")"
  local want48
  want48=$(guest_value "$logf" big48sha)
  check_ne "$k the guest reported big48.bin's sha256" "" "$want48"
  check_eq "$k big48.bin sha256 = what the guest wrote" "$want48" "$(q sha "$w/big48.bin")"
  rm -rf "$ex"
}

# ----------------------------------------------------- read-only image battery
IMAGE_EX=''
make_image_export() {
  [[ -n $IMAGE_EX ]] && return 0
  IMAGE_EX=$TMP/export-img
  mkdir -p "$IMAGE_EX/usr/bin" "$TMP/image-extra"
  cp -a /etc "$IMAGE_EX/etc"
  # Regular files only, up to IMAGE_BIN_MB, in name order (symlinks in
  # /usr/bin point at absolute paths outside the export).
  local f total=0 limit=$((IMAGE_BIN_MB * 1024 * 1024)) sz
  while IFS= read -r -d '' f; do
    sz=$(stat -c %s "$f")
    ((total + sz <= limit)) || continue
    cp -a "$f" "$IMAGE_EX/usr/bin/"
    total=$((total + sz))
  done < <(find /usr/bin -maxdepth 1 -type f -print0 | LC_ALL=C sort -z)
  # A file name with a backslash or newline would be escaped by GNU sha256sum
  # but not by busybox: leave such files out.
  local nl=$'\n'
  find "$IMAGE_EX" \( -name '*\\*' -o -name "*$nl*" \) -delete
  (cd "$IMAGE_EX" && find etc usr/bin -type f -print0 | xargs -0 -r sha256sum) | LC_ALL=C sort \
    >"$TMP/image-extra/manifest.sha256"
  tree_manifest "$IMAGE_EX" >"$TMP/image.before"
  log "image export: $(wc -l <"$TMP/image-extra/manifest.sha256") files, $(du -sh "$IMAGE_EX" | cut -f1)"
  guest_initrd "$TMP/initrd-image.img" "$TMP/image-extra"
}

# make_image_store: the image export's tree as an ext4 image with
# IMAGE_UNREAD_MB of random data added (unread.bin, outside etc/ and usr/bin/:
# the guest never reads it), packed into a store that nginx serves. Sets
# IMAGE_URL, IMAGE_SHA, IMAGE_ACCESS_LOG and IMAGE_STORE_BYTES.
IMAGE_UNREAD_MB=32
IMAGE_URL=''
make_image_store() {
  [[ -n $IMAGE_URL ]] && return 0
  make_image_export
  requires mke2fs debugfs nginx
  local img=$TMP/image.img bytes
  bytes=$(du -sb "$IMAGE_EX" | cut -f1)
  truncate -s $((bytes * 3 / 2 + (IMAGE_UNREAD_MB + 64) * 1024 * 1024)) "$img"
  mke2fs -q -F -t ext4 -d "$IMAGE_EX" "$img" || fail "mke2fs -t ext4 -d $IMAGE_EX failed"
  head -c $((IMAGE_UNREAD_MB * 1024 * 1024)) /dev/urandom >"$TMP/unread.bin"
  debugfs -w -R "write $TMP/unread.bin unread.bin" "$img" >/dev/null 2>&1
  debugfs -R "stat unread.bin" "$img" 2>/dev/null | grep -q "Size: $((IMAGE_UNREAD_MB * 1024 * 1024))" ||
    fail "debugfs could not add unread.bin to the image"
  rm -f "$TMP/unread.bin"
  "$HLOOP" pack "$img" "$TMP/image-store" >/dev/null || fail "hloop pack $img failed"
  IMAGE_SHA=$(sha "$img")
  start_nginx "$TMP/image-store"
  IMAGE_URL=$URL/image.idx
  IMAGE_ACCESS_LOG=$TMP/nginx.$PORT/access.log
  IMAGE_STORE_BYTES=$(du -sb "$TMP/image-store/chunks" | cut -f1)
  log "image: $(fsize "$img") bytes, stored in $IMAGE_STORE_BYTES, at $IMAGE_URL"
}

# image_bytes_sent: body bytes nginx has sent from the image store so far.
image_bytes_sent() { awk '{ s += $10 } END { print s + 0 }' "$IMAGE_ACCESS_LOG"; }

run_image() {
  local kind=$1 logf=$TMP/console-image.$1.log from image=0 sent=0
  make_image_export
  if [[ $kind == hloop ]] && hloop_9p_has_image; then
    make_image_store
    image=1
    sent=$(image_bytes_sent)
    start_hloop_9p_image "$IMAGE_URL" "$TMP/image-cache"
    from="the ext4 image at $IMAGE_URL (hloop 9p --image)"
  else
    [[ $kind == diod ]] && log "[diod] diod cannot read an hloop image: its image battery uses a read-only directory export of the same tree"
    [[ $kind == hloop ]] && log "[hloop] hloop 9p has no --image option: the image battery uses a read-only directory export"
    start_9p_server "$kind" "$IMAGE_EX" ro
    from="a read-only directory export"
  fi
  local pid=$P9_PID
  log "[$kind] guest: image battery on $from (console: $logf)"
  p9_battery_words image
  if ! guest_run "$logf" "$TMP/initrd-image.img" "${P9_WORDS[@]}"; then
    soft_fail "[$kind] image battery: the guest did not finish (see above)"
  fi
  log "[$kind] guest finished in ${GUEST_WALL}s wall, battery status ${GUEST_RC:-none}"
  guest_steps "$logf" | sed 's/^/    /'
  print_phases "$logf" image
  check "[$kind] server still running after the image battery" pid_alive "$pid"
  stop_pid "$pid"
  if check_guest_steps "$kind" "$logf" "$IMAGE_STEPS"; then
    check_eq "[$kind] image battery exit status" 0 "${GUEST_RC:-none}"
  fi
  if ((image)); then
    # The guest read every file under etc/ and usr/bin/, never unread.bin:
    # its chunks (random data, stored as is) must not have been fetched.
    sent=$(($(image_bytes_sent) - sent))
    log "[$kind] host: hloop fetched $sent bytes of a store of $IMAGE_STORE_BYTES"
    check_le "[$kind] host: hloop fetched only what the guest read (not the $IMAGE_UNREAD_MB MiB it never read)" \
      "$sent" $((IMAGE_STORE_BYTES - IMAGE_UNREAD_MB * 1024 * 1024 / 2))
    check_ge "[$kind] host: hloop fetched what the guest read" "$sent" \
      $(($(du -sb "$IMAGE_EX" | cut -f1) / 8))
    check_eq "[$kind] host: the image is unchanged" "$IMAGE_SHA" "$(q sha "$TMP/image.img")"
  fi
  tree_manifest "$IMAGE_EX" >"$TMP/image.after.$kind"
  if diff -u "$TMP/image.before" "$TMP/image.after.$kind" >"$TMP/image.diff.$kind"; then
    ok "[$kind] host: the read-only export is unchanged"
  else
    head -n 20 "$TMP/image.diff.$kind" >&2
    soft_fail "[$kind] host: the read-only export changed"
  fi
}

keep_logs() {
  [[ -n ${HLOOP_9P_KEEP:-} ]] || return 0
  mkdir -p "$HLOOP_9P_KEEP"
  cp "$TMP"/console-* "$TMP"/*.log "$TMP"/*.log.out "$HLOOP_9P_KEEP"/ 2>/dev/null || true
}
cleanup_fn keep_logs

for kind in "${SERVERS[@]}"; do
  case $kind in
    diod) ;;
    hloop)
      if ! hloop_9p_available; then
        log "hloop 9p is not built yet ($HLOOP has no 9p subcommand): running only the other servers"
        continue
      fi
      ;;
    *) fail "unknown server '$kind' (diod or hloop)" ;;
  esac
  run_rw "$kind"
  if [[ $kind == hloop ]] && ! hloop_9p_has_image && ! grep -q -- '--read-only' <<<"$("$HLOOP" 9p --help 2>&1)"; then
    log "hloop 9p has neither --image nor --read-only yet: image battery skipped for hloop"
    continue
  fi
  run_image "$kind"
done
