"""Activation, loss and derivative functions in plain NumPy.

The teacher comes first (``d``), as the course writes it: ``cross_entropy_error(d, y)``.
Scores and probabilities ``y`` are ``(N, C)`` or a single ``(C,)`` sample.
float32 stays float32; bool/integer inputs become float64; other dtypes
raise TypeError. A 0-d result comes back as a NumPy scalar (typed as the array it
stands for: ``FloatArray``, a float32 or float64 array).
"""
from __future__ import annotations

from typing import Any, Tuple, TypeVar

import numpy as np
import numpy.typing as npt

from .._checks import as_float_array, check_labels, check_ndim, check_shape_match

#: Added inside the log of the cross-entropy so that log(0) never happens.
CE_EPS = 1e-7

#: A float32 or float64 array (the dtypes the toolkit computes in).
FloatArray = npt.NDArray[np.floating[Any]]
_A = TypeVar("_A", bound=npt.NDArray[Any])


def _scalar_if_0d(a: _A) -> _A:
    return a[()] if a.ndim == 0 else a  # type: ignore[return-value]  # a NumPy scalar


def identity_function(x: Any) -> Any:
    """Return ``x`` unchanged."""
    return x


def step_function(x: npt.ArrayLike) -> npt.NDArray[np.int_]:
    """1 where ``x > 0`` else 0, as an integer array."""
    return _scalar_if_0d(np.array(np.asarray(x) > 0, dtype=np.int_))


def sigmoid(x: npt.ArrayLike) -> FloatArray:
    """1 / (1 + exp(-x)), computed without overflow for large |x|."""
    x = as_float_array(x, "sigmoid", "x")
    e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
    # x >= 0: the textbook formula itself; x < 0: the same value rewritten as
    # exp(x) / (1 + exp(x)) so that exp(-x) is never formed.
    out = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return _scalar_if_0d(out)


def relu(x: npt.ArrayLike) -> FloatArray:
    """max(0, x) element-wise."""
    x = as_float_array(x, "relu", "x")
    return _scalar_if_0d(np.maximum(0, x))


def softmax(x: npt.ArrayLike) -> FloatArray:
    """Softmax over the last axis (any ndim >= 1); the row max is subtracted first."""
    x = as_float_array(x, "softmax", "x")
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(
            f"softmax: x must have at least 1 dimension and a non-empty last axis, "
            f"got shape {tuple(x.shape)}"
        )
    shifted = x - x.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def _teacher(d: npt.ArrayLike, y: FloatArray, where: str) -> FloatArray:
    """A teacher array in y's dtype if it is bool/integer (its values are exact)."""
    d = np.asarray(d)
    if d.dtype.kind in "biu":
        return d.astype(y.dtype)
    return as_float_array(d, where, "d")


def mean_squared_error(d: npt.ArrayLike, y: npt.ArrayLike) -> np.floating[Any]:
    """The course's MSE: ``mean((d - y)**2) / 2`` (d and y of the same shape)."""
    y = as_float_array(y, "mean_squared_error", "y")
    d = _teacher(d, y, "mean_squared_error")
    check_shape_match(d, y.shape, "mean_squared_error", "d", "the shape of y")
    return np.mean((d - y) ** 2) / 2


def _as_batch(d: npt.ArrayLike, y: npt.ArrayLike,
              where: str) -> Tuple[npt.NDArray[Any], FloatArray]:
    """Return (d, y) with y 2-D: a 1-D y is one sample, reshaped to (1, C)."""
    y = as_float_array(y, where, "y")
    check_ndim(y, (1, 2), where, "y", "(N, C) or (C,)")
    d = np.asarray(d)
    if y.ndim == 1:
        y = y.reshape(1, y.size)
        d = d.reshape(1, d.size) if d.size == y.size else d.reshape(d.size)
    return d, y


