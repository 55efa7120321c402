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
from __future__ import annotations

import contextlib
import contextvars
import operator
import os
import threading
from typing import Any, Iterator, Optional

_lock = threading.Lock()
_num_threads: Optional[int] = None  # resolved lazily: needs the compiled module's view of OpenMP
_scoped: contextvars.ContextVar[Optional[int]] = contextvars.ContextVar(
    "nnfast_num_threads", default=None)


def _available_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _default() -> int:
    try:
        from . import _kernels
    except ImportError:
        env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
        allowed = int(env) if env.isdigit() and int(env) > 0 else _available_cpus()
    else:
        allowed = _kernels.max_threads() if _kernels.have_openmp() else 1
    return max(1, min(allowed, _available_cpus()))


def get_num_threads() -> int:
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


def _check(n: Any, where: str) -> int:
    if isinstance(n, bool):
        raise TypeError(f"{where}: n must be an int, got bool")
    try:
        count = operator.index(n)
    except TypeError:
        raise TypeError(f"{where}: n must be an int, got {type(n).__name__}") from None
    if count < 1:
        raise ValueError(f"{where}: n must be >= 1, got {count}")
    return count


def set_num_threads(n: int) -> None:
    """Set the process-wide number of threads the compiled kernels use (an int >= 1).

    Without OpenMP compiled in, kernels run serially whatever is set here; counts above
    max(256, CPUs) are clamped to that by the kernels.
    """
    global _num_threads
    _num_threads = _check(n, "set_num_threads")


@contextlib.contextmanager
def num_threads(n: int) -> Iterator[None]:
    """Context manager: the enclosed block (in this thread/context only) uses ``n`` threads."""
    token = _scoped.set(_check(n, "num_threads"))
    try:
        yield
    finally:
        _scoped.reset(token)


# ---- threadpoolctl: the kernels' thread count as an "openmp" pool ----------------------
# threadpoolctl finds thread pools by the shared libraries a process has loaded; nnfast's
# kernels pass their count to OpenMP at every call (omp_set_num_threads would not reach
# them), so the compiled module registers a controller of its own: user_api "openmp",
# internal_api "nnfast", matched by the module's file name and one of its C symbols.
# ``threadpool_info()`` then lists it and ``threadpool_limits(n)`` (or ``user_api="openmp"``)
# limits it. Registration costs nothing at import: if threadpoolctl is not imported yet,
# it happens when it is.

def _register_controller(threadpoolctl: Any) -> None:
    base = threadpoolctl.LibController

    class NnfastController(base):  # type: ignore[misc, valid-type]
        user_api = "openmp"
        internal_api = "nnfast"
        filename_prefixes = ("_kernels",)
        check_symbols = ("nnf_have_openmp",)

        def get_num_threads(self) -> int:
            return _num_threads if _num_threads is not None else get_num_threads()

        def set_num_threads(self, num_threads: int) -> None:
            set_num_threads(max(1, int(num_threads)))

        def get_version(self) -> str:
            from . import __version__
            return __version__

    threadpoolctl.register(NnfastController)


class _AfterImport:
    """A meta-path finder that registers the controller once threadpoolctl is imported."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "threadpoolctl":
            return None
        import importlib.util
        import sys

        sys.meta_path[:] = [f for f in sys.meta_path if f is not self]
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_and_register(module: Any) -> None:
            exec_module(module)
            try:
                _register_controller(module)
            except Exception:  # an incompatible threadpoolctl: leave it alone
                pass

        loader.exec_module = exec_and_register  # type: ignore[method-assign]
        return spec


def register_with_threadpoolctl() -> None:
    """Make the compiled kernels' pool visible to threadpoolctl (called when they load)."""
    import sys

    module = sys.modules.get("threadpoolctl")
    if module is not None:
        try:
            _register_controller(module)
        except Exception:
            pass
    elif not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport())
