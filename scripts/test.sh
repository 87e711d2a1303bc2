#!/usr/bin/env bash
# Installs what is needed, builds, and runs the whole test suite:
#   0. the formatting check (scripts/check_format.sh);
#   1. the sanitizer build (ASan+UBSan): unit tests and the integration tests
#      that feed hloop bad input;
#   2. the fuzz targets, each for a bounded time;
#   3. the clang build with -Wthread-safety -Werror (checks the lock annotations);
#   4. the release build: unit tests and every integration test (real nginx,
#      lighttpd, FUSE, loop devices, the kernel's ext4).
# Run as root on Debian 12. Exits non-zero if anything fails.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
cd "$src"
# 20 s per target keeps CI inside its time limit with the VM boots of
# tests/test_netboot.sh; fuzz longer by hand: HLOOP_FUZZ_SECONDS=600.
fuzz_seconds=${HLOOP_FUZZ_SECONDS:-20}
# Integration tests that also run against the sanitizer build.
asan_tests=${HLOOP_ASAN_TESTS:-'it\.test_(bad_index|corruption|cli|serve|cache_limit|nbd|nbd_hostile|nbd_overlay|overlay|trust)'}

bash scripts/deps.sh

passed=0 failed=0
tally() {  # tally LOGFILE: adds ctest's counts to the totals
  local line
  line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$1" | tail -1)
  [ -n "$line" ] || { failed=$((failed + 1)); return; }
  local f n
  f=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
  n=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/' <<<"$line")
  failed=$((failed + f)); passed=$((passed + n - f))
}
log=$(mktemp -d /tmp/hloop-test-logs.XXXXXX)

echo "== formatting (clang-format, .clang-format)"
if bash scripts/check_format.sh; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
fi

echo "== sanitizer build (ASan+UBSan)"
asan=$(bash scripts/build.sh asan)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd "$asan" && ctest --output-on-failure -j2 -LE integration 2>&1) | tee "$log/asan-unit.txt" || true
tally "$log/asan-unit.txt"
(cd "$asan" && ctest --output-on-failure -R "$asan_tests" 2>&1) | tee "$log/asan-it.txt" || true
tally "$log/asan-it.txt"

echo "== fuzz targets, ${fuzz_seconds}s each"
fuzz=$(bash scripts/build.sh fuzz)
for target in index layout chunk lists nbd 9p trust; do
  corpus=$(mktemp -d)
  if "$fuzz/fuzz_$target" -max_total_time="$fuzz_seconds" -print_final_stats=1 "$corpus" \
      "fuzz/corpus/$target" > "$log/fuzz-$target.txt" 2>&1; then
    echo "fuzz_$target: passed ($(grep -Eo 'Done [0-9]+ runs' "$log/fuzz-$target.txt"))"
    passed=$((passed + 1))
  else
    echo "fuzz_$target: FAILED"; tail -40 "$log/fuzz-$target.txt"
    failed=$((failed + 1))
  fi
  rm -rf "$corpus"
done

echo "== clang thread-safety build (-Wthread-safety -Werror)"
if bash scripts/build.sh tsa > "$log/tsa.txt" 2>&1; then
  echo "tsa build: passed"
  passed=$((passed + 1))
else
  echo "tsa build: FAILED"; grep -E 'error|warning' "$log/tsa.txt" | head -40
  failed=$((failed + 1))
fi

echo "== release build: unit and integration tests"
release=$(bash scripts/build.sh release)
# -j2: unit tests two at a time; integration tests are RUN_SERIAL, so they still run alone.
(cd "$release" && ctest -j2 --output-on-failure 2>&1) | tee "$log/release.txt" || true
tally "$log/release.txt"

rm -rf "$log"
echo
echo "total: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
