#!/usr/bin/env bash
# Builds hloop. Usage: scripts/build.sh [release|asan|tsa|fuzz] [TARGET...]
# (default: release, every target).
# Prints the build directory.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
kind=${1:-release}
shift || true
jobs=$(nproc)
case "$kind" in
  release) dir=$src/build; args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DHLOOP_TESTS=ON) ;;
  asan) dir=$src/build-asan; args=(-DCMAKE_BUILD_TYPE=Debug -DHLOOP_SANITIZE=ON -DHLOOP_TESTS=ON) ;;
  # clang's thread-safety analysis over every target, warnings as errors.
  # The analysis is in the front end: -O0 without debug info keeps it quick.
  tsa) dir=$src/build-tsa; args=(-DCMAKE_CXX_COMPILER=clang++ -DHLOOP_TSA=ON -DHLOOP_TESTS=ON -DCMAKE_BUILD_TYPE=Tsa -DCMAKE_CXX_FLAGS_TSA=-O0) ;;
  fuzz) dir=$src/build-fuzz; args=(-DCMAKE_CXX_COMPILER=clang++ -DHLOOP_FUZZ=ON -DHLOOP_TESTS=OFF) ;;
  *) echo "usage: $0 [release|asan|tsa|fuzz]" >&2; exit 2 ;;
esac
cmake -S "$src" -B "$dir" -G Ninja "${args[@]}" >/dev/null
if [ "$kind" = fuzz ]; then
  ninja -C "$dir" -j "$jobs" fuzz_index fuzz_layout fuzz_chunk fuzz_lists fuzz_nbd fuzz_9p fuzz_trust >&2
else
  ninja -C "$dir" -j "$jobs" "$@" >&2
fi
echo "$dir"
