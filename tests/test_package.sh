#!/usr/bin/env bash
# The Debian package (scripts/package.sh): lintian has no error, it installs
# with dpkg -i (its trigger runs update-initramfs on this machine), its man
# pages render without warnings, the bash completion completes subcommands and
# options, `mount -t hloop` mounts an image through /sbin/mount.hloop and
# umount ends the daemon, a bad URL fails with hloop's message, the systemd
# units verify, and dpkg -r removes every file it installed. The package is
# purged at the end, whatever happens, so the machine is left as it was.
source "$(dirname "$0")/lib.sh"
requires_fuse
requires dpkg dpkg-deb lintian help2man groff zcat mount umount pgrep

# pkg_status: dpkg's status of the package hloop ("" when dpkg never heard of it).
pkg_status() { dpkg-query -W -f='${Status}' hloop 2>/dev/null || true; }
st=$(pkg_status)
if [[ -n $st && $st != *not-installed ]]; then
  fail "the package hloop is on this machine already ($st); this test would remove it"
fi

# --- build (reusing the binary under test) and check
out=$TMP/out
log "building the package from $HLOOP"
HLOOP_BIN=$HLOOP bash "$HLOOP_SRC/scripts/package.sh" "$out" >"$TMP/package.log" 2>&1 ||
  { cat "$TMP/package.log" >&2; fail "scripts/package.sh failed"; }
version=$("$HLOOP" --version | awk '{ print $2 }')
deb=$out/hloop_${version}_$(dpkg --print-architecture).deb
check "package file $(basename "$deb") exists" test -f "$deb"
[[ -f $deb ]] || fail "no package to test"

rc=0
lintian --fail-on error "$deb" >"$TMP/lintian.log" 2>&1 || rc=$?
log "lintian says:"
sed 's/^/    /' "$TMP/lintian.log"
check_eq "lintian --fail-on error: exit status" 0 "$rc"

contents=$(dpkg-deb -c "$deb")
owners=$(awk '{ print $2 }' <<<"$contents" | sort -u)
check_eq "every file in the package belongs to root:root" root/root "$owners"
mode_of() { awk -v p="./$1" '$6 == p { print $1 }' <<<"$contents"; }
check_eq "/usr/bin/hloop is 0755" -rwxr-xr-x "$(mode_of usr/bin/hloop)"
check_eq "/sbin/mount.hloop is 0755" -rwxr-xr-x "$(mode_of sbin/mount.hloop)"
check_eq "the completion is 0644" -rw-r--r-- "$(mode_of usr/share/bash-completion/completions/hloop)"
check_eq "/etc/hloop/trusted.d is a directory" drwxr-xr-x "$(mode_of etc/hloop/trusted.d/)"
check_contains "DEBIAN/triggers activates update-initramfs" "activate-noawait update-initramfs" \
  "$(dpkg-deb -I "$deb" triggers)"
check_contains "Depends has fuse3" fuse3 "$(dpkg-deb -f "$deb" Depends)"
check_contains "Depends has libfuse3 (from dpkg-shlibdeps)" libfuse3 "$(dpkg-deb -f "$deb" Depends)"

# The initramfs files go in when dist/initramfs has them: a copy of the
# tree with placeholders (the real ones are the lead's) shows where and how.
fixture=$TMP/fixture
mkdir -p "$fixture"
cp -r "$HLOOP_SRC/scripts" "$HLOOP_SRC/dist" "$HLOOP_SRC/docs" "$HLOOP_SRC/README.md" "$fixture/"
mkdir -p "$fixture/dist/initramfs"
[[ -e $fixture/dist/initramfs/hook ]] || printf '#!/bin/sh\nexit 0\n' >"$fixture/dist/initramfs/hook"
[[ -e $fixture/dist/initramfs/script ]] || printf '# placeholder\n' >"$fixture/dist/initramfs/script"
HLOOP_BIN=$HLOOP bash "$fixture/scripts/package.sh" "$TMP/out-fixture" >"$TMP/package-fixture.log" 2>&1 ||
  { cat "$TMP/package-fixture.log" >&2; fail "scripts/package.sh failed on the fixture tree"; }
