# shellcheck shell=sh disable=SC2317,SC2154  # steps run via `step`; HLT_* come from /init
# The read-write 9P battery, run by the guest's /init as `sh battery.sh MNT`.
#
# The host prepared MNT/hello.txt and MNT/big40.bin and passes, on the kernel
# command line, HLT_hellosha, HLT_bigsha, HLT_bigsize.  Everything the guest
# creates is under MNT/w (which must not exist yet); the host checks it
# afterwards (tests/test_9p_guest.sh), so what the guest leaves there is part
# of the contract:
#   w/create.txt "one\ntwo\n"          w/trunc.txt "01234" + zeros, 100000 bytes
#   w/trunc0.txt empty                 w/d_full/f, no w/d_empty
#   w/r_dir/r_c "r1\n", w/r_dir/r_sub2/ (renamed dir), no w/r_a, w/r_b, w/r_sub
#   w/o_dst "new\n", no w/o_src        w/h1, w/h2: one inode, 2 links
#   w/sl -> create.txt, w/sl2 -> /nonexistent/target
#   w/mode 0640, w/dmode/ 0711         w/own uid 1234 gid 5678
#   w/touched mtime and atime 981173106 (2001-02-03 04:05:06 UTC)
#   w/fifo a FIFO                      no w/unl, w/unl_open, w/tree
#   w/dd.bin 1 MiB of zeros            w/excl "first\n"
#   w/many/f0..f4999 (empty)           w/big48.bin (sha256 printed as VALUE big48sha)
#   no w/small
# Phases: metadata, largeread, largewrite, smallfiles.
. /p9/common.sh
M=$1
W=$M/w
MTIME=981173106           # touch -d "2001-02-03 04:05:06" (TZ=UTC)
NMANY=5000
NSMALL=1500
WRITE_MB=48

# ---------------------------------------------------------------- metadata

t_ls() {
    _l=$(ls -l "$M" 2>&1) || { DETAIL="ls -l failed: $(oneline "$_l")"; return 1; }
    echo "$_l" | grep -q ' hello.txt$' || { DETAIL="no hello.txt in: $(oneline "$_l")"; return 1; }
    _sz=$(echo "$_l" | awk '$NF == "big40.bin" { print $5 }')
    eq "size of big40.bin in ls -l" "$HLT_bigsize" "$_sz" || return 1
    _perm=$(echo "$_l" | awk '$NF == "hello.txt" { print substr($1, 1, 1) }')
    eq "type of hello.txt in ls -l" "-" "$_perm"
}

t_cat() {
    _c=$(cat "$M/hello.txt" 2>&1) || { DETAIL="cat failed: $(oneline "$_c")"; return 1; }
    eq "sha256 of hello.txt" "$HLT_hellosha" "$(sha256sum <"$M/hello.txt" | cut -d' ' -f1)"
}

t_workdir() {
    absent "$W" || return 1
    must "mkdir $W" mkdir "$W" || return 1
    eq "type of $W" "directory" "$(stat -c %F "$W")"
}

t_create() {
    must "create" sh -c "echo one > '$W/create.txt'" || return 1
    eq "content" "one" "$(cat "$W/create.txt")" || return 1
    eq "size" 4 "$(stat -c %s "$W/create.txt")" || return 1
    in_listing "$W" create.txt || { DETAIL="create.txt not in ls -a $W"; return 1; }
}

t_append() {
    must "append" sh -c "echo two >> '$W/create.txt'" || return 1
    eq "content" "one
two" "$(cat "$W/create.txt")" || return 1
    eq "size" 8 "$(stat -c %s "$W/create.txt")"
}

t_truncate() {
    printf 0123456789 >"$W/trunc.txt" || { DETAIL="write failed"; return 1; }
    must "truncate -s 5" truncate -s 5 "$W/trunc.txt" || return 1
    eq "size after truncate -s 5" 5 "$(stat -c %s "$W/trunc.txt")" || return 1
    eq "content after truncate -s 5" 01234 "$(cat "$W/trunc.txt")" || return 1
    must "truncate -s 100000" truncate -s 100000 "$W/trunc.txt" || return 1
    eq "size after truncate -s 100000" 100000 "$(stat -c %s "$W/trunc.txt")" || return 1
    eq "tail after growing" "0000000000" "$(tail -c 5 "$W/trunc.txt" | od -An -tx1 | tr -d ' \n')" || return 1
    printf 'some data\n' >"$W/trunc0.txt"
    must "O_TRUNC open" sh -c ": > '$W/trunc0.txt'" || return 1
    eq "size after O_TRUNC" 0 "$(stat -c %s "$W/trunc0.txt")"
}

