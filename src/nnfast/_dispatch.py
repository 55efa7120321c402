"""The one place that decides which implementation runs each operation.

The native modules (``nnfast.util``, ``nnfast.layers``, ...) never import
``_kernels`` themselves: they take their ops from here. For each op this
module binds either the compiled kernel (wrapped with argument checks, dtype
handling and output allocation) or the ``nnfast.reference`` function.
Adding a kernel is a local change: write ``_compiled_<op>`` and list it in
``_COMPILED``.

The compiled extension is skipped (everything runs on the reference) when it
cannot be loaded — with one warning saying why — or when the environment sets
``NNFAST_BACKEND=reference``.
"""
from __future__ import annotations

import functools
import os
import threading
import warnings
from typing import Any, Callable, Optional, Sequence, Tuple

import numpy as np
import numpy.typing as npt

from . import _checks
from . import _fallback
from ._blas import matmul as matmul  # re-exported: the layers call _dispatch.matmul
from . import _blas
from ._threads import get_num_threads
from .reference import functions as _ref_functions
from .reference import util as _ref_util

_kernels = None
_load_error = None
if os.environ.get("NNFAST_BACKEND", "").strip().lower() == "reference":
    _load_error = "disabled by NNFAST_BACKEND=reference"
else:
    try:
        from . import _kernels
        from ._threads import register_with_threadpoolctl

        register_with_threadpoolctl()
    except ImportError as exc:  # a broken or missing build: run, slowly, and say so
        _load_error = f"{type(exc).__name__}: {exc}"
        warnings.warn(
            "nnfast: the compiled extension could not be loaded; every op falls back "
            f"to the NumPy reference (slow). Reason: {_load_error}",
            RuntimeWarning,
            stacklevel=2,
        )


kernel_input = _checks.kernel_input  # (the layers and nnfast.ops use it too)


def _compiled_im2col(x, filter_h, filter_w, stride=1, pad=0, out=None):
    x, fh, fw, stride, pad, OH, OW = _ref_util.check_im2col_args(x, filter_h, filter_w,
                                                                 stride, pad)
    x = kernel_input(x, "im2col", "x")
    N, C = x.shape[:2]
    shape = (N * OH * OW, C * fh * fw)
    out = _output(out, shape, x.dtype, "im2col")
    _kernels.im2col(x, fh, fw, stride, pad, out, get_num_threads())
    return out


def _compiled_col2im(col, input_shape, filter_h, filter_w, stride=1, pad=0, out=None):
    col, shape, fh, fw, stride, pad, _, _ = _ref_util.check_col2im_args(
        col, input_shape, filter_h, filter_w, stride, pad)
    col = kernel_input(col, "col2im", "col")
    out = _output(out, shape, col.dtype, "col2im")
    _kernels.col2im(col, out, fh, fw, stride, pad, get_num_threads())
    return out


def _output(out, shape, dtype, where):
    """A fresh (shape, dtype) array, or ``out`` after checking it can be written as one."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    _check_out(out, shape, dtype, where)
    return out


_check_out = _checks.check_out


# ---- convolution and pooling (layers.Convolution, Pooling, AvgPooling) ----------------
# Arguments arrive validated by the layer (4-D float arrays, ints, a window that fits).
# ``work`` is a dict owned by the layer: reusable scratch buffers live there, and nothing
# stored in it is ever returned to the caller except ``col`` (the layer takes it out of
# ``work`` before handing it to a user). Every returned out/dx/dW/db is a fresh array.

def _scratch(work, key, shape, dtype):
    """``work[key]`` if it has this shape and dtype, else a new buffer stored there."""
    buf = work.get(key) if work is not None else None
    if buf is None or buf.shape != shape or buf.dtype != dtype:
        buf = np.empty(shape, dtype=dtype)
        if work is not None:
            work[key] = buf
    return buf


_transient = threading.local()


def _transient_buffer(name, shape, dtype):
    """A scratch array for a value that dies within one call (e.g. dcol in conv backward).

    Backed by one growing per-thread byte buffer per ``name``, shared by every layer, so
    the large transients of a deep net are allocated once instead of at every call: a
    fresh multi-megabyte array costs page faults and kernel zeroing (measured here: ~40 ms
    of system time per DeepConvNet step). Never hand the result to the caller.
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    pool = getattr(_transient, "pool", None)
    if pool is None:
        pool = _transient.pool = {}
    buf = pool.get(name)
    if buf is None or buf.size < nbytes:
        buf = pool[name] = np.empty(max(nbytes, 1), dtype=np.uint8)
    return buf[:nbytes].view(dtype).reshape(shape)


def release_buffers():
    """Free this thread's transient scratch buffers (they regrow on the next call)."""
    getattr(_transient, "pool", {}).clear()


def _out_hw(h, w, fh, fw, stride, pad):
    return (h + 2 * pad - fh) // stride + 1, (w + 2 * pad - fw) // stride + 1


