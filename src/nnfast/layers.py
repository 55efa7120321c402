"""Layer classes (native API): forward/backward with the reference's state.

Convolution, Pooling and AvgPooling are native: thin Python holding the
reference's state and validation, calling the compiled kernels through
``_dispatch`` (dtype-preserving: float32 stays float32, where the original
computed in float64). The other layers are served by
``nnfast.reference.layers`` until their fused kernels land; names, attributes
and semantics here are the contract.
"""
import numpy as np

from . import _dispatch
from ._checks import as_float_array
from .reference import layers as _ref
from .reference.layers import (
    Affine,
    BatchNormalization,
    Dropout,
    Relu,
    Sigmoid,
    SoftmaxWithLoss,
)


class Convolution:
    """2-D convolution (cross-correlation): im2col + GEMM, compiled.

    x (N, C, H, W), W (FN, C, FH, FW), b (FN,) -> out (N, FN, OH, OW) with
    OH = (H + 2*pad - FH)//stride + 1. Same state as the reference: ``x``,
    ``col`` (N*OH*OW, C*FH*FW), ``col_W`` (C*FH*FW, FN, a view of W), and after
    backward ``dW``, ``db``. ``skip_dx`` (default False): backward computes
    ``dW``/``db`` only and returns None.

    Differences from the original, all invisible in float64: float32 inputs are
    computed in float32 (the original upcast to float64); a 1x1, stride-1,
    unpadded filter skips im2col (``col`` is then built when first read); the
    column buffer is reused by the next forward unless ``col`` was read, so an
    array a user holds is never overwritten. Results equal the reference's to
    ~1e-12 relative in float64 (GEMMs of another shape sum in another order).
    """

    skip_dx = False
    _params = _ref.Convolution._params

    def __init__(self, W, b, stride=1, pad=0):
        self.W = W
        self.b = b
        self.stride = stride
        self.pad = pad
        self.x = None
        self.col_W = None
        self.dW = None
        self.db = None
        self._col = None  # None after a direct 1x1 forward until ``col`` is read
        self._geometry = None  # (filter shape, stride, pad, out_h, out_w) of the last forward
        self._work = {}  # scratch buffers reused across calls (see _dispatch)

    @property
    def col(self):
        """im2col of the last forward's x, (N*OH*OW, C*FH*FW)."""
        if self._col is None and self.x is not None:
            (_, _, fh, fw), stride, pad, _, _ = self._geometry
            self._col = _dispatch.im2col(self.x, fh, fw, stride, pad)
        if self._col is not None and self._work.get("col") is self._col:
            del self._work["col"]  # handed out: the next forward writes a new buffer
        return self._col

    @col.setter
    def col(self, value):
        self._col = value

    def forward(self, x):
        x, W, b, stride, pad, out_h, out_w = _ref._conv_forward_args(
            self, x, "Convolution.forward")
        out, col = _dispatch.conv2d_forward(x, W, b, stride, pad, self._work)
        self.x = x
        self._col = col
        self.col_W = W.reshape(W.shape[0], -1).T
        self._geometry = (W.shape, stride, pad, out_h, out_w)
        return out

    def backward(self, dout):
        dout, (w_shape, stride, pad, _, _) = _ref._conv_backward_args(
            self, dout, "Convolution.backward")
        # the filters of the last forward, as the reference (through col_W)
        W = self.col_W.T.reshape(w_shape)
        dx, dW, db = _dispatch.conv2d_backward(dout, self.x, self._col, W, stride, pad,
                                               not self.skip_dx, self._work)
        self.dW = dW
        self.db = db
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

    def __init__(self, pool_h, pool_w, stride=2, pad=0):
        super().__init__(pool_h, pool_w, stride, pad)
        self._argmax = None  # (N, C, OH, OW) int32 window offsets of the last forward
        self._arg_max = None  # the reference's layout, built when read

    @property
    def arg_max(self):
        if self._arg_max is None and self._argmax is not None:
            arg_max = self._argmax.transpose(0, 2, 3, 1).reshape(-1).astype(np.intp)
            arg_max.setflags(write=False)
            self._arg_max = arg_max
        return self._arg_max

    @arg_max.setter
    def arg_max(self, value):
        if value is None or self._geometry is None:
            self._argmax, self._arg_max = None, value
            return
        where = "Pooling.arg_max"
        pool_h, pool_w, _, _, out_h, out_w = self._geometry
        n, c = self.x.shape[:2]
        value = np.asarray(value)
        if value.dtype.kind not in "iu" or value.shape != (n * out_h * out_w * c,):
            raise ValueError(f"{where}: must be an integer array of shape "
                             f"({n * out_h * out_w * c},), got {value.dtype} {value.shape}")
        if value.size and (value.min() < 0 or value.max() >= pool_h * pool_w):
            raise ValueError(f"{where}: offsets must be in [0, {pool_h * pool_w})")
        self._argmax = np.ascontiguousarray(
            value.reshape(n, out_h, out_w, c).transpose(0, 3, 1, 2), dtype=np.int32)
        self._arg_max = value

    def forward(self, x):
        where = "Pooling.forward"
        x = as_float_array(x, where, "x")
        geometry = _ref._pool_geometry(self, x, where)
        pool_h, pool_w, stride, pad, _, _ = geometry
        out, argmax = _dispatch.maxpool_forward(x, pool_h, pool_w, stride, pad)
        self.x = x
        self._argmax = argmax
        self._arg_max = None
        self._geometry = geometry
        return out

    def backward(self, dout):
        dout, (pool_h, pool_w, stride, pad, _, _) = self._backward_args(
            dout, "Pooling.backward")
        return _dispatch.maxpool_backward(dout, self._argmax, self.x.shape, pool_h, pool_w,
                                          stride, pad)


class AvgPooling(_ref._Pool2d):
    """Average pooling over (pool_h, pool_w) windows, compiled (no im2col).

    Zero padding counts in the divisor (PyTorch's ``count_include_pad=True``);
    output as :class:`Pooling`. Backward spreads ``dout / (pool_h*pool_w)``
    over each window, overlapping windows adding up (bit-equal to the
    reference). Cache: ``x``. Window sums accumulate in float64.
    """

    def forward(self, x):
        where = "AvgPooling.forward"
        x = as_float_array(x, where, "x")
        geometry = _ref._pool_geometry(self, x, where)
        pool_h, pool_w, stride, pad, _, _ = geometry
        out = _dispatch.avgpool_forward(x, pool_h, pool_w, stride, pad)
        self.x = x
        self._geometry = geometry
        return out

    def backward(self, dout):
        dout, (pool_h, pool_w, stride, pad, _, _) = self._backward_args(
            dout, "AvgPooling.backward")
        return _dispatch.avgpool_backward(dout, self.x.shape, pool_h, pool_w, stride, pad)


__all__ = [
    "Relu", "Sigmoid", "Affine", "SoftmaxWithLoss", "Dropout", "BatchNormalization",
    "Convolution", "Pooling", "AvgPooling",
]
