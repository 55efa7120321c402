"""Layers with forward/backward in plain NumPy.

Attribute names are the original toolkit's (users read them): caches of the
last forward (``x, mask, out, col, col_W, arg_max, xc, xn, std, batch_size``)
and gradients (``dW, db, dgamma, dbeta``) live on the layer.

Common rules: parameters (``W, b, gamma, beta``) are re-read at every call
(networks share them with optimizers, users rebind them); outputs keep the
input dtype (float32 stays float32, mixed float32/float64 follows NumPy
promotion, bool/integer inputs become float64); inputs and ``dout`` are never
written to; bad arguments raise ValueError/TypeError before any state changes;
``backward`` before ``forward`` raises RuntimeError.
"""
from __future__ import annotations

from typing import Any, Optional, Protocol, Sequence, Tuple

import numpy as np
import numpy.typing as npt

from .._checks import (as_float_array, check_min_ndim, check_ndim, check_pad,
                       check_pool_pad, check_positive_int, check_real,
                       check_shape_match, check_size, check_window, require_forward)
from . import util
from .functions import FloatArray, cross_entropy_error, sigmoid, softmax

#: A boolean mask (Relu, Dropout), None before the first forward.
BoolArray = npt.NDArray[np.bool_]
#: The geometry of a convolution forward: (filter shape, stride, pad, out_h, out_w).
ConvGeometry = Tuple[Tuple[int, ...], int, int, int, int]
#: The geometry of a pooling forward: (pool_h, pool_w, stride, pad, out_h, out_w).
PoolGeometry = Tuple[int, int, int, int, int, int]

#: Batch-normalization epsilon. The original writes it as ``10e-7``, which is 1e-6.
BN_EPS = 1e-6


class Relu:
    """max(0, x); the gradient is 0 where ``x <= 0`` (0 at 0). Cache: ``mask``."""

    def __init__(self) -> None:
        self.mask: Optional[BoolArray] = None

    def forward(self, x: npt.ArrayLike) -> FloatArray:
        x = as_float_array(x, "Relu.forward", "x")
        mask = x <= 0
        out = x.copy()
        out[mask] = 0
        self.mask = mask
        return out

    def backward(self, dout: npt.ArrayLike) -> Any:
        where = "Relu.backward"
        mask = require_forward(self.mask, where)
        dout = as_float_array(dout, where, "dout")
        check_shape_match(dout, mask.shape, where, "dout", "the shape of the last forward's x")
        dx = dout.copy()  # the original wrote into dout itself
        dx[mask] = 0
        return dx


class Sigmoid:
    """1 / (1 + exp(-x)). Cache: ``out``."""

    def __init__(self) -> None:
        self.out: Optional[FloatArray] = None

    def forward(self, x: npt.ArrayLike) -> FloatArray:
        x = as_float_array(x, "Sigmoid.forward", "x")
        out = np.asarray(sigmoid(x))
        self.out = out
        return out

    def backward(self, dout: npt.ArrayLike) -> Any:
        where = "Sigmoid.backward"
        out = require_forward(self.out, where)
        dout = as_float_array(dout, where, "dout")
        check_shape_match(dout, out.shape, where, "dout", "the shape of the last forward's x")
        return dout * (1.0 - out) * out


def _reshaped(a: FloatArray, shape: Optional[Tuple[int, ...]]) -> FloatArray:
    """``a.reshape(shape)``, typed: NumPy's stubs refuse ``shape=None``, for which
    ``reshape`` gives a view of ``a`` in its own shape (a layer whose ``x`` was set without
    ``original_x_shape``)."""
    return a.reshape(a.shape if shape is None else shape)


def _check_affine_params(W: Any, b: Any, where: str) -> Tuple[FloatArray, FloatArray]:
    W = as_float_array(W, where, "W")
    check_ndim(W, 2, where, "W", "(D, M)")
    b = as_float_array(b, where, "b")
    check_shape_match(b, (W.shape[1],), where, "b", "(M,) for W of shape (D, M)")
    return W, b


