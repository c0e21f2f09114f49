#!/usr/bin/env bash
# The main job (README's first command): installs what it needs from Debian when run as root, builds libbnnative
# and the Python package (./build.sh), and trains a small CNN on scikit-learn's handwritten digits with PyTorch's
# BatchNorm2d, bnnative's BatchNorm2d and bnnative's BatchRenorm2d, on shuffled batches and on micro-batches of
# one class (examples/digits/train_digits.py). It prints a table and writes artifacts/demo/accuracy.png and
# artifacts/demo/report.md. Arguments go to the script (--quick: a short run).
set -euo pipefail
cd "$(dirname "$0")"
tools/install-deps.sh
./build.sh >/dev/null
exec /usr/bin/python3 examples/digits/train_digits.py "$@"