t_mkdir_rmdir() {
    must "mkdir d_empty" mkdir "$W/d_empty" || return 1
    mustnot "mkdir of an existing directory" mkdir "$W/d_empty" || return 1
    must "rmdir d_empty" rmdir "$W/d_empty" || return 1
    absent "$W/d_empty" || return 1
    must "mkdir d_full" mkdir "$W/d_full" || return 1
    echo f >"$W/d_full/f"
    mustnot "rmdir of a non-empty directory" rmdir "$W/d_full" || return 1
    case $ERRMSG in
        *"not empty"*) ;;
        *) DETAIL="rmdir of a non-empty directory: expected ENOTEMPTY, got: $(oneline "$ERRMSG")"; return 1 ;;
    esac
    exists "$W/d_full/f"
}

t_rename_same() {
    echo r1 >"$W/r_a"
    must "mv r_a r_b" mv "$W/r_a" "$W/r_b" || return 1
    absent "$W/r_a" || return 1
    in_listing "$W" r_a && { DETAIL="r_a still listed"; return 1; }
    eq "content of r_b" r1 "$(cat "$W/r_b")"
}

t_rename_cross() {
    mkdir "$W/r_dir" "$W/r_sub" && echo s >"$W/r_sub/inner" || { DETAIL="setup failed"; return 1; }
    must "mv r_b r_dir/r_c" mv "$W/r_b" "$W/r_dir/r_c" || return 1
    absent "$W/r_b" || return 1
    eq "content of r_dir/r_c" r1 "$(cat "$W/r_dir/r_c")" || return 1
    must "mv r_sub r_dir/r_sub2 (a directory)" mv "$W/r_sub" "$W/r_dir/r_sub2" || return 1
    absent "$W/r_sub" || return 1
    eq "content of r_dir/r_sub2/inner" s "$(cat "$W/r_dir/r_sub2/inner")"
}

t_rename_over() {
    echo new >"$W/o_src"
    echo old >"$W/o_dst"
    must "mv o_src over o_dst" mv -f "$W/o_src" "$W/o_dst" || return 1
    absent "$W/o_src" || return 1
    eq "content of o_dst" new "$(cat "$W/o_dst")"
}

t_hardlink() {
    echo hl >"$W/h1"
    must "ln h1 h2" ln "$W/h1" "$W/h2" || return 1
    eq "link count of h1" 2 "$(stat -c %h "$W/h1")" || return 1
    eq "link count of h2" 2 "$(stat -c %h "$W/h2")" || return 1
    eq "inode of h2 (= inode of h1)" "$(stat -c %i "$W/h1")" "$(stat -c %i "$W/h2")" || return 1
    eq "content of h2" hl "$(cat "$W/h2")"
    DETAIL="inode $(stat -c %i "$W/h1")"
}

t_symlink() {
    must "ln -s create.txt sl" ln -s create.txt "$W/sl" || return 1
    must "ln -s /nonexistent/target sl2" ln -s /nonexistent/target "$W/sl2" || return 1
    eq "readlink sl" create.txt "$(readlink "$W/sl")" || return 1
    eq "readlink sl2" /nonexistent/target "$(readlink "$W/sl2")" || return 1
    eq "type of sl" "symbolic link" "$(stat -c %F "$W/sl")" || return 1
    eq "cat through sl" "one
two" "$(cat "$W/sl")"
}

t_chmod() {
    echo m >"$W/mode"
    must "chmod 640" chmod 640 "$W/mode" || return 1
    eq "mode" 640 "$(stat -c %a "$W/mode")" || return 1
    mkdir "$W/dmode"
    must "chmod 711 on a directory" chmod 711 "$W/dmode" || return 1
    eq "directory mode" 711 "$(stat -c %a "$W/dmode")"
}

