#!/usr/bin/env bash
# The libFuzzer target over the C ABI (bindings/c/fuzz/fuzz_abi.c says what it checks). Builds it with clang
# (-fsanitize=fuzzer,address,undefined) against artifacts/lib (run ./build.sh first), runs one fuzzing
# process per core for SECONDS (default 60) from the seed corpus in bindings/c/fuzz/corpus, and prints the
# executions reached. Exit status 1 when an invariant broke or a sanitizer reported; the input that did it is
# left in build/fuzz (rerun it with: build/fuzz/fuzz_abi FILE, FUZZ_VERBOSE=1 to print the call).
#   tools/fuzz.sh          the short run of the test command
#   tools/fuzz.sh 3600     a longer one
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
out=build/fuzz
mkdir -p "$out/lib" "$out/corpus"
[ -f artifacts/lib/libbnnative.so ] || { echo "fuzz.sh: run ./build.sh first" >&2; exit 1; }
# The images with their symbols beside them, so a report can name the runtime's frames (see lsan.supp).
rm -f "$out"/lib/*.so*
cp -P artifacts/lib/*.so* "$out/lib/"   # with the links: programs look for the SONAME, libbnnative.so.MAJOR
for debug in obj-publish/linux-x64/*/*.so.dbg; do [ -f "$debug" ] && cp "$debug" "$out/lib/"; done
clang -std=c11 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Wall -Wextra -Werror \
  -Iartifacts/include bindings/c/fuzz/fuzz_abi.c -L"$out/lib" -lbnnative -lm -Wl,-rpath,"$PWD/$out/lib" -o "$out/fuzz_abi"
cp -n bindings/c/fuzz/corpus/* "$out/corpus/" 2>/dev/null || true
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export LSAN_OPTIONS="suppressions=$PWD/bindings/c/fuzz/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
jobs=$(nproc)
rm -f "$out"/crash-* "$out"/leak-* "$out"/timeout-*
status=0
(cd "$out" && ./fuzz_abi -fork="$jobs" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 corpus) >"$out/fuzz.log" 2>&1 || status=$?
executions=$(grep -oE '^#[0-9]+:' "$out/fuzz.log" | tail -1 | tr -d '#:') # the fork parent's running total
echo "fuzz: ${executions:-0} executions in ${seconds} s on $jobs processes (log: $out/fuzz.log)"
if [ $status -ne 0 ] || ls "$out"/crash-* "$out"/leak-* "$out"/timeout-* >/dev/null 2>&1; then
  grep -E "INVARIANT BROKEN|  call:|ERROR:|SUMMARY:|runtime error" "$out/fuzz.log" | head -20 >&2
  echo "fuzz.sh: the fuzzer found a failing input: $(ls "$out"/crash-* "$out"/leak-* "$out"/timeout-* 2>/dev/null | head -1)" >&2
  exit 1
fi
