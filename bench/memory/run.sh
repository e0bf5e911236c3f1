#!/usr/bin/env bash
# Peak memory of a SimCLR ResNet-18 train step (32x32, batch 2 x BATCH, 3 SGD
# steps) in onnxc and in PyTorch, measured in the same run: each side runs as
# its own process under /usr/bin/time -v, which reports the maximum resident
# set size. Prints both and the ratio (target: onnxc <= 0.6 x PyTorch).
#
#   bench/memory/run.sh [BATCH]        (default 32)
# Needs Debian's python3-torch for /usr/bin/python3 (installed if missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
batch=${1:-32}
scripts/setup.sh
if ! /usr/bin/python3 -c "import torch, torchvision, onnx" 2>/dev/null; then
  apt-get install -y -q python3-torch python3-torchvision python3-onnx >/dev/null
fi
scripts/build.sh build >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 bench/memory/simclr_resnet18.py export "$work/model.onnx" "$batch"
build/bin/onnxc "$work/model.onnx" -o "$work/plan.bin" --train --optimizer sgd --lr 0.05 \
  --momentum 0.9 --weight-decay 1e-4 --memory-report "$work/mem.json"
rss() { grep "Maximum resident set size" "$1" | awk '{print $NF}'; }
/usr/bin/time -v build/bin/onnxrun "$work/plan.bin" --inputs "$work/batch" --steps 3 \
  > "$work/onnxc.out" 2> "$work/onnxc.time"
BENCH_THREADS=2 /usr/bin/time -v /usr/bin/python3 bench/memory/simclr_resnet18.py train "$batch" 3 \
  > "$work/torch.out" 2> "$work/torch.time"
a=$(rss "$work/onnxc.time")
b=$(rss "$work/torch.time")
arena=$(python3 -c "import json; d=json.load(open('$work/mem.json')); print(d['arena_bytes'], d['lower_bound_bytes'])")
echo "SimCLR ResNet-18, 32x32, batch 2x$batch, 3 SGD steps (OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset})"
printf "%-10s %14s\n" "" "peak RSS (MiB)"
printf "%-10s %14.1f\n" onnxc "$(echo "$a / 1024" | bc -l)" pytorch "$(echo "$b / 1024" | bc -l)"
printf "ratio onnxc / pytorch: %.3f (target <= 0.6)\n" "$(echo "$a / $b" | bc -l)"
echo "onnxc train_step arena and its lower bound (bytes): $arena"
echo "losses (onnxc | pytorch):"
paste <(awk '{print $4}' "$work/onnxc.out") <(awk '{print $4}' "$work/torch.out")