t_chown() {
    echo o >"$W/own"
    must "chown 1234:5678" chown 1234:5678 "$W/own" || return 1
    eq "owner" 1234:5678 "$(stat -c %u:%g "$W/own")"
}

t_touch() {
    must "touch -d" touch -d "2001-02-03 04:05:06" "$W/touched" || return 1
    eq "mtime" "$MTIME" "$(stat -c %Y "$W/touched")" || return 1
    eq "atime" "$MTIME" "$(stat -c %X "$W/touched")"
}

t_mkfifo() {
    must "mkfifo" mkfifo "$W/fifo" || return 1
    eq "type" fifo "$(stat -c %F "$W/fifo")" || return 1
    # A FIFO on 9P is a local pipe in the guest: data must pass through it.
    timeout 20 sh -c "echo via-fifo > '$W/fifo'" &
    _got=$(timeout 20 cat "$W/fifo")
    wait
    eq "data through the fifo" via-fifo "$_got"
}

t_unlink() {
    echo u >"$W/unl"
    must "rm unl" rm "$W/unl" || return 1
    absent "$W/unl" || return 1
    in_listing "$W" unl && { DETAIL="unl still listed"; return 1; }
    mustnot "cat of the removed file" cat "$W/unl"
}

t_unlink_open() {
    echo still-readable >"$W/unl_open"
    exec 3<"$W/unl_open"
    must "rm unl_open (open)" rm "$W/unl_open" || { exec 3<&-; return 1; }
    read -r _l <&3
    exec 3<&-
    absent "$W/unl_open" || return 1
    eq "read from the open, unlinked file" still-readable "$_l"
}

t_rm_r() {
    mkdir -p "$W/tree/a/b/c" && echo 1 >"$W/tree/f1" && echo 2 >"$W/tree/a/f2" &&
        echo 3 >"$W/tree/a/b/c/f3" && ln -s ../f1 "$W/tree/a/l1" || { DETAIL="setup failed"; return 1; }
    must "rm -r tree" rm -r "$W/tree" || return 1
    absent "$W/tree"
}

t_df() {
    _df=$(df -k "$M" 2>&1) || { DETAIL="df failed: $(oneline "$_df")"; return 1; }
    _total=$(echo "$_df" | awk 'NR == 2 { print $2 }')
    [ "${_total:-0}" -gt 0 ] 2>/dev/null || { DETAIL="df shows no size: $(oneline "$_df")"; return 1; }
    _bs=$(stat -f -c %S "$M")
    DETAIL="total ${_total} KiB, block size $_bs, type $(stat -f -c %T "$M")"
}

t_dd_fsync() {
    must "dd conv=fsync" dd if=/dev/zero of="$W/dd.bin" bs=65536 count=16 conv=fsync || return 1
    eq "size" 1048576 "$(stat -c %s "$W/dd.bin")"
}

t_excl() {
    # ash's noclobber (set -C): open(O_CREAT|O_EXCL) when the name is new;
    # an existing regular file is refused (EEXIST).
    must "exclusive create of a new file" sh -c "set -C; echo first > '$W/excl'" || return 1
    mustnot "exclusive create of an existing file" sh -c "set -C; echo second > '$W/excl'" || return 1
    eq "content" first "$(cat "$W/excl")"
}

t_many() {
    mkdir "$W/many" || { DETAIL="mkdir failed"; return 1; }
    # From inside the directory: with cache=none the kernel walks (and
    # getattrs, and clunks) every component of an absolute path again for
    # each open, 13 requests per create instead of 7.
    cd "$W/many" || { DETAIL="cd failed"; return 1; }
    _i=0
    while [ $_i -lt $NMANY ]; do
        : >"f$_i" || { DETAIL="creating f$_i failed"; cd /; return 1; }
        _i=$((_i + 1))
    done
    cd /
    list_names "$W/many" >/tmp/many.ls || { DETAIL="listing failed"; return 1; }
    eq "entries listed" $NMANY "$(wc -l </tmp/many.ls)" || return 1
    eq "distinct f* entries listed" $NMANY "$(grep '^f[0-9]*$' /tmp/many.ls | sort -u | wc -l)" || return 1
    grep -qx f0 /tmp/many.ls && grep -qx "f$((NMANY - 1))" /tmp/many.ls ||
        { DETAIL="f0 or f$((NMANY - 1)) not listed"; return 1; }
    eq "size of f$((NMANY - 1))" 0 "$(stat -c %s "$W/many/f$((NMANY - 1))")"
}

