"""bnnative.torch against PyTorch itself: modules as drop-ins (a few training steps of a small CNN with the same
losses, gradients and running statistics), state_dict both ways, channels_last without copies, PyTorch's
module options, and torch.autograd.gradcheck on every Function in float64."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import bnnative.torch as bt


def small_cnn(norm=nn.BatchNorm2d):
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), norm(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), norm(16), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(16, 10))


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 2e-4), (torch.float64, 1e-10)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_a_replaced_model_trains_like_the_original(dtype, tolerance, channels_last):
    torch.manual_seed(0)
    reference = small_cnn().to(dtype)
    ours = bt.replace_batchnorm(small_cnn().to(dtype))
    ours.load_state_dict(reference.state_dict())
    assert sum(isinstance(m, bt.BatchNorm2d) for m in ours.modules()) == 2
    data = torch.randn(50, 16, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=dtype)
    labels = torch.randint(0, 10, (50, 16), generator=torch.Generator().manual_seed(2))
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9) for m in (reference, ours)]
    for step in range(50):
        losses = []
        for model, optimizer in zip((reference, ours), optimizers):
            x = data[step].to(memory_format=torch.channels_last) if channels_last else data[step]
            loss = F.cross_entropy(model(x), labels[step])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        assert abs(losses[0] - losses[1]) <= tolerance * (1 + abs(losses[0])), f"step {step}: {losses}"
    for (name, a), b in zip(reference.state_dict().items(), ours.state_dict().values()):
        assert torch.allclose(a.to(torch.float64), b.to(torch.float64), rtol=50 * tolerance, atol=50 * tolerance), name
    reference.eval(), ours.eval()
    probe = data[0].to(memory_format=torch.channels_last) if channels_last else data[0]
    assert torch.allclose(reference(probe), ours(probe), rtol=50 * tolerance, atol=50 * tolerance)


def test_state_dicts_load_both_ways():
    torch_bn = nn.BatchNorm2d(6)
    torch_bn.running_mean.uniform_(), torch_bn.running_var.uniform_(0.5, 2), torch_bn.num_batches_tracked.fill_(7)
    ours = bt.BatchNorm2d(6)
    ours.load_state_dict(torch_bn.state_dict())
    assert list(ours.state_dict()) == list(torch_bn.state_dict())
    back = nn.BatchNorm2d(6)
    back.load_state_dict(ours.state_dict())
    assert torch.equal(back.running_var, torch_bn.running_var) and int(back.num_batches_tracked) == 7
    renorm = bt.BatchRenorm2d(6)
    renorm.load_state_dict(torch_bn.state_dict())  # Batch Renormalization keeps BatchNorm's state


def test_channels_last_is_read_without_a_copy():
    x = torch.randn(4, 8, 5, 5).to(memory_format=torch.channels_last).requires_grad_()
    bn = bt.BatchNorm2d(8)
    y = bn(x)
    assert y.is_contiguous(memory_format=torch.channels_last)
    reference = F.batch_norm(x.detach().contiguous(), None, None, bn.weight.detach(), bn.bias.detach(), True, 0.1, 1e-5)
    assert torch.allclose(y.detach().contiguous(), reference, atol=1e-5)
    y.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape


@pytest.mark.parametrize("options", [dict(), dict(affine=False), dict(track_running_stats=False), dict(momentum=None)])
@pytest.mark.parametrize("kind, shape", [("1d", (32, 5)), ("1d", (8, 5, 7)), ("2d", (4, 5, 3, 3)), ("3d", (2, 5, 2, 3, 3))])
def test_module_options_behave_as_pytorch(options, kind, shape):
    torch.manual_seed(3)
    reference = getattr(nn, "BatchNorm" + kind)(5, **options).double()
    ours = getattr(bt, "BatchNorm" + kind)(5, **options).double()
    ours.load_state_dict(reference.state_dict())
    for train in (True, True, False):
        reference.train(train), ours.train(train)
        x = torch.randn(*shape, dtype=torch.float64)
        assert torch.allclose(ours(x), reference(x), atol=1e-12, rtol=1e-12)
    for a, b in zip(reference.state_dict().values(), ours.state_dict().values()):
        assert torch.allclose(a.double(), b.double(), atol=1e-12)


def test_layer_norm_matches_pytorch_over_several_dimensions():
    reference = nn.LayerNorm([4, 6]).double()
    with torch.no_grad():
        reference.weight.uniform_(0.5, 1.5), reference.bias.uniform_(-1, 1)
    ours = bt.LayerNorm([4, 6]).double()
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(3, 5, 4, 6, dtype=torch.float64, requires_grad=True)
    y, z = reference(x), ours(x)
    assert torch.allclose(y, z, atol=1e-12)
    g = torch.randn_like(y)
    expected = torch.autograd.grad(y, (x, reference.weight, reference.bias), g)
    got = torch.autograd.grad(z, (x, ours.weight, ours.bias), g)
    for a, b in zip(expected, got):
        assert torch.allclose(a, b, atol=1e-11)


def test_gradcheck_in_float64():
    g = torch.Generator().manual_seed(4)
    def tensor(*shape, positive=False):
        t = torch.rand(*shape, generator=g, dtype=torch.float64) + 0.5 if positive else torch.randn(*shape, generator=g, dtype=torch.float64)
        return t.requires_grad_()
    x, w, b = tensor(4, 3, 2, 2), tensor(3, positive=True), tensor(3)
    assert torch.autograd.gradcheck(lambda *a: bt.batch_norm(a[0], None, None, a[1], a[2], True, 0.1, 1e-5), (x, w, b))
    running_mean, running_var = torch.randn(3, dtype=torch.float64), torch.rand(3, dtype=torch.float64) + 0.5
    assert torch.autograd.gradcheck(lambda *a: bt.batch_norm(a[0], running_mean, running_var, a[1], a[2], False, 0.1, 1e-5), (x, w, b))
    # r and d are constants of the backward (stop-gradient, as in the paper); the numerical Jacobian sees them
    # only where they are clipped, so the running statistics lie far from the batch: r = rmax, d = -dmax.
    far_mean, tiny_var = torch.full((3,), 100.0, dtype=torch.float64), torch.full((3,), 1e-4, dtype=torch.float64)
    def renorm(*a):
        return bt.batch_renorm(a[0], far_mean.clone(), tiny_var.clone(), a[1], a[2], True, 0.0, 1e-5, 1.5, 0.5)
    assert torch.autograd.gradcheck(renorm, (x, w, b))
    assert torch.autograd.gradcheck(lambda *a: bt.layer_norm(a[0], (2, 2), a[1], a[2]), (x, tensor(2, 2, positive=True), tensor(2, 2)))


def test_batch_renorm_with_rmax_1_and_dmax_0_is_batch_norm():
    x = torch.randn(16, 4, 3, 3, dtype=torch.float64)
    renorm, bn = bt.BatchRenorm2d(4, rmax=1.0, dmax=0.0).double(), nn.BatchNorm2d(4).double()
    assert torch.allclose(renorm(x), bn(x), atol=1e-12)
    assert torch.allclose(renorm.running_var, bn.running_var, atol=1e-12)


def test_what_the_library_cannot_take_is_named():
    bn = bt.BatchNorm2d(4)
    with pytest.raises(TypeError, match="input has dtype torch.int32"):
        bn(torch.ones(2, 4, 3, 3, dtype=torch.int32))
    with pytest.raises(ValueError, match="expected 4D input"):
        bn(torch.randn(2, 4, 3))
    with pytest.raises(TypeError, match="running_mean"):
        bt.batch_norm(torch.randn(4, 4), torch.zeros(4, dtype=torch.float64), torch.ones(4), training=True)
