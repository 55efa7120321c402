"""Layer classes (native API): forward/backward with the reference's state.

Each class is a thin state holder over ``nnfast.ops`` (one seam: layers -> ops -> the
compiled module, or per op its NumPy stand-in without it): the layer keeps the
reference's state, validation and messages and its reusable buffers, and calls the ops
for the arithmetic (dtype-preserving: float32 stays float32, where the original computed
in float64). The Affine GEMM is ``numpy.matmul`` on one BLAS thread; names, attributes
and semantics are the reference's, and so are the numbers: bit for bit for Relu, Sigmoid, Affine,
Dropout and BatchNormalization (per-feature mode), ~1e-12 relative (float64) for
SoftmaxWithLoss and BatchNormalization's spatial mode. Inputs of mixed dtypes (e.g.
float32 x with float64 W) follow NumPy promotion through the reference code.

``Relu.backward`` never writes into ``dout`` (the original toolkit zeroed it in
place; reproducing that aliasing is the compatibility profiles' job, not the native API's).
Arrays handed out (outputs, ``dx``, ``dW``/``db``/``dgamma``/``dbeta``) are never
overwritten by a later call while anything outside the layer still refers to them:
a layer reuses a buffer only when its reference count shows the layer is its sole owner.
"""
from __future__ import annotations

import math
import sys
import sysconfig
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import numpy.typing as npt

from . import ops
from ._checks import (as_float_array, check_min_ndim, check_ndim, check_real,
                      check_shape_match, kernel_input, require_forward, xent_teacher)
from .reference import functions as _ref_functions
from .reference import layers as _ref
from .reference.functions import FloatArray
from .reference.layers import ConvGeometry

#: The key a Convolution's plan is kept under: (x.shape[1:], W.shape, stride, pad, the
#: ``ops.conv_plan`` that made it).
_PlanKey = Tuple[Tuple[int, ...], Tuple[int, ...], int, int, Any]


