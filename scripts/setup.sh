#!/usr/bin/env bash
# Installs the Debian packages onnxc needs to build and test, if missing.
# Usage: scripts/setup.sh            (build + test dependencies)
set -euo pipefail

PACKAGES=(build-essential cmake pkg-config libprotobuf-c-dev protobuf-c-compiler
          libonnx-dev libopenblas-dev check doxygen openmpi-bin libopenmpi-dev)

# ONNX Runtime (npm's CPU build) for the tests that check exported models;
# skipped (and those checks report why) only where npm is absent.
install_ort() {
  local dir
  dir="$(cd "$(dirname "$0")/.." && pwd)/.deps/ort"
  [ -d "$dir/node_modules/onnxruntime-node" ] && return 0
  if ! command -v npm >/dev/null 2>&1; then
    echo "setup: npm is absent: the ONNX Runtime export checks will be skipped"
    return 0
  fi
  echo "setup: installing onnxruntime-node into $dir"
  mkdir -p "$dir"
  (cd "$dir" && npm install --ignore-scripts --no-audit --no-fund --silent onnxruntime-node@1.30.0 \
     >/dev/null) || echo "setup: npm install onnxruntime-node failed; the export checks will fail"
}

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  install_ort
  exit 0
fi
echo "setup: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
install_ort
