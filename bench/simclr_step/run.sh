#!/usr/bin/env bash
# The SimCLR training step of examples/simclr_mnist, in onnxc and in PyTorch,
# measured in one run: views per second of each and the ratio (target:
# onnxc / PyTorch >= 1.0).
#
#   bench/simclr_step/run.sh [--steps N] [--rounds R] [--threads T] [--batch B]
#
# Both sides run the same step: two augmented views of B MNIST train digits
# (the digits recipe of include/onnxc/augment.h; PyTorch applies the same
# recipe with batched tensor ops), the example's model (model.onnx, exported
# by examples/simclr_mnist/export.py), forward, backward and an AdamW update
# with warmup + cosine. onnxc: `simclr_mnist --bench N` (the example's own
# training loop, augmentation in its helper thread); PyTorch:
# bench/simclr_step/torch_step.py. Each side times N steps after 3 untimed
# ones, in R rounds alternating onnxc and PyTorch; each keeps its best round,
# so a burst of load from other processes does not decide the ratio.
#
#   --steps N    timed steps per round (default 20)
#   --rounds R   rounds (default 3)
#   --threads T  threads on both sides (default 2): the context's threads,
#                torch.set_num_threads(T)
#   --batch B    digits per view (default 128, the committed model's batch;
#                another B re-exports the model, which needs PyTorch anyway)
#
# Installs what it needs: scripts/setup.sh (build tools), Debian's
# python3-torch; fetches the digits (examples/simclr_mnist/fetch_mnist.sh);
# builds a Release tree in build-bench/.
set -euo pipefail
cd "$(dirname "$0")/../.."
steps=20 rounds=3 threads=2 batch=128
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
    *) echo "bench/simclr_step/run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
log() { echo "bench: $*" >&2; }

scripts/setup.sh >&2
if ! /usr/bin/python3 -c "import torch, onnx" 2>/dev/null; then
  log "installing python3-torch python3-onnx"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q python3-torch python3-onnx >/dev/null
fi
digits=$(examples/simclr_mnist/fetch_mnist.sh)
log "building build-bench (Release)"
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DONNXC_BUILD_TESTS=OFF >/dev/null
cmake --build build-bench -j"$(nproc)" --target onnxc simclr_mnist >/dev/null
bin=build-bench/bin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

model=examples/simclr_mnist/model.onnx
if [ "$batch" != 128 ]; then
  /usr/bin/python3 examples/simclr_mnist/export.py "$work/model.onnx" --batch "$batch" \
    >/dev/null 2>&1
  model="$work/model.onnx"
fi
total=$((steps + 3))
warm=$(( total / 10 > 1 ? total / 10 : 1 ))
"$bin/onnxc" "$model" -o "$work/plan.bin" --train --optimizer adamw --lr 6e-3 \
  --weight-decay 1e-4 --schedule cosine --warmup-steps "$warm" --total-steps "$total"

vps() { sed -n 's/.*views\/s \([0-9.]*\).*/\1/p' | tail -n 1; }
max() { if [ -z "$1" ]; then echo "$2"; else awk -v a="$1" -v b="$2" 'BEGIN {print (a > b ? a : b)}'; fi; }
a="" b=""
for ((r = 1; r <= rounds; r++)); do
  x=$("$bin/simclr_mnist" --plan "$work/plan.bin" --data "$digits" --bench "$steps" \
        --threads "$threads" | vps)
  y=$(/usr/bin/python3 bench/simclr_step/torch_step.py "$digits" --steps "$steps" \
        --threads "$threads" --batch "$batch" 2>/dev/null | vps)
  log "round $r: onnxc $x views/s, pytorch $y views/s"
  a=$(max "$a" "$x")
  b=$(max "$b" "$y")
done
echo "SimCLR step, MNIST 28x28, batch $batch x 2 views, AdamW + warmup/cosine, digits augmentation"
echo "($threads threads, best of $rounds rounds of $steps steps; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset})"
printf "%-10s %10s\n" "" "views/s"
printf "%-10s %10.0f\n" onnxc "$a" pytorch "$b"
printf "ratio onnxc / pytorch: %.2fx (target >= 1.0x)\n" "$(awk -v a="$a" -v b="$b" 'BEGIN {print a / b}')"
