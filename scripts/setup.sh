#!/usr/bin/env bash
# Installs the Debian packages onnxc needs to build and test, if missing.
# Usage: scripts/setup.sh            (build + test dependencies)
set -euo pipefail

PACKAGES=(build-essential cmake pkg-config libprotobuf-c-dev protobuf-c-compiler
          libonnx-dev libopenblas-dev check)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "setup: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
