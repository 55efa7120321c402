"""Activation and loss functions (native API; teacher first: ``f(d, y)``).

Compiled (``nnfast._dispatch``): ``sigmoid, relu, step_function, softmax,
cross_entropy_error, softmax_with_loss`` and the derivatives ``d_sigmoid/sigmoid_grad,
d_relu, relu_grad, d_softmax_with_loss`` — C passes, dtype-preserving. Sigmoid's
exponential is NumPy's own ``np.exp``, applied in place between two C passes, so it and
relu, step and their derivatives equal ``nnfast.reference.functions`` bit for bit.
Softmax and the losses run in one C pass per row with nnfast's own exponential (within
2 ulp of the exact value, the same bits on every ISA build) and agree to ~1e-12 relative
in float64 (~1e-5 in float32): their row sums accumulate in double rather than in NumPy's
pairwise order, and the cross-entropy's log is libm's.
Labels out of range raise ValueError (also checked again in C). The other functions
are the reference's (nothing to gain from compiling them).
"""
from __future__ import annotations

import numpy.typing as npt

from ._dispatch import (
    cross_entropy_error,
    d_relu,
    d_sigmoid,
    d_softmax_with_loss,
    relu,
    relu_grad,
    sigmoid,
    softmax,
    softmax_with_loss,
    step_function,
)
from .reference.functions import (
    d_identity_function,
    d_mean_squared_error,
    d_sigmoid_with_loss,
    d_step_function,
    identity_function,
    mean_squared_error,
)
from .reference.functions import FloatArray


def sigmoid_grad(x: npt.ArrayLike) -> FloatArray:
    """The book's name for :func:`d_sigmoid`."""
    return d_sigmoid(x)


__all__ = [
    "identity_function", "step_function", "sigmoid", "relu", "softmax",
    "mean_squared_error", "cross_entropy_error", "softmax_with_loss",
    "d_identity_function", "d_step_function", "d_sigmoid", "d_relu",
    "d_mean_squared_error", "d_softmax_with_loss", "d_sigmoid_with_loss",
    "sigmoid_grad", "relu_grad",
]
