"""Argument checks and error messages shared by the reference and the native layers.

Every check is O(1) (except label range checks, which must look at the labels)
and builds its message only when it fails. Messages name the place, the
argument, what was expected and what was given, e.g.::

    Convolution.forward: x must be 4-D (N, C, H, W), got shape (28, 28)

``ValueError`` is raised for bad shapes and values, ``TypeError`` for bad
dtypes and types, ``RuntimeError`` for a backward without a forward.
This module is pure Python + NumPy: the reference imports it.
"""
from __future__ import annotations

import operator
from typing import Any, Optional, Sequence, Tuple, TypeVar, Union

import numpy as np
import numpy.typing as npt

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_T = TypeVar("_T")


def _is_float32_or_64(dtype: np.dtype[Any]) -> bool:
    """float32/float64 in either byte order."""
    return dtype.kind == "f" and dtype.itemsize in (4, 8)


def as_float_array(x: Any, where: str, name: str) -> npt.NDArray[np.floating[Any]]:
    """Return ``x`` as a float32/float64 ndarray.

    float32/float64 ndarrays (either byte order) come back unchanged (no copy).
    bool/integer arrays, Python scalars and lists become float64.
    float16, long double, complex, object and string data raise TypeError.
    """
    if type(x) is np.ndarray and x.dtype in FLOAT_DTYPES:
        return x
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:  # ragged lists and the like
        raise TypeError(
            f"{where}: {name} must be an array of float32 or float64, "
            f"got an object NumPy cannot convert ({type(x).__name__}: {exc})"
        ) from None
    if _is_float32_or_64(arr.dtype):  # also non-native byte order: NumPy copes
        return arr
    if arr.dtype.kind in "biu":
        return arr.astype(np.float64)
    raise TypeError(
        f"{where}: {name} must have dtype float32 or float64 "
        f"(bool and integer are converted to float64), got dtype {arr.dtype}"
    )


def check_float_ndarray(x: Any, where: str, name: str) -> npt.NDArray[np.floating[Any]]:
    """Require an existing float32/float64 ndarray (used for arrays updated in place)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(
            f"{where}: {name} must be a NumPy array of float32 or float64, "
            f"got {type(x).__name__}"
        )
    if not _is_float32_or_64(x.dtype):
        raise TypeError(
            f"{where}: {name} must have dtype float32 or float64, got dtype {x.dtype}"
        )
    return x


def _ndim_text(ndim: Union[int, Sequence[int]]) -> str:
    if isinstance(ndim, int):
        return f"{ndim}-D"
    return " or ".join(f"{n}-D" for n in ndim)


def check_ndim(x: npt.NDArray[Any], ndim: Union[int, Sequence[int]], where: str, name: str,
               layout: str = "") -> None:
    """Require ``x.ndim == ndim`` (an int) or ``x.ndim in ndim`` (a tuple).

    ``layout`` is a hint appended to the expectation, e.g. ``"(N, C, H, W)"``.
    """
    ok = x.ndim == ndim if isinstance(ndim, int) else x.ndim in ndim
    if not ok:
        hint = f" {layout}" if layout else ""
        raise ValueError(
            f"{where}: {name} must be {_ndim_text(ndim)}{hint}, got shape {tuple(x.shape)}"
        )


def check_min_ndim(x: npt.NDArray[Any], min_ndim: int, where: str, name: str,
                   layout: str = "") -> None:
    """Require ``x.ndim >= min_ndim``."""
    if x.ndim < min_ndim:
        hint = f" {layout}" if layout else ""
        raise ValueError(
            f"{where}: {name} must be at least {min_ndim}-D{hint}, "
            f"got shape {tuple(x.shape)}"
        )


def check_shape_match(x: npt.NDArray[Any], expected: Sequence[int], where: str, name: str,
                      hint: str = "") -> None:
    """Require ``x.shape == expected`` exactly (no broadcasting)."""
    expected = tuple(expected)
    if tuple(x.shape) != expected:
        extra = f" ({hint})" if hint else ""
        raise ValueError(
            f"{where}: {name} must have shape {expected}{extra}, got shape {tuple(x.shape)}"
        )


def check_positive_int(value: Any, name: str, where: str, min: int = 1) -> int:
    """Return ``value`` as a Python int, requiring an integer ``>= min``.

    Floats (even 2.0) and bools are refused with TypeError.
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where}: {name} must be an integer, got bool {value!r}")
    try:
        ivalue = operator.index(value)
    except TypeError:
        raise TypeError(
            f"{where}: {name} must be an integer, got {type(value).__name__} {value!r}"
        ) from None
    if ivalue < min:
        raise ValueError(f"{where}: {name} must be >= {min}, got {ivalue}")
    return ivalue


def check_pad(pad: Any, where: str, name: str = "pad") -> int:
    """Return ``pad`` as a Python int, requiring an integer ``>= 0``."""
    return check_positive_int(pad, name, where, min=0)


def check_window(height: int, width: int, filter_h: int, filter_w: int, pad: int, where: str,
                 what: str = "filter") -> None:
    """Require the (filter_h, filter_w) window to fit the padded (height, width) input."""
    ph, pw = height + 2 * pad, width + 2 * pad
    if filter_h > ph or filter_w > pw:
        raise ValueError(
            f"{where}: {what} window ({filter_h}, {filter_w}) is larger than the padded "
            f"input ({ph}, {pw}) (input (H, W) = ({height}, {width}), pad = {pad})"
        )


#: Largest element count an array may have here: its bytes (8 per float64) must fit
#: a signed 64-bit size, as NumPy requires (checked in exact Python int arithmetic).
MAX_ELEMENTS = (2**63 - 1) // 8


