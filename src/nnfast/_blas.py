"""NumPy's BLAS inside nnfast's own GEMM calls (Affine, the convolution's column paths).

nnfast runs its own GEMMs on one OpenBLAS thread (``openblas_set_num_threads_local``: the
calling thread only, restored after each call; the user's own NumPy calls keep their
threads). Two reasons:

- speed that does not depend on import order: after each multi-threaded GEMM, OpenBLAS's
  workers spin for ``OPENBLAS_THREAD_TIMEOUT`` (by default about 2**28 cycles) and take
  the core the next OpenMP region of nnfast's kernels needs. ``nnfast/__init__`` shortens
  that timeout, but OpenBLAS reads it when NumPy loads, too late when a script imports
  NumPy first (most do). Measured on the 2-core machine, DeepConvNet float32 step at 2
  threads, NumPy imported first: 76 ms with OpenBLAS's threads, 48 ms without;
- results that do not depend on the thread count: OpenBLAS on 1 and on 2 threads
  rounds some products differently. nnfast's Affine equals the reference's bit for bit
  when the reference's BLAS runs on one thread too.

The price: a large Affine GEMM at 2 threads runs on one core (SimpleConvNet's
(100, 4320) x (4320, 100) layer, about 0.7 ms per training step here).
``NNFAST_SERIAL_BLAS=0`` lets NumPy's BLAS use its threads again.
"""
from __future__ import annotations

import ctypes
import glob
import os
from typing import Any, Callable, Optional

import numpy as np
import numpy.typing as npt

# openblas_set_num_threads_local(n) -> the previous count
_SetLocal = Callable[[int], int]


def _find_set_local() -> Optional[_SetLocal]:
    """OpenBLAS's ``openblas_set_num_threads_local`` in the library NumPy loaded, or None."""
    base = os.path.dirname(os.path.dirname(np.__file__))
    for pattern in ("numpy.libs/*openblas*", "numpy/.dylibs/*openblas*"):
        for path in sorted(glob.glob(os.path.join(base, pattern))):
            try:
                lib = ctypes.CDLL(path)
                fn = lib.openblas_set_num_threads_local
            except (OSError, AttributeError):
                continue
            fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
            return fn
    return None


def _decide() -> Optional[_SetLocal]:
    off = os.environ.get("NNFAST_SERIAL_BLAS", "1").strip() == "0"
    return None if off else _find_set_local()


_set_local = _decide()
serial = _set_local is not None  # reported by build_info()


def matmul(a: npt.NDArray[Any], b: npt.NDArray[Any],
           out: Optional[npt.NDArray[Any]] = None) -> npt.NDArray[Any]:
    """``numpy.matmul(a, b, out=out)`` on one BLAS thread (see above)."""
    if _set_local is None:
        return np.matmul(a, b, out=out)
    prev = _set_local(1)
    try:
        return np.matmul(a, b, out=out)
    finally:
        _set_local(prev)
