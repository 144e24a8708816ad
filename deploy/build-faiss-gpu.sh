#!/usr/bin/env bash
# Builds FAISS 1.7.3 with its GPU module from Debian bookworm's own source package (the same
# version as libfaiss-dev) into a prefix inside the build tree, for `cmake -DPROBITY_GPU=ON`.
#
#   deploy/build-faiss-gpu.sh [--prefix DIR] [--cuda-architectures LIST] [--jobs N]
#                             [--headers-only]
#
#   --prefix DIR               install prefix (default build-gpu-deps/faiss, ignored by git)
#   --cuda-architectures LIST  CMAKE_CUDA_ARCHITECTURES for the GPU module (default 90, H100/H200)
#   --jobs N                   parallel compile jobs (default: number of cores)
#   --headers-only             only install the source package's headers (CPU and GPU) into the
#                              prefix: enough to compile Probity's GPU sources without a GPU
#                              build of FAISS (what CI does); links nothing
#
# Needs root (or sudo) once: it adds a deb-src line for bookworm if none is configured and runs
# apt-get update; every step is skipped when already done, so running it again is cheap.
# The full build takes 20-40 minutes on two cores; it needs the CUDA toolkit (nvcc, cuBLAS) at
# /usr/local/cuda or CUDACXX, and CUDA 13's Thrust/CUB require C++17, which is set here.
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=build-gpu-deps/faiss
cuda_architectures=90
jobs=$(nproc)
headers_only=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --prefix) prefix=$2; shift 2 ;;
    --cuda-architectures) cuda_architectures=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --headers-only) headers_only=1; shift ;;
    -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
work=$(dirname "$prefix")/faiss-src
mkdir -p "$work"
work=$(cd "$work" && pwd)

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# 1. A deb-src entry for bookworm main (Debian 12's images ship binary entries only).
has_deb_src() {
  grep -rqsE '^[[:space:]]*deb-src[[:space:]].*[[:space:]]bookworm[[:space:]]' \
    /etc/apt/sources.list /etc/apt/sources.list.d/ && return 0
  # deb822 files: a deb-src stanza's file that also names the bookworm suite.
  local file
  for file in $(grep -rlsE '^Types:.*deb-src' /etc/apt/sources.list.d/); do
    grep -qsE '^Suites:.*bookworm([[:space:]]|$)' "$file" && return 0
  done
  return 1
}
if ! has_deb_src; then
  echo "== adding a deb-src entry for bookworm"
  as_root tee /etc/apt/sources.list.d/probity-bookworm-src.sources > /dev/null << 'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  as_root apt-get update
fi
if ! command -v dpkg-source > /dev/null; then
  as_root apt-get install -y --no-install-recommends dpkg-dev
fi

# 2. The source package, unpacked with Debian's patches applied.
source_dir=$(find "$work" -maxdepth 1 -type d -name 'faiss-1.7.3*' | head -n 1)
if [[ -z "$source_dir" ]]; then
  echo "== fetching Debian's faiss source package"
  (cd "$work" && apt-get source faiss)
  source_dir=$(find "$work" -maxdepth 1 -type d -name 'faiss-1.7.3*' | head -n 1)
fi
if [[ -z "$source_dir" || ! -d "$source_dir/faiss/gpu" ]]; then
  echo "no FAISS 1.7.3 source with faiss/gpu under $work" >&2
  exit 1
fi
echo "== FAISS source: $source_dir"

# 3a. Headers only: every header of the source tree, GPU module included, as `make install`
#     would lay them out. Used by CI to compile the GPU sources against the system libfaiss.
if [[ $headers_only -eq 1 ]]; then
  (cd "$source_dir" && find faiss -type f \( -name '*.h' -o -name '*.cuh' \) -print0 |
    xargs -0 -I{} install -D -m 0644 {} "$prefix/include/{}")
  echo "== headers installed under $prefix/include"
  exit 0
fi

# 3b. Full build: static libfaiss.a with the GPU module, no Python, no tests.
cuda_root=${CUDA_HOME:-/usr/local/cuda}
export CUDACXX=${CUDACXX:-$cuda_root/bin/nvcc}
build_dir=$work/build-$cuda_architectures
cmake -S "$source_dir" -B "$build_dir" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_PREFIX="$prefix" \
  -DFAISS_ENABLE_GPU=ON \
  -DFAISS_ENABLE_PYTHON=OFF \
  -DFAISS_ENABLE_C_API=OFF \
  -DBUILD_TESTING=OFF \
  -DBUILD_SHARED_LIBS=OFF \
  -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
  -DCMAKE_CXX_STANDARD=17 \
  -DCMAKE_CUDA_STANDARD=17 \
  -DCMAKE_CUDA_ARCHITECTURES="$cuda_architectures" \
  -DCUDAToolkit_ROOT="$cuda_root"
cmake --build "$build_dir" -j"$jobs" --target faiss
cmake --install "$build_dir"
# What CMake checks against -DPROBITY_CUDA_ARCHITECTURES.
echo "cuda_architectures=$cuda_architectures" > "$prefix/probity-faiss-gpu.txt"
echo "== FAISS with GPU module installed under $prefix"
echo "   configure Probity with: cmake -DPROBITY_GPU=ON -DPROBITY_FAISS_GPU_PREFIX=$prefix" \
  "-DPROBITY_CUDA_ARCHITECTURES=$cuda_architectures ..."