def cross_entropy_error(d: npt.ArrayLike, y: npt.ArrayLike) -> np.floating[Any]:
    """Mean over the batch of ``-log(y[n, d[n]] + 1e-7)``.

    ``y`` is (N, C) probabilities (or (C,) for one sample); ``d`` is (N,) integer
    labels or (N, C) one-hot (detected by ``d.size == y.size``, reduced by argmax).
    """
    where = "cross_entropy_error"
    d, y = _as_batch(d, y, where)
    n, c = y.shape
    d, one_hot = check_labels(d, c, n, where, name="d")
    labels = d.argmax(axis=1) if one_hot else d
    return -np.sum(np.log(y[np.arange(n), labels] + CE_EPS)) / n


def softmax_with_loss(d: npt.ArrayLike, x: npt.ArrayLike) -> np.floating[Any]:
    """``cross_entropy_error(d, softmax(x))``."""
    return cross_entropy_error(d, softmax(x))


# -- derivatives -----------------------------------------------------------

def d_identity_function(x: npt.ArrayLike) -> FloatArray:
    """Derivative of the identity: ones like ``x``."""
    x = as_float_array(x, "d_identity_function", "x")
    return _scalar_if_0d(np.ones_like(x))


def d_step_function(x: npt.ArrayLike) -> FloatArray:
    """Derivative of the step function: zeros like ``x``."""
    x = as_float_array(x, "d_step_function", "x")
    return _scalar_if_0d(np.zeros_like(x))


def d_sigmoid(x: npt.ArrayLike) -> FloatArray:
    """``(1 - sigmoid(x)) * sigmoid(x)``."""
    s = sigmoid(x)
    return (1.0 - s) * s


def sigmoid_grad(x: npt.ArrayLike) -> FloatArray:
    """The book's name for :func:`d_sigmoid`."""
    return d_sigmoid(x)


def d_relu(x: npt.ArrayLike) -> FloatArray:
    """1 where ``x > 0`` else 0 (0 at 0), in x's float dtype."""
    x = as_float_array(x, "d_relu", "x")
    return _scalar_if_0d((x > 0).astype(x.dtype))


def relu_grad(x: npt.ArrayLike) -> FloatArray:
    """The book's ReLU gradient: 1 where ``x >= 0`` else 0 (1 at 0)."""
    x = as_float_array(x, "relu_grad", "x")
    return _scalar_if_0d((x >= 0).astype(x.dtype))


def d_mean_squared_error(d: Any, y: npt.ArrayLike) -> FloatArray:
    """The course's MSE derivative: ``(y - d) / N`` for an array teacher, else ``y - d``.

    N is ``d.shape[0]`` (the course divides by the batch size, not by ``d.size``).
    """
    y = as_float_array(y, "d_mean_squared_error", "y")
    if isinstance(d, np.ndarray) and d.ndim >= 1:
        d = _teacher(d, y, "d_mean_squared_error")
        check_shape_match(d, y.shape, "d_mean_squared_error", "d", "the shape of y")
        return (y - d) / d.shape[0]
    d = _teacher(d, y, "d_mean_squared_error")
    return y - d


def d_softmax_with_loss(d: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
    """Gradient of ``softmax_with_loss`` w.r.t. the scores, given ``y = softmax(x)``.

    One-hot ``d``: ``(y - d) / N``; labels: ``y`` with 1 subtracted at each label, / N.
    N is the batch size of ``y`` (1 for a 1-D ``y``). The result has y's shape.
    """
    where = "d_softmax_with_loss"
    y_shape = np.shape(y)
    d, y = _as_batch(d, y, where)
    n, c = y.shape
    d, one_hot = check_labels(d, c, n, where, name="d")
    if one_hot:
        if d.dtype.kind != "f":
            d = d.astype(y.dtype)  # exact 0/1 values: keep y's dtype
        dx = (y - d) / n
    else:
        dx = y.copy()
        dx[np.arange(n), d] -= 1
        dx = dx / n
    return dx.reshape(y_shape)


def d_sigmoid_with_loss(d: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
    """Gradient of sigmoid + cross-entropy w.r.t. the scores: ``y - d``."""
    y = as_float_array(y, "d_sigmoid_with_loss", "y")
    d = _teacher(d, y, "d_sigmoid_with_loss")
    check_shape_match(d, y.shape, "d_sigmoid_with_loss", "d", "the shape of y")
    return y - d
