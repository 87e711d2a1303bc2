# shellcheck shell=sh disable=SC2317,SC2154  # steps run via `step`; HLT_* come from /init
# The image-export battery: the 9P export is read-only (a file system image
# served read-only).  Run by /init as `sh image.sh MNT`.
#
# 1. sha256 of every regular file under the directories hlt.dirs (comma-
#    separated, relative to MNT; default etc,usr/bin) must equal the host's
#    list: /p9/manifest.sha256 in the initramfs, else MNT/.p9-manifest.sha256
#    in the export itself.  List format: `sha256sum` lines ("HASH  DIR/FILE"),
#    paths relative to MNT, sorted with `sort` (C locale).
# 2. Every kind of write must fail with EROFS from the server (the guest mounts
#    read-write, so the refusal has to come from the server, not the VFS).
# Phase: image (step 1 only).
. /p9/common.sh
M=$1
DIRS=$(echo "${HLT_dirs:-etc,usr/bin}" | tr ',' ' ')
MANIFEST=/p9/manifest.sha256
[ -f "$MANIFEST" ] || MANIFEST=$M/.p9-manifest.sha256

t_manifest_present() {
    [ -s "$MANIFEST" ] || { DETAIL="no manifest (/p9/manifest.sha256 or export's .p9-manifest.sha256)"; return 1; }
    DETAIL="$(wc -l <"$MANIFEST") files, dirs $DIRS"
}

t_hash_all() {
    # shellcheck disable=SC2086  # DIRS is a word list
    (cd "$M" && find $DIRS -type f -print0 | xargs -0 -r sha256sum) | sort >/tmp/got.sha256 ||
        { DETAIL="hashing failed"; return 1; }
    sort "$MANIFEST" >/tmp/want.sha256
    eq "number of files" "$(wc -l </tmp/want.sha256)" "$(wc -l </tmp/got.sha256)" || {
        DETAIL="$DETAIL; diff: $(oneline "$(diff /tmp/want.sha256 /tmp/got.sha256 | grep '^[-+][^-+]' | head -n 5)")"
        return 1
    }
    if ! diff /tmp/want.sha256 /tmp/got.sha256 >/tmp/diff.txt; then
        DETAIL="$(grep -c '^-[^-]' /tmp/diff.txt) files differ, e.g. $(oneline "$(grep '^[-+][^-+]' /tmp/diff.txt | head -n 4)")"
        return 1
    fi
    DETAIL="$(wc -l </tmp/got.sha256) files match"
}

# erofs WHAT CMD...: CMD fails with "Read-only file system".
erofs() {
    _what=$1
    shift
    mustnot "$_what" "$@" || return 1
    case $ERRMSG in
        *"Read-only file system"*) return 0 ;;
        *) DETAIL="$_what: expected EROFS, got: $(oneline "$ERRMSG")"; return 1 ;;
    esac
}

phase_begin
step manifest t_manifest_present
step sha256-all t_hash_all
phase_end image

# A file and a directory from the list to try writes on.
F=$(head -n 1 /tmp/want.sha256 2>/dev/null | sed 's/^[0-9a-f]*  //')
D=${F%/*}
F_SHA=$(head -n 1 /tmp/want.sha256 2>/dev/null | cut -d' ' -f1)
echo "VALUE target $F"
t_target() { [ -n "$F" ] && [ -f "$M/$F" ] || { DETAIL="no file to try writes on"; return 1; }; }
step erofs-target t_target
step erofs-create erofs "create" sh -c "echo x > '$M/$D/p9-new-file'"
step erofs-excl-create erofs "exclusive create" sh -c "set -C; echo x > '$M/$D/p9-new-file2'"
step erofs-mkdir erofs "mkdir" mkdir "$M/$D/p9-new-dir"
step erofs-append erofs "append to an existing file" sh -c "echo x >> '$M/$F'"
step erofs-trunc-open erofs "open with O_TRUNC" sh -c ": > '$M/$F'"
step erofs-truncate erofs "truncate" truncate -s 0 "$M/$F"
step erofs-unlink erofs "unlink" rm -f "$M/$F"
step erofs-rename erofs "rename" mv "$M/$F" "$M/$F.renamed"
step erofs-chmod erofs "chmod" chmod 600 "$M/$F"
step erofs-chown erofs "chown" chown 1234:5678 "$M/$F"
step erofs-touch erofs "touch" touch -d "2001-02-03 04:05:06" "$M/$F"
step erofs-symlink erofs "symlink" ln -s x "$M/$D/p9-new-link"
step erofs-link erofs "hard link" ln "$M/$F" "$M/$D/p9-new-hardlink"
step erofs-mkfifo erofs "mkfifo" mkfifo "$M/$D/p9-new-fifo"
t_unchanged() {
    eq "sha256 of $F after the refused writes" "$F_SHA" "$(sha "$M/$F")" || return 1
    absent "$M/$D/p9-new-file" && absent "$M/$D/p9-new-dir" && absent "$M/$F.renamed"
}
step erofs-unchanged t_unchanged

echo "BATTERY-END steps=$NSTEPS failed=$NFAIL"
exit $NFAIL
