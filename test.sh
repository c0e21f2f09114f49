#!/usr/bin/env bash
# Runs every test suite of BnNative (README's test command; .ci/run runs it too):
#   1. builds every image (./build.sh, ./build.sh arm64) and checks the committed generated kernels are current;
#   2. xunit: the generator's own tests, and the native library through its C ABI on every image this CPU runs;
#   3. pytest: the Python binding against PyTorch (BatchNorm, LayerNorm, and Batch Renormalization composed in torch);
#   4. CTest: the C ABI test natively, with BNNATIVE_ISA forced, under qemu-x86_64 (Haswell: avx2,
#      Nehalem: vector128) and, for the arm64 build, under qemu-aarch64 (neon); valgrind memcheck of the
#      avx2/vector128/scalar images; fault and soak tests (dlclose, thread limits, ulimit -v, fork, 8 host
#      threads); the scratch memory of every operation against its bound;
#   5. the libFuzzer target over the C ABI for 60 s (tools/fuzz.sh; tools/fuzz.sh 3600 for a longer run).
set -euo pipefail
cd "$(dirname "$0")"
tools/install-deps.sh

echo "== build"
./build.sh
./build.sh arm64
if git rev-parse --git-dir >/dev/null 2>&1; then
  if [ -n "$(git status --porcelain -- src/BnNative/Generated)" ]; then
    git status --short -- src/BnNative/Generated
    echo "test.sh: src/BnNative/Generated differs from what the generator emits: commit the regenerated files" >&2
    exit 1
  fi
fi

echo "== xunit"
dotnet test BnNative.sln -c Release --nologo

echo "== pytest (Python binding vs PyTorch)"
/usr/bin/python3 -m pytest tests/python -q

echo "== ctest"
native_isa=""
if grep -qw avx512f /proc/cpuinfo && grep -qw avx512vl /proc/cpuinfo; then native_isa=avx512;
elif grep -qw avx2 /proc/cpuinfo; then native_isa=avx2; fi
cmake -S bindings/c -B build/c -DBN_NATIVE_ISA="$native_isa" >/dev/null
cmake --build build/c -j 2 >/dev/null
(cd build/c && ctest --output-on-failure)

echo "== fuzz (60 s)"
tools/fuzz.sh 60
