#!/usr/bin/python3
"""Prints a SHA-256 digest of every output of the eight operations on fixed problems (F32 and F64, every layout,
shapes with vector tails, wide rows, several row blocks), for the library and ISA the environment selects
(BNNATIVE_LIBRARY, BNNATIVE_ISA). Two builds give the same digest exactly when they compute bitwise the same
results: run it against each and compare, e.g. before and after a refactoring of the operations.
    BNNATIVE_LIBRARY=old/libbnnative.so tools/digests.py > old.txt
    BNNATIVE_LIBRARY=artifacts/lib/libbnnative.so tools/digests.py > new.txt && diff old.txt new.txt"""
import hashlib
import os
import sys
import zlib

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bindings", "python"))
import bnnative as bn  # noqa: E402

SHAPES = {"NC": [(7, 5), (300, 70), (64, 4097)], "NCHW": [(2, 3, 5, 7), (4, 33, 17, 19), (2, 3, 150, 151)],
          "NHWC": [(2, 5, 7, 3), (4, 17, 19, 33), (3, 40, 41, 96), (16, 40, 40, 24)]}


def main() -> None:
    bn.set_num_threads(2)
    print(f"isa {bn.isa()}")
    for dtype in (np.float32, np.float64):
        for layout, shapes in SHAPES.items():
            for shape in shapes:
                rng = np.random.default_rng(zlib.crc32(repr((layout, shape)).encode()))
                x = rng.standard_normal(shape) * 3 + 2
                # Samples far apart (a drift of 40 standard deviations per sample): channels-last tiles then lie far
                # from the common shift, which sends their statistics down the refusal paths.
                x += 120 * np.arange(shape[0]).reshape((-1,) + (1,) * (len(shape) - 1))
                x = x.astype(dtype)
                dy = rng.standard_normal(shape).astype(dtype)
                c = shape[-1] if layout == "NHWC" else shape[1]
                gamma, beta = rng.uniform(0.5, 2, c).astype(dtype), rng.uniform(-1, 1, c).astype(dtype)
                rm, rv = rng.uniform(-1, 1, c).astype(dtype), rng.uniform(0.5, 2, c).astype(dtype)
                outputs = []
                y, mean, invstd = bn.batch_norm_forward_training(x, gamma, beta, rm, rv, 0.1, 1e-5, layout)
                outputs += [y, mean, invstd, rm, rv]
                outputs.append(bn.batch_norm_forward_inference(x, gamma, beta, rm, rv, 1e-5, layout))
                outputs += list(bn.batch_norm_backward(x, dy, gamma, mean, invstd, layout))
                outputs += list(bn.batch_norm_backward_inference(x, dy, gamma, rm, rv, 1e-5, layout))
                result = bn.batch_renorm_forward_training(x, gamma, beta, rm, rv, 0.1, 1e-5, 1.5, 0.5, layout)
                outputs += list(result) + [rm, rv]
                y, mean, invstd, r, d = result
                outputs += list(bn.batch_renorm_backward(x, dy, gamma, mean, invstd, r, d, layout))
                y, mean, invstd = bn.layer_norm_forward(x, gamma, beta, 1e-5, layout)
                outputs += [y, mean, invstd]
                outputs += list(bn.layer_norm_backward(x, dy, gamma, mean, invstd, layout))
                digest = hashlib.sha256(b"".join(np.ascontiguousarray(o).tobytes() for o in outputs)).hexdigest()
                print(f"{np.dtype(dtype).name} {layout} {shape} {digest}")


if __name__ == "__main__":
    main()
