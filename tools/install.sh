#!/usr/bin/env bash
# Installs the C/C++ package of BnNative from artifacts/ (./build.sh first; ./build.sh --prefix DIR does both):
#   DIR/lib/libbnnative.so.VERSION, .so.MAJOR and .so links, the _avx2/_avx512 images beside them
#   DIR/include/bnnative.h
#   DIR/lib/cmake/BnNative/BnNativeConfig.cmake (+ version file): find_package(BnNative) → BnNative::bnnative
#   DIR/lib/pkgconfig/bnnative.pc
# Usage: tools/install.sh DIR
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:?usage: tools/install.sh DIR}
version=$(sed -n 's/.*Major = \([0-9]*\), Minor = \([0-9]*\), Patch = \([0-9]*\);.*/\1.\2.\3/p' src/BnNative/Abi/Version.cs)
major=${version%%.*}
[ -f "artifacts/lib/libbnnative.so.$version" ] || { echo "install.sh: artifacts/lib has no libbnnative.so.$version: run ./build.sh" >&2; exit 1; }
mkdir -p "$prefix/lib/cmake/BnNative" "$prefix/lib/pkgconfig" "$prefix/include"
rm -f "$prefix"/lib/libbnnative.so "$prefix"/lib/libbnnative.so.*
cp "artifacts/lib/libbnnative.so.$version" artifacts/lib/libbnnative_avx2.so artifacts/lib/libbnnative_avx512.so "$prefix/lib/"
ln -s "libbnnative.so.$version" "$prefix/lib/libbnnative.so.$major"
ln -s "libbnnative.so.$major" "$prefix/lib/libbnnative.so"
cp bindings/c/include/bnnative.h "$prefix/include/"
for template in BnNativeConfig.cmake BnNativeConfigVersion.cmake; do
  sed "s/@VERSION@/$version/g; s/@MAJOR@/$major/g" "bindings/c/cmake/$template.in" > "$prefix/lib/cmake/BnNative/$template"
done
sed "s/@VERSION@/$version/g" bindings/c/cmake/bnnative.pc.in > "$prefix/lib/pkgconfig/bnnative.pc"
echo "installed BnNative $version into $prefix"
