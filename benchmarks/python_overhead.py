#!/usr/bin/python3
"""Per-call cost of the Python paths on a small tensor (64 × 128 float32, where the call, not the arithmetic, is
the time), against PyTorch's F.batch_norm on the same tensor; one thread, alternating blocks, medians.
    /usr/bin/python3 benchmarks/python_overhead.py
"""
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bindings", "python"))
import bnnative  # noqa: E402
import bnnative.torch as bt  # noqa: E402


def main():
    torch.set_num_threads(1)
    bnnative.set_num_threads(1)
    x = torch.randn(64, 128)
    xn = x.numpy()
    gamma, beta, rm, rv = torch.ones(128), torch.zeros(128), torch.zeros(128), torch.ones(128)
    gn, bn_, rmn, rvn = gamma.numpy(), beta.numpy(), rm.numpy(), rv.numpy()
    y, mean, invstd = np.empty_like(xn), np.empty(128, np.float32), np.empty(128, np.float32)
    torch_module, our_module = nn.BatchNorm1d(128), bt.BatchNorm1d(128)
    calls = {
        "torch F.batch_norm (training)": lambda: F.batch_norm(x, rm, rv, gamma, beta, True, 0.1, 1e-5),
        "bnnative.torch.batch_norm (training)": lambda: bt.batch_norm(x, rm, rv, gamma, beta, True, 0.1, 1e-5),
        "bnnative numpy, new outputs": lambda: bnnative.batch_norm_forward_training(xn, gn, bn_, rmn, rvn),
        "bnnative numpy, out= given": lambda: bnnative.batch_norm_forward_training(xn, gn, bn_, rmn, rvn, out=y, save_mean=mean,
                                                                                    save_invstd=invstd),
        "torch nn.BatchNorm1d module": lambda: torch_module(x),
        "bnnative.torch.BatchNorm1d module": lambda: our_module(x),
    }
    with torch.no_grad():
        for call in calls.values():
            for _ in range(200):
                call()
        times = {k: [] for k in calls}
        for _ in range(30):
            for key, call in calls.items():
                start = time.perf_counter()
                for _ in range(100):
                    call()
                times[key].append((time.perf_counter() - start) / 100)
    reference = statistics.median(times["torch F.batch_norm (training)"])
    print(f"bnnative {bnnative.version()} ({bnnative.isa()}), PyTorch {torch.__version__}, 64 x 128 float32, 1 thread, no autograd")
    print("| path | µs per call | × F.batch_norm |\n|---|---:|---:|")
    for key, values in times.items():
        median = statistics.median(values)
        print(f"| {key} | {median * 1e6:.1f} | {median / reference:.2f} |")


if __name__ == "__main__":
    main()
