#!/usr/bin/python3
"""16-bit tensors against float32, and against PyTorch's own 16-bit CPU kernels, side by side in one process.

For SPEC §5's cases (f32 shapes; the --big ones left out), each operation runs as bnnative F32, BF16 and F16 and as
PyTorch float32 and bfloat16 (PyTorch 1.13 has no float16 normalization on CPU), on buffers prepared once, in
alternating blocks of 8 calls; the median per call is reported with the effective bandwidth counted with the
format's element size (forward: x read, y written; backward: x and dy read, dx written). Parameters and statistics
are float32 beside 16-bit tensors on both sides (mixed precision; PyTorch's LayerNorm takes bfloat16 weights).
    /usr/bin/python3 benchmarks/sixteen_bit.py [--threads 1,2] [--rounds 6] [--out benchmarks/sixteen-bit.md]
"""
import argparse
import ctypes
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bindings", "python"))
import bnnative  # noqa: E402
from bnnative import _abi  # noqa: E402
from bnnative._native import Desc, library  # noqa: E402

CASES = [  # name, operation family, layout, (n, c, h, w)
    ("resnet-early", "bn", "NCHW", (32, 64, 56, 56)), ("resnet-early", "bn", "NHWC", (32, 64, 56, 56)),
    ("resnet-late", "bn", "NCHW", (32, 512, 7, 7)), ("resnet-late", "bn", "NHWC", (32, 512, 7, 7)),
    ("mlp", "bn", "NC", (256, 4096, 1, 1)), ("inference", "bn-infer", "NCHW", (1, 256, 56, 56)),
    ("inference", "bn-infer", "NHWC", (1, 256, 56, 56)), ("bert", "ln", "NC", (8192, 768, 1, 1)),
    ("llm", "ln", "NC", (2048, 4096, 1, 1)), ("convnext", "ln", "NHWC", (32, 96, 56, 56)),
]
DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}


def tensor(layout, n, c, h, w, dtype, generator):
    if layout == "NC":
        return torch.randn(n, c, generator=generator).to(dtype)
    x = torch.randn(n, c, h, w, generator=generator).to(dtype)
    return x.contiguous(memory_format=torch.channels_last) if layout == "NHWC" else x


def bnnative_calls(family, layout, shape, dtype, g):
    """{op: callable} running the library on prepared buffers."""
    n, c, h, w = shape
    lib, p = library(), torch.float32
    x, dy = tensor(layout, *shape, dtype, g), tensor(layout, *shape, dtype, g)
    y, dx = torch.empty_like(x), torch.empty_like(x)
    label = next(k for k, v in DTYPES.items() if v == dtype)
    desc = Desc(_abi.LAYOUTS[layout], _abi.DTYPES[label], n, c, h, w)
    ref = ctypes.byref(desc)
    a = lambda t: t.data_ptr()  # noqa: E731
    if family.startswith("bn"):
        gamma, beta, rm, rv = torch.ones(c, dtype=p), torch.zeros(c, dtype=p), torch.zeros(c, dtype=p), torch.ones(c, dtype=p)
        mean, invstd, dgamma, dbeta = (torch.empty(c, dtype=p) for _ in range(4))
        lib.bn_batch_norm_forward_training(ref, a(x), a(y), a(gamma), a(beta), a(rm), a(rv), 0.1, 1e-5, a(mean), a(invstd))
        if family == "bn-infer":
            return {"fwd-infer": lambda: lib.bn_batch_norm_forward_inference(ref, a(x), a(y), a(gamma), a(beta), a(rm), a(rv), 1e-5)}
        return {"fwd-train": lambda: lib.bn_batch_norm_forward_training(ref, a(x), a(y), a(gamma), a(beta), a(rm), a(rv), 0.1, 1e-5,
                                                                         a(mean), a(invstd)),
                "bwd": lambda: lib.bn_batch_norm_backward(ref, a(x), a(dy), a(dx), a(gamma), a(mean), a(invstd), a(dgamma), a(dbeta))}
    gamma, beta = torch.ones(c, dtype=p), torch.zeros(c, dtype=p)
    positions = n * h * w
    mean, invstd = torch.empty(positions, dtype=p), torch.empty(positions, dtype=p)
    dgamma, dbeta = torch.empty(c, dtype=p), torch.empty(c, dtype=p)
    lib.bn_layer_norm_forward(ref, a(x), a(y), a(gamma), a(beta), 1e-5, a(mean), a(invstd))
    return {"fwd": lambda: lib.bn_layer_norm_forward(ref, a(x), a(y), a(gamma), a(beta), 1e-5, a(mean), a(invstd)),
            "bwd": lambda: lib.bn_layer_norm_backward(ref, a(x), a(dy), a(dx), a(gamma), a(mean), a(invstd), a(dgamma), a(dbeta))}


