#!/bin/sh
# fuzz/replay.sh [TARGET...]: the regression run (CI).
#
# Builds the fuzz targets and runs each once over every file of its
# committed corpus fuzz/corpus/TARGET/ (seeds and regress-* inputs: libFuzzer
# with the files as arguments, no mutation), with the limits the fuzzing runs
# use (-rss_limit_mb=2048, -timeout=10). Exits non-zero when any input
# crashes, leaks, runs out of memory or times out, naming the target.
# Default: all targets. A minute or two on 2 cores (after the build).
set -eu
. "$(dirname "$0")/common.sh"

[ $# -gt 0 ] || set -- $TARGETS
for t in "$@"; do
  case " $TARGETS " in *" $t "*) ;; *) fuzz_die "unknown target '$t' (one of: $TARGETS)" ;; esac
done
bins=""
for t in "$@"; do bins="$bins fuzz_$t"; done
# shellcheck disable=SC2086
fuzz_build $bins

mkdir -p "$BUILD/logs"
failed=""
for t in "$@"; do
  dir=$ROOT/fuzz/corpus/$t
  n=$(find "$dir" -type f 2>/dev/null | wc -l)
  if [ "$n" -eq 0 ]; then
    echo "replay: $t: no corpus in $dir" >&2
    failed="$failed $t"
    continue
  fi
  log=$BUILD/logs/replay-$t.log
  start=$(date +%s)
  # Files as arguments: each runs once; artifacts go to the scratch folder.
  if find "$dir" -type f -print0 | sort -z |
     xargs -0 "$BUILD/bin/fuzz_$t" -rss_limit_mb=2048 -timeout="${FUZZ_TIMEOUT:-10}" \
       -artifact_prefix="$BUILD/replay-$t-" >"$log" 2>&1; then
    echo "replay: $t: $n inputs ok ($(($(date +%s) - start))s)"
  else
    echo "replay: $t: FAILED ($(($(date +%s) - start))s); the report:" >&2
    # The input that failed (the last one started) and the report.
    grep -E '^Running: ' "$log" | tail -1 >&2
    grep -E 'ERROR|SUMMARY|^    #[0-9]+ |^fuzz_[a-z]+: ' "$log" | head -30 >&2
    echo "replay: $t: full log $log" >&2
    failed="$failed $t"
  fi
done
if [ -n "$failed" ]; then
  echo "replay: failed:$failed" >&2
  exit 1
fi
echo "replay: all ok"
