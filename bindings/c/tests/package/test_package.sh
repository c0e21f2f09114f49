#!/usr/bin/env bash
# The C/C++ package as a user installs and consumes it (CTest runs this): tools/install.sh into a fresh prefix;
# a CMake consumer (find_package(BnNative) → BnNative::bnnative) and a pkg-config consumer, each run with no
# LD_LIBRARY_PATH; the SONAME carries the major version; a libbnnative.so reached through a symlink from
# another directory still finds its images (BNNATIVE_VERBOSE says where it looked).
# Usage: test_package.sh REPOSITORY-ROOT [expected-isa]
set -euo pipefail
root=$1 isa=${2:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$root/tools/install.sh" "$work/prefix" >/dev/null
unset LD_LIBRARY_PATH

soname=$(readelf -d "$work/prefix/lib/libbnnative.so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
major=$(sed -n 's/.*Major = \([0-9]*\),.*/\1/p' "$root/src/BnNative/Abi/Version.cs")
[ "$soname" = "libbnnative.so.$major" ] || { echo "FAIL: SONAME $soname, expected libbnnative.so.$major"; exit 1; }

cmake -S "$root/bindings/c/tests/package" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/cmake" >/dev/null
echo "find_package consumer: $("$work/cmake/consumer" $isa)"

PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig" cc -std=c99 -Wall -Werror "$root/bindings/c/tests/package/consumer.c" \
  $(PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig" pkg-config --cflags --libs bnnative) -o "$work/pkgconfig-consumer"
echo "pkg-config consumer:   $("$work/pkgconfig-consumer" $isa)"

# A link to the installed library from elsewhere: the images must still be found beside its real file.
mkdir -p "$work/elsewhere"
ln -s "$work/prefix/lib/libbnnative.so" "$work/elsewhere/libbnnative.so"
cc -std=c99 -I"$work/prefix/include" "$root/bindings/c/tests/package/consumer.c" -L"$work/elsewhere" -lbnnative \
  -Wl,-rpath,"$work/elsewhere" -o "$work/linked-consumer"
ls "$work/elsewhere"/libbnnative.so.* >/dev/null 2>&1 && { echo "FAIL: setup"; exit 1; }
# The loader resolves the SONAME (libbnnative.so.MAJOR) in the run path; offer it there as a link too.
ln -s "$work/prefix/lib/libbnnative.so.$major" "$work/elsewhere/libbnnative.so.$major"
echo "symlinked library:     $(BNNATIVE_VERBOSE=1 "$work/linked-consumer" $isa 2>"$work/verbose")"
grep -q "images looked for in $work/prefix/lib" "$work/verbose" || { cat "$work/verbose"; echo "FAIL: images not looked for beside the real file"; exit 1; }
echo "package: ok"