fcontents=$(dpkg-deb -c "$TMP/out-fixture/$(basename "$deb")")
check_contains "initramfs hook installed 0755" \
  "-rwxr-xr-x root/root" "$(grep -F ./usr/share/initramfs-tools/hooks/hloop <<<"$fcontents" || true)"
check_contains "initramfs boot script installed 0644" \
  "-rw-r--r-- root/root" "$(grep -F ./usr/share/initramfs-tools/scripts/hloop <<<"$fcontents" || true)"

# --- install
# The machine must be in a state this test can restore: dpkg would overwrite
# and then delete any file of the package that is there already without
# belonging to a package (an hloop copied by hand), and the update-initramfs
# trigger would run an hloop initramfs hook installed by hand after dpkg -r
# took /usr/bin/hloop away (it fails, and leaves initramfs-tools
# half-configured). Refuse, changing nothing.
check_eq "initramfs-tools is configured before the test" \
  "install ok installed" "$(dpkg-query -W -f='${Status}' initramfs-tools 2>/dev/null || true)"
foreign=()
while IFS= read -r p; do
  [[ -e /$p && ! -d /$p ]] || continue
  dpkg -S "/$p" >/dev/null 2>&1 || foreign+=("/$p")
done < <(awk '$1 !~ /^d/ { sub(/^\.\//, "", $6); print $6 }' <<<"$contents"
  printf '%s\n' usr/share/initramfs-tools/hooks/hloop usr/share/initramfs-tools/scripts/hloop)
check_eq "no hloop files installed by hand (not by a package) on this machine" "" "${foreign[*]}"
((FAILURES == 0)) || fail "this machine is not in a state the test can restore; changed nothing"

# At exit, even on failure (registered first, so it runs last): purge.
purge_hloop() {
  local st
  st=$(pkg_status)
  if [[ -n $st && $st != *not-installed ]]; then
    dpkg --purge hloop >"$TMP/purge.log" 2>&1 || { cat "$TMP/purge.log" >&2; return 1; }
  fi
}
cleanup_fn purge_hloop
rc=0
dpkg -i "$deb" >"$TMP/install.log" 2>&1 || rc=$?
sed 's/^/    /' "$TMP/install.log"
check_eq "dpkg -i: exit status" 0 "$rc"
((rc == 0)) || fail "the package did not install"
check_eq "initramfs-tools is left configured (its trigger, update-initramfs, succeeded)" \
  "install ok installed" "$(dpkg-query -W -f='${Status}' initramfs-tools)"
dpkg -L hloop >"$TMP/files.list"

# --- files
check "/usr/bin/hloop runs" /usr/bin/hloop --version
check "/sbin/mount.hloop is executable" test -x /sbin/mount.hloop
check "/etc/hloop/trusted.d exists" test -d /etc/hloop/trusted.d
for u in hloop-serve@.service hloop-mount@.service hloop-update.service hloop-update.timer; do
  check "unit $u installed" test -f "/lib/systemd/system/$u"
done
check "changelog.Debian.gz installed" test -f /usr/share/doc/hloop/changelog.Debian.gz
check "copyright installed" test -f /usr/share/doc/hloop/copyright

