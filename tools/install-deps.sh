#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine with the .NET SDK lacks for building and testing BnNative:
# CMake and a C compiler (the C ABI tests), qemu-user (the AVX2/baseline/arm64 images under emulation),
# the arm64 cross toolchain with clang and lld (the linux-arm64 Native AOT build), clang's sanitizer and
# libFuzzer runtime (the fuzz target), valgrind, Open MPI (examples/mpi and its mpi-2/mpi-4 tests), and numpy,
# PyTorch and pytest for /usr/bin/python3 (the Python binding's tests compare against PyTorch). Idempotent;
# needs root.
set -euo pipefail
packages=(cmake gcc g++ qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross binutils-aarch64-linux-gnu clang lld llvm libclang-rt-14-dev
          valgrind python3-numpy python3-torch python3-pytest python3-setuptools python3-wheel python3-pip python3-venv pkg-config
          python3-sklearn python3-matplotlib python3-tqdm libopenmpi-dev openmpi-bin)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: everything is installed"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing ${missing[*]}; run as root (or: sudo $0)" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
