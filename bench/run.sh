#!/usr/bin/env bash
# Speed of onnxc next to its anchors, measured side by side in one run:
# embedding extraction against ONNX Runtime (onnxruntime-node), training
# steps against PyTorch (Debian's python3-torch), plus compile and plan-open
# times. Prints one Markdown table (bench/README.md explains every column).
#
#   bench/run.sh [--threads N] [--rounds R] [--quick] [--only REGEX] [--out FILE]
#
#   --threads N   threads on both sides (default 2): onnxrun --threads N, ORT
#                 intraOpNumThreads N, torch.set_num_threads(N)
#   --rounds R    each case runs R rounds, onnxc and its anchor alternating
#                 (default 3); the table keeps each side's best round (the
#                 median of its timed runs), so a burst of load from other
#                 processes during one round does not decide a ratio
#   --quick       fewer timed runs per round (for trying things out)
#   --only REGEX  run only the cases whose name matches the extended regex
#                 (e.g. --only 'ViT|MobileNet'); the table lists those
#   --out FILE    also write the table to FILE
#
# It installs what it needs (scripts/setup.sh: build tools and ORT under
# .deps/ort; apt python3-torch python3-torchvision python3-onnx), builds a
# Release tree in build-bench/ and keeps exported models in bench/.work/.
# BENCH_ONNXC_BIN=DIR times DIR/onnxc and DIR/onnxrun instead (another build;
# the FLOP counts and the plan-open row need plans this build's runtime opens).
# OPENBLAS_CORETYPE is left as the environment sets it and printed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
threads=2
rounds=3
quick=0
only=""
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --only) only=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "bench/run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

log() { echo "bench: $*" >&2; }

# --- anchors and build -------------------------------------------------------
scripts/setup.sh >&2
if ! /usr/bin/python3 -c "import torch, torchvision, onnx" 2>/dev/null; then
  log "installing python3-torch python3-torchvision python3-onnx"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q python3-torch python3-torchvision \
    python3-onnx >/dev/null
fi
ort_dir="$root/.deps/ort"
if [ ! -d "$ort_dir/node_modules/onnxruntime-node" ]; then
  log "installing onnxruntime-node into $ort_dir"
  mkdir -p "$ort_dir"
  (cd "$ort_dir" && npm install --ignore-scripts --no-audit --no-fund --silent \
     onnxruntime-node@1.30.0 >/dev/null)
fi
export ONNXC_ORT_DIR="$ort_dir"
log "building build-bench (Release)"
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DONNXC_BUILD_TESTS=OFF >/dev/null
cmake --build build-bench -j"$(nproc)" --target onnxc onnxrun onnxc_runtime >/dev/null 2>&1 ||
  { echo "bench: the build failed (cmake --build build-bench)" >&2; exit 1; }
bin="${BENCH_ONNXC_BIN:-$root/build-bench/bin}" # another build's onnxc/onnxrun, to compare
work="$root/bench/.work"
mkdir -p "$work"
cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE bench/bench_tools.c -Iinclude \
  -Ibuild-bench/include -Iruntime -Ibuild-bench/generated $(pkg-config --cflags openblas) \
  build-bench/lib/libonnxc_runtime.a $(pkg-config --libs libprotobuf-c openblas) -lm -lpthread \
  -o "$work/bench_tools"

log "exporting models into $work"
/usr/bin/python3 bench/models.py export "$work" 2>/dev/null

# --- plans -------------------------------------------------------------------
train_flags=(--train --optimizer sgd --lr 0.05 --momentum 0.9 --weight-decay 1e-4)
"$bin/onnxc" "$work/resnet18/model.onnx" -o "$work/resnet18/plan_b1.bin" --dim batch=1
"$bin/onnxc" "$work/resnet18/model.onnx" -o "$work/resnet18/plan_b32.bin" --dim batch=32
for c in mobilenetv2 vit_tiny text_a4; do "$bin/onnxc" "$work/$c/model.onnx" -o "$work/$c/plan.bin"; done
for c in simclr_r18 smallcnn_a2 mlp_a1; do
  "$bin/onnxc" "$work/$c/model.onnx" -o "$work/$c/plan.bin" "${train_flags[@]}"
