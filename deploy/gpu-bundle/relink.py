#!/usr/bin/env python3
"""Relinks a program from its CMake link command for the GPU bundle (deploy/gpu-bundle.sh).

Every shared library on the command line, and every library those need in turn (their
DT_NEEDED, which a shared link never had to name), is replaced by its static archive where
Debian ships one; the archives go into one --start-group/--end-group so that their order does
not matter. What has no archive stays a shared library for the bundle's lib/: spdlog and fmt,
prometheus-cpp's core and civetweb (the metrics endpoint; Debian 12 ships neither as an
archive), the C++ runtime (libstdc++, libgcc_s, libgomp; one copy for the program and those
libraries), and cuBLAS and the C library, which the target provides. Debian's civetweb would
dlopen libssl.so/libcrypto.so only for an HTTPS port ("...s"), which Probity never configures
(metrics.address must be IP:digits), so the OpenSSL linked into the program is the only one. CUDA's runtime becomes
libcudart_static.a, and BLAS/LAPACK become OpenBLAS's static library (Debian's libblas.a may be
the slow reference BLAS, depending on the alternatives), in its OpenMP build
(libopenblas-openmp-dev): FAISS calls BLAS between its own OpenMP loops, and the pthread build's
threads then fight OpenMP's spinning threads for the cores. On a 16-core H100 machine that made
CPU PQ training about 100 times slower than it should be (3.4 k-means iterations/s on 200,000
8-d vectors) and the GPU tests' CPU reference indexes took minutes.

The program gets a DT_RPATH (not RUNPATH, so that the bundled libraries find each other too)
of $ORIGIN/../lib, then the usual CUDA 13 library directories for cuBLAS.

Usage (in the build directory the command came from):
  relink.py --cuda-root DIR --output FILE -- "<link command>"
"""

import argparse
import os
import re
import shlex
import subprocess
import sys

LIB_DIRS = [
    "/usr/lib/x86_64-linux-gnu",
    "/lib/x86_64-linux-gnu",
    "/usr/lib/gcc/x86_64-linux-gnu/12",
    "/usr/lib",
]
# Linked by the compiler driver anyway; always the target's.
SYSTEM = {"c", "m", "dl", "pthread", "rt", "util", "resolv", "ld-linux-x86-64"}
# Stay shared: the target's (cuBLAS, the driver) or bundled in lib/.
KEEP_SHARED = {"cublas", "cublasLt", "cuda", "stdc++", "gcc_s", "gomp", "spdlog", "fmt"}
OPENBLAS_STATIC = "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.a"
SHARED_RE = re.compile(r"^(?:.*/)?lib([^/]+?)\.so(?:\.[0-9.]+)?$")


def base_name(path):
    match = SHARED_RE.match(os.path.basename(path))
    return match.group(1) if match else None


def find_shared(name, extra_dirs):
    for directory in extra_dirs + LIB_DIRS:
        for candidate in (f"lib{name}.so", f"lib{name}.so.0"):
            path = os.path.join(directory, candidate)
            if os.path.exists(path):
                return path
    return None


def find_soname(soname, extra_dirs):
    for directory in extra_dirs + LIB_DIRS:
        path = os.path.join(directory, soname)
        if os.path.exists(path):
            return path
    return None


def needed(path):
    out = subprocess.run(["readelf", "-d", path], check=True, capture_output=True, text=True)
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out.stdout)


def static_archive(name, shared_path, cuda_root):
    if name == "cudart":
        return os.path.join(cuda_root, "lib64", "libcudart_static.a")
    if name in ("blas", "lapack", "openblas") or name.startswith("openblas"):
        return OPENBLAS_STATIC
    directories = [os.path.dirname(os.path.realpath(shared_path)), os.path.dirname(shared_path)]
    for directory in directories + LIB_DIRS:
        path = os.path.join(directory, f"lib{name}.a")
        if os.path.exists(path):
            return path
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cuda-root", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("command")
    args = parser.parse_args()
    if not os.path.exists(OPENBLAS_STATIC):
        sys.exit(f"{OPENBLAS_STATIC} is missing: install libopenblas-openmp-dev "
                 "(deploy/install-deps.sh)")
    cuda_dirs = [os.path.join(args.cuda_root, "lib64"),
                 os.path.join(args.cuda_root, "targets/x86_64-linux/lib")]

    tokens = shlex.split(args.command)
    # ": && /usr/bin/c++ ... && :" as ninja prints it.
    if "&&" in tokens:
        first = tokens.index("&&") + 1
        last = tokens.index("&&", first) if "&&" in tokens[first:] else len(tokens)
        tokens = tokens[first:last]
    compiler, rest = tokens[0], tokens[1:]

    front, archives, shared, seen = [], [], [], set()
    extra_dirs = list(cuda_dirs)

    def add_library(path, name):
        if name in seen or name in SYSTEM:
            return
        seen.add(name)
        if name in KEEP_SHARED:
            shared.append(path)
            return
        archive = static_archive(name, path, args.cuda_root)
        if archive is None:
            shared.append(path)
            return
        if archive not in archives:
            archives.append(archive)
        # What the shared library needed is now the program's to link.
        for soname in needed(path):
            dependency = find_soname(soname, extra_dirs)
            dependency_name = base_name(soname)
            if dependency and dependency_name:
                add_library(dependency, dependency_name)

    skip_next = False
    for i, token in enumerate(rest):
        if skip_next:
            skip_next = False
            continue
        if token == "-o":
            skip_next = True
            continue
        if token.startswith("-Wl,-rpath"):
            continue
        if token.startswith("-L"):
            extra_dirs.append(token[2:])
            continue
        if token.startswith("-l") and not token.startswith("-l:"):
            name = token[2:]
            if name in SYSTEM:
                front.append(token)
                continue
            path = find_shared(name, extra_dirs)
            if path is None:
                front.append(token)
            else:
                add_library(path, name)
            continue
        name = base_name(token) if not token.startswith("-") else None
        if name is not None:
            add_library(token, name)
            continue
        if token.endswith(".a"):
            if token not in archives:
                archives.append(token)
            continue
        front.append(token)

    rpath = ":".join(["$ORIGIN/../lib", "/usr/local/cuda-13.0/targets/x86_64-linux/lib",
                      "/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib"])
    command = ([compiler] + front + ["-o", args.output, "-Wl,--start-group"] + archives +
               ["-Wl,--end-group"] + shared +
               ["-ldl", "-lrt", "-lpthread", "-lm", "-Wl,--disable-new-dtags",
                f"-Wl,-rpath,{rpath}"])
    print("static:", " ".join(os.path.basename(a) for a in archives), file=sys.stderr)
    print("shared:", " ".join(os.path.basename(s) for s in shared), file=sys.stderr)
    subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
