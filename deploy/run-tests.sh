#!/usr/bin/env bash
# README command 2: installs every dependency, builds everything and runs all tests through
# CTest, then builds the unit tests with ASan+UBSan and runs them, then runs the token-parser
# fuzzer for a short fixed time. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/install-deps.sh
jobs=$(nproc)

echo "== stage 1: build and run all tests"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs" --timeout 1500

echo "== stage 2: unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DPROBITY_SANITIZE=ON \
  -DPROBITY_UNIT_TESTS_ONLY=ON -DPROBITY_BENCHMARKS=OFF
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan -L unit --output-on-failure -j"$jobs" --timeout 1500

echo "== stage 3: token parser fuzzing (libFuzzer, fixed time)"
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DPROBITY_FUZZ=ON -DPROBITY_UNIT_TESTS_ONLY=ON -DPROBITY_BENCHMARKS=OFF
if cmake --build build-fuzz --target help | grep -q '^fuzz_'; then
  for target in $(cmake --build build-fuzz --target help | sed -n 's/^\(fuzz_[a-z_]*\):.*/\1/p'); do
    cmake --build build-fuzz -j"$jobs" --target "$target"
    corpus=$(mktemp -d)
    binary=$(find build-fuzz -type f -name "$target" -perm -u+x | head -n 1)
    "$binary" -max_total_time=60 -rss_limit_mb=2048 "$corpus"
    rm -rf "$corpus"
  done
fi
