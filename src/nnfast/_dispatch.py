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
import os
import warnings

import numpy as np

from . import _checks
from ._threads import get_num_threads
from .reference import util as _ref_util

_kernels = None
_load_error = None
if os.environ.get("NNFAST_BACKEND", "").strip().lower() == "reference":
    _load_error = "disabled by NNFAST_BACKEND=reference"
else:
    try:
        from . import _kernels
    except ImportError as exc:  # a broken or missing build: run, slowly, and say so
        _load_error = f"{type(exc).__name__}: {exc}"
        warnings.warn(
            "nnfast: the compiled extension could not be loaded; every op falls back "
            f"to the NumPy reference (slow). Reason: {_load_error}",
            RuntimeWarning,
            stacklevel=2,
        )


def kernel_input(x, where, name):
    """``x`` as a C-contiguous, native-byte-order float32/float64 array for a kernel.

    float32/float64 keep their dtype (no upcast); bool/int become float64;
    anything else is a TypeError (see ``_checks.as_float_array``). Copies only
    when the layout requires it.
    """
    x = _checks.as_float_array(x, where, name)
    if not x.dtype.isnative:
        x = x.astype(x.dtype.newbyteorder("="))
    return np.ascontiguousarray(x)


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


def _check_out(out, shape, dtype, where):
    if not isinstance(out, np.ndarray) or out.dtype != dtype:
        got = out.dtype if isinstance(out, np.ndarray) else type(out).__name__
        raise TypeError(f"{where}: out must be a {np.dtype(dtype)} array, got {got}")
    if out.shape != shape or not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"{where}: out must be a writeable C-contiguous array of shape "
                         f"{shape}, got shape {out.shape}")


# op name -> (compiled implementation, reference implementation)
_COMPILED = {
    "im2col": (_compiled_im2col, _ref_util.im2col),
    "col2im": (_compiled_col2im, _ref_util.col2im),
}


def _choose(name):
    compiled, reference = _COMPILED[name]
    return compiled if _kernels is not None else reference


im2col = _choose("im2col")
col2im = _choose("col2im")


def build_info():
    """See ``nnfast.build_info``."""
    return {
        "compiled": _kernels is not None,
        "openmp": bool(_kernels is not None and _kernels.have_openmp()),
        "num_threads": get_num_threads(),
        "kernels": {name: ("compiled" if _kernels is not None else "reference")
                    for name in _COMPILED},
        "error": _load_error,
    }
