#!/usr/bin/env bash
# Makes one archive (at most 60 MiB) that runs Probity's GPU build on a GPU machine that has an
# NVIDIA driver for CUDA 13 and CUDA 13's cuBLAS (libcublas.so.13, libcublasLt.so.13) but no
# Debian packages, e.g. Ubuntu 24.04 with the CUDA 13 libraries under /usr/local/cuda-13.0.
#
#   deploy/gpu-bundle.sh [--faiss-prefix DIR] [--build-dir DIR] [--output FILE]
#                        [--cuda-architectures LIST] [--skip-build] [--no-check]
#                        [--chroot DIR]
#
#   --faiss-prefix DIR          FAISS with its GPU module (deploy/build-faiss-gpu.sh; default
#                               build-gpu-deps/faiss)
#   --build-dir DIR             the PROBITY_GPU build tree (default build-gpu-bundle)
#   --output FILE               the archive (default probity-gpu-bundle.tar.xz)
#   --cuda-architectures LIST   what FAISS was built for (default 90: H100/H200)
#   --skip-build                reuse the build tree as it is
#   --no-check                  do not unpack and check the archive afterwards
#   --chroot DIR                also run the checks inside DIR, a bare Debian made with
#                               `debootstrap --variant=minbase bookworm DIR` (no -dev packages),
#                               with CUDA's cuBLAS copied in to stand for the target's
#
# What goes in: bin/probity, bin/gpu_bench, bin/search_load (gpu_bench's clients in another
# process) and bin/index_gpu_tests (the GPU tests), relinked so
# that every library Debian ships as a static archive (gRPC, protobuf, Abseil, OpenSSL, c-ares,
# re2, zlib, OpenBLAS's OpenMP build with gfortran and quadmath, FAISS with its GPU module, CUDA's
# runtime) is inside the binary; lib/ with the few shared libraries Debian ships only as .so
# (spdlog, fmt, and for the metrics endpoint prometheus-cpp's core and civetweb) and the C++
# runtime they and the binaries share (libstdc++, libgcc_s, libgomp), found through an $ORIGIN
# rpath; `run`, which checks the target and starts a binary; gpu-check.sh (the GPU tests and a
# GPU training round trip); bench-gpu.sh (bench/gpu/run.sh); README.txt. Step 3 copies
# whatever .so-only library the binaries need, so a new one lands in lib/ by itself; the check
# (step 6) fails if one is missing.
# Only the C library (libc, libm, ld-linux), cuBLAS and the driver come from the target.
#
# Needs the build dependencies (deploy/install-deps.sh), the CUDA 13 toolkit, xz and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
source_dir=$(pwd)

faiss_prefix=build-gpu-deps/faiss
build_dir=build-gpu-bundle
output=probity-gpu-bundle.tar.xz
cuda_architectures=90
skip_build=0
check=1
chroot_dir=
while [[ $# -gt 0 ]]; do
  case "$1" in
    --faiss-prefix) faiss_prefix=$2; shift 2 ;;
    --build-dir) build_dir=$2; shift 2 ;;
    --output) output=$2; shift 2 ;;
    --cuda-architectures) cuda_architectures=$2; shift 2 ;;
    --skip-build) skip_build=1; shift ;;
    --no-check) check=0; shift ;;
    --chroot) chroot_dir=$2; shift 2 ;;
    -h | --help) sed -n '2,33p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [[ ! -f $faiss_prefix/include/faiss/gpu/GpuIndexIVFPQ.h ]]; then
  echo "no FAISS GPU build under $faiss_prefix: run deploy/build-faiss-gpu.sh first" >&2
  exit 1
fi
faiss_prefix=$(cd "$faiss_prefix" && pwd)
cuda_root=${CUDA_HOME:-/usr/local/cuda}
limit_bytes=$((60 * 1024 * 1024))

# 1. The PROBITY_GPU build of the two programs (Release: no debug info to strip away later).
if [[ $skip_build -eq 0 ]]; then
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DPROBITY_GPU=ON -DPROBITY_FAISS_GPU_PREFIX="$faiss_prefix" \
    -DPROBITY_CUDA_ARCHITECTURES="$cuda_architectures" \
    -DCUDAToolkit_ROOT="$cuda_root" ${CMAKE_CXX_COMPILER_LAUNCHER:+-DCMAKE_CXX_COMPILER_LAUNCHER=$CMAKE_CXX_COMPILER_LAUNCHER}
  cmake --build "$build_dir" --target probity gpu_bench search_load index_gpu_tests
fi
build_dir=$(cd "$build_dir" && pwd)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
name=probity-gpu-$(git -C "$source_dir" describe --always --dirty 2> /dev/null || echo build)
root=$stage/$name
mkdir -p "$root/bin" "$root/lib"

