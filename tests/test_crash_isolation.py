"""Calls that could crash the interpreter, each run in a subprocess.

A segfault (or abort) in a kernel would end the whole test run; here it is a failing
test naming the signal and the call. Prime candidates are direct calls into
``nnfast._kernels`` with inconsistent buffers (the public API validates first, the
seam must hold on its own) and the cases fuzzing once found to crash (regressions).

``NNFAST_KERNEL_FUZZ_CALLS`` sets the number of random kernel calls per seed
(default 4000: about a second each; the long run uses e.g. 200000).
"""
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nnfast import _dispatch

pytestmark = pytest.mark.skipif(not _dispatch.compiled(),
                                reason="the compiled extension is not in use")

HERE = Path(__file__).parent
FUZZ_CALLS = int(os.environ.get("NNFAST_KERNEL_FUZZ_CALLS", "4000"))
TIMEOUT = 600


def run_isolated(code, *args, timeout=TIMEOUT):
    """Run ``code`` (a snippet) or a script path in a fresh interpreter.

    Returns the CompletedProcess; fails the test with the signal's name and the last
    lines of output if the process was killed by a signal.
    """
    cmd = [sys.executable]
    cmd += [str(code)] if isinstance(code, Path) else ["-c", textwrap.dedent(code)]
    proc = subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode < 0:
        sig = signal.Signals(-proc.returncode).name
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-8:])
        pytest.fail(f"the subprocess was killed by {sig}; last output:\n{tail}")
    return proc