class Convolution:
    """2-D convolution (cross-correlation), compiled: direct kernels or im2col + GEMM.

    x (N, C, H, W), W (FN, C, FH, FW), b (FN,) -> out (N, FN, OH, OW) with
    OH = (H + 2*pad - FH)//stride + 1. Same state as the reference: ``x``,
    ``col`` (N*OH*OW, C*FH*FW), ``col_W`` (C*FH*FW, FN, a view of W), and after
    backward ``dW``, ``db``. ``skip_dx`` (default False): backward computes
    ``dW``/``db`` only and returns None.

    Differences from the original, all invisible in float64: float32 inputs are
    computed in float32 (the original upcast to float64); a 1x1, stride-1,
    unpadded filter skips im2col (``col`` is then built when first read); for
    outputs of 128 positions or more the columns are kept per image, (N, C*FH*FW,
    OH*OW), so each image's GEMM writes its NCHW output directly (``col`` is converted
    to the reference's layout when first read); with stride 1 on a CPU with AVX2 or
    AVX-512 those outputs are computed by direct convolution kernels instead, which
    build no columns at all (``col`` is then built when first read; set
    ``NNFAST_DIRECT_CONV=0`` to turn them off); the column buffer is reused by the next forward unless ``col`` was read, so an
    array a user holds is never overwritten. Results equal the reference's to
    ~1e-12 relative in float64 (GEMMs of another shape, or the direct kernels' fused
    multiply-adds, sum in another order and round differently).
    As in the reference, ``x`` is the caller's array, not a copy: on the 1x1 and direct
    paths the backward pass reads it again, so do not change it in place between forward
    and backward. The arithmetic is ``nnfast.ops.conv2d``/``conv2d_backward``, with the
    layer's ``ConvPlan`` (``plan``, chosen once per geometry) and ``ConvWorkspace``.
    ``grad_out``: as Affine's, buffers that backward writes dW and db into.
    """

    skip_dx = False
    _params = _ref.Convolution._params

    def __init__(self, W: FloatArray, b: FloatArray, stride: int = 1, pad: int = 0) -> None:
        self.W = W
        self.b = b
        self.stride = stride
        self.pad = pad
        self.x: Optional[FloatArray] = None
        self.col_W: Optional[FloatArray] = None
        self.dW: Optional[FloatArray] = None
        self.db: Optional[FloatArray] = None
        # scratch buffers and the last forward's columns (None after a direct forward
        # until ``col`` is read); ``_work`` is its buffer dict
        self._ws = ops.ConvWorkspace()
        self._work = self._ws.buffers
        self._geometry: Optional[ConvGeometry] = None  # of the last forward
        # (x, the kernels' copy of it) of the last forward (see _promoted)
        self._xk: Optional[Tuple[FloatArray, FloatArray]] = None
        self._bias_after = False  # the last forward added a wider bias after the product
        # (geometry, ConvPlan): chosen once per geometry, kept here (a ConvPlan comes from
        # the untyped nnfast._dispatch, hence Any)
        self._plan: Optional[Tuple[_PlanKey, Any]] = None
        self.grad_out: Optional[Dict[str, FloatArray]] = None  # as Affine.grad_out

    @property
    def plan(self) -> Any:
        """The ConvPlan of the last forward's geometry (None before the first forward):
        which kernels run the forward/filter gradient and the input gradient."""
        return None if self._plan is None else self._plan[1]

    def _plan_for(self, x: FloatArray, W: FloatArray, stride: int, pad: int) -> Any:
        key: _PlanKey = (x.shape[1:], W.shape, stride, pad, ops._conv_plan_setting())
        if self._plan is None or self._plan[0] != key:
            self._plan = (key, ops.conv_plan(x.shape, W.shape, stride, pad))
        return self._plan[1]

    @property
    def _col(self) -> Optional[FloatArray]:
        return self._ws.columns

    @property
    def col(self) -> Optional[FloatArray]:
        """im2col of the last forward's x, (N*OH*OW, C*FH*FW)."""
        ws = self._ws
        if ws.columns is None and self.x is not None:
            # set with x
            (_, _, fh, fw), stride, pad, _, _ = require_forward(self._geometry, "Convolution.col")
            ws.columns, ws.x = ops.im2col(self.x, fh, fw, stride, pad), None
        elif ws.columns is not None and ws.columns.ndim == 3:
            # planar columns (N, K, P): hand out the reference's layout, a fresh array
            n, k, p = ws.columns.shape
            ws.release_columns()
            ws.columns = ws.columns.transpose(0, 2, 1).reshape(n * p, k)
        col = ws.release_columns()  # handed out: the next forward writes a new buffer
        if col is not None and self.x is not None and col.dtype != self.x.dtype:
            # built from the promoted copy of x (exactly x's values): in x's dtype, as the
            # reference's im2col gives it
            col = ws.columns = col.astype(self.x.dtype)
            ws.x = None
        return col

    @col.setter
    def col(self, value: Any) -> None:
        self._ws.columns, self._ws.x = value, None

    def _kernel_args(self, x: FloatArray, W: FloatArray, b: FloatArray) -> Tuple[
            FloatArray, FloatArray, Optional[FloatArray]]:
        """(x, W, b) for the kernels, in one dtype with the reference's values: the
        reference's product converts its operands to the wider dtype, so converting first
        changes nothing. The one exception, x and W of one dtype with a wider b (the
        product is in the narrower dtype, the bias added after): b is None here and the
        forward adds it."""
        xk = _promoted(x, W, b)
        if _same_dtype(xk, W, b):
            return xk, W, b
        dt = np.result_type(xk, W)
        if np.result_type(dt, b) != dt:
            return xk.astype(dt, copy=False), W.astype(dt, copy=False), None
        return xk.astype(dt, copy=False), W.astype(dt, copy=False), b.astype(dt)

    def forward(self, x: npt.ArrayLike) -> FloatArray:
        x, W, b, stride, pad, out_h, out_w = _ref._conv_forward_args(
            self, x, "Convolution.forward")
        xk, Wk, bk = self._kernel_args(x, W, b)
        # The kernels overwrite the reused column buffer, which the last forward's state
        # points at: should they fail midway (MemoryError, Ctrl-C), backward must refuse
        # rather than pair the old x with the new columns. (Argument errors raised above
        # leave the state untouched.)
        self.x = None
        out = ops.conv2d(xk, Wk, bk, stride, pad, plan=self._plan_for(xk, Wk, stride, pad),
                         workspace=self._ws)
        if bk is None:
            out = out + b.reshape(-1, 1, 1)
        self._set_forward_state(x, xk, W, b, stride, pad, out_h, out_w)
        return out

    def _set_forward_state(self, x: FloatArray, xk: FloatArray, W: FloatArray,
                           b: FloatArray, stride: int, pad: int, out_h: int,
                           out_w: int) -> None:
        self.x, self._xk = x, (x, xk)
        self._bias_after = not _same_dtype(xk, b) and np.result_type(xk, b) != xk.dtype
        self.col_W = W.reshape(W.shape[0], -1).T
        self._geometry = (W.shape, stride, pad, out_h, out_w)

    def _forward_relu(self, x: npt.ArrayLike, relu: Relu) -> FloatArray:
        """``relu.forward(self.forward(x))`` in one pass where the direct kernels run this
        layer (a network declares the pair when it is built): both layers end in the same
        state, the convolution's output is never stored."""
        x, W, b, stride, pad, out_h, out_w = _ref._conv_forward_args(
            self, x, "Convolution.forward")
        xk, Wk, bk = self._kernel_args(x, W, b)
        if bk is None:
            return relu.forward(self.forward(x))
        shape = (x.shape[0], W.shape[0], out_h, out_w)
        mask = relu._buf.get("mask", shape, np.bool_, holder=relu.mask)
        self.x = None
        out = ops.conv2d(xk, Wk, bk, stride, pad, relu_mask=mask,
                         plan=self._plan_for(xk, Wk, stride, pad), workspace=self._ws)
        self._set_forward_state(x, xk, W, b, stride, pad, out_h, out_w)
        relu.mask = mask
        return out

    def backward(self, dout: npt.ArrayLike) -> Any:
        dout, (w_shape, stride, pad, _, _) = _ref._conv_backward_args(
            self, dout, "Convolution.backward")
        assert self.x is not None and self.col_W is not None
        # the filters of the last forward, as the reference (through col_W)
        W = self.col_W.T.reshape(w_shape)
        xk = self._xk[1] if self._xk is not None and self._xk[0] is self.x else self.x
        ws = self._ws
        if ws.columns is not None and ws.x is None:
            ws.x = xk  # columns built from (or assigned for) the forward's x: use them
        dt = np.result_type(dout, xk, W)
        dW_out, db_out = _grad_buffers(self, "Convolution.backward",
                                       (("W", "dW", W.shape), ("b", "db", (W.shape[0],))), dt,
                                       reuse=False)
        dx, dW, db = ops.conv2d_backward(dout, xk, W, stride, pad, not self.skip_dx,
                                         plan=self.plan, workspace=ws, dw_out=dW_out,
                                         db_out=db_out)
        # the reference's dtypes: db dout's, dW (x, dout)'s, dx (dout, W)'s
        self.dW = dW.astype(np.result_type(self.x, dout), copy=False)
        self.db = db.astype(dout.dtype, copy=False)
        if dx is not None:
            dx = dx.astype(np.result_type(dout, W), copy=False)
        return dx