class Affine:
    """``out = x @ W + b`` with x flattened to (N, D); W (D, M), b (M,).

    Caches ``x`` (the flattened (N, D) input) and ``original_x_shape``;
    backward sets ``dW`` (D, M) and ``db`` (M,) and returns dx in x's original shape.

    ``skip_dx`` (default False): when True, backward computes ``dW``/``db`` only
    and returns None — set by networks on their first layer, whose input needs
    no gradient.
    """

    skip_dx = False

    def __init__(self, W: FloatArray, b: FloatArray) -> None:
        self.W = W
        self.b = b
        self.x: Optional[FloatArray] = None
        self.original_x_shape: Optional[Tuple[int, ...]] = None
        self.dW: Optional[FloatArray] = None
        self.db: Optional[FloatArray] = None

    def forward(self, x: npt.ArrayLike) -> FloatArray:
        where = "Affine.forward"
        x = as_float_array(x, where, "x")
        check_min_ndim(x, 2, where, "x", "(N, D) or (N, ...)")
        W, b = _check_affine_params(self.W, self.b, where)
        n = x.shape[0]
        features = int(np.prod(x.shape[1:]))
        if features != W.shape[0]:
            raise ValueError(
                f"{where}: x has {features} features per sample (shape {tuple(x.shape)}) "
                f"but W expects {W.shape[0]} (W has shape {tuple(W.shape)})"
            )
        x2 = x.reshape(n, features)
        out = x2 @ W + b
        self.original_x_shape = x.shape
        self.x = x2
        return out

    def backward(self, dout: npt.ArrayLike) -> Any:
        where = "Affine.backward"
        x = require_forward(self.x, where)
        dout = as_float_array(dout, where, "dout")
        W, _ = _check_affine_params(self.W, self.b, where)
        n, d = x.shape
        if W.shape[0] != d:
            raise ValueError(
                f"{where}: W has shape {tuple(W.shape)} but the last forward's x had "
                f"{d} features"
            )
        check_shape_match(dout, (n, W.shape[1]), where, "dout", "(N, M) of the last forward")
        dx = None if self.skip_dx else _reshaped(dout @ W.T, self.original_x_shape)
        self.dW = x.T @ dout
        self.db = dout.sum(axis=0)
        return dx


class SoftmaxWithLoss:
    """Softmax followed by cross-entropy; ``forward(x, t)`` returns the loss.

    x is (N, C) scores (or (C,) for one sample); t is (N,) labels or (N, C) one-hot.
    Caches ``y`` (softmax output), ``t`` and ``loss``. ``backward(dout=1)`` ignores
    dout, as the original: ``(y - t) / N``, or for labels ``y`` minus 1 at each label, / N.
    """

    def __init__(self) -> None:
        self.loss: Optional[np.floating[Any]] = None
        self.y: Optional[FloatArray] = None
        self.t: Optional[npt.NDArray[Any]] = None

    def forward(self, x: npt.ArrayLike, t: npt.ArrayLike) -> Any:
        where = "SoftmaxWithLoss.forward"
        x = as_float_array(x, where, "x")
        check_ndim(x, (1, 2), where, "x", "(N, C) or (C,)")
        y = softmax(x)
        loss = cross_entropy_error(t, y)  # validates t against y
        self.y = y
        self.t = np.asarray(t)
        self.loss = loss
        return loss

    def backward(self, dout: Any = 1) -> FloatArray:
        where = "SoftmaxWithLoss.backward"
        y_last = require_forward(self.y, where)
        y = y_last.reshape(1, -1) if y_last.ndim == 1 else y_last
        t = require_forward(self.t, where)
        n = y.shape[0]
        if t.size == y.size:
            t = t.reshape(y.shape)
            if t.dtype.kind != "f":
                t = t.astype(y.dtype)  # exact 0/1 values: keep y's dtype
            dx = (y - t) / n
        else:
            dx = y.copy()
            dx[np.arange(n), t.reshape(n)] -= 1
            dx = dx / n
        return dx.reshape(y_last.shape)