# Direct convolutions (no columns; vector code chosen at run time) run a convolution when
# the CPU has a vector path for them (AVX2+FMA or AVX-512; the baseline builds lose to
# im2col + OpenBLAS). NNFAST_DIRECT_CONV=0 turns them off. Two kernel families:
# csrc/bconv.c ("channels": vector lanes over output channels; any stride) and the older
# csrc/dconv.c ("planes": lanes over a padded plane's positions; stride 1), which stays
# for layers with few products per output (a first layer's single channel: there the
# channel-lane kernels spend more on their transposes than on the products).
_ISA_LEVELS = ("baseline", "avx2", "avx512")


def _isa_cap(best, env):
    """The vector build the convolution kernels run: the CPU's best, capped by
    NNFAST_ISA=baseline|avx2|avx512 (read once, at import; an unknown value warns and is
    ignored)."""
    env = env.strip().lower()
    if not env:
        return best
    if env not in _ISA_LEVELS:
        warnings.warn(f"nnfast: NNFAST_ISA must be one of {', '.join(_ISA_LEVELS)}, got "
                      f"{env!r}; ignored", RuntimeWarning, stacklevel=3)
        return best
    return _ISA_LEVELS[min(_ISA_LEVELS.index(env), _ISA_LEVELS.index(best))]


_ISA_ENV = os.environ.get("NNFAST_ISA", "")
# None without the extension, or in a build without the direct kernels (MSVC)
_DCONV_ISA = (_isa_cap(_kernels.dconv_isa(), _ISA_ENV)
              if _kernels is not None and _kernels.dconv_built() else None)
# The element-wise families (activations, dropout, softmax + cross-entropy, batch norm,
# pooling, optimizers, bias adds) have one build per ISA too (csrc/isa.h), all giving the
# same bits; the same NNFAST_ISA cap picks theirs, once, here.
_ELTWISE_ISA = (_kernels.isa_select(_isa_cap(
    _kernels.cpu_isa(), _ISA_ENV if _ISA_ENV.strip().lower() in _ISA_LEVELS else ""))
    if _kernels is not None else None)
_DIRECT_CONV = (_DCONV_ISA in ("avx2", "avx512")
                and os.environ.get("NNFAST_DIRECT_CONV", "1").strip() != "0")
# products per output (C*FH*FW) and output channels from which the channel-lane kernels
# run a layer (with fewer output channels most of their vector lanes would be padding: a
# 1-channel input gradient, SimpleConvNet's dx, ran 2x slower than on the plane kernels)
_CHANNELS_MIN_TAPS = 32
_CHANNELS_MIN_FILTERS = 8


@functools.lru_cache(maxsize=1024)
def _conv_plan_cached(enabled, c, fn, fh, fw, stride, p):
    if not enabled:
        return "columns"
    if c * fh * fw >= _CHANNELS_MIN_TAPS and fn >= _CHANNELS_MIN_FILTERS:
        return "channels"
    if stride == 1 and p >= _PLANAR_MIN_POSITIONS:
        return "planes"
    return "columns"


def conv_plan(c, fn, fh, fw, stride, p):
    """How a convolution with these channels, filters, stride and p output positions per
    image runs: "channels" (csrc/bconv.c), "planes" (csrc/dconv.c) or "columns" (im2col +
    numpy.matmul). Decided once per geometry."""
    return _conv_plan_cached(_DIRECT_CONV, c, fn, fh, fw, stride, p)


class ConvPlan(tuple):
    """How one convolution geometry runs: ``method`` for the forward and the filter
    gradient, ``dx_method`` for the input gradient (the convolution of dout by the flipped
    filters); each "channels", "planes" or "columns" (see ``conv_plan``). A layer makes
    one when its geometry changes (``plan_conv``) and keeps it."""

    __slots__ = ()

    def __new__(cls, method, dx_method):
        return tuple.__new__(cls, (method, dx_method))

    method = property(lambda self: self[0])
    dx_method = property(lambda self: self[1])

    def __repr__(self):
        return f"ConvPlan(method={self[0]!r}, dx_method={self[1]!r})"


def _direct(n, c, fn, stride, p, fh, fw):
    """Whether a direct kernel (no columns) runs this convolution."""
    return n >= 1 and conv_plan(c, fn, fh, fw, stride, p) != "columns"


def plan_conv(x_shape: Sequence[int], w_shape: Sequence[int], stride: int,
              pad: int) -> ConvPlan:
    """The ConvPlan of a convolution of x (N, C, H, W) by W (FN, C, FH, FW)."""
    return _plan_conv_cached(_DIRECT_CONV, tuple(x_shape[1:]), tuple(w_shape), stride, pad)


@functools.lru_cache(maxsize=1024)
def _plan_conv_cached(enabled, chw, w_shape, stride, pad):  # (enabled: conv_plan reads it)
    c, h, w = chw
    fn, _, fh, fw = w_shape
    oh, ow = _out_hw(h, w, fh, fw, stride, pad)
    return ConvPlan(conv_plan(c, fn, fh, fw, stride, oh * ow),
                    conv_plan(fn, c, fh, fw, 1, h * w))