class Pooling(_ref._Pool2d):
    """Max pooling over (pool_h, pool_w) windows, compiled (no im2col).

    x (N, C, H, W) -> out (N, C, OH, OW), OH = (H + 2*pad - pool_h)//stride + 1.
    Padding acts as -inf; ties go to the first maximum in row-major window
    order; NaN propagates. ``arg_max`` reads as the reference's: 1-D, length
    N*OH*OW*C, ordered (n, oh, ow, c), the offset i*pool_w + j of each maximum
    (a read-only array built on first read; assigning one is accepted and
    used by backward). Backward scatters dout to the maxima, overlapping
    windows adding up, bit-equal to the reference.
    """

    def __init__(self, pool_h: int, pool_w: int, stride: int = 2, pad: int = 0) -> None:
        super().__init__(pool_h, pool_w, stride, pad)
        # (N, C, OH, OW) int32 window offsets of the last forward
        self._argmax: Optional[npt.NDArray[np.int32]] = None
        # the reference's layout, built when read (or what was assigned: before the first
        # forward, the setter stores any value unchecked, as the reference's attribute)
        self._arg_max: Optional[npt.NDArray[np.integer[Any]]] = None

    @property
    def arg_max(self) -> Optional[npt.NDArray[np.integer[Any]]]:
        if self._arg_max is None and self._argmax is not None:
            arg_max = self._argmax.transpose(0, 2, 3, 1).reshape(-1).astype(np.intp)
            arg_max.setflags(write=False)
            self._arg_max = arg_max
        return self._arg_max

    @arg_max.setter
    def arg_max(self, value: Any) -> None:
        if value is None or self._geometry is None:
            self._argmax, self._arg_max = None, value
            return
        where = "Pooling.arg_max"
        pool_h, pool_w, _, _, out_h, out_w = self._geometry
        n, c = require_forward(self.x, where).shape[:2]  # set with the geometry
        value = np.asarray(value)
        if value.dtype.kind not in "iu" or value.shape != (n * out_h * out_w * c,):
            raise ValueError(f"{where}: must be an integer array of shape "
                             f"({n * out_h * out_w * c},), got {value.dtype} {value.shape}")
        if value.size and (value.min() < 0 or value.max() >= pool_h * pool_w):
            raise ValueError(f"{where}: offsets must be in [0, {pool_h * pool_w})")
        self._argmax = np.ascontiguousarray(
            value.reshape(n, out_h, out_w, c).transpose(0, 3, 1, 2), dtype=np.int32)
        self._arg_max = value

    def forward(self, x: npt.ArrayLike) -> FloatArray:
        where = "Pooling.forward"
        x = as_float_array(x, where, "x")
        geometry = _ref._pool_geometry(self, x, where)
        pool_h, pool_w, stride, pad, _, _ = geometry
        out, argmax = ops.max_pool2d(x, pool_h, pool_w, stride, pad)
        self.x = x
        self._argmax = argmax
        self._arg_max = None
        self._geometry = geometry
        return out

    def backward(self, dout: npt.ArrayLike) -> Any:
        where = "Pooling.backward"
        dout, (pool_h, pool_w, stride, pad, _, _) = self._backward_args(dout, where)
        # x checked by _backward_args; _argmax set with it (None if arg_max was set to None)
        x, argmax = require_forward(self.x, where), require_forward(self._argmax, where)
        return ops.max_pool2d_backward(dout, argmax, x.shape, pool_h, pool_w, stride, pad)

    def _backward_relu(self, dout: npt.ArrayLike, relu: Relu) -> FloatArray:
        """``relu.backward(self.backward(dout))`` in one pass, for a Relu right before this
        layer (a network declares the pair when it is built): the pooling's dx is zeroed
        where the ReLU's mask is
        set as it is written, instead of in a second pass over it."""
        if relu.mask is None or relu.mask.shape != getattr(self.x, "shape", None):
            return relu.backward(self.backward(dout))
        where = "Pooling.backward"
        dout, (pool_h, pool_w, stride, pad, _, _) = self._backward_args(dout, where)
        x, argmax = require_forward(self.x, where), require_forward(self._argmax, where)
        return ops.max_pool2d_backward(dout, argmax, x.shape, pool_h, pool_w, stride, pad,
                                       relu_mask=relu.mask)


