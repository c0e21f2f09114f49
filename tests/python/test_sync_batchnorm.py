"""bnnative.torch.SyncBatchNorm across 2 and 4 real processes (gloo over loopback) against single-process BatchNorm
(PyTorch's, in float64) on the concatenated batch: outputs, input gradients, parameter gradients (summed over the
processes, as DistributedDataParallel's all-reduce does before it averages) and running statistics, for NCHW, NHWC
and NC, even and uneven splits (one process with no samples), float64 to SPEC §4's 1e-12 (gradients 1e-10) and
float32 to 1e-5 (1e-4); and bitwise the same from run to run. Also: a world of one is BatchNorm, and
convert_sync_batchnorm keeps a model's state."""
import os
import socket
import subprocess
import sys
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import bnnative.torch as bt

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import sync_worker  # noqa: E402  (the cases and the whole batch every process builds)

TIMEOUT_S = 90


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_world(sizes, out_dir):
    """Starts one worker per entry of ``sizes`` (its samples), waits (bounded), returns each rank's results."""
    port, world = _free_port(), len(sizes)
    env = dict(os.environ, BNNATIVE_NUM_THREADS="1", OMP_NUM_THREADS="1")
    workers = [subprocess.Popen([sys.executable, os.path.join(HERE, "sync_worker.py"), str(rank), str(world), str(port),
                                 str(out_dir), ",".join(map(str, sizes))], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT) for rank in range(world)]
    deadline = time.monotonic() + TIMEOUT_S
    failures = []
    for rank, worker in enumerate(workers):
        try:
            output, _ = worker.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for w in workers:
                w.kill()
            pytest.fail(f"world {sizes}: rank {rank} did not finish within {TIMEOUT_S} s")
        if worker.returncode != 0:
            failures.append(f"rank {rank} exited {worker.returncode}:\n{output.decode(errors='replace')[-3000:]}")
    assert not failures, "\n".join(failures)
    return [torch.load(os.path.join(out_dir, f"rank{rank}.pt")) for rank in range(world)]


def _reference(case_index, sizes):
    """Single-process BatchNorm in float64 over the whole batch, STEPS steps, as the workers run them."""
    name, c, h, w, _, dtype = sync_worker.CASES[case_index]
    x_all, dy_all, weight, bias, running_mean, running_var = (t.to(torch.float64) for t in sync_worker.whole_batch(
        case_index, sum(sizes), c, h, w, dtype))
    steps = []
    for step in range(sync_worker.STEPS):
        x = (x_all * (step + 1)).to(dtype).to(torch.float64).requires_grad_()  # the data as the workers' dtype holds it
        weight_, bias_ = weight.clone().requires_grad_(), bias.clone().requires_grad_()
        y = F.batch_norm(x, running_mean, running_var, weight_, bias_, training=True, momentum=0.25, eps=1e-5)
        (y * dy_all).sum().backward()
        dims = [0] + list(range(2, x.dim()))
        mean = x.detach().mean(dims, keepdim=True)
        invstd = (x.detach().var(dims, unbiased=False, keepdim=True) + 1e-5).rsqrt()
        y_scale = weight.abs().view_as(mean) * (x.detach().abs() + x.detach().abs().mean(dims, keepdim=True)) * invstd \
            + bias.abs().view_as(mean)
        steps.append({"y": y.detach(), "y_scale": y_scale, "dx": x.grad, "dweight": weight_.grad, "dbias": bias_.grad,
                      "running_mean": running_mean.clone(), "running_var": running_var.clone()})
    return steps


def _near(what, got, expected, tol, scale=None):
    got = got.to(torch.float64).reshape(expected.shape)
    bound = tol * (torch.maximum(expected.abs(), scale) if scale is not None else expected.abs().max().clamp(min=1e-300))
    error = (got - expected).abs()
    worst = int((error - bound).argmax())
    assert bool((error <= bound).all()), \
        f"{what}: error {float(error.flatten()[worst]):.3e} > {float(bound.flatten()[worst]):.3e} at {worst}"


