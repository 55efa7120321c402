"""nnfast: the "deep learning from scratch" toolkit with compiled kernels.

The native API lives in submodules, imported on first use::

    import nnfast
    from nnfast.layers import Convolution, Pooling
    from nnfast.nets import SimpleConvNet
    nnfast.set_num_threads(2)

``nnfast.reference`` is the same API in plain NumPy (the oracle); it never
needs the compiled extension, so this package does not import it eagerly.
"""
import importlib
import os
from typing import Any, Dict, List

__version__ = "0.1.0"

# Two process-wide settings nnfast makes at import, where the environment does not already
# set them (the user's value always wins), and reports in ``build_info()["environment"]``;
# ``NNFAST_SET_ENV=0`` leaves the environment alone.
#
# OMP_WAIT_POLICY=PASSIVE: spinning OpenMP workers fight NumPy's BLAS threads: alternating
# the two at 2 threads measured ~20x slower here. libgomp reads it once, when the compiled
# module loads, so it must be set before any kernel import.
# OPENBLAS_THREAD_TIMEOUT=18, the other half of the same fight: after each GEMM,
# OpenBLAS's workers spin for ~2**28 cycles before sleeping, taking the core our next
# OpenMP region needs; 2**18 (~0.1 ms) still covers back-to-back GEMMs (measurements in
# docs/roofline.md). OpenBLAS reads it when NumPy loads, so it only helps when nnfast is
# imported first (the `nnfast` command is); nnfast's own GEMMs run on one BLAS thread
# anyway (nnfast._blas).
_ENV_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "18"}
_env_opt_out = os.environ.get("NNFAST_SET_ENV", "1").strip() == "0"
_env_set: Dict[str, str] = {}
if not _env_opt_out:
    for _key, _value in _ENV_DEFAULTS.items():
        if _key not in os.environ:
            os.environ[_key] = _value
            _env_set[_key] = _value
    del _key, _value

from ._threads import get_num_threads, num_threads, set_num_threads  # noqa: E402

_SUBMODULES = (
    "functions", "gradient", "util", "layers", "optimizer", "nets", "trainer",
    "datasets", "reference",
)

__all__ = ["set_num_threads", "get_num_threads", "num_threads", "build_info", "release_buffers",
           "__version__", *_SUBMODULES]


def build_info() -> Dict[str, Any]:
    """How this nnfast was built and what it runs: a dict.

    ``compiled``: the C extension loaded; ``openmp``: OpenMP compiled in;
    ``num_threads``: current kernel thread count; ``kernels``: for each
    dispatched op, ``"compiled"`` or ``"reference"``; ``error``: why the
    extension could not be loaded, if it could not; ``environment``: the variables nnfast
    set at import (``set``, only those the environment did not already hold) and whether
    ``NNFAST_SET_ENV=0`` turned that off (``opted_out``).
    """
    dispatch: Any = importlib.import_module(f"{__name__}._dispatch")  # (not annotated)
    info: Dict[str, Any] = dispatch.build_info()
    info["environment"] = {"set": dict(_env_set), "opted_out": _env_opt_out,
                           "defaults": dict(_ENV_DEFAULTS)}
    return info


def release_buffers() -> None:
    """Free the calling thread's scratch buffers shared by the layers' kernels.

    Convolution backward keeps one growing per-thread buffer for its transient column
    gradient (e.g. 45 MB for DeepConvNet's 16x28x28 layer at batch 100 in float32),
    reused by every layer instead of being allocated at every call. Layers keep their
    own column buffers; drop the layers (or the network) to free those.
    """
    dispatch: Any = importlib.import_module(f"{__name__}._dispatch")
    dispatch.release_buffers()


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'nnfast' has no attribute {name!r}")


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_SUBMODULES))
