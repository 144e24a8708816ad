#!/usr/bin/env bash
# Installs every build, test and benchmark dependency from Debian 12's packages.
# Safe to run again: apt-get skips what is already installed.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi

packages=(
  build-essential cmake ninja-build pkg-config git clang-format
  libfaiss-dev libopenblas-dev libopenblas-pthread-dev
  # The GPU bundle links OpenBLAS's OpenMP build (deploy/gpu-bundle/relink.py says why). With
  # the pthread build named too, apt installs both and the system's libblas.so.3 stays the
  # pthread build (priority 100 against 95), as on machines set up before.
  libopenblas-openmp-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libssl-dev openssl libsodium-dev libabsl-dev libboost-dev iproute2
  nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev prometheus-cpp-dev libcivetweb-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev
  python3 python3-numpy python3-faiss python3-jwt python3-cryptography
  python3-grpcio python3-protobuf python3-matplotlib python3-venv
  chromium
)

export DEBIAN_FRONTEND=noninteractive
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# PyPI tools that Debian 12 does not package, in a virtual environment under build/ (Debian's
# pip refuses system-wide installs). kubernetes-validate ships the Kubernetes schemas, so
# validating deploy/k8s needs no network after this.
python_tools="$(cd "$(dirname "$0")/.." && pwd)/build/python-tools"
if [ ! -x "$python_tools/bin/kubernetes-validate" ]; then
  python3 -m venv "$python_tools"
  "$python_tools/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate==1.37.0
fi
