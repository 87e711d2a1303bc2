#!/usr/bin/env bash
# The main job end to end, on an embedded default: build a small ext4 image,
# pack it, serve the store over HTTP, mount it lazily, and read it back.
# Run as root (FUSE, loop devices). Leaves nothing behind.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
hloop=${HLOOP:-$src/build/hloop}
work=$(mktemp -d /tmp/hloop-demo.XXXXXX)
server_pid=""
loopdev=""
cleanup() {
  set +e
  mountpoint -q "$work/fs" && umount "$work/fs"
  [ -n "$loopdev" ] && losetup -d "$loopdev"
  mountpoint -q "$work/mnt" && umount "$work/mnt"
  [ -n "$server_pid" ] && kill "$server_pid" && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }

step "1. make a small ext4 image with real files"
mkdir -p "$work/tree/docs" "$work/tree/bin" "$work/mnt" "$work/fs"
cp -r /usr/share/common-licenses "$work/tree/docs/"
cp /bin/ls /bin/cat "$work/tree/bin/"
head -c 8M /dev/urandom > "$work/tree/random.bin"
echo "hello from a disk image on a web server" > "$work/tree/hello.txt"
truncate -s 64M "$work/disk.img"
mkfs.ext4 -q -L hloop-demo -d "$work/tree" "$work/disk.img"

step "2. pack it into a store of chunk files and an index"
"$hloop" pack "$work/disk.img" "$work/store"
"$hloop" info "$work/store/disk.idx"

step "3. serve the store over HTTP"
port=$(( 20000 + RANDOM % 20000 ))
"$hloop" serve "$work/store" --listen "127.0.0.1:$port" > "$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$port/disk.idx" && break; sleep 0.1; done
url="http://127.0.0.1:$port/disk.idx"
echo "index at $url"

step "4. mount it lazily (chunks are fetched and verified as they are read)"
"$hloop" mount "$url" "$work/mnt" --cache "$work/cache" --daemon
ls -l "$work/mnt"

step "5. read it back"
want=$(sha256sum < "$work/disk.img" | cut -d' ' -f1)
got=$(sha256sum < "$work/mnt/disk" | cut -d' ' -f1)
echo "source image:  $want"
echo "mounted image: $got"
[ "$want" = "$got" ] || { echo "MISMATCH" >&2; exit 1; }
loopdev=$(losetup -r -f --show "$work/mnt/disk")
mount -o ro "$loopdev" "$work/fs"
cat "$work/fs/hello.txt"
diff -r "$work/tree" "$work/fs" --exclude=lost+found
echo "every file matches the source tree"
umount "$work/fs"; losetup -d "$loopdev"; loopdev=""
echo "cache now holds: $(du -sh "$work/cache" | cut -f1)"

step "done: pack, serve, mount and read back all worked"
