#!/bin/sh
# The exported-symbol check of libonnxc.so: every symbol the shared library
# exports must be a function declared with OC_API in the public header, and
# every such function must be exported. Fails on anything unprefixed (not
# oc_*), on internal helpers that leak out (oc_make_status, oc_op_*,
# ocplan__*, ...) and on public functions that lost their OC_API marker.
# Usage: tests/check_symbols.sh LIBONNXC_SO HEADER...
set -eu
if [ $# -lt 2 ]; then
  echo "usage: $0 LIBONNXC_SO HEADER..." >&2
  exit 2
fi
lib=$1
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Exported (defined, dynamic) symbols, without symbol versions.
nm -D --defined-only "$lib" | awk 'NF >= 3 { print $3 }' | sed 's/@.*//' | sort -u > "$tmp/exported"
# Public functions: the declarations marked OC_API.
sed -n 's/^OC_API[^(]*[^A-Za-z0-9_]\(oc_[A-Za-z0-9_]*\)[[:space:]]*(.*/\1/p' "$@" | sort -u \
  > "$tmp/declared"
# Function declarations at file scope without OC_API (would not be exported).
grep -n '^[A-Za-z_].*[^A-Za-z0-9_]oc_[A-Za-z0-9_]*[[:space:]]*(' "$@" \
  | grep -v ':OC_API ' | grep -v ':typedef ' | grep -v ':#' > "$tmp/unmarked" || true

fail=0
n=$(wc -l < "$tmp/exported")
if [ "$n" -eq 0 ]; then
  echo "check_symbols: $lib exports no symbols" >&2
  exit 1
fi
unprefixed=$(grep -v '^oc_' "$tmp/exported" || true)
if [ -n "$unprefixed" ]; then
  echo "check_symbols: $lib exports symbols without the oc_ prefix:" >&2
  echo "$unprefixed" | sed 's/^/  /' >&2
  fail=1
fi
extra=$(comm -23 "$tmp/exported" "$tmp/declared" | grep '^oc_' || true)
if [ -n "$extra" ]; then
  echo "check_symbols: $lib exports oc_ symbols that are not public API (make them hidden):" >&2
  echo "$extra" | sed 's/^/  /' >&2
  fail=1
fi
missing=$(comm -13 "$tmp/exported" "$tmp/declared")
if [ -n "$missing" ]; then
  echo "check_symbols: public functions not exported by $lib (not defined, or hidden):" >&2
  echo "$missing" | sed 's/^/  /' >&2
  fail=1
fi
if [ -s "$tmp/unmarked" ]; then
  echo "check_symbols: public declarations without OC_API (they would not be exported):" >&2
  sed 's/^/  /' "$tmp/unmarked" >&2
  fail=1
fi
if [ "$fail" -ne 0 ]; then
  exit 1
fi
echo "check_symbols: $lib exports $n symbols, all public API declared with OC_API (oc_*)"
