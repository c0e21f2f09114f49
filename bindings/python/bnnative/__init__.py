"""BnNative for Python: Batch Normalization, Batch Renormalization and Layer Normalization on CPUs.

The numpy API below works on float32, float64 and float16 arrays (with float16 x, the per-channel arrays —
gamma, beta, running and saved statistics, r, d, dgamma, dbeta — are float32); ``bnnative.torch`` has autograd Functions and
``nn.Module`` drop-ins. Every array argument is checked before the library is called — its type, dtype (that
of ``x``), shape (against ``x``'s layout), C-contiguity and, for outputs, writability — and a wrong one raises
``TypeError`` or ``ValueError`` naming it, with nothing written. A call the library refuses raises ``BnError``
with its status and message, also with nothing written.

Layouts: ``layout=None`` infers one from the rank of ``x``: 2-D (N, C) is "NC"; 3-D (N, C, L), 4-D (N, C, H, W)
and 5-D (N, C, D, H, W) are "NCHW" (D and H folded). "NHWC" takes (N, H, W, C), (N, L, C) or (N, D, H, W, C).
Outputs are new arrays unless ``out=`` (and the other output arguments) give arrays to write into; ``out``
may be ``x`` (in place). New arrays start on a 64-byte boundary (``aligned_empty``); numpy's own large arrays start
16 bytes past one, where the library's calls measured 1.1–1.5× slower (README, "Alignment"), so allocate the
tensors you pass with ``aligned_empty`` too. The library is found as ``bnnative._native`` says ($BNNATIVE_LIBRARY overrides).
"""
from typing import Optional, Tuple

import numpy as np
import numpy.typing as npt

from . import _abi
from ._native import Desc, library

__version__ = ".".join(str(part) for part in _abi.VERSION)

__all__ = ["BnError", "version", "version_number", "isa", "set_num_threads", "get_num_threads", "describe", "parameter_dtype",
           "aligned_empty",
           "batch_norm_forward_training", "batch_norm_forward_inference", "batch_norm_backward",
           "batch_norm_backward_inference", "batch_renorm_forward_training", "batch_renorm_backward",
           "layer_norm_forward", "layer_norm_backward"]

Array = npt.NDArray[np.floating]

_DTYPES = {np.dtype(np.float32): _abi.DTYPES["F32"], np.dtype(np.float64): _abi.DTYPES["F64"],
           np.dtype(np.float16): _abi.DTYPES["F16"]}


def parameter_dtype(dtype) -> np.dtype:
    """The dtype of gamma, beta, running and saved statistics and parameter gradients beside an x of ``dtype``:
    x's own for float32 and float64, float32 for float16 (the library computes 16-bit tensors in float32)."""
    return np.dtype(np.float32) if np.dtype(dtype) == np.float16 else np.dtype(dtype)


def aligned_empty(shape, dtype=np.float32, alignment: int = 64) -> np.ndarray:
    """An uninitialized C-contiguous array like ``np.empty(shape, dtype)`` whose data starts on an ``alignment``-byte
    boundary (a power of two; 64 is one AVX-512 vector and one cache line). The library streams whole vectors of
    an output only from such a boundary, and numpy's large arrays start 16 bytes past one."""
    if alignment <= 0 or alignment & (alignment - 1):
        raise ValueError(f"alignment must be a power of two (got {alignment})")
    dtype = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + alignment, np.uint8)
    start = -raw.ctypes.data % alignment
    return raw[start:start + nbytes].view(dtype).reshape(shape)


class BnError(RuntimeError):
    """A call of the library returned a status other than BN_STATUS_SUCCESS; it wrote nothing."""

    def __init__(self, function: str, status: int, message: str):
        super().__init__(f"{message} [{_abi.STATUS.get(status, status)}]")
        self.function = function
        self.status = status
        self.message = message


def version() -> str:
    """The loaded library's version, "MAJOR.MINOR.PATCH"."""
    return library().bn_version().decode()


def version_number() -> int:
    """The loaded library's version as MAJOR*10000 + MINOR*100 + PATCH."""
    return library().bn_version_number()


def isa() -> str:
    """The kernels in use: "avx512", "avx2", "neon", "vector128" or "scalar"."""
    return library().bn_get_isa().decode()


def set_num_threads(n: int) -> int:
    """Sets the thread count of later calls (n <= 0: one per processor); returns the count in use."""
    return library().bn_set_num_threads(int(n))


def get_num_threads() -> int:
    return library().bn_get_num_threads()


# ---- checks ---------------------------------------------------------------------------------------------

