"""Python binding of libbnnative (ctypes + numpy).

Arrays are numpy float32 or float64, C-contiguous, in the layout named: "NC" (N, C), "NCHW" (N, C, H, W)
or (N, C, L), "NHWC" (N, H, W, C). Functions return new arrays; a failing call raises BnError with the
library's status and message (and has written nothing). The library is found at $BNNATIVE_LIBRARY, else at
artifacts/lib/libbnnative.so of this repository.
"""
import ctypes
import os

import numpy as np

__all__ = ["BnError", "library", "version", "isa", "set_num_threads",
           "batch_norm_forward_training", "batch_norm_forward_inference", "batch_norm_backward",
           "batch_norm_backward_inference", "batch_renorm_forward_training", "batch_renorm_backward",
           "layer_norm_forward", "layer_norm_backward"]

_LAYOUTS = {"NC": 0, "NCHW": 1, "NHWC": 2}
_DTYPES = {np.dtype(np.float32): 0, np.dtype(np.float64): 1}


class _Desc(ctypes.Structure):
    _fields_ = [("layout", ctypes.c_int32), ("dtype", ctypes.c_int32),
                ("n", ctypes.c_int64), ("c", ctypes.c_int64), ("h", ctypes.c_int64), ("w", ctypes.c_int64)]


class BnError(RuntimeError):
    """A call returned a status other than BN_STATUS_SUCCESS."""

    def __init__(self, status, message):
        super().__init__(f"{message} (status {status})")
        self.status = status


def _default_path():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.environ.get("BNNATIVE_LIBRARY") or os.path.join(here, "..", "..", "..", "artifacts", "lib", "libbnnative.so")


_lib = None


def library():
    """The loaded ctypes library (loaded on first use)."""
    global _lib
    if _lib is None:
        lib = ctypes.CDLL(os.path.abspath(_default_path()))
        p, d, i = ctypes.c_void_p, ctypes.c_double, ctypes.c_int32
        desc = ctypes.POINTER(_Desc)
        signatures = {
            "bn_batch_norm_forward_training": [desc, p, p, p, p, p, p, d, d, p, p],
            "bn_batch_norm_forward_inference": [desc, p, p, p, p, p, p, d],
            "bn_batch_norm_backward": [desc, p, p, p, p, p, p, p, p],
            "bn_batch_norm_backward_inference": [desc, p, p, p, p, p, p, d, p, p],
            "bn_batch_renorm_forward_training": [desc, p, p, p, p, p, p, d, d, d, d, p, p, p, p],
            "bn_batch_renorm_backward": [desc, p, p, p, p, p, p, p, p, p, p],
            "bn_layer_norm_forward": [desc, p, p, p, p, d, p, p],
            "bn_layer_norm_backward": [desc, p, p, p, p, p, p, p, p],
        }
        for name, args in signatures.items():
            getattr(lib, name).argtypes = args
            getattr(lib, name).restype = i
        for name in ("bn_version", "bn_get_isa", "bn_last_error_message"):
            getattr(lib, name).restype = ctypes.c_char_p
        lib.bn_status_string.restype = ctypes.c_char_p
        lib.bn_status_string.argtypes = [i]
        lib.bn_set_num_threads.argtypes = [i]
        lib.bn_set_num_threads.restype = i
        _lib = lib
    return _lib


def version():
    return library().bn_version().decode()


def isa():
    return library().bn_get_isa().decode()


def set_num_threads(n):
    return library().bn_set_num_threads(n)


def _describe(x, layout):
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be one of {sorted(_LAYOUTS)}")
    if x.dtype not in _DTYPES or not x.flags["C_CONTIGUOUS"]:
        raise ValueError("x must be a C-contiguous float32 or float64 array")
    s = x.shape
    if layout == "NC" and len(s) == 2:
        n, c, h, w = s[0], s[1], 1, 1
    elif layout == "NCHW" and len(s) in (3, 4):
        n, c, h, w = (s[0], s[1], 1, s[2]) if len(s) == 3 else s
    elif layout == "NHWC" and len(s) == 4:
        n, h, w, c = s
    else:
        raise ValueError(f"shape {s} does not fit layout {layout}")
    return _Desc(_LAYOUTS[layout], _DTYPES[x.dtype], n, c, h, w), c, n * h * w


def _ptr(a):
    return None if a is None else a.ctypes.data_as(ctypes.c_void_p)


def _vector(v, dtype, length, name):
    if v is None:
        return None
    v = np.ascontiguousarray(v, dtype=dtype)
    if v.shape != (length,):
        raise ValueError(f"{name} must have shape ({length},)")
    return v


def _check(status):
    if status != 0:
        raise BnError(status, library().bn_last_error_message().decode())


def batch_norm_forward_training(x, gamma=None, beta=None, running_mean=None, running_var=None,
                                momentum=0.1, eps=1e-5, layout="NCHW"):
    """Returns (y, save_mean, save_invstd); running_mean/running_var (numpy, same dtype) are updated in place."""
    desc, c, _ = _describe(x, layout)
    y = np.empty_like(x)
    mean, invstd = np.empty(c, x.dtype), np.empty(c, x.dtype)
    for name, r in (("running_mean", running_mean), ("running_var", running_var)):
        if r is not None and (r.dtype != x.dtype or r.shape != (c,) or not r.flags["C_CONTIGUOUS"]):
            raise ValueError(f"{name} must be a contiguous ({c},) array of x's dtype (it is updated in place)")
    _check(library().bn_batch_norm_forward_training(
        ctypes.byref(desc), _ptr(x), _ptr(y), _ptr(_vector(gamma, x.dtype, c, "gamma")), _ptr(_vector(beta, x.dtype, c, "beta")),
        _ptr(running_mean), _ptr(running_var), momentum, eps, _ptr(mean), _ptr(invstd)))
    return y, mean, invstd