def _check_ratio(ratio: Any, where: str) -> float:
    ratio = check_real(ratio, "dropout_ratio", where)
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"{where}: dropout_ratio must be in [0, 1], got {ratio}")
    return ratio


class Dropout:
    """Non-inverted dropout.

    Train: ``mask = np.random.rand(*x.shape) > dropout_ratio``, ``out = x * mask``.
    Test: ``out = x * (1 - dropout_ratio)``; the mask is left alone.
    Draws the same random numbers, in the same order, as the original.
    """

    def __init__(self, dropout_ratio: float = 0.5) -> None:
        self.dropout_ratio = dropout_ratio
        self.mask: Optional[BoolArray] = None

    def forward(self, x: npt.ArrayLike, train_flg: bool = True) -> FloatArray:
        where = "Dropout.forward"
        x = as_float_array(x, where, "x")
        ratio = _check_ratio(self.dropout_ratio, where)
        if train_flg:
            mask = np.asarray(np.random.rand(*x.shape) > ratio)
            self.mask = mask
            return x * mask
        return x * (1.0 - ratio)

    def backward(self, dout: npt.ArrayLike) -> Any:
        where = "Dropout.backward"
        mask = require_forward(self.mask, where, "a forward with train_flg=True")
        dout = as_float_array(dout, where, "dout")
        check_shape_match(dout, mask.shape, where, "dout", "the shape of the last training forward's x")
        return dout * mask


