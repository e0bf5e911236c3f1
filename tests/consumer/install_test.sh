#!/usr/bin/env bash
# The install_consumer test: installs BUILD_DIR into a temporary prefix with
# `cmake --install`, checks the installed layout, compiles the bundled SimCLR
# encoder with the installed onnxc and runs tests/consumer/run.sh on it.
#
# Usage: tests/consumer/install_test.sh BUILD_DIR SOURCE_DIR
# Environment: as run.sh (CMAKE, CC, ONNXC_CONSUMER_FLAGS).
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
cmake=${CMAKE:-cmake}
work=$(mktemp -d "${TMPDIR:-/tmp}/onnxc-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"

echo "== cmake --install $build --prefix $prefix"
"$cmake" --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 || {
  cat "$work/install.log"
  exit 1
}

libdir=$(dirname "$(find "$prefix" -name 'libonnxc.a' | head -n 1)")
soversion=$(sed -n 's/^#define OC_SOVERSION \([0-9]*\).*/\1/p' "$prefix/include/onnxc/version.h")
missing=0
for f in bin/onnxc bin/onnxrun include/onnxc/onnxc.h include/onnxc/version.h \
         "${libdir#"$prefix"/}/libonnxc.a" "${libdir#"$prefix"/}/libonnxc.so" \
         "${libdir#"$prefix"/}/libonnxc.so.$soversion" \
         "${libdir#"$prefix"/}/pkgconfig/onnxc.pc" \
         "${libdir#"$prefix"/}/cmake/onnxc/onnxcConfig.cmake" \
         "${libdir#"$prefix"/}/cmake/onnxc/onnxcConfigVersion.cmake" \
         "${libdir#"$prefix"/}/cmake/onnxc/onnxcTargets.cmake"; do
  if [ ! -e "$prefix/$f" ]; then
    echo "install_test: missing $f in the install" >&2
    missing=1
  fi
done
[ "$missing" -eq 0 ] || exit 1
soname=$(readelf -d "$libdir/libonnxc.so" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
if [ "$soname" != "libonnxc.so.$soversion" ]; then
  echo "install_test: libonnxc.so has SONAME '$soname', expected libonnxc.so.$soversion" >&2
  exit 1
fi
echo "installed: $(cd "$prefix" && find . -type f -o -type l | sort | tr '\n' ' ')"
echo "SONAME $soname"

"$prefix/bin/onnxrun" --version
plan="$work/smallcnn.plan"
"$prefix/bin/onnxc" "$src/examples/smallcnn/model.onnx" -o "$plan"
"$src/tests/consumer/run.sh" "$prefix" "$plan"