class AvgPooling(_ref._Pool2d):
    """Average pooling over (pool_h, pool_w) windows, compiled (no im2col).

    Zero padding counts in the divisor (PyTorch's ``count_include_pad=True``);
    output as :class:`Pooling`. Backward spreads ``dout / (pool_h*pool_w)``
    over each window, overlapping windows adding up (bit-equal to the
    reference). Cache: ``x``. Window sums accumulate in float64.
    """

    def forward(self, x: npt.ArrayLike) -> FloatArray:
        where = "AvgPooling.forward"
        x = as_float_array(x, where, "x")
        geometry = _ref._pool_geometry(self, x, where)
        pool_h, pool_w, stride, pad, _, _ = geometry
        out = ops.avg_pool2d(x, pool_h, pool_w, stride, pad)
        self.x = x
        self._geometry = geometry
        return out

    def backward(self, dout: npt.ArrayLike) -> Any:
        where = "AvgPooling.backward"
        dout, (pool_h, pool_w, stride, pad, _, _) = self._backward_args(dout, where)
        x = require_forward(self.x, where)  # checked by _backward_args: narrowed here
        return ops.avg_pool2d_backward(dout, x.shape, pool_h, pool_w, stride, pad)


# ---- dense layers on the compiled kernels (issue 4) -----------------------------------

class _Buffers:
    """Named work arrays a layer may reuse between calls.

    ``get`` hands back an earlier array of that name only if it has the requested shape
    and dtype and nothing but the layer refers to it (CPython reference count: a view, a
    dict entry or a variable elsewhere all count); otherwise a fresh array. ``holder`` is
    the layer attribute that may legitimately refer to it (e.g. ``self.mask``).

    Each name keeps two arrays: a layer's output is usually still held by the next layer
    (``Pooling.x``, ``Convolution.x``) when the next step's forward runs, so a single
    buffer would never be free; with two, steps alternate between them instead of
    allocating (and page-faulting) megabytes each time.
    """

    __slots__ = ("_arrays",)
    _SLOTS = 2
    _refs: Optional[int] = None  # the reference count of a private array, set once by _calibrate()

    def __init__(self) -> None:
        self._arrays: Dict[str, List[npt.NDArray[Any]]] = {}

    def count(self, name: str) -> int:
        """Reference count of the newest array of ``name``, seen from here (calibration)."""
        slots = self._arrays[name]
        a = slots[len(slots) - 1]
        return sys.getrefcount(a)

    def get(self, name: str, shape: Sequence[int], dtype: npt.DTypeLike,
            holder: Any = None) -> npt.NDArray[Any]:
        slots = self._arrays.setdefault(name, [])
        a: Optional[npt.NDArray[Any]]
        if self._refs is not None:
            held = [holder is slots[i] for i in range(len(slots))]
            holder = None  # drop this frame's reference before counting
            for i in range(len(slots)):
                a = slots[i]
                if (a.shape == shape and a.dtype == dtype
                        and sys.getrefcount(a) <= self._refs + held[i]):
                    return a
            a = None
        a = np.empty(shape, dtype=dtype)
        if len(slots) >= self._SLOTS:
            del slots[0]
        slots.append(a)
        return a


