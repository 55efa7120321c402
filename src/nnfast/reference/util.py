"""im2col / col2im and small helpers, in plain NumPy.

Layout: x is (N, C, H, W); col is (N*OH*OW, C*FH*FW), row-major, rows ordered
(n, oh, ow), columns (c, i, j) with (i, j) the offset inside the filter window.
``col2im`` is the adjoint of ``im2col`` (overlapping windows add up), not its inverse.
Both keep the input dtype (the original allocated float64 whatever came in).
"""
from __future__ import annotations

from typing import Any, Sequence, Tuple

import numpy as np
import numpy.typing as npt

from .._checks import (as_float_array, check_ndim, check_pad, check_positive_int,
                       check_shape_match, check_size, check_window)

_Array = npt.NDArray[Any]


def conv_output_size(input_size: int, filter_size: int, stride: int = 1, pad: int = 0) -> int:
    """``(input_size + 2*pad - filter_size) // stride + 1`` as an int.

    (The original returns a float from true division; nnfast returns the int.)
    """
    where = "conv_output_size"
    input_size = check_positive_int(input_size, "input_size", where, min=0)
    filter_size = check_positive_int(filter_size, "filter_size", where)
    stride = check_positive_int(stride, "stride", where)
    pad = check_pad(pad, where)
    if filter_size > input_size + 2 * pad:
        raise ValueError(
            f"{where}: filter_size {filter_size} is larger than the padded input "
            f"{input_size + 2 * pad} (input_size = {input_size}, pad = {pad})"
        )
    return (input_size + 2 * pad - filter_size) // stride + 1


def _geometry(where: str, filter_h: Any, filter_w: Any, stride: Any,
              pad: Any) -> Tuple[int, int, int, int]:
    return (check_positive_int(filter_h, "filter_h", where),
            check_positive_int(filter_w, "filter_w", where),
            check_positive_int(stride, "stride", where),
            check_pad(pad, where))


def check_im2col_args(x: npt.ArrayLike, filter_h: int, filter_w: int, stride: int, pad: int,
                      where: str = "im2col") -> Tuple[_Array, int, int, int, int, int, int]:
    """Validate im2col's arguments (shared with the compiled kernels' wrappers).

    Returns ``(x, filter_h, filter_w, stride, pad, out_h, out_w)`` with x a
    float32/float64 array and the sizes as Python ints.
    """
    x = as_float_array(x, where, "x")
    check_ndim(x, 4, where, "x", "(N, C, H, W)")
    filter_h, filter_w, stride, pad = _geometry(where, filter_h, filter_w, stride, pad)
    h, w = x.shape[2:]
    check_window(h, w, filter_h, filter_w, pad, where)
    out_h = (h + 2 * pad - filter_h) // stride + 1
    out_w = (w + 2 * pad - filter_w) // stride + 1
    check_size((x.shape[0] * out_h * out_w, x.shape[1] * filter_h * filter_w), where,
               "the column matrix (N*OH*OW, C*FH*FW)")
    return x, filter_h, filter_w, stride, pad, out_h, out_w


def im2col(x: npt.ArrayLike, filter_h: int, filter_w: int, stride: int = 1,
           pad: int = 0) -> _Array:
    """Unfold the filter windows of ``x`` (N, C, H, W) into rows of a matrix.

    Returns col (N*OH*OW, C*FH*FW) with OH = (H + 2*pad - FH)//stride + 1
    (likewise OW); padding is zeros. The result has x's dtype.
    """
    x, filter_h, filter_w, stride, pad, out_h, out_w = check_im2col_args(
        x, filter_h, filter_w, stride, pad)
    n, c = x.shape[:2]

    img = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)], mode="constant")
    col = np.zeros((n, c, filter_h, filter_w, out_h, out_w), dtype=x.dtype)
    for i in range(filter_h):
        i_end = i + stride * out_h
        for j in range(filter_w):
            j_end = j + stride * out_w
            col[:, :, i, j, :, :] = img[:, :, i:i_end:stride, j:j_end:stride]
    # (n, c, i, j, oh, ow) -> (n, oh, ow, c, i, j), copied to C order
    col = col.transpose(0, 4, 5, 1, 2, 3).reshape(n * out_h * out_w, c * filter_h * filter_w)
    return np.ascontiguousarray(col)


