#!/usr/bin/env bash
# Training that survives kill -9.
#
#   test_kill9.sh ONNXC ONNXRUN CKPT_STEP DATA_DIR
#
# The a1 triplet MLP compiled with --train (SGD, lr 0.05, momentum 0.9,
# weight decay 1e-4) trains in an interrupted job: onnxrun runs in chunks of
# 1 to 3 steps, each resuming from the checkpoint the previous one saved
# (--load-checkpoint ck --save-checkpoint ck), while a killer sends SIGKILL at
# 50 random moments (seeded RNG: KILL9_SEED). Two kills in three come after a
# random sleep over a chunk's measured lifetime; one in three comes 0 us to
# ~16 ms after the checkpoint's temp file (ck.tmp.<pid>) appears (ckpt_step
# --kill-in-write watches for it with inotify), so that kills land during
# the checkpoint write on any file system.
# After every run, killed or not: the checkpoint (if any yet) still loads
# (ckpt_step, and onnxrun --load-checkpoint, whose round trip rewrites it
# byte for byte) and holds either the step count it had before the run or
# that plus the chunk; a kill that left ck.tmp.<pid> behind (the write was
# interrupted) left the checkpoint at its old step, and the temp file itself
# either is complete (killed between fsync and rename) or is refused as a
# checkpoint. The steps done are read from the checkpoint (opt:step).
# The job goes on until all 50 kills have landed and at least KILL9_STEPS
# (60) steps are done; then its checkpoint must equal, byte for byte (cmp),
# that of one uninterrupted run of the same number of steps.
# Finally, truncated, garbled, empty and foreign checkpoints are refused:
# exit 1, one line "onnxrun: error: ...", nothing written.
set -uo pipefail