class BatchNormalization:
    """Batch normalization with running statistics for test time.

    ``mode='feature'`` (default, the original): x (N, D) or (N, C, H, W) — 2-D or
    4-D only, as the original (other ranks: ValueError) — is flattened to (N, D) and every one of the D = C*H*W features
    is normalised on its own; gamma, beta, running stats have shape (D,).
    ``mode='spatial'``: x must be (N, C, H, W) and is normalised per channel over
    (N, H, W), as in other frameworks; gamma, beta, running stats have shape (C,)
    and ``batch_size`` counts N*H*W values per channel.

    Train: ``xn = (x - mean) / sqrt(var + 1e-6)`` with the batch mean and biased
    variance, and ``running = momentum*running + (1 - momentum)*batch_stat``.
    Test: the running stats are used instead. ``out = gamma*xn + beta``.
    Running stats start as zeros in x's dtype on first use.
    """

    MODES = ("feature", "spatial")

    def __init__(self, gamma: FloatArray, beta: FloatArray, momentum: float = 0.9,
                 running_mean: Optional[FloatArray] = None,
                 running_var: Optional[FloatArray] = None, mode: str = "feature") -> None:
        if mode not in self.MODES:
            raise ValueError(
                f"BatchNormalization: mode must be 'feature' or 'spatial', got {mode!r}"
            )
        self.gamma = gamma
        self.beta = beta
        self.momentum = momentum
        self.mode = mode
        self.input_shape: Optional[Tuple[int, ...]] = None
        self.running_mean = running_mean
        self.running_var = running_var
        # caches of the last training forward, used by backward
        self.batch_size: Optional[int] = None
        self.xc: Optional[FloatArray] = None
        self.xn: Optional[FloatArray] = None
        self.std: Optional[FloatArray] = None
        self.dgamma: Optional[FloatArray] = None
        self.dbeta: Optional[FloatArray] = None

    def _to_2d(self, a: FloatArray) -> FloatArray:
        """(N, ...) -> (rows, features) in the layout of ``self.mode``."""
        if self.mode == "spatial":
            n, c, h, w = a.shape
            return a.transpose(0, 2, 3, 1).reshape(n * h * w, c)
        return a.reshape(a.shape[0], int(np.prod(a.shape[1:])))

    def _from_2d(self, a2: FloatArray, shape: Sequence[int]) -> FloatArray:
        if self.mode == "spatial":
            n, c, h, w = shape
            return np.ascontiguousarray(a2.reshape(n, h, w, c).transpose(0, 3, 1, 2))
        return a2.reshape(shape)

    def _check_param(self, value: Any, name: str, features: int, where: str) -> FloatArray:
        value = as_float_array(value, where, name)
        check_shape_match(value, (features,), where, name,
                          "one value per channel" if self.mode == "spatial"
                          else "one value per feature of the flattened input")
        return value

    def forward(self, x: npt.ArrayLike, train_flg: bool = True) -> FloatArray:
        where = "BatchNormalization.forward"
        x = as_float_array(x, where, "x")
        if self.mode == "spatial":
            check_ndim(x, 4, where, "x", "(N, C, H, W) in mode 'spatial'")
        else:
            check_ndim(x, (2, 4), where, "x", "(N, D) or (N, C, H, W)")
        x2 = self._to_2d(x)
        features = x2.shape[1]
        gamma = self._check_param(self.gamma, "gamma", features, where)
        beta = self._check_param(self.beta, "beta", features, where)
        momentum = check_real(self.momentum, "momentum", where)
        running_mean = (np.zeros(features, dtype=x.dtype) if self.running_mean is None
                        else self._check_param(self.running_mean, "running_mean", features, where))
        running_var = (np.zeros(features, dtype=x.dtype) if self.running_var is None
                       else self._check_param(self.running_var, "running_var", features, where))

        if train_flg:
            if x2.shape[0] == 0:
                raise ValueError(f"{where}: x must hold at least one sample in training mode, "
                                 f"got shape {tuple(x.shape)}")
            mu = x2.mean(axis=0)
            xc = x2 - mu
            var = np.mean(xc ** 2, axis=0)
            std = np.sqrt(var + BN_EPS)
            xn = xc / std
            self.batch_size = x2.shape[0]
            self.xc = xc
            self.xn = xn
            self.std = std
            running_mean = momentum * running_mean + (1 - momentum) * mu
            running_var = momentum * running_var + (1 - momentum) * var
        else:
            xc = x2 - running_mean
            xn = xc / np.sqrt(running_var + BN_EPS)

        self.input_shape = x.shape
        self.running_mean = running_mean
        self.running_var = running_var
        out = gamma * xn + beta
        return self._from_2d(out, x.shape)

    def backward(self, dout: npt.ArrayLike) -> Any:
        where = "BatchNormalization.backward"
        what = "a forward with train_flg=True"
        xn = require_forward(self.xn, where, what)
        dout = as_float_array(dout, where, "dout")
        # set by that forward too (input_shape by any forward)
        input_shape = require_forward(self.input_shape, where, what)
        check_shape_match(dout, input_shape, where, "dout", "the shape of the last forward's x")
        dout2 = self._to_2d(dout)
        if dout2.shape != xn.shape:
            raise ValueError(
                f"{where}: dout has shape {tuple(dout.shape)} but the last training forward "
                f"normalised {xn.shape[0]} rows of {xn.shape[1]} features"
            )
        gamma = self._check_param(self.gamma, "gamma", xn.shape[1], where)
        n = require_forward(self.batch_size, where, what)
        xc = require_forward(self.xc, where, what)
        std = require_forward(self.std, where, what)

        dbeta = dout2.sum(axis=0)
        dgamma = np.sum(xn * dout2, axis=0)
        dxn = gamma * dout2
        dxc = dxn / std
        dstd = -np.sum((dxn * xc) / (std * std), axis=0)
        dvar = 0.5 * dstd / std
        dxc += (2.0 / n) * xc * dvar
        dmu = np.sum(dxc, axis=0)
        dx = dxc - dmu / n

        self.dgamma = dgamma
        self.dbeta = dbeta
        return self._from_2d(dx, input_shape)


