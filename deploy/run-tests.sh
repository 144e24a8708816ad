#!/usr/bin/env bash
# README command 2: installs every dependency, checks formatting, validates the Kubernetes
# manifests against the Kubernetes schemas (offline), builds everything and runs
# all tests through CTest, compiles the GPU sources (headers only, no GPU), then builds the
# unit tests with ASan+UBSan and runs them, then runs every fuzz_ target (warrant tokens,
# ledger segments, config, embedding files) for a short fixed time. Every stage builds with
# -Werror (PROBITY_WERROR). Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/install-deps.sh
jobs=$(nproc)
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# Runs ctest, keeping its output for the closing summary.
run_ctest() {
  local name=$1
  shift
  ctest "$@" 2>&1 | tee "$logs/$name.log"
  return "${PIPESTATUS[0]}"
}

echo "== stage 0: formatting (clang-format, the repository's .clang-format)"
git ls-files -z '*.cpp' '*.h' | xargs -0 clang-format --dry-run -Werror

echo "== stage 0b: Kubernetes manifests against the Kubernetes schemas (offline, strict)"
# deploy/install-deps.sh installed the validator with its schemas; nothing is fetched here.
build/python-tools/bin/kubernetes-validate --strict --quiet deploy/k8s/*.yaml

echo "== stage 1: build and run all tests"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPROBITY_WERROR=ON
cmake --build build -j"$jobs"
run_ctest all --test-dir build --output-on-failure -j"$jobs" --timeout 1500

echo "== stage 1b: GPU sources compile against FAISS's GPU headers and CUDA's (no GPU, no link)"
if [ -f /usr/local/cuda/include/cuda_runtime.h ]; then
  bash deploy/build-faiss-gpu.sh --headers-only --prefix build-gpu-check/faiss-headers
  cmake -S . -B build-gpu-check -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DPROBITY_GPU_COMPILE_CHECK=ON -DPROBITY_FAISS_GPU_PREFIX="$PWD/build-gpu-check/faiss-headers" \
    -DPROBITY_UNIT_TESTS_ONLY=ON -DPROBITY_BENCHMARKS=OFF -DPROBITY_WERROR=ON
  cmake --build build-gpu-check -j"$jobs" \
    --target probity_index_gpu_compile_check index_gpu_tests_compile_check
else
  echo "GPU compile check skipped: no CUDA toolkit at /usr/local/cuda"
fi

echo "== stage 2: unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DPROBITY_SANITIZE=ON \
  -DPROBITY_UNIT_TESTS_ONLY=ON -DPROBITY_BENCHMARKS=OFF -DPROBITY_WERROR=ON
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  LSAN_OPTIONS=suppressions="$PWD/tests/lsan-suppressions.txt" \
  run_ctest asan --test-dir build-asan -L unit --output-on-failure -j"$jobs" --timeout 1500

# Seconds per fuzz target: four targets keep the stage near three minutes.
fuzz_seconds=${PROBITY_FUZZ_SECONDS:-45}
echo "== stage 3: parser fuzzing (libFuzzer, ${fuzz_seconds} s per target)"
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DPROBITY_FUZZ=ON -DPROBITY_UNIT_TESTS_ONLY=ON -DPROBITY_BENCHMARKS=OFF -DPROBITY_WERROR=ON
if cmake --build build-fuzz --target help | grep -q '^fuzz_'; then
  for target in $(cmake --build build-fuzz --target help | sed -n 's/^\(fuzz_[a-z_]*\):.*/\1/p'); do
    cmake --build build-fuzz -j"$jobs" --target "$target"
    corpus=$(mktemp -d)
    binary=$(find build-fuzz -type f -name "$target" -perm -u+x | head -n 1)
    # Seed inputs, when the target has some, are read but never written (the first dir is).
    seeds=$(find tests -type d -path "*/fuzz_corpus/$target" | head -n 1)
    if ! "$binary" -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 "$corpus" ${seeds:+"$seeds"} \
      > "$logs/$target.log" 2>&1; then
      tail -n 60 "$logs/$target.log"
      echo "fuzzer $target found a crash" >&2
      exit 1
    fi
    tail -n 2 "$logs/$target.log"
    rm -rf "$corpus"
  done
fi

# One closing line over every stage: ctest's own summaries scroll away above the fuzzer.
passed=0
total=0
for log in "$logs"/all.log "$logs"/asan.log; do
  read -r p t < <(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\1 \2/p' "$log" | tail -n 1 |
    awk '{print $2 - $1, $2}')
  passed=$((passed + p))
  total=$((total + t))
done
echo "tests: $passed passed, $((total - passed)) failed"
