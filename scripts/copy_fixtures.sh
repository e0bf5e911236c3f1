#!/usr/bin/env bash
# Copies test fixtures from the shared folder into tests/data. A maintainer
# script: CI does not run it; its output is committed.
#
#   scripts/copy_fixtures.sh [SHARED_DIR]      (default: ../shared beside the repo)
#
# (a) tests/data/node/<case>/: every ONNX backend node-test case of
#     SHARED/onnx-node-tests, with model.onnx and its test_data_set_*/ folders.
# (b) tests/data/reference/<case>/: the small PyTorch reference cases (CASES
#     below), whole (model.onnx, meta.json, test_data_set_0/ with gradients,
#     embed/, embed_text/), without the generator script.
#
# Existing case folders are deleted first, so a case that left the selection
# disappears. The README.md files in tests/data/node and tests/data/reference
# are kept. Needs /usr/bin/python3 with onnx (Debian's python3-onnx).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${1:-$ROOT/../shared}"
NODE_SRC="$SHARED/onnx-node-tests"
REF_SRC="$SHARED/reference"
NODE_DST="$ROOT/tests/data/node"
REF_DST="$ROOT/tests/data/reference"
PYTHON=/usr/bin/python3

CASES="a1_mlp_triplet a2_simclr_smallcnn a2b_simclr_smallcnn_opset17 a4_clip_dual
a5_moco_v2 a6_audio_cpc"

for d in "$NODE_SRC" "$REF_SRC"; do
  [ -d "$d" ] || { echo "copy_fixtures: no folder $d" >&2; exit 1; }
done

# Every node-test case: the conformance runner must pass or cleanly refuse
# each of them.
select_node_cases() {
  for d in "$NODE_SRC"/*/; do
    [ -f "$d/model.onnx" ] && basename "$d"
  done
}

# cp without the source's (read-only) modes, so a later run can replace the copy.
copy_tree() { cp -R --no-preserve=mode,ownership "$1" "$2"; }

# (a) node tests
mkdir -p "$NODE_DST"
mapfile -t node_cases < <(select_node_cases)
[ "${#node_cases[@]}" -gt 0 ] || { echo "copy_fixtures: no node case selected" >&2; exit 1; }
find "$NODE_DST" -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
for c in "${node_cases[@]}"; do
  mkdir -p "$NODE_DST/$c"
  cp --no-preserve=mode,ownership "$NODE_SRC/$c/model.onnx" "$NODE_DST/$c/"
  for s in "$NODE_SRC/$c"/test_data_set_*; do
    [ -d "$s" ] && copy_tree "$s" "$NODE_DST/$c/"
  done
done
echo "node: ${#node_cases[@]} cases -> $NODE_DST"

# (b) reference cases
mkdir -p "$REF_DST"
for c in $CASES; do
  [ -d "$REF_SRC/$c" ] || { echo "copy_fixtures: no case $REF_SRC/$c" >&2; exit 1; }
  rm -rf "${REF_DST:?}/$c"
  copy_tree "$REF_SRC/$c" "$REF_DST/$c"
  find "$REF_DST/$c" -name 'make_reference.py' -delete
done
echo "reference: $(echo $CASES | wc -w) cases -> $REF_DST"

du -sh "$ROOT/tests/data"
