#!/usr/bin/env bash
# CTest's wrapper around scale.sh (ScaleDeploymentTest): runs it with its whole output in
# WORK_DIR/scale.log and prints a short report instead, with the reasons for a failure first.
# scale.sh's own output is long (progress of the build steps, every measurement), and a CI
# log that keeps only the start of a failed test's output would otherwise show the progress
# bars and cut the failed checks.
#
#   bash bench/server/scale-test.sh WORK_DIR BUILD_DIR
set -uo pipefail

if [[ $# -ne 2 ]]; then
  sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
work=$1
build=$2
rm -rf "$work"
mkdir -p "$work"
log=$work/scale.log
bash "$(dirname "$0")/scale.sh" "$work" "$build" > "$log" 2>&1
status=$?
results=$work/run/results.txt
# Lines worth reading: not a progress bar's redraw (those carry a carriage return or an
# erase-line escape).
plain() { tr '\r' '\n' < "$1" | grep -av $'\x1b\\[K' | grep -av '^$'; }
if ((status == 0)); then
  echo "scale.sh passed; its results ($results):"
  cat "$results"
  exit 0
fi
echo "scale.sh FAILED with status $status (whole output: $log)"
if [[ -f $results ]]; then
  grep -a '^check FAILED' "$results"
fi
echo "--- why searches failed (the first message of each failure code, per measurement):"
grep -a 'failure said' "$log" | cut -c1-600 | head -20
echo "--- the last lines scale.sh printed:"
plain "$log" | grep -av 'failure said' | tail -n 25
echo "--- results so far:"
if [[ -f $results ]]; then cat "$results"; fi
exit "$status"
