#!/usr/bin/env bash
# Builds libbnnative: one Native AOT image per instruction-set level, the front library that picks
# among them, and the C header.
#   ./build.sh            linux-x64: artifacts/lib/libbnnative.so (+ _avx2, _avx512 beside it)
#   ./build.sh arm64      linux-arm64 cross build: artifacts/linux-arm64/lib/libbnnative.so (NEON)
set -euo pipefail
cd "$(dirname "$0")"
target=${1:-x64}
project=src/BnNative/BnNative.csproj

publish() { # rid image outdir [extra msbuild args...]
  local rid=$1 image=$2 out=$3; shift 3
  local log="obj-publish/$rid-$image.log"
  mkdir -p obj-publish
  if ! dotnet publish "$project" -c Release -r "$rid" -p:BnImage="$image" -o "obj-publish/$rid/$image" --nologo "$@" >"$log" 2>&1; then
    grep -E "error|Error" "$log" | tail -20 >&2
    echo "build.sh: publishing the $image image for $rid failed (log: $log)" >&2
    exit 1
  fi
  mkdir -p "$out"
  cp "obj-publish/$rid/$image"/*.so "$out/"
}

case "$target" in
  x64)
    for image in front avx2 avx512; do publish linux-x64 "$image" artifacts/lib; done
    mkdir -p artifacts/include
    cp bindings/c/include/bnnative.h artifacts/include/
    ;;
  arm64)
    # clang links the cross build against Debian's arm64 cross libc (gcc as the AOT linker fails).
    publish linux-arm64 neon artifacts/linux-arm64/lib -p:CppCompilerAndLinker=clang -p:ObjCopyName=aarch64-linux-gnu-objcopy
    ;;
  *) echo "usage: $0 [x64|arm64]" >&2; exit 2 ;;
esac
echo "built: $(ls artifacts/lib/*.so artifacts/linux-arm64/lib/*.so 2>/dev/null | tr '\n' ' ')"