def _folded(shape, layout: str):
    """(n, c, h, w) of an array shape in a layout, or None when the rank does not fit it."""
    if layout == "NC":
        return (shape[0], shape[1], 1, 1) if len(shape) == 2 else None
    if layout == "NCHW":
        return {3: lambda: (shape[0], shape[1], 1, shape[2]), 4: lambda: tuple(shape),
                5: lambda: (shape[0], shape[1], shape[2] * shape[3], shape[4])}.get(len(shape), lambda: None)()
    if layout == "NHWC":
        return {3: lambda: (shape[0], shape[2], 1, shape[1]), 4: lambda: (shape[0], shape[3], shape[1], shape[2]),
                5: lambda: (shape[0], shape[4], shape[1] * shape[2], shape[3])}.get(len(shape), lambda: None)()
    return None


def describe(x, layout: Optional[str] = None) -> Tuple[Desc, int, int]:
    """The descriptor of ``x`` in ``layout`` (inferred from its rank when None), its channels and positions."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be a numpy array (got {type(x).__name__})")
    if x.dtype not in _DTYPES:
        raise TypeError(f"x has dtype {x.dtype}; it must be float32, float64 or float16")
    if layout is None:
        layout = "NC" if x.ndim == 2 else "NCHW"
    if layout not in _abi.LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(_abi.LAYOUTS)} or None (got {layout!r})")
    dims = _folded(x.shape, layout)
    if dims is None:
        raise ValueError(f"x has shape {x.shape}, which does not fit layout {layout} (NC: 2-D; NCHW, NHWC: 3-D to 5-D)")
    if not x.flags.c_contiguous:
        raise ValueError("x must be C-contiguous (np.ascontiguousarray(x))")
    n, c, h, w = dims
    return Desc(_abi.LAYOUTS[layout], _DTYPES[x.dtype], n, c, h, w), c, n * h * w


def _checked(name: str, a, dtype, shape, writable: bool = False, optional: bool = True):
    """``a`` as the library may use it, or a clear error naming ``name``."""
    if a is None:
        if optional:
            return None
        raise ValueError(f"{name} is required")
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array (got {type(a).__name__})")
    if a.dtype != dtype:
        raise TypeError(f"{name} has dtype {a.dtype}; it must be {dtype} (x's dtype, or float32 beside float16 x)")
    if a.shape != shape:
        raise ValueError(f"{name} has shape {a.shape}; it must be {shape}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    if writable and not a.flags.writeable:
        raise ValueError(f"{name} is read-only, and it is written")
    return a


def _output(name: str, given, dtype, shape):
    """A writable output: the array given (checked) or a new one, 64-byte aligned."""
    return aligned_empty(shape, dtype) if given is None else _checked(name, given, dtype, shape, writable=True)


def _address(a) -> Optional[int]:
    return None if a is None else a.__array_interface__["data"][0]


def _momentum(momentum, num_batches_tracked) -> float:
    """momentum, or for None the cumulative average 1/num_batches_tracked (the count including this batch), as PyTorch."""
    if momentum is not None:
        return float(momentum)
    if num_batches_tracked is None or int(num_batches_tracked) < 1:
        raise ValueError("momentum=None (a cumulative average) needs num_batches_tracked >= 1, counting this batch")
    return 1.0 / int(num_batches_tracked)


def _call(name: str, desc: Desc, *arguments) -> None:
    lib = library()
    status = getattr(lib, name)(desc, *arguments)
    if status != 0:
        raise BnError(name, status, lib.bn_last_error_message().decode())


# ---- Batch Normalization ----------------------------------------------------------------------------------

def batch_norm_forward_training(x: Array, gamma: Optional[Array] = None, beta: Optional[Array] = None,
                                running_mean: Optional[Array] = None, running_var: Optional[Array] = None,
                                momentum: Optional[float] = 0.1, eps: float = 1e-5, layout: Optional[str] = None, *,
                                num_batches_tracked: Optional[int] = None, out: Optional[Array] = None,
                                save_mean: Optional[Array] = None, save_invstd: Optional[Array] = None
                                ) -> Tuple[Array, Array, Array]:
    """Batch Normalization forward in training mode; returns (y, save_mean, save_invstd).

    running_mean and running_var (both or neither, shape (C,), x's dtype) are updated in place:
    r <- (1 - momentum)·r + momentum·batch statistic (the variance unbiased). momentum=None is a cumulative
    average, for which num_batches_tracked (counting this batch) must be given.
    """
    desc, c, _ = describe(x, layout)
    d, p, vec = x.dtype, parameter_dtype(x.dtype), (c,)
    gamma, beta = _checked("gamma", gamma, p, vec), _checked("beta", beta, p, vec)
    running_mean = _checked("running_mean", running_mean, p, vec, writable=True)
    running_var = _checked("running_var", running_var, p, vec, writable=True)
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must be given together, or neither")
    factor = _momentum(momentum, num_batches_tracked)
    y = _output("out", out, d, x.shape)
    mean, invstd = _output("save_mean", save_mean, p, vec), _output("save_invstd", save_invstd, p, vec)
    _call("bn_batch_norm_forward_training", desc, _address(x), _address(y), _address(gamma), _address(beta),
          _address(running_mean), _address(running_var), factor, eps, _address(mean), _address(invstd))
    return y, mean, invstd


def batch_norm_forward_inference(x: Array, gamma: Optional[Array], beta: Optional[Array], running_mean: Array,
                                 running_var: Array, eps: float = 1e-5, layout: Optional[str] = None, *,
                                 out: Optional[Array] = None) -> Array:
    """Batch Normalization forward in inference mode, with the running statistics; returns y."""
    desc, c, _ = describe(x, layout)
    d, p, vec = x.dtype, parameter_dtype(x.dtype), (c,)
    gamma, beta = _checked("gamma", gamma, p, vec), _checked("beta", beta, p, vec)
    running_mean = _checked("running_mean", running_mean, p, vec, optional=False)
    running_var = _checked("running_var", running_var, p, vec, optional=False)
    y = _output("out", out, d, x.shape)
    _call("bn_batch_norm_forward_inference", desc, _address(x), _address(y), _address(gamma), _address(beta),
          _address(running_mean), _address(running_var), eps)
    return y


def _gradient_outputs(x, dy, c, out, dgamma, dbeta, compute_dx):
    d, p = x.dtype, parameter_dtype(x.dtype)
    dy = _checked("dy", dy, d, x.shape, optional=False)
    dx = _output("out", out, d, x.shape) if compute_dx else None
    return dy, dx, _output("dgamma", dgamma, p, (c,)), _output("dbeta", dbeta, p, (c,))


def batch_norm_backward(x: Array, dy: Array, gamma: Optional[Array], save_mean: Array, save_invstd: Array,
                        layout: Optional[str] = None, *, out: Optional[Array] = None, dgamma: Optional[Array] = None,
                        dbeta: Optional[Array] = None, compute_dx: bool = True) -> Tuple[Optional[Array], Array, Array]:
    """The gradient of the training forward from its saved statistics; returns (dx, dgamma, dbeta) (dx None without compute_dx)."""
    desc, c, _ = describe(x, layout)
    p, vec = parameter_dtype(x.dtype), (c,)
    gamma = _checked("gamma", gamma, p, vec)
    save_mean = _checked("save_mean", save_mean, p, vec, optional=False)
    save_invstd = _checked("save_invstd", save_invstd, p, vec, optional=False)
    dy, dx, dgamma, dbeta = _gradient_outputs(x, dy, c, out, dgamma, dbeta, compute_dx)
    _call("bn_batch_norm_backward", desc, _address(x), _address(dy), _address(dx), _address(gamma),
          _address(save_mean), _address(save_invstd), _address(dgamma), _address(dbeta))
    return dx, dgamma, dbeta


def batch_norm_backward_inference(x: Array, dy: Array, gamma: Optional[Array], running_mean: Array, running_var: Array,
                                  eps: float = 1e-5, layout: Optional[str] = None, *, out: Optional[Array] = None,
                                  dgamma: Optional[Array] = None, dbeta: Optional[Array] = None,
                                  compute_dx: bool = True) -> Tuple[Optional[Array], Array, Array]:
    """The gradient of the inference forward (frozen statistics); returns (dx, dgamma, dbeta)."""
    desc, c, _ = describe(x, layout)
    p, vec = parameter_dtype(x.dtype), (c,)
    gamma = _checked("gamma", gamma, p, vec)
    running_mean = _checked("running_mean", running_mean, p, vec, optional=False)
    running_var = _checked("running_var", running_var, p, vec, optional=False)
    dy, dx, dgamma, dbeta = _gradient_outputs(x, dy, c, out, dgamma, dbeta, compute_dx)
    _call("bn_batch_norm_backward_inference", desc, _address(x), _address(dy), _address(dx), _address(gamma),
          _address(running_mean), _address(running_var), eps, _address(dgamma), _address(dbeta))
    return dx, dgamma, dbeta


# ---- Batch Renormalization ----------------------------------------------------------------------------------

def batch_renorm_forward_training(x: Array, gamma: Optional[Array], beta: Optional[Array], running_mean: Array,
                                  running_var: Array, momentum: Optional[float] = 0.1, eps: float = 1e-5,
                                  rmax: float = 3.0, dmax: float = 5.0, layout: Optional[str] = None, *,
                                  num_batches_tracked: Optional[int] = None, out: Optional[Array] = None,
                                  save_mean: Optional[Array] = None, save_invstd: Optional[Array] = None,
                                  save_r: Optional[Array] = None, save_d: Optional[Array] = None
                                  ) -> Tuple[Array, Array, Array, Array, Array]:
    """Batch Renormalization forward in training mode (Ioffe 2017); returns (y, save_mean, save_invstd, r, d).

    r and d come from the running statistics as they were before the call, which are then updated in place as
    in batch_norm_forward_training. rmax = 1, dmax = 0 is Batch Normalization; rmax = dmax = inf clips nothing.
    """
    desc, c, _ = describe(x, layout)
    d, p, vec = x.dtype, parameter_dtype(x.dtype), (c,)
    gamma, beta = _checked("gamma", gamma, p, vec), _checked("beta", beta, p, vec)
    running_mean = _checked("running_mean", running_mean, p, vec, writable=True, optional=False)
    running_var = _checked("running_var", running_var, p, vec, writable=True, optional=False)
    factor = _momentum(momentum, num_batches_tracked)
    y = _output("out", out, d, x.shape)
    saved = [_output(name, given, p, vec) for name, given in
             (("save_mean", save_mean), ("save_invstd", save_invstd), ("save_r", save_r), ("save_d", save_d))]
    _call("bn_batch_renorm_forward_training", desc, _address(x), _address(y), _address(gamma), _address(beta),
          _address(running_mean), _address(running_var), factor, eps, float(rmax), float(dmax), *[_address(s) for s in saved])
    return (y, *saved)


def batch_renorm_backward(x: Array, dy: Array, gamma: Optional[Array], save_mean: Array, save_invstd: Array,
                          r: Array, d: Array, layout: Optional[str] = None, *, out: Optional[Array] = None,
                          dgamma: Optional[Array] = None, dbeta: Optional[Array] = None,
                          compute_dx: bool = True) -> Tuple[Optional[Array], Array, Array]:
    """The gradient of the Batch Renormalization forward with r and d constant; returns (dx, dgamma, dbeta)."""
    desc, c, _ = describe(x, layout)
    p, vec = parameter_dtype(x.dtype), (c,)
    gamma = _checked("gamma", gamma, p, vec)
    save_mean = _checked("save_mean", save_mean, p, vec, optional=False)
    save_invstd = _checked("save_invstd", save_invstd, p, vec, optional=False)
    r, d = _checked("r", r, p, vec, optional=False), _checked("d", d, p, vec, optional=False)
    dy, dx, dgamma, dbeta = _gradient_outputs(x, dy, c, out, dgamma, dbeta, compute_dx)
    _call("bn_batch_renorm_backward", desc, _address(x), _address(dy), _address(dx), _address(gamma),
          _address(save_mean), _address(save_invstd), _address(r), _address(d), _address(dgamma), _address(dbeta))
    return dx, dgamma, dbeta


# ---- Layer Normalization --------------------------------------------------------------------------------------

def layer_norm_forward(x: Array, gamma: Optional[Array] = None, beta: Optional[Array] = None, eps: float = 1e-5,
                       layout: Optional[str] = None, *, out: Optional[Array] = None, save_mean: Optional[Array] = None,
                       save_invstd: Optional[Array] = None) -> Tuple[Array, Array, Array]:
    """LayerNorm over the channel axis of the layout at every position; returns (y, save_mean, save_invstd).

    The saved statistics have one value per position (N·H·W). A LayerNorm over several trailing axes is "NC"
    on x reshaped to (N, features).
    """
    desc, c, positions = describe(x, layout)
    d, p = x.dtype, parameter_dtype(x.dtype)
    gamma, beta = _checked("gamma", gamma, p, (c,)), _checked("beta", beta, p, (c,))
    y = _output("out", out, d, x.shape)
    mean, invstd = _output("save_mean", save_mean, p, (positions,)), _output("save_invstd", save_invstd, p, (positions,))
    _call("bn_layer_norm_forward", desc, _address(x), _address(y), _address(gamma), _address(beta), eps,
          _address(mean), _address(invstd))
    return y, mean, invstd


def layer_norm_backward(x: Array, dy: Array, gamma: Optional[Array], save_mean: Array, save_invstd: Array,
                        layout: Optional[str] = None, *, out: Optional[Array] = None, dgamma: Optional[Array] = None,
                        dbeta: Optional[Array] = None, compute_dx: bool = True) -> Tuple[Optional[Array], Array, Array]:
    """The gradient of Layer Normalization; returns (dx, dgamma, dbeta)."""
    desc, c, positions = describe(x, layout)
    p = parameter_dtype(x.dtype)
    gamma = _checked("gamma", gamma, p, (c,))
    save_mean = _checked("save_mean", save_mean, p, (positions,), optional=False)
    save_invstd = _checked("save_invstd", save_invstd, p, (positions,), optional=False)
    dy, dx, dgamma, dbeta = _gradient_outputs(x, dy, c, out, dgamma, dbeta, compute_dx)
    _call("bn_layer_norm_backward", desc, _address(x), _address(dy), _address(dx), _address(gamma),
          _address(save_mean), _address(save_invstd), _address(dgamma), _address(dbeta))
    return dx, dgamma, dbeta