def batch_norm_forward_inference(x, gamma, beta, running_mean, running_var, eps=1e-5, layout="NCHW"):
    desc, c, _ = _describe(x, layout)
    y = np.empty_like(x)
    _check(library().bn_batch_norm_forward_inference(
        ctypes.byref(desc), _ptr(x), _ptr(y), _ptr(_vector(gamma, x.dtype, c, "gamma")), _ptr(_vector(beta, x.dtype, c, "beta")),
        _ptr(_vector(running_mean, x.dtype, c, "running_mean")), _ptr(_vector(running_var, x.dtype, c, "running_var")), eps))
    return y


def batch_norm_backward(x, dy, gamma, save_mean, save_invstd, layout="NCHW"):
    """Returns (dx, dgamma, dbeta)."""
    desc, c, _ = _describe(x, layout)
    dy = np.ascontiguousarray(dy, dtype=x.dtype)
    dx, dgamma, dbeta = np.empty_like(x), np.empty(c, x.dtype), np.empty(c, x.dtype)
    _check(library().bn_batch_norm_backward(
        ctypes.byref(desc), _ptr(x), _ptr(dy), _ptr(dx), _ptr(_vector(gamma, x.dtype, c, "gamma")),
        _ptr(_vector(save_mean, x.dtype, c, "save_mean")), _ptr(_vector(save_invstd, x.dtype, c, "save_invstd")), _ptr(dgamma), _ptr(dbeta)))
    return dx, dgamma, dbeta


def batch_norm_backward_inference(x, dy, gamma, running_mean, running_var, eps=1e-5, layout="NCHW"):
    desc, c, _ = _describe(x, layout)
    dy = np.ascontiguousarray(dy, dtype=x.dtype)
    dx, dgamma, dbeta = np.empty_like(x), np.empty(c, x.dtype), np.empty(c, x.dtype)
    _check(library().bn_batch_norm_backward_inference(
        ctypes.byref(desc), _ptr(x), _ptr(dy), _ptr(dx), _ptr(_vector(gamma, x.dtype, c, "gamma")),
        _ptr(_vector(running_mean, x.dtype, c, "running_mean")), _ptr(_vector(running_var, x.dtype, c, "running_var")), eps,
        _ptr(dgamma), _ptr(dbeta)))
    return dx, dgamma, dbeta


def batch_renorm_forward_training(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5,
                                  rmax=3.0, dmax=5.0, layout="NCHW"):
    """Returns (y, save_mean, save_invstd, r, d); running statistics are updated in place."""
    desc, c, _ = _describe(x, layout)
    y = np.empty_like(x)
    out = [np.empty(c, x.dtype) for _ in range(4)]
    _check(library().bn_batch_renorm_forward_training(
        ctypes.byref(desc), _ptr(x), _ptr(y), _ptr(_vector(gamma, x.dtype, c, "gamma")), _ptr(_vector(beta, x.dtype, c, "beta")),
        _ptr(running_mean), _ptr(running_var), momentum, eps, rmax, dmax, *[_ptr(o) for o in out]))
    return (y, *out)


def batch_renorm_backward(x, dy, gamma, save_mean, save_invstd, r, d, layout="NCHW"):
    desc, c, _ = _describe(x, layout)
    dy = np.ascontiguousarray(dy, dtype=x.dtype)
    dx, dgamma, dbeta = np.empty_like(x), np.empty(c, x.dtype), np.empty(c, x.dtype)
    _check(library().bn_batch_renorm_backward(
        ctypes.byref(desc), _ptr(x), _ptr(dy), _ptr(dx), _ptr(_vector(gamma, x.dtype, c, "gamma")),
        _ptr(_vector(save_mean, x.dtype, c, "save_mean")), _ptr(_vector(save_invstd, x.dtype, c, "save_invstd")),
        _ptr(_vector(r, x.dtype, c, "r")), _ptr(_vector(d, x.dtype, c, "d")), _ptr(dgamma), _ptr(dbeta)))
    return dx, dgamma, dbeta


def layer_norm_forward(x, gamma=None, beta=None, eps=1e-5, layout="NC"):
    """LayerNorm over the channel axis of the layout. Returns (y, save_mean, save_invstd), the last two per position."""
    desc, c, positions = _describe(x, layout)
    y, mean, invstd = np.empty_like(x), np.empty(positions, x.dtype), np.empty(positions, x.dtype)
    _check(library().bn_layer_norm_forward(
        ctypes.byref(desc), _ptr(x), _ptr(y), _ptr(_vector(gamma, x.dtype, c, "gamma")), _ptr(_vector(beta, x.dtype, c, "beta")),
        eps, _ptr(mean), _ptr(invstd)))
    return y, mean, invstd


def layer_norm_backward(x, dy, gamma, save_mean, save_invstd, layout="NC"):
    desc, c, positions = _describe(x, layout)
    dy = np.ascontiguousarray(dy, dtype=x.dtype)
    dx, dgamma, dbeta = np.empty_like(x), np.empty(c, x.dtype), np.empty(c, x.dtype)
    _check(library().bn_layer_norm_backward(
        ctypes.byref(desc), _ptr(x), _ptr(dy), _ptr(dx), _ptr(_vector(gamma, x.dtype, c, "gamma")),
        _ptr(_vector(save_mean, x.dtype, positions, "save_mean")), _ptr(_vector(save_invstd, x.dtype, positions, "save_invstd")),
        _ptr(dgamma), _ptr(dbeta)))
    return dx, dgamma, dbeta
