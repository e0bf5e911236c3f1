#!/usr/bin/env bash
# Data-parallel training under mpirun (docs/distributed.md).
# Usage: test_distributed.sh ONNXC ONNXRUN STATE_DIFF DATA_DIR
#  1. the SimCLR small-CNN reference (a2), 5 SGD steps: mpirun -np 2 with
#     --ranks 2 --global-negatives --sync-bn on the batch split in two gives
#     the losses and the state of one process on the whole batch (1e-5
#     relative), and every rank holds the same state (--check-replicas 1);
#  2. the same model with a symbolic batch (tests/data/distributed): with
#     local negatives (no --global-negatives) the loss differs (printed);
#     with them it matches one process again;
#  3. errors: a --global-negatives plan in one process, a plan without
#     --ranks under mpirun; a rank killed mid-run ends the job with a
#     message, and the run resumes from the last checkpoint;
#  4. the digits example (examples/simclr_mnist) under mpirun -np 2: 3 steps
#     of its trainer on 2 ranks give the losses of one process on the same
#     global batches (skipped without the digits, fetch_mnist.sh).
# Exit 77 (skipped) without mpirun or without MPI in onnxrun.
set -uo pipefail
onnxc=$1 onnxrun=$2 state_diff=$3 data=$4
command -v mpirun >/dev/null || { echo "test_distributed: skipped: no mpirun"; exit 77; }
# (grep reads the whole text: with -q it could quit early and onnxrun die of SIGPIPE.)
if "$onnxrun" --help | grep "this build has no MPI" >/dev/null; then
  echo "test_distributed: skipped: onnxrun was built without MPI"; exit 77
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# No network interfaces to probe between two processes of one machine.
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
# Open MPI keeps allocations until exit (some in plugins it has unloaded, which
# LeakSanitizer cannot name): under mpirun the sanitizer builds check memory
# errors but not leaks; the one-process runs below check leaks of the same code.
mpi() { ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0" mpirun --oversubscribe -np "$@"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
sgd=(--train --lr 0.05 --momentum 0.9 --weight-decay 1e-4)

# Largest relative difference between the losses of two logs (one per line).
loss_diff() {
  paste "$1" "$2" | awk 'BEGIN { m = 0 } { d = $1 - $2; if (d < 0) d = -d;
    r = d / ($2 < 0 ? -$2 : $2); if (r > m) m = r } END { printf "%.3e\n", m }'
}
# Whether $1 <= $2 (floats).
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }

# --- 1. a2: --global-negatives --sync-bn on 2 ranks == 1 process
a2=$data/reference/a2_simclr_smallcnn
"$onnxc" "$a2/model.onnx" -o "$tmp/one.bin" "${sgd[@]}" || fail "compile a2"
"$onnxc" "$a2/model.onnx" -o "$tmp/two.bin" "${sgd[@]}" --ranks 2 --global-negatives --sync-bn ||
  fail "compile a2 --ranks 2 --global-negatives --sync-bn"
"$onnxrun" "$tmp/one.bin" --inputs "$a2/test_data_set_0" --steps 5 --threads 1 \
  --log "$tmp/one.log" --save-checkpoint "$tmp/one.ckpt" >/dev/null || fail "a2: one process"
mpi 2 "$onnxrun" "$tmp/two.bin" --inputs "$a2/test_data_set_0" --steps 5 --threads 1 \
  --log "$tmp/two.log" --save-checkpoint "$tmp/two.ckpt" --check-replicas 1 >"$tmp/two.out" ||
  fail "a2: mpirun -np 2"
[ "$(grep -c loss "$tmp/two.out")" = 5 ] || fail "a2: rank 0 alone prints the 5 steps"
d=$(loss_diff "$tmp/two.log" "$tmp/one.log")
echo "a2, 2 ranks --global-negatives --sync-bn vs 1 process: losses differ by $d (relative)"
le "$d" 1e-5 || fail "a2: losses differ by $d"
"$state_diff" "$tmp/one.bin" "$tmp/one.ckpt" "$tmp/two.bin" "$tmp/two.ckpt" 1e-5 ||
  fail "a2: parameters and optimizer state differ"

# --- 2. local negatives differ; global ones match (symbolic batch)
dyn=$data/distributed
"$onnxc" "$dyn/model.onnx" -o "$tmp/dyn1.bin" "${sgd[@]}" --dim batch=8 || fail "compile dyn"
"$onnxc" "$dyn/model.onnx" -o "$tmp/local.bin" "${sgd[@]}" --dim batch=8 --ranks 2 --sync-bn ||
  fail "compile dyn --ranks 2 --sync-bn"