def check_size(shape: Sequence[int], where: str, what: str) -> None:
    """Refuse an array of ``shape`` (to be allocated) whose element count overflows.

    NumPy would raise an error naming no argument (or, for sizes computed in
    fixed-width integers, wrap around); this names the array and its shape.
    """
    count = 1
    for dim in shape:
        count *= int(dim)
    if count > MAX_ELEMENTS or any(int(d) > MAX_ELEMENTS for d in shape):
        raise ValueError(
            f"{where}: {what} would have shape {tuple(int(d) for d in shape)}, "
            f"too many elements to allocate (limit {MAX_ELEMENTS})"
        )


def check_pool_pad(pad: int, pool_h: int, pool_w: int, where: str) -> None:
    """Pooling padding may be at most half the window (as PyTorch requires)."""
    if 2 * pad > pool_h or 2 * pad > pool_w:
        raise ValueError(
            f"{where}: pad must be at most half the pooling window "
            f"(2*pad <= pool_h and 2*pad <= pool_w), got pad = {pad} "
            f"for a ({pool_h}, {pool_w}) window"
        )


def check_labels(t: npt.NDArray[Any], n_classes: int, batch: int, where: str,
                 name: str = "t") -> Tuple[npt.NDArray[Any], bool]:
    """Validate a teacher for ``batch`` rows of ``n_classes`` scores.

    Returns ``(t, one_hot)``. A teacher with ``t.size == batch * n_classes`` is
    one-hot (as in the reference) and must have shape ``(batch, n_classes)``;
    otherwise it holds labels: any integer dtype, shape ``(batch,)``, values in
    ``[0, n_classes)``.
    """
    t = np.asarray(t)
    if t.size == batch * n_classes:
        if t.dtype.kind not in "biuf":
            raise TypeError(
                f"{where}: one-hot {name} must be numeric, got dtype {t.dtype}"
            )
        if t.shape != (batch, n_classes):
            raise ValueError(
                f"{where}: one-hot {name} must have shape {(batch, n_classes)}, "
                f"got shape {tuple(t.shape)}"
            )
        return t, True
    if t.dtype.kind not in "iu":
        raise TypeError(
            f"{where}: {name} must hold integer class labels (or be one-hot with "
            f"shape {(batch, n_classes)}), got dtype {t.dtype} and shape {tuple(t.shape)}"
        )
    if t.shape != (batch,):
        raise ValueError(
            f"{where}: {name} must have shape ({batch},) as labels or "
            f"{(batch, n_classes)} as one-hot, got shape {tuple(t.shape)}"
        )
    if batch:
        lo, hi = t.min(), t.max()
        if lo < 0 or hi >= n_classes:
            bad = lo if lo < 0 else hi
            raise ValueError(
                f"{where}: labels in {name} must be in [0, {n_classes}), got {bad}"
            )
    return t, False


def require_forward(value: Optional[_T], where: str, what: str = "forward") -> _T:
    """Raise RuntimeError if a cache set by forward is still ``None``; else return it
    (narrowed to not-None, for the code after the check)."""
    if value is None:
        raise RuntimeError(f"{where} called before {what}")
    return value


def check_real(value: Any, name: str, where: str) -> float:
    """Return ``value`` as a Python float (a hyper-parameter such as lr)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where}: {name} must be a real number, got bool {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"{where}: {name} must be a real number, got {type(value).__name__} {value!r}"
        ) from None


def kernel_input(x: Any, where: str, name: str) -> npt.NDArray[np.floating[Any]]:
    """``x`` as a C-contiguous, native-byte-order float32/float64 array for a kernel.

    float32/float64 keep their dtype (no upcast); bool/int become float64;
    anything else is a TypeError (see ``as_float_array``). Copies only
    when the layout requires it.
    """
    x = as_float_array(x, where, name)
    if not x.dtype.isnative:
        x = x.astype(x.dtype.newbyteorder("="))
    return np.asarray(x, order="C")  # not ascontiguousarray: that turns 0-d into 1-d


def xent_teacher(d: Any, y2: npt.NDArray[Any],
                 where: str) -> Tuple[npt.NDArray[Any], Optional[npt.NDArray[Any]]]:
    """Validate a teacher for the (N, C) scores/probabilities ``y2`` (the reference's rules).

    Returns ``(labels, dense)``: int64 labels (argmax for a one-hot teacher) and, for a
    one-hot teacher, the teacher as a C-contiguous array in y2's dtype when the
    reference's ``y - t`` would keep that dtype (else ``None``: the caller must not fuse).
    """
    n, c = y2.shape
    d, one_hot = check_labels(d, c, n, where, name="d")
    if not one_hot:
        return np.ascontiguousarray(d, dtype=np.int64), None
    labels = np.ascontiguousarray(d.argmax(axis=1), dtype=np.int64)
    if d.dtype.kind != "f" or d.dtype == y2.dtype:
        return labels, kernel_input(d.astype(y2.dtype, copy=False), where, "d")
    return labels, None


def check_out(out: Any, shape: Tuple[int, ...], dtype: Any, where: str,
              name: str = "out") -> None:
    """An output buffer: a writeable C-contiguous ndarray of exactly ``shape`` and ``dtype``."""
    if not isinstance(out, np.ndarray) or out.dtype != dtype:
        got = out.dtype if isinstance(out, np.ndarray) else type(out).__name__
        raise TypeError(f"{where}: {name} must be a {np.dtype(dtype)} array, got {got}")
    if out.shape != shape or not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"{where}: {name} must be a writeable C-contiguous array of shape "
                         f"{shape}, got shape {out.shape}")
