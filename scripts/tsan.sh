#!/usr/bin/env bash
# ThreadSanitizer: builds the runtime with -fsanitize=thread into its own build
# folder (default build-tsan/) and runs the tests that share a plan between
# threads: test_concurrency (8 threads x 1,000 embed calls per plan, checked
# bit for bit) and test_compile (its runtime cases include threads sharing a
# plan; its CLI cases run the instrumented onnxc/onnxrun). Any TSan report
# fails the run (exit status 66 from the instrumented process).
#
# OpenBLAS is not instrumented; tests/tsan.supp holds the suppressions for it
# (only what is reported inside libopenblas itself).
#
# Usage: scripts/tsan.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scripts/setup.sh
dir=${1:-build-tsan}

# Debug: keeps our -O1 (RelWithDebInfo would append -O2). CMakeLists.txt has
# no option for TSan (ONNXC_SANITIZE is ASan+UBSan), so the flags go in here.
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_FLAGS="-fsanitize=thread -g -O1 -fno-omit-frame-pointer" \
  -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread \
  -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread >/dev/null
cmake --build "$dir" -j"$(nproc)" --target test_concurrency test_compile onnxc onnxrun

export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 suppressions=$root/tests/tsan.supp ${TSAN_OPTIONS:-}"
export CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-1800}

# GCC 12's TSan runtime cannot map its shadow memory when the kernel
# randomizes mmap with more than 28 bits (vm.mmap_rnd_bits = 32 on recent
# kernels: "FATAL: ThreadSanitizer: unexpected memory mapping"). Running
# without address-space randomization avoids it.
run() {
  if setarch "$(uname -m)" -R true 2>/dev/null; then
    setarch "$(uname -m)" -R "$@"
  else
    "$@"
  fi
}

status=0
for t in test_concurrency test_compile; do
  echo "== tsan: $t"
  log="$dir/tsan-$t.log"
  set +e
  (cd "$dir" && run "bin/$t") 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  if grep -q "WARNING: ThreadSanitizer" "$log"; then
    echo "tsan: $t: ThreadSanitizer reported a problem (see $log)"
    status=1
  elif [ "$rc" -ne 0 ]; then
    echo "tsan: $t: failed with exit status $rc (see $log)"
    status=1
  else
    echo "tsan: $t: passed, no ThreadSanitizer report"
  fi
done
exit $status