def _conv_forward_args(layer: Any, x: npt.ArrayLike, where: str) -> Tuple[
        FloatArray, FloatArray, FloatArray, int, int, int, int]:
    """Validate a convolution forward; return (x, W, b, stride, pad, out_h, out_w)."""
    x = as_float_array(x, where, "x")
    check_ndim(x, 4, where, "x", "(N, C, H, W)")
    W, b = layer._params(where)
    stride = check_positive_int(layer.stride, "stride", where)
    pad = check_pad(layer.pad, where)
    _, c, h, w = x.shape
    _, wc, fh, fw = W.shape
    if c != wc:
        raise ValueError(
            f"{where}: x has {c} channels (shape {tuple(x.shape)}) but W expects {wc} "
            f"(W has shape {tuple(W.shape)})"
        )
    check_window(h, w, fh, fw, pad, where)
    out_h = (h + 2 * pad - fh) // stride + 1
    out_w = (w + 2 * pad - fw) // stride + 1
    check_size((x.shape[0] * out_h * out_w, c * fh * fw), where,
               "the column matrix (N*OH*OW, C*FH*FW)")
    check_size((x.shape[0], W.shape[0], out_h, out_w), where, "the output (N, FN, OH, OW)")
    return x, W, b, stride, pad, out_h, out_w


class _ConvState(Protocol):
    """What ``_conv_backward_args`` reads: the caches of a convolution's last forward
    (this module's Convolution and nnfast.layers')."""

    x: Optional[FloatArray]
    _geometry: Optional[ConvGeometry]


def _conv_backward_args(layer: _ConvState, dout: npt.ArrayLike,
                        where: str) -> Tuple[FloatArray, ConvGeometry]:
    """Check ``dout`` against the last forward; return (dout, geometry of that forward)."""
    x = require_forward(layer.x, where)
    dout = as_float_array(dout, where, "dout")
    geometry = require_forward(layer._geometry, where)  # set with x
    (fn, _, _, _), _, _, out_h, out_w = geometry
    check_shape_match(dout, (x.shape[0], fn, out_h, out_w), where, "dout",
                      "(N, FN, OH, OW) of the last forward")
    return dout, geometry


class Convolution:
    """2-D convolution (cross-correlation) via im2col.

    x (N, C, H, W), W (FN, C, FH, FW), b (FN,) -> out (N, FN, OH, OW) with
    OH = (H + 2*pad - FH)//stride + 1. Caches ``x``, ``col`` (N*OH*OW, C*FH*FW)
    and ``col_W`` (C*FH*FW, FN, a view of W); backward sets ``dW`` and ``db``.

    im2col and col2im are called through the class attributes ``_im2col`` and
    ``_col2im`` so that a subclass can swap in other kernels.

    ``skip_dx`` (default False): when True, backward computes ``dW``/``db`` only
    and returns None (a network's first layer needs no input gradient).
    """

    skip_dx = False

    _im2col = staticmethod(util.im2col)
    _col2im = staticmethod(util.col2im)

    def __init__(self, W: FloatArray, b: FloatArray, stride: int = 1, pad: int = 0) -> None:
        self.W = W
        self.b = b
        self.stride = stride
        self.pad = pad
        self.x: Optional[FloatArray] = None
        self.col: Optional[FloatArray] = None
        self.col_W: Optional[FloatArray] = None
        self.dW: Optional[FloatArray] = None
        self.db: Optional[FloatArray] = None
        self._geometry: Optional[ConvGeometry] = None  # of the last forward

    def _params(self, where: str) -> Tuple[FloatArray, FloatArray]:
        W = as_float_array(self.W, where, "W")
        check_ndim(W, 4, where, "W", "(FN, C, FH, FW)")
        b = as_float_array(self.b, where, "b")
        check_shape_match(b, (W.shape[0],), where, "b", "(FN,) for W of shape (FN, C, FH, FW)")
        return W, b

    def forward(self, x: npt.ArrayLike) -> FloatArray:
        x, W, b, stride, pad, out_h, out_w = _conv_forward_args(self, x, "Convolution.forward")
        n = x.shape[0]
        fn, _, fh, fw = W.shape

        col = self._im2col(x, fh, fw, stride, pad)
        col_W = W.reshape(fn, -1).T
        out = col @ col_W + b
        out = np.ascontiguousarray(out.reshape(n, out_h, out_w, fn).transpose(0, 3, 1, 2))

        self.x = x
        self.col = col
        self.col_W = col_W
        self._geometry = (W.shape, stride, pad, out_h, out_w)
        return out

    def backward(self, dout: npt.ArrayLike) -> Any:
        where = "Convolution.backward"
        dout, ((fn, c, fh, fw), stride, pad, _, _) = _conv_backward_args(self, dout, where)
        # set with x (checked there)
        x, col = require_forward(self.x, where), require_forward(self.col, where)

        dout2 = dout.transpose(0, 2, 3, 1).reshape(-1, fn)
        db = np.sum(dout2, axis=0)
        dW = (col.T @ dout2).T.reshape(fn, c, fh, fw)
        if self.skip_dx:
            dx = None
        else:
            dcol = dout2 @ require_forward(self.col_W, where).T
            dx = self._col2im(dcol, x.shape, fh, fw, stride, pad)

        self.dW = dW
        self.db = db
        return dx


