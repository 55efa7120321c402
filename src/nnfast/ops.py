"""nnfast.ops: the kernels as stateless functions (arrays in, arrays out).

Every op the layers run is here, with the layers' arithmetic (the same kernels, so the
same bits as the layer path), their validation and their messages (naming the op, e.g.
``conv2d: x must be 4-D (N, C, H, W), got shape (28, 28)``). float32 and float64 are
computed in their own dtype (inputs of two float dtypes are promoted to the wider one;
bool/int become float64); results are fresh C-contiguous arrays unless ``out=`` gives a
C-contiguous buffer of the result's shape and dtype to write into (returned). Inputs are
never written, except the parameter and state arrays of the in-place optimizer steps
(names ending in ``_``). Without the compiled extension (``NNFAST_BACKEND=reference``)
every op runs the reference's NumPy arithmetic instead.

    import numpy as np
    from nnfast import ops
    x = np.random.rand(8, 1, 28, 28).astype(np.float32)
    w = np.random.randn(16, 1, 3, 3).astype(np.float32)
    y = ops.relu(ops.conv2d(x, w, stride=1, pad=1))
    p, argmax = ops.max_pool2d(y, 2)
    loss, dx = ops.softmax_cross_entropy(p.reshape(8, -1)[:, :10], np.arange(8))

Layouts: images (N, C, H, W); filters (FN, C, FH, FW); ``OH = (H + 2*pad - FH)//stride
+ 1``. Max pooling pads with -inf, ties go to the first maximum in row-major window order
and ``argmax`` holds that offset ``i*pool_w + j`` per output (int32, (N, C, OH, OW)).
Average pooling counts the zero padding in the divisor. Batch norm's ``mode='feature'``
normalises each of the C*H*W features (the toolkit's), ``'spatial'`` each channel.
"""
from __future__ import annotations

import math
from typing import Any, Dict, NamedTuple, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt

from . import _checks as _checks_untyped
from . import _dispatch as _dispatch_untyped
from . import _fallback as _fallback_untyped
from ._threads import get_num_threads

# The internal modules are not annotated: reached through Any, checked by the tests.
_c: Any = _checks_untyped
_d: Any = _dispatch_untyped
_fb: Any = _fallback_untyped

#: A float32 or float64 array, as every op returns.
FloatArray = npt.NDArray[np.floating[Any]]
#: Optimizer state and parameters: float32/float64 arrays updated in place.
Shape = Tuple[int, ...]

__all__ = [
    "FloatArray", "ConvPlan", "ConvWorkspace", "conv_plan", "conv2d", "conv2d_backward",
    "im2col", "col2im", "max_pool2d", "max_pool2d_backward",
    "avg_pool2d", "avg_pool2d_backward", "affine", "affine_backward", "softmax",
    "softmax_cross_entropy", "BatchNormCache", "BatchNormResult", "batch_norm",
    "batch_norm_backward", "relu", "relu_backward", "sigmoid", "sigmoid_backward",
    "dropout", "dropout_backward", "sgd_", "momentum_", "nesterov_", "adagrad_", "rmsprop_",
    "adam_",
]

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_I64 = np.dtype(np.int64)
_BOOL = np.dtype(np.bool_)
_ReluForward: Any = _d.kernel("relu_forward")
_ReluBackward: Any = _d.kernel("relu_backward")
_Sigmoid: Any = _d.kernel("sigmoid")
_SigmoidBackward: Any = _d.kernel("sigmoid_backward")
_MulMask: Any = _d.kernel("mul_mask")
_Scale: Any = _d.kernel("scale")
_BiasAdd: Any = _d.kernel("bias_add")
_Softmax: Any = _d.kernel("softmax")
_SoftmaxXent: Any = _d.kernel("softmax_xent")
_FirstOverlap: Any = _d.kernel("first_overlap")
_XentLabels: Any = _d.kernel("softmax_xent_labels")  # labels only, softmax kept inside
_BnTrain: Any = _d.kernel("bn_forward_train")
_BnTest: Any = _d.kernel("bn_forward_test")
_BnBackward: Any = _d.kernel("bn_backward")
_OptimUpdate: Any = _d.kernel("optim_update")
_OPT: Any = _d.OPT_CODES


def _arr(x: Any, where: str, name: str) -> FloatArray:
    """x as a C-contiguous, native float32/float64 array (no copy when it already is)."""
    if type(x) is np.ndarray and x.flags.c_contiguous:
        dt = x.dtype
        if dt is _F64 or dt is _F32 or dt == _F64 or dt == _F32:
            return x
    a: FloatArray = _d.kernel_input(x, where, name)
    return a


def _common(where: str, *named: Tuple[str, Any],
            contiguous: bool = True) -> Tuple[FloatArray, ...]:
    """The arrays converted, then promoted to the widest float dtype among them; C-contiguous
    (for the kernels) unless ``contiguous`` is false (for numpy.matmul, which then gives
    the bits it gives the reference's own strided operands)."""
    if contiguous:
        arrays = [_arr(a, where, name) for name, a in named]
    else:
        arrays = [_c.as_float_array(a, where, name) for name, a in named]
        arrays = [a if a.dtype.isnative else a.astype(a.dtype.newbyteorder("="))
                  for a in arrays]
    dt = arrays[0].dtype
    if any(a.dtype != dt for a in arrays):
        dt = np.result_type(*arrays)
        arrays = [np.ascontiguousarray(a, dtype=dt) if contiguous else a.astype(dt)
                  for a in arrays]
    return tuple(arrays)


