#!/usr/bin/env bash
# The end-to-end demonstration: builds libbnnative (./build.sh), compiles the C example against
# artifacts/include/bnnative.h and artifacts/lib/libbnnative.so, and runs one BatchNorm training step.
set -euo pipefail
cd "$(dirname "$0")"
./build.sh
mkdir -p build
cc -std=c99 -Wall -O2 examples/batch_norm_demo.c -Iartifacts/include -Lartifacts/lib -lbnnative \
   -Wl,-rpath,"$PWD/artifacts/lib" -o build/batch_norm_demo
./build/batch_norm_demo
