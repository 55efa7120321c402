"""Benchmark fixtures: every benchmark is a (workload, impl, dtype, threads) grid in one run.

The workloads (what is set up and what is timed) are defined once, in
``nnfast.bench.workloads``; ``nnfast bench`` runs the same ones interleaved. Each file here
picks the kinds it times (its module-level ``KINDS``); ``--long`` adds the long grids.

Run:  pytest benchmarks/ --benchmark-only --benchmark-json=bench.json
      python benchmarks/ratios.py bench.json
Every group ("<workload> <dtype> t<threads>", e.g. "conv_deep2 float32 t2") holds the
"reference", "nnfast" and (when ``import torch`` works; torch is never a dependency) "torch"
rows of the same run.

Smoke run (CI, tests/test_bench.py): ``pytest benchmarks --benchmark-disable`` calls every
body once; it then times only 1 thread (the 2-thread rows run the same code) to stay short.
"""
import nnfast  # noqa: F401  (first: it sets OpenBLAS/OpenMP waiting before NumPy loads)
import numpy as np
import pytest

from nnfast.bench import timing
from nnfast.bench.workloads import available_impls, select

IMPLS = available_impls()  # imports torch now, when installed, so the thread limits reach it


def pytest_addoption(parser):
    parser.addoption("--long", action="store_true", default=False,
                     help="run the long benchmark grids (reports), not only the short ones")


def pytest_collect_file(file_path, parent):
    """Collect bench_*.py here (pytest's default pattern, test_*.py, would skip them all)."""
    if file_path.suffix == ".py" and file_path.name.startswith("bench_"):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def _disabled(config):
    return bool(config.getoption("benchmark_disable", False))


def pytest_generate_tests(metafunc):
    kinds = getattr(metafunc.module, "KINDS", None)
    if "workload" in metafunc.fixturenames and kinds is not None:
        chosen = select(kind=kinds, long=metafunc.config.getoption("--long"))
        metafunc.parametrize("workload", chosen, ids=[w.name for w in chosen])
    if "threads" in metafunc.fixturenames:
        counts = [1] if _disabled(metafunc.config) else [1, 2]
        metafunc.parametrize("threads", counts, ids=[f"t{n}" for n in counts], indirect=True)


@pytest.fixture(params=IMPLS)
def impl(request):
    return request.param


@pytest.fixture
def threads(request):
    """Run the timed body with n threads for nnfast's kernels, NumPy's BLAS and torch."""
    with timing.limit_threads(request.param):
        yield request.param


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param


@pytest.fixture
def run_workload(benchmark):
    """``run_workload(workload, impl, dtype, threads, rounds=None)``: set up outside the
    timing, then time the workload's step (``rounds``: a fixed count, for slow steps)."""
    def run(workload, impl, dtype, threads, rounds=None):
        if impl not in workload.impls:
            pytest.skip(f"{workload.name} has no {impl} implementation")
        step = workload.build(impl, dtype)
        benchmark.group = f"{workload.name} {np.dtype(dtype).name} t{threads}"
        if rounds is None:
            return benchmark(step)
        return benchmark.pedantic(step, rounds=rounds, warmup_rounds=1)
    return run
