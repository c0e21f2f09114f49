"""PyTorch integration: autograd Functions and nn.Module drop-ins over libbnnative.

``BatchNorm1d/2d/3d`` and ``LayerNorm`` subclass PyTorch's own modules, so their constructors, ``state_dict``
keys (weight, bias, running_mean, running_var, num_batches_tracked), ``momentum=None`` (cumulative average),
``affine=False``, ``track_running_stats=False`` and train/eval behave as PyTorch's; only ``forward`` runs
libbnnative. ``BatchRenorm1d/2d`` add Batch Renormalization (Ioffe 2017) with the same state. Tensors are passed
without copies when they are CPU float32/float64/float16/bfloat16 (16-bit inputs with float32 weights and
statistics, as mixed precision keeps them) and contiguous, or ``torch.channels_last`` (read as NHWC);
other strides are made contiguous first (a copy). ``replace_batchnorm(model)`` swaps a model's BatchNorm
modules for these, state and mode kept. ``SyncBatchNorm`` (and ``convert_sync_batchnorm``) is synchronized BatchNorm on CPU
over any ``torch.distributed`` process group (gloo): each process's partial statistics and gradient sums are
all-gathered and merged in rank order by the library, so every process normalizes with the statistics of the whole
batch, bitwise the same on every process and from run to run. Gradients are the library's backward kernels (``torch.autograd.gradcheck``
passes on them in float64).
"""
import ctypes
from typing import Optional

import torch
from torch import nn

from . import _abi
from ._native import Desc, library

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "BatchRenorm1d", "BatchRenorm2d", "LayerNorm",
           "batch_norm", "batch_renorm", "layer_norm", "replace_batchnorm", "BatchNormFunction",
           "BatchRenormFunction", "LayerNormFunction", "SyncBatchNorm", "SyncBatchNormFunction", "convert_sync_batchnorm"]

_DTYPES = {torch.float32: _abi.DTYPES["F32"], torch.float64: _abi.DTYPES["F64"],
           torch.float16: _abi.DTYPES["F16"], torch.bfloat16: _abi.DTYPES["BF16"]}


# Weights, biases, running and saved statistics beside an input of each dtype: its own for float32 and float64,
# float32 for float16 and bfloat16 (mixed precision: the library computes those in float32).
_PARAMETER_DTYPES = {torch.float32: torch.float32, torch.float64: torch.float64,
                     torch.float16: torch.float32, torch.bfloat16: torch.float32}
_NC, _NCHW, _NHWC = _abi.LAYOUTS["NC"], _abi.LAYOUTS["NCHW"], _abi.LAYOUTS["NHWC"]
_byref = ctypes.byref


def _layout(x: torch.Tensor):
    """(layout, n, c, h, w) of a batch of channels: contiguous (N, C, ...) or channels-last; None otherwise."""
    shape, dim = x.shape, x.dim()
    if x.is_contiguous():
        if dim == 2:
            return _NC, shape[0], shape[1], 1, 1
        if dim == 3:
            return _NCHW, shape[0], shape[1], 1, shape[2]
        if dim == 4:
            return _NCHW, shape[0], shape[1], shape[2], shape[3]
        if dim == 5:
            return _NCHW, shape[0], shape[1], shape[2] * shape[3], shape[4]
    if dim == 4 and x.is_contiguous(memory_format=torch.channels_last):
        return _NHWC, shape[0], shape[1], shape[2], shape[3]
    if dim == 5 and x.is_contiguous(memory_format=torch.channels_last_3d):
        return _NHWC, shape[0], shape[1], shape[2] * shape[3], shape[4]
    return None