# 2. Relink each program from its own link command with the static archives in place of the
#    shared libraries (deploy/gpu-bundle/relink.py says how), and an rpath to ../lib.
for target in probity gpu_bench search_load index_gpu_tests; do
  link=$(ninja -C "$build_dir" -t commands "$target" | tail -n 1)
  (cd "$build_dir" && python3 "$source_dir/deploy/gpu-bundle/relink.py" \
    --cuda-root "$cuda_root" --output "$root/bin/$target" -- "$link")
  strip --strip-unneeded "$root/bin/$target"
done

# 3. The shared libraries the binaries still load, except those the target provides.
allowed_from_target='^(linux-vdso\.so\.1|libc\.so\.6|libm\.so\.6|libdl\.so\.2|libpthread\.so\.0|librt\.so\.1|ld-linux-x86-64\.so\.2|libcublas\.so\.13|libcublasLt\.so\.13)$'
copy_needed() {
  local file=$1
  ldd "$file" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | while read -r soname path; do
    if [[ $soname =~ $allowed_from_target || -e $root/lib/$soname ]]; then
      continue
    fi
    cp -L "$path" "$root/lib/$soname"
    chmod 0755 "$root/lib/$soname"
    strip --strip-unneeded "$root/lib/$soname"
    copy_needed "$root/lib/$soname"
  done
}
for binary in "$root"/bin/*; do
  copy_needed "$binary"
done

# 4. The wrapper, the benchmark script and the README.
install -m 0755 deploy/gpu-bundle/run "$root/run"
install -m 0755 bench/gpu/run.sh "$root/bench-gpu.sh"
install -m 0755 deploy/gpu-bundle/gpu-check.sh "$root/gpu-check.sh"
install -m 0644 deploy/gpu-bundle/README.txt "$root/README.txt"
{
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) from $(git -C "$source_dir" rev-parse HEAD 2> /dev/null || echo unknown)"
  echo "cuda architectures: $cuda_architectures"
  echo "glibc at build: $(ldd --version | head -n 1)"
  echo "bundled libraries: $(cd "$root/lib" && ls | tr '\n' ' ')"
} > "$root/BUILD-INFO.txt"

# 5. The archive. xz with a dictionary larger than one binary: both carry the same FAISS GPU
#    kernels, and the second copy then costs almost nothing.
mkdir -p "$(dirname "$output")"
output=$(cd "$(dirname "$output")" && pwd)/$(basename "$output")
tar -C "$stage" --owner=0 --group=0 --sort=name -cf - "$name" |
  xz -T1 --lzma2=preset=9e,dict=192MiB > "$output"
size=$(stat -c %s "$output")
echo "== $output: $((size / 1024 / 1024)) MiB ($size bytes)"
if [[ $size -gt $limit_bytes ]]; then
  echo "the archive is larger than 60 MiB" >&2
  exit 1
fi

# 6. Check the archive as the target will see it: unpacked elsewhere, run with an empty
#    environment, every library either in lib/ or one the target provides.
if [[ $check -eq 1 ]]; then
  check_dir=$(mktemp -d)
  trap 'rm -rf "$stage" "$check_dir"' EXIT
  tar -C "$check_dir" -xJf "$output"
  unpacked=$check_dir/$name
  bad=0
  # ldd of a program lists everything it loads, its libraries' libraries included (resolved
  # through the program's DT_RPATH, as at run time).
  for binary in "$unpacked"/bin/*; do
    while read -r soname path; do
      if [[ $(realpath -m "$path") == "$unpacked/lib/"* || $soname =~ $allowed_from_target ]]; then
        continue
      fi
      echo "  $(basename "$binary"): $soname comes from $path, outside the bundle" >&2
      bad=1
    done < <(env -i ldd "$binary" | awk '$2 == "=>" { print $1, $3 } $1 ~ /^\// { print $1, $1 }' |
      sed 's|^/lib64/ld-linux-x86-64.so.2 .*|ld-linux-x86-64.so.2 /lib64/ld-linux-x86-64.so.2|')
  done
  if [[ $bad -ne 0 ]]; then
    echo "the bundle needs libraries a bare target lacks" >&2
    exit 1
  fi
  echo "== every library is in lib/ or one the target provides"
  env -i "$unpacked/run" probity --help > /dev/null
  env -i "$unpacked/run" gpu_bench --help > /dev/null
  env -i "$unpacked/run" search_load --help > /dev/null
  # Without a GPU every GPU test skips; listing them checks that the binary starts.
  env -i "$unpacked/run" index_gpu_tests --gtest_list_tests > /dev/null
  bash -n "$unpacked/gpu-check.sh"
  echo "== probity, gpu_bench and search_load --help and index_gpu_tests --gtest_list_tests run from the unpacked bundle"
  # A CPU-only round trip through the bundled binary: synthetic gallery, build, search.
  data=$check_dir/data
  log=$check_dir/check.log
  if ! env -i "$unpacked/run" probity gen --out "$data/g" --identities 300 \
    --images-per-identity 4 --queries 10 --dim 64 --ground-truth-k 10 > "$log" 2>&1 ||
    ! env -i "$unpacked/run" probity build --input "$data/g/gallery.fbin" --spec IVF16,PQ8 \
      --shards 2 --output "$data/gen-1" --train-size 1200 >> "$log" 2>&1; then
    cat "$log" >&2
    exit 1
  fi
  env -i "$unpacked/run" probity search --generation "$data/gen-1" \
    --queries "$data/g/queries.fbin" --count 2 --k 5 --nprobe 4
  echo "== a CPU search ran from the unpacked bundle"
  # The metrics endpoint starts: its civetweb threads must hold cuBLAS's thread-local storage,
  # which is reserved at load, GPU or not (common/src/pthread_stack_size_interposer.cpp). The
  # demo's first start writes its data; the second serves it with "metrics" added.
  demo=$check_dir/demo
  env -i "$unpacked/run" probity serve --demo --data-dir "$demo" --demo-identities 300 \
    --port-file "$check_dir/demo.port" > "$log" 2>&1 &
  demo_pid=$!
  for _ in $(seq 120); do [[ -s $check_dir/demo.port ]] || ! kill -0 $demo_pid 2> /dev/null && break; sleep 1; done
  kill -INT $demo_pid 2> /dev/null || true
  wait $demo_pid || { cat "$log" >&2; exit 1; }
  python3 - "$demo/config.json" "$check_dir/metrics.json" << 'PYTHON'
import json, os, sys
config = json.load(open(sys.argv[1]))
config["metrics"] = {"address": "127.0.0.1:0"}
with open(os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
    json.dump(config, out)
PYTHON
  env -i "$unpacked/run" probity serve --config "$check_dir/metrics.json" > "$log" 2>&1 &
  serve_pid=$!
  metrics_port=
  for _ in $(seq 60); do
    metrics_port=$(sed -n 's|.*metrics on http://127.0.0.1:[0-9]*/metrics (port \([0-9]*\)).*|\1|p' "$log")
    [[ -n $metrics_port ]] || ! kill -0 $serve_pid 2> /dev/null && break
    sleep 1
  done
  if [[ -z $metrics_port ]] || ! python3 -c "import sys, urllib.request
