"""libbnnative through the Python binding against PyTorch (Debian's python3-torch), an independent
implementation: BatchNorm and LayerNorm forward and backward (autograd), and Batch Renormalization
against the paper's algorithm composed from torch operations with r and d detached."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import bnnative

TOL = {np.float32: (2e-5, 2e-4), np.float64: (1e-11, 1e-9)}  # (forward, gradients), relative to 1 + |ref|


def close(name, got, ref, tol):
    ref = ref.detach().numpy() if isinstance(ref, torch.Tensor) else ref
    err = np.max(np.abs(got - ref) / (1 + np.abs(ref)))
    assert err <= tol, f"{name}: max error {err:.3g} > {tol:.1g}"


def to_layout(t, layout):
    """A (N, C, H, W) torch tensor as the contiguous numpy array of the layout."""
    if layout == "NC":
        return t.reshape(t.shape[0], t.shape[1]).numpy().copy()
    if layout == "NHWC":
        return t.permute(0, 2, 3, 1).contiguous().numpy()
    return t.contiguous().numpy()


def from_layout(a, layout, shape):
    t = torch.from_numpy(np.ascontiguousarray(a))
    if layout == "NC":
        return t.reshape(shape)
    if layout == "NHWC":
        return t.permute(0, 3, 1, 2)
    return t


SHAPES = {"NC": (37, 19, 1, 1), "NCHW": (3, 21, 5, 7), "NHWC": (3, 21, 5, 7)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["NC", "NCHW", "NHWC"])
def test_batch_norm_matches_torch(layout, dtype):
    g = torch.Generator().manual_seed(1)
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    shape = SHAPES[layout]
    x = (torch.randn(shape, generator=g, dtype=tdtype) * 2 + 3).requires_grad_()
    gamma = (torch.rand(shape[1], generator=g, dtype=tdtype) + 0.5).requires_grad_()
    beta = torch.randn(shape[1], generator=g, dtype=tdtype).requires_grad_()
    dy = torch.randn(shape, generator=g, dtype=tdtype)
    rm_t, rv_t = torch.zeros(shape[1], dtype=tdtype), torch.ones(shape[1], dtype=tdtype)
    y_t = F.batch_norm(x, rm_t, rv_t, gamma, beta, training=True, momentum=0.1, eps=1e-5)
    y_t.backward(dy)
    ftol, gtol = TOL[dtype]

    rm, rv = np.zeros(shape[1], dtype), np.ones(shape[1], dtype)
    xa = to_layout(x.detach(), layout)
    y, mean, invstd = bnnative.batch_norm_forward_training(xa, gamma.detach().numpy(), beta.detach().numpy(), rm, rv, 0.1, 1e-5, layout)
    close("y", to_layout(from_layout(y, layout, shape), "NCHW"), y_t, ftol)
    close("running_mean", rm, rm_t, ftol)
    close("running_var", rv, rv_t, ftol)

    dx, dgamma, dbeta = bnnative.batch_norm_backward(xa, to_layout(dy, layout), gamma.detach().numpy(), mean, invstd, layout)
    close("dx", to_layout(from_layout(dx, layout, shape), "NCHW"), x.grad, gtol)
    close("dgamma", dgamma, gamma.grad, gtol)
    close("dbeta", dbeta, beta.grad, gtol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_batch_norm_inference_and_its_gradient_match_torch(layout, dtype):
    g = torch.Generator().manual_seed(2)
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    shape = SHAPES[layout]
    x = torch.randn(shape, generator=g, dtype=tdtype).requires_grad_()
    gamma = (torch.rand(shape[1], generator=g, dtype=tdtype) + 0.5).requires_grad_()
    beta = torch.randn(shape[1], generator=g, dtype=tdtype).requires_grad_()
    rm, rv = torch.randn(shape[1], generator=g, dtype=tdtype), torch.rand(shape[1], generator=g, dtype=tdtype) + 0.5
    dy = torch.randn(shape, generator=g, dtype=tdtype)
    y_t = F.batch_norm(x, rm, rv, gamma, beta, training=False, eps=1e-3)
    y_t.backward(dy)
    ftol, gtol = TOL[dtype]
    xa = to_layout(x.detach(), layout)
    y = bnnative.batch_norm_forward_inference(xa, gamma.detach().numpy(), beta.detach().numpy(), rm.numpy(), rv.numpy(), 1e-3, layout)
    close("y", to_layout(from_layout(y, layout, shape), "NCHW"), y_t, ftol)
    dx, dgamma, dbeta = bnnative.batch_norm_backward_inference(xa, to_layout(dy, layout), gamma.detach().numpy(), rm.numpy(), rv.numpy(), 1e-3, layout)
    close("dx", to_layout(from_layout(dx, layout, shape), "NCHW"), x.grad, gtol)
    close("dgamma", dgamma, gamma.grad, gtol)
    close("dbeta", dbeta, beta.grad, gtol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_renorm_matches_the_paper_composed_in_torch(dtype):
    g = torch.Generator().manual_seed(3)
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    shape, eps, rmax, dmax = (4, 13, 3, 5), 1e-5, 1.5, 0.5
    x = (torch.randn(shape, generator=g, dtype=tdtype) * 3 + 1).requires_grad_()
    gamma = (torch.rand(13, generator=g, dtype=tdtype) + 0.5).requires_grad_()
    beta = torch.randn(13, generator=g, dtype=tdtype).requires_grad_()
    rm0, rv0 = torch.randn(13, generator=g, dtype=tdtype), torch.rand(13, generator=g, dtype=tdtype) + 0.5
    dy = torch.randn(shape, generator=g, dtype=tdtype)
    dims = (0, 2, 3)
    mean = x.mean(dims)
    var = x.var(dims, unbiased=False)
    sigma = torch.sqrt(var + eps)
    running_sigma = torch.sqrt(rv0 + eps)
    r = torch.clamp(sigma / running_sigma, 1 / rmax, rmax).detach()
    d = torch.clamp((mean - rm0) / running_sigma, -dmax, dmax).detach()
    c = lambda v: v[None, :, None, None]
    y_t = c(gamma) * ((x - c(mean)) / c(sigma) * c(r) + c(d)) + c(beta)
    y_t.backward(dy)
    ftol, gtol = TOL[dtype]

    rm, rv = rm0.numpy().copy(), rv0.numpy().copy()
    y, save_mean, save_invstd, r_b, d_b = bnnative.batch_renorm_forward_training(
        x.detach().numpy(), gamma.detach().numpy(), beta.detach().numpy(), rm, rv, 0.1, eps, rmax, dmax, "NCHW")
    close("y", y, y_t, ftol)
    close("r", r_b, r, ftol)
    close("d", d_b, d, 10 * ftol)
    m = shape[0] * shape[2] * shape[3]
    close("running_var", rv, 0.9 * rv0 + 0.1 * var.detach() * m / (m - 1), ftol)
    dx, dgamma, dbeta = bnnative.batch_renorm_backward(x.detach().numpy(), dy.numpy(), gamma.detach().numpy(), save_mean, save_invstd, r_b, d_b, "NCHW")
    close("dx", dx, x.grad, gtol)
    close("dgamma", dgamma, gamma.grad, gtol)
    close("dbeta", dbeta, beta.grad, gtol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["NC", "NHWC", "NCHW"])
def test_layer_norm_matches_torch(layout, dtype):
    g = torch.Generator().manual_seed(4)
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    c = 48
    shape = (9, c) if layout == "NC" else (2, 5, 7, c)  # channels last for torch's layer_norm
    x = (torch.randn(shape, generator=g, dtype=tdtype) + 2).requires_grad_()
    gamma = (torch.rand(c, generator=g, dtype=tdtype) + 0.5).requires_grad_()
    beta = torch.randn(c, generator=g, dtype=tdtype).requires_grad_()
    dy = torch.randn(shape, generator=g, dtype=tdtype)
    y_t = F.layer_norm(x, (c,), gamma, beta, eps=1e-5)
    y_t.backward(dy)
    ftol, gtol = TOL[dtype]

    def ours(a):  # channels-last numpy → the layout
        return np.ascontiguousarray(np.moveaxis(a, -1, 1)) if layout == "NCHW" else np.ascontiguousarray(a)

    def back(a):
        return np.moveaxis(a, 1, -1) if layout == "NCHW" else a

    xa = ours(x.detach().numpy())
    y, mean, invstd = bnnative.layer_norm_forward(xa, gamma.detach().numpy(), beta.detach().numpy(), 1e-5, layout)
    close("y", back(y), y_t, ftol)
    dx, dgamma, dbeta = bnnative.layer_norm_backward(xa, ours(dy.numpy()), gamma.detach().numpy(), mean, invstd, layout)
    close("dx", back(dx), x.grad, gtol)
    close("dgamma", dgamma, gamma.grad, gtol)
    close("dbeta", dbeta, beta.grad, gtol)


def test_errors_raise_and_write_nothing():
    x = np.ones((4, 3), np.float32)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    with pytest.raises(bnnative.BnError) as e:
        bnnative.batch_norm_forward_training(x, None, None, rm, rv, momentum=2.0, layout="NC")
    assert e.value.status == 3 and "momentum" in str(e.value)
    assert (rm == 0).all() and (rv == 1).all()
    with pytest.raises(bnnative.BnError) as e:
        bnnative.layer_norm_forward(x, eps=0.0, layout="NC")
    assert e.value.status == 3
    assert bnnative.isa() in ("avx512", "avx2", "neon", "vector128", "scalar")
