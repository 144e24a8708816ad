#!/usr/bin/env bash
# Checks that this GPU machine runs Probity's GPU path, from the unpacked bundle:
#
#   ./gpu-check.sh RESULTS_DIR [SIFTSMALL_DIR]
#
# 1. ./run --check (cuBLAS, driver) and nvidia-smi;
# 2. every GPU test (bin/index_gpu_tests), each in its own process so that one that crashes
#    does not hide the others' results; the siftsmall tests run when SIFTSMALL_DIR holds
#    siftsmall_base.fvecs, siftsmall_query.fvecs and siftsmall_groundtruth.ivecs;
# 3. `probity build` of one synthetic gallery trained on the CPU and with --gpu 0 --gpu-pq, and
#    `probity eval` of both generations.
# RESULTS_DIR gets tests.txt (one line per test: PASSED, FAILED, SKIPPED or the signal that
# ended it), one log per test, build.txt and summary.txt. Exits non-zero if a test failed.
# A test ended by a signal runs once more under CUDA's compute-sanitizer when the machine has
# it (test-NAME.sanitizer.log), bounded by CHECK_SANITIZER_TIMEOUT (seconds, default 180).
# About a minute on an H100; CHECK_TEST_TIMEOUT (seconds, default 300) bounds each test.
set -uo pipefail

if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
out=$1
sift=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
chmod 700 "$out"
out=$(cd "$out" && pwd)
timeout_s=${CHECK_TEST_TIMEOUT:-300}
sanitizer_timeout_s=${CHECK_SANITIZER_TIMEOUT:-180}
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2> /dev/null |
  head -1 || true)

{
  "$here/run" --check
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || true
} | tee "$out/summary.txt"

# The GPU tests read siftsmall from $PROBITY_SOURCE_DIR/../shared/data/siftsmall.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/src" "$scratch/shared/data"
if [[ -n $sift ]]; then
  ln -s "$(cd "$sift" && pwd)" "$scratch/shared/data/siftsmall"
fi
export PROBITY_SOURCE_DIR=$scratch/src

failed=0
: > "$out/tests.txt"
suite=
while IFS= read -r line; do
  if [[ $line != " "* ]]; then
    suite=${line%%.*}
    continue
  fi
  test="$suite.$(echo "$line" | awk '{ print $1 }')"
  log="$out/test-$test.log"
  timeout -s INT "$timeout_s" "$here/run" index_gpu_tests --gtest_filter="$test" > "$log" 2>&1
  rc=$?
  if [[ $rc -eq 0 ]] && grep -q '^\[  SKIPPED \]' "$log"; then
    result=SKIPPED
  elif [[ $rc -eq 0 ]]; then
    result=PASSED
  elif [[ $rc -eq 124 ]]; then
    result="TIMED OUT after $timeout_s s"
    failed=1
  elif [[ $rc -gt 128 ]]; then
    result="ENDED BY SIGNAL $((rc - 128)) ($(grep -m1 -E 'terminate|assert|Error|error' "$log" || echo 'no message'))"
    failed=1
    if [[ -n $sanitizer ]]; then
      # Where the CUDA error comes from: memcheck names the kernel and the bad access.
      timeout -s INT "$sanitizer_timeout_s" "$sanitizer" --tool memcheck --target-processes all \
        "$here/run" index_gpu_tests --gtest_filter="$test" > "$out/test-$test.sanitizer.log" 2>&1
      result="$result; compute-sanitizer: $(grep -m1 -E '^=+ (Invalid|Program hit|Error|ERROR)' \
        "$out/test-$test.sanitizer.log" || echo 'see its log')"
    fi
  else
    result=FAILED
    failed=1
  fi
  echo "$test: $result" | tee -a "$out/tests.txt"
done < <("$here/run" index_gpu_tests --gtest_list_tests)

# probity build on the CPU and on the GPU, then eval of both. (Inside `( ) ||`, set -e would be
# ignored: every step says itself how it failed.)
(
  p="$here/run probity"
  d=$scratch/cli
  $p gen --out "$d/g" --identities 10000 --images-per-identity 10 --queries 1000 --dim 256 \
    --ground-truth-k 10 || exit 1
  for where in cpu gpu; do
    extra=()
    if [[ $where == gpu ]]; then extra=(--gpu 0 --gpu-pq); fi
    start=$(date +%s%N)
    if ! $p build --input "$d/g/gallery.fbin" --spec IVF1024,PQ32 --shards 2 \
      --train-size 100000 --output "$d/$where" "${extra[@]}" > "$d/build-$where.log" 2>&1; then
      tr '\r' '\n' < "$d/build-$where.log" | tail -n 5
      echo "== build on the $where failed"
      exit 1
    fi
    echo "== build on the $where: $((($(date +%s%N) - start) / 1000000)) ms"
  done
  for where in cpu gpu; do
    echo "== eval, trained on the $where"
    $p eval --generation "$d/$where" --queries "$d/g/queries.fbin" \
      --groundtruth "$d/g/groundtruth.ibin" --gallery-labels "$d/g/gallery_labels.ibin" \
      --query-labels "$d/g/query_labels.ibin" --nprobe 8,32,128 || exit 1
  done
) > "$out/build.txt" 2>&1 || {
  echo "probity build/eval: FAILED (see build.txt)" | tee -a "$out/summary.txt"
  failed=1
}
grep -E '^==|^ +[0-9]' "$out/build.txt" | tee -a "$out/summary.txt"
cat "$out/tests.txt" >> "$out/summary.txt"
exit "$failed"
