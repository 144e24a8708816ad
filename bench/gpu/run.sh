#!/usr/bin/env bash
# The GPU benchmark in one command, for a machine with one NVIDIA GPU (H100/H200: about
# 8 minutes). Run it from the unpacked GPU bundle (deploy/gpu-bundle.sh), or from a source tree
# built with -DPROBITY_GPU=ON:
#
#   ./bench-gpu.sh RESULTS_DIR [--smoke] [more gpu_bench options, see gpu_bench --help]
#
# RESULTS_DIR gets results.md (the tables for bench/RESULTS.md), log.txt, machine.txt (GPU,
# driver, CPU, memory) and work/ (the generated index and ledgers, a few GB; delete it after).
# Needs about 4 GB of disk and 16 GB of host memory at the default 20 M x 512 size.
# --smoke runs a 200,000-vector version in a few minutes, also on a machine without a GPU
# (then only the CPU parts run).
set -euo pipefail

if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
out=$1
shift
here=$(cd "$(dirname "$0")" && pwd)

bench=${PROBITY_GPU_BENCH:-}
if [[ -z $bench ]]; then
  for candidate in "$here/bin/gpu_bench" "$here/../../build/bench/gpu/gpu_bench"; do
    if [[ -x $candidate ]]; then
      bench=$candidate
      break
    fi
  done
fi
if [[ -z $bench ]]; then
  echo "gpu_bench not found next to this script (bin/) or in build/bench/gpu/;" \
    "set PROBITY_GPU_BENCH to its path" >&2
  exit 1
fi
# The bundle's wrapper checks that the target has what the binary needs (libcublas, driver).
if [[ -x $here/run && $bench == "$here/bin/gpu_bench" ]]; then
  "$here/run" --check
fi

mkdir -p "$out"
chmod 700 "$out"
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(uname -srm)"
  echo "cpus: $(nproc)"
  grep -m1 'model name' /proc/cpuinfo || true
  grep -E 'MemTotal' /proc/meminfo || true
  if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
  else
    echo "nvidia-smi: not found"
  fi
  echo "binary: $bench"
} > "$out/machine.txt"
cat "$out/machine.txt"

# 512 concurrent clients hold one connection each on both sides.
ulimit -n "$(ulimit -Hn)" 2> /dev/null || true

start=$(date +%s)
# 15 minutes at most: a stuck run must not hold a rented GPU.
status=0
timeout 900 "$bench" --out "$out" "$@" 2>&1 | tee "$out/log.txt" || status=$?
echo "== gpu_bench finished in $(($(date +%s) - start)) s with status $status"
if [[ -f $out/results.md ]]; then
  echo "== tables for bench/RESULTS.md: $out/results.md"
fi
exit "$status"