@pytest.mark.parametrize("sizes", [(3, 3), (2, 5), (2, 2, 2, 2), (1, 3, 0, 4)],
                         ids=["2-even", "2-uneven", "4-even", "4-uneven-with-empty"])
def test_sync_batchnorm_equals_batchnorm_over_the_whole_batch(sizes, tmp_path):
    ranks = _run_world(sizes, tmp_path)
    for index, (name, *_, dtype) in enumerate(sync_worker.CASES):
        forward_tol, gradient_tol = (1e-12, 1e-10) if dtype == torch.float64 else (1e-5, 1e-4)
        for step, expected in enumerate(_reference(index, sizes)):
            key = f"{name}/{step}"
            parts = [rank[key] for rank in ranks]
            where = f"{key} over {sizes}"
            y = torch.cat([p["y"].to(torch.float64) for p in parts])
            _near(f"{where} y", y, expected["y"], forward_tol, expected["y_scale"])
            _near(f"{where} dx", torch.cat([p["dx"].to(torch.float64) for p in parts]), expected["dx"], gradient_tol)
            for parameter in ("dweight", "dbias"):  # each process's own; their sum is the whole batch's
                total = sum(p[parameter].to(torch.float64) for p in parts)
                _near(f"{where} {parameter}", total, expected[parameter], gradient_tol)
            for statistic in ("running_mean", "running_var"):
                _near(f"{where} {statistic}", parts[0][statistic], expected[statistic], forward_tol)
                for rank, p in enumerate(parts[1:], 1):  # merged in rank order everywhere: bitwise the same
                    assert torch.equal(p[statistic], parts[0][statistic]), f"{where} {statistic}: rank {rank} differs"
            assert all(int(p["num_batches_tracked"]) == step + 1 for p in parts)


def test_sync_batchnorm_is_bitwise_the_same_run_to_run(tmp_path):
    sizes = (2, 5)
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    first, second = _run_world(sizes, tmp_path / "first"), _run_world(sizes, tmp_path / "second")
    for rank, (a, b) in enumerate(zip(first, second)):
        for key in a:
            for output in a[key]:
                assert torch.equal(a[key][output], b[key][output]), f"rank {rank} {key} {output} differs between runs"


def test_a_world_of_one_is_batchnorm():
    """No process group initialized: SyncBatchNorm is bnnative's BatchNorm2d, bitwise, in training and eval."""
    torch.manual_seed(3)
    x = torch.randn(4, 6, 5, 5, dtype=torch.float64)
    sync, plain = bt.SyncBatchNorm(6, dtype=torch.float64), bt.BatchNorm2d(6, dtype=torch.float64)
    for mode in (True, False):
        sync.train(mode)
        plain.train(mode)
        a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
        ya, yb = sync(a), plain(b)
        ya.square().sum().backward()
        yb.square().sum().backward()
        assert torch.equal(ya, yb) and torch.equal(a.grad, b.grad)
        assert torch.equal(sync.running_var, plain.running_var)


def test_convert_sync_batchnorm_keeps_state_and_modes():
    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Sequential(nn.Conv2d(8, 4, 1), bt.BatchNorm2d(4), bt.BatchRenorm2d(4)))
    with torch.no_grad():
        model[1].running_mean.uniform_()
        model[3][1].weight.uniform_()
    model[3].eval()
    model[1].bias.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    converted = bt.convert_sync_batchnorm(model)
    assert isinstance(converted[1], bt.SyncBatchNorm) and isinstance(converted[3][1], bt.SyncBatchNorm)
    assert not isinstance(converted[1], nn.SyncBatchNorm)  # DistributedDataParallel refuses those on CPU
    assert type(converted[3][2]) is bt.BatchRenorm2d  # left as it is
    after = converted.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert converted[1].training and not converted[3][1].training
    assert not converted[1].bias.requires_grad and converted[1].weight.requires_grad
    plain = nn.BatchNorm2d(8)
    plain.load_state_dict(converted[1].state_dict())  # state_dict compatible with torch's BatchNorm2d
    bare = bt.convert_sync_batchnorm(nn.BatchNorm1d(5))
    assert isinstance(bare, bt.SyncBatchNorm)
