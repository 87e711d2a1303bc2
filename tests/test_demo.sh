#!/usr/bin/env bash
# The README's first command ends in scripts/demo.sh (pack, serve, mount, read
# back an embedded default image). Run it here so that it keeps working.
set -euo pipefail
: "${HLOOP:?set HLOOP to the hloop binary}" "${HLOOP_SRC:?set HLOOP_SRC to the source tree}"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if ! HLOOP="$HLOOP" bash "$HLOOP_SRC/scripts/demo.sh" >"$out" 2>&1; then
  cat "$out"
  echo "FAIL: scripts/demo.sh failed" >&2
  exit 1
fi
grep -q "every file matches the source tree" "$out" || { cat "$out"; echo "FAIL: demo did not compare the files" >&2; exit 1; }
grep -q "done: pack, serve, mount and read back all worked" "$out" || { cat "$out"; echo "FAIL: demo did not finish" >&2; exit 1; }
echo "PASS: scripts/demo.sh"