def _out(out: Optional[FloatArray], shape: Shape, dtype: np.dtype[Any],
         where: str, name: str = "out") -> FloatArray:
    """``out`` checked (a writeable C-contiguous array of this shape and dtype), or a new
    array when it is None."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    if type(out) is np.ndarray and out.dtype is dtype and out.shape == shape:
        f = out.flags
        if f.c_contiguous and f.writeable:
            return out
    _c.check_out(out, shape, dtype, where, name)  # (raises, naming what is wrong)
    return out


def _disjoint(where: str, outs: Tuple[Tuple[str, Any], ...],
              ins: Tuple[Tuple[str, Any], ...]) -> None:
    """The given output buffers (None: not given, skipped) share no memory with the inputs
    nor with each other (the kernels take them as restrict pointers, and an output written
    first would change an input read after it)."""
    hit = _FirstOverlap(tuple(a for _, a in outs), tuple(a for _, a in ins))
    if hit is not None:
        names = [name for name, _ in outs + ins]
        raise ValueError(f"{where}: {names[hit[0]]} must not overlap {names[hit[1]]}")


def _shape4(value: Any, name: str, layout: str, where: str) -> Tuple[int, int, int, int]:
    """A shape of 4 non-negative ints (e.g. ``x_shape`` (N, C, H, W))."""
    try:
        dims = tuple(int(d) for d in value)
    except TypeError:
        raise TypeError(f"{where}: {name} must be a shape {layout}, got "
                        f"{type(value).__name__}") from None
    if len(dims) != 4 or min(dims) < 0:
        raise ValueError(f"{where}: {name} must be a shape {layout}, got {dims}")
    return dims[0], dims[1], dims[2], dims[3]


def _int(value: Any, name: str, where: str, min: int = 1) -> int:
    if type(value) is int and value >= min:
        return value
    n: int = _c.check_positive_int(value, name, where, min)
    return n


def _pad(value: Any, where: str) -> int:
    p: int = _c.check_pad(value, where)
    return p


# ---- convolution ----------------------------------------------------------------------

def _conv_geometry(x: FloatArray, w: FloatArray, stride: Any, pad: Any,
                   where: str) -> Tuple[int, int, int, int]:
    """Validate as Convolution.forward does; (stride, pad, OH, OW)."""
    _c.check_ndim(x, 4, where, "x", "(N, C, H, W)")
    _c.check_ndim(w, 4, where, "w", "(FN, C, FH, FW)")
    s = _int(stride, "stride", where)
    p = _pad(pad, where)
    _, c, h, wd = x.shape
    _, wc, fh, fw = w.shape
    if c != wc:
        raise ValueError(f"{where}: x has {c} channels (shape {tuple(x.shape)}) but w expects "
                         f"{wc} (w has shape {tuple(w.shape)})")
    _c.check_window(h, wd, fh, fw, p, where)
    oh, ow = (h + 2 * p - fh) // s + 1, (wd + 2 * p - fw) // s + 1
    _c.check_size((x.shape[0] * oh * ow, c * fh * fw), where,
                  "the column matrix (N*OH*OW, C*FH*FW)")
    _c.check_size((x.shape[0], w.shape[0], oh, ow), where, "the output (N, FN, OH, OW)")
    return s, p, oh, ow


#: How one convolution geometry runs (``conv_plan``): ``method`` for the forward and the
#: filter gradient, ``dx_method`` for the input gradient; each "channels", "planes" or
#: "columns".
ConvPlan = _dispatch_untyped.ConvPlan


def conv_plan(x_shape: Shape, w_shape: Shape, stride: int = 1, pad: int = 0) -> Any:
    """The ConvPlan that ``conv2d`` chooses for x of ``x_shape`` (N, C, H, W) and filters
    of ``w_shape`` (FN, C, FH, FW): it depends on the geometry only (not on N), so a caller
    that runs one geometry many times (a layer) can choose it once and pass it as
    ``plan=``."""
    where = "conv_plan"
    shapes = [_shape4(x_shape, "x_shape", "(N, C, H, W)", where),
              _shape4(w_shape, "w_shape", "(FN, C, FH, FW)", where)]
    s = _int(stride, "stride", where)
    p = _pad(pad, where)
    _conv_geometry(np.empty((0,) + shapes[0][1:]), np.empty(shapes[1]), s, p, where)
    return _d.plan_conv(shapes[0], shapes[1], s, p)


def _conv_plan_setting() -> Any:
    """What conv_plan's choice depends on besides the geometry (whether the direct kernels
    run: NNFAST_DIRECT_CONV, the CPU): a caller keeping a plan keys it with this too."""
    return _d._DIRECT_CONV


class ConvWorkspace:
    """Scratch memory one convolution reuses from call to call, and the columns its last
    ``conv2d`` built (im2col; None where the direct kernels ran), which
    ``conv2d_backward`` then reuses for the same ``x`` object instead of building them
    again. Pass the same workspace to a geometry's forward and backward; do not change
    x in place in between (the backward would use the forward's columns). Not
    thread-safe: one workspace per convolution and thread."""

    __slots__ = ("buffers", "columns", "x")

    def __init__(self) -> None:
        #: reusable scratch arrays, by name (owned by the kernels; never handed out)
        self.buffers: Dict[str, Any] = {}
        #: the columns of the last forward (None: none kept)
        self.columns: Optional[FloatArray] = None
        #: the x those columns were built from
        self.x: Optional[FloatArray] = None

    def release_columns(self) -> Optional[FloatArray]:
        """The columns, detached from the reusable buffers: the next forward builds its
        columns in a new array, so this one can be handed to a user."""
        cols = self.columns
        if cols is not None and self.buffers.get("col") is cols:
            del self.buffers["col"]
        return cols


def _check_plan(plan: Any, where: str) -> None:
    if plan is not None and not isinstance(plan, ConvPlan):
        raise TypeError(f"{where}: plan must be a ConvPlan (nnfast.ops.conv_plan), got "
                        f"{type(plan).__name__}")


def _check_workspace(workspace: Any, where: str) -> None:
    if workspace is not None and not isinstance(workspace, ConvWorkspace):
        raise TypeError(f"{where}: workspace must be a nnfast.ops.ConvWorkspace, got "
                        f"{type(workspace).__name__}")


def conv2d(x: npt.ArrayLike, w: npt.ArrayLike, b: Optional[npt.ArrayLike] = None,
           stride: int = 1, pad: int = 0, *, out: Optional[FloatArray] = None,
           relu_mask: Optional[npt.NDArray[np.bool_]] = None, plan: Any = None,
           workspace: Optional[ConvWorkspace] = None) -> FloatArray:
    """Cross-correlation of x (N, C, H, W) by w (FN, C, FH, FW), plus b (FN,) if given:
    (N, FN, OH, OW), zero padding ``pad`` on each side. The Convolution layer's kernels.

    ``relu_mask`` (a writeable C-contiguous bool array of the output's shape): return
    relu(conv2d(...)) instead, the mask receiving ``conv2d(...) <= 0`` (the Relu layer's
    mask); where the direct kernels run, the ReLU is applied in the same pass. ``plan``: the
    ``conv_plan`` of this geometry (looked up when None). ``workspace``: a ConvWorkspace
    whose scratch buffers are reused and which keeps the columns for ``conv2d_backward``."""
    where = "conv2d"
    xa, wa = _common(where, ("x", x), ("w", w))
    s, p, oh, ow = _conv_geometry(xa, wa, stride, pad, where)
    fn = wa.shape[0]
    if b is None:
        ba = np.zeros(fn, dtype=xa.dtype)
    else:
        ba = _arr(b, where, "b")
        _c.check_shape_match(ba, (fn,), where, "b", "(FN,) for w of shape (FN, C, FH, FW)")
        if ba.dtype != xa.dtype:
            xa, wa, ba = _common(where, ("x", xa), ("w", wa), ("b", ba))
    shape = (xa.shape[0], fn, oh, ow)
    if out is not None:
        _out(out, shape, xa.dtype, where)
    m = None if relu_mask is None else _mask_arg(relu_mask, shape, where, "relu_mask",
                                                 out=True)
    _check_plan(plan, where)
    _check_workspace(workspace, where)
    if plan is None:
        plan = _d.plan_conv(xa.shape, wa.shape, s, p)
    work = None if workspace is None else workspace.buffers
    if workspace is not None:
        workspace.columns = workspace.x = None
    if m is not None and out is None:
        fused = _d.conv2d_forward_relu(xa, wa, ba, s, p, relu_mask, plan)
        if fused is not None:
            result: FloatArray = fused
            return result
    res, cols = _d.conv2d_forward(xa, wa, ba, s, p, work, plan,
                                  None if m is not None else out)
    if workspace is not None:
        workspace.columns, workspace.x = cols, xa
    if m is not None:  # the ReLU as a second pass
        relu_out = _out(out, shape, xa.dtype, where)
        _ReluForward(res.reshape(-1), relu_out.reshape(-1), m, get_num_threads())
        res = relu_out
    result = res
    return result


def conv2d_backward(dout: npt.ArrayLike, x: npt.ArrayLike, w: npt.ArrayLike,
                    stride: int = 1, pad: int = 0, need_dx: bool = True, *,
                    plan: Any = None, workspace: Optional[ConvWorkspace] = None,
                    dw_out: Optional[FloatArray] = None, db_out: Optional[FloatArray] = None
                    ) -> Tuple[Optional[FloatArray], FloatArray, FloatArray]:
    """(dx (N, C, H, W) or None when ``need_dx`` is false, dw (FN, C, FH, FW), db (FN,)) of
    ``conv2d(x, w, b, stride, pad)`` for the output gradient dout (N, FN, OH, OW).
    ``plan`` and ``workspace`` as for ``conv2d`` (the workspace's columns are used when
    they were built from this same x); ``dw_out``, ``db_out``: buffers that receive dw and
    db (the filter-gradient kernels write there directly)."""
    where = "conv2d_backward"
    da, xa, wa = _common(where, ("dout", dout), ("x", x), ("w", w))
    s, p, oh, ow = _conv_geometry(xa, wa, stride, pad, where)
    _c.check_shape_match(da, (xa.shape[0], wa.shape[0], oh, ow), where, "dout",
                         "(N, FN, OH, OW) of conv2d(x, w)")
    _check_plan(plan, where)
    _check_workspace(workspace, where)
    if dw_out is not None:
        _out(dw_out, wa.shape, da.dtype, where, "dw_out")
    if db_out is not None:
        _out(db_out, (wa.shape[0],), da.dtype, where, "db_out")
    fh, fw = wa.shape[2:]
    if plan is None:
        plan = _d.plan_conv(xa.shape, wa.shape, s, p)
    if workspace is not None and workspace.x is xa:
        cols = workspace.columns
        if cols is not None and cols.dtype != xa.dtype:
            cols = _d.conv2d_columns(xa, fh, fw, s, p, plan)
    else:
        cols = _d.conv2d_columns(xa, fh, fw, s, p, plan)
    work = None if workspace is None else workspace.buffers
    dx, dw, db = _d.conv2d_backward(da, xa, cols, wa, s, p, bool(need_dx), work, plan,
                                    dw_out, db_out)
    return dx, dw, db


def im2col(x: npt.ArrayLike, filter_h: int, filter_w: int, stride: int = 1, pad: int = 0,
           *, out: Optional[FloatArray] = None) -> FloatArray:
    """The toolkit's column matrix of x (N, C, H, W): (N*OH*OW, C*FH*FW), one row per
    output position, zero padding ``pad``; ``out`` a buffer to write it into."""
    if out is not None and _d.compiled():  # written in place (checked there)
        into: FloatArray = _d.im2col(x, filter_h, filter_w, stride, pad, out=out)
        return into
    res: FloatArray = _d.im2col(x, filter_h, filter_w, stride, pad)
    return res if out is None else _into(out, res, "im2col")


def col2im(col: npt.ArrayLike, input_shape: Shape, filter_h: int, filter_w: int,
           stride: int = 1, pad: int = 0, *, out: Optional[FloatArray] = None) -> FloatArray:
    """The adjoint of ``im2col``: the rows of col (N*OH*OW, C*FH*FW) added back into an
    image of ``input_shape`` (overlaps add up, the padding dropped)."""
    if out is not None and _d.compiled():
        into: FloatArray = _d.col2im(col, input_shape, filter_h, filter_w, stride, pad,
                                     out=out)
        return into
    res: FloatArray = _d.col2im(col, input_shape, filter_h, filter_w, stride, pad)
    return res if out is None else _into(out, res, "col2im")


def _into(out: FloatArray, res: FloatArray, where: str) -> FloatArray:
    _out(out, res.shape, res.dtype, where)
    out[...] = res
    return out


# ---- pooling --------------------------------------------------------------------------

def _pool_geometry(x: FloatArray, pool_h: Any, pool_w: Any, stride: Any, pad: Any,
                   where: str) -> Tuple[int, int, int, int, int, int]:
    _c.check_ndim(x, 4, where, "x", "(N, C, H, W)")
    ph = _int(pool_h, "pool_h", where)
    pw = ph if pool_w is None else _int(pool_w, "pool_w", where)
    s = _int(stride, "stride", where)
    p = _pad(pad, where)
    _c.check_pool_pad(p, ph, pw, where)
    n, c, h, w = x.shape
    _c.check_window(h, w, ph, pw, p, where, what="pooling")
    oh, ow = (h + 2 * p - ph) // s + 1, (w + 2 * p - pw) // s + 1
    _c.check_size((n * oh * ow * c, ph * pw), where,
                  "the window matrix (N*OH*OW*C, pool_h*pool_w)")
    return ph, pw, s, p, oh, ow


def _pool_backward_args(dout: npt.ArrayLike, x_shape: Any, pool_h: Any, pool_w: Any,
                        stride: Any, pad: Any, where: str
                        ) -> Tuple[FloatArray, Shape, Tuple[int, int, int, int, int, int]]:
    shape = _shape4(x_shape, "x_shape", "(N, C, H, W)", where)
    da = _arr(dout, where, "dout")
    geo = _pool_geometry(np.empty((0, 0, shape[2], shape[3])), pool_h, pool_w, stride, pad,
                         where)
    _c.check_shape_match(da, (shape[0], shape[1], geo[4], geo[5]), where, "dout",
                         "(N, C, OH, OW) of the forward")
    return da, shape, geo


def max_pool2d(x: npt.ArrayLike, pool_h: int, pool_w: Optional[int] = None,
               stride: int = 2, pad: int = 0, *, out: Optional[FloatArray] = None
               ) -> Tuple[FloatArray, npt.NDArray[np.int32]]:
    """(max over each (pool_h, pool_w) window of x (N, C, H, W), padding -inf: (N, C, OH,
    OW); argmax: the int32 offset i*pool_w + j of each window's first maximum).
    ``pool_w`` defaults to ``pool_h``; ``pad`` at most half the window."""
    where = "max_pool2d"
    xa = _arr(x, where, "x")
    ph, pw, s, p, oh, ow = _pool_geometry(xa, pool_h, pool_w, stride, pad, where)
    if out is not None:
        _out(out, xa.shape[:2] + (oh, ow), xa.dtype, where)
    res, argmax = _d.maxpool_forward(xa, ph, pw, s, p, out)
    return res, argmax


def max_pool2d_backward(dout: npt.ArrayLike, argmax: npt.ArrayLike, x_shape: Shape,
                        pool_h: int, pool_w: Optional[int] = None, stride: int = 2,
                        pad: int = 0, *, relu_mask: Optional[npt.ArrayLike] = None
                        ) -> FloatArray:
    """dx (x_shape): each dout value added to the element its window's ``argmax`` names
    (overlapping windows add up). ``relu_mask`` (a bool array of x_shape, a ReLU's mask
    before the pooling): dx is then also the ReLU's backward, 0 where the mask is set,
    in the same pass."""
    where = "max_pool2d_backward"
    da, shape, (ph, pw, s, p, _, _) = _pool_backward_args(dout, x_shape, pool_h, pool_w,
                                                           stride, pad, where)
    am = np.asarray(argmax)
    if am.dtype.kind not in "iu" or am.shape != da.shape:
        raise ValueError(f"{where}: argmax must be an integer array of shape "
                         f"{tuple(da.shape)}, got {am.dtype} {tuple(am.shape)}")
    # the offsets' range: checked by the kernel as it reads them (no pass of its own), unless
    # converting them to int32 could wrap a value into the range
    compiled = _d.compiled() and am.dtype.itemsize <= 4 and am.dtype != np.uint32
    if not compiled and am.size and (am.min() < 0 or am.max() >= ph * pw):
        raise ValueError(f"{where}: argmax offsets must be in [0, {ph * pw})")
    rm = None if relu_mask is None else \
        _mask_arg(relu_mask, shape, where, "relu_mask").view(np.bool_).reshape(shape)
    try:
        dx: FloatArray = _d.maxpool_backward(da, np.ascontiguousarray(am, dtype=np.int32),
                                             shape, ph, pw, s, p, rm)
    except ValueError:
        if compiled and am.size and (am.min() < 0 or am.max() >= ph * pw):
            raise ValueError(f"{where}: argmax offsets must be in [0, {ph * pw})") from None
        raise
    return dx


def avg_pool2d(x: npt.ArrayLike, pool_h: int, pool_w: Optional[int] = None,
               stride: int = 2, pad: int = 0, *, out: Optional[FloatArray] = None
               ) -> FloatArray:
    """Mean over each window of x (N, C, H, W), zero padding counted in the divisor."""
    where = "avg_pool2d"
    xa = _arr(x, where, "x")
    ph, pw, s, p, oh, ow = _pool_geometry(xa, pool_h, pool_w, stride, pad, where)
    if out is not None:
        _out(out, xa.shape[:2] + (oh, ow), xa.dtype, where)
    res: FloatArray = _d.avgpool_forward(xa, ph, pw, s, p, out)
    return res


def avg_pool2d_backward(dout: npt.ArrayLike, x_shape: Shape, pool_h: int,
                        pool_w: Optional[int] = None, stride: int = 2,
                        pad: int = 0) -> FloatArray:
    """dx (x_shape): dout / (pool_h*pool_w) spread over each window (overlaps add up)."""
    where = "avg_pool2d_backward"
    da, shape, (ph, pw, s, p, _, _) = _pool_backward_args(dout, x_shape, pool_h, pool_w,
                                                           stride, pad, where)
    dx: FloatArray = _d.avgpool_backward(da, shape, ph, pw, s, p)
    return dx


# ---- affine ---------------------------------------------------------------------------

def _affine_args(where: str, x: Any, w: Any) -> Tuple[FloatArray, FloatArray, FloatArray]:
    # (any layout: the products are numpy.matmul's, on the caller's strides as the
    # reference's; only the bias add's output must be contiguous, and it is ours)
    xa, wa = _common(where, ("x", x), ("w", w), contiguous=False)
    _c.check_min_ndim(xa, 2, where, "x", "(N, D) or (N, ...)")
    _c.check_ndim(wa, 2, where, "w", "(D, M)")
    n = xa.shape[0]
    features = math.prod(xa.shape[1:])
    if features != wa.shape[0]:
        raise ValueError(f"{where}: x has {features} features per sample (shape "
                         f"{tuple(xa.shape)}) but w expects {wa.shape[0]} (w has shape "
                         f"{tuple(wa.shape)})")
    return xa, (xa if xa.ndim == 2 else xa.reshape(n, features)), wa


def affine(x: npt.ArrayLike, w: npt.ArrayLike, b: Optional[npt.ArrayLike] = None, *,
           out: Optional[FloatArray] = None) -> FloatArray:
    """x flattened to (N, D), times w (D, M), plus b (M,) if given: (N, M)."""
    where = "affine"
    if type(x) is np.ndarray and type(w) is np.ndarray and x.ndim == 2 and w.ndim == 2:
        # the common call (2-D x, one float dtype, b contiguous): the general path's
        # conversions would all be no-ops
        dt = x.dtype
        if (dt is _F32 or dt is _F64) and w.dtype is dt and x.shape[1] == w.shape[0] and (
                b is None or (type(b) is np.ndarray and b.dtype is dt
                              and b.shape == (w.shape[1],) and b.flags.c_contiguous)):
            res = _out(out, (x.shape[0], w.shape[1]), dt, where)
            _d.matmul(x, w, out=res)
            if b is not None:
                _BiasAdd(res, b, get_num_threads())
            return res
    xa, x2, wa = _affine_args(where, x, w)
    if b is not None:
        ba = _arr(b, where, "b")
        _c.check_shape_match(ba, (wa.shape[1],), where, "b", "(M,) for w of shape (D, M)")
        if ba.dtype != xa.dtype:
            x2, wa, ba = _common(where, ("x", x2), ("w", wa), ("b", ba), contiguous=False)
            ba = np.ascontiguousarray(ba)
    res = _out(out, (x2.shape[0], wa.shape[1]), x2.dtype, where)
    _d.matmul(x2, wa, out=res)
    if b is not None:
        _BiasAdd(res, ba, get_num_threads())
    return res


def affine_backward(dout: npt.ArrayLike, x: npt.ArrayLike, w: npt.ArrayLike,
                    need_dx: bool = True, *, dx_out: Optional[FloatArray] = None,
                    dw_out: Optional[FloatArray] = None, db_out: Optional[FloatArray] = None
                    ) -> Tuple[Optional[FloatArray], FloatArray, FloatArray]:
    """(dx in x's shape or None, dw (D, M), db (M,)) of ``affine(x, w, b)`` for dout (N, M).
    ``dx_out`` (x's shape), ``dw_out`` and ``db_out`` are buffers to write them into (e.g.
    views of one flat gradient buffer)."""
    where = "affine_backward"
    if type(x) is np.ndarray and type(w) is np.ndarray and type(dout) is np.ndarray \
            and x.ndim == 2 and w.ndim == 2:
        dt = x.dtype
        if (dt is _F32 or dt is _F64) and w.dtype is dt and dout.dtype is dt \
                and x.shape[1] == w.shape[0] and dout.shape == (x.shape[0], w.shape[1]):
            dw = _out(dw_out, w.shape, dt, where, "dw_out")
            db = _out(db_out, (w.shape[1],), dt, where, "db_out")
            dx = None if not need_dx else _out(dx_out, x.shape, dt, where, "dx_out")
            _disjoint(where, (("dw_out", dw_out), ("db_out", db_out), ("dx_out", dx_out)),
                      (("x", x), ("w", w), ("dout", dout)))
            _d.matmul(x.T, dout, out=dw)
            np.add.reduce(dout, axis=0, out=db)
            if dx is not None:
                _d.matmul(dout, w.T, out=dx)
            return dx, dw, db
    xa, x2, wa = _affine_args(where, x, w)
    da = _c.as_float_array(dout, where, "dout")
    _c.check_shape_match(da, (x2.shape[0], wa.shape[1]), where, "dout", "(N, M) of the forward")
    if da.dtype != x2.dtype:
        da, x2, wa = _common(where, ("dout", da), ("x", x2), ("w", wa), contiguous=False)
    dw = _out(dw_out, wa.shape, da.dtype, where, "dw_out")
    db = _out(db_out, (wa.shape[1],), da.dtype, where, "db_out")
    dx = None if not need_dx else _out(dx_out, xa.shape, da.dtype, where, "dx_out")
    _disjoint(where, (("dw_out", dw_out), ("db_out", db_out), ("dx_out", dx_out)),
              (("x", x2), ("w", wa), ("dout", da)))
    _d.matmul(x2.T, da, out=dw)
    np.add.reduce(da, axis=0, out=db)
    if dx is not None:
        _d.matmul(da, wa.T, out=dx.reshape(x2.shape))
    return dx, dw, db


# ---- softmax and cross-entropy --------------------------------------------------------

def softmax(x: npt.ArrayLike, *, out: Optional[FloatArray] = None) -> FloatArray:
    """Softmax over the last axis (the row max subtracted first); any ndim >= 1."""
    where = "softmax"
    xa = _arr(x, where, "x")
    if xa.ndim == 0 or xa.shape[-1] == 0:
        raise ValueError(f"{where}: x must have at least 1 dimension and a non-empty last "
                         f"axis, got shape {tuple(xa.shape)}")
    y = _out(out, xa.shape, xa.dtype, where)
    cols = xa.shape[-1]
    if xa.size:
        _Softmax(xa.reshape(-1, cols), y.reshape(-1, cols), get_num_threads())
    return y


def softmax_cross_entropy(x: npt.ArrayLike, t: npt.ArrayLike, *,
                          out: Optional[FloatArray] = None,
                          y_out: Optional[FloatArray] = None
                          ) -> Tuple[np.floating[Any], FloatArray]:
    """(mean over rows of -log(softmax(x)[label] + 1e-7), dx = d loss / d x) for scores x
    (N, C) (or (C,)) and a teacher t: (N,) integer labels or (N, C) one-hot (detected by
    size, as SoftmaxWithLoss). ``out`` receives dx, ``y_out`` (x's shape) the softmax. The
    loss has x's dtype; a float teacher is taken in x's dtype."""
    where = "softmax_cross_entropy"
    if (out is None and y_out is None and type(x) is np.ndarray
            and type(t) is np.ndarray and x.ndim == 2 and t.ndim == 1):
        # the common call (scores and int64 labels, nothing else): one C call that reads
        # the arrays through the buffer protocol and keeps the softmax to itself
        dt = x.dtype
        n, c = x.shape
        if (dt is _F32 or dt is _F64) and t.dtype is _I64 and t.shape[0] == n and n \
                and c > 1 and x.flags.c_contiguous and t.flags.c_contiguous:
            dx = np.empty((n, c), dtype=dt)
            try:
                loss = _XentLabels(x, t, dx, get_num_threads())
            except ValueError:
                bad = t[(t < 0) | (t >= c)]
                if not bad.size:
                    raise
                raise ValueError(f"{where}: labels in t must be in [0, {c}), got "
                                 f"{bad[0]}") from None
            value: np.floating[Any] = dt.type(loss)
            return value, dx
    xa = _arr(x, where, "x")
    _c.check_ndim(xa, (1, 2), where, "x", "(N, C) or (C,)")
    if xa.shape[-1] == 0:
        raise ValueError(f"{where}: x must have a non-empty last axis, got shape "
                         f"{tuple(xa.shape)}")
    x2 = xa.reshape(1, -1) if xa.ndim == 1 else xa
    n, c = x2.shape
    if type(t) is np.ndarray and t.ndim == 1 and t.dtype.kind in "iu" and t.shape[0] == n \
            and c != 1:
        labels = t  # (their range is checked by the kernel, before it writes anything)
        if labels.dtype != np.int64 or not labels.flags.c_contiguous:
            labels = np.ascontiguousarray(labels, dtype=np.int64)
        dense = None
    else:
        ta = np.asarray(t)
        if ta.ndim == 1 and xa.ndim == 1 and ta.size == c:
            ta = ta.reshape(1, c)
        elif ta.ndim == 0:
            ta = ta.reshape(1)
        tv, one_hot = _c.check_labels(ta, c, n, where, name="t")
        if one_hot:
            labels = np.ascontiguousarray(tv.argmax(axis=1), dtype=np.int64)
            dense = np.ascontiguousarray(tv, dtype=x2.dtype)
        else:
            labels, dense = np.ascontiguousarray(tv, dtype=np.int64), None
    dx = _out(out, xa.shape, xa.dtype, where)
    y = _out(y_out, xa.shape, xa.dtype, where, "y_out").reshape(x2.shape)
    _disjoint(where, (("out", out), ("y_out", y_out)), (("x", xa),))
    row_loss = np.empty(n)
    try:
        loss = _SoftmaxXent(x2, labels, dense, y, dx if xa.ndim == 2 else dx.reshape(x2.shape),
                            row_loss, get_num_threads())
    except ValueError:
        bad = labels[(labels < 0) | (labels >= c)]
        if not bad.size:
            raise
        raise ValueError(f"{where}: labels in t must be in [0, {c}), got {bad[0]}") from None
    result: np.floating[Any] = x2.dtype.type(loss)
    return result, dx


# ---- batch normalization --------------------------------------------------------------

class BatchNormCache(NamedTuple):
    """What ``batch_norm_backward`` needs from a training forward: ``xc`` = x - mean (x's
    shape in 'spatial' mode, (N, D) with D the flattened features in 'feature' mode), the
    per-channel (or per-feature) ``std`` = sqrt(var + 1e-6) and the ``mode``. ``xn``, the
    normalised x, is not stored by ``batch_norm`` (None: the backward forms ``xc / std``
    again, with the same bits; ``normalized()`` gives it); a cache built by hand may hold
    it, and the backward then reads it."""
    xc: FloatArray
    xn: Optional[FloatArray]
    std: FloatArray
    mode: str

    def normalized(self) -> FloatArray:
        """xn = xc / std (the stored ``xn`` when there is one)."""
        if self.xn is not None:
            return self.xn
        std = self.std.reshape(-1, 1, 1) if self.mode == "spatial" else self.std
        xn: FloatArray = self.xc / std
        return xn


class BatchNormResult(NamedTuple):
    """``out``; the running statistics after the call (new arrays in training, the ones
    used in evaluation); ``cache`` for the backward (None in evaluation)."""
    out: FloatArray
    running_mean: FloatArray
    running_var: FloatArray
    cache: Optional[BatchNormCache]


def _bn_geometry(shape: Shape, mode: str) -> Tuple[int, int, int]:
    if mode == "spatial":
        n, c, h, w = shape
        return n, c, h * w
    return shape[0], math.prod(shape[1:]), 1


def batch_norm(x: npt.ArrayLike, gamma: npt.ArrayLike, beta: npt.ArrayLike,
               running_mean: Optional[npt.ArrayLike] = None,
               running_var: Optional[npt.ArrayLike] = None, *, training: bool = True,
               momentum: float = 0.9, mode: str = "feature",
               out: Optional[FloatArray] = None,
               xc_out: Optional[FloatArray] = None) -> BatchNormResult:
    """Batch normalization, the BatchNormalization layer's arithmetic (epsilon 1e-6, biased
    variance). Training: batch statistics, ``running = momentum*running + (1 -
    momentum)*batch_stat`` returned as new arrays (None running stats start at zeros);
    evaluation: the running statistics. x is (N, D) or (N, C, H, W) in ``mode='feature'``
    (stats per flattened feature) and (N, C, H, W) in ``mode='spatial'`` (per channel).
    ``xc_out`` receives the cache's ``xc`` (its shape: see BatchNormCache)."""
    where = "batch_norm"
    if mode not in ("feature", "spatial"):
        raise ValueError(f"{where}: mode must be 'feature' or 'spatial', got {mode!r}")
    if _bn_fast(x, mode, gamma, beta, running_mean, running_var) and type(momentum) is float:
        # the common call (one dtype, contiguous, the parameters of the right length): the
        # general path's conversions and checks would all pass unchanged
        assert isinstance(x, np.ndarray) and isinstance(gamma, np.ndarray) \
            and isinstance(beta, np.ndarray) and isinstance(running_mean, np.ndarray) \
            and isinstance(running_var, np.ndarray)
        n, c, inner = _bn_geometry(x.shape, mode)
        if not training or n * inner:
            return _bn_run(x, gamma, beta, running_mean, running_var, training, momentum,
                           mode, n, c, inner, out, xc_out, where)
    xa = _arr(x, where, "x")
    if mode == "spatial":
        _c.check_ndim(xa, 4, where, "x", "(N, C, H, W) in mode 'spatial'")
    else:
        _c.check_ndim(xa, (2, 4), where, "x", "(N, D) or (N, C, H, W)")
    n, c, inner = _bn_geometry(xa.shape, mode)
    hint = "one value per channel" if mode == "spatial" else \
        "one value per feature of the flattened input"
    named = [("x", xa), ("gamma", gamma), ("beta", beta)]
    for name, v in (("running_mean", running_mean), ("running_var", running_var)):
        named.append((name, np.zeros(c, dtype=xa.dtype) if v is None else v))
    xa, g, bt, rm, rv = _common(where, *named)
    for name, v in (("gamma", g), ("beta", bt), ("running_mean", rm), ("running_var", rv)):
        _c.check_shape_match(v, (c,), where, name, hint)
    mom: float = _c.check_real(momentum, "momentum", where)
    if training and n * inner == 0:
        raise ValueError(f"{where}: x must hold at least one sample in training mode, got "
                         f"shape {tuple(xa.shape)}")
    return _bn_run(xa, g, bt, rm, rv, training, mom, mode, n, c, inner, out, xc_out, where)


def _bn_fast(x: Any, mode: str, *params: Any) -> bool:
    """Whether batch_norm's arrays need no conversion and pass its checks as they are."""
    if type(x) is not np.ndarray or not x.flags.c_contiguous:
        return False
    dt = x.dtype
    if not (dt is _F32 or dt is _F64) or x.ndim != (4 if mode == "spatial" else x.ndim) \
            or x.ndim not in (2, 4):
        return False
    c = x.shape[1] if mode == "spatial" else math.prod(x.shape[1:])
    for p in params:
        if type(p) is not np.ndarray or p.dtype is not dt or p.shape != (c,) \
                or not p.flags.c_contiguous:
            return False
    return True


def _bn_run(xa: FloatArray, g: FloatArray, bt: FloatArray, rm: FloatArray, rv: FloatArray,
            training: bool, mom: float, mode: str, n: int, c: int, inner: int,
            out: Optional[FloatArray], xc_out: Optional[FloatArray],
            where: str) -> BatchNormResult:
    res = _out(out, xa.shape, xa.dtype, where)
    if out is not None or xc_out is not None:
        _disjoint(where, (("out", out), ("xc_out", xc_out)),
                  (("x", xa), ("gamma", g), ("beta", bt), ("running_mean", rm),
                   ("running_var", rv)))
    nt = get_num_threads()
    flat = xa.reshape(-1)
    if not training:
        _BnTest(flat, n, c, inner, g, bt, rm, rv, res.reshape(-1), nt)
        return BatchNormResult(res, rm, rv, None)
    shape = xa.shape if mode == "spatial" else (n, c)
    xc = _out(xc_out, shape, xa.dtype, where, "xc_out")
    std = np.empty(c, dtype=xa.dtype)
    rm_new = np.empty(c, dtype=xa.dtype)
    rv_new = np.empty(c, dtype=xa.dtype)
    _BnTrain(flat, n, c, inner, g, bt, rm, rv, mom, res.reshape(-1), xc.reshape(-1), None,
             std, rm_new, rv_new, nt)
    return BatchNormResult(res, rm_new, rv_new, BatchNormCache(xc, None, std, mode))


def batch_norm_backward(dout: npt.ArrayLike, cache: BatchNormCache, gamma: npt.ArrayLike, *,
                        out: Optional[FloatArray] = None,
                        dgamma_out: Optional[FloatArray] = None,
                        dbeta_out: Optional[FloatArray] = None
                        ) -> Tuple[FloatArray, FloatArray, FloatArray]:
    """(dx, dgamma, dbeta) of a training ``batch_norm`` from its ``cache``; ``out``
    receives dx."""
    where = "batch_norm_backward"
    if not isinstance(cache, BatchNormCache):
        raise TypeError(f"{where}: cache must be the BatchNormCache of a training batch_norm, "
                        f"got {type(cache).__name__}")
    mode = cache.mode
    if type(dout) is np.ndarray and type(cache.xc) is np.ndarray and cache.xn is None \
            and dout.ndim in (2, 4) and (mode == "feature" or dout.ndim == 4) \
            and mode in ("feature", "spatial") and dout.flags.c_contiguous \
            and cache.xc.flags.c_contiguous and cache.xc.size == dout.size \
            and _bn_fast(dout, mode, cache.std, gamma) and cache.xc.dtype is dout.dtype:
        # the common call (a cache of batch_norm's, arrays of one dtype): no conversions
        n, c, inner = _bn_geometry(dout.shape, mode)
        assert isinstance(gamma, np.ndarray)
        if n >= 1:
            return _bn_backward_run(dout, cache.xc, None, cache.std, gamma, n, c, inner, out,
                                    dgamma_out, dbeta_out, where)
    da = _arr(dout, where, "dout")
    if mode == "spatial":
        _c.check_ndim(da, 4, where, "dout", "(N, C, H, W) in mode 'spatial'")
    else:
        _c.check_ndim(da, (2, 4), where, "dout", "(N, D) or (N, C, H, W)")
    n, c, inner = _bn_geometry(da.shape, mode)
    xc_size = np.size(cache.xc)
    if xc_size != da.size or np.shape(cache.std) != (c,) \
            or (cache.xn is not None and np.size(cache.xn) != xc_size):
        raise ValueError(f"{where}: dout has shape {tuple(da.shape)} but the forward "
                         f"normalised {xc_size} values of {np.shape(cache.std)[0]} channels")
    if cache.xn is None:
        da, xc, std, g = _common(where, ("dout", da), ("xc", cache.xc), ("std", cache.std),
                                 ("gamma", gamma))
        xn = None
    else:
        da, xc, xn, std, g = _common(where, ("dout", da), ("xc", cache.xc),
                                     ("xn", cache.xn), ("std", cache.std), ("gamma", gamma))
    _c.check_shape_match(g, (c,), where, "gamma", "one value per channel or feature")
    if n < 1:
        raise ValueError(f"{where}: dout must hold at least one sample")
    return _bn_backward_run(da, xc, xn, std, g, n, c, inner, out, dgamma_out, dbeta_out,
                            where)


def _bn_backward_run(da: FloatArray, xc: FloatArray, xn: Optional[FloatArray],
                     std: FloatArray, g: FloatArray, n: int, c: int, inner: int,
                     out: Optional[FloatArray], dgamma_out: Optional[FloatArray],
                     dbeta_out: Optional[FloatArray],
                     where: str) -> Tuple[FloatArray, FloatArray, FloatArray]:
    dx = _out(out, da.shape, da.dtype, where)
    if out is not None or dgamma_out is not None or dbeta_out is not None:
        _disjoint(where, (("out", out), ("dgamma_out", dgamma_out), ("dbeta_out", dbeta_out)),
                  (("dout", da), ("xc", xc), ("xn", xn), ("std", std), ("gamma", g)))
    dgamma = _out(dgamma_out, (c,), da.dtype, where, "dgamma_out")
    dbeta = _out(dbeta_out, (c,), da.dtype, where, "dbeta_out")
    _BnBackward(da.reshape(-1), xc.reshape(-1), None if xn is None else xn.reshape(-1), std,
                g, n, c, inner, dx.reshape(-1), dgamma, dbeta, get_num_threads())
    return dx, dgamma, dbeta


# ---- activations and dropout ----------------------------------------------------------

def _mask_arg(mask: Any, shape: Shape, where: str, name: str = "mask",
              out: bool = False) -> npt.NDArray[np.uint8]:
    """A bool mask of ``shape`` as the kernels' flat uint8 view; an output mask must be a
    writeable C-contiguous bool array (written in place), an input one is converted."""
    if type(mask) is np.ndarray and mask.dtype is _BOOL and mask.shape == shape:
        f = mask.flags
        if f.c_contiguous and (f.writeable or not out):  # the common call
            u8: npt.NDArray[np.uint8] = mask.view(np.uint8)
            return u8 if u8.ndim == 1 else u8.reshape(-1)
    if out:
        if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ \
                or mask.shape != shape or not mask.flags.c_contiguous \
                or not mask.flags.writeable:
            got = (f"{mask.dtype} {tuple(mask.shape)}" if isinstance(mask, np.ndarray)
                   else type(mask).__name__)
            raise ValueError(f"{where}: {name} must be a writeable C-contiguous bool array "
                             f"of shape {shape}, got {got}")
        m: npt.NDArray[np.bool_] = mask
    else:
        m = np.asarray(mask)
        if m.dtype != np.bool_ or m.shape != shape:
            raise ValueError(f"{where}: {name} must be a bool array of shape {shape}, "
                             f"got {m.dtype} {tuple(m.shape)}")
        m = np.ascontiguousarray(m)
    return m.view(np.uint8).reshape(-1)


def relu(x: npt.ArrayLike, *, out: Optional[FloatArray] = None,
         mask: Optional[npt.NDArray[np.bool_]] = None) -> FloatArray:
    """max(0, x) as the Relu layer: 0 where x <= 0 (so -0.0 becomes 0.0), NaN kept.
    ``mask``, a writeable C-contiguous bool array of x's shape, receives ``x <= 0`` (the
    Relu layer's mask, for ``relu_backward(dout, mask=mask)``)."""
    xa = _arr(x, "relu", "x")
    res = _out(out, xa.shape, xa.dtype, "relu")
    if xa.ndim == 1:
        m = (np.empty(xa.shape[0], dtype=np.uint8) if mask is None
             else _mask_arg(mask, xa.shape, "relu", out=True))
        _ReluForward(xa, res, m, get_num_threads())
    else:
        m = (np.empty(xa.size, dtype=np.uint8) if mask is None
             else _mask_arg(mask, xa.shape, "relu", out=True))
        _ReluForward(xa.reshape(-1), res.reshape(-1), m, get_num_threads())
    return res


def relu_backward(dout: npt.ArrayLike, x: Optional[npt.ArrayLike] = None, *,
                  mask: Optional[npt.ArrayLike] = None,
                  out: Optional[FloatArray] = None) -> FloatArray:
    """dout where the forward's x > 0, else 0 (the gradient is 0 at x == 0). Give the
    forward's ``x``, or the ``mask`` (x <= 0) that ``relu(x, mask=...)`` wrote."""
    where = "relu_backward"
    da = _arr(dout, where, "dout")
    if (x is None) == (mask is None):
        raise TypeError(f"{where}: give x or mask (exactly one)")
    if mask is None:
        xa = _arr(x, where, "x")
        _c.check_shape_match(da, xa.shape, where, "dout", "the shape of x")
        m = np.less_equal(xa, 0).view(np.uint8).reshape(-1)
    else:
        m = _mask_arg(mask, da.shape, where)
    dx = _out(out, da.shape, da.dtype, where)
    _ReluBackward(da.reshape(-1), m, dx.reshape(-1), get_num_threads())
    return dx


def sigmoid(x: npt.ArrayLike, *, out: Optional[FloatArray] = None) -> FloatArray:
    """1 / (1 + exp(-x)), without overflow for large |x|."""
    xa = _arr(x, "sigmoid", "x")
    res = _out(out, xa.shape, xa.dtype, "sigmoid")
    if xa.ndim == 1:
        _Sigmoid(xa, res, False, get_num_threads())
    else:
        _Sigmoid(xa.reshape(-1), res.reshape(-1), False, get_num_threads())
    return res


def sigmoid_backward(dout: npt.ArrayLike, y: npt.ArrayLike, *,
                     out: Optional[FloatArray] = None) -> FloatArray:
    """dout * (1 - y) * y for the forward's output y."""
    where = "sigmoid_backward"
    da, ya = _common(where, ("dout", dout), ("y", y))
    _c.check_shape_match(da, ya.shape, where, "dout", "the shape of y")
    dx = _out(out, da.shape, da.dtype, where)
    _SigmoidBackward(da.reshape(-1), ya.reshape(-1), dx.reshape(-1), get_num_threads())
    return dx


def dropout(x: npt.ArrayLike, ratio: float = 0.5, *, training: bool = True,
            rng: Optional[np.random.Generator] = None,
            mask: Optional[npt.ArrayLike] = None, out: Optional[FloatArray] = None
            ) -> Tuple[FloatArray, Optional[npt.NDArray[np.bool_]]]:
    """Non-inverted dropout, as the Dropout layer: training ``(x * mask, mask)`` with ``mask
    = uniform(x.shape) > ratio`` drawn from ``rng`` (a ``numpy.random.Generator``), or the
    ``mask`` given, or (neither) ``np.random.rand`` (the layer's draws); evaluation ``(x *
    (1 - ratio), None)``."""
    where = "dropout"
    xa = _arr(x, where, "x")
    r: float = _c.check_real(ratio, "dropout_ratio", where)
    if not 0.0 <= r <= 1.0:
        raise ValueError(f"{where}: dropout_ratio must be in [0, 1], got {r}")
    if rng is not None and mask is not None:
        raise ValueError(f"{where}: give rng or mask, not both")
    res = _out(out, xa.shape, xa.dtype, where)
    if not training:
        _Scale(xa.reshape(-1), 1.0 - r, res.reshape(-1), get_num_threads())
        return res, None
    if mask is not None:
        m = np.asarray(mask, order="C")
        flat = _mask_arg(m, xa.shape, where)
    else:
        if rng is None:
            m = np.asarray(np.random.rand(*xa.shape) > r)
        elif isinstance(rng, np.random.Generator):
            m = np.asarray(rng.random(xa.shape) > r)
        else:
            raise TypeError(f"{where}: rng must be a numpy.random.Generator, got "
                            f"{type(rng).__name__}")
        flat = m.view(np.uint8).reshape(-1)
    _MulMask(xa.reshape(-1), flat, res.reshape(-1), get_num_threads())
    return res, m


def dropout_backward(dout: npt.ArrayLike, mask: npt.ArrayLike, *,
                     out: Optional[FloatArray] = None) -> FloatArray:
    """dout * mask."""
    where = "dropout_backward"
    da = _arr(dout, where, "dout")
    m = _mask_arg(mask, da.shape, where)
    dx = _out(out, da.shape, da.dtype, where)
    _MulMask(da.reshape(-1), m, dx.reshape(-1), get_num_threads())
    return dx


# ---- optimizer steps, in place --------------------------------------------------------
# The optimizers' exact forms (nnfast.optimizer, epsilon 1e-7), on one parameter array and
# its state arrays, all of one float dtype and shape; everything is checked before any
# array is written. Returns ``param``.

def _step(where: str, op: str, param: Any, grad: Any, states: Tuple[Tuple[str, Any], ...],
          a: float, b: float = 0.0, c: float = 0.0) -> FloatArray:
    if type(param) is np.ndarray and type(grad) is np.ndarray:
        # the common call (one dtype, one shape, C-contiguous, writeable): straight to the
        # kernel, which refuses overlapping arrays before writing anything; anything else,
        # or a refusal, takes the checks below (which name the problem, or copy an
        # aliased grad)
        dt = param.dtype
        pf = param.flags
        if (dt is _F64 or dt is _F32) and grad.dtype is dt and grad.shape == param.shape \
                and pf.c_contiguous and pf.writeable and grad.flags.c_contiguous:
            s: list[Any] = [None, None]
            for i, (_, arr) in enumerate(states):
                if type(arr) is not np.ndarray or arr.dtype is not dt \
                        or arr.shape != param.shape:
                    break
                af = arr.flags
                if not (af.c_contiguous and af.writeable):
                    break
                s[i] = arr if arr.ndim == 1 else arr.reshape(-1)
            else:
                p1 = param if param.ndim == 1 else param.reshape(-1)
                g1 = grad if grad.ndim == 1 else grad.reshape(-1)
                try:
                    _OptimUpdate(_OPT[op], p1, g1, s[0], s[1], a, b, c, get_num_threads())
                    result: FloatArray = param
                    return result
                except ValueError:
                    pass
    arrays = (("param", param),) + states
    for name, arr in arrays:
        if type(arr) is not np.ndarray:
            _c.check_float_ndarray(arr, where, name)
        if not arr.flags.writeable:
            raise ValueError(f"{where}: {name} must be writeable")
    p: FloatArray = param
    dt = p.dtype
    if dt != _F64 and dt != _F32:
        _c.check_float_ndarray(p, where, "param")
    g = grad if type(grad) is np.ndarray else _c.as_float_array(grad, where, "grad")
    if g.shape != p.shape:
        raise ValueError(f"{where}: grad must have the shape of param {tuple(p.shape)}, "
                         f"got shape {tuple(g.shape)}")
    if g.dtype != dt:
        g = _c.as_float_array(g, where, "grad").astype(dt)
    for name, arr in states:
        if arr.shape != p.shape or arr.dtype != dt:
            raise ValueError(f"{where}: {name} must have param's shape {tuple(p.shape)} and "
                             f"dtype {dt}, got {arr.dtype} {tuple(arr.shape)}")
    for i, (name, arr) in enumerate(arrays):
        for other, brr in arrays[i + 1:]:
            if np.may_share_memory(arr, brr):
                raise ValueError(f"{where}: {name} and {other} must not share memory")
    if np.may_share_memory(g, p):
        g = g.copy()
    s = [arr for _, arr in states] + [None] * (2 - len(states))
    if all(arr.flags.c_contiguous and arr.dtype.isnative for _, arr in arrays):
        if not g.flags.c_contiguous or not g.dtype.isnative:
            g = np.ascontiguousarray(g, dtype=dt.newbyteorder("="))
        if p.ndim == 1:
            _OptimUpdate(_OPT[op], p, g, s[0], s[1], a, b, c, get_num_threads())
        else:
            _OptimUpdate(_OPT[op], p.reshape(-1), g.reshape(-1),
                         None if s[0] is None else s[0].reshape(-1),
                         None if s[1] is None else s[1].reshape(-1), a, b, c,
                         get_num_threads())
    else:  # strided or byte-swapped arrays: the same forms in NumPy, in place
        _fb.optim_update(_fb_code(op), p, g, s[0], s[1], a, b, c)
    return p


def _optim_flat(op: str, p: FloatArray, g: FloatArray, s1: Optional[FloatArray],
                s2: Optional[FloatArray], a: float, b: float, c: float) -> None:
    """The update ``op`` ('SGD', ..., 'ADAM') on flat arrays a caller has already checked
    (nnfast.optimizer: one dtype and length, C-contiguous, writeable, native; the kernel's
    three scalars, Adam's lr_t already formed): the steps above without their checks. The
    kernel still refuses overlapping arrays (ValueError, nothing written)."""
    _OptimUpdate(_OPT[op], p, g, s1, s2, a, b, c, get_num_threads())


def _fb_code(op: str) -> int:
    code: int = getattr(_fb, f"OPT_{op}")
    return code


def _hp(value: Any, name: str, where: str) -> float:
    if type(value) is float:
        return value
    v: float = _c.check_real(value, name, where)
    return v


def sgd_(param: FloatArray, grad: npt.ArrayLike, lr: float = 0.01) -> FloatArray:
    """``param -= lr*grad``."""
    return _step("sgd_", "SGD", param, grad, (), _hp(lr, "lr", "sgd_"))


def momentum_(param: FloatArray, grad: npt.ArrayLike, velocity: FloatArray,
              lr: float = 0.01, momentum: float = 0.9) -> FloatArray:
    """``velocity = momentum*velocity - lr*grad; param += velocity``."""
    w = "momentum_"
    return _step(w, "MOMENTUM", param, grad, (("velocity", velocity),), _hp(lr, "lr", w),
                 _hp(momentum, "momentum", w))


def nesterov_(param: FloatArray, grad: npt.ArrayLike, velocity: FloatArray,
              lr: float = 0.01, momentum: float = 0.9) -> FloatArray:
    """``param += m*m*v; param -= (1+m)*lr*grad; v *= m; v -= lr*grad``."""
    w = "nesterov_"
    return _step(w, "NESTEROV", param, grad, (("velocity", velocity),), _hp(lr, "lr", w),
                 _hp(momentum, "momentum", w))


def adagrad_(param: FloatArray, grad: npt.ArrayLike, h: FloatArray,
             lr: float = 0.01) -> FloatArray:
    """``h += grad*grad; param -= lr*grad/(sqrt(h) + 1e-7)``."""
    return _step("adagrad_", "ADAGRAD", param, grad, (("h", h),), _hp(lr, "lr", "adagrad_"))


def rmsprop_(param: FloatArray, grad: npt.ArrayLike, h: FloatArray, lr: float = 0.01,
             decay_rate: float = 0.99) -> FloatArray:
    """``h *= rho; h += (1-rho)*grad*grad; param -= lr*grad/(sqrt(h) + 1e-7)``."""
    w = "rmsprop_"
    return _step(w, "RMSPROP", param, grad, (("h", h),), _hp(lr, "lr", w),
                 _hp(decay_rate, "decay_rate", w))


def adam_(param: FloatArray, grad: npt.ArrayLike, m: FloatArray, v: FloatArray, step: int,
          lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999) -> FloatArray:
    """Adam's update number ``step`` (1 for the first): ``lr_t = lr*sqrt(1-beta2**step)/
    (1-beta1**step); m += (1-beta1)*(grad-m); v += (1-beta2)*(grad**2-v); param -=
    lr_t*m/(sqrt(v) + 1e-7)``."""
    w = "adam_"
    it = _int(step, "step", w)
    lr_f, b1, b2 = _hp(lr, "lr", w), _hp(beta1, "beta1", w), _hp(beta2, "beta2", w)
    # as nnfast.optimizer.Adam: in Python floats
    lr_t = lr_f * math.sqrt(1.0 - b2 ** it) / (1.0 - b1 ** it)
    return _step(w, "ADAM", param, grad, (("m", m), ("v", v)), lr_t, b1, b2)
