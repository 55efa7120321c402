"""Numerical gradients by central differences (the oracle for every backward)."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import numpy.typing as npt

from .._checks import check_float_ndarray

#: Step of the central difference.
NUMERICAL_H = 1e-4


def numerical_gradient(f: Callable[[npt.NDArray[np.floating[Any]]], Any],
                       x: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.floating[Any]]:
    """Gradient of the scalar function ``f`` at ``x``, for any ndim.

    ``(f(x + h e_i) - f(x - h e_i)) / (2h)`` for every index i, with h = 1e-4.
    ``x`` (a float ndarray) is modified in place one element at a time while
    ``f(x)`` is evaluated, and is restored exactly afterwards (also if ``f``
    raises). The result has x's shape and dtype.
    """
    where = "numerical_gradient"
    check_float_ndarray(x, where, "x")
    if not x.flags.writeable:
        raise ValueError(f"{where}: x must be writeable (it is perturbed in place), "
                         f"got a read-only array")
    h = NUMERICAL_H
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        original = x[idx]
        try:
            x[idx] = float(original) + h
            f_plus = f(x)
            x[idx] = float(original) - h
            f_minus = f(x)
        finally:
            x[idx] = original
        grad[idx] = (f_plus - f_minus) / (2 * h)
    return grad