done

# --- measuring -----------------------------------------------------------------
field() { awk -v k="$1:" '$1 == k {print $2}'; }
best() { # the smaller of two numbers, either may be empty
  if [ -z "$1" ]; then echo "$2"; elif [ -z "$2" ]; then echo "$1"
  else awk -v a="$1" -v b="$2" 'BEGIN {print (a < b ? a : b)}'; fi
}
scale() { [ "$quick" = 1 ] && echo $(( ($1 + 3) / 4 > 5 ? ($1 + 3) / 4 : 5 )) || echo "$1"; }

# sgemm ceiling: OpenBLAS's own threads, same count.
sgemm=$("$work/bench_tools" sgemm "$threads" 5 | field gflops)

rows=()
# case | onnxc command | anchor name | anchor command | flops | target | note
run_case() {
  local name=$1 ours=$2 anchor=$3 theirs=$4 flops=$5 target=$6 note=$7
  local a="" b="" r
  if [ -n "$only" ] && ! grep -qE -- "$only" <<<"$name"; then return 0; fi
  log "$name"
  for ((r = 0; r < rounds; r++)); do
    a=$(best "$a" "$(eval "$ours" | field median_ms)")
    b=$(best "$b" "$(eval "$theirs" | field median_ms)")
  done
  rows+=("$name|$a|$anchor|$b|$flops|$target|$note")
}

# FLOPs of a plan's products (bench_tools flops: direct-convolution counts).
# (Empty when the plan is another build's that this runtime does not open.)
fl() { "$work/bench_tools" flops "$1" "${2:-embed}" 2>/dev/null || true; }
run="$bin/onnxrun"
ort="node bench/ort_time.js"
R1=$(scale 20); R5=$(scale 5); R200=$(scale 200)

run_case "embed ResNet-18 224² b1" \
  "$run $work/resnet18/plan_b1.bin --inputs $work/resnet18/inputs_b1 --threads $threads --repeat $R1" \
  "ORT" "$ort run $work/resnet18/model.onnx $work/resnet18/inputs_b1 $threads $R1" \
  "$(fl "$work/resnet18/plan_b1.bin")" "<= 1.0" ""
run_case "embed ResNet-18 224² b32" \
  "$run $work/resnet18/plan_b32.bin --inputs $work/resnet18/inputs_b32 --threads $threads --repeat $R5" \
  "ORT" "$ort run $work/resnet18/model.onnx $work/resnet18/inputs_b32 $threads $R5" \
  "$(fl "$work/resnet18/plan_b32.bin")" "<= 0.8" ""
run_case "embed MobileNetV2 224² b1" \
  "$run $work/mobilenetv2/plan.bin --inputs $work/mobilenetv2/inputs --threads $threads --repeat $R1" \
  "ORT" "$ort run $work/mobilenetv2/model.onnx $work/mobilenetv2/inputs $threads $R1" \
  "$(fl "$work/mobilenetv2/plan.bin")" "<= 1.0" ""
run_case "embed tiny ViT 32² b8" \
  "$run $work/vit_tiny/plan.bin --inputs $work/vit_tiny/inputs --threads $threads --repeat $R1" \
  "ORT" "$ort run $work/vit_tiny/model.onnx $work/vit_tiny/inputs $threads $R1" \
  "$(fl "$work/vit_tiny/plan.bin")" "<= 1.0" ""
run_case "embed text encoder (a4) b2" \
  "$run $work/text_a4/plan.bin --inputs $work/text_a4/inputs --threads $threads --repeat $R200" \
  "ORT" "$ort run $work/text_a4/model.onnx $work/text_a4/inputs $threads $R200" \
  "$(fl "$work/text_a4/plan.bin")" "<= 1.0" ""