def _pool_geometry(layer: Any, x: FloatArray, where: str) -> Tuple[int, int, int, int, int, int]:
    """Validate a pooling call; return (pool_h, pool_w, stride, pad, out_h, out_w)."""
    check_ndim(x, 4, where, "x", "(N, C, H, W)")
    pool_h = check_positive_int(layer.pool_h, "pool_h", where)
    pool_w = check_positive_int(layer.pool_w, "pool_w", where)
    stride = check_positive_int(layer.stride, "stride", where)
    pad = check_pad(layer.pad, where)
    check_pool_pad(pad, pool_h, pool_w, where)
    _, _, h, w = x.shape
    check_window(h, w, pool_h, pool_w, pad, where, what="pooling")
    out_h = (h + 2 * pad - pool_h) // stride + 1
    out_w = (w + 2 * pad - pool_w) // stride + 1
    n, c = x.shape[:2]
    check_size((n * out_h * out_w * c, pool_h * pool_w), where,
               "the window matrix (N*OH*OW*C, pool_h*pool_w)")
    return pool_h, pool_w, stride, pad, out_h, out_w


class _Pool2d:
    """State and argument handling shared by the pooling layers."""

    _im2col = staticmethod(util.im2col)
    _col2im = staticmethod(util.col2im)

    def __init__(self, pool_h: int, pool_w: int, stride: int = 2, pad: int = 0) -> None:
        self.pool_h = pool_h
        self.pool_w = pool_w
        self.stride = stride
        self.pad = pad
        self.x: Optional[FloatArray] = None
        self._geometry: Optional[PoolGeometry] = None

    def _backward_args(self, dout: npt.ArrayLike, where: str) -> Tuple[FloatArray, PoolGeometry]:
        """Check ``dout`` against the last forward; return (dout, geometry)."""
        x = require_forward(self.x, where)
        dout = as_float_array(dout, where, "dout")
        geometry = require_forward(self._geometry, where)  # set with x
        _, _, _, _, out_h, out_w = geometry
        n, c, _, _ = x.shape
        check_shape_match(dout, (n, c, out_h, out_w), where, "dout",
                          "(N, C, OH, OW) of the last forward")
        return dout, geometry


