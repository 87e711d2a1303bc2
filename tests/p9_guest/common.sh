# shellcheck shell=sh
# Helpers shared by the guest batteries (busybox sh).  Sourced, not run.
#
# A step is a shell function run by `step NAME FUNC`; it returns 0 on success
# or sets DETAIL and returns non-zero.  Output, per step:
#   RUN NAME                (before: the last RUN line names a step that hung)
#   STEP NAME ok [(DETAIL)]  or  STEP NAME FAIL DETAIL
#   TIME NAME SECONDS       (guest seconds)
# and, around phases, "PHASE NAME SECONDS" (guest seconds from /proc/uptime).
NSTEPS=0
NFAIL=0

step() {
    _name=$1
    shift
    DETAIL=
    NSTEPS=$((NSTEPS + 1))
    echo "RUN $_name"
    _t0=$(now)
    # hlt.trace=1: mark the step in the server's message log (a failed walk).
    [ -n "$HLT_trace" ] && stat "${M:-/mnt}/.p9-step-$_name" >/dev/null 2>&1
    if "$@"; then
        echo "STEP $_name ok${DETAIL:+ ($DETAIL)}"
    else
        _rc=$?
        echo "STEP $_name FAIL ${DETAIL:-status $_rc}"
        NFAIL=$((NFAIL + 1))
    fi
    echo "TIME $_name $(awk -v a="$_t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')"
}

now() { cut -d' ' -f1 /proc/uptime; }
phase_begin() { _phase_t0=$(now); }
phase_end() { echo "PHASE $1 $(awk -v a="$_phase_t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')"; }

# oneline TEXT: TEXT on one line (for DETAIL).
oneline() { printf '%s' "$*" | tr '\n' ' ' | cut -c1-300; }

# eq WHAT EXPECTED ACTUAL
eq() {
    [ "$2" = "$3" ] && return 0
    DETAIL="$1: expected '$(oneline "$2")', got '$(oneline "$3")'"
    return 1
}

# must WHAT CMD...: CMD succeeds (its output goes to DETAIL if not).
must() {
    _what=$1
    shift
    _out=$("$@" 2>&1) && return 0
    DETAIL="$_what failed: $(oneline "$_out")"
    return 1
}

# mustnot WHAT CMD...: CMD fails.  Its error message is kept in ERRMSG.
mustnot() {
    _what=$1
    shift
    if ERRMSG=$("$@" 2>&1); then
        DETAIL="$_what unexpectedly succeeded"
        return 1
    fi
    return 0
}

# exists PATH / absent PATH (symlinks count as existing, dangling or not)
exists() { [ -e "$1" ] || [ -L "$1" ] || { DETAIL="$1 does not exist"; return 1; }; }
absent() { ! [ -e "$1" ] && ! [ -L "$1" ] || { DETAIL="$1 still exists"; return 1; }; }

# sha FILE: sha256 of FILE read in 1 MiB requests
sha() { dd if="$1" bs=1048576 2>/dev/null | sha256sum | cut -d' ' -f1; }

# in_listing DIR NAME: NAME is listed in DIR (readdir, not lookup)
in_listing() { list_names "$1" | grep -qxF "$2"; }

# list_names DIR: the names in DIR (not starting with "."), one a line, from
# readdir alone: ash's glob does not stat the entries, while busybox ls always
# stats each one (a walk+getattr+clunk round trip per entry) and has no -f.
list_names() {
    set -- "$1"/*
    [ -e "$1" ] || [ -L "$1" ] || return 0   # no match: the pattern itself
    printf '%s\n' "$@" | sed 's|.*/||'
}
