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

__version__ = "0.1.0"

# Spinning OpenMP workers fight NumPy's BLAS threads: alternating the two at
# 2 threads measured ~20x slower here. libgomp reads this once, when the
# compiled module loads, so it must be set before any kernel import.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# The other half of the same fight: after each GEMM, OpenBLAS's workers spin for
# ~2**28 cycles before sleeping, taking the core our next OpenMP region needs.
# 2**18 (~0.1 ms) still covers back-to-back GEMMs. Measured at 2 threads, float32,
# batch 100, two runs each: DeepConvNet step 116-125 ms with OpenBLAS's default,
# 90-94 ms with 18, 95-101 ms with 4; a (100, 784) x (784, 50) Affine 0.19 ms with
# 18 or the default, 0.29 ms with 4. OpenBLAS reads it when NumPy loads, so it only
# helps when nnfast is imported first (the `nnfast` command is); otherwise set it in
# the environment. (nnfast's own GEMMs run on one BLAS thread anyway: nnfast._blas.)
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "18")

from ._threads import get_num_threads, num_threads, set_num_threads  # noqa: E402

_SUBMODULES = (
    "functions", "gradient", "util", "layers", "optimizer", "nets", "trainer",
    "datasets", "reference",
)

__all__ = ["set_num_threads", "get_num_threads", "num_threads", "build_info", "release_buffers",
           "__version__", *_SUBMODULES]


def build_info():
    """How this nnfast was built and what it runs: a dict.

    ``compiled``: the C extension loaded; ``openmp``: OpenMP compiled in;
    ``num_threads``: current kernel thread count; ``kernels``: for each
    dispatched op, ``"compiled"`` or ``"reference"``; ``error``: why the
    extension could not be loaded, if it could not.
    """
    from . import _dispatch

    return _dispatch.build_info()


def release_buffers():
    """Free the calling thread's scratch buffers shared by the layers' kernels.

    Convolution backward keeps one growing per-thread buffer for its transient column
    gradient (e.g. 45 MB for DeepConvNet's 16x28x28 layer at batch 100 in float32),
    reused by every layer instead of being allocated at every call. Layers keep their
    own column buffers; drop the layers (or the network) to free those.
    """
    from . import _dispatch

    _dispatch.release_buffers()


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'nnfast' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))