def _calibrate() -> Optional[int]:
    """References an array has when only a _Buffers holds it (measured, not assumed)."""
    if (sys.implementation.name != "cpython" or sys.version_info >= (3, 14)
            or sysconfig.get_config_var("Py_GIL_DISABLED")):
        # No reference counts to trust (other VMs; free-threaded builds; 3.14's
        # borrowed stack references): never reuse, always hand out fresh arrays.
        return None
    probe = _Buffers()
    probe.get("p", (1,), np.float64)
    return probe.count("p")


_Buffers._refs = _calibrate()


def _promoted(x: FloatArray, W: FloatArray, b: Optional[FloatArray]) -> FloatArray:
    """x in the dtype of the reference's first product with the parameters, when the
    parameters are float64 and x float32 (the toolkit's float32 images into its float64
    networks): that GEMM converts its operands, so converting x once, first, gives the same
    values, and the layer then runs its kernels in one dtype. Otherwise x itself (other
    mixtures keep the reference's promotion path)."""
    if (x.dtype == np.float32 and W.dtype == np.float64
            and (b is None or b.dtype == np.float64)):
        return x.astype(np.float64)
    return x


def _same_dtype(*arrays: npt.NDArray[Any]) -> bool:
    dt = arrays[0].dtype
    return all(a.dtype == dt for a in arrays[1:])


class Relu(_ref.Relu):
    __doc__ = _ref.Relu.__doc__

    def __init__(self) -> None:
        super().__init__()
        self._buf = _Buffers()

    def forward(self, x: npt.ArrayLike) -> FloatArray:
        x = kernel_input(x, "Relu.forward", "x")
        out = self._buf.get("out", x.shape, x.dtype)
        mask = self._buf.get("mask", x.shape, np.bool_, holder=self.mask)
        ops.relu(x, out=out, mask=mask)
        self.mask = mask
        return out

    def backward(self, dout: npt.ArrayLike) -> Any:
        where = "Relu.backward"
        mask = require_forward(self.mask, where)
        dout = as_float_array(dout, where, "dout")
        check_shape_match(dout, mask.shape, where, "dout", "the shape of the last forward's x")
        dout = kernel_input(dout, where, "dout")
        mask = np.asarray(mask, dtype=np.bool_, order="C")
        dx = self._buf.get("dx", dout.shape, dout.dtype)
        return ops.relu_backward(dout, mask=mask, out=dx)


class Sigmoid(_ref.Sigmoid):
    __doc__ = _ref.Sigmoid.__doc__

    def __init__(self) -> None:
        super().__init__()
        self._buf = _Buffers()

    def forward(self, x: npt.ArrayLike) -> FloatArray:
        x = kernel_input(x, "Sigmoid.forward", "x")
        out = self._buf.get("out", x.shape, x.dtype, holder=self.out)
        ops.sigmoid(x, out=out)
        self.out = out
        return out

    def backward(self, dout: npt.ArrayLike) -> Any:
        where = "Sigmoid.backward"
        out = require_forward(self.out, where)
        dout = as_float_array(dout, where, "dout")
        check_shape_match(dout, out.shape, where, "dout", "the shape of the last forward's x")
        if dout.dtype != out.dtype:
            return super().backward(dout)  # NumPy promotion, as the reference
        dout = kernel_input(dout, where, "dout")
        y = kernel_input(out, where, "out")
        dx = self._buf.get("dx", dout.shape, dout.dtype)
        return ops.sigmoid_backward(dout, y, out=dx)


