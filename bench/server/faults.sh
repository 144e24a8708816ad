#!/usr/bin/env bash
# Faults under load, longer than the CI test: runs the scenario of tests/server/fault_test.cpp
# (8 `probity shard` servers holding 8 shards twice, one router, client threads over loopback
# gRPC; SIGKILL, SIGSTOP, a 200 ms delaying proxy, a restart, both replicas of a shard down)
# with more clients and searches per phase, and prints per phase attempted / answered /
# partial / failed, p50 / p99 latency and p50 as a ratio of the all-up phase in the same run.
#
#   bash bench/server/faults.sh [BUILD_DIR]     (default: build; needs the targets probity and
#                                                server_fault_test)
# PROBITY_FAULT_CLIENTS (default 8) and PROBITY_FAULT_SEARCHES (per client and phase, default
# 250) size the load.
set -euo pipefail
build=${1:-build}
test_binary="$build/tests/server/server_fault_test"
if [[ ! -x "$test_binary" || ! -x "$build/server/cli/probity" ]]; then
  echo "build first: cmake --build $build --target probity server_fault_test" >&2
  exit 2
fi
export PROBITY_FAULT_CLIENTS=${PROBITY_FAULT_CLIENTS:-8}
export PROBITY_FAULT_SEARCHES=${PROBITY_FAULT_SEARCHES:-250}
echo "clients $PROBITY_FAULT_CLIENTS, searches per client and phase $PROBITY_FAULT_SEARCHES"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
output=$("$test_binary" --gtest_filter='FaultTest.SearchesSurvive*' 2>&1) || {
  echo "$output" | grep -E '^(phase|restarted)|Failure|error' >&2
  echo "the fault scenario failed" >&2
  exit 1
}
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$output" | grep -E '^restarted'
echo "$output" | grep -E '^phase' | awk '
  { name = $2; sub(":", "", name)
    for (i = 3; i < NF; i++) v[$i] = $(i + 1)
    if (name == "all-up") base = v["p50"]
    printf "%-24s attempted %6d answered %6d partial %6d failed %4d p50 %8.2f ms p99 %8.2f ms p50/all-up %5.2fx\n",
           name, v["attempted"], v["answered"], v["partial"], v["failed"], v["p50"], v["p99"],
           (base > 0 ? v["p50"] / base : 0) }'
