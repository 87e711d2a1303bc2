#!/usr/bin/env bash
# Fails (and lists the files) if any C++ source differs from what clang-format
# makes of it with the repository's .clang-format. Fix with:
#   scripts/check_format.sh --fix
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cc' '*.h')
if [ "${1:-}" = --fix ]; then
  clang-format -i "${files[@]}"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  printf 'not formatted: %s\n' "${bad[@]}"
  echo "run scripts/check_format.sh --fix" >&2
  exit 1
fi
echo "format: ${#files[@]} files clean"