def _prepared(x: torch.Tensor, name: str = "input"):
    """x as the library can read it, and its descriptor: a clear error for what it cannot take."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (got {type(x).__name__})")
    if x.device.type != "cpu":
        raise TypeError(f"{name} is on {x.device}; bnnative runs on CPU tensors")
    if x.dtype not in _DTYPES:
        raise TypeError(f"{name} has dtype {x.dtype}; bnnative takes float32, float64, float16 and bfloat16")
    if x.dim() < 2 or x.dim() > 5:
        raise ValueError(f"{name} must have 2 to 5 dimensions (N, C, ...) (got {x.dim()})")
    found = _layout(x)
    if found is None:  # other strides: one copy, then the library reads it directly
        x = x.contiguous()
        found = _layout(x)
    layout, n, c, h, w = found
    return x, Desc(layout, _DTYPES[x.dtype], n, c, h, w), c


def _like(dy: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The incoming gradient in the memory layout of x (a copy only when its strides differ)."""
    if _layout(dy) == _layout(x):
        return dy
    if x.dim() == 4 and not x.is_contiguous():
        return dy.contiguous(memory_format=torch.channels_last)
    if x.dim() == 5 and not x.is_contiguous():
        return dy.contiguous(memory_format=torch.channels_last_3d)
    return dy.contiguous()


