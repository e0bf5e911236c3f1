#!/usr/bin/env bash
# The memory planner against its lower bound on the reference cases: every
# case compiled as exported (entry `embed`) and with --train (entries
# `train_step` and `embed`), each with --memory-report. Prints one row per
# entry: case, entry, arena bytes, lower bound bytes (the largest sum of
# simultaneously live arena bytes over the schedule), their ratio, and the
# compile time. Target: ratio <= 1.01 everywhere.
#
#   bench/memory/arena_table.sh [BUILD_DIR] [CASE_DIR...]
# Default cases: ../shared/reference/*/ (a3, ResNet-18, when generated with
# make_reference.py --only a3 --out-a DIR: pass DIR/a3_simclr_resnet18).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
shift || true
cases=("$@")
if [ ${#cases[@]} -eq 0 ]; then
  for d in ../shared/reference/*/; do [ -f "$d/model.onnx" ] && cases+=("${d%/}"); done
fi
onnxc=$build/bin/onnxc
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf "%-28s %-11s %12s %12s %7s %8s\n" case entry arena lower_bound ratio compile_s
worst=0
for dir in "${cases[@]}"; do
  name=$(basename "$dir")
  freeze=()
  case $name in a5_*) freeze=(--freeze 'encoder_k\..*') ;; esac
  for mode in plain train; do
    args=()
    [ $mode = train ] && args=(--train --optimizer sgd --lr 0.05 --momentum 0.9 --weight-decay 1e-4 "${freeze[@]}")
    t0=$(date +%s.%N)
    "$onnxc" "$dir/model.onnx" -o "$work/plan.bin" --memory-report "$work/mem.json" "${args[@]}"
    t1=$(date +%s.%N)
    python3 - "$work/mem.json" "$name" "$mode" "$(echo "$t1 - $t0" | bc -l)" >>"$work/rows" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for e in d["entries"]:
    if sys.argv[3] == "train" and e["name"] == "embed":
        entry = "embed(eval)"
    else:
        entry = e["name"]
    lb = e["lower_bound_bytes"]
    r = e["arena_bytes"] / lb if lb else 1.0
    print("%-28s %-11s %12d %12d %7.4f %8.2f" % (sys.argv[2], entry, e["arena_bytes"], lb, r,
                                                float(sys.argv[4])))
PY
  done
done
cat "$work/rows"
awk '{ if ($5 > w) { w = $5; at = $1 " " $2 } } END { printf "worst ratio: %.4f (%s); target <= 1.01\n", w, at }' "$work/rows"