"$onnxc" "$dyn/model.onnx" -o "$tmp/global.bin" "${sgd[@]}" --dim batch=8 --ranks 2 \
  --sync-bn --global-negatives || fail "compile dyn --global-negatives"
"$onnxrun" "$tmp/dyn1.bin" --inputs "$dyn/test_data_set_0" --steps 5 --threads 1 \
  --log "$tmp/dyn1.log" >/dev/null || fail "dyn: one process"
mpi 2 "$onnxrun" "$tmp/local.bin" --inputs "$dyn/test_data_set_0" --steps 5 --threads 1 \
  --log "$tmp/local.log" --check-replicas 1 >/dev/null || fail "dyn: local negatives"
mpi 2 "$onnxrun" "$tmp/global.bin" --inputs "$dyn/test_data_set_0" --steps 5 --threads 1 \
  --log "$tmp/global.log" >/dev/null || fail "dyn: global negatives"
dl=$(loss_diff "$tmp/local.log" "$tmp/dyn1.log")
dg=$(loss_diff "$tmp/global.log" "$tmp/dyn1.log")
echo "symbolic batch, 2 ranks: local negatives (mean of the ranks' losses) vs 1 process: $dl;" \
  "global negatives: $dg"
echo "  step 1: one process $(head -1 "$tmp/dyn1.log"), local negatives $(head -1 "$tmp/local.log")"
le "$dg" 1e-5 || fail "dyn: global negatives differ by $dg"
le 1e-2 "$dl" || fail "dyn: local negatives should change the loss (differ by $dl)"

# --- 3. errors, failure and resume
if "$onnxc" "$a2/model.onnx" -o "$tmp/x.bin" "${sgd[@]}" --ranks 2 2>"$tmp/err"; then
  fail "a2 (its loss bakes the batch in) compiled with local negatives at 4 rows"
fi
grep -q "use --global-negatives" "$tmp/err" || fail "a2 --ranks 2: $(cat "$tmp/err")"
if "$onnxrun" "$tmp/two.bin" --inputs "$a2/test_data_set_0" --steps 1 >/dev/null 2>"$tmp/err"; then
  fail "a --global-negatives plan for 2 ranks ran in one process"
fi
grep -q "run it under mpirun -np 2" "$tmp/err" || fail "one process: $(cat "$tmp/err")"
if mpi 2 "$onnxrun" "$tmp/one.bin" --inputs "$a2/test_data_set_0" --steps 1 >/dev/null 2>"$tmp/err"; then
  fail "a plan without --ranks ran on 2 ranks"
fi
grep -q "compile it with onnxc --train --ranks 2" "$tmp/err" || fail "no --ranks: $(cat "$tmp/err")"
# Rank 1 dies (SIGKILL) in the middle of the run: mpirun ends the job with
# a message; the last checkpoint (every 2 steps) resumes to the same state.
cat >"$tmp/die.sh" <<SH
#!/usr/bin/env bash
if [ "\${OMPI_COMM_WORLD_RANK:-0}" = 1 ]; then
  "$onnxrun" "\$@" & pid=\$!
  while [ ! -f "$tmp/resume.ckpt" ]; do sleep 0.01; done
  kill -9 \$pid; wait \$pid; kill -9 \$\$
fi
exec "$onnxrun" "\$@"
SH
chmod +x "$tmp/die.sh"
if mpi 2 "$tmp/die.sh" "$tmp/two.bin" --inputs "$a2/test_data_set_0" --steps 400 --threads 1 \
  --save-checkpoint "$tmp/resume.ckpt" --checkpoint-every 2 >"$tmp/die.out" 2>"$tmp/die.err"; then
  fail "the job went on without rank 1"
fi
echo "a killed rank ends the job: $(grep -m1 "rank 1" "$tmp/die.err")"
grep -q "process rank 1 .* signal 9" "$tmp/die.err" || fail "no message: $(cat "$tmp/die.err")"
done_steps=$(grep -c loss "$tmp/die.out")
if [ -f "$tmp/resume.ckpt" ]; then
  mpi 2 "$onnxrun" "$tmp/two.bin" --inputs "$a2/test_data_set_0" --steps 1 --threads 1 \
    --load-checkpoint "$tmp/resume.ckpt" --check-replicas 1 >"$tmp/resume.out" ||
    fail "resume from the last checkpoint"
  echo "resumed after $done_steps logged steps: $(cat "$tmp/resume.out")"
else
  fail "no checkpoint was written before the kill"
