"""The one thread-count setting every compiled kernel reads.

Default: what OpenMP allows (``OMP_NUM_THREADS`` respected), capped at the
CPUs this process may run on. Kernels get the count as an argument at each
call (``get_num_threads()``), so changing it takes effect immediately and no
OpenMP global state is touched.

``set_num_threads`` changes the process-wide count. ``num_threads(n)`` scopes a
count to the enclosed block of the current thread (a ``contextvars`` value), so
Python threads and asyncio tasks entering and leaving it never undo each
other's settings; inside such a block, the block's count wins.
"""
import contextlib
import contextvars
import operator
import os
import threading

_lock = threading.Lock()
_num_threads = None  # resolved lazily: needs the compiled module's view of OpenMP
_scoped = contextvars.ContextVar("nnfast_num_threads", default=None)


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
    """Number of threads the compiled kernels use here (a ``num_threads`` block's, if any)."""
    global _num_threads
    scoped = _scoped.get()
    if scoped is not None:
        return scoped
    if _num_threads is None:
        with _lock:
            if _num_threads is None:
                _num_threads = _default()
    return _num_threads


def _check(n, where):
    if isinstance(n, bool):
        raise TypeError(f"{where}: n must be an int, got bool")
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"{where}: n must be an int, got {type(n).__name__}") from None
    if n < 1:
        raise ValueError(f"{where}: n must be >= 1, got {n}")
    return n


def set_num_threads(n):
    """Set the process-wide number of threads the compiled kernels use (an int >= 1).

    Without OpenMP compiled in, kernels run serially whatever is set here; counts above
    max(256, CPUs) are clamped to that by the kernels.
    """
    global _num_threads
    _num_threads = _check(n, "set_num_threads")


@contextlib.contextmanager
def num_threads(n):
    """Context manager: the enclosed block (in this thread/context only) uses ``n`` threads."""
    token = _scoped.set(_check(n, "num_threads"))
    try:
        yield
    finally:
        _scoped.reset(token)