# A convolution with at least this many output positions per image runs on the planar
# columns (N, K, P) rather than the rows (N*P, K). Planar: per image, W2 @ cols[n] is
# already NCHW (no transposing epilogue) and im2col copies whole output rows. Rows: one
# (N*P, K) @ (K, FN) GEMM, which OpenBLAS runs faster when P is small (DeepConvNet's
# 7x7 layers).
_PLANAR_MIN_POSITIONS = 128


def _compiled_conv2d_forward(x, W, b, stride, pad, work=None, plan=None, out=None):
    """(out (N, FN, OH, OW), cols) for conv2d_backward.

    cols is None (a direct 1x1 filter), the reference's col (N*OH*OW, C*FH*FW), or the
    planar columns (N, C*FH*FW, OH*OW).
    """
    x = kernel_input(x, "Convolution.forward", "x")
    W = kernel_input(W, "Convolution.forward", "W")
    n, c, h, w = x.shape
    fn, _, fh, fw = W.shape
    oh, ow = _out_hw(h, w, fh, fw, stride, pad)
    p, k = oh * ow, c * fh * fw
    if plan is None:
        plan = plan_conv(x.shape, W.shape, stride, pad)
    dt = np.result_type(x.dtype, W.dtype, b.dtype)
    W2 = W.reshape(fn, k)
    out = _output(out, (n, fn, oh, ow), dt, "conv2d")
    if fh == fw == 1 and stride == 1 and pad == 0 and plan.method != "channels":
        # out[n] = W2 @ x[n]: no im2col, no transpose
        matmul(W2, x.reshape(n, c, p), out=out.reshape(n, fn, p))
        out += np.asarray(b, dtype=dt).reshape(fn, 1, 1)
        return out, None
    nt = get_num_threads()
    bias = kernel_input(np.asarray(b, dtype=dt), "Convolution.forward", "b")
    # (mixed dtypes take the columns: their GEMM multiplies in x's and W's dtype and adds
    # a wider bias after, as the reference does)
    if n >= 1 and x.dtype == W.dtype == dt and _direct_forward(x, W, bias, stride, pad, out,
                                                               None, nt, plan):
        return out, None
    if p >= _PLANAR_MIN_POSITIONS:
        cols = _scratch(work, "col", (n, k, p), x.dtype)
        _kernels.im2col_planar(x, fh, fw, stride, pad, cols, nt)
        out3 = out.reshape(n, fn, p)
        matmul(W2, cols, out=out3)
        _kernels.conv_bias_planar(out3, bias, nt)
        return out, cols
    nt = get_num_threads()
    col = _scratch(work, "col", (n * p, k), x.dtype)
    _kernels.im2col(x, fh, fw, stride, pad, col, nt)
    rows = _scratch(work, "rows", (n * p, fn), dt)
    matmul(col, W2.T, out=rows)
    _kernels.conv_bias_nchw(rows, bias, out.reshape(n, fn, p), nt)
    return out, col


def conv2d_columns(x, fh, fw, stride, pad, plan):
    """The columns ``conv2d_forward`` keeps for the backward pass of this geometry (None
    where it keeps none), for a caller that did not keep them (``nnfast.ops``); x and the
    filters share x's dtype. Without the kernels: None (the NumPy backward builds its own)."""
    if _kernels is None:
        return None
    n, c, h, w = x.shape
    oh, ow = _out_hw(h, w, fh, fw, stride, pad)
    p, k = oh * ow, c * fh * fw
    one_by_one = fh == fw == 1 and stride == 1 and pad == 0
    if one_by_one and plan.method != "channels":
        return None
    if n >= 1 and (plan.method == "channels" or (plan.method == "planes" and not
                                                 (fh == fw == 1 and pad == 0))):
        return None
    nt = get_num_threads()
    if p >= _PLANAR_MIN_POSITIONS:
        cols = np.empty((n, k, p), dtype=x.dtype)
        _kernels.im2col_planar(x, fh, fw, stride, pad, cols, nt)
        return cols
    col = np.empty((n * p, k), dtype=x.dtype)
    _kernels.im2col(x, fh, fw, stride, pad, col, nt)
    return col