def _vector(name: str, v: Optional[torch.Tensor], dtype: torch.dtype, length: int) -> int:
    """The address of a per-channel vector (0 for None), checked against the parameter dtype and length."""
    if v is None:
        return 0
    # The usual case in one test (a module's own parameters and buffers); the reasons come only on failure.
    if type(v) is torch.nn.Parameter or type(v) is torch.Tensor:
        if v.dtype is dtype and v.is_cpu and v.dim() == 1 and v.shape[0] == length and v.is_contiguous():
            return v.data_ptr()
    if not isinstance(v, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or None (got {type(v).__name__})")
    if v.dtype != dtype or v.device.type != "cpu":
        raise TypeError(f"{name} is {v.dtype} on {v.device}; it must be {dtype} on cpu (the input's dtype, float32 beside 16-bit inputs)")
    if v.shape != (length,):
        raise ValueError(f"{name} has shape {tuple(v.shape)}; it must be ({length},)")
    if not v.is_contiguous():
        raise ValueError(f"{name} must be contiguous")
    return v.data_ptr()


def _address(t: Optional[torch.Tensor]) -> int:
    return 0 if t is None else t.data_ptr()


def _gradient_buffers(ctx, x: torch.Tensor, weight: Optional[torch.Tensor], channels: int):
    """dx, dgamma and dbeta to write, each None when autograd does not want it."""
    dx = torch.empty_like(x) if ctx.needs_input_grad[0] else None
    dgamma = x.new_empty(channels, dtype=_PARAMETER_DTYPES[x.dtype]) if weight is not None and ctx.needs_input_grad[1] else None
    dbeta = x.new_empty(channels, dtype=_PARAMETER_DTYPES[x.dtype]) if ctx.needs_input_grad[2] else None
    return dx, dgamma, dbeta


_bound = {}


def _call(function: str, *arguments) -> None:
    entry = _bound.get(function)
    if entry is None:
        entry = _bound[function] = getattr(library(), function)
    status = entry(*arguments)
    if status != 0:
        from . import BnError
        raise BnError(function, status, library().bn_last_error_message().decode())


class BatchNormFunction(torch.autograd.Function):
    """Batch Normalization with libbnnative's forward and backward: training (batch statistics, running ones
    updated in place) or inference (running statistics, frozen in the backward)."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training: bool, momentum: float, eps: float):
        x, desc, c = _prepared(x)
        p = _PARAMETER_DTYPES[x.dtype]
        w, b = _vector("weight", weight, p, c), _vector("bias", bias, p, c)
        rm, rv = _vector("running_mean", running_mean, p, c), _vector("running_var", running_var, p, c)
        y = torch.empty_like(x)
        if training:
            saved = x.new_empty(2, c, dtype=p)  # mean and invstd in one allocation
            address = saved.data_ptr()
            _call("bn_batch_norm_forward_training", _byref(desc), x.data_ptr(), y.data_ptr(), w, b, rm, rv,
                  momentum, eps, address, address + c * saved.element_size())
            mean, invstd = saved.unbind(0)
            ctx.save_for_backward(x, weight, mean, invstd)
        else:
            if not rm or not rv:
                raise ValueError("inference needs running_mean and running_var")
            _call("bn_batch_norm_forward_inference", _byref(desc), x.data_ptr(), y.data_ptr(), w, b, rm, rv, eps)
            ctx.save_for_backward(x, weight, running_mean, running_var)
        ctx.desc, ctx.training, ctx.eps = desc, training, eps
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight, first, second = ctx.saved_tensors
        dy = _like(dy, x)
        dx, dgamma, dbeta = _gradient_buffers(ctx, x, weight, first.shape[0])
        if ctx.training:
            _call("bn_batch_norm_backward", _byref(ctx.desc), x.data_ptr(), dy.data_ptr(), _address(dx), _address(weight),
                  first.data_ptr(), second.data_ptr(), _address(dgamma), _address(dbeta))
        else:
            _call("bn_batch_norm_backward_inference", _byref(ctx.desc), x.data_ptr(), dy.data_ptr(), _address(dx),
                  _address(weight), first.data_ptr(), second.data_ptr(), ctx.eps, _address(dgamma), _address(dbeta))
        return dx, dgamma, dbeta, None, None, None, None, None


class BatchRenormFunction(torch.autograd.Function):
    """Batch Renormalization in training mode: r and d from the running statistics before the call (which are
    then updated in place), constants of the backward."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, momentum: float, eps: float, rmax: float, dmax: float):
        x, desc, c = _prepared(x)
        p = _PARAMETER_DTYPES[x.dtype]
        w, b = _vector("weight", weight, p, c), _vector("bias", bias, p, c)
        rm, rv = _vector("running_mean", running_mean, p, c), _vector("running_var", running_var, p, c)
        if not rm or not rv:
            raise ValueError("Batch Renormalization needs running_mean and running_var")
        y = torch.empty_like(x)
        saved = x.new_empty(4, c, dtype=p)
        mean, invstd, r, d = saved.unbind(0)
        _call("bn_batch_renorm_forward_training", _byref(desc), x.data_ptr(), y.data_ptr(), w, b, rm, rv, momentum, eps,
              rmax, dmax, mean.data_ptr(), invstd.data_ptr(), r.data_ptr(), d.data_ptr())
        ctx.save_for_backward(x, weight, saved)
        ctx.desc = desc
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight, saved = ctx.saved_tensors
        dy = _like(dy, x)
        mean, invstd, r, d = saved.unbind(0)
        dx, dgamma, dbeta = _gradient_buffers(ctx, x, weight, mean.shape[0])
        _call("bn_batch_renorm_backward", _byref(ctx.desc), x.data_ptr(), dy.data_ptr(), _address(dx), _address(weight),
              mean.data_ptr(), invstd.data_ptr(), r.data_ptr(), d.data_ptr(), _address(dgamma), _address(dbeta))
        return dx, dgamma, dbeta, None, None, None, None, None, None


class LayerNormFunction(torch.autograd.Function):
    """Layer Normalization over the last ``features`` elements of each row (the input viewed as (rows, features))."""

    @staticmethod
    def forward(ctx, x, weight, bias, features: int, eps: float):
        ctx.shape = x.shape
        x, _, _ = _prepared(x.reshape(-1, features) if x.dim() != 2 or x.shape[1] != features else x)
        rows = x.shape[0]
        desc = Desc(_NC, _DTYPES[x.dtype], rows, features, 1, 1)
        p = _PARAMETER_DTYPES[x.dtype]
        w = _vector("weight", None if weight is None else weight.reshape(-1), p, features)
        b = _vector("bias", None if bias is None else bias.reshape(-1), p, features)
        y = torch.empty_like(x)
        saved = x.new_empty(2, rows, dtype=p)
        mean, invstd = saved.unbind(0)
        _call("bn_layer_norm_forward", _byref(desc), x.data_ptr(), y.data_ptr(), w, b, eps, mean.data_ptr(), invstd.data_ptr())
        ctx.save_for_backward(x, weight, saved)
        ctx.desc = desc
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight, saved = ctx.saved_tensors
        dy = dy.reshape(x.shape).contiguous()
        mean, invstd = saved.unbind(0)
        dx, dgamma, dbeta = _gradient_buffers(ctx, x, weight, x.shape[1])
        _call("bn_layer_norm_backward", _byref(ctx.desc), x.data_ptr(), dy.data_ptr(), _address(dx),
              _address(None if weight is None else weight.reshape(-1)), mean.data_ptr(), invstd.data_ptr(),
              _address(dgamma), _address(dbeta))
        shape = None if weight is None else weight.shape
        return (None if dx is None else dx.reshape(ctx.shape), None if dgamma is None else dgamma.reshape(shape),
                None if dbeta is None else dbeta.reshape(shape), None, None)


def _all_gathered(partial: torch.Tensor, group, world: int) -> torch.Tensor:
    """Every process's partial (2·C + 1 float64 values), rows in rank order: the order the library merges them in."""
    gathered = partial.new_empty(world, partial.shape[0])
    torch.distributed.all_gather(list(gathered.unbind(0)), partial, group=group)
    return gathered


class SyncBatchNormFunction(torch.autograd.Function):
    """Batch Normalization in training over a batch split across the processes of ``group``: this process's part is
    ``x``. Forward: partial statistics (count, mean, M2 per channel) → all-gather → merge in rank order (running
    statistics updated alike on every process) → normalize. Backward: partial sums (Σdy, Σdy·(x − mean)) →
    all-gather → dx with the whole batch's sums. The parameter gradients returned are this process's own, as
    PyTorch's SyncBatchNorm returns them (DistributedDataParallel then averages them with the other processes')."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, momentum: float, eps: float, group, world: int):
        x, desc, c = _prepared(x)
        p = _PARAMETER_DTYPES[x.dtype]
        w, b = _vector("weight", weight, p, c), _vector("bias", bias, p, c)
        rm, rv = _vector("running_mean", running_mean, p, c), _vector("running_var", running_var, p, c)
        partial = torch.zeros(2 * c + 1, dtype=torch.float64)  # an empty part contributes count 0: skipped by the merge
        if x.numel():
            _call("bn_batch_norm_partial_statistics", _byref(desc), x.data_ptr(), partial.data_ptr())
        gathered = _all_gathered(partial, group, world)
        saved = x.new_empty(2, c, dtype=p)
        mean, invstd = saved.unbind(0)
        _call("bn_batch_norm_merge_statistics", desc.dtype, c, world, gathered.data_ptr(), rm, rv, momentum, eps,
              mean.data_ptr(), invstd.data_ptr())
        y = torch.empty_like(x)
        if x.numel():
            _call("bn_batch_norm_forward_with_statistics", _byref(desc), x.data_ptr(), y.data_ptr(), w, b,
                  mean.data_ptr(), invstd.data_ptr())
        ctx.save_for_backward(x, weight, saved)
        ctx.desc, ctx.group, ctx.world = desc, group, world
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight, saved = ctx.saved_tensors
        dy = _like(dy, x)
        mean, invstd = saved.unbind(0)
        c = mean.shape[0]
        partial = torch.zeros(2 * c + 1, dtype=torch.float64)
        if x.numel():
            _call("bn_batch_norm_backward_partial_sums", _byref(ctx.desc), x.data_ptr(), dy.data_ptr(), mean.data_ptr(),
                  partial.data_ptr())
        gathered = _all_gathered(partial, ctx.group, ctx.world)  # every process takes part, whatever it needs
        dx, dgamma, dbeta = _gradient_buffers(ctx, x, weight, c)
        if not x.numel():
            return (dx, None if dgamma is None else dgamma.zero_(), None if dbeta is None else dbeta.zero_(),
                    None, None, None, None, None, None)
        if dgamma is not None or dbeta is not None:  # this process's own: its partial alone
            _call("bn_batch_norm_backward_with_sums", _byref(ctx.desc), x.data_ptr(), dy.data_ptr(), None,
                  _address(weight), mean.data_ptr(), invstd.data_ptr(), 1, partial.data_ptr(), _address(dgamma),
                  _address(dbeta))
        if dx is not None:
            _call("bn_batch_norm_backward_with_sums", _byref(ctx.desc), x.data_ptr(), dy.data_ptr(), dx.data_ptr(),
                  _address(weight), mean.data_ptr(), invstd.data_ptr(), ctx.world, gathered.data_ptr(), None, None)
        return dx, dgamma, dbeta, None, None, None, None, None, None


# ---- functional forms, with torch.nn.functional's arguments ----------------------------------------------

def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """torch.nn.functional.batch_norm on libbnnative: running statistics (if given) are updated in training."""
    if not training and (running_mean is None or running_var is None):
        raise ValueError("batch_norm in inference needs running_mean and running_var")
    y = BatchNormFunction.apply(input, weight, bias, running_mean, running_var, training, momentum, eps)
    return y.reshape(input.shape) if y.shape != input.shape else y


def batch_renorm(input, running_mean, running_var, weight=None, bias=None, training=True, momentum=0.1, eps=1e-5,
                 rmax=3.0, dmax=5.0):
    """Batch Renormalization; in inference it is batch_norm with the running statistics."""
    if not training:
        return batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
    return BatchRenormFunction.apply(input, weight, bias, running_mean, running_var, momentum, eps, float(rmax), float(dmax))


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """torch.nn.functional.layer_norm on libbnnative (over the trailing normalized_shape dimensions)."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(input.shape[-len(shape):]) != shape:
        raise ValueError(f"input has shape {tuple(input.shape)}; its last dimensions must be {shape}")
    features = 1
    for size in shape:
        features *= size
    return LayerNormFunction.apply(input, weight, bias, features, eps).reshape(input.shape)


# ---- modules ---------------------------------------------------------------------------------------------

def _factor(module) -> float:
    """PyTorch's exponential_average_factor: momentum, or 1/num_batches_tracked for momentum=None; counts the batch."""
    factor = 0.0 if module.momentum is None else module.momentum
    if module.training and module.track_running_stats and module.num_batches_tracked is not None:
        module.num_batches_tracked.add_(1)
        if module.momentum is None:
            factor = 1.0 / float(module.num_batches_tracked)
    return factor


def _batch_norm_forward(module, x):
    module._check_input_dim(x)
    factor = _factor(module)
    use_batch = module.training or (module.running_mean is None and module.running_var is None)
    update = not module.training or module.track_running_stats
    return BatchNormFunction.apply(x, module.weight, module.bias, module.running_mean if update else None,
                                   module.running_var if update else None, use_batch, factor, module.eps)


class BatchNorm1d(nn.BatchNorm1d):
    """torch.nn.BatchNorm1d on libbnnative: (N, C) or (N, C, L) input."""
    forward = _batch_norm_forward


class BatchNorm2d(nn.BatchNorm2d):
    """torch.nn.BatchNorm2d on libbnnative: (N, C, H, W) input, contiguous or channels_last."""
    forward = _batch_norm_forward


class BatchNorm3d(nn.BatchNorm3d):
    """torch.nn.BatchNorm3d on libbnnative: (N, C, D, H, W) input."""
    forward = _batch_norm_forward


class _BatchRenorm(nn.modules.batchnorm._BatchNorm):
    """Batch Renormalization (Ioffe 2017): in training y = γ·(x̂·r + d) + β with r = clamp(σ_B/σ_run, 1/rmax, rmax)
    and d = clamp((μ_B − μ_run)/σ_run, −dmax, dmax) from the running statistics; in eval the running statistics,
    as BatchNorm. ``rmax`` and ``dmax`` are attributes (the paper relaxes them from 1 and 0 during training); the
    state_dict is BatchNorm's, so one loads into the other."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, rmax=3.0, dmax=5.0, device=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, True, device, dtype)
        self.rmax, self.dmax = float(rmax), float(dmax)

    def extra_repr(self):
        return super().extra_repr() + f", rmax={self.rmax}, dmax={self.dmax}"

    def forward(self, x):
        self._check_input_dim(x)
        factor = _factor(self)
        if not self.training:
            return BatchNormFunction.apply(x, self.weight, self.bias, self.running_mean, self.running_var, False, factor, self.eps)
        return BatchRenormFunction.apply(x, self.weight, self.bias, self.running_mean, self.running_var, factor, self.eps,
                                         self.rmax, self.dmax)


class BatchRenorm1d(_BatchRenorm):
    """Batch Renormalization of (N, C) or (N, C, L) input."""

    def _check_input_dim(self, x):
        if x.dim() not in (2, 3):
            raise ValueError(f"expected 2D or 3D input (got {x.dim()}D input)")


class BatchRenorm2d(_BatchRenorm):
    """Batch Renormalization of (N, C, H, W) input, contiguous or channels_last."""

    def _check_input_dim(self, x):
        if x.dim() != 4:
            raise ValueError(f"expected 4D input (got {x.dim()}D input)")


class LayerNorm(nn.LayerNorm):
    """torch.nn.LayerNorm on libbnnative (normalized over the trailing normalized_shape dimensions)."""

    def forward(self, x):
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)


class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """torch.nn.SyncBatchNorm on libbnnative, for CPU tensors: in training, with a ``torch.distributed`` process group
    of more than one process (``process_group``, or the default group), the statistics are those of the whole batch
    across the group's processes (see SyncBatchNormFunction); every process of the group must call it with the same
    number of channels, the batch sizes may differ (even be 0). With no initialized group, a group of one, or in
    eval mode it is bnnative's BatchNorm. Same constructor and state_dict as torch's; (N, C, ...) input of 2 to 5
    dimensions. It is not a subclass of torch.nn.SyncBatchNorm: DistributedDataParallel refuses those on CPU.
    A bad input (wrong channels, dtype, device) raises on its process before anything is exchanged; the other
    processes then wait in the exchange until the group's timeout, as with any collective."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, process_group=None,
                 device=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.process_group = process_group

    def _check_input_dim(self, x):
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x):
        self._check_input_dim(x)
        factor = _factor(self)
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        update = not self.training or self.track_running_stats
        running_mean = self.running_mean if update else None
        running_var = self.running_var if update else None
        group = self.process_group
        if use_batch and torch.distributed.is_available() and torch.distributed.is_initialized():
            if group is None:
                group = torch.distributed.group.WORLD
            world = torch.distributed.get_world_size(group)
            if world > 1:
                return SyncBatchNormFunction.apply(x, self.weight, self.bias, running_mean, running_var, factor, self.eps,
                                                   group, world)
        return BatchNormFunction.apply(x, self.weight, self.bias, running_mean, running_var, use_batch, factor, self.eps)