class Pooling(_Pool2d):
    """Max pooling over (pool_h, pool_w) windows.

    x (N, C, H, W) -> out (N, C, OH, OW), OH = (H + 2*pad - pool_h)//stride + 1.
    Padding acts as -inf (it never wins); ``pad`` is at most half the window.
    Ties go to the first maximum in row-major window order and NaN wins (it
    propagates). Caches ``x`` and ``arg_max`` (1-D, length N*OH*OW*C, ordered
    (n, oh, ow, c), the index of the maximum inside its window); backward sends
    each gradient to its maximum only, overlapping windows adding up.
    """

    def __init__(self, pool_h: int, pool_w: int, stride: int = 2, pad: int = 0) -> None:
        super().__init__(pool_h, pool_w, stride, pad)
        self.arg_max: Optional[npt.NDArray[np.integer[Any]]] = None

    def forward(self, x: npt.ArrayLike) -> FloatArray:
        where = "Pooling.forward"
        x = as_float_array(x, where, "x")
        geometry = _pool_geometry(self, x, where)
        pool_h, pool_w, stride, pad, out_h, out_w = geometry
        n, c, _, _ = x.shape

        if pad:
            x_padded = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)],
                              mode="constant", constant_values=-np.inf)
        else:
            x_padded = x
        col = self._im2col(x_padded, pool_h, pool_w, stride, 0)
        col = col.reshape(-1, pool_h * pool_w)  # rows (n, oh, ow, c)
        arg_max = np.argmax(col, axis=1)
        out = np.max(col, axis=1)
        out = np.ascontiguousarray(out.reshape(n, out_h, out_w, c).transpose(0, 3, 1, 2))

        self.x = x
        self.arg_max = arg_max
        self._geometry = geometry
        return out

    def backward(self, dout: npt.ArrayLike) -> Any:
        where = "Pooling.backward"
        dout, (pool_h, pool_w, stride, pad, out_h, out_w) = self._backward_args(dout, where)
        x = require_forward(self.x, where)  # checked by _backward_args: narrowed here
        arg_max = require_forward(self.arg_max, where)  # set with x
        n, c, _, _ = x.shape

        pool_size = pool_h * pool_w
        dout_flat = dout.transpose(0, 2, 3, 1).reshape(-1)  # (n, oh, ow, c)
        dmax = np.zeros((dout_flat.size, pool_size), dtype=dout.dtype)
        dmax[np.arange(arg_max.size), arg_max] = dout_flat
        dcol = dmax.reshape(n * out_h * out_w, c * pool_size)
        return self._col2im(dcol, x.shape, pool_h, pool_w, stride, pad)


class AvgPooling(_Pool2d):
    """Average pooling over (pool_h, pool_w) windows.

    Zero padding counts in the divisor (every window divides by pool_h*pool_w,
    PyTorch's default ``count_include_pad=True``); ``pad`` is at most half the
    window. Output as :class:`Pooling`. Backward spreads ``dout / (pool_h*pool_w)``
    over each window, overlapping windows adding up. Cache: ``x``.
    """

    def forward(self, x: npt.ArrayLike) -> FloatArray:
        where = "AvgPooling.forward"
        x = as_float_array(x, where, "x")
        geometry = _pool_geometry(self, x, where)
        pool_h, pool_w, stride, pad, out_h, out_w = geometry
        n, c, _, _ = x.shape

        col = self._im2col(x, pool_h, pool_w, stride, pad)
        col = col.reshape(-1, pool_h * pool_w)  # rows (n, oh, ow, c)
        out = np.mean(col, axis=1)
        out = np.ascontiguousarray(out.reshape(n, out_h, out_w, c).transpose(0, 3, 1, 2))

        self.x = x
        self._geometry = geometry
        return out

    def backward(self, dout: npt.ArrayLike) -> Any:
        where = "AvgPooling.backward"
        dout, (pool_h, pool_w, stride, pad, out_h, out_w) = self._backward_args(dout, where)
        x = require_forward(self.x, where)  # checked by _backward_args: narrowed here
        n, c, _, _ = x.shape

        pool_size = pool_h * pool_w
        share = dout.transpose(0, 2, 3, 1).reshape(-1, 1) / pool_size  # (n, oh, ow, c)
        dcol = np.repeat(share, pool_size, axis=1).reshape(n * out_h * out_w, c * pool_size)
        return self._col2im(dcol, x.shape, pool_h, pool_w, stride, pad)
