#!/usr/bin/env bash
# Builds the native core and its unit tests with plain cmake (not cmake-js) and runs them twice:
# a normal build in build-native/ and an ASan + UBSan build in build-asan/, warnings as errors.
# Usage: bash scripts/native-tests.sh   (from anywhere; build dirs land in the repository root)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
jobs="${PMU_BUILD_JOBS:-2}"  # the CI and dev machines have 2 cores

run() {
  local dir="$1"
  shift
  echo "== $dir: configure"
  cmake -S . -B "$dir" -G Ninja -DPMU_WERROR=ON "$@" >/dev/null
  echo "== $dir: build"
  cmake --build "$dir" --parallel "$jobs"
  echo "== $dir: test"
  ctest --test-dir "$dir" --output-on-failure
  # ctest shows a passing test's output only in its log: echo the closing count from there.
  grep -E '^[0-9]+ passed, [0-9]+ failed$' "$dir/Testing/Temporary/LastTest.log"
}

run build-native -DPMU_SANITIZE=OFF

# LeakSanitizer works under this sandbox (checked: it reports a deliberate leak), so leaks fail
# the run. halt_on_error and the -fno-sanitize-recover flag make every report fatal.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
run build-asan -DPMU_SANITIZE=ON
