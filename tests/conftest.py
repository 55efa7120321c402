"""Shared fixtures: every op test runs against each backend and dtype.

``backend`` yields a namespace with the modules ``functions, gradient, util,
layers, optimizer, nets, trainer`` taken either from ``nnfast.reference``
(plain NumPy, the oracle) or from the native API ``nnfast`` (compiled kernels
where they exist).
"""
import importlib
import types

import numpy as np
import pytest

MODULES = ("functions", "gradient", "util", "layers", "optimizer", "nets", "trainer")
BACKENDS = ("reference", "native")

# Relative tolerances used when comparing against the reference / oracles.
RTOL = {np.float32: 1e-5, np.float64: 1e-12}
ATOL = {np.float32: 1e-6, np.float64: 1e-12}


def load_backend(name):
    base = "nnfast.reference" if name == "reference" else "nnfast"
    mods = {m: importlib.import_module(f"{base}.{m}") for m in MODULES}
    return types.SimpleNamespace(name=name, **mods)


@pytest.fixture(params=BACKENDS)
def backend(request):
    return load_backend(request.param)


@pytest.fixture
def ref():
    return load_backend("reference")


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same global NumPy seed (the reference draws from it)."""
    np.random.seed(0)
    yield


# ---- hypothesis profiles (tests/test_fuzz.py) -------------------------------------------
# "ci" (default): few examples, derandomized (the same cases on every run), no example
# database written into the checkout. "long": many random examples, e.g.
#   NNFAST_HYPOTHESIS_PROFILE=long python -m pytest tests/test_fuzz.py
# or `--hypothesis-profile long` (the option wins over the environment variable).
try:
    from hypothesis import HealthCheck, settings
except ImportError:  # hypothesis is in the test extra; only test_fuzz.py needs it
    settings = None
if settings is not None:
    import os

    _quiet = [HealthCheck.too_slow, HealthCheck.data_too_large]
    settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True,
                              database=None, suppress_health_check=_quiet)
    settings.register_profile("long", max_examples=5000, deadline=None,
                              suppress_health_check=_quiet)
    settings.load_profile(os.environ.get("NNFAST_HYPOTHESIS_PROFILE", "ci"))


# ---- the element-wise families' builds (csrc/isa.h) -------------------------------------
# The equivalence grids of the element-wise, softmax, batch-norm, pooling and optimizer
# kernels run once per build this CPU supports (test modules opt in with
# ``pytestmark = pytest.mark.usefixtures("eltwise_isa")``).
ISA_NAMES = ("baseline", "avx2", "avx512")


def supported_isas():
    try:
        from nnfast import _kernels
    except ImportError:
        return []
    return list(ISA_NAMES[:ISA_NAMES.index(_kernels.cpu_isa()) + 1])


@pytest.fixture(params=supported_isas() or ["no-extension"])
def eltwise_isa(request):
    """Runs the test with every element-wise family on one build, then restores it."""
    if request.param == "no-extension":
        yield None
        return
    from nnfast import _kernels
    before = _kernels.isa_selected()
    assert _kernels.isa_select(request.param, exact=True) == request.param  # every family
    try:
        yield request.param
    finally:
        _kernels.isa_select(before)