fi

# --- 4. examples/simclr_mnist on 2 ranks == one process (docs/distributed.md)
# Its trainer, with the run.sh plan (AdamW, warmup and cosine), 3 steps: one
# process on the batches of 128 vs mpirun -np 2 with --ranks 2
# --global-negatives --sync-bn, each rank augmenting its 64 images of the same
# global batch. The losses (NT-Xent over all 256 views) agree to 1e-5 and the
# state to 1e-4 of each tensor's largest entry (measured: equal losses, 3.3e-6;
# a looser bound than a2's because AdamW's first steps move a weight by about
# lr whatever the size of its gradient, so a gradient within rounding of zero
# could move it either way).
trainer=$(dirname "$onnxrun")/simclr_mnist
root=$(cd "$(dirname "$0")/.." && pwd)
digits=$root/.deps/mnist/package/src/digits
if [ -x "$trainer" ] && [ -s "$digits/9.json" ]; then
  adamw=(--train --optimizer adamw --lr 6e-3 --weight-decay 1e-4 --schedule cosine
         --warmup-steps 62 --total-steps 62)
  "$onnxc" "$root/examples/simclr_mnist/model.onnx" -o "$tmp/mn1.plan" "${adamw[@]}" ||
    fail "compile the digits example"
  "$onnxc" "$root/examples/simclr_mnist/model.onnx" -o "$tmp/mn2.plan" "${adamw[@]}" \
    --ranks 2 --global-negatives --sync-bn || fail "compile the digits example --ranks 2"
  mn=(--data "$digits" --epochs 1 --max-steps 3 --no-eval --progress lines)
  "$trainer" --plan "$tmp/mn1.plan" --out "$tmp/mn1" "${mn[@]}" --threads 1 >"$tmp/mn1.out" 2>&1 ||
    fail "simclr_mnist, one process: $(cat "$tmp/mn1.out")"
  mpi 2 "$trainer" --plan "$tmp/mn2.plan" --out "$tmp/mn2" "${mn[@]}" >"$tmp/mn2.out" 2>&1 ||
    fail "simclr_mnist, mpirun -np 2: $(cat "$tmp/mn2.out")"
  [ "$(grep -c "^data:" "$tmp/mn2.out")" = 1 ] || fail "simclr_mnist: rank 0 alone prints"
  tail -n +2 "$tmp/mn1/loss.tsv" | cut -f2 >"$tmp/mn1.log"
  tail -n +2 "$tmp/mn2/loss.tsv" | cut -f2 >"$tmp/mn2.log"
  [ "$(wc -l <"$tmp/mn2.log")" = 3 ] || fail "simclr_mnist: 3 losses in loss.tsv"
  d=$(loss_diff "$tmp/mn2.log" "$tmp/mn1.log")
  echo "simclr_mnist, 2 ranks vs 1 process, 3 steps: losses differ by $d (relative);" \
    "$("$state_diff" "$tmp/mn1.plan" "$tmp/mn1/checkpoint.bin" "$tmp/mn2.plan" \
       "$tmp/mn2/checkpoint.bin" 1e-4 || echo FAIL)"
  le "$d" 1e-5 || fail "simclr_mnist: losses differ by $d"
  "$state_diff" "$tmp/mn1.plan" "$tmp/mn1/checkpoint.bin" "$tmp/mn2.plan" \
    "$tmp/mn2/checkpoint.bin" 1e-4 >/dev/null || fail "simclr_mnist: the states differ"
  if "$trainer" --plan "$tmp/mn2.plan" --out "$tmp/mnx" "${mn[@]}" >/dev/null 2>"$tmp/err"; then
    fail "simclr_mnist ran a plan for 2 ranks in one process"
  fi
  grep -q "run it under mpirun -np 2" "$tmp/err" || fail "simclr_mnist, one process: $(cat "$tmp/err")"
  if mpi 2 "$trainer" --plan "$tmp/mn1.plan" --out "$tmp/mnx" "${mn[@]}" >/dev/null 2>"$tmp/err"; then
    fail "simclr_mnist ran a plan without --ranks on 2 ranks"
  fi
  grep -q "onnxc --train --ranks 2" "$tmp/err" || fail "simclr_mnist, no --ranks: $(cat "$tmp/err")"
else
  echo "simclr_mnist under mpirun: skipped (no digits: examples/simclr_mnist/fetch_mnist.sh)"
fi

if [ "$failures" -ne 0 ]; then echo "test_distributed: $failures failure(s)"; exit 1; fi
echo "test_distributed: ok"
