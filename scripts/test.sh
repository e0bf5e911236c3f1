#!/usr/bin/env bash
# The test command: installs what is missing, then builds and runs the whole
# suite twice, a normal build (build/) and one with AddressSanitizer and
# UndefinedBehaviorSanitizer (build-asan/); then the ThreadSanitizer tests,
# a replay of every fuzz target's committed corpus, and valgrind memcheck of
# the CLIs.
# Usage: scripts/test.sh [--quick]     --quick: the normal build only
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

run_suite() {
  local dir=$1
  shift
  echo "== build $dir $*"
  scripts/build.sh "$dir" "$@"
  echo "== test $dir"
  (cd "$dir" && ctest --output-on-failure -j"$(nproc)")
}

run_suite build
if [ "${1:-}" != "--quick" ]; then
  # Sanitizer findings fail the run; leaks are reported by LeakSanitizer.
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
  run_suite build-asan -DONNXC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
  echo "== ThreadSanitizer: concurrency and runtime tests"
  scripts/tsan.sh
  echo "== fuzz corpus replay (libFuzzer, ASan+UBSan)"
  fuzz/replay.sh
  echo "== valgrind memcheck of the command-line tools"
  scripts/memcheck.sh
fi