def _compiled_conv2d_backward(dout, x, col, W, stride, pad, need_dx=True, work=None,
                              plan=None, dw_out=None, db_out=None):
    """(dx or None, dW, db) for the forward that read ``x`` and produced ``col`` (its cols).

    Dtypes follow the reference's NumPy promotion: db has dout's, dW (x, dout)'s, dx
    (dout, W)'s; everything is computed in the widest of them. ``dw_out``/``db_out``
    (C-contiguous, of W's/(FN,) shape): written and returned as dW/db when their dtype is
    the computation's (the filter-gradient kernels write dW there directly), else None.
    """
    where = "Convolution.backward"
    dout = kernel_input(dout, where, "dout")
    W = kernel_input(W, where, "W")
    n, c, h, w = x.shape
    fn, _, fh, fw = W.shape
    _, _, oh, ow = dout.shape
    p, k = oh * ow, c * fh * fw
    dt = np.result_type(dout.dtype, x.dtype, W.dtype)
    dout3 = dout.astype(dt, copy=False).reshape(n, fn, p)
    W2 = W.reshape(fn, k)
    nt = get_num_threads()
    partial = _scratch(work, "partial", (n, fn), np.float64)
    if dw_out is not None and dw_out.dtype != dt:
        dw_out = None
    db = db_out if db_out is not None and db_out.dtype == dt else np.empty(fn, dtype=dt)
    dx = None
    if plan is None:
        plan = plan_conv(x.shape, W.shape, stride, pad)
    if col is None and (plan.method == "channels"
                        or not (fh == fw == 1 and stride == 1 and pad == 0)):
        # the forward ran a direct convolution and kept no columns
        dW, dx = _direct_backward(dout.astype(dt, copy=False), kernel_input(x, where, "x"),
                                  W.astype(dt, copy=False), stride, pad, need_dx, nt, db,
                                  partial, plan, dw_out)
    elif col is None:  # the direct 1x1 path: dW = sum_n dout[n] @ x[n].T, dx[n] = W2.T @ dout[n]
        _kernels.conv_db(dout3, db, partial, nt)
        x = kernel_input(x, where, "x")
        per_image = _scratch(work, "dW_images", (n, fn, c), dt)
        matmul(dout3, x.reshape(n, c, p).transpose(0, 2, 1), out=per_image)
        dW = per_image.sum(axis=0).reshape(W.shape)
        if need_dx:
            dx = np.empty((n, c, h, w), dtype=dt)
            matmul(W2.T, dout3, out=dx.reshape(n, c, p))
    elif col.ndim == 3:  # planar: dW = sum_n dout[n] @ cols[n].T, dcols[n] = W2.T @ dout[n]
        if k >= 64:
            # dW.T = sum_n cols[n] @ dout[n].T with dout first transposed into rows: OpenBLAS
            # runs (K, P) @ (P, FN) on C-ordered operands ~1.5x faster than dout[n] @ cols[n].T
            # (DeepConvNet's layers); for a small K (a first layer) the transposition costs more.
            rows = _transient_buffer("dout_rows", (n, p, fn), dt)
            _kernels.conv_bwd_rows_db(dout3, rows.reshape(n * p, fn), db, partial, nt)
            per_image = _transient_buffer("dW_images", (n, k, fn), dt)
            matmul(col, rows, out=per_image)
            dW = np.ascontiguousarray(per_image.sum(axis=0).T).reshape(W.shape)
        else:
            _kernels.conv_db(dout3, db, partial, nt)
            per_image = _transient_buffer("dW_images", (n, fn, k), dt)
            matmul(dout3, col.transpose(0, 2, 1), out=per_image)
            dW = per_image.sum(axis=0).reshape(W.shape)
        if need_dx:
            dcols = _transient_buffer("dcol", (n, k, p), dt)
            matmul(W2.T, dout3, out=dcols)
            dx = np.empty((n, c, h, w), dtype=dt)
            _kernels.col2im_planar(dcols, dx, fh, fw, stride, pad, nt)
    elif k <= p:
        # Per image, straight from dout's (N, FN, P) layout: dW = sum_n dout[n] @ col[n]
        # and dcol[n] = dout[n].T @ W2. Cheaper than transposing dout into rows when the
        # per-image partials (N, FN, K) are smaller than dout (K <= P; measured faster for
        # SimpleConvNet's and DeepConvNet's first layers).
        _kernels.conv_db(dout3, db, partial, nt)
        col3 = col.reshape(n, p, k)
        per_image = _transient_buffer("dW_images", (n, fn, k), dt)
        matmul(dout3, col3, out=per_image)
        dW = per_image.sum(axis=0).reshape(W.shape)
        if need_dx:
            dcol = _transient_buffer("dcol", (n, p, k), dt)
            matmul(dout3.transpose(0, 2, 1), W2, out=dcol)
            dx = np.empty((n, c, h, w), dtype=dt)
            _kernels.col2im(dcol.reshape(n * p, k), dx, fh, fw, stride, pad, nt)
    else:
        rows = _scratch(work, "rows", (n * p, fn), dt)
        _kernels.conv_bwd_rows_db(dout3, rows, db, partial, nt)
        dW = matmul(rows.T, col).reshape(W.shape)
        if need_dx:
            # transient: kept per layer it would double the memory a deep net holds
            # (its size is col's); one per-thread buffer serves every layer instead
            dcol = matmul(rows, W2, out=_transient_buffer("dcol", (n * p, k), dt))
            dx = np.empty((n, c, h, w), dtype=dt)
            _kernels.col2im(dcol, dx, fh, fw, stride, pad, nt)
    if dx is not None:
        dx = dx.astype(np.result_type(dout.dtype, W.dtype), copy=False)
    if dw_out is not None and dW is not dw_out:
        np.copyto(dw_out, dW.reshape(dw_out.shape))
        dW = dw_out
    return dx, dW.astype(np.result_type(x.dtype, dout.dtype), copy=False), \
        db.astype(dout.dtype, copy=False)


