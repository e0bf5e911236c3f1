#!/usr/bin/env bash
# The main job on the bundled example: installs what is missing, builds,
# compiles the bundled SimCLR encoder (examples/smallcnn/model.onnx) into a
# plan, and extracts embeddings twice: with the onnxrun CLI and with the C
# example program, which also checks them against PyTorch's.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh build
ex=examples/smallcnn
out=build/example
rm -rf "$out" && mkdir -p "$out/inputs"

echo "== onnxc --inspect $ex/model.onnx"
build/bin/onnxc --inspect "$ex/model.onnx"

echo "== onnxc $ex/model.onnx -o $out/plan.bin"
build/bin/onnxc "$ex/model.onnx" -o "$out/plan.bin"
build/bin/onnxc --inspect "$out/plan.bin"

echo "== onnxrun (CLI)"
cp "$ex/batch.npy" "$out/inputs/input_0.npy"
build/bin/onnxrun "$out/plan.bin" --inputs "$out/inputs" --outputs "$out/outputs" --npy
ls -l "$out/outputs"

echo "== embed_npy (C API example)"
build/bin/embed_npy "$out/plan.bin" "$ex/batch.npy" "$out/embeddings.npy" \
  --expect "$ex/expected_embeddings.npy"
cmp "$out/embeddings.npy" "$out/outputs/output_0.npy" && echo "CLI and C API give identical bytes"
