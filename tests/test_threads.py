"""Thread-count API and build reporting."""
import os
import subprocess
import sys

import numpy as np
import pytest

import nnfast


def test_default_is_at_least_one_and_capped():
    n = nnfast.get_num_threads()
    assert 1 <= n <= len(os.sched_getaffinity(0))


def test_set_and_context_manager():
    before = nnfast.get_num_threads()
    with nnfast.num_threads(1):
        assert nnfast.get_num_threads() == 1
    assert nnfast.get_num_threads() == before
    nnfast.set_num_threads(2)
    try:
        assert nnfast.get_num_threads() == 2
    finally:
        nnfast.set_num_threads(before)


def test_context_manager_restores_on_error():
    before = nnfast.get_num_threads()
    with pytest.raises(KeyError):
        with nnfast.num_threads(1):
            raise KeyError("boom")
    assert nnfast.get_num_threads() == before


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-3, ValueError),
                                      (1.5, TypeError), ("2", TypeError), (True, TypeError)])
def test_bad_thread_counts(bad, exc):
    with pytest.raises(exc, match="set_num_threads: n must be"):
        nnfast.set_num_threads(bad)


def _run(code, **env):
    full = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    full.update(env)
    out = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True,
                         text=True, check=True)
    return out.stdout.strip()


def test_omp_num_threads_is_respected():
    assert _run("import nnfast; print(nnfast.get_num_threads())", OMP_NUM_THREADS="1") == "1"


def test_wait_policy_defaults_to_passive_but_user_wins():
    code = "import os, nnfast; print(os.environ['OMP_WAIT_POLICY'])"
    assert _run(code) == "PASSIVE"
    assert _run(code, OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"


def test_openblas_thread_timeout_has_a_default_but_user_wins():
    code = "import os, nnfast; print(os.environ['OPENBLAS_THREAD_TIMEOUT'])"
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "18"
    assert _run(code, OPENBLAS_THREAD_TIMEOUT="10") == "10"


def test_build_info_reports_compiled_and_openmp():
    info = nnfast.build_info()
    assert set(info) >= {"compiled", "openmp", "num_threads", "kernels", "error"}
    # CI builds from source with a compiler that has OpenMP: the extension must
    # load there, or every "fast" path silently runs the reference.
    if os.environ.get("NNFAST_REQUIRE_COMPILED", "1") == "1":
        assert info["compiled"], info["error"]
        assert info["kernels"]["im2col"] == "compiled"


def test_reference_imports_without_compiled_extension():
    code = ("import sys; sys.modules['nnfast._kernels'] = None\n"
            "import nnfast.reference.layers, nnfast.reference.util\n"
            "assert 'nnfast._kernels' not in [m for m in sys.modules if sys.modules[m]]\n"
            "print('ok')")
    assert _run(code) == "ok"


def test_forced_reference_backend_falls_back():
    code = "import nnfast; print(nnfast.build_info()['kernels']['im2col'])"
    assert _run(code, NNFAST_BACKEND="reference") == "reference"


def test_num_threads_blocks_in_python_threads_do_not_undo_each_other():
    import threading

    before = nnfast.get_num_threads()
    nnfast.set_num_threads(2)
    try:
        inside, release = threading.Barrier(2), threading.Barrier(2)
        seen = []

        def worker(n):
            with nnfast.num_threads(n):
                inside.wait()
                seen.append(nnfast.get_num_threads())
                release.wait()

        threads = [threading.Thread(target=worker, args=(1,)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert seen == [1, 1]
        assert nnfast.get_num_threads() == 2  # the process-wide count is intact
    finally:
        nnfast.set_num_threads(before)


def test_num_threads_validates_its_argument():
    with pytest.raises(ValueError, match="num_threads: n must be >= 1"):
        with nnfast.num_threads(0):
            pass


@pytest.mark.skipif(not __import__("nnfast").build_info()["compiled"],
                    reason="the compiled kernels are not in use (NNFAST_BACKEND=reference?)")
def test_release_buffers_frees_the_transient_pool():
    from nnfast import _dispatch, layers

    rng = np.random.default_rng(0)
    conv = layers.Convolution(rng.standard_normal((4, 3, 3, 3)), np.zeros(4), 1, 1)
    out = conv.forward(rng.standard_normal((2, 3, 6, 6)))
    conv.backward(np.ones_like(out))
    assert getattr(_dispatch._transient, "pool", {})  # dcol was kept for the next call
    nnfast.release_buffers()
    assert not getattr(_dispatch._transient, "pool", {})
    conv.backward(np.ones_like(out))  # and regrows


_BLAS_CODE = """
import {first}
import nnfast
import numpy as np
from nnfast.nets import SimpleConvNet
np.random.seed(0)
rng = np.random.default_rng(0)
net = SimpleConvNet(hidden_size=20, conv_param={{'filter_num': 6}})
grads = net.gradient(rng.standard_normal((4, 1, 28, 28)), rng.integers(0, 10, 4))
print(nnfast.build_info()['serial_blas'], sum(float(g.sum()) for g in grads.values()).hex())
"""


def test_own_gemms_run_on_one_blas_thread_whatever_the_import_order():
    """nnfast's GEMMs run on one BLAS thread (no spinning OpenBLAS workers next to the
    kernels' threads), so import order changes neither the path nor the bits."""
    env = {k: v for k, v in os.environ.items() if k != "NNFAST_SERIAL_BLAS"}
    run = lambda first, **extra: subprocess.run(  # noqa: E731
        [sys.executable, "-c", _BLAS_CODE.format(first=first)], env={**env, **extra},
        capture_output=True, text=True, check=True).stdout.split()
    serial_numpy, bits_numpy = run("numpy")
    serial_nnfast, bits_nnfast = run("nnfast")
    assert serial_numpy == serial_nnfast
    assert bits_numpy == bits_nnfast
    from nnfast import _blas
    assert serial_numpy == str(_blas._find_set_local() is not None)
    assert run("numpy", NNFAST_SERIAL_BLAS="0")[0] == "False"