def _compiled_conv2d_forward_relu(x, W, b, stride, pad, mask, plan=None):
    """conv2d_forward then a ReLU in the same pass, when a direct kernel runs it: (out,
    mask) as Relu.forward would leave them, writing the (N, FN, OH, OW) bool ``mask``;
    None when this convolution does not take a direct kernel."""
    n, c, h, w = x.shape
    fn, _, fh, fw = W.shape
    oh, ow = _out_hw(h, w, fh, fw, stride, pad)
    if plan is None:
        plan = plan_conv(x.shape, W.shape, stride, pad)
    if n < 1 or plan.method == "columns":
        return None
    x = kernel_input(x, "Convolution.forward", "x")
    W = kernel_input(W, "Convolution.forward", "W")
    dt = np.result_type(x.dtype, W.dtype, b.dtype)
    if not x.dtype == W.dtype == dt:  # mixed dtypes: as conv2d_forward, the columns
        return None
    bias = kernel_input(np.asarray(b, dtype=dt), "Convolution.forward", "b")
    out = np.empty((n, fn, oh, ow), dtype=dt)
    if not _direct_forward(x, W, bias, stride, pad, out, mask.view(np.uint8),
                           get_num_threads(), plan):
        return None
    return out


def _direct_forward(x, W, bias, stride, pad, out, mask, nt, plan):
    """out (and the ReLU mask unless None) by a direct kernel, all arrays in one dtype;
    False (nothing written) when the plan for this geometry is the columns."""
    n, c, h, w = x.shape
    fn, _, fh, fw = W.shape
    plan = plan.method
    dt = x.dtype
    if plan == "channels":
        size = _kernels.bconv_fwd_scratch_size(c, h, w, fn, fh, fw, stride, stride, pad, pad,
                                               nt, dt.itemsize)
        _kernels.bconv_forward(x, W, bias, stride, stride, pad, pad, out,
                               _transient_buffer("dconv", (size,), dt), nt, _DCONV_ISA, mask)
        return True
    if plan == "planes" and not (fh == fw == 1 and pad == 0):
        size = _kernels.dconv_scratch_size(c, h, w, fn, fh, fw, pad, pad, nt)
        _kernels.dconv_forward(x, W, bias, pad, pad, out,
                               _transient_buffer("dconv", (size,), dt), nt, _DCONV_ISA, mask)
        return True
    return False


