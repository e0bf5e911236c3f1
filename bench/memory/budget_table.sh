#!/usr/bin/env bash
# --memory-budget on the reference cases: each case's train step (SGD, lr
# 0.05, momentum 0.9, weight decay 1e-4) compiled without a budget, then
# with budgets at FRACTIONS of that arena. Prints per budget: the arena, the
# extra FLOPs per step (and as a share of the step's), the instructions
# recomputed, the choice that won and, for comparison, the extra FLOPs of the
# cheapest of Chen et al.'s choices (sqrt(n), greedy segments) that fits; or
# the smallest budget that works when it does not fit.
#
#   bench/memory/budget_table.sh [BUILD_DIR] [CASE_DIR...]
# FRACTIONS (environment, default "0.9 0.8 0.7 0.6 0.5"). Default cases:
# ../shared/reference/*/ (pass a generated a3_simclr_resnet18 folder by hand).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
shift || true
cases=("$@")
if [ ${#cases[@]} -eq 0 ]; then
  for d in ../shared/reference/*/; do [ -f "$d/model.onnx" ] && cases+=("${d%/}"); done
fi
fractions=${FRACTIONS:-0.9 0.8 0.7 0.6 0.5}
onnxc=$build/bin/onnxc
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf "%-28s %5s %11s %11s %9s %7s %5s  %-30s %9s\n" case budget bytes arena "+FLOPs" "+%" instr \
  choice "Chen +%"
for dir in "${cases[@]}"; do
  name=$(basename "$dir")
  args=(--train --optimizer sgd --lr 0.05 --momentum 0.9 --weight-decay 1e-4)
  case $name in a5_*) args+=(--freeze 'encoder_k\..*') ;; esac
  "$onnxc" "$dir/model.onnx" -o "$work/plan.bin" "${args[@]}" --memory-report "$work/full.json"
  full=$(python3 -c "import json; print(json.load(open('$work/full.json'))['arena_bytes'])")
  printf "%-28s %5s %11s %11d\n" "$name" "-" "-" "$full"
  for f in $fractions; do
    budget=$(python3 -c "print(int($full * $f))")
    if "$onnxc" "$dir/model.onnx" -o "$work/plan.bin" "${args[@]}" --memory-budget "$budget" \
        --memory-report "$work/b.json" 2>"$work/err"; then
      python3 - "$work/b.json" "$name" "$f" "$budget" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
chen = d["chen_recompute_flops"]
chen_pct = "%.1f" % (100.0 * chen / d["step_flops"]) if chen >= 0 else "none"
print("%-28s %5s %11s %11d %9.3g %7.1f %5d  %-30s %9s" % (
    sys.argv[2], sys.argv[3], sys.argv[4], d["arena_bytes"], d["recompute_flops"],
    100.0 * d["recompute_flops"] / d["step_flops"], d["recomputed_instructions"],
    d["recompute_strategy"], chen_pct))
PY
    else
      printf "%-28s %5s %11s  %s\n" "$name" "$f" "$budget" \
        "$(grep -o 'the smallest budget that works is [0-9]* bytes' "$work/err" || cat "$work/err")"
    fi
  done
done