py="env BENCH_THREADS=$threads /usr/bin/python3 bench/models.py train"
run_case "train SimCLR ResNet-18 32² b2×64" \
  "$run $work/simclr_r18/plan.bin --entry train_step --inputs $work/simclr_r18/batch --threads $threads --repeat $R5" \
  "PyTorch" "$py simclr_r18 $work $R5" \
  "$(fl "$work/simclr_r18/plan.bin" train_step)" "<= 0.5" ""
run_case "train small-CNN SimCLR (a2) b2×8" \
  "$run $work/smallcnn_a2/plan.bin --entry train_step --inputs $work/smallcnn_a2/batch --threads $threads --repeat $R200" \
  "PyTorch" "$py smallcnn_a2 $work $R200" \
  "$(fl "$work/smallcnn_a2/plan.bin" train_step)" "<= 1.0" ""
run_case "train MLP triplet (a1) b3×16" \
  "$run $work/mlp_a1/plan.bin --entry train_step --inputs $work/mlp_a1/batch --threads $threads --repeat $R200" \
  "PyTorch" "$py mlp_a1 $work $R200" \
  "$(fl "$work/mlp_a1/plan.bin" train_step)" "<= 1.0" ""

# Compile and open times: the anchor is ORT creating a session of the same
# model (parsing, graph optimizations, kernel setup), its closest analogue.
compile_ms() {
  local t=() k t0 t1
  for ((k = 0; k < 5; k++)); do
    t0=$(date +%s%N)
    "$bin/onnxc" "$work/resnet50/model.onnx" -o "$work/resnet50/plan.bin"
    t1=$(date +%s%N)
    t+=("$(( (t1 - t0) / 1000 ))")
  done
  printf '%s\n' "${t[@]}" | sort -n | awk '{v[NR] = $1} END {printf "median_ms: %.1f\n", v[3] / 1000}'
}
run_case "compile ResNet-50 (onnxc) vs session create (ORT)" "compile_ms" \
  "ORT" "$ort create $work/resnet50/model.onnx $threads 5" "" "< 2000 ms" ""
noverify=$("$work/bench_tools" open "$work/resnet18/plan_b1.bin" "$(scale 20)" 0 2>/dev/null |
  field median_ms || true)
run_case "open ResNet-18 plan vs session create (ORT)" \
  "$work/bench_tools open $work/resnet18/plan_b1.bin $(scale 20)" \
  "ORT" "$ort create $work/resnet18/model.onnx $threads 5" "" "< 5 ms" \
  "default options: the 45 MB weights' checksum is verified; without it (verify_weights = 0) $noverify ms"

# --- the table -----------------------------------------------------------------
table() {
  echo "## onnxc speed, $(date -u +%Y-%m-%d) on $(hostname)"
  echo
  echo "- machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores;" \
       "flags: $(grep -m1 -o -w -E 'avx512f|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')"
  echo "- threads: $threads on both sides; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}"
  echo "- onnxc $(git describe --always --dirty 2>/dev/null || echo '?'); ORT" \
       "$(node -e "console.log(require('$ort_dir/node_modules/onnxruntime-node/package.json').version)");" \
       "PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)')"
  echo "- sgemm ceiling (OpenBLAS, 2048³, $threads threads): $sgemm GFLOP/s"
  echo "- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); each side's best of $rounds" \
       "rounds, a round being the median of its timed runs after a warm-up"
  echo
  echo "| case | onnxc ms | anchor | anchor ms | ratio | target | onnxc GFLOP/s | note |"
  echo "|---|---:|---|---:|---:|---|---:|---|"
  local row name a anchor b flops target note ratio gf
  for row in "${rows[@]}"; do
    IFS='|' read -r name a anchor b flops target note <<<"$row"
    ratio=$(awk -v a="$a" -v b="$b" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}')
    gf=$(awk -v f="$flops" -v a="$a" 'BEGIN {if (f > 0 && a > 0) printf "%.1f", f / (a * 1e6); else print "-"}')
    echo "| $name | $a | $anchor | $b | $ratio | $target | $gf | $note |"
  done
}
if [ -n "$out" ]; then table | tee "$out"; else table; fi