def _direct_backward(dout, x, W, stride, pad, need_dx, nt, db, partial, conv, dw_out=None):
    """(dW, dx or None) of a convolution run directly, all arrays in one dtype; db is
    written (by the filter-gradient kernel, or conv_db: the same bits).

    dW by the plan's filter-gradient kernel; dx (stride 1) as the direct convolution of
    dout with the flipped, transposed filters and padding (FH-1-pad, FW-1-pad). Where
    those do not apply (W not finite: the zeros around dout would turn 0*inf into NaN;
    pad >= the filter size; a stride above 1; on the "planes" kernels also x not finite,
    for their discarded columns), the planar columns and GEMMs instead.
    """
    n, c, h, w = x.shape
    fn, _, fh, fw = W.shape
    dt = W.dtype
    oh, ow = dout.shape[2:]
    p, k = oh * ow, c * fh * fw
    x = x.astype(dt, copy=False)
    dW = np.empty(W.shape, dtype=dt) if dw_out is None else dw_out
    plan = conv.method
    if plan == "channels":
        size = _kernels.bconv_dw_scratch_size(n, c, h, w, fn, fh, fw, stride, stride, pad, pad,
                                              nt, dt.itemsize)
        _kernels.bconv_dw(x, dout, stride, stride, pad, pad, dW,
                          _transient_buffer("dconv", (size,), dt), nt, _DCONV_ISA, db)
        done = True
    else:
        # (faster than columns + GEMM for every layer measured, 1 to 64 channels, 1 and 2
        # threads: SimpleConvNet's 1-channel layer on 1 thread 1.8 against 2.2 ms in float32)
        size = _kernels.dconv_scratch_size(c, h, w, fn, fh, fw, pad, pad, nt)
        done = _kernels.dconv_dw(x, dout, pad, pad, dW, _transient_buffer("dconv", (size,), dt),
                                 nt, _DCONV_ISA, db)
    if not done:
        _kernels.conv_db(dout.reshape(n, fn, p), db, partial, nt)
        cols = _transient_buffer("dconv_cols", (n, k, p), dt)
        _kernels.im2col_planar(x, fh, fw, stride, pad, cols, nt)
        per_image = _transient_buffer("dW_images", (n, fn, k), dt)
        matmul(dout.reshape(n, fn, p), cols.transpose(0, 2, 1), out=per_image)
        np.sum(per_image, axis=0, out=dW.reshape(fn, k))
    if not need_dx:
        return dW, None
    dx = np.empty((n, c, h, w), dtype=dt)
    if stride == 1 and pad <= min(fh, fw) - 1 and np.isfinite(W).all():
        flipped = np.ascontiguousarray(W.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
        ph, pw = fh - 1 - pad, fw - 1 - pad
        if conv.dx_method == "channels":
            size = _kernels.bconv_fwd_scratch_size(fn, oh, ow, c, fh, fw, 1, 1, ph, pw, nt,
                                                   dt.itemsize)
            _kernels.bconv_forward(dout, flipped, None, 1, 1, ph, pw, dx,
                                   _transient_buffer("dconv", (size,), dt), nt, _DCONV_ISA)
        else:
            size = _kernels.dconv_scratch_size(fn, oh, ow, c, fh, fw, ph, pw, nt)
            _kernels.dconv_forward(dout, flipped, None, ph, pw, dx,
                                   _transient_buffer("dconv", (size,), dt), nt, _DCONV_ISA)
    else:
        dcols = _transient_buffer("dcol", (n, k, p), dt)
        matmul(W.reshape(fn, k).T, dout.reshape(n, fn, p), out=dcols)
        _kernels.col2im_planar(dcols, dx, fh, fw, stride, pad, nt)
    return dW, dx


def _compiled_maxpool_forward(x, pool_h, pool_w, stride, pad, out=None):
    """(out (N, C, OH, OW), argmax (N, C, OH, OW) int32 window offsets)."""
    x = kernel_input(x, "Pooling.forward", "x")
    n, c, h, w = x.shape
    oh, ow = _out_hw(h, w, pool_h, pool_w, stride, pad)
    out = _output(out, (n, c, oh, ow), x.dtype, "max_pool2d")
    argmax = np.empty((n, c, oh, ow), dtype=np.int32)
    _kernels.maxpool_forward(x, pool_h, pool_w, stride, pad, out, argmax, get_num_threads())
    return out, argmax


def _compiled_maxpool_backward(dout, argmax, x_shape, pool_h, pool_w, stride, pad,
                               relu_mask=None):
    """dx; with relu_mask (a bool array of x's shape), the backward of a ReLU before the
    pooling too: 0 where the mask is set."""
    dout = kernel_input(dout, "Pooling.backward", "dout")
    argmax = np.ascontiguousarray(argmax, dtype=np.int32)
    dx = np.empty(x_shape, dtype=dout.dtype)
    if relu_mask is not None:
        relu_mask = np.ascontiguousarray(relu_mask, dtype=np.bool_).view(np.uint8)
    _kernels.maxpool_backward(dout, argmax, dx, pool_h, pool_w, stride, pad, get_num_threads(),
                              relu_mask)
    return dx


def _compiled_avgpool_forward(x, pool_h, pool_w, stride, pad, out=None):
    x = kernel_input(x, "AvgPooling.forward", "x")
    n, c, h, w = x.shape
    oh, ow = _out_hw(h, w, pool_h, pool_w, stride, pad)
    out = _output(out, (n, c, oh, ow), x.dtype, "avg_pool2d")
    _kernels.avgpool_forward(x, pool_h, pool_w, stride, pad, out, get_num_threads())
    return out


def _compiled_avgpool_backward(dout, x_shape, pool_h, pool_w, stride, pad):
    dout = kernel_input(dout, "AvgPooling.backward", "dout")
    dx = np.empty(x_shape, dtype=dout.dtype)
    _kernels.avgpool_backward(dout, dx, pool_h, pool_w, stride, pad, get_num_threads())
    return dx


# op name -> (compiled implementation, reference implementation)
_COMPILED = {
    "im2col": (_compiled_im2col, _ref_util.im2col),
    "col2im": (_compiled_col2im, _ref_util.col2im),
}


def _choose(name):
    compiled, reference = _COMPILED[name]
    return compiled if _kernels is not None and compiled is not None else reference


# The public functions bound below are typed as the reference's (same arguments, same
# results; the compiled im2col/col2im also take ``out=``).
_Unary = Callable[[npt.ArrayLike], npt.NDArray[np.floating[Any]]]
_Loss = Callable[[npt.ArrayLike, npt.ArrayLike], np.floating[Any]]

im2col: Callable[..., npt.NDArray[Any]] = _choose("im2col")
col2im: Callable[..., npt.NDArray[Any]] = _choose("col2im")
# The layers (Convolution, Pooling, AvgPooling) and nnfast.ops call these; without the
# kernels they run the reference's NumPy arithmetic (nnfast._fallback), op by op.
_COMPILED.update({
    "conv2d_forward": (_compiled_conv2d_forward, _fallback.conv2d_forward),
    "conv2d_forward_relu": (_compiled_conv2d_forward_relu, _fallback.conv2d_forward_relu),
    "conv2d_backward": (_compiled_conv2d_backward, _fallback.conv2d_backward),
    "maxpool_forward": (_compiled_maxpool_forward, _fallback.maxpool_forward),
    "maxpool_backward": (_compiled_maxpool_backward, _fallback.maxpool_backward),
    "avgpool_forward": (_compiled_avgpool_forward, _fallback.avgpool_forward),
    "avgpool_backward": (_compiled_avgpool_backward, _fallback.avgpool_backward),
})
conv2d_forward = _choose("conv2d_forward")
conv2d_forward_relu = _choose("conv2d_forward_relu")
conv2d_backward = _choose("conv2d_backward")
maxpool_forward = _choose("maxpool_forward")
maxpool_backward = _choose("maxpool_backward")
avgpool_forward = _choose("avgpool_forward")
avgpool_backward = _choose("avgpool_backward")


# ---- raw kernels for the layers, optimizers and nnfast.ops ----------------------------
# The only way into ``_kernels`` from outside this module: ``kernel(name)`` is the compiled
# function of that name when the extension is loaded and has it, else its NumPy stand-in
# (same signature, the reference's arithmetic: nnfast._fallback). Per op, never per class.
_RAW_KERNELS = ("relu_forward", "relu_backward", "sigmoid", "sigmoid_backward", "mul_mask",
                "scale", "bias_add", "softmax", "softmax_xent", "softmax_xent_labels",
                "softmax_xent_backward", "first_overlap",
                "cross_entropy", "bn_forward_train", "bn_forward_test", "bn_backward",
                "optim_update")
OPT_CODES = {name: getattr(_kernels if _kernels is not None else _fallback, f"OPT_{name}")
             for name in ("SGD", "MOMENTUM", "NESTEROV", "ADAGRAD", "RMSPROP", "ADAM")}


def kernel(name: str) -> Callable[..., Any]:
    """The function that runs raw kernel ``name``: compiled if available, else NumPy."""
    if name not in _RAW_KERNELS:
        raise KeyError(f"nnfast: no kernel named {name!r}")
    fn = getattr(_kernels, name, None) if _kernels is not None else None
    return fn if fn is not None else getattr(_fallback, name)


for _name in _RAW_KERNELS:
    _COMPILED.setdefault(f"kernel:{_name}", (getattr(_kernels, _name, None),
                                             getattr(_fallback, _name)))
del _name


def _blas_serial():
    return _blas.serial


def build_info():
    """See ``nnfast.build_info``."""
    return {
        "compiled": _kernels is not None,
        "openmp": bool(_kernels is not None and _kernels.have_openmp()),
        # how the kernels run in parallel: OpenMP, or (compiled without it, e.g. Apple clang
        # or a compiler without OpenMP support) one thread whatever set_num_threads says
        "parallel": ("OpenMP" if _kernels is not None and _kernels.have_openmp()
                     else "single-threaded (built without OpenMP)" if _kernels is not None
                     else "single-threaded (NumPy reference)"),
        "num_threads": get_num_threads(),
        "kernels": {name: ("compiled" if _choose(name) is _COMPILED[name][0] else "reference")
                    for name in _COMPILED},
        "error": _load_error,
        # the convolution kernels' vector build (None without the extension), and whether
        # nnfast runs its own GEMMs on one BLAS thread (NumPy imported first: nnfast._blas)
        "conv_isa": _DCONV_ISA,
        # the build every element-wise family runs (csrc/isa.h): one choice for all of them
        "isa": {"conv": _DCONV_ISA,
                **{family: (_kernels.isa_family(family) if _kernels is not None else None)
                   for family in ("eltwise", "batchnorm", "softmax_xent", "pool", "optim",
                                  "affine")}},
        "direct_conv": _DIRECT_CONV,
        "serial_blas": _blas_serial(),
    }



# ---- dense ops: activations, softmax + cross-entropy (issue 4) ------------------------
# Element-wise results equal the reference bit for bit except where exp/log are involved
# (sigmoid, softmax, cross-entropy): libm's exp/log and NumPy's may differ in the last
# bit, so those agree to ~1e-12 relative in float64 (~1e-5 in float32).

def _flat_out(x, dtype=None):
    """A fresh C-contiguous array like ``x`` and its flat view."""
    out = np.empty(x.shape, dtype=x.dtype if dtype is None else dtype)
    return out, out.reshape(-1)


def _scalar_if_0d(a):
    return a[()] if a.ndim == 0 else a


def _compiled_sigmoid(x):
    x = kernel_input(x, "sigmoid", "x")
    out, flat = _flat_out(x)
    _kernels.sigmoid(x.reshape(-1), flat, False, get_num_threads())
    return _scalar_if_0d(out)


def _compiled_d_sigmoid(x):
    x = kernel_input(x, "sigmoid", "x")
    out, flat = _flat_out(x)
    _kernels.sigmoid(x.reshape(-1), flat, True, get_num_threads())
    return _scalar_if_0d(out)


def _compiled_relu(x):
    x = kernel_input(x, "relu", "x")
    out, flat = _flat_out(x)
    _kernels.relu(x.reshape(-1), flat, get_num_threads())
    return _scalar_if_0d(out)


def _positive(x, inclusive, where):
    x = kernel_input(x, where, "x")
    out, flat = _flat_out(x)
    _kernels.positive(x.reshape(-1), inclusive, flat, get_num_threads())
    return _scalar_if_0d(out)


def _compiled_d_relu(x):
    return _positive(x, False, "d_relu")


def _compiled_relu_grad(x):
    return _positive(x, True, "relu_grad")


def _compiled_step_function(x):
    a = np.asarray(x)
    # Only float arrays go to the kernel (the reference accepts any dtype), and only where
    # np.int_ is int64 (the kernel's output type).
    if not _checks._is_float32_or_64(a.dtype) or np.dtype(np.int_) != np.int64:
        return _ref_functions.step_function(x)
    a = kernel_input(a, "step_function", "x")
    out, flat = _flat_out(a, np.int_)
    _kernels.step(a.reshape(-1), flat, get_num_threads())
    return _scalar_if_0d(out)


def _compiled_softmax(x):
    x = kernel_input(x, "softmax", "x")
    if x.ndim == 0 or x.shape[-1] == 0:
        return _ref_functions.softmax(x)  # raises the reference's error
    y = np.empty(x.shape, dtype=x.dtype)
    cols = x.shape[-1]
    _kernels.softmax(x.reshape(-1, cols), y.reshape(-1, cols), get_num_threads())
    return y


xent_teacher = _checks.xent_teacher  # (SoftmaxWithLoss uses it too)


def _compiled_cross_entropy_error(d, y):
    where = "cross_entropy_error"
    d, y2 = _ref_functions._as_batch(d, y, where)
    labels, _ = xent_teacher(d, y2, where)
    y2 = kernel_input(y2, where, "y")
    return y2.dtype.type(_kernels.cross_entropy(y2, labels))


def _compiled_softmax_with_loss(d, x):
    x = _checks.as_float_array(x, "softmax", "x")
    if x.ndim == 0 or x.shape[-1] == 0:
        return _ref_functions.softmax(x)  # raises the reference's error
    where = "cross_entropy_error"
    d, x2 = _ref_functions._as_batch(d, x, where)
    labels, _ = xent_teacher(d, x2, where)
    x2 = kernel_input(x2, where, "x")
    y = np.empty(x2.shape, dtype=x2.dtype)
    row_loss = np.empty(x2.shape[0])
    loss = _kernels.softmax_xent(x2, labels, None, y, None, row_loss, get_num_threads())
    return x2.dtype.type(loss)


def _compiled_d_softmax_with_loss(d, y):
    where = "d_softmax_with_loss"
    y_shape = np.shape(y)
    d_b, y2 = _ref_functions._as_batch(d, y, where)
    labels, dense = xent_teacher(d_b, y2, where)
    if dense is None and np.asarray(d_b).size == y2.size:
        return _ref_functions.d_softmax_with_loss(d, y)  # float teacher of another dtype
    y2 = kernel_input(y2, where, "y")
    dx = np.empty(y2.shape, dtype=y2.dtype)
    _kernels.softmax_xent_backward(y2, labels, dense, dx, get_num_threads())
    return dx.reshape(y_shape)


_COMPILED.update({
    "sigmoid": (_compiled_sigmoid, _ref_functions.sigmoid),
    "d_sigmoid": (_compiled_d_sigmoid, _ref_functions.d_sigmoid),
    "relu": (_compiled_relu, _ref_functions.relu),
    "d_relu": (_compiled_d_relu, _ref_functions.d_relu),
    "relu_grad": (_compiled_relu_grad, _ref_functions.relu_grad),
    "step_function": (_compiled_step_function, _ref_functions.step_function),
    "softmax": (_compiled_softmax, _ref_functions.softmax),
    "cross_entropy_error": (_compiled_cross_entropy_error, _ref_functions.cross_entropy_error),
    "softmax_with_loss": (_compiled_softmax_with_loss, _ref_functions.softmax_with_loss),
    "d_softmax_with_loss": (_compiled_d_softmax_with_loss, _ref_functions.d_softmax_with_loss),
})

sigmoid: _Unary = _choose("sigmoid")
d_sigmoid: _Unary = _choose("d_sigmoid")
relu: _Unary = _choose("relu")
d_relu: _Unary = _choose("d_relu")
relu_grad: _Unary = _choose("relu_grad")
step_function: Callable[[npt.ArrayLike], npt.NDArray[np.int_]] = _choose("step_function")
softmax: _Unary = _choose("softmax")
cross_entropy_error: _Loss = _choose("cross_entropy_error")
softmax_with_loss: _Loss = _choose("softmax_with_loss")
d_softmax_with_loss: Callable[[npt.ArrayLike, npt.ArrayLike], npt.NDArray[np.floating[Any]]] = (
    _choose("d_softmax_with_loss"))


def compiled():
    """True when the compiled kernels are in use (not the reference fallback)."""
    return _kernels is not None


def register(name, compiled_impl, reference_impl):
    """List an implementation defined outside this module and return the one to use: the
    reference when kernels are off. (No longer used by nnfast's layers and optimizers,
    whose classes are the same whatever the backend: their fallback is per op, through
    ``kernel``; kept for code that registers its own.)"""
    _COMPILED[name] = (compiled_impl, reference_impl)
    return _choose(name)