if [ $# -ne 4 ]; then
  echo "usage: test_kill9.sh ONNXC ONNXRUN CKPT_STEP DATA_DIR" >&2
  exit 2
fi
ONNXC=$1 ONNXRUN=$2 CKPT_STEP=$3 DATA=$4
CASE=$DATA/reference/a1_mlp_triplet
BATCH=$CASE/test_data_set_0
N_MIN=${KILL9_STEPS:-60}     # the job trains at least this many steps
KILLS=${KILL9_KILLS:-50}     # SIGKILLs to deliver
RANDOM=${KILL9_SEED:-20240607}

work=$(mktemp -d "${TMPDIR:-/tmp}/onnxc-kill9-XXXXXX")
child=
cleanup() {
  if [ -n "$child" ]; then kill -9 "$child" 2>/dev/null; wait "$child" 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "test_kill9: FAIL: $*" >&2
  exit 1
}

now_us() { echo "${EPOCHREALTIME/./}"; }   # no fork
# sleep_us N: sleeps N microseconds without starting a process.
exec {sleep_fd}<> <(:)
sleep_us() { read -r -t "$(printf '%d.%06d' $(($1 / 1000000)) $(($1 % 1000000)))" -u "$sleep_fd" _; }

plan=$work/plan.bin
ck=$work/ck
"$ONNXC" "$CASE/model.onnx" -o "$plan" --train --optimizer sgd --lr 0.05 --momentum 0.9 \
  --weight-decay 1e-4 >/dev/null 2>"$work/err" || fail "onnxc --train: $(cat "$work/err")"

train() { # train OUT_CKPT STEPS [IN_CKPT]
  local args=("$plan" --inputs "$BATCH" --steps "$2" --save-checkpoint "$1")
  [ $# -ge 3 ] && args+=(--load-checkpoint "$3")
  "$ONNXRUN" "${args[@]}" >/dev/null 2>"$work/err" || fail "onnxrun ${args[*]}: $(cat "$work/err")"
}

# The lifetime of one chunk run (2 steps, load + save), to spread the random
# kills over it: the median of three runs.
train "$work/cal.ckpt" 2
times=()
for _ in 1 2 3; do
  t0=$(now_us)
  train "$work/cal.ckpt" 2 "$work/cal.ckpt"
  times+=($(( $(now_us) - t0 )))
done
life_us=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)
rm -f "$work/cal.ckpt"
window_us=$(( life_us * 5 / 4 ))

rand_us() { # uniform in [0, $1)
  echo $(( (RANDOM * 32768 + RANDOM) % $1 ))
}

load_step() { # load_step CKPT WHAT: sets $new to CKPT's step count; fails when it does not load
  new=$("$CKPT_STEP" "$plan" "$1" 2>"$work/err") || fail "$2: checkpoint $1 does not load: $(cat "$work/err")"
}

step=0          # the checkpoint's step count (0: no checkpoint yet)
kills=0 before=0 midwrite=0 after=0 completed=0 partial_tmp=0 complete_tmp=0 targeted=0
runs=0
t_start=$(now_us)
# Until 50 kills have landed and at least N_MIN steps are done.
while [ "$kills" -lt "$KILLS" ] || [ "$step" -lt "$N_MIN" ]; do
  runs=$((runs + 1))
  [ "$runs" -gt 2000 ] && fail "$kills kills and $step steps after $runs runs"
  k=$(( 1 + RANDOM % 3 ))
  [ "$kills" -ge "$KILLS" ] && [ $((step + k)) -gt "$N_MIN" ] && k=$((N_MIN - step))
  args=("$plan" --inputs "$BATCH" --steps "$k" --save-checkpoint "$ck")
  [ -e "$ck" ] && args+=(--load-checkpoint "$ck")
  mode=none delay_us=0
  if [ "$kills" -lt "$KILLS" ]; then
    if [ $(( RANDOM % 3 )) -eq 0 ]; then
      # Aimed at the write: SIGKILL 0 us to ~16 ms (log-uniform) after the
      # temp file appears, from ckpt_step, which watches it with inotify.
      mode=write
      targeted=$((targeted + 1))
      delay_us=$(( (RANDOM * 32768 + RANDOM) % (1 << (RANDOM % 15)) ))
      "$CKPT_STEP" --kill-in-write "$delay_us" "$ck" -- "$ONNXRUN" "${args[@]}" \
        >/dev/null 2>"$work/err"
      rc=$?
    else
      # A random moment of the run's lifetime.
      mode=random
      delay_us=$(rand_us "$window_us")
      "$ONNXRUN" "${args[@]}" >/dev/null 2>"$work/err" &
      child=$!
      sleep_us "$delay_us"
      kill -9 "$child" 2>/dev/null
      { wait "$child"; } 2>/dev/null
      rc=$?
      child=
    fi
  else
    "$ONNXRUN" "${args[@]}" >/dev/null 2>"$work/err"
    rc=$?
  fi
  # A temp file left behind: the run died between creating it and renaming
  # it over the checkpoint.
  tmp=$(find "$work" -maxdepth 1 -name 'ck.tmp.*' | head -2)
  [ "$(printf '%s' "$tmp" | grep -c .)" -le 1 ] || fail "run $runs left more than one temp file"

  if [ "$rc" -eq 0 ]; then
    [ -z "$tmp" ] || fail "run $runs exited 0 but left its temp file $tmp"
    completed=$((completed + 1))
    [ -e "$ck" ] || fail "run $runs exited 0 but wrote no checkpoint"
    load_step "$ck" "run $runs"
    [ "$new" -eq $((step + k)) ] || fail "run $runs: $k steps from step $step gave step $new"
  elif [ "$rc" -eq 137 ]; then
    [ "$mode" != none ] || fail "run $runs was killed, but not by this test"
    kills=$((kills + 1))
    new=0
    [ -e "$ck" ] && load_step "$ck" "kill $kills"
    if [ -n "$tmp" ]; then
      # Killed between creating the temp file and renaming it.
      midwrite=$((midwrite + 1))
      [ "$new" -eq "$step" ] || fail "kill $kills interrupted a write, yet the checkpoint went from step $step to $new"
      if tstep=$("$CKPT_STEP" "$plan" "$tmp" 2>"$work/tmp_err"); then
        # Fully written, killed before the rename: a whole checkpoint.
        complete_tmp=$((complete_tmp + 1))
        [ "$tstep" -eq $((step + k)) ] || fail "kill $kills: the complete temp file holds step $tstep, expected $((step + k))"
      else
        partial_tmp=$((partial_tmp + 1))
        [ "$(wc -l <"$work/tmp_err")" -eq 1 ] || fail "kill $kills: the partial temp file's error is not one line: $(cat "$work/tmp_err")"
      fi
      rm -f "$tmp"
    elif [ "$new" -eq "$step" ]; then
      before=$((before + 1))
    elif [ "$new" -eq $((step + k)) ]; then
      after=$((after + 1))
    else
      fail "kill $kills: $k steps from step $step left a checkpoint at step $new"
    fi
  else
    fail "run $runs exited with status $rc: $(cat "$work/err")"
  fi
  [ -n "${KILL9_VERBOSE:-}" ] && echo "run $runs: steps $step+$k, rc $rc, mode $mode, delay $delay_us us, now at step $new"
  step=$new
  # The checkpoint is intact for onnxrun too: loading and saving it again
  # gives the same bytes.
  if [ -e "$ck" ]; then
    "$ONNXRUN" "$plan" --load-checkpoint "$ck" --save-checkpoint "$work/again.ckpt" \
      >/dev/null 2>"$work/err" || fail "after run $runs: onnxrun --load-checkpoint: $(cat "$work/err")"
    cmp -s "$ck" "$work/again.ckpt" || fail "after run $runs: the checkpoint does not round-trip"
  fi
  stray=$(find "$work" -name 'ck.tmp.*' | head -1)
  [ -z "$stray" ] || fail "after run $runs: stray temp file $stray"
done
elapsed_ms=$(( ($(now_us) - t_start) / 1000 ))
N=$step

[ "$midwrite" -ge 1 ] || fail "none of the $kills kills landed during a checkpoint write"
# The reference: one uninterrupted run of as many steps; and one step short
# of it, which must differ: every step changes the state, so a lost or
# repeated step cannot go unnoticed.
train "$work/ref.ckpt" "$N"
train "$work/ref_short.ckpt" $((N - 1))
cmp -s "$work/ref.ckpt" "$work/ref_short.ckpt" && fail "steps $((N - 1)) and $N have the same state"
cmp "$ck" "$work/ref.ckpt" || fail "the interrupted job's final state after $N steps differs from an uninterrupted run's"

echo "test_kill9: $kills SIGKILLs over $runs runs of 1-3 steps ($targeted aimed at the checkpoint write," \
     "the others at random within ${window_us} us of a ${life_us} us run): $midwrite landed mid-write ($partial_tmp partial temp files" \
     "refused, $complete_tmp complete but not yet renamed), $before before the write, $after after" \
     "the rename; $completed runs completed; every checkpoint loaded after every kill;" \
     "$N steps in ${elapsed_ms} ms; final checkpoint identical to an uninterrupted run of $N steps (cmp)"

# --- damaged checkpoints are refused -------------------------------------------------
size=$(stat -c %s "$work/ref.ckpt")
flip() { # flip FILE OFFSET: xor one byte with 0x5a
  local b
  b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  printf "\\$(printf %03o $((b ^ 0x5a)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
bad=$work/bad
mkdir -p "$bad"
head -c $((size - 1)) "$work/ref.ckpt" >"$bad/truncated_by_one"
head -c $((size / 2)) "$work/ref.ckpt" >"$bad/truncated_half"
head -c 40 "$work/ref.ckpt" >"$bad/header_only"
: >"$bad/empty"
cp "$work/ref.ckpt" "$bad/extended" && printf '\0' >>"$bad/extended"
cp "$work/ref.ckpt" "$bad/magic" && flip "$bad/magic" 0
cp "$work/ref.ckpt" "$bad/header_size" && flip "$bad/header_size" 20
cp "$work/ref.ckpt" "$bad/state_first" && flip "$bad/state_first" 64
cp "$work/ref.ckpt" "$bad/state_middle" && flip "$bad/state_middle" $((size / 2))
cp "$work/ref.ckpt" "$bad/state_last" && flip "$bad/state_last" $((size - 1))
head -c "$size" /dev/urandom >"$bad/random"
# A sound checkpoint of another plan (Adam: another state layout).
"$ONNXC" "$CASE/model.onnx" -o "$work/adam.bin" --train --optimizer adam >/dev/null 2>"$work/err" \
  || fail "onnxc --optimizer adam: $(cat "$work/err")"
"$ONNXRUN" "$work/adam.bin" --inputs "$BATCH" --steps 1 --save-checkpoint "$bad/other_plan" \
  >/dev/null 2>"$work/err" || fail "onnxrun (adam): $(cat "$work/err")"
n_bad=0
for f in "$bad"/*; do
  n_bad=$((n_bad + 1))
  out=$work/out.ckpt
  rm -f "$out"
  "$ONNXRUN" "$plan" --load-checkpoint "$f" --inputs "$BATCH" --steps 1 --save-checkpoint "$out" \
    >/dev/null 2>"$work/err"
  rc=$?
  name=$(basename "$f")
  [ "$rc" -eq 1 ] || fail "damaged checkpoint '$name': onnxrun exited $rc, expected 1"
  [ "$(wc -l <"$work/err")" -eq 1 ] || fail "damaged checkpoint '$name': not one line: $(cat "$work/err")"
  grep -q '^onnxrun: error: ' "$work/err" || fail "damaged checkpoint '$name': $(cat "$work/err")"
  [ ! -e "$out" ] || fail "damaged checkpoint '$name': a checkpoint was written anyway"
  "$CKPT_STEP" "$plan" "$f" >/dev/null 2>&1 && fail "damaged checkpoint '$name' loads"
  echo "  refused $name: $(cut -c1-150 "$work/err")"
done
echo "test_kill9: $n_bad damaged or foreign checkpoints refused (exit 1, one line, nothing written)"
echo "test_kill9: PASS"
