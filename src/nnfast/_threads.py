"""The one thread-count setting every compiled kernel reads.

Default: what OpenMP allows (``OMP_NUM_THREADS`` respected), capped at the
CPUs this process may run on. Kernels get the count as an argument at each
call (``resolve()``), so changing it takes effect immediately and no OpenMP
global state is touched.
"""
import contextlib
import os
import threading

_lock = threading.Lock()
_num_threads = None  # resolved lazily: needs the compiled module's view of OpenMP


def _available_cpus():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _default():
    try:
        from . import _kernels
    except ImportError:
        env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
        allowed = int(env) if env.isdigit() and int(env) > 0 else _available_cpus()
    else:
        allowed = _kernels.max_threads() if _kernels.have_openmp() else 1
    return max(1, min(allowed, _available_cpus()))


def get_num_threads():
    """Number of threads the compiled kernels use."""
    global _num_threads
    if _num_threads is None:
        with _lock:
            if _num_threads is None:
                _num_threads = _default()
    return _num_threads


def set_num_threads(n):
    """Set the number of threads the compiled kernels use (an int >= 1).

    Without OpenMP compiled in, kernels run serially whatever is set here; counts above
    max(256, CPUs) are clamped to that by the kernels.
    """
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, (int,)) and not hasattr(n, "__index__"):
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__}")
    n = int(n.__index__())
    if n < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, got {n}")
    _num_threads = n


@contextlib.contextmanager
def num_threads(n):
    """Context manager: run the enclosed block with ``n`` kernel threads."""
    previous = get_num_threads()
    set_num_threads(n)
    try:
        yield
    finally:
        set_num_threads(previous)
