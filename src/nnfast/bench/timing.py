"""Interleaved timing, thread limits, the roofs (the numpy GEMM rate, nnfast's copy rate, memory
bandwidth), the machine description.

Timing: every implementation of a workload is set up first, warmed up twice, then sampled in
rounds; each round times every implementation once, in an order rotated by one every round, so
a burst of noise from other processes (the machine is shared) hits all of them alike. A sample
is ``number`` back-to-back calls (chosen so that a sample lasts at least ``min_sample_s``),
with the garbage collector paused, after one untimed call: without it each implementation
would be timed right after another one evicted its arrays from the caches, which no training
loop does (measured: SimpleConvNet's nnfast step 5.6 ms back to back, 6.0 ms right after a
reference step). The per-call time is the sample divided by ``number``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import platform
import sys
import time
from typing import (Any, Callable, ContextManager, Dict, Iterator, List, Mapping, Optional,
                    Sequence)

import numpy as np
import numpy.typing as npt

import nnfast

from .workloads import torch_or_none


@dataclasses.dataclass(frozen=True)
class Budget:
    """How long to sample one workload (all its implementations together)."""
    target_s: float = 3.0      # stop adding rounds once the rounds would exceed this
    min_rounds: int = 5
    max_rounds: int = 30
    min_sample_s: float = 0.002
    rounds: Optional[int] = None  # a fixed number of rounds (``--repeat``) instead of the target


DEFAULT = Budget()
QUICK = Budget(target_s=0.25, min_rounds=3, max_rounds=5, min_sample_s=0.001)


#: ``measure``'s result per implementation: ``{"samples_s": [...], "number": n}``.
Timing = Dict[str, Any]


def _time_calls(fn: Callable[[], object], number: int) -> float:
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        return time.perf_counter() - start
    finally:
        if enabled:
            gc.enable()


def measure(fns: Mapping[str, Callable[[], object]],
            budget: Budget = DEFAULT) -> Dict[str, Timing]:
    """Time the zero-arg callables ``fns`` ({impl: fn}) interleaved; returns
    ``{impl: {"samples_s": [per-call seconds, ...], "number": calls per sample}}``."""
    names = list(fns)
    number: Dict[str, int] = {}
    per_round = 0.0
    for name in names:
        fns[name]()  # first call: allocations, lazy state
        once = max(_time_calls(fns[name], 1), 1e-7)
        number[name] = max(1, int(np.ceil(budget.min_sample_s / once)))
        per_round += once * number[name]
    if budget.rounds is not None:
        rounds = budget.rounds
    else:
        rounds = int(budget.target_s / per_round) if per_round > 0 else budget.max_rounds
        rounds = min(max(rounds, budget.min_rounds), budget.max_rounds)
    samples: Dict[str, List[float]] = {name: [] for name in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            fns[name]()  # untimed: this implementation's data back in cache (see above)
            samples[name].append(_time_calls(fns[name], number[name]) / number[name])
    return {name: {"samples_s": samples[name], "number": number[name]} for name in names}


# --------------------------------------------------------------------------- threads

@contextlib.contextmanager
def limit_threads(n: int) -> Iterator[bool]:
    """Run the block with ``n`` threads for nnfast's kernels, NumPy's BLAS (through
    threadpoolctl when installed) and torch (when already imported). Yields whether the
    BLAS limit could be applied."""
    torch = torch_or_none() if "torch" in sys.modules else None
    previous_torch = torch.get_num_threads() if torch is not None else None
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        blas: ContextManager[Any] = contextlib.nullcontext()
        controlled = False
    else:
        blas = threadpool_limits(n)
        controlled = True
    try:
        if torch is not None:
            torch.set_num_threads(n)
        with nnfast.num_threads(n), blas:
            yield controlled
    finally:
        if torch is not None:
            torch.set_num_threads(previous_torch)


# --------------------------------------------------------------------------- machine roofs

GEMM_SIZE = 1024  # square float32/float64 GEMM: large enough for OpenBLAS's best rate


def gemm_rate(dtype: npt.DTypeLike, budget: Budget = DEFAULT, size: int = GEMM_SIZE,
              earlier: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """numpy.matmul on (size, size) x (size, size) into a preallocated output:
    ``{"shape", "flops", "samples_s", "number", "median_s", "gflops"}``.

    ``gflops`` is the best sample's rate (the peak this machine reached), not the median's:
    on a shared machine a GEMM measured during a burst of noise would flatter every fraction
    of it. ``earlier``: a previous result for the same dtype whose samples are pooled with
    these (the suite measures before and after each block of workloads).
    """
    rng = np.random.default_rng(1)
    a = rng.standard_normal((size, size)).astype(dtype)
    b = rng.standard_normal((size, size)).astype(dtype)
    c = np.empty((size, size), dtype=dtype)
    timing = measure({"numpy": lambda: np.matmul(a, b, out=c)}, budget)["numpy"]
    samples = (earlier["samples_s"] if earlier else []) + timing["samples_s"]
    flops = 2 * size ** 3
    return {"shape": [size, size, size], "flops": flops, "samples_s": samples,
            "number": timing["number"], "median_s": float(np.median(samples)),
            "best_s": min(samples), "gflops": flops / min(samples) / 1e9}


COPY_MIB = 64  # each of the copy's two arrays: far beyond the caches (L3 32 MiB here)


def copy_roof(dtype: npt.DTypeLike, threads: int, budget: Budget = DEFAULT, mib: int = COPY_MIB,
              earlier: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """The copy roof of the memory-bound rows: one element-wise pass over a flat ``mib`` MiB
    array of ``dtype`` into another, through nnfast's own parallel element-wise kernel at
    ``threads`` threads (``_kernels.scale(a, 1.0, out, threads)``; numpy.multiply when
    nnfast is not compiled). ``bytes`` counts the read and the write; ``gbps`` (GB/s,
    1e9 bytes) is the best sample's rate, as the GEMM peak's (see :func:`gemm_rate`);
    ``earlier``: a previous result for the same dtype and threads whose samples are pooled.
    Returns ``{"kernel", "mib", "bytes", "samples_s", "number", "median_s", "best_s",
    "gbps"}``."""
    a = np.ones(mib * 2 ** 20 // np.dtype(dtype).itemsize, dtype=dtype)
    out = np.empty_like(a)
    try:
        from nnfast import _kernels
    except ImportError:
        compiled_scale = False
    else:
        compiled_scale = hasattr(_kernels, "scale")
    if compiled_scale:
        kernel = "nnfast._kernels.scale"

        def copy() -> None:
            _kernels.scale(a, 1.0, out, threads)
    else:
        kernel = "numpy.multiply"

        def copy() -> None:
            np.multiply(a, 1.0, out=out)
    timing = measure({"copy": copy}, budget)["copy"]
    samples = (earlier["samples_s"] if earlier else []) + timing["samples_s"]
    nbytes = 2 * a.nbytes
    return {"kernel": kernel, "mib": mib, "bytes": nbytes, "samples_s": samples,
            "number": timing["number"], "median_s": float(np.median(samples)),
            "best_s": min(samples), "gbps": nbytes / min(samples) / 1e9}


def memory_bandwidth(budget: Budget = DEFAULT, megabytes: Sequence[int] = (8, 64),
                     threads: Optional[int] = None) -> Dict[str, Any]:
    """Streaming bandwidth of float32 copies (each byte read once and written once), split
    over ``threads`` Python threads (np.copyto releases the GIL; default: nnfast's thread
    count), for arrays of each size in ``megabytes``. 8 MB is the size of SimpleConvNet's
    largest activations at batch 100; 64 MB more than any of them. Returns
    ``{"sizes": {"8MB": GB/s, ...}, "threads", "gbs"}``, ``gbs`` the best (the roof used)."""
    from concurrent.futures import ThreadPoolExecutor

    threads = threads or nnfast.get_num_threads()
    sizes: Dict[str, float] = {}
    out: Dict[str, Any] = {"threads": threads, "sizes": sizes}
    with ThreadPoolExecutor(threads) as pool:
        for mb in megabytes:
            a = np.ones(mb * 2 ** 20 // 4, dtype=np.float32)
            c = np.empty_like(a)
            bounds = [k * a.size // threads for k in range(threads + 1)]
            parts = [(c[lo:hi], a[lo:hi]) for lo, hi in zip(bounds, bounds[1:])]

            def copy(parts: List[Any] = parts) -> None:
                for _ in pool.map(lambda p: np.copyto(*p), parts):
                    pass
            samples = measure({"copy": copy}, budget)["copy"]["samples_s"]
            sizes[f"{mb}MB"] = 2 * a.nbytes / float(np.median(samples)) / 1e9
    out["gbs"] = max(sizes.values())
    return out


# --------------------------------------------------------------------------- machine

def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else platform.processor()."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Processor", "cpu model"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _blas_info() -> Dict[str, Any]:
    """BLAS name/version/architecture/threads as numpy and threadpoolctl describe it."""
    info: Dict[str, Any] = {}
    try:
        config = np.show_config(mode="dicts")
        blas = config.get("Build Dependencies", {}).get("blas", {})
        info.update(name=blas.get("name"), version=blas.get("version"))
    except Exception:  # noqa: BLE001 - older numpy: no dict mode; describe what we can
        pass
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return info
    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            info.update(internal_api=pool.get("internal_api"),
                        version=pool.get("version") or info.get("version"),
                        architecture=pool.get("architecture"),
                        threads=pool.get("num_threads"))
            break
    return info


def machine_info() -> Dict[str, Any]:
    """A dict describing the machine and the software measured."""
    usable: Optional[int]
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    build = nnfast.build_info()
    kernels = build["kernels"]
    torch = torch_or_none()
    return {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "cpus_usable": usable,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": _blas_info(),
        "nnfast": nnfast.__version__,
        "nnfast_openmp": build["openmp"],
        "nnfast_compiled": build["compiled"],
        "nnfast_kernels_compiled": sum(v == "compiled" for v in kernels.values()),
        "nnfast_kernels": len(kernels),
        "torch": getattr(torch, "__version__", None),
    }


def describe(machine: Mapping[str, Any]) -> str:
    """The machine as one line."""
    blas = machine["blas"]
    blas_text = " ".join(str(v) for v in (blas.get("internal_api") or blas.get("name"),
                                          blas.get("version")) if v)
    if blas.get("architecture"):
        blas_text += f" ({blas['architecture']})"
    text = (f"{machine['cpu']}, {machine['cpus_usable']}/{machine['cpus']} CPUs usable | "
            f"Python {machine['python']}, numpy {machine['numpy']}"
            + (f", BLAS {blas_text}" if blas_text else "")
            + f" | nnfast {machine['nnfast']}: {machine['nnfast_kernels_compiled']}/"
              f"{machine['nnfast_kernels']} kernels compiled, OpenMP "
              f"{'on' if machine['nnfast_openmp'] else 'off'}")
    if machine["torch"]:
        text += f" | torch {machine['torch']}"
    return text