def check_col2im_args(col: npt.ArrayLike, input_shape: Sequence[int], filter_h: int,
                      filter_w: int, stride: int, pad: int, where: str = "col2im"
                      ) -> Tuple[_Array, Tuple[int, int, int, int], int, int, int, int, int, int]:
    """Validate col2im's arguments (shared with the compiled kernels' wrappers).

    Returns ``(col, (n, c, h, w), filter_h, filter_w, stride, pad, out_h, out_w)``.
    """
    col = as_float_array(col, where, "col")
    check_ndim(col, 2, where, "col", "(N*OH*OW, C*FH*FW)")
    try:
        entries = tuple(input_shape)
    except TypeError:
        entries = None
    if entries is None or len(entries) != 4:
        raise ValueError(f"{where}: input_shape must be (N, C, H, W), got {input_shape!r}")
    n, c, h, w = (check_positive_int(v, f"input_shape[{k}]", where, min=0)
                  for k, v in enumerate(entries))
    filter_h, filter_w, stride, pad = _geometry(where, filter_h, filter_w, stride, pad)
    check_window(h, w, filter_h, filter_w, pad, where)
    check_size((n, c, h + 2 * pad, w + 2 * pad), where,
               "the padded image (N, C, H+2*pad, W+2*pad)")
    out_h = (h + 2 * pad - filter_h) // stride + 1
    out_w = (w + 2 * pad - filter_w) // stride + 1
    check_shape_match(col, (n * out_h * out_w, c * filter_h * filter_w), where, "col",
                      f"(N*OH*OW, C*FH*FW) for input_shape {(n, c, h, w)}, "
                      f"filter ({filter_h}, {filter_w}), stride {stride}, pad {pad}")
    return col, (n, c, h, w), filter_h, filter_w, stride, pad, out_h, out_w


def col2im(col: npt.ArrayLike, input_shape: Sequence[int], filter_h: int, filter_w: int,
           stride: int = 1, pad: int = 0) -> _Array:
    """Adjoint of :func:`im2col`: fold col (N*OH*OW, C*FH*FW) back to (N, C, H, W).

    Values of overlapping windows are summed; values falling on the padding are
    dropped. The result is C-contiguous, in col's dtype.
    """
    col, (n, c, h, w), filter_h, filter_w, stride, pad, out_h, out_w = check_col2im_args(
        col, input_shape, filter_h, filter_w, stride, pad)

    col6 = col.reshape(n, out_h, out_w, c, filter_h, filter_w).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros((n, c, h + 2 * pad + stride - 1, w + 2 * pad + stride - 1), dtype=col.dtype)
    for i in range(filter_h):
        i_end = i + stride * out_h
        for j in range(filter_w):
            j_end = j + stride * out_w
            img[:, :, i:i_end:stride, j:j_end:stride] += col6[:, :, i, j, :, :]
    return np.ascontiguousarray(img[:, :, pad:h + pad, pad:w + pad])


#: Width and Kaiser beta of the smoothing window of :func:`smooth_curve`.
SMOOTH_WINDOW = 11
SMOOTH_BETA = 2


def smooth_curve(x: npt.ArrayLike) -> _Array:
    """Smooth a 1-D curve (e.g. a loss history) with an 11-tap Kaiser(beta=2) window.

    The ends are extended by reflection as in the original (mirror without the
    first point on the left, with the last point on the right), so the output
    has the input's length. For 11 points or more the numbers equal the
    original's; shorter curves (where the original breaks) reflect repeatedly.
    """
    x = as_float_array(x, "smooth_curve", "x")
    check_ndim(x, 1, "smooth_curve", "x", "(a curve)")
    if x.size == 0:
        return x.copy()
    half = SMOOTH_WINDOW - 1
    # Equals np.r_[x[10:0:-1], x, x[-1:-11:-1]] when len(x) >= 11.
    s = np.concatenate([np.pad(x, (half, 0), mode="reflect")[:half],
                        x,
                        np.pad(x, (0, half), mode="symmetric")[x.size:]])
    w = np.kaiser(SMOOTH_WINDOW, SMOOTH_BETA).astype(x.dtype)
    y = np.convolve(w / w.sum(), s, mode="valid")
    return y[SMOOTH_WINDOW // 2:len(y) - SMOOTH_WINDOW // 2]


def shuffle_dataset(x: _Array, t: _Array) -> Tuple[_Array, _Array]:
    """Shuffle ``x`` (any ndim, samples on axis 0) and ``t`` with one permutation.

    Draws ``np.random.permutation(x.shape[0])`` exactly once, as the original.
    """
    x = np.asarray(x)
    t = np.asarray(t)
    if x.ndim == 0 or t.ndim == 0 or t.shape[0] != x.shape[0]:
        raise ValueError(
            f"shuffle_dataset: x and t must have the same number of samples on axis 0, "
            f"got shapes {tuple(x.shape)} and {tuple(t.shape)}"
        )
    permutation = np.random.permutation(x.shape[0])
    return x[permutation], t[permutation]