def torch_calls(family, layout, shape, dtype, g):
    n, c, h, w = shape
    x, dy = tensor(layout, *shape, dtype, g), tensor(layout, *shape, dtype, g)
    if family.startswith("bn"):
        gamma, beta, rm, rv = torch.ones(c), torch.zeros(c), torch.zeros(c), torch.ones(c)
        mean, invstd = torch.zeros(c), torch.ones(c)  # saved statistics for the backward (its cost does not depend on them)
        if family == "bn-infer":
            return {"fwd-infer": lambda: F.batch_norm(x, rm, rv, gamma, beta, False, 0.1, 1e-5)}
        return {"fwd-train": lambda: F.batch_norm(x, rm, rv, gamma, beta, True, 0.1, 1e-5),
                "bwd": lambda: torch.ops.aten.native_batch_norm_backward(dy, x, gamma, rm, rv, mean, invstd, True, 1e-5,
                                                                          [True, True, True])}
    gamma, beta = torch.ones(c, dtype=dtype), torch.zeros(c, dtype=dtype)
    rows = x.reshape(-1, c) if layout != "NCHW" else x
    dyrows = dy.reshape(-1, c)
    mean, rstd = torch.zeros(rows.shape[0], 1, dtype=dtype), torch.ones(rows.shape[0], 1, dtype=dtype)
    return {"fwd": lambda: F.layer_norm(rows, (c,), gamma, beta, 1e-5),
            "bwd": lambda: torch.ops.aten.native_layer_norm_backward(dyrows, rows, (c,), mean, rstd, gamma, beta, [True, True, True])}


def measure(calls, rounds, block=8):
    """Median seconds per call of each callable, alternated in blocks."""
    for call in calls.values():
        for _ in range(2):
            call()
    times = {k: [] for k in calls}
    for _ in range(rounds):
        for key, call in calls.items():
            start = time.perf_counter()
            for _ in range(block):
                call()
            times[key].append((time.perf_counter() - start) / block)
    return {k: statistics.median(v) for k, v in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "sixteen-bit.md"))
    args = parser.parse_args()
    lines = [f"bnnative {bnnative.version()} ({bnnative.isa()}), PyTorch {torch.__version__}; "
             f"`{' '.join(['/usr/bin/python3', 'benchmarks/sixteen_bit.py'] + sys.argv[1:])}`", "",
             "| case | op | layout | thr | F32 ms | BF16 ms | F16 ms | BF16 GB/s | F16 GB/s | F32/BF16 | F32/F16 | torch F32 ms | torch BF16 ms | torch BF16 / bnnative BF16 |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for threads in [int(t) for t in args.threads.split(",")]:
        bnnative.set_num_threads(threads)
        torch.set_num_threads(threads)
        for name, family, layout, shape in CASES:
            g = torch.Generator().manual_seed(0)
            ops = {}
            for label, dtype in DTYPES.items():
                for op, call in bnnative_calls(family, layout, shape, dtype, g).items():
                    ops.setdefault(op, {})[f"bn {label}"] = call
            for label in ("F32", "BF16"):
                for op, call in torch_calls(family, layout, shape, DTYPES[label], g).items():
                    ops[op][f"torch {label}"] = call
            elements = shape[0] * shape[1] * shape[2] * shape[3]
            for op, calls in ops.items():
                t = measure(calls, args.rounds)
                tensors = 3 if op == "bwd" else 2
                gbs = lambda key, size: tensors * elements * size / t[key] / 1e9  # noqa: E731
                ms = {k: v * 1e3 for k, v in t.items()}
                lines.append(f"| {name} | {family.split('-')[0]}-{op} | {layout} | {threads} | {ms['bn F32']:.3f} | {ms['bn BF16']:.3f} | "
                             f"{ms['bn F16']:.3f} | {gbs('bn BF16', 2):.1f} | {gbs('bn F16', 2):.1f} | {t['bn F32'] / t['bn BF16']:.2f} | "
                             f"{t['bn F32'] / t['bn F16']:.2f} | {ms['torch F32']:.3f} | {ms['torch BF16']:.3f} | "
                             f"{t['torch BF16'] / t['bn BF16']:.2f} |")
                print(lines[-1], flush=True)
    with open(args.out, "w") as f:
        f.write("# 16-bit tensors: bnnative F32/BF16/F16 and PyTorch F32/BF16, side by side\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