# ------------------------------------------------------------------- phases

echo "UPTIME battery $(now)"
phase_begin
step ls-l t_ls
step cat t_cat
step workdir t_workdir
step create t_create
step append t_append
step truncate t_truncate
step mkdir-rmdir t_mkdir_rmdir
step rename-same-dir t_rename_same
step rename-cross-dir t_rename_cross
step rename-over t_rename_over
step hardlink t_hardlink
step symlink t_symlink
step chmod t_chmod
step chown t_chown
step touch-d t_touch
step mkfifo t_mkfifo
step unlink t_unlink
step unlink-open t_unlink_open
step rm-r t_rm_r
step df t_df
step dd-fsync t_dd_fsync
step excl-create t_excl
step dir-5000 t_many
phase_end metadata

t_largeread() {
    _s=$(sha "$M/big40.bin")
    eq "sha256 of big40.bin" "$HLT_bigsha" "$_s"
}
phase_begin
step largeread-40M t_largeread
phase_end largeread

# The 48 MiB source is made in guest RAM before the phase starts.
head -c $((WRITE_MB * 1048576)) /dev/urandom >/tmp/src48
SRC48=$(sha256sum /tmp/src48 | cut -d' ' -f1)
echo "VALUE big48sha $SRC48"
t_largewrite() {
    must "dd to big48.bin" dd if=/tmp/src48 of="$W/big48.bin" bs=1048576 conv=fsync || return 1
    eq "size of big48.bin" $((WRITE_MB * 1048576)) "$(stat -c %s "$W/big48.bin")" || return 1
    eq "sha256 read back" "$SRC48" "$(sha "$W/big48.bin")"
}
phase_begin
step largewrite-48M t_largewrite
phase_end largewrite
rm -f /tmp/src48

PAD=$(printf '%0100d' 0)
t_small_create() {
    mkdir "$W/small" || { DETAIL="mkdir failed"; return 1; }
    cd "$W/small" || { DETAIL="cd failed"; return 1; }   # see t_many
    _i=0
    while [ $_i -lt $NSMALL ]; do
        echo "small $_i $PAD" >"s$_i" || { DETAIL="creating s$_i failed"; cd /; return 1; }
        _i=$((_i + 1))
    done
    cd /
    eq "files listed" $NSMALL "$(list_names "$W/small" | grep -c '^s')"
}
t_small_read() {
    # One cat for all: ash's `read` builtin reads one byte per syscall (one
    # Tread per byte on 9P), cat reads each file whole.
    (cd "$W/small" && seq 0 $((NSMALL - 1)) | sed 's/^/s/' | xargs cat) >/tmp/small.got ||
        { DETAIL="cat failed"; return 1; }
    _i=0
    while [ $_i -lt $NSMALL ]; do
        echo "small $_i $PAD"
        _i=$((_i + 1))
    done >/tmp/small.want
    if ! cmp -s /tmp/small.want /tmp/small.got; then
        # One line per file: the first differing line names the file.
        _n=$(diff /tmp/small.want /tmp/small.got | sed -n 's/^\([0-9]*\)[acd,].*/\1/p' | head -n 1)
        DETAIL="content differs from file s$((${_n:-1} - 1)) on ($(wc -c </tmp/small.got) bytes read)"
        return 1
    fi
    rm -f /tmp/small.got /tmp/small.want
}
t_small_delete() {
    must "rm -r small" sh -c "cd '$W' && rm -r small" || return 1
    absent "$W/small"
}
phase_begin
step small-create t_small_create
step small-read t_small_read
step small-delete t_small_delete
phase_end smallfiles

sync
echo "BATTERY-END steps=$NSTEPS failed=$NFAIL"
exit $NFAIL
