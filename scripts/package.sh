#!/usr/bin/env bash
# Builds the Debian package: scripts/package.sh OUTDIR
#   -> OUTDIR/hloop_VERSION_ARCH.deb (VERSION from `hloop --version`, ARCH from
#      `dpkg --print-architecture`); prints its path.
# Builds the release hloop first (scripts/build.sh release hloop), unless
# HLOOP_BIN=PATH names a binary to package instead.
# Needs help2man, dpkg-dev (dpkg-shlibdeps), groff and binutils (scripts/deps.sh).
# What goes where is in docs/packaging.md.
set -euo pipefail
umask 022
export LC_ALL=C
src=$(cd "$(dirname "$0")/.." && pwd)
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR   (HLOOP_BIN=PATH to package that binary)" >&2; exit 2; }
mkdir -p "$1"
out=$(cd "$1" && pwd)
for tool in help2man dpkg-shlibdeps dpkg-deb groff strip gzip; do
  command -v "$tool" >/dev/null || { echo "$0: $tool is missing (bash scripts/deps.sh)" >&2; exit 1; }
done

if [ -n "${HLOOP_BIN:-}" ]; then
  bin=$(realpath "$HLOOP_BIN")
else
  bin=$(bash "$src/scripts/build.sh" release hloop)/hloop