def _rebuilt(model: nn.Module, kind, **arguments) -> nn.Module:
    """A new ``kind`` module with a BatchNorm's arguments, parameters, buffers, mode and requires_grad."""
    new = kind(model.num_features, model.eps, model.momentum, model.affine, model.track_running_stats, **arguments,
               device=model.running_mean.device if model.running_mean is not None else None,
               dtype=(model.weight if model.affine else model.running_mean).dtype
               if (model.affine or model.running_mean is not None) else None)
    new.load_state_dict(model.state_dict())
    if model.affine:
        new.weight.requires_grad_(model.weight.requires_grad)
        new.bias.requires_grad_(model.bias.requires_grad)
    new.train(model.training)
    return new


def convert_sync_batchnorm(module: nn.Module, process_group=None) -> nn.Module:
    """As torch.nn.SyncBatchNorm.convert_sync_batchnorm, for CPU training: every BatchNorm1d/2d/3d (PyTorch's,
    bnnative's or a SyncBatchNorm) in ``module`` becomes a bnnative SyncBatchNorm over ``process_group`` (None: the
    default group), state and mode kept; returns the converted module (a bare BatchNorm is returned converted).
    Batch Renormalization modules are left as they are."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, _BatchRenorm):
        return _rebuilt(module, SyncBatchNorm, process_group=process_group)
    for name, child in module.named_children():
        converted = convert_sync_batchnorm(child, process_group)
        if converted is not child:
            setattr(module, name, converted)
    return module


_REPLACEMENTS = {nn.BatchNorm1d: BatchNorm1d, nn.BatchNorm2d: BatchNorm2d, nn.BatchNorm3d: BatchNorm3d}


def replace_batchnorm(model: nn.Module) -> nn.Module:
    """Replaces every torch.nn.BatchNorm1d/2d/3d in ``model`` (in place) by bnnative's, with the same arguments,
    parameters, buffers, train/eval mode and requires_grad; returns ``model`` (or the replacement of a bare BatchNorm)."""
    replacement = _REPLACEMENTS.get(type(model))
    if replacement is not None:
        return _rebuilt(model, replacement)
    for name, child in model.named_children():
        replaced = replace_batchnorm(child)
        if replaced is not child:
            setattr(model, name, replaced)
    return model
