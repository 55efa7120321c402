"""Benchmark fixtures: every benchmark is a (impl, threads) grid measured in one run.

Run:  pytest benchmarks/ --benchmark-only --benchmark-group-by=group
The ratio to the reference is printed from the same run by --benchmark-compare
style tables: look at the "reference" and "nnfast" rows of each group.
"""
import nnfast  # noqa: F401  (first: it sets OpenBLAS/OpenMP waiting before NumPy loads)
import numpy as np
import pytest


def pytest_addoption(parser):
    parser.addoption("--long", action="store_true", default=False,
                     help="run the long benchmark grids (reports), not only the short ones")


@pytest.fixture(params=[1, 2], ids=["t1", "t2"])
def threads(request):
    """Run the timed body with n kernel threads (and n BLAS threads)."""
    import nnfast
    from threadpoolctl import threadpool_limits

    with nnfast.num_threads(request.param), threadpool_limits(request.param):
        yield request.param


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param
