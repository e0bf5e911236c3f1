#!/usr/bin/env bash
# onnxrun --embed-dir (docs/distributed.md, "Embeddings at scale").
# Usage: test_embed_dir.sh ONNXC ONNXRUN TENSOR_TOOL DATA_DIR
#
# A folder of 13 examples of the SimCLR small-CNN reference (a2) in 11 files
# (.npy and .pb, one file of 3 examples, a hidden file, a README and a
# subfolder that must be skipped) is embedded with
#  - the training plan's embed entry (batch 8: 2 batches, the last padded)
#  - the eval-mode encoder's plan (batch 2: 7 batches; a 3-example file
#    spans two batches), gathering after every batch;
# by one process and, when onnxrun has MPI, by mpirun -np 2 and -np 3 (where
# some rank has no batch, or a file spans two ranks). Every run must give the
# same bytes as running the batches one by one with onnxrun --inputs/--outputs
# and keeping the real rows, and the manifest must list the examples in the
# byte order of the file names. Also: --load-checkpoint, and errors (a file of
# the wrong shape or dtype, an empty folder, a missing output, bad usage; on
# one process and on 2 ranks) that name the file and leave no file behind.
set -uo pipefail
onnxc=$1 onnxrun=$2 tt=$3 data=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

"$onnxrun" --help >"$tmp/help" || fail "onnxrun --help"
have_mpi=1
command -v mpirun >/dev/null || have_mpi=0
grep -q "this build has no MPI" "$tmp/help" && have_mpi=0
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
# As in test_distributed.sh: under mpirun the sanitizer builds check memory
# errors but not leaks (Open MPI keeps allocations until exit); the
# one-process runs check leaks of the same code.
mpi() { ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0" mpirun --oversubscribe -np "$@"; }

a2=$data/reference/a2_simclr_smallcnn
in0=$a2/test_data_set_0/input_0.pb in1=$a2/test_data_set_0/input_1.pb # float32[8,3,16,16] each
"$onnxc" "$a2/model.onnx" -o "$tmp/train.bin" --train --lr 0.05 >/dev/null || fail "compile a2 --train"
"$onnxc" "$a2/embed/model.onnx" -o "$tmp/embed.bin" >/dev/null || fail "compile a2/embed"

# --- the folder: 13 examples in 11 files, written out of order
ex=$tmp/examples
mkdir -p "$ex/sub"
one() { "$tt" example "$1" "$2" "$ex/$3" || fail "tensor_tool example $*"; }
one "$in0" 7 img_14.pb
one "$in0" 0 img_00.npy
one "$in1" 3 img_100.npy
one "$in0" 1 img_02.pb
one "$in0" 2 img_04.npy
one "$in0" 3 img_06.npy
one "$in1" 5 A_first.pb
one "$in0" 4 img_08.pb
one "$in0" 5 img_10.npy
one "$in0" 6 img_12.npy
"$tt" rows "$in1" 0 3 "$ex/img_03_batch.npy" || fail "tensor_tool rows"
one "$in1" 6 .hidden.npy
one "$in1" 7 sub/img_99.npy
echo "not an example" >"$ex/README.txt"
# The 13 examples in the byte order of the names (A_first.pb, img_00.npy,
# img_02.pb, img_03_batch.npy (3), img_04 ... img_10, img_100.npy, img_12,
# img_14), and the manifest that says so.
"$tt" cat "$tmp/all.npy" "$in1:5:1" "$in0:0:2" "$in1:0:3" "$in0:2:4" "$in1:3:1" "$in0:6:2" ||
  fail "tensor_tool cat"
{
  printf 'row\tfile\tindex\n'
  r=0
  for f in A_first.pb img_00.npy img_02.pb img_03_batch.npy img_03_batch.npy img_03_batch.npy \
    img_04.npy img_06.npy img_08.pb img_10.npy img_100.npy img_12.npy img_14.pb; do
    i=0
    [ "$f" = img_03_batch.npy ] && i=$((r - 3))
    printf '%d\t%s\t%d\n' "$r" "$f" "$i"
    r=$((r + 1))
  done
} >"$tmp/manifest.expected"

# reference PLAN B OUT [onnxrun options]: the 13 examples in batches of B
# (the last padded with zeros), each run by onnxrun --inputs/--outputs, the
# real rows joined.
reference() {
  local plan=$1 b=$2 out=$3 parts=() k=0 rows
  shift 3
  while [ $((k * b)) -lt 13 ]; do
    rows=$((13 - k * b))
    [ "$rows" -gt "$b" ] && rows=$b
    local pad=()
    [ "$rows" -lt "$b" ] && pad=("zeros:$((b - rows))")
    mkdir -p "$tmp/ref/$k"
    "$tt" cat "$tmp/ref/$k/input_0.npy" "$tmp/all.npy:$((k * b)):$rows" "${pad[@]}" ||
      fail "reference batch $k"
    "$onnxrun" "$plan" --inputs "$tmp/ref/$k" --outputs "$tmp/ref/$k/out" --npy --threads 1 "$@" ||
      fail "onnxrun --inputs on reference batch $k"
    parts+=("$tmp/ref/$k/out/output_0.npy:0:$rows")
    k=$((k + 1))
  done
  "$tt" cat "$out" "${parts[@]}" || fail "joining the reference batches"
  rm -rf "$tmp/ref"
}
reference "$tmp/train.bin" 8 "$tmp/ref_train.npy"
reference "$tmp/embed.bin" 2 "$tmp/ref_embed.npy"
[ "$("$tt" shape "$tmp/ref_train.npy")" = "float32[13,32]" ] || fail "reference shape"

# check NAME FILE.npy REFERENCE [MANIFEST]
check() {
  if cmp -s "$2" "$3"; then echo "$1: the bytes of the batches run one by one"
  else fail "$1: $2 differs from $3"; fi
  if [ -n "${4:-}" ] && ! cmp -s "$4" "$tmp/manifest.expected"; then
    fail "$1: manifest"; diff "$4" "$tmp/manifest.expected" | head -5
  fi
}

# --- 1. one process
"$onnxrun" "$tmp/train.bin" --embed-dir "$ex" --embeddings "$tmp/t1.npy" \
  --manifest "$tmp/t1.tsv" --threads 1 >"$tmp/t1.out" || fail "train.bin, one process"
cat "$tmp/t1.out"
grep -q "float32\[13,32\] .* 13 examples from 11 files, 2 batches of 8 on 1 rank" "$tmp/t1.out" ||
  fail "summary line: $(cat "$tmp/t1.out")"
check "train plan (embed entry), 1 process" "$tmp/t1.npy" "$tmp/ref_train.npy" "$tmp/t1.tsv"
"$onnxrun" "$tmp/embed.bin" --embed-dir "$ex" --embeddings "$tmp/e1.npy" --gather-every 1 \
  --manifest "$tmp/e1.tsv" >/dev/null || fail "embed.bin, one process"
check "eval encoder (batch 2), 1 process, --gather-every 1" "$tmp/e1.npy" "$tmp/ref_embed.npy" \
  "$tmp/e1.tsv"

# --- 2. ranks
if [ "$have_mpi" = 1 ]; then
  for n in 2 3; do
    mpi "$n" "$onnxrun" "$tmp/train.bin" --embed-dir "$ex" --embeddings "$tmp/t$n.npy" \
      --manifest "$tmp/t$n.tsv" --threads 1 >"$tmp/t$n.out" || fail "train.bin, mpirun -np $n"
    [ "$(grep -c embeddings "$tmp/t$n.out")" = 1 ] || fail "-np $n: rank 0 alone prints"
    check "train plan, mpirun -np $n" "$tmp/t$n.npy" "$tmp/ref_train.npy" "$tmp/t$n.tsv"
    cmp -s "$tmp/t$n.npy" "$tmp/t1.npy" || fail "-np $n and one process differ"
    mpi "$n" "$onnxrun" "$tmp/embed.bin" --embed-dir "$ex" --embeddings "$tmp/e$n.npy" \
      --manifest "$tmp/e$n.tsv" --threads 1 --gather-every 1 >/dev/null ||
      fail "embed.bin, mpirun -np $n"
    check "eval encoder, mpirun -np $n --gather-every 1" "$tmp/e$n.npy" "$tmp/ref_embed.npy" \
      "$tmp/e$n.tsv"
  done
else
  echo "test_embed_dir: no mpirun or no MPI in onnxrun: the runs on several ranks are skipped"
fi

# --- 3. the state of a checkpoint (2 SGD steps) is what embeds
"$onnxrun" "$tmp/train.bin" --inputs "$a2/test_data_set_0" --steps 2 \
  --save-checkpoint "$tmp/ck.bin" >/dev/null || fail "train 2 steps"
reference "$tmp/train.bin" 8 "$tmp/ref_ck.npy" --load-checkpoint "$tmp/ck.bin"
"$onnxrun" "$tmp/train.bin" --embed-dir "$ex" --embeddings "$tmp/ck.npy" \
  --load-checkpoint "$tmp/ck.bin" >/dev/null || fail "--embed-dir --load-checkpoint"
check "after 2 train steps (--load-checkpoint)" "$tmp/ck.npy" "$tmp/ref_ck.npy"
cmp -s "$tmp/ck.npy" "$tmp/t1.npy" && fail "the checkpoint changed nothing"
if [ "$have_mpi" = 1 ]; then
  mpi 2 "$onnxrun" "$tmp/train.bin" --embed-dir "$ex" --embeddings "$tmp/ck2.npy" \
    --load-checkpoint "$tmp/ck.bin" --threads 1 >/dev/null || fail "-np 2 --load-checkpoint"
  check "after 2 train steps, mpirun -np 2" "$tmp/ck2.npy" "$tmp/ref_ck.npy"
fi

# --- 4. errors: one line naming the cause, exit 1, no file (an old one kept)
out=$tmp/out
mkdir -p "$out"
# expect_error NAME NEEDLE RUNNER... : fails with NEEDLE on stderr, leaves out/ as it was.
expect_error() {
  local name=$1 needle=$2
  shift 2
  echo old >"$out/emb.npy"
  if "$@" --embeddings "$out/emb.npy" --manifest "$out/man.tsv" >/dev/null 2>"$tmp/err"; then
    fail "$name: succeeded"
  fi
  grep -q -- "$needle" "$tmp/err" || fail "$name: no '$needle' in: $(head -3 "$tmp/err")"
  grep -q "Sanitizer\|runtime error" "$tmp/err" && fail "$name: sanitizer report: $(cat "$tmp/err")"
  echo "$name: $(grep -m1 -- "$needle" "$tmp/err")"
  [ "$(cat "$out/emb.npy")" = old ] || fail "$name: the old embeddings file was replaced"
  [ "$(ls -A "$out")" = emb.npy ] || fail "$name: left files behind: $(ls -A "$out")"
}
bad=$tmp/bad
cp -r "$ex" "$bad"
"$tt" rows "$data/reference/a1_mlp_triplet/test_data_set_0/input_0.pb" 0 1 "$bad/img_13_bad.pb" ||
  fail "tensor_tool rows a1"
expect_error "a file of the wrong shape" "img_13_bad.pb: holds float32\[1,64\], which is neither" \
  "$onnxrun" "$tmp/train.bin" --embed-dir "$bad"
rm "$bad/img_13_bad.pb"
"$tt" cast "$in0" "$bad/img_13_bad.npy" || fail "tensor_tool cast"
expect_error "a file of the wrong dtype" "img_13_bad.npy: holds double\[8,3,16,16\], but input 'x1'" \
  "$onnxrun" "$tmp/train.bin" --embed-dir "$bad"
mkdir -p "$tmp/empty/sub"
expect_error "an empty folder" "no example files" "$onnxrun" "$tmp/train.bin" --embed-dir "$tmp/empty"
expect_error "a missing output" "has no output 'nosuch' (its outputs: 'embedding')" \
  "$onnxrun" "$tmp/train.bin" --embed-dir "$ex" --output nosuch
if [ "$have_mpi" = 1 ]; then
  # The bad file is in rank 1's share: rank 1 says so, the job fails, and
  # rank 0 writes nothing.
  expect_error "-np 2, a bad file on rank 1" "rank 1 of 2: error: .*img_13_bad.npy: holds double" \
    mpi 2 "$onnxrun" "$tmp/train.bin" --embed-dir "$bad" --threads 1
fi
if [ "$have_mpi" = 1 ]; then
  # Rank 1 is stopped at once (so that the job cannot finish), then killed
  # (SIGKILL): mpirun ends the job and says so, and no file is left (rank 0
  # writes into a file without a name, O_TMPFILE, until the end).
  cat >"$tmp/die.sh" <<SH
#!/usr/bin/env bash
if [ "\${OMPI_COMM_WORLD_RANK:-0}" = 1 ]; then
  "$onnxrun" "\$@" & pid=\$!
  kill -STOP \$pid; sleep 1; kill -9 \$pid; wait \$pid; kill -9 \$\$
fi
exec "$onnxrun" "\$@"
SH
  chmod +x "$tmp/die.sh"
  expect_error "-np 2, rank 1 killed" "process rank 1 .* signal 9" \
    mpi 2 "$tmp/die.sh" "$tmp/embed.bin" --embed-dir "$ex" --threads 1 --gather-every 1
fi
"$onnxrun" "$tmp/train.bin" --embed-dir "$ex" --embeddings "$out/x.npy" --outputs "$out" \
  2>/dev/null
[ $? = 2 ] || fail "--embed-dir with --outputs is not bad usage"
"$onnxrun" "$tmp/train.bin" --inputs "$ex" --outputs "$out" --embeddings "$out/x.npy" 2>/dev/null
[ $? = 2 ] || fail "--embeddings without --embed-dir is not bad usage"
"$onnxrun" "$tmp/train.bin" --embed-dir "$ex" 2>/dev/null
[ $? = 2 ] || fail "--embed-dir without --embeddings is not bad usage"
grep -q -- "--embed-dir DIR" "$tmp/help" || fail "--help does not describe --embed-dir"

if [ "$failures" -ne 0 ]; then echo "test_embed_dir: $failures failure(s)"; exit 1; fi
echo "test_embed_dir: ok"
