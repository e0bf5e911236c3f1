#!/usr/bin/env bash
# Builds the consumer (tests/consumer/consumer.c) out of tree against the onnxc
# installed at PREFIX four ways -- pkg-config + libonnxc.so, pkg-config +
# libonnxc.a, find_package + onnxc::onnxc, find_package + onnxc::onnxc_static --
# checks how each binary links libonnxc, and runs each one on PLAN.
#
# Usage: tests/consumer/run.sh PREFIX PLAN
# Environment: CMAKE (default: cmake), CC (the C compiler), ONNXC_CONSUMER_FLAGS
# (extra compile and link flags, e.g. the sanitizers the prefix was built with).
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 PREFIX PLAN" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
prefix=$(cd "$1" && pwd)
plan=$(realpath "$2")
cmake=${CMAKE:-cmake}
flags=${ONNXC_CONSUMER_FLAGS:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/onnxc-consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT

pc=$(find "$prefix" -name onnxc.pc -path '*/pkgconfig/*' | head -n 1)
version_h="$prefix/include/onnxc/version.h"
if [ -z "$pc" ] || [ ! -f "$version_h" ]; then
  echo "run.sh: $prefix has no onnxc.pc or include/onnxc/version.h: not an onnxc install" >&2
  exit 1
fi
soversion=$(sed -n 's/^#define OC_SOVERSION \([0-9]*\).*/\1/p' "$version_h")
# Only the prefix: no build tree, no user package registry.
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$pc")
extra=()
if [ -n "${CC:-}" ]; then extra+=("-DCMAKE_C_COMPILER=$CC"); fi

failed=0
for discovery in pkg-config find_package; do
  for link in shared static; do
    name="$discovery-$link"
    bdir="$work/$name"
    log="$work/$name.log"
    echo "== $name"
    if ! "$cmake" -S "$here" -B "$bdir" -DONNXC_DISCOVERY="$discovery" -DONNXC_LINK="$link" \
        -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF \
        -DCMAKE_C_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" "${extra[@]}" >"$log" 2>&1 \
      || ! "$cmake" --build "$bdir" >>"$log" 2>&1; then
      cat "$log"
      echo "FAIL $name: configure/build" >&2
      failed=1
      continue
    fi
    grep -E -- '-- onnxc ' "$log" || true
    exe="$bdir/consumer"
    needed=$(readelf -d "$exe" | sed -n 's/.*(NEEDED).*\[\(libonnxc[^]]*\)\].*/\1/p')
    if [ "$link" = shared ]; then
      if [ "$needed" != "libonnxc.so.$soversion" ]; then
        echo "FAIL $name: expected NEEDED libonnxc.so.$soversion, got '${needed:-nothing}'" >&2
        failed=1
        continue
      fi
      resolved=$(ldd "$exe" | sed -n "s/^[[:space:]]*libonnxc\.so\.$soversion => \([^ ]*\).*/\1/p")
      case "$resolved" in
        "$prefix"/*) echo "links $needed => $resolved" ;;
        *)
          echo "FAIL $name: libonnxc.so.$soversion resolves to '${resolved:-nothing}', not into $prefix" >&2
          failed=1
          continue
          ;;
      esac
    else
      if [ -n "$needed" ]; then
        echo "FAIL $name: a static link still needs $needed" >&2
        failed=1
        continue
      fi
      echo "links libonnxc.a (no libonnxc.so needed)"
    fi
    if ! "$exe" "$plan"; then
      echo "FAIL $name: the consumer failed on $plan" >&2
      failed=1
      continue
    fi
    echo "PASS $name"
  done
done
if [ "$failed" -ne 0 ]; then
  echo "run.sh: some consumer builds failed" >&2
  exit 1
fi
echo "run.sh: all 4 consumer builds passed (pkg-config/find_package x shared/static)"
