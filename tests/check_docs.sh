#!/bin/sh
# Fails when docs/ops.md's table differs from `onnxc --list-ops`
# (regenerate with scripts/gen_docs.sh).
set -e
onnxc=$1
doc=$2
table=$(mktemp)
trap 'rm -f "$table"' EXIT
sed -n '/^| op |/,$p' "$doc" > "$table"
if "$onnxc" --list-ops | diff -u "$table" -; then
  echo "docs/ops.md matches the op registry"
else
  echo "docs/ops.md is stale: run scripts/gen_docs.sh" >&2
  exit 1
fi
