#!/usr/bin/env bash
# Builds BnNative: the bindings' declarations of the C ABI (tools/BnAbi, from the library's exports), one
# Native AOT image per instruction-set level, the front library that picks among them, the C header, the
# Python wheel and the NuGet package.
#   ./build.sh              linux-x64 into artifacts/: lib/ (libbnnative.so → .so.MAJOR → .so.VERSION, and the
#                           _avx2/_avx512 images), include/bnnative.h, python/bnnative-*.whl, nuget/BnNative.*.nupkg
#                           (with the linux-arm64 library too when ./build.sh arm64 ran before)
#   ./build.sh arm64        linux-arm64 cross build: artifacts/linux-arm64/lib (one image, NEON)
#   ./build.sh --prefix DIR linux-x64, then installs the C/C++ package into DIR: lib/ (library, links, images),
#                           include/, lib/cmake/BnNative (find_package), lib/pkgconfig/bnnative.pc
set -euo pipefail
cd "$(dirname "$0")"
target=x64 prefix=""
while [ $# -gt 0 ]; do
  case "$1" in
    x64|arm64) target=$1 ;;
    --prefix) prefix=${2:?--prefix needs a directory}; shift ;;
    --prefix=*) prefix=${1#--prefix=} ;;
    *) echo "usage: $0 [x64|arm64] [--prefix DIR]" >&2; exit 2 ;;
  esac
  shift
done
project=src/BnNative/BnNative.csproj
version=$(sed -n 's/.*Major = \([0-9]*\), Minor = \([0-9]*\), Patch = \([0-9]*\);.*/\1.\2.\3/p' src/BnNative/Abi/Version.cs)
major=${version%%.*}
mkdir -p obj-publish

quiet() { # log-name command...: runs it, shows the log's errors when it fails
  local log="obj-publish/$1.log"; shift
  if ! "$@" >"$log" 2>&1; then
    grep -E "error|Error" "$log" | tail -20 >&2
    echo "build.sh: '$*' failed (log: $log)" >&2
    exit 1
  fi
}

publish() { # rid image outdir [extra msbuild args...]
  local rid=$1 image=$2 out=$3; shift 3
  quiet "$rid-$image" dotnet publish "$project" -c Release -r "$rid" -p:BnImage="$image" -p:BnVersionMajor="$major" \
    -o "obj-publish/$rid/$image" --nologo "$@"
  mkdir -p "$out"
}

# The front library as libbnnative.so.VERSION, with the links a loader and a linker look for.
place_front() { # published-file lib-dir
  rm -f "$2"/libbnnative.so "$2"/libbnnative.so.*
  cp "$1" "$2/libbnnative.so.$version"
  ln -s "libbnnative.so.$version" "$2/libbnnative.so.$major"
  ln -s "libbnnative.so.$major" "$2/libbnnative.so"
}

# The bindings' declarations first: the header and the Python and .NET tables follow the exports.
quiet abi dotnet run --project tools/BnAbi -c Release --nologo

case "$target" in
  x64)
    for image in front avx2 avx512; do publish linux-x64 "$image" artifacts/lib; done
    place_front obj-publish/linux-x64/front/libbnnative.so artifacts/lib
    cp obj-publish/linux-x64/avx2/libbnnative_avx2.so obj-publish/linux-x64/avx512/libbnnative_avx512.so artifacts/lib/
    mkdir -p artifacts/include artifacts/python artifacts/nuget
    cp bindings/c/include/bnnative.h artifacts/include/
    rm -f artifacts/python/*.whl artifacts/nuget/*.nupkg
    quiet wheel /usr/bin/python3 -m pip wheel --no-build-isolation --no-deps -q -w artifacts/python ./bindings/python
    rm -rf bindings/python/build bindings/python/*.egg-info
    quiet nuget dotnet pack bindings/dotnet/BnNative.Interop -c Release -p:Version="$version" -o artifacts/nuget --nologo
    ;;
  arm64)
    # clang links the cross build against Debian's arm64 cross libc (gcc as the AOT linker fails).
    publish linux-arm64 neon artifacts/linux-arm64/lib -p:CppCompilerAndLinker=clang -p:ObjCopyName=aarch64-linux-gnu-objcopy
    place_front obj-publish/linux-arm64/neon/libbnnative.so artifacts/linux-arm64/lib
    ;;
esac

if [ -n "$prefix" ]; then
  [ "$target" = x64 ] || { echo "build.sh: --prefix installs the linux-x64 build" >&2; exit 2; }
  tools/install.sh "$prefix"
fi
echo "built BnNative $version: $(ls artifacts/lib/*.so* artifacts/linux-arm64/lib/*.so* artifacts/python/*.whl artifacts/nuget/*.nupkg 2>/dev/null | tr '\n' ' ')"
