#!/usr/bin/env bash
# Runs every test suite of BnNative (README's test command; .ci/run runs it too):
#   1. builds every image (./build.sh arm64, ./build.sh) and checks that generated files are current (kernels,
#      exports, and the C header and Python/.NET declarations of the ABI);
#   2. xunit: the generator's own tests, and the native library through its C ABI on every image this CPU runs;
#   3. the .NET package consumed from a folder feed by examples/dotnet; the benchmarks' alternate mode, a short run; pytest: the Python binding against PyTorch
#      (BatchNorm, LayerNorm, Batch Renormalization composed in torch), its argument checks, the bnnative.torch
#      modules against torch.nn (training steps, state_dict, channels_last, gradcheck), the wheel in a venv,
#      SyncBatchNorm across 2 and 4 processes (gloo) against BatchNorm over the whole batch;
#   4. the main job's --quick run (examples/digits/train_digits.py: its files, bnnative's BatchNorm tracking PyTorch's);
#      one epoch of examples/distributed (SyncBatchNorm in DistributedDataParallel over 2 processes);
#      CTest: the C ABI test natively, with BNNATIVE_ISA forced, under qemu-x86_64 (Haswell: avx2, Nehalem:
#      vector128) and, for the arm64 build, under qemu-aarch64 (neon); valgrind memcheck of the avx2/vector128/scalar images; fault and soak tests (dlclose, thread limits, ulimit -v, fork, 8 host
#      threads); the scratch memory of every operation against its bound; examples/mpi over 2 and 4 MPI ranks;
#   5. the libFuzzer target over the C ABI for 60 s (tools/fuzz.sh; tools/fuzz.sh 3600 for a longer run).
set -euo pipefail
cd "$(dirname "$0")"
tools/install-deps.sh

echo "== build"
./build.sh arm64   # first: ./build.sh then packs the linux-arm64 library into the NuGet package too
./build.sh
if git rev-parse --git-dir >/dev/null 2>&1; then
  # What generators wrote must be what is committed: the kernels and exports (src/BnNative/Generated) and the
  # bindings' declarations of the C ABI (tools/BnAbi, run by build.sh).
  generated=(src/BnNative/Generated bindings/c/include/bnnative.h bindings/python/bnnative/_abi.py
             bindings/dotnet/BnNative.Interop/BnLibrary.Abi.g.cs)
  if [ -n "$(git status --porcelain -- "${generated[@]}")" ]; then
    git status --short -- "${generated[@]}"
    echo "test.sh: these files differ from what the generators emit: commit the regenerated files" >&2
    exit 1
  fi
fi

echo "== xunit"
dotnet test BnNative.sln -c Release --nologo

echo "== .NET package (a console program restores artifacts/nuget from a folder feed)"
mkdir -p build && rm -rf build/dotnet-example-packages
dotnet run --project examples/dotnet -c Release --nologo --packages build/dotnet-example-packages | tee build/dotnet-example.log
grep -q "^refused: y has 511 elements" build/dotnet-example.log

echo "== benchmarks' alternate mode runs (two builds in one process; the front and, where the CPU is x86-64-v3, the AVX2 image)"
second=artifacts/lib/libbnnative_avx2.so
for flag in avx2 bmi1 bmi2 fma f16c movbe; do grep -qw "$flag" /proc/cpuinfo || second=artifacts/lib/libbnnative.so; done
dotnet run --project benchmarks/BnNative.Benchmarks -c Release -- alternate artifacts/lib/libbnnative.so "$second" \
  --case "resnet-late bn-fwd-train NHWC" --rounds 2 --block 2 | tee build/alternate.log
grep -q "^A/B of the medians" build/alternate.log

echo "== pytest (Python binding vs PyTorch, modules, the package in a venv)"
/usr/bin/python3 -m pytest tests/python -q

echo "== the main job, short (its --quick run: the files are written and bnnative's BatchNorm tracks PyTorch's)"
rm -rf build/demo-quick
/usr/bin/python3 examples/digits/train_digits.py --quick --out build/demo-quick
test -s build/demo-quick/accuracy.png && test -s build/demo-quick/report.md

echo "== synchronized BatchNorm across 2 processes, one epoch (examples/distributed/train_sync.py)"
/usr/bin/python3 examples/distributed/train_sync.py --epochs 1 | tee build/distributed.log
grep -q "^SyncBatchNorm over 2 processes" build/distributed.log

echo "== ctest"
native_isa=""
if grep -qw avx512f /proc/cpuinfo && grep -qw avx512vl /proc/cpuinfo; then native_isa=avx512;
elif grep -qw avx2 /proc/cpuinfo; then native_isa=avx2; fi
cmake -S bindings/c -B build/c -DBN_NATIVE_ISA="$native_isa" >/dev/null
cmake --build build/c -j 2 >/dev/null
(cd build/c && ctest --output-on-failure)

echo "== fuzz (60 s)"
tools/fuzz.sh 60