fi
[ -x "$bin" ] || { echo "$0: $bin is not an executable" >&2; exit 1; }
version=$("$bin" --version | awk '{ print $2; exit }')
[[ $version =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || { echo "$0: bad version '$version' from $bin --version" >&2; exit 1; }
arch=$(dpkg --print-architecture)
# Reproducible dates: the last commit's, else now.
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$src" log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH=$epoch

work=$(mktemp -d /tmp/hloop-package.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
doc=$root/usr/share/doc/hloop
man1=$root/usr/share/man/man1
install -d "$root/DEBIAN" "$root/usr/bin" "$root/sbin" "$root/lib/systemd/system" \
  "$root/etc/hloop/trusted.d" "$root/usr/share/bash-completion/completions" "$doc" "$man1"

# 1. The binary, stripped as dh_strip does.
install -m 0755 "$bin" "$root/usr/bin/hloop"
strip --remove-section=.comment --remove-section=.note --strip-unneeded "$root/usr/bin/hloop"

# 2. Man pages. help2man runs `PROGRAM --help`: one small wrapper per
#    (sub)command makes `hloop SUB` such a program, named hloop-SUB.
wrap=$work/bin
mkdir -p "$wrap" "$work/man"
cp "$root/usr/bin/hloop" "$wrap/hloop"
# subcommands ARGS...: NAME<TAB>SUMMARY for each subcommand `hloop ARGS --help` lists.
subcommands() {
  "$wrap/hloop" "$@" --help | awk '/^Subcommands:$/ { on = 1; next }
    on && /^[[:space:]]*$/ { on = 0 }
    on && /^  [^ -]/ { name = $1; sub(/^  [^ ]+ +/, ""); print name "\t" $0 }'
}
# roff_name TEXT: "Mount an image (--overlay)" -> "mount an image (\-\-overlay)",
# for the NAME line of a man page (lower case first, minus signs as such).
roff_name() { local t=${1,}; printf '%s' "${t//-/\\-}"; }
pages=()   # every man page as NAME.SECTION, for the SEE ALSO of hloop(1)
# manpage NAME SUMMARY SEEALSO [ARGS...]: NAME.1 from `hloop ARGS --help`.
manpage() {
  local name=$1 summary=$2 seealso=$3; shift 3
  if [ $# -gt 0 ]; then
    printf '#!/bin/sh\nexec "%s" %s "$@"\n' "$wrap/hloop" "$*" >"$wrap/$name"
    chmod 0755 "$wrap/$name"
  fi
  printf '[SEE ALSO]\n%s\n' "$seealso" >"$work/man/$name.h2m"
  help2man --no-info --no-discard-stderr --section=1 --version-string="$version" \
    --name="$(roff_name "$summary")" --source="hloop $version" --manual="hloop manual" \
    --include="$work/man/$name.h2m" --output="$work/man/$name.1" "$wrap/$name"
  pages+=("$name.1")
}
# see_also PAGE...: roff for a SEE ALSO list of NAME.SECTION pages.
see_also() {
  local p name sep=,
  for p in "$@"; do
    [ "$p" = "${*: -1}" ] && sep=''
    name=${p%.*}
    printf '.BR %s (%s)%s\n' "${name//-/\\-}" "${p##*.}" "$sep"
  done
}
hand=()   # the hand-written pages in dist/man (NAME.SECTION)
for f in "$src"/dist/man/*.[1-9]; do
  [ -e "$f" ] && hand+=("$(basename "$f")")
done
mapfile -t subs < <(subcommands)
[ ${#subs[@]} -gt 0 ] || { echo "$0: hloop --help lists no subcommands" >&2; exit 1; }
sub_pages=()
for line in "${subs[@]}"; do sub_pages+=("hloop-${line%%$'\t'*}.1"); done
for line in "${subs[@]}"; do
  sub=${line%%$'\t'*} summary=${line#*$'\t'}
  extra=()
  [ "$sub" = mount ] && extra+=(mount.hloop.8)
  # Nested subcommands (hloop overlay info, hloop key generate): a page each.
  mapfile -t nested < <(subcommands "$sub")
  nested_pages=()
  for n in "${nested[@]}"; do nested_pages+=("hloop-$sub-${n%%$'\t'*}.1"); done
  manpage "hloop-$sub" "$summary" "$(see_also hloop.1 "${nested_pages[@]}" "${extra[@]}")" "$sub"
  for n in "${nested[@]}"; do
    manpage "hloop-$sub-${n%%$'\t'*}" "${n#*$'\t'}" "$(see_also hloop.1 "hloop-$sub.1")" "$sub" "${n%%$'\t'*}"
  done
done
manpage hloop "disk images that live on any plain web server" \
  "$(see_also "${sub_pages[@]}" "${hand[@]}")"
for f in "${hand[@]}"; do cp "$src/dist/man/$f" "$work/man/$f"; pages+=("$f"); done
for p in "${pages[@]}"; do
  warnings=$(groff -man -ww -z "$work/man/$p" 2>&1)
  [ -z "$warnings" ] || { echo "$0: groff warns about $p:" >&2; echo "$warnings" >&2; exit 1; }
  section=${p##*.}
  install -d "$root/usr/share/man/man$section"
  gzip -9n <"$work/man/$p" >"$root/usr/share/man/man$section/$p.gz"
done

# 3. Bash completion.
install -m 0644 "$src/dist/bash-completion/hloop" "$root/usr/share/bash-completion/completions/hloop"

# 4. systemd units (templates; hloop-update.timer is enabled by postinst).
install -m 0644 "$src"/dist/systemd/*.service "$src"/dist/systemd/*.timer "$root/lib/systemd/system/"

# 5. The mount(8) helper.
install -m 0755 "$src/dist/mount.hloop" "$root/sbin/mount.hloop"

# 6. initramfs-tools hook and boot script, when present in the tree.
if [ -e "$src/dist/initramfs/hook" ]; then
  install -D -m 0755 "$src/dist/initramfs/hook" "$root/usr/share/initramfs-tools/hooks/hloop"
fi
if [ -e "$src/dist/initramfs/script" ]; then
  install -D -m 0644 "$src/dist/initramfs/script" "$root/usr/share/initramfs-tools/scripts/hloop"
fi

# 7. Documentation, examples, copyright, changelog.
install -m 0644 "$src/dist/debian/copyright" "$doc/copyright"
sed "s/@VERSION@/$version/; s/@DATE@/$(date -R -u -d "@$epoch")/" "$src/dist/debian/changelog" |
  gzip -9n >"$doc/changelog.Debian.gz"
for f in README.md docs/packaging.md docs/trust.md docs/serving.md; do
  [ -e "$src/$f" ] || continue
  # As dh_compress: documents over 4 KiB are compressed.
  if [ "$(stat -c %s "$src/$f")" -gt 4096 ]; then
    gzip -9n <"$src/$f" >"$doc/$(basename "$f").gz"
  else
    install -m 0644 "$src/$f" "$doc/"
  fi
done
install -d "$doc/examples"
install -m 0644 "$src"/dist/examples/* "$src"/dist/netboot/boot.ipxe "$doc/examples/"

# DEBIAN/: scripts, triggers, md5sums, control (Depends from dpkg-shlibdeps).
install -m 0755 "$src/dist/debian/postinst" "$src/dist/debian/prerm" "$src/dist/debian/postrm" "$root/DEBIAN/"
install -m 0644 "$src/dist/debian/triggers" "$root/DEBIAN/triggers"
find "$root" -path "$root/DEBIAN" -prune -o -type f -printf '%P\0' | sort -z |
  (cd "$root" && xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"
# dpkg-shlibdeps wants to run in a source tree: give it a minimal one.
mkdir -p "$work/src/debian"
printf 'Source: hloop\n\nPackage: hloop\nArchitecture: any\n' >"$work/src/debian/control"
shlibs=$(cd "$work/src" && dpkg-shlibdeps -O "$root/usr/bin/hloop" | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "$0: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
  -e "s/@DEPENDS@/$shlibs, fuse3/" "$src/dist/debian/control.in" >"$root/DEBIAN/control"
chmod 0644 "$root/DEBIAN/control"

deb=$out/hloop_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
