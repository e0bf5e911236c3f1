# Shared by fuzz/run.sh, fuzz/replay.sh and fuzz/make_seeds.sh (sourced).
# ROOT, BUILD, TARGETS; fuzz_setup installs what is missing and builds.

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${ONNXC_FUZZ_BUILD:-$ROOT/build-fuzz}
TARGETS="compile plan checkpoint tensor"

export OPENBLAS_NUM_THREADS=1
# A crash is a crash: UBSan stops at the first report (the build also uses
# -fno-sanitize-recover), ASan reports leaks. Callers may add options.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:handle_abort=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

fuzz_die() {
  echo "$(basename "$0"): $*" >&2
  exit 2
}

# Debian 12 packages: clang (clang-14), libclang-rt-14-dev (the libFuzzer,
# ASan and UBSan runtimes), and the project's build dependencies.
fuzz_install_deps() {
  missing=""
  command -v clang >/dev/null 2>&1 || missing="$missing clang"
  command -v cmake >/dev/null 2>&1 || missing="$missing cmake"
  command -v pkg-config >/dev/null 2>&1 || missing="$missing pkg-config"
  command -v protoc-c >/dev/null 2>&1 || missing="$missing protobuf-c-compiler"
  [ -f /usr/include/protobuf-c/protobuf-c.h ] || missing="$missing libprotobuf-c-dev"
  [ -f /usr/include/onnx/onnx.proto ] || missing="$missing libonnx-dev"
  pkg-config --exists openblas 2>/dev/null || missing="$missing libopenblas-dev"
  if command -v clang >/dev/null 2>&1; then
    rt=$(clang -print-resource-dir 2>/dev/null)/lib/linux/libclang_rt.fuzzer-x86_64.a
    [ -f "$rt" ] || missing="$missing libclang-rt-dev"
  else
    missing="$missing libclang-rt-dev"
  fi
  [ -z "$missing" ] && return 0
  echo "$(basename "$0"): installing:$missing" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq >&2 || fuzz_die "apt-get update failed"
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >&2 ||
    fuzz_die "apt-get install$missing failed"
}

# fuzz_build [cmake targets...]: configure (once) and build, holding a lock
# on the build folder (flock) so that parallel run.sh invocations do not
# build the same objects at once.
fuzz_build() {
  fuzz_install_deps
  mkdir -p "$BUILD"
  (
    if command -v flock >/dev/null 2>&1; then flock 9; fi
    if [ ! -f "$BUILD/CMakeCache.txt" ]; then
      cmake -S "$ROOT/fuzz" -B "$BUILD" -DCMAKE_C_COMPILER=clang >"$BUILD/configure.log" 2>&1 ||
        { cat "$BUILD/configure.log" >&2; fuzz_die "cmake configure failed"; }
    fi
    tflags=""
    for t in "$@"; do tflags="$tflags --target $t"; done
    # shellcheck disable=SC2086
    cmake --build "$BUILD" -j"$(nproc 2>/dev/null || echo 2)" $tflags >"$BUILD/build.log" 2>&1 ||
      { tail -40 "$BUILD/build.log" >&2; fuzz_die "build failed (log: $BUILD/build.log)"; }
  ) 9>"$BUILD/.build.lock" || exit 2
}

# The dictionary a target uses (empty: none).
fuzz_dict() {
  case $1 in
    compile | plan | tensor) echo "$ROOT/fuzz/protobuf.dict" ;;
    *) echo "" ;;
  esac
}
