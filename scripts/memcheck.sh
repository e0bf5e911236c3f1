#!/usr/bin/env bash
# Memcheck: builds the CLIs (RelWithDebInfo, default build-memcheck/) and runs
# them under valgrind memcheck on representative work and on damaged input:
#   - every reference model compiled plain and with --train, and the embed
#     encoders; onnxc --inspect on models and plans; memory reports;
#   - onnxrun: embeddings (.pb and .npy), training steps with a log, first-step
#     gradients and checkpoints, resuming, embedding from a checkpoint, and
#     --export-onnx; the bundled example (scripts/run_example.sh) including
#     the embed_npy C API program;
#   - damaged models, plans, checkpoints and input tensors (truncated, flipped
#     bytes, empty, wrong kind of file), which must fail cleanly (exit 1).
# Every run must end with "ERROR SUMMARY: 0 errors": no invalid read or
# write, no use of uninitialised memory, no definite or indirect leak
# (valgrind --error-exitcode=99). Also-reachable memory at exit (OpenBLAS's
# thread pool) is not an error. tests/valgrind.supp holds the suppressions,
# limited to libopenblas.
#
# Usage: scripts/memcheck.sh [BUILD_DIR]
# MEMCHECK_FILTER=REGEX runs only the cases whose name matches under valgrind
# (the others run natively, for the files later cases need).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scripts/setup.sh
if ! command -v valgrind >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "memcheck: installing valgrind"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends valgrind
fi
dir=${1:-build-memcheck}
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$dir" -j"$(nproc)" --target onnxc onnxrun embed_npy
bin=$root/$dir/bin
ONNXC=$bin/onnxc ONNXRUN=$bin/onnxrun EMBED_NPY=$bin/embed_npy

ref=$root/tests/data/reference
models=$root/tests/data/models
ex=$root/examples/smallcnn
work=$(mktemp -d "${TMPDIR:-/tmp}/onnxc-memcheck-XXXXXX")
logs=$root/$dir/memcheck
rm -rf "$logs" && mkdir -p "$logs"
trap 'rm -rf "$work"' EXIT

VALGRIND=(valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect
          --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --track-origins=no
          --suppressions="$root/tests/valgrind.supp" --num-callers=30)

