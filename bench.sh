#!/usr/bin/env bash
# The whole picture of speed, in one command: the peer harness (../shared/bench: this library beside oneDNN 2.6 and
# PyTorch 1.13 on SPEC §5's cases, in alternating blocks of calls on the same buffers, with a STREAM-style copy as the
# limit) at 1 and 2 threads, then its cases beyond any cache (--big), the split (synchronized) path against the fused
# calls (benchmarks/split_overhead.py), then benchmarks/report.md with its chart
# benchmarks/report.png (tools/bench_report.py). About 15 minutes on 2 cores; the machine should be otherwise idle.
#   ./bench.sh                   everything
#   ./bench.sh --no-big          without the --big cases (about 6 minutes)
# BNNATIVE_PEER_BENCH=DIR uses another copy of the harness (it is copied, since ../shared is read-only).
set -euo pipefail
cd "$(dirname "$0")"
big=1
[ "${1:-}" = "--no-big" ] && big=0
source_dir=${BNNATIVE_PEER_BENCH:-../shared/bench}
[ -d "$source_dir" ] || { echo "bench.sh: no peer harness at $source_dir (set BNNATIVE_PEER_BENCH)" >&2; exit 2; }
if ! dpkg -s libdnnl-dev >/dev/null 2>&1; then  # the harness links oneDNN, Debian's
  [ "$(id -u)" = 0 ] || { echo "bench.sh: the harness needs oneDNN: apt-get install libdnnl-dev" >&2; exit 2; }
  apt-get install -y -qq libdnnl-dev >/dev/null
fi
[ -f artifacts/lib/libbnnative.so ] || ./build.sh
library=$PWD/artifacts/lib/libbnnative.so
rm -rf build/peer-bench
mkdir -p build
cp -r "$source_dir" build/peer-bench
chmod -R u+w build/peer-bench
cd build/peer-bench
BNNATIVE_LIBRARY=$library ./run.sh
if [ $big = 1 ]; then
  # A copy limit measured on arrays of the same order as these tensors (the harness's README says so).
  BNNATIVE_LIBRARY=$library ./build/normbench --big --cases resnet-big,llm-big --stream-mib 1024 --out-dir results-big
  env MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736 BNNATIVE_LIBRARY=$library \
    /usr/bin/python3 torch_bench.py --big --cases resnet-big,llm-big --bandwidth-json results-big/latest.json \
    --out-dir results-big --tag torch-malloc-tuned
fi
cd ../..
# What splitting a batch across processes adds to the library's work (docs/contract.md §2.4), into the report too.
/usr/bin/python3 benchmarks/split_overhead.py
/usr/bin/python3 tools/bench_report.py build/peer-bench/results $([ $big = 1 ] && echo build/peer-bench/results-big)
