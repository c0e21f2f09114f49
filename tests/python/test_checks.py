"""The numpy API refuses what the library must never see: each case once crashed or corrupted memory (a dy of
the wrong size read past its end, running statistics of the wrong dtype or length overflowed the heap). Every
refusal names the argument and leaves every output as it was."""
import numpy as np
import pytest

import bnnative


def rng_array(shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def test_a_dy_of_the_wrong_shape_is_refused():
    x = rng_array((64, 32, 8, 8))
    y, mean, invstd = bnnative.batch_norm_forward_training(x)
    dx = np.full_like(x, 7.0)
    with pytest.raises(ValueError, match="dy"):
        bnnative.batch_norm_backward(x, np.ones((2, 2), np.float32), None, mean, invstd, out=dx)
    assert np.all(dx == 7.0)


def test_a_layer_norm_dy_of_five_elements_is_refused():
    x = rng_array((16, 40))
    _, mean, invstd = bnnative.layer_norm_forward(x)
    with pytest.raises(ValueError, match="dy"):
        bnnative.layer_norm_backward(x, np.ones(5, np.float32), None, mean, invstd)


def test_running_statistics_of_another_dtype_are_refused_and_kept():
    x = rng_array((8, 4, 3, 3))
    running_mean, running_var = np.zeros(4), np.ones(4)  # float64 beside float32 x
    with pytest.raises(TypeError, match="running_mean"):
        bnnative.batch_renorm_forward_training(x, None, None, running_mean, running_var)
    assert np.all(running_mean == 0) and np.all(running_var == 1)


def test_running_statistics_of_the_wrong_length_are_refused():
    x = rng_array((8, 4, 3, 3))
    with pytest.raises(ValueError, match="running_mean"):
        bnnative.batch_renorm_forward_training(x, None, None, np.zeros(1, np.float32), np.ones(1, np.float32))
    with pytest.raises(ValueError, match="running_mean and running_var"):
        bnnative.batch_norm_forward_training(x, running_mean=np.zeros(4, np.float32))


@pytest.mark.parametrize("argument, value, error", [
    ("gamma", [1.0, 2.0, 3.0, 4.0], TypeError),                      # a list, not an array
    ("gamma", np.ones(4, np.float64), TypeError),                     # dtype other than x's
    ("beta", np.ones(5, np.float32), ValueError),                     # length other than C
    ("gamma", np.ones((4, 2), np.float32)[:, 0], ValueError),         # not contiguous
    ("save_mean", np.zeros(4, np.float32)[::-1], ValueError),         # an output that is not contiguous
    ("out", np.zeros((8, 4, 3), np.float32), ValueError),             # out of another shape
])
def test_each_argument_is_checked(argument, value, error):
    x = rng_array((8, 4, 3, 3))
    running_mean, running_var = np.zeros(4, np.float32), np.ones(4, np.float32)
    with pytest.raises(error, match=argument):
        bnnative.batch_norm_forward_training(x, running_mean=running_mean, running_var=running_var, **{argument: value})
    assert np.all(running_mean == 0) and np.all(running_var == 1)


def test_a_read_only_output_is_refused():
    x = rng_array((8, 4))
    out = np.zeros_like(x)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out"):
        bnnative.layer_norm_forward(x, out=out)


def test_an_error_of_the_library_names_the_rule_and_writes_nothing():
    x = rng_array((8, 4))
    running_mean, running_var = np.zeros(4, np.float32), np.ones(4, np.float32)
    y = np.full_like(x, 3.0)
    with pytest.raises(bnnative.BnError, match="eps") as failure:
        bnnative.batch_norm_forward_training(x, running_mean=running_mean, running_var=running_var, eps=0.0, out=y)
    assert failure.value.status == 3  # BN_STATUS_BAD_ARGUMENT
    assert np.all(y == 3.0) and np.all(running_mean == 0) and np.all(running_var == 1)


def test_layouts_are_inferred_from_the_rank():
    x2 = rng_array((32, 6))
    y, mean, _ = bnnative.batch_norm_forward_training(x2)  # NC
    assert np.allclose(mean, x2.mean(axis=0), atol=1e-6)
    x3 = rng_array((4, 6, 10))                           # (N, C, L)
    _, mean3, _ = bnnative.batch_norm_forward_training(x3)
    assert np.allclose(mean3, x3.mean(axis=(0, 2)), atol=1e-6)
    x5 = rng_array((2, 6, 3, 4, 5))                      # (N, C, D, H, W)
    _, mean5, _ = bnnative.batch_norm_forward_training(x5)
    assert np.allclose(mean5, x5.mean(axis=(0, 2, 3, 4)), atol=1e-6)
    nhwc = np.ascontiguousarray(x5.reshape(2, 6, 12, 5).transpose(0, 2, 3, 1))
    _, mean_nhwc, _ = bnnative.batch_norm_forward_training(nhwc, layout="NHWC")
    assert np.allclose(mean_nhwc, mean5, atol=1e-6)


def test_momentum_none_is_the_cumulative_average():
    x1, x2 = rng_array((16, 3), seed=1), rng_array((16, 3), seed=2)
    running_mean, running_var = np.zeros(3, np.float32), np.ones(3, np.float32)
    with pytest.raises(ValueError, match="num_batches_tracked"):
        bnnative.batch_norm_forward_training(x1, running_mean=running_mean, running_var=running_var, momentum=None)
    for step, x in enumerate((x1, x2), start=1):
        bnnative.batch_norm_forward_training(x, running_mean=running_mean, running_var=running_var, momentum=None,
                                             num_batches_tracked=step)
    assert np.allclose(running_mean, (x1.mean(0) + x2.mean(0)) / 2, atol=1e-6)


def test_outputs_can_be_reused_and_in_place():
    x = rng_array((8, 4, 3, 3), np.float64)
    expected, _, _ = bnnative.batch_norm_forward_training(x.copy())
    y, mean, invstd = np.empty_like(x), np.empty(4), np.empty(4)
    got, got_mean, _ = bnnative.batch_norm_forward_training(x, out=y, save_mean=mean, save_invstd=invstd)
    assert got is y and got_mean is mean and np.array_equal(y, expected)
    in_place, _, _ = bnnative.batch_norm_forward_training(x, out=x)
    assert in_place is x and np.array_equal(x, expected)


@pytest.mark.parametrize("alignment", [16, 64, 4096])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_aligned_empty_starts_on_the_boundary(alignment, dtype):
    for shape in [(3, 5), 7, (0, 4), (2, 3, 4, 5)]:
        a = bnnative.aligned_empty(shape, dtype, alignment)
        assert a.size == 0 or a.ctypes.data % alignment == 0  # an empty array has no data to align
        assert a.shape == (shape if isinstance(shape, tuple) else (shape,)) and a.dtype == dtype
        assert a.flags.c_contiguous and a.flags.writeable
    with pytest.raises(ValueError, match="alignment"):
        bnnative.aligned_empty((2, 2), np.float32, 48)


def test_new_outputs_are_aligned_and_equal_to_outputs_off_the_boundary():
    # 14 MB (≥ 8 MiB, so y is streamed: directly when aligned, staged in L1 when not); numpy's own arrays of this size
    # start 16 bytes past a 64-byte boundary (mmap'd by malloc).
    x = rng_array((16, 48, 48, 96))
    y, mean, invstd = bnnative.layer_norm_forward(x, layout="NHWC")
    assert y.ctypes.data % 64 == 0 and mean.ctypes.data % 64 == 0 and invstd.ctypes.data % 64 == 0
    spare = np.empty(x.size + 16, np.float32)
    start = (16 - spare.ctypes.data % 64) % 64 // 4  # the first element 16 bytes past a 64-byte boundary
    y_off = spare[start:start + x.size].reshape(x.shape)
    assert y_off.ctypes.data % 64 == 16
    bnnative.layer_norm_forward(x, layout="NHWC", out=y_off)
    assert np.array_equal(y, y_off)
    z, *_ = bnnative.batch_norm_forward_training(x, layout="NHWC")
    assert z.ctypes.data % 64 == 0
