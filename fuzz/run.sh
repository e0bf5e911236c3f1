#!/bin/sh
# fuzz/run.sh TARGET SECONDS [libFuzzer options...]
#
# Builds the fuzz targets (build-fuzz/, clang, -fsanitize=fuzzer,address,
# undefined; installs clang and libclang-rt-14-dev with apt-get when missing)
# and runs fuzz_TARGET for SECONDS on its committed corpus fuzz/corpus/TARGET/
# plus a scratch corpus build-fuzz/corpus/TARGET/, where new inputs go (the
# committed corpus is only read). Crashes, leaks, OOMs (-rss_limit_mb=2048)
# and timeouts (-timeout=10) are written to fuzz/crashes/TARGET-*.
#
# TARGET: compile | plan | checkpoint | tensor
#
# Environment:
#   FUZZ_JOBS=N        N parallel workers (libFuzzer -fork=N); default 1
#   FUZZ_KEEP_GOING=1  fork mode that records crashes/OOMs/timeouts and goes on
#                      (for long runs; implies -fork)
#   ONNXC_FUZZ_BUILD   build directory (default build-fuzz)
# Extra arguments go to libFuzzer (e.g. -max_len=65536, -only_ascii=1).
set -eu
. "$(dirname "$0")/common.sh"

[ $# -ge 2 ] || fuzz_die "usage: fuzz/run.sh TARGET SECONDS [libFuzzer options...] (TARGET: $TARGETS)"
target=$1
secs=$2
shift 2
case " $TARGETS " in *" $target "*) ;; *) fuzz_die "unknown target '$target' (one of: $TARGETS)" ;; esac
case $secs in '' | *[!0-9]*) fuzz_die "SECONDS must be a whole number" ;; esac

fuzz_build "fuzz_$target"
bin=$BUILD/bin/fuzz_$target
committed=$ROOT/fuzz/corpus/$target
scratch=$BUILD/corpus/$target
crashes=$ROOT/fuzz/crashes
mkdir -p "$scratch" "$crashes" "$BUILD/logs"
[ -d "$committed" ] || mkdir -p "$committed"

if [ "$target" = checkpoint ]; then
  # A valid checkpoint of the plan as this build compiles it (the committed
  # one may predate a change of the state layout).
  ONNXC_FUZZ_WRITE_CHECKPOINT=$scratch/valid.ckpt "$bin" >/dev/null 2>&1 ||
    fuzz_die "fuzz_checkpoint could not write its seed checkpoint"
fi

set -- -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
  -artifact_prefix="$crashes/$target-" "$@"
dict=$(fuzz_dict "$target")
[ -n "$dict" ] && set -- -dict="$dict" "$@"
jobs=${FUZZ_JOBS:-1}
if [ "${FUZZ_KEEP_GOING:-0}" = 1 ]; then
  set -- -fork="$jobs" -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 "$@"
elif [ "$jobs" -gt 1 ]; then
  set -- -fork="$jobs" "$@"
fi

log=$BUILD/logs/$target-$(date +%Y%m%d-%H%M%S).log
echo "fuzz/run.sh: fuzz_$target for ${secs}s; corpus $scratch (new) + $committed; log $log" >&2
cd "$BUILD"
rc_file=$log.rc
( set +e; "$bin" "$@" "$scratch" "$committed"; echo $? >"$rc_file" ) 2>&1 | tee "$log"
status=$(cat "$rc_file" 2>/dev/null || echo 1)
rm -f "$rc_file"
if [ "$status" != 0 ]; then
  echo "fuzz/run.sh: fuzz_$target stopped with status $status; inputs written:" >&2
  grep -E 'Test unit written to|written to .*(crash|leak|oom|timeout)-' "$log" |
    sed 's/.*written to /  /' | sort -u >&2 || true
fi
exit "$status"