text = urllib.request.urlopen(sys.argv[1], timeout=10).read().decode()
sys.exit(0 if '# TYPE probity_searches_total counter' in text else 1)" \
    "http://127.0.0.1:$metrics_port/metrics"; then
    kill -INT $serve_pid 2> /dev/null || true
    wait $serve_pid || true
    cat "$log" >&2
    echo "the metrics endpoint did not answer" >&2
    exit 1
  fi
  kill -INT $serve_pid
  wait $serve_pid
  echo "== probity serve with metrics started from the unpacked bundle and answered GET /metrics"
fi

# 7. The same in a bare Debian: only what minbase installs, cuBLAS where the target has it.
#    /proc is mounted because the loader finds $ORIGIN through /proc/self/exe.
if [[ -n $chroot_dir ]]; then
  target_cuda=$chroot_dir/usr/local/cuda-13.0/targets/x86_64-linux/lib
  mkdir -p "$target_cuda" "$chroot_dir/opt/probity-check"
  cp -L "$cuda_root"/lib64/libcublas.so.13 "$cuda_root"/lib64/libcublasLt.so.13 "$target_cuda/"
  rm -rf "$chroot_dir/opt/probity-check/$name"
  tar -C "$chroot_dir/opt/probity-check" -xJf "$output"
  mount -t proc proc "$chroot_dir/proc"
  trap 'umount "$chroot_dir/proc"; rm -rf "$stage" "${check_dir:-}"' EXIT
  chroot "$chroot_dir" /bin/sh -ec "
    cd /opt/probity-check/$name
    env -i ./run --check || true
    if env -i ldd bin/probity bin/gpu_bench bin/search_load bin/index_gpu_tests | grep 'not found'; then exit 1; fi
    env -i ./run gpu_bench --help > /dev/null
    env -i ./run index_gpu_tests --gtest_list_tests > /dev/null
    env -i ./run probity gen --out /tmp/g --identities 300 --images-per-identity 4 \
      --queries 10 --dim 64 --ground-truth-k 10 > /tmp/check.log 2>&1
    env -i ./run probity build --input /tmp/g/gallery.fbin --spec IVF16,PQ8 --shards 2 \
      --output /tmp/gen-1 --train-size 1200 >> /tmp/check.log 2>&1
    env -i ./run probity search --generation /tmp/gen-1 --queries /tmp/g/queries.fbin \
      --count 1 --k 3 --nprobe 4"
  echo "== the bundle ran a CPU search in the bare Debian at $chroot_dir"
fi
