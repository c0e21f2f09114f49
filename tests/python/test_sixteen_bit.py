"""16-bit tensors from Python: numpy float16 and torch float16/bfloat16 inputs with float32 weights and statistics,
against float64 PyTorch on the same (rounded) inputs, judged by SPEC §4's F16/BF16 row: y and dx within 2.5 ulps of
the format plus the F32 rule; statistics and parameter gradients by the F32 rule."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import bnnative
import bnnative.torch as bt

FRACTION_BITS = {torch.float16: 10, torch.bfloat16: 7}
SMALLEST_NORMAL = {torch.float16: 2.0 ** -14, torch.bfloat16: 2.0 ** -126}


def ulp(reference: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    exponent = torch.floor(torch.log2(reference.abs().clamp_min(SMALLEST_NORMAL[dtype])))
    return torch.pow(2.0, exponent - FRACTION_BITS[dtype])


def assert_tensor_near(name, got, reference, dtype, tolerance):
    got, reference = got.to(torch.float64), reference.to(torch.float64)
    bound = 2.5 * ulp(reference, dtype) + tolerance * (1 + reference.abs())
    error = (got - reference).abs()
    assert bool((error <= bound).all()), f"{name}: worst excess {float((error - bound).max()):.3g}"


def assert_float_near(name, got, reference, tolerance):
    assert got.dtype == torch.float32, f"{name} is {got.dtype}; parameters beside 16-bit inputs are float32"
    error = (got.to(torch.float64) - reference).abs()
    assert bool((error <= tolerance * (1 + reference.abs())).all()), f"{name}: worst error {float(error.max()):.3g}"


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_batch_norm_module_on_16_bit_inputs(dtype, channels_last):
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(4, 24, 9, 11, generator=g) * 2 + 1).to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    module = bt.BatchNorm2d(24)
    with torch.no_grad():
        module.weight.uniform_(0.5, 1.5, generator=g)
        module.bias.uniform_(-1, 1, generator=g)
    x.requires_grad_()
    y = module(x)
    assert y.dtype == dtype and module.running_mean.dtype == torch.float32
    dy = torch.randn(y.shape, generator=g).to(dtype)
    y.backward(dy)

    x64 = x.detach().to(torch.float64).requires_grad_()
    weight64 = module.weight.detach().to(torch.float64).requires_grad_()
    bias64 = module.bias.detach().to(torch.float64).requires_grad_()
    running_mean, running_var = torch.zeros(24, dtype=torch.float64), torch.ones(24, dtype=torch.float64)
    y64 = F.batch_norm(x64, running_mean, running_var, weight64, bias64, True, 0.1, 1e-5)
    y64.backward(dy.to(torch.float64))
    assert_tensor_near("y", y, y64, dtype, 1e-5)
    assert_tensor_near("dx", x.grad, x64.grad, dtype, 1e-4)
    assert_float_near("dgamma", module.weight.grad, weight64.grad, 1e-4)
    assert_float_near("dbeta", module.bias.grad, bias64.grad, 1e-4)
    assert_float_near("running_mean", module.running_mean, running_mean, 1e-5)
    assert_float_near("running_var", module.running_var, running_var, 1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_layer_norm_module_on_16_bit_inputs(dtype):
    g = torch.Generator().manual_seed(4)
    x = (torch.randn(64, 200, generator=g) + 3).to(dtype).requires_grad_()
    module = bt.LayerNorm(200)
    with torch.no_grad():
        module.weight.uniform_(0.5, 1.5, generator=g)
    y = module(x)
    dy = torch.randn(y.shape, generator=g).to(dtype)
    y.backward(dy)
    x64 = x.detach().to(torch.float64).requires_grad_()
    weight64 = module.weight.detach().to(torch.float64).requires_grad_()
    y64 = F.layer_norm(x64, (200,), weight64, module.bias.detach().to(torch.float64), 1e-5)
    y64.backward(dy.to(torch.float64))
    assert_tensor_near("y", y, y64, dtype, 1e-5)
    assert_tensor_near("dx", x.grad, x64.grad, dtype, 1e-4)
    assert_float_near("dgamma", module.weight.grad, weight64.grad, 1e-4)


def test_numpy_float16_takes_float32_parameters():
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((16, 8, 5, 5)) * 3 + 2).astype(np.float16)
    gamma, beta = rng.uniform(0.5, 2, 8).astype(np.float32), rng.uniform(-1, 1, 8).astype(np.float32)
    y, mean, invstd = bnnative.batch_norm_forward_training(x, gamma, beta)
    assert y.dtype == np.float16 and mean.dtype == np.float32 and invstd.dtype == np.float32
    reference = F.batch_norm(torch.from_numpy(x.astype(np.float64)), None, None, torch.from_numpy(gamma.astype(np.float64)),
                             torch.from_numpy(beta.astype(np.float64)), True, 0.1, 1e-5)
    assert_tensor_near("y", torch.from_numpy(y), reference, torch.float16, 1e-5)
    with pytest.raises(TypeError, match="gamma"):
        bnnative.batch_norm_forward_training(x, gamma.astype(np.float16), beta)
    assert bnnative.parameter_dtype(np.float16) == np.float32


def test_a_16_bit_weight_beside_a_16_bit_input_is_refused():
    x = torch.randn(4, 3, 5, 5).to(torch.bfloat16)
    with pytest.raises(TypeError, match="weight"):
        bt.batch_norm(x, None, None, torch.ones(3, dtype=torch.bfloat16), None, True, 0.1, 1e-5)
