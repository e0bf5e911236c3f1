#!/usr/bin/env bash
# The embed service's output does not depend on its thread count: embeds a
# folder of images (random PGMs, a uint8 .npy stack and a float32 .npy image)
# with 1, 2 and 3 worker threads and requires identical bytes in the .npy of
# embeddings and in the CSV of file names.
#
#   test_threads.sh ONNXC EMBED_SERVICE MODEL.onnx
# MODEL is examples/simclr_mnist/model.onnx: compiled with --train, its
# `embed` entry maps [B,1,28,28] to [B,128] (BatchNorm in inference mode).
set -euo pipefail
onnxc=$1 service=$2 model=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$onnxc" "$model" -o "$work/plan.bin" --train >/dev/null
mkdir "$work/images"
# 300 PGMs (P5, 28x28, maxval 255) of random pixels; a few 16-bit ones.
for i in $(seq -w 1 300); do
  if [ $((10#$i % 50)) -eq 0 ]; then
    { printf 'P5\n# a comment\n28 28\n65535\n'; head -c 1568 /dev/urandom; } > "$work/images/img_$i.pgm"
  else
    { printf 'P5 28 28 255\n'; head -c 784 /dev/urandom; } > "$work/images/img_$i.pgm"
  fi
done
# .npy v1.0 with a header padded to 64 bytes (10 + len + 1 newline).
npy_header() { # DESCR SHAPE
  local h="{'descr': '$1', 'fortran_order': False, 'shape': $2, }"
  local total=$((10 + ${#h} + 1)); local pad=$(((64 - total % 64) % 64))
  local hl=$((${#h} + pad + 1))
  printf '\x93NUMPY\x01\x00'; printf "\\x$(printf %02x $((hl & 255)))\\x$(printf %02x $((hl >> 8)))"
  printf '%s%*s\n' "$h" "$pad" ''
}
{ npy_header '|u1' '(5, 1, 28, 28)'; head -c $((5 * 784)) /dev/urandom; } > "$work/images/stack.npy"
# float32 pixels in [0.5, 2): bytes 00 00 XX 3f (little-endian 0x3fXX0000).
{ npy_header '<f4' '(28, 28)'
  printf "$(head -c 784 /dev/urandom | od -An -v -tx1 |
    awk '{ for (i = 1; i <= NF; i++) printf "\\x00\\x00\\x%s\\x3f", $i }')"
} > "$work/images/single_f32.npy"
for t in 1 2 3; do
  "$service" "$work/plan.bin" "$work/images" --threads "$t" \
    --out "$work/emb_$t.npy" --csv "$work/files_$t.csv"
done
rows=$(($(wc -l < "$work/files_1.csv") - 1))
[ "$rows" -eq 306 ] || { echo "expected 306 rows, got $rows" >&2; exit 1; }
for t in 2 3; do
  cmp "$work/emb_1.npy" "$work/emb_$t.npy"
  cmp "$work/files_1.csv" "$work/files_$t.csv"
done
echo "embed_service: 306 images; 1, 2 and 3 threads give identical embeddings and CSV"
