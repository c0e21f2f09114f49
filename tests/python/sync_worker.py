"""One process of tests/python/test_sync_batchnorm.py: joins a gloo group over loopback, runs bnnative.torch.SyncBatchNorm
forward and backward on its part of each case's batch (every process builds the same whole batch from the case's seed
and takes its samples), and saves what it computed for the test to compare with single-process BatchNorm.

    sync_worker.py RANK WORLD PORT OUT_DIR SIZES      (SIZES: samples per rank, comma-separated, e.g. 3,0,4,1)
"""
import datetime
import os
import sys

import torch
import torch.distributed as dist

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bindings", "python"))
import bnnative.torch as bt  # noqa: E402

# (name, channels, height, width, channels_last, dtype)
CASES = [("nchw-f64", 5, 3, 4, False, torch.float64), ("nhwc-f64", 6, 2, 3, True, torch.float64),
         ("nchw-f32", 7, 4, 4, False, torch.float32), ("nc-f64", 9, 0, 0, False, torch.float64)]
STEPS = 2  # the second step normalizes with running statistics the first one updated


def whole_batch(seed: int, n: int, c: int, h: int, w: int, dtype):
    """The same batch on every process: per-channel offsets and spreads, an upstream gradient, parameters, statistics."""
    g = torch.Generator().manual_seed(seed)
    shape = (n, c, h, w) if h else (n, c)
    view = (1, c, 1, 1) if h else (1, c)
    offset, spread = torch.randn(c, generator=g, dtype=torch.float64) * 3, torch.rand(c, generator=g, dtype=torch.float64) + 0.5
    x = torch.randn(shape, generator=g, dtype=torch.float64) * spread.view(view) + offset.view(view)
    dy = torch.randn(shape, generator=g, dtype=torch.float64)
    weight, bias = torch.randn(c, generator=g, dtype=torch.float64), torch.randn(c, generator=g, dtype=torch.float64)
    running_mean, running_var = torch.randn(c, generator=g, dtype=torch.float64), torch.rand(c, generator=g, dtype=torch.float64) + 0.5
    return [t.to(dtype) for t in (x, dy, weight, bias, running_mean, running_var)]


def main():
    rank, world, port, out_dir = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    sizes = [int(s) for s in sys.argv[5].split(",")]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=60))
    start, n = sum(sizes[:rank]), sum(sizes)
    results = {}
    for seed, (name, c, h, w, channels_last, dtype) in enumerate(CASES):
        x_all, dy_all, weight, bias, running_mean, running_var = whole_batch(seed, n, c, h, w, dtype)
        module = bt.SyncBatchNorm(c, momentum=0.25, dtype=dtype)
        with torch.no_grad():
            module.weight.copy_(weight)
            module.bias.copy_(bias)
            module.running_mean.copy_(running_mean)
            module.running_var.copy_(running_var)
        for step in range(STEPS):
            x = x_all[start:start + sizes[rank]] * (step + 1)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            x.requires_grad_()
            module.zero_grad()
            y = module(x)
            (y * dy_all[start:start + sizes[rank]].to(y.dtype)).sum().backward()
            results[f"{name}/{step}"] = {
                "y": y.detach().contiguous(), "dx": x.grad.contiguous(), "dweight": module.weight.grad.clone(),
                "dbias": module.bias.grad.clone(), "running_mean": module.running_mean.clone(),
                "running_var": module.running_var.clone(), "num_batches_tracked": module.num_batches_tracked.clone()}
    torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
