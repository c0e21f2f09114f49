"""Synchronized BatchNorm on CPU across processes: the digits CNN of the main job (examples/digits) trained by 2
processes with DistributedDataParallel over gloo, each process seeing a micro-batch of 2 examples per step, in two
arms from the same initial weights on the same batches:

  per-process   bnnative BatchNorm2d: each process normalizes with the statistics of its own 2 examples;
  synchronized  bnnative SyncBatchNorm (bnnative.torch.convert_sync_batchnorm): the statistics of the whole step's
                batch (2 × 2 examples), exchanged with all_gather and merged by the library.

Test accuracy is measured in eval mode (running statistics) after every epoch; rank 0 prints both arms' accuracies,
the milliseconds per training step, and checks that the synchronized arm's running statistics are bitwise the same
on both processes.

  python3 examples/distributed/train_sync.py            # 6 epochs, about a minute on 2 cores
  python3 examples/distributed/train_sync.py --quick    # 2 epochs
"""
import argparse
import datetime
import os
import socket
import sys
import time
import warnings

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
if os.path.isdir(os.path.join(ROOT, "bindings", "python", "bnnative")):
    sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))  # the checkout's package, unless installed
sys.path.insert(0, os.path.join(ROOT, "examples", "digits"))
import bnnative  # noqa: E402
import bnnative.torch as bt  # noqa: E402
from train_digits import accuracy, load_digits, network  # noqa: E402  (the main job's data and model)

ARMS = ("per-process BatchNorm2d", "SyncBatchNorm")


def run_arm(arm, rank, world, data, plan, initial, learning_rate):
    """Trains one arm; returns test accuracy per epoch, seconds per step and the model's running statistics."""
    x_train, y_train, x_test, y_test = data
    model = network(nn.BatchNorm2d)
    model.load_state_dict(initial)
    model = bt.replace_batchnorm(model) if arm == ARMS[0] else bt.convert_sync_batchnorm(model)
    ddp = DistributedDataParallel(model)  # averages the parameter gradients of the processes (and broadcasts buffers)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=learning_rate, momentum=0.9)
    accuracies, step_seconds = [], []
    for epoch in plan:
        for step in epoch:
            indices = step[rank]  # this process's micro-batch
            start = time.perf_counter()
            loss = F.cross_entropy(ddp(x_train[indices]), y_train[indices])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step_seconds.append(time.perf_counter() - start)
        accuracies.append(accuracy(model, x_test, y_test))  # eval mode: running statistics, no exchange
    statistics = torch.cat([m.running_var for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)])
    return accuracies, step_seconds, statistics


def worker(rank, world, port, args, queue):
    # DDP compares each gradient's strides with its bucket's; a conv weight of shape (16, 1, 3, 3) has two equivalent
    # stride patterns for its dimension of size 1, and PyTorch's own convolution backward returns the other one.
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    torch.set_num_threads(1)
    bnnative.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=120))
    data = load_digits(args.seed)
    torch.manual_seed(args.seed)
    initial = network(nn.BatchNorm2d).state_dict()
    # The same plan on every process: shuffled steps of world × micro examples, process r taking the r-th micro-batch.
    generator = torch.Generator().manual_seed(args.seed + 1)
    per_step = world * args.micro
    plan = []
    for _ in range(args.epochs):
        order = torch.randperm(len(data[1]), generator=generator)
        plan.append([order[i:i + per_step].view(world, args.micro) for i in range(0, len(order) - per_step + 1, per_step)])
    results = {}
    for arm in ARMS:
        accuracies, step_seconds, statistics = run_arm(arm, rank, world, data, plan, initial, args.lr)
        gathered = [torch.empty_like(statistics) for _ in range(world)]
        dist.all_gather(gathered, statistics)
        same = all(torch.equal(g, gathered[0]) for g in gathered)
        results[arm] = dict(accuracies=accuracies, step_ms=1e3 * sorted(step_seconds)[len(step_seconds) // 2], same=same)
    if rank == 0:
        queue.put(results)
    dist.destroy_process_group()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 epochs instead of 6")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--world", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--micro", type=int, default=2, help="examples per process per step (default 2)")
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.epochs = args.epochs or (2 if args.quick else 6)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    print(f"{args.world} processes, micro-batches of {args.micro} per process, {args.epochs} epochs, "
          f"bnnative {bnnative.version()} ({bnnative.isa()})", flush=True)
    context = mp.get_context("spawn")
    queue = context.SimpleQueue()
    mp.start_processes(worker, args=(args.world, port, args, queue), nprocs=args.world, join=True, start_method="spawn")
    results = queue.get()
    print(f"\n| arm | test accuracy per epoch | final | ms per step (median) | running statistics equal on all processes |")
    print("|---|---|---:|---:|---|")
    for arm in ARMS:
        r = results[arm]
        print(f"| {arm} | {' '.join(f'{a:.3f}' for a in r['accuracies'])} | {r['accuracies'][-1]:.3f} | "
              f"{r['step_ms']:.2f} | {'yes' if r['same'] else 'no'} |")
    synced = results[ARMS[1]]
    if not synced["same"]:
        sys.exit("SyncBatchNorm's running statistics differ between processes")
    print(f"\nSyncBatchNorm over {args.world} processes: final test accuracy {synced['accuracies'][-1]:.3f} against "
          f"{results[ARMS[0]]['accuracies'][-1]:.3f} with per-process BatchNorm; a step costs "
          f"{synced['step_ms'] / results[ARMS[0]]['step_ms']:.2f}x the per-process step.")


if __name__ == "__main__":
    main()