n=0 failed=0
# vg WANT NAME CMD... : runs CMD under valgrind; WANT is the exit status the
# tool itself must give (0, 1 or 2; "any" for inputs that may or may not be
# valid after damage).
vg() {
  local want=$1 name=$2
  shift 2
  if [ -n "${MEMCHECK_FILTER:-}" ] && ! [[ $name =~ $MEMCHECK_FILTER ]]; then
    "$@" >/dev/null 2>&1 || true   # without valgrind: later cases may need its output
    return 0
  fi
  n=$((n + 1))
  local log=$logs/$(printf '%03d' "$n")-$name.log rc
  set +e
  "${VALGRIND[@]}" --log-file="$log" "$@" >"$log.stdout" 2>"$log.stderr"
  rc=$?
  set -e
  local summary definite indirect
  summary=$(grep -o 'ERROR SUMMARY: [0-9,]* errors' "$log" | tail -1 || true)
  definite=$(grep -o 'definitely lost: [0-9,]* bytes' "$log" | tail -1 || true)
  indirect=$(grep -o 'indirectly lost: [0-9,]* bytes' "$log" | tail -1 || true)
  [ -n "$definite" ] || definite="definitely lost: 0 bytes"   # no leak section: nothing leaked
  [ -n "$indirect" ] || indirect="indirectly lost: 0 bytes"
  local problem=
  if [ "$rc" -eq 99 ] || [ "$summary" != "ERROR SUMMARY: 0 errors" ]; then
    problem="valgrind found errors"
  elif [ "$want" != any ] && [ "$rc" -ne "$want" ]; then
    problem="exit status $rc, expected $want: $(head -3 "$log.stderr")"
  elif [ "$want" = any ] && [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
    problem="exit status $rc, expected 0 or 1: $(head -3 "$log.stderr")"
  fi
  if [ -n "$problem" ]; then
    failed=$((failed + 1))
    echo "FAIL $name: $problem (exit $rc; $summary) - $log"
    grep -v '^==[0-9]*== *$' "$log" | head -60 || true
  else
    printf 'ok   %-44s exit %d  %s  %s  %s\n' "$name" "$rc" "$summary" "$definite" "$indirect"
  fi
}

# --- compile --------------------------------------------------------------------------------
vg 0 onnxc-version "$ONNXC" --version
vg 0 onnxc-list-ops "$ONNXC" --list-ops
vg 2 onnxc-bad-usage "$ONNXC" --no-such-option
cases=(a1_mlp_triplet a2_simclr_smallcnn a2b_simclr_smallcnn_opset17 a4_clip_dual a5_moco_v2
       a6_audio_cpc)
for c in "${cases[@]}"; do
  vg 0 "compile-$c" "$ONNXC" "$ref/$c/model.onnx" -o "$work/$c.plain.plan"
  freeze=()
  [ "$c" = a5_moco_v2 ] && freeze=(--freeze 'encoder_k\..*')
  vg 0 "compile-train-$c" "$ONNXC" "$ref/$c/model.onnx" -o "$work/$c.train.plan" --train \
    --optimizer sgd --lr 0.05 --momentum 0.9 --weight-decay 1e-4 "${freeze[@]}"
  vg 0 "compile-embed-$c" "$ONNXC" "$ref/$c/embed/model.onnx" -o "$work/$c.embed.plan"
done
vg 0 compile-embed_text-a4 "$ONNXC" "$ref/a4_clip_dual/embed_text/model.onnx" -o "$work/a4.text.plan"
vg 0 compile-external-data "$ONNXC" "$models/external_data_mlp/model.onnx" -o "$work/ext.plan"
vg 0 compile-adam-memreport "$ONNXC" "$ref/a2_simclr_smallcnn/model.onnx" -o "$work/a2.adam.plan" \
  --train --optimizer adamw --schedule cosine --warmup-steps 2 --total-steps 10 \
  --memory-report "$work/mem.json" --memory-svg "$work/mem.svg"
vg 0 inspect-model "$ONNXC" --inspect "$ref/a4_clip_dual/model.onnx"
vg 0 inspect-plan "$ONNXC" --inspect "$work/a2_simclr_smallcnn.train.plan"

# --- run ------------------------------------------------------------------------------------
vg 0 onnxrun-version "$ONNXRUN" --version
vg 2 onnxrun-bad-usage "$ONNXRUN" "$work/a2_simclr_smallcnn.embed.plan"
for c in "${cases[@]}"; do
  vg 0 "embed-$c" "$ONNXRUN" "$work/$c.embed.plan" --inputs "$ref/$c/embed/test_data_set_0" \
    --outputs "$work/out-$c"
  vg 0 "forward-$c" "$ONNXRUN" "$work/$c.plain.plan" --inputs "$ref/$c/test_data_set_0" \
    --outputs "$work/fwd-$c" --npy
done
vg 0 embed-text-a4 "$ONNXRUN" "$work/a4.text.plan" \
  --inputs "$ref/a4_clip_dual/embed_text/test_data_set_0" --outputs "$work/out-text" --npy
vg 0 embed-external-data "$ONNXRUN" "$work/ext.plan" \
  --inputs "$models/external_data_mlp/test_data_set_0" --outputs "$work/out-ext"
# Training: steps, log, gradients, checkpoints, resume, embed and export.
for c in a1_mlp_triplet a2_simclr_smallcnn a4_clip_dual; do
  p=$work/$c.train.plan
  vg 0 "train-$c" "$ONNXRUN" "$p" --inputs "$ref/$c/test_data_set_0" --steps 2 \
    --log "$work/$c.loss" --grads "$work/$c.grads" --save-checkpoint "$work/$c.ckpt"
  vg 0 "resume-$c" "$ONNXRUN" "$p" --inputs "$ref/$c/test_data_set_0" --steps 1 \
    --load-checkpoint "$work/$c.ckpt" --save-checkpoint "$work/$c.ckpt2"
  vg 0 "embed-trained-$c" "$ONNXRUN" "$p" --inputs "$ref/$c/test_data_set_0" \
    --load-checkpoint "$work/$c.ckpt2" --outputs "$work/trained-$c"
  vg 0 "export-onnx-$c" "$ONNXRUN" "$p" --load-checkpoint "$work/$c.ckpt2" \
    --export-onnx "$work/$c.trained.onnx"
done
vg 0 train-adamw "$ONNXRUN" "$work/a2.adam.plan" --inputs "$ref/a2_simclr_smallcnn/test_data_set_0" \
  --steps 2 --save-checkpoint "$work/a2.adam.ckpt"
vg 0 compile-exported "$ONNXC" "$work/a1_mlp_triplet.trained.onnx" -o "$work/exported.plan" --train

# --- the bundled example (scripts/run_example.sh) ---------------------------------------------
mkdir -p "$work/ex-in" && cp "$ex/batch.npy" "$work/ex-in/input_0.npy"
vg 0 example-inspect "$ONNXC" --inspect "$ex/model.onnx"
vg 0 example-compile "$ONNXC" "$ex/model.onnx" -o "$work/ex.plan"
vg 0 example-onnxrun "$ONNXRUN" "$work/ex.plan" --inputs "$work/ex-in" --outputs "$work/ex-out" --npy
vg 0 example-embed_npy "$EMBED_NPY" "$work/ex.plan" "$ex/batch.npy" "$work/ex-emb.npy" \
  --expect "$ex/expected_embeddings.npy"
vg 0 example-compile-train "$ONNXC" "$ex/simclr_train.onnx" -o "$work/ex.train.plan" --train \
  --optimizer sgd --lr 0.05 --momentum 0.9 --weight-decay 1e-4
vg 0 example-train "$ONNXRUN" "$work/ex.train.plan" --inputs "$ex/train_batch" --steps 3 \
  --log "$work/ex.loss" --save-checkpoint "$work/ex.ckpt"
vg 0 example-embed-trained "$ONNXRUN" "$work/ex.train.plan" --load-checkpoint "$work/ex.ckpt" \
  --inputs "$ex/train_batch" --outputs "$work/ex-trained" --npy

# --- damaged input ----------------------------------------------------------------------------
bad=$work/bad
mkdir -p "$bad"
flip() { # flip FILE OFFSET: xor one byte with 0x5a
  local b
  b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  printf "\\$(printf %03o $((b ^ 0x5a)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
size_of() { stat -c %s "$1"; }
model=$ref/a2_simclr_smallcnn/embed/model.onnx
ms=$(size_of "$model")
: >"$bad/empty.onnx"
head -c $((ms / 2)) "$model" >"$bad/half.onnx"
head -c $((ms - 1)) "$model" >"$bad/short1.onnx"
printf 'this is not an onnx model\n' >"$bad/text.onnx"
for off in 3 $((ms / 3)) $((ms / 2)) $((ms - 20)); do
  cp "$model" "$bad/flip$off.onnx" && flip "$bad/flip$off.onnx" "$off"
done
for m in empty half short1 text; do
  vg 1 "bad-model-$m" "$ONNXC" "$bad/$m.onnx" -o "$bad/$m.plan"
done
for off in 3 $((ms / 3)) $((ms / 2)) $((ms - 20)); do
  vg any "bad-model-flip$off" "$ONNXC" "$bad/flip$off.onnx" -o "$bad/flip$off.plan"
done
vg 1 bad-model-missing "$ONNXC" "$bad/no-such-model.onnx" -o "$bad/x.plan"
vg 1 bad-model-inspect "$ONNXC" --inspect "$bad/half.onnx"

plan=$work/a2_simclr_smallcnn.embed.plan
ps=$(size_of "$plan")
inputs=$ref/a2_simclr_smallcnn/embed/test_data_set_0
: >"$bad/empty.plan"
head -c 100 "$plan" >"$bad/header.plan"
head -c $((ps - 1)) "$plan" >"$bad/short1.plan"
cp "$plan" "$bad/magic.plan" && flip "$bad/magic.plan" 0
cp "$plan" "$bad/hdr.plan" && flip "$bad/hdr.plan" 30
cp "$plan" "$bad/meta.plan" && flip "$bad/meta.plan" 140
cp "$plan" "$bad/const.plan" && flip "$bad/const.plan" $((ps - 8))
cp "$plan" "$bad/long.plan" && printf '\0' >>"$bad/long.plan"
for p in empty header short1 magic hdr meta const long; do
  vg 1 "bad-plan-$p" "$ONNXRUN" "$bad/$p.plan" --inputs "$inputs" --outputs "$bad/out-$p"
done
vg 1 bad-plan-inspect "$ONNXC" --inspect "$bad/meta.plan"

ck=$work/a1_mlp_triplet.ckpt
cs=$(size_of "$ck")
tplan=$work/a1_mlp_triplet.train.plan
tin=$ref/a1_mlp_triplet/test_data_set_0
head -c $((cs / 2)) "$ck" >"$bad/half.ckpt"
cp "$ck" "$bad/state.ckpt" && flip "$bad/state.ckpt" $((cs / 2))
cp "$ck" "$bad/hdr.ckpt" && flip "$bad/hdr.ckpt" 20
for k in half state hdr; do
  vg 1 "bad-ckpt-$k" "$ONNXRUN" "$tplan" --inputs "$tin" --steps 1 --load-checkpoint "$bad/$k.ckpt" \
    --save-checkpoint "$bad/out-$k.ckpt"
done
vg 1 bad-ckpt-other-plan "$ONNXRUN" "$tplan" --load-checkpoint "$work/a2_simclr_smallcnn.ckpt" \
  --export-onnx "$bad/x.onnx"

# Input tensors: a truncated .pb, a garbled .npy, a wrong shape, no folder.
in0=$inputs/input_0.pb
mkdir -p "$bad/in-short" "$bad/in-npy" "$bad/in-shape"
head -c $(( $(size_of "$in0") / 2 )) "$in0" >"$bad/in-short/input_0.pb"
cp "$ex/batch.npy" "$bad/in-npy/input_0.npy" && flip "$bad/in-npy/input_0.npy" 20
cp "$ref/a1_mlp_triplet/embed/test_data_set_0/input_0.pb" "$bad/in-shape/input_0.pb"
vg 1 bad-input-truncated-pb "$ONNXRUN" "$plan" --inputs "$bad/in-short" --outputs "$bad/o1"
vg 1 bad-input-garbled-npy "$ONNXRUN" "$plan" --inputs "$bad/in-npy" --outputs "$bad/o2"
vg 1 bad-input-wrong-shape "$ONNXRUN" "$plan" --inputs "$bad/in-shape" --outputs "$bad/o3"
vg 1 bad-input-no-folder "$ONNXRUN" "$plan" --inputs "$bad/nowhere" --outputs "$bad/o4"

echo
if [ "$failed" -ne 0 ]; then
  echo "memcheck: $failed of $n runs FAILED (logs in $logs)"
  exit 1
fi
echo "memcheck: all $n runs clean: ERROR SUMMARY: 0 errors, no definite or indirect leak (logs in $logs)"