def expect_refused(body, exc="ValueError"):
    """Run ``body`` (after ``import numpy as np; from nnfast import _kernels as K``) and
    require that it raises ``exc`` (and does not crash)."""
    code = ("import numpy as np\nfrom nnfast import _kernels as K\ntry:\n"
            + textwrap.indent(textwrap.dedent(body), "    ")
            + f"\nexcept {exc} as e:\n    print('refused:', e)\nelse:\n    print('accepted')\n")
    proc = run_isolated(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("refused:"), proc.stdout + proc.stderr
    return proc.stdout


# ---- regressions: inputs that crashed before this suite existed -------------------------

def test_batchnorm_sizes_that_wrap_around_int64():
    # N * C * I computed in int64 wrapped to the real element count (4): the kernel then
    # walked N = 3689348814741910324 samples past the end of x. Segfault before the fix.
    n_wrapping = pow(5, -1, 2**64) * 4 % 2**64
    out = expect_refused(f"""
        x, c = np.ones(4), np.ones(1)
        K.bn_forward_train(x, {n_wrapping}, 1, 5, c, c, c, c, 0.9, np.empty(4), np.empty(4),
                           np.empty(4), np.empty(1), np.empty(1), np.empty(1), 1)
    """)
    assert "does not match 4 elements" in out
    expect_refused(f"K.bn_forward_test(np.ones(4), {n_wrapping}, 1, 5, np.ones(1), np.ones(1),"
                   f" np.ones(1), np.ones(1), np.empty(4), 1)")
    expect_refused(f"K.bn_backward(np.ones(4), np.ones(4), np.ones(4), np.ones(1), np.ones(1),"
                   f" {n_wrapping}, 1, 5, np.empty(4), np.empty(1), np.empty(1), 1)")


def test_huge_thread_count_is_clamped():
    # 100000 OpenMP threads exhausted the process's thread limit: libgomp crashed (SIGSEGV).
    proc = run_isolated("""
        import numpy as np, nnfast
        from nnfast import _kernels as K
        x = np.linspace(-1, 1, 10**6)
        out = np.empty_like(x)
        K.relu(x, out, 100000)
        nnfast.set_num_threads(100000)
        assert np.array_equal(nnfast.functions.relu(x), out)
        print("ok")
    """)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_padding_whose_size_overflows_int64():
    out = expect_refused("K.im2col(np.ones((1, 1, 2, 2)), 3, 3, 1, 2**62, np.empty((1, 9)), 1)")
    assert "does not fit" in out
    expect_refused("K.maxpool_forward(np.ones((1, 1, 2, 2)), 2, 2, 1, 2**62, "
                   "np.empty((1, 1, 1, 1)), np.empty((1, 1, 1, 1), np.int32), 1)")


def test_products_that_wrap_around_do_not_match_buffers():
    # filter_h * filter_w and N * OH * OW are compared in exact arithmetic
    fh = pow(3, -1, 2**64) * 2 % 2**64  # 3 * fh == 2 (mod 2**64)
    expect_refused(f"K.im2col(np.ones((1, 1, 2, 2)), {fh}, 3, 1, {fh}, np.empty((1, 2)), 1)")
    expect_refused("K.conv_bias_nchw(np.ones((0, 0)), np.ones(0), "
                   "np.empty((2**32, 0, 2**32)), 1)")


def test_col2im_with_a_huge_stride():
    # a + stride - 1 overflowed in col2im's range computation (UBSan; in a plain build the
    # wrapped value corrupted the heap: "free(): invalid size" 77361 fuzz calls later)
    proc = run_isolated("""
        import numpy as np
        from nnfast import _kernels as K
        col = np.arange(1.0, 1 + 2 * 18).reshape(2, 18)
        expect, got = np.empty((2, 2, 5, 6)), np.empty((2, 2, 5, 6))
        K.col2im(col, expect, 3, 3, 100, 2, 1)  # also only the first window per image
        for stride in (2**63 - 1, 2**62 + 1):
            K.col2im(col, got, 3, 3, stride, 2, 2)
            assert np.array_equal(got, expect), stride
        print("ok")
    """)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


@pytest.mark.parametrize("call", [
    "K.relu(None, None, 1)",
    "K.softmax(None, None, 1)",
    "K.conv_db(np.ones((1, 2, 3)), None, np.empty((1, 2)), 1)",
    "K.optim_update(0, None, None, None, None, 1.0, 0.0, 0.0, 1)",
    "K.col2im(None, np.empty((1, 1, 2, 2)), 1, 1, 1, 0, 1)",
])
def test_none_for_a_required_buffer_is_a_type_error(call):
    # before: None became an empty buffer (silently doing nothing) or an AttributeError;
    # a None first argument leaves Cython's fused dispatch no signature to match
    out = expect_refused(call, "TypeError")
    assert "must not be None" in out or "No matching signature" in out, out


@pytest.mark.parametrize("call", [
    # labels out of range, argmax out of the window, mismatched and read-only buffers,
    # byte-swapped and non-contiguous arrays, wrong dtypes
    "K.cross_entropy(np.ones((2, 3)), np.array([0, 7]))",
    "K.softmax_xent(np.ones((2, 3)), np.array([0, -1]), None, np.empty((2, 3)), None, "
    "np.empty(2), 1)",
    "K.softmax_xent_backward(np.ones((2, 3)), np.array([3, 0]), None, np.empty((2, 3)), 1)",
    "K.relu(np.ones(5), np.empty(4), 1)",
    "K.relu(np.ones(5), np.ones(5)[::-1].copy()[::-1], 1)",
    "o = np.empty(5); o.setflags(write=False); K.relu(np.ones(5), o, 1)",
    "K.relu(np.ones(5, '>f8'), np.empty(5), 1)",
    "K.relu(np.ones(5, np.float32), np.empty(5), 1)",
    "K.im2col(np.ones((1, 1, 4, 4))[:, :, ::2], 2, 2, 1, 0, np.empty((1, 4)), 1)",
    "K.maxpool_forward(np.ones((1, 1, 4, 4)), 0, 2, 2, 0, np.empty((1, 1, 2, 2)), "
    "np.empty((1, 1, 2, 2), np.int32), 1)",
    "K.avgpool_backward(np.ones((1, 1, 2, 2)), np.empty((1, 1, 4, 4)), 2, 2, 0, 0, 1)",
    "K.bias_add(np.ones((2, 3)), np.ones(4), 1)",
    "K.optim_update(K.OPT_ADAM, np.ones(3), np.ones(3), np.ones(3), None, 1.0, 0.9, 0.9, 1)",
    "K.optim_update(17, np.ones(3), np.ones(3), None, None, 1.0, 0.0, 0.0, 1)",
    "K.relu(np.ones(3), np.empty(3), 0)",
])
def test_inconsistent_kernel_calls_are_refused(call):
    expect_refused(call, "(ValueError, TypeError)")


def test_corrupted_argmax_stays_inside_its_window():
    proc = run_isolated("""
        import numpy as np
        from nnfast import _kernels as K
        # refused (ValueError), and nothing written outside the plane: every term of a
        # corrupted offset is dropped; 2x2 windows (their own path) and 3x3 overlapping ones
        for size, stride, pad, n_out, bads in ((2, 2, 0, 2, (-1, 4, 5, 2**31 - 1, -2**31)),
                                               (3, 1, 1, 4, (-1, 9, 10, 2**31 - 1, -2**31))):
            dout = np.ones((1, 1, n_out, n_out))
            for bad in bads:  # 4, 5 (9, 10): outside the window, inside dx
                dx = np.full((1, 1, 4, 4), 7.0)
                try:
                    K.maxpool_backward(dout, np.full(dout.shape, bad, np.int32), dx, size,
                                       size, stride, pad, 1)
                except ValueError:
                    pass
                else:
                    raise AssertionError(f"offset {bad} accepted")
                assert not dx.any(), dx
        print("ok")
    """)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


@pytest.mark.parametrize("seed", [0, 1])
def test_random_kernel_calls_never_crash(seed):
    """tests/kernel_fuzz.py: consistent calls, then one argument corrupted at random."""
    proc = run_isolated(HERE / "kernel_fuzz.py", FUZZ_CALLS, seed)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert summary.startswith(f"done {FUZZ_CALLS} calls"), summary
