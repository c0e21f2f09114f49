#!/usr/bin/python3
"""The cost of splitting a batch across processes: the split path of the C ABI (docs/contract.md §2.4) against the
fused single-process call, side by side in one process, on SPEC §5's resnet-early (BatchNorm, NCHW and NHWC) and
renorm (Batch Renormalization, NHWC) cases, float32. The exchange itself is left out (it is the caller's: MPI, gloo);
what is measured is what the library adds: the split forward is partial statistics + a merge of 2 partials + the
forward with those statistics, the split backward partial sums + the backward with 2 partials' sums, each on the
whole tensor (as one process of two would run it on its half). Alternating blocks of 8 calls, the median per call.
    /usr/bin/python3 benchmarks/split_overhead.py [--threads 1,2] [--rounds 8] [--out benchmarks/split-overhead.md]
"""
import argparse
import ctypes
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bindings", "python"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bnnative  # noqa: E402
from bnnative import _abi  # noqa: E402
from bnnative._native import Desc, library  # noqa: E402
from sixteen_bit import measure  # noqa: E402  (alternating blocks of 8 calls, medians)

CASES = [("resnet-early", "bn", "NCHW", (32, 64, 56, 56)), ("resnet-early", "bn", "NHWC", (32, 64, 56, 56)),
         ("renorm", "brn", "NHWC", (8, 256, 28, 28))]


def calls(family, layout, shape):
    """{(direction, path): callable} on buffers prepared once."""
    n, c, h, w = shape
    lib, g = library(), torch.Generator().manual_seed(0)
    x, dy = torch.randn(n, c, h, w, generator=g), torch.randn(n, c, h, w, generator=g)
    if layout == "NHWC":
        x, dy = x.contiguous(memory_format=torch.channels_last), dy.contiguous(memory_format=torch.channels_last)
    y, dx = torch.empty_like(x), torch.empty_like(x)
    desc = Desc(_abi.LAYOUTS[layout], _abi.DTYPES["F32"], n, c, h, w)
    ref, a = ctypes.byref(desc), (lambda t: t.data_ptr())
    gamma, beta, rm, rv = torch.ones(c), torch.zeros(c), torch.zeros(c), torch.ones(c)
    mean, invstd, r, d, dgamma, dbeta = (torch.empty(c) for _ in range(6))
    partials, sums = torch.empty(2, 2 * c + 1, dtype=torch.float64), torch.empty(2, 2 * c + 1, dtype=torch.float64)

    def split_forward():
        lib.bn_batch_norm_partial_statistics(ref, a(x), a(partials))
        partials[1] = partials[0]  # the other process's partial, as an all-gather would deliver it
        if family == "bn":
            lib.bn_batch_norm_merge_statistics(0, c, 2, a(partials), a(rm), a(rv), 0.1, 1e-5, a(mean), a(invstd))
            return lib.bn_batch_norm_forward_with_statistics(ref, a(x), a(y), a(gamma), a(beta), a(mean), a(invstd))
        lib.bn_batch_renorm_merge_statistics(0, c, 2, a(partials), a(rm), a(rv), 0.1, 1e-5, 3.0, 5.0, a(mean), a(invstd),
                                             a(r), a(d))
        return lib.bn_batch_renorm_forward_with_statistics(ref, a(x), a(y), a(gamma), a(beta), a(mean), a(invstd), a(r), a(d))

    def split_backward():
        lib.bn_batch_norm_backward_partial_sums(ref, a(x), a(dy), a(mean), a(sums))
        sums[1] = sums[0]
        if family == "bn":
            return lib.bn_batch_norm_backward_with_sums(ref, a(x), a(dy), a(dx), a(gamma), a(mean), a(invstd), 2, a(sums),
                                                        a(dgamma), a(dbeta))
        return lib.bn_batch_renorm_backward_with_sums(ref, a(x), a(dy), a(dx), a(gamma), a(mean), a(invstd), a(r), a(d), 2,
                                                      a(sums), a(dgamma), a(dbeta))

    if family == "bn":
        fused_forward = lambda: lib.bn_batch_norm_forward_training(ref, a(x), a(y), a(gamma), a(beta), a(rm), a(rv), 0.1,  # noqa: E731
                                                                   1e-5, a(mean), a(invstd))
        fused_backward = lambda: lib.bn_batch_norm_backward(ref, a(x), a(dy), a(dx), a(gamma), a(mean), a(invstd),  # noqa: E731
                                                            a(dgamma), a(dbeta))
    else:
        fused_forward = lambda: lib.bn_batch_renorm_forward_training(ref, a(x), a(y), a(gamma), a(beta), a(rm), a(rv), 0.1,  # noqa: E731
                                                                     1e-5, 3.0, 5.0, a(mean), a(invstd), a(r), a(d))
        fused_backward = lambda: lib.bn_batch_renorm_backward(ref, a(x), a(dy), a(dx), a(gamma), a(mean), a(invstd), a(r),  # noqa: E731
                                                              a(d), a(dgamma), a(dbeta))
    for f in (fused_forward, split_forward, fused_backward, split_backward):
        assert f() == 0
    return {("fwd", "fused"): fused_forward, ("fwd", "split"): split_forward,
            ("bwd", "fused"): fused_backward, ("bwd", "split"): split_backward}, x.numel() * 4


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "split-overhead.md"))
    args = parser.parse_args()
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        bnnative.set_num_threads(threads)
        for name, family, layout, shape in CASES:
            functions, tensor_bytes = calls(family, layout, shape)
            medians = measure(functions, args.rounds)
            for direction in ("fwd", "bwd"):
                fused, split = (medians[(direction, p)] for p in ("fused", "split"))
                moved = tensor_bytes * (2 if direction == "fwd" else 3)
                rows.append((name, family, layout, threads, direction, fused * 1e3, split * 1e3, split / fused,
                             moved / fused / 1e9, (split - fused) / (tensor_bytes / (moved / fused))))
                print(f"{name:13} {layout} {direction} {threads} thr: fused {fused * 1e3:.3f} ms, split {split * 1e3:.3f} ms "
                      f"({split / fused:.2f}x)", flush=True)
    with open(args.out, "w") as out:
        out.write("# The split (synchronized) path against the fused call\n\n")
        out.write(f"`/usr/bin/python3 benchmarks/split_overhead.py --threads {args.threads} --rounds {args.rounds}`, bnnative "
                  f"{bnnative.version()} ({bnnative.isa()}), float32, medians of alternating blocks of 8 calls. Split = the "
                  "library's part of a process in a synchronized BatchNorm (partials, a merge of 2, the normalization; "
                  "partial sums, the backward with 2 partials' sums) on the same tensor, the exchange left out. "
                  "\"extra passes\" = (split − fused) time over the time one pass over the tensor takes at the fused "
                  "call's effective bandwidth.\n\n")
        out.write("| case | op | layout | threads | direction | fused ms | split ms | split/fused | fused GB/s | extra passes |\n")
        out.write("|---|---|---|---:|---|---:|---:|---:|---:|---:|\n")
        for name, family, layout, threads, direction, fused, split, ratio, gbs, passes in rows:
            out.write(f"| {name} | {family} | {layout} | {threads} | {direction} | {fused:.3f} | {split:.3f} | {ratio:.2f} | "
                      f"{gbs:.1f} | {passes:.2f} |\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