class Affine(_ref.Affine):
    """``out = x @ W + b`` with x flattened to (N, D); W (D, M), b (M,).

    The GEMMs are ``numpy.matmul(..., out=)`` (the reference's own products, so float64
    results are bit-identical) and the bias is added in C. Caches ``x`` (the flattened
    input) and ``original_x_shape``; backward sets ``dW`` (D, M), ``db`` (M,) and returns
    dx in x's original shape, or None when ``skip_dx`` is True (only dW/db computed).
    Mixed dtypes (x, W, b not all alike) follow NumPy promotion via the reference code.
    ``grad_out``: None, or a dict {'W': array, 'b': array} of buffers (e.g. views of one
    flat gradient buffer) that backward writes dW and db into, and hands out as ``dW``,
    ``db`` (see ``nnfast.distributed``).
    """

    def __init__(self, W: FloatArray, b: FloatArray) -> None:
        super().__init__(W, b)
        self._buf = _Buffers()
        self._fast = False
        self.grad_out: Optional[Dict[str, FloatArray]] = None

    def forward(self, x: npt.ArrayLike) -> FloatArray:
        where = "Affine.forward"
        x = as_float_array(x, where, "x")
        check_min_ndim(x, 2, where, "x", "(N, D) or (N, ...)")
        W, b = _ref._check_affine_params(self.W, self.b, where)
        x = _promoted(x, W, b)  # float32 data into a float64 layer: the GEMM's conversion
        if not _same_dtype(x, W, b):
            out = super().forward(x)  # a failing call must not change the layer's state
            self._fast = False
            return out
        n = x.shape[0]
        features = math.prod(x.shape[1:])
        if features != W.shape[0]:
            return super().forward(x)  # raises the reference's error
        x2 = x.reshape(n, features)
        out = self._buf.get("out", (n, W.shape[1]), x.dtype)
        ops.affine(x2, W, b, out=out)
        self.original_x_shape = x.shape
        self.x = x2
        self._fast = True
        return out

    def backward(self, dout: npt.ArrayLike) -> Any:
        where = "Affine.backward"
        x = require_forward(self.x, where)
        dout = as_float_array(dout, where, "dout")
        W, _ = _ref._check_affine_params(self.W, self.b, where)
        n, d = x.shape
        if not self._fast or W.shape[0] != d or not _same_dtype(dout, W, x):
            return super().backward(dout)  # the reference's errors and promotion
        check_shape_match(dout, (n, W.shape[1]), where, "dout", "(N, M) of the last forward")
        dW, db = _grad_buffers(self, where, (("W", "dW", W.shape), ("b", "db", (W.shape[1],))),
                               dout.dtype)
        dx2 = None if self.skip_dx else self._buf.get("dx", (n, d), dout.dtype)
        dx, dW, db = ops.affine_backward(dout, x, W, not self.skip_dx, dx_out=dx2,
                                         dw_out=dW, db_out=db)
        self.dW = dW
        self.db = db
        return None if dx is None else _ref._reshaped(dx, self.original_x_shape)


def _grad_buffers(layer: Any, where: str, specs: Sequence[Tuple[str, str, Tuple[int, ...]]],
                  dtype: np.dtype[Any], reuse: bool = True) -> List[Any]:
    """The arrays a backward writes each parameter's gradient into: the layer's
    ``grad_out[param]`` when set (a writeable C-contiguous array of the parameter's shape,
    else ValueError), used when it has the gradient's dtype (a backward promoted by mixed
    dtypes gives its gradient in a new array instead, as without ``grad_out``); else a
    reusable buffer (``holder``: the gradient handed out last time), or None (a new array)
    when ``reuse`` is false."""
    outs: List[Any] = []
    grad_out = layer.grad_out
    for param, attr, shape in specs:
        g = None if grad_out is None else grad_out.get(param)
        if g is not None:
            if not isinstance(g, np.ndarray) or g.shape != tuple(shape) \
                    or not g.flags.c_contiguous or not g.flags.writeable:
                got = (f"{g.dtype} {tuple(g.shape)}" if isinstance(g, np.ndarray)
                       else type(g).__name__)
                raise ValueError(f"{where}: grad_out[{param!r}] must be a writeable "
                                 f"C-contiguous array of shape {tuple(shape)}, got {got}")
            if g.dtype == dtype:
                outs.append(g)
                continue
        if reuse:
            outs.append(layer._buf.get(attr, shape, dtype, holder=getattr(layer, attr)))
        else:
            outs.append(None)
    return outs


class SoftmaxWithLoss(_ref.SoftmaxWithLoss):
    """Softmax followed by cross-entropy, fused: one C pass per row computes the stable
    softmax ``y``, the loss (``-log(y[label] + 1e-7)``, averaged) and the gradient that
    ``backward`` returns; ``forward(x, t)`` returns the loss.

    x is (N, C) scores (or (C,) for one sample); t is (N,) labels of any integer dtype or
    (N, C) one-hot (detected by size, as the reference). Labels out of range: ValueError.
    Caches ``y``, ``t`` and ``loss``; ``backward(dout=1)`` ignores dout, as the original.
    """

    def __init__(self) -> None:
        super().__init__()
        self._dx: Optional[FloatArray] = None
        # (y, t) of the forward that computed _dx
        self._dx_for: Optional[Tuple[FloatArray, npt.NDArray[Any]]] = None
        self._buf = _Buffers()

    def forward(self, x: npt.ArrayLike, t: npt.ArrayLike) -> Any:
        where = "SoftmaxWithLoss.forward"
        x = as_float_array(x, where, "x")
        check_ndim(x, (1, 2), where, "x", "(N, C) or (C,)")
        if x.shape[-1] == 0:
            return super().forward(x, t)  # the reference's error
        d, x2 = _ref_functions._as_batch(t, x, "cross_entropy_error")
        labels, dense = xent_teacher(d, x2, "cross_entropy_error")
        one_hot = np.asarray(d).size == x2.size
        x2 = kernel_input(x2, where, "x")
        buf = self._buf
        # y and dx in x's shape (no views), so reference counts tell who holds them
        y = buf.get("y", x.shape, x2.dtype, holder=self.y)
        # a one-hot float teacher of another dtype: the reference's y - t promotes, so the
        # gradient is not fused (backward computes it as the reference)
        fuse = dense is not None or not one_hot
        dx = buf.get("dx", x.shape, x2.dtype, holder=self._dx) if fuse else None
        teacher = dense if dense is not None else (d if one_hot else labels)
        loss, _ = ops.softmax_cross_entropy(x2, teacher,
                                            out=None if dx is None else dx.reshape(x2.shape),
                                            y_out=y.reshape(x2.shape))
        self.y = y
        self.t = np.asarray(t)
        self.loss = y.dtype.type(loss)
        self._dx = dx
        self._dx_for = (self.y, self.t)
        return self.loss

    def backward(self, dout: Any = 1) -> FloatArray:
        require_forward(self.y, "SoftmaxWithLoss.backward")
        dx, self._dx = self._dx, None  # handed out once, never written again
        if dx is None or self._dx_for is None or self._dx_for[0] is not self.y \
                or self._dx_for[1] is not self.t:
            return super().backward(dout)  # caches rebound since forward: recompute
        return dx