# Man pages: one per subcommand hloop --help lists, hloop(1), mount.hloop(8),
# each of dist/man; none makes groff warn.
mapfile -t subs < <(/usr/bin/hloop --help | awk '/^Subcommands:$/ { on = 1; next }
  on && /^[[:space:]]*$/ { on = 0 } on && /^  [^ -]/ { print $1 }')
check_ge "hloop --help lists subcommands" "${#subs[@]}" 10
want=(hloop.1 mount.hloop.8)
for s in "${subs[@]}"; do want+=("hloop-$s.1"); done
for f in "$HLOOP_SRC"/dist/man/*.[1-9]; do
  [[ -e $f && " ${want[*]} " != *" $(basename "$f") "* ]] && want+=("$(basename "$f")")
done
for p in "${want[@]}"; do
  f=/usr/share/man/man${p##*.}/$p.gz
  if [[ ! -f $f ]]; then
    soft_fail "man page $p is missing ($f)"
    continue
  fi
  warnings=$(zcat "$f" | groff -man -ww -z 2>&1)
  check_eq "man page $p renders without groff warnings" "" "$warnings"
done
check_contains "hloop(1) links hloop-mount(1) in SEE ALSO" '.BR hloop\-mount (1)' \
  "$(zcat /usr/share/man/man1/hloop.1.gz | sed -n '/^\.SH "SEE ALSO"/,$p')"
check_contains "hloop-mount(1) links mount.hloop(8) in SEE ALSO" '.BR mount.hloop (8)' \
  "$(zcat /usr/share/man/man1/hloop-mount.1.gz | sed -n '/^\.SH "SEE ALSO"/,$p')"
check_contains "hloop-mount(1) documents --cache" "--cache" \
  "$(zcat /usr/share/man/man1/hloop-mount.1.gz | groff -man -Tascii -P-bcu 2>/dev/null)"
# gzip -9n: no file name (FLG 0), no time (MTIME 0), best compression (XFL 2).
while IFS= read -r f; do
  check_eq "$f is gzip -9n'd" "31 139 8 0 0 0 0 0 2" "$(head -c 9 "$f" | od -An -tu1 | xargs)"
done < <(grep '^/usr/share/man/.*\.gz$' "$TMP/files.list")

# --- bash completion, as bash runs it (the function with COMP_WORDS/COMP_CWORD)
complete_words() {  # complete_words WORD... : what completing the last word offers
  env -i PATH=/usr/bin:/bin HOME="$TMP" bash --norc --noprofile -c '
    source /usr/share/bash-completion/completions/hloop || exit 1
    complete -p hloop >/dev/null || exit 1
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
    _hloop; printf "%s\n" "${COMPREPLY[@]}"' _ "$@"
}
check_contains "complete -p hloop after sourcing the completion" "complete -F _hloop hloop" \
  "$(env -i PATH=/usr/bin:/bin bash --norc -c 'source /usr/share/bash-completion/completions/hloop; complete -p hloop')"
check_eq "completing 'hloop mo' offers mount" mount "$(complete_words hloop mo)"
check_contains "completing 'hloop mount --ca' offers --cache" --cache "$(complete_words hloop mount --ca)"
check_contains "completing 'hloop mount --ca' offers --cacert" --cacert "$(complete_words hloop mount --ca)"
check_contains "completing 'hloop overlay ' offers info" info "$(complete_words hloop overlay '')"
mkdir -p "$TMP/compl/somedir"
check_contains "a positional argument completes as a path" "$TMP/compl/somedir" \
  "$(complete_words hloop mount "$TMP/compl/so")"

# --- mount -t hloop (mount(8) -> /sbin/mount.hloop -> hloop mount --daemon)
random_file "$TMP/img" $((3 * 1024 * 1024 + 4097))
/usr/bin/hloop pack "$TMP/img" "$TMP/store" --name img >/dev/null
start_hloop_serve "$TMP/store"
mnt=$TMP/mnt
mkdir -p "$mnt"
cleanup_fn unmount_fuse "$mnt" ""
# trust-dir: the image is unsigned, and this machine's /etc/hloop/trusted.d
# (the default) may hold keys.
rc=0
mount -t hloop "$URL/img.idx" "$mnt" \
  -o "defaults,nofail,_netdev,cache=$TMP/c,trust-dir=$TMP/no-keys,io-timeout=20,log=$TMP/daemon.log" \
  >"$TMP/mount.out" 2>&1 || rc=$?
cat "$TMP/mount.out"
check_eq "mount -t hloop: exit status" 0 "$rc"
check "the mount point is mounted" is_mounted "$mnt"
daemon_pid=$(pgrep -f -x "/usr/bin/hloop mount $URL/img.idx $mnt --daemon .*" | head -n1 || true)
check_ne "the hloop mount daemon runs" "" "$daemon_pid"
if is_mounted "$mnt"; then
  check_eq "the image reads back identical (sha256)" "$(sha "$TMP/img")" "$(sha "$mnt/img")"
  check "umount DIR" umount "$mnt"
  for ((i = 0; i < 100; i++)); do
    [[ -n $daemon_pid ]] && pid_alive "$daemon_pid" || break
    sleep 0.1
  done
  if [[ -n $daemon_pid ]]; then
    check_not "umount ended the hloop mount daemon" pid_alive "$daemon_pid"
  fi
  check_not "the mount point is no longer mounted" is_mounted "$mnt"
fi

rc=0
mount -t hloop "$URL/missing.idx" "$mnt" -o "cache=$TMP/c,trust-dir=$TMP/no-keys,io-timeout=5" >"$TMP/bad.out" 2>&1 || rc=$?
check_ne "mount -t hloop of a missing index fails" 0 "$rc"
check_contains "... with hloop's message" "missing.idx: not found" "$(cat "$TMP/bad.out")"
check_not "... and mounts nothing" is_mounted "$mnt"
rc=0
mount -t hloop "$URL/img.idx" "$mnt" -o "cache=$TMP/c,no-such-option" >"$TMP/bad2.out" 2>&1 || rc=$?
check_ne "mount -t hloop with an unknown option fails" 0 "$rc"
check_contains "... naming the option" "--no-such-option" "$(cat "$TMP/bad2.out")"
unmount_fuse "$mnt" ""

# --- systemd units
units=(/lib/systemd/system/hloop-update.timer /lib/systemd/system/hloop-update.service
  /lib/systemd/system/hloop-serve@test.service /lib/systemd/system/hloop-mount@test.service)
if command -v systemd-analyze >/dev/null; then
  # Documentation=man:hloop-boot(7) is the lead's page; until it is in the
  # tree, do not ask systemd-analyze to look man pages up.
  manopt=()
  [[ -f /usr/share/man/man7/hloop-boot.7.gz ]] || manopt=(--man=no)
  rc=0
  systemd-analyze verify "${manopt[@]}" "${units[@]}" >"$TMP/verify.log" 2>&1 || rc=$?
  sed 's/^/    /' "$TMP/verify.log"
  check_eq "systemd-analyze verify ${manopt[*]} of the units: exit status" 0 "$rc"
  check_eq "systemd-analyze verify: no complaints" "" "$(grep -v '^$' "$TMP/verify.log" || true)"
else
  log "systemd-analyze is missing: the units are checked by hand only"
  for u in hloop-update.timer hloop-update.service hloop-serve@.service hloop-mount@.service; do
    f=/lib/systemd/system/$u
    check "$u has [Unit]" grep -qx '\[Unit\]' "$f"
    for exe in $(sed -n 's/^Exec[A-Za-z]*=[-@:+!]*\([^ ]*\).*/\1/p' "$f"); do
      check "$u: $exe is executable" test -x "$exe"
    done
  done
fi
check "hloop-update.timer is enabled (the postinst)" \
  test -L /etc/systemd/system/timers.target.wants/hloop-update.timer
check_contains "hloop-update.service runs only where the boot script wrote /run/initramfs/hloop/boot.env" \
  "ConditionPathExists=/run/initramfs/hloop/boot.env" "$(cat /lib/systemd/system/hloop-update.service)"

# --- dpkg -r removes every file it installed (and its trigger rebuilds the initramfs)
rc=0
dpkg -r hloop >"$TMP/remove.log" 2>&1 || rc=$?
sed 's/^/    /' "$TMP/remove.log"
check_eq "dpkg -r hloop: exit status" 0 "$rc"
left=()
while IFS= read -r p; do
  if [[ -d $p ]]; then
    # A directory (or, merged /usr, a link to one: /lib, /sbin) may stay
    # only if something else still has files in it.
    [[ -n $(ls -A "$p" 2>/dev/null) ]] || left+=("$p (empty directory)")
  elif [[ -e $p || -L $p ]]; then
    left+=("$p")
  fi
done <"$TMP/files.list"
check_eq "dpkg -r left nothing of what dpkg -L listed" "" "${left[*]}"
check_eq "initramfs-tools is configured after removal too" \
  "install ok installed" "$(dpkg-query -W -f='${Status}' initramfs-tools)"