class Dropout(_ref.Dropout):
    __doc__ = _ref.Dropout.__doc__ + (  # type: ignore[operator]  # the reference has a docstring
        """
    The uniform draws and the comparison are NumPy's (``np.random.rand(*x.shape) >
    ratio``, so seeded runs match the reference); the products run in C.
    """)

    def forward(self, x: npt.ArrayLike, train_flg: bool = True) -> FloatArray:
        where = "Dropout.forward"
        x = as_float_array(x, where, "x")
        ratio = _ref._check_ratio(self.dropout_ratio, where)
        x = kernel_input(x, where, "x")
        # the draws and the comparison are the reference's own NumPy calls (SIMD)
        out, mask = ops.dropout(x, ratio, training=train_flg)
        if train_flg:
            self.mask = mask
        return out

    def backward(self, dout: npt.ArrayLike) -> Any:
        where = "Dropout.backward"
        mask = require_forward(self.mask, where, "a forward with train_flg=True")
        dout = as_float_array(dout, where, "dout")
        check_shape_match(dout, mask.shape, where, "dout",
                          "the shape of the last training forward's x")
        dout = kernel_input(dout, where, "dout")
        return ops.dropout_backward(dout, np.asarray(mask, dtype=np.bool_))


class BatchNormalization(_ref.BatchNormalization):
    __doc__ = _ref.BatchNormalization.__doc__ + (  # type: ignore[operator]
        """
    Compiled: the statistics, normalisation and backward run in C, each channel's sums in
    the reference's order and dtype (float64 results are bit-identical in 'feature' mode).
    In 'spatial' mode the caches ``xc`` and ``xn`` keep x's (N, C, H, W) layout (the
    reference stores them transposed to (N*H*W, C)). Mixed dtypes (e.g. float32 x with
    float64 gamma or running stats) follow NumPy promotion via the reference code.
    """)

    def __init__(self, gamma: FloatArray, beta: FloatArray, momentum: float = 0.9,
                 running_mean: Optional[FloatArray] = None,
                 running_var: Optional[FloatArray] = None, mode: str = "feature") -> None:
        self._xn: Optional[FloatArray] = None
        self._xn_lazy = False  # xn not stored: xc / std, formed when first read
        super().__init__(gamma, beta, momentum, running_mean, running_var, mode)
        self._kernel_caches = False  # whether xc/xn/std come from the kernels
        self._buf = _Buffers()
        self.grad_out: Optional[Dict[str, FloatArray]] = None  # as Affine.grad_out

    # The kernels do not store xn = xc / std (one array less to write in forward and to
    # read in backward: the passes are memory-bound); backward forms it again, bit for bit.
    # Reading ``layer.xn`` gives that same array, computed (in NumPy, the reference's own
    # division) on first access.
    @property
    def xn(self) -> Optional[FloatArray]:
        if self._xn_lazy:
            # set by the kernels' training forward, with _xn_lazy
            where, what = "BatchNormalization.xn", "a forward with train_flg=True"
            std, xc = require_forward(self.std, where, what), require_forward(self.xc, where, what)
            std = std if self.mode != "spatial" else std.reshape(-1, 1, 1)
            self._xn, self._xn_lazy = xc / std, False
        return self._xn

    @xn.setter
    def xn(self, value: Optional[FloatArray]) -> None:
        self._xn, self._xn_lazy = value, False

    def _geometry(self, shape: Sequence[int]) -> Tuple[int, int, int]:
        if self.mode == "spatial":
            n, c, h, w = shape
            return n, c, h * w
        return shape[0], math.prod(shape[1:]), 1

    def forward(self, x: npt.ArrayLike, train_flg: bool = True) -> FloatArray:
        where = "BatchNormalization.forward"
        x = as_float_array(x, where, "x")
        if self.mode == "spatial":
            check_ndim(x, 4, where, "x", "(N, C, H, W) in mode 'spatial'")
        else:
            check_ndim(x, (2, 4), where, "x", "(N, D) or (N, C, H, W)")
        n, c, inner = self._geometry(x.shape)
        gamma = self._check_param(self.gamma, "gamma", c, where)
        beta = self._check_param(self.beta, "beta", c, where)
        momentum = check_real(self.momentum, "momentum", where)
        rm = (np.zeros(c, dtype=x.dtype) if self.running_mean is None
              else self._check_param(self.running_mean, "running_mean", c, where))
        rv = (np.zeros(c, dtype=x.dtype) if self.running_var is None
              else self._check_param(self.running_var, "running_var", c, where))
        if not _same_dtype(x, gamma, beta, rm, rv) or (train_flg and n * inner == 0):
            out = super().forward(x, train_flg)  # promotion (or the reference's error)
            if train_flg:
                self._kernel_caches = False
            return out
        xk = kernel_input(x, where, "x")
        buf = self._buf
        out = buf.get("out", x.shape, x.dtype)
        if train_flg:
            # caches in their final shape (no views): the reference counts then tell
            # whether anyone still holds the previous ones
            shape = x.shape if self.mode == "spatial" else (n, c)
            xc = buf.get("xc", shape, x.dtype, holder=self.xc)
            res = ops.batch_norm(xk, gamma, beta, rm, rv, training=True, momentum=momentum,
                                 mode=self.mode, out=out, xc_out=xc)
            assert res.cache is not None
            self.batch_size = n * inner
            self.xc, self.std = xc, res.cache.std
            self._xn, self._xn_lazy = None, True
            self.running_mean, self.running_var = res.running_mean, res.running_var
            self._kernel_caches = True
        else:
            ops.batch_norm(xk, gamma, beta, rm, rv, training=False, mode=self.mode, out=out)
            self.running_mean, self.running_var = rm, rv
        self.input_shape = x.shape
        return out

    def backward(self, dout: npt.ArrayLike) -> Any:
        where = "BatchNormalization.backward"
        what = "a forward with train_flg=True"
        require_forward(self.xc if self._xn_lazy else self.xn, where, what)
        if not self._kernel_caches:
            return super().backward(dout)
        dout = as_float_array(dout, where, "dout")
        # set by that forward too (input_shape by any forward)
        input_shape = require_forward(self.input_shape, where, what)
        check_shape_match(dout, input_shape, where, "dout",
                          "the shape of the last forward's x")
        n, c, inner = self._geometry(dout.shape)
        xc, std = require_forward(self.xc, where, what), require_forward(self.std, where, what)
        if xc.size != dout.size or std.shape != (c,):
            raise ValueError(
                f"{where}: dout has shape {tuple(dout.shape)} but the last training forward "
                f"normalised {xc.size} values of {std.shape[0]} channels")
        gamma = self._check_param(self.gamma, "gamma", c, where)
        # xn formed again by the kernel (lazy), or the stored one; with mixed dtypes formed
        # first in the caches' dtype, then promoted (the previous path's arithmetic)
        lazy = self._xn_lazy and _same_dtype(dout, gamma, xc, std)
        xn = None if lazy else self.xn
        arrays = (dout, gamma, xc, std) + (() if xn is None else (xn,))
        if not _same_dtype(*arrays) and self.mode != "spatial":
            return super().backward(dout)  # the reference's caches and promotion
        # (spatial mode with mixed dtypes: computed in the promoted dtype)
        dt = np.result_type(*arrays)
        dout = kernel_input(dout, where, "dout")
        cache = ops.BatchNormCache(kernel_input(xc, where, "cache"),
                                   None if xn is None else kernel_input(xn, where, "cache"),
                                   kernel_input(std, where, "cache"), self.mode)
        dgamma, dbeta = _grad_buffers(self, where, (("gamma", "dgamma", (c,)),
                                                    ("beta", "dbeta", (c,))), dt)
        dx = self._buf.get("dx", dout.shape, dt)
        dx, dgamma, dbeta = ops.batch_norm_backward(dout, cache, gamma, out=dx,
                                                    dgamma_out=dgamma, dbeta_out=dbeta)
        self.dgamma = dgamma
        self.dbeta = dbeta
        return dx


__all__ = [
    "Relu", "Sigmoid", "Affine", "SoftmaxWithLoss", "Dropout", "BatchNormalization",
    "Convolution", "Pooling", "AvgPooling",
]
