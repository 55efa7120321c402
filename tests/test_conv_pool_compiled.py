"""Compiled Convolution / Pooling / AvgPooling against the reference layers.

test_layers.py checks both backends against naive loops and numerical
gradients on a few shapes; here the native layers must agree with
``nnfast.reference.layers`` over a grid of geometries (filter 1-7, stride 1-3
including stride > filter, pad 0-3, batch 1 and odd sizes, 1-8 channels,
non-square inputs and filters), for both dtypes and 1 and 2 threads: float64
to ~1e-12 (GEMMs sum in another order), float32 to ~1e-5, max pooling forward
and both pooling backwards exactly. Also: layouts and flags of inputs, inputs
never written, buffers never reused under the user, the reference's state
(col, col_W, arg_max), NaN/inf, and the NumPy fallback of every op.
"""
import os
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import nnfast
from nnfast import _dispatch
from nnfast import layers as L
from nnfast.reference import layers as R

pytestmark = [pytest.mark.skipif(_dispatch._kernels is None,
                                 reason="compiled extension not loaded"),
              # every build of the element-wise families (csrc/isa.h) this CPU has
              pytest.mark.usefixtures("eltwise_isa")]

TOL = {np.float32: 1e-5, np.float64: 1e-12}


def close(actual, expected, dtype, factor=1.0):
    """Relative agreement, scaled by the largest magnitude (GEMM rounding is absolute)."""
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    finite = np.abs(expected[np.isfinite(expected)])
    scale = float(finite.max()) if finite.size else 0.0
    tol = TOL[dtype] * factor
    assert_allclose(actual, expected, rtol=tol, atol=tol * (1.0 + scale))


def frozen(a):
    """A read-only copy with a non-contiguous layout (every other element of a larger array)."""
    big = np.empty(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
    big[..., ::2] = a
    view = big[..., ::2]
    view.setflags(write=False)
    return view


def _conv_grid():
    """(N, C, H, W, FN, FH, FW, stride, pad): every filter size, stride and pad, shapes rotating."""
    shapes = [(1, 1, 9, 7), (3, 2, 8, 11), (2, 5, 7, 7), (1, 8, 10, 6), (5, 3, 6, 9)]
    grid = []
    k = 0
    for fh in range(1, 8):
        for s in (1, 2, 3):
            for p in (0, 1, 2, 3):
                n, c, h, w = shapes[k % len(shapes)]
                fw = (fh, max(1, fh - 2), min(7, fh + 1))[k % 3]  # square and not
                fn = (1, 4, 7)[k % 3]
                k += 1
                if fh <= h + 2 * p and fw <= w + 2 * p:
                    grid.append((n, c, h, w, fn, fh, fw, s, p))
    return grid


CONV_GRID = _conv_grid()


def _gid(g):
    return "N{}C{}_{}x{}_F{}_{}x{}_s{}_p{}".format(*g)


@pytest.fixture(params=["rows", "planar", "direct"])
def layout(request, monkeypatch):
    """Force each method of the compiled convolution (normally chosen by geometry and CPU):
    im2col rows or planar columns + GEMM, or the direct kernels (stride 1 only; others
    then take the planar columns)."""
    if request.param == "direct" and _dispatch._DCONV_ISA is None:
        pytest.skip("no direct convolution in this build")
    monkeypatch.setattr(_dispatch, "_PLANAR_MIN_POSITIONS", 2**62 if request.param == "rows" else 0)
    monkeypatch.setattr(_dispatch, "_DIRECT_CONV", request.param == "direct")
    return request.param


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("geom", CONV_GRID, ids=_gid)
def test_convolution_matches_reference(geom, dtype, threads, layout):
    n, c, h, w, fn, fh, fw, s, p = geom
    rng = np.random.default_rng(hash(geom) % 2**32)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    W = rng.standard_normal((fn, c, fh, fw)).astype(dtype)
    b = rng.standard_normal(fn).astype(dtype)
    x0, W0, b0 = x.copy(), W.copy(), b.copy()
    ref, nat = R.Convolution(W, b, s, p), L.Convolution(W, b, s, p)
    with nnfast.num_threads(threads):
        out = nat.forward(x)
        expect = ref.forward(x)
        close(out, expect, dtype)
        assert out.flags.c_contiguous
        dout = rng.standard_normal(out.shape).astype(dtype)
        dout0 = dout.copy()
        dx = nat.backward(dout)
        dx_ref = ref.backward(dout)
    close(dx, dx_ref, dtype)
    close(nat.dW, ref.dW, dtype)
    close(nat.db, ref.db, dtype)
    if layout == "direct" and s == 1 and not (fh == fw == 1 and p == 0):
        assert nat._col is None  # no columns kept
    elif nat._col is not None:  # None: the direct 1x1 path
        assert nat._col.ndim == (2 if layout == "rows" else 3)
    # the reference's observable state
    assert_array_equal(nat.col, ref.col)
    assert nat.col_W.shape == ref.col_W.shape and np.shares_memory(nat.col_W, W)
    assert_array_equal(nat.col_W, ref.col_W)
    assert nat.x is x
    for a, a0 in ((x, x0), (W, W0), (b, b0), (dout, dout0)):
        assert_array_equal(a, a0)


@pytest.mark.parametrize("geom", CONV_GRID[::7], ids=_gid)
def test_convolution_gradient_is_numerical(geom):
    n, c, h, w, fn, fh, fw, s, p = geom
    n, c = min(n, 2), min(c, 3)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, c, h, w))
    W = rng.standard_normal((fn, c, fh, fw))
    b = rng.standard_normal(fn)
    layer = L.Convolution(W, b, s, p)
    dout = rng.standard_normal(layer.forward(x).shape)
    dx = layer.backward(dout)
    dW, db = layer.dW.copy(), layer.db.copy()
    loss = lambda _: float(np.sum(layer.forward(x) * dout))  # noqa: E731
    for arr, grad in ((x, dx), (W, dW), (b, db)):
        assert_allclose(grad, nnfast.gradient.numerical_gradient(loss, arr), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("x_shape, w_shape, stride, pad", [
    ((3, 4, 5, 7), (6, 4, 1, 1), 1, 0),   # the direct 1x1 path
    ((1, 1, 1, 1), (2, 1, 1, 1), 1, 0),
    ((2, 3, 5, 5), (2, 3, 1, 1), 2, 0),   # 1x1 but strided: im2col path
    ((2, 3, 4, 4), (2, 3, 1, 1), 1, 1),   # 1x1 but padded: im2col path
])
def test_convolution_1x1(dtype, x_shape, w_shape, stride, pad):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(x_shape).astype(dtype)
    W = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    ref, nat = R.Convolution(W, b, stride, pad), L.Convolution(W, b, stride, pad)
    close(nat.forward(frozen(x)), ref.forward(x), dtype)
    dout = rng.standard_normal(ref.forward(x).shape).astype(dtype)
    close(nat.backward(frozen(dout)), ref.backward(dout), dtype)
    close(nat.dW, ref.dW, dtype)
    close(nat.db, ref.db, dtype)
    assert_array_equal(nat.col, ref.col)  # built on request after a direct forward
    skip = L.Convolution(W, b, stride, pad)
    skip.skip_dx = True
    skip.forward(x)
    assert skip.backward(dout) is None
    assert_array_equal(skip.dW, nat.dW)
    assert_array_equal(skip.db, nat.db)


def test_convolution_buffers_are_never_reused_under_the_user(dtype, layout):
    rng = np.random.default_rng(4)
    W, b = rng.standard_normal((3, 2, 3, 3)).astype(dtype), np.zeros(3, dtype)
    layer = L.Convolution(W, b, 1, 1)
    x1, x2 = (rng.standard_normal((2, 2, 6, 6)).astype(dtype) for _ in range(2))
    out1 = layer.forward(x1)
    kept = out1.copy()
    col1 = layer.col
    col1_kept = col1.copy()
    dout = rng.standard_normal(out1.shape).astype(dtype)
    dx1 = layer.backward(dout)
    dW1, db1 = layer.dW, layer.db
    kept_grads = dx1.copy(), dW1.copy(), db1.copy()
    out2 = layer.forward(x2)
    layer.backward(2 * dout)
    assert not np.shares_memory(out1, out2)
    assert_array_equal(out1, kept)        # e.g. a Relu mask built from it stays valid
    assert_array_equal(col1, col1_kept)   # a col read by the user is not overwritten
    for got, want in zip((dx1, dW1, db1), kept_grads):
        assert_array_equal(got, want)
    # an unread column buffer is reused (the point of keeping it), and still correct
    buf = layer._work.get("col")
    layer.forward(x1)
    if layout != "direct":  # (the direct kernels keep no columns)
        assert buf is not None and layer._work.get("col") is buf
    ref = R.Convolution(W, b, 1, 1)
    ref.forward(x1)
    assert_array_equal(layer.col, ref.col)


def test_convolution_uses_current_parameters_and_forward_filters(layout):
    rng = np.random.default_rng(5)
    W, b = rng.standard_normal((2, 1, 2, 2)), rng.standard_normal(2)
    x = rng.standard_normal((1, 1, 4, 4))
    nat, ref = L.Convolution(W, b), R.Convolution(W, b)
    nat.forward(x), ref.forward(x)
    W *= 3.0  # in place, as an optimizer does: seen by backward through col_W
    dout = rng.standard_normal((1, 2, 3, 3))
    close(nat.backward(dout), ref.backward(dout), np.float64)
    W2 = rng.standard_normal((2, 1, 2, 2))
    nat.W = ref.W = W2  # rebinding takes effect at the next forward
    close(nat.forward(x), ref.forward(x), np.float64)


def test_convolution_mixed_dtypes_follow_numpy_promotion(layout):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
    W, b = rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3).astype(np.float32)
    nat, ref = L.Convolution(W, b), R.Convolution(W, b)
    close(nat.forward(x), ref.forward(x), np.float64)
    dout = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    dx, dx_ref = nat.backward(dout), ref.backward(dout)
    assert (dx.dtype, nat.dW.dtype, nat.db.dtype) == (dx_ref.dtype, ref.dW.dtype, ref.db.dtype)
    close(dx, dx_ref, np.float64, factor=1e7)  # float32 dout: float32 rounding on one side
    assert nat.col.dtype == ref.col.dtype == np.float32


def test_convolution_big_endian_and_integer_inputs(layout):
    rng = np.random.default_rng(8)
    W, b = rng.standard_normal((2, 2, 3, 3)), rng.standard_normal(2)
    x = rng.standard_normal((2, 2, 5, 4))
    nat, ref = L.Convolution(W.astype(">f8"), b.astype(">f8"), 1, 1), R.Convolution(W, b, 1, 1)
    close(nat.forward(x.astype(">f8")), ref.forward(x), np.float64)
    dout = rng.standard_normal((2, 2, 5, 4))
    close(nat.backward(dout.astype(">f8")), ref.backward(dout), np.float64)
    xi = rng.integers(-3, 4, size=(2, 2, 5, 4))
    close(L.Convolution(W, b, 1, 1).forward(xi), R.Convolution(W, b, 1, 1).forward(xi), np.float64)


def test_convolution_threads_agree_exactly(dtype, layout):
    rng = np.random.default_rng(9)  # large enough for the kernels to go parallel
    x = rng.standard_normal((8, 6, 18, 18)).astype(dtype)
    W, b = rng.standard_normal((10, 6, 3, 3)).astype(dtype), rng.standard_normal(10).astype(dtype)
    dout = rng.standard_normal((8, 10, 18, 18)).astype(dtype)
    results = []
    for t in (1, 2):
        with nnfast.num_threads(t):
            layer = L.Convolution(W, b, 1, 1)
            results.append((layer.forward(x), layer.backward(dout), layer.dW, layer.db))
    for a, b_ in zip(*results):
        assert_array_equal(a, b_)


# -- pooling -------------------------------------------------------------------

def _pool_grid():
    """(N, C, H, W, PH, PW, stride, pad) with pad <= half the window."""
    shapes = [(1, 1, 7, 9), (3, 2, 8, 6), (2, 5, 9, 9), (1, 8, 6, 11)]
    grid = []
    k = 0
    for ph in range(1, 8):
        for s in (1, 2, 3):
            for p in (0, 1, 2, 3):
                n, c, h, w = shapes[k % len(shapes)]
                pw = (ph, max(1, ph - 1), min(7, ph + 2))[k % 3]
                k += 1
                if 2 * p <= min(ph, pw) and ph <= h + 2 * p and pw <= w + 2 * p:
                    grid.append((n, c, h, w, ph, pw, s, p))
    return grid


POOL_GRID = _pool_grid()


def _pid(g):
    return "N{}C{}_{}x{}_P{}x{}_s{}_p{}".format(*g)


@pytest.mark.parametrize("geom", POOL_GRID, ids=_pid)
def test_max_pooling_backward_with_relu_mask(geom, dtype):
    """Pooling._backward_relu: bit-equal to Relu.backward(Pooling.backward(dout))."""
    n, c, h, w, ph, pw, s, p = geom
    rng = np.random.default_rng(hash(geom) % 2**31)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    relu, pool = L.Relu(), L.Pooling(ph, pw, s, p)
    out = pool.forward(relu.forward(x))
    dout = rng.standard_normal(out.shape).astype(dtype)
    dout.flat[::5] = np.nan  # a masked NaN gradient still gives 0, as Relu.backward
    expect = relu.backward(pool.backward(dout))
    assert_array_equal(pool._backward_relu(dout, relu), expect)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("geom", POOL_GRID, ids=_pid)
def test_pooling_matches_reference(geom, dtype, threads):
    n, c, h, w, ph, pw, s, p = geom
    rng = np.random.default_rng(hash(geom) % 2**32)
    # few distinct values: many ties inside windows
    x = rng.integers(-3, 4, size=(n, c, h, w)).astype(dtype)
    x0 = x.copy()
    with nnfast.num_threads(threads):
        for cls in ("Pooling", "AvgPooling"):
            nat, ref = getattr(L, cls)(ph, pw, s, p), getattr(R, cls)(ph, pw, s, p)
            out, expect = nat.forward(frozen(x)), ref.forward(x)
            assert out.dtype == dtype and out.flags.c_contiguous
            dout = rng.standard_normal(out.shape).astype(dtype)
            dout0 = dout.copy()
            dx, dx_ref = nat.backward(frozen(dout)), ref.backward(dout)
            if cls == "Pooling":
                assert_array_equal(out, expect)
                assert nat.arg_max.shape == ref.arg_max.shape
                assert_array_equal(nat.arg_max, ref.arg_max)
            else:
                close(out, expect, dtype)
            assert_array_equal(dx, dx_ref)  # same summation order as the reference
            assert_array_equal(x, x0)
            assert_array_equal(dout, dout0)


@pytest.mark.parametrize("pad", [0, 1])
def test_max_pooling_nan_and_inf(dtype, pad):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, 3, 6, 7)).astype(dtype)
    x[0, 0, 0, 0] = np.nan
    x[0, 0, 0, 1] = np.nan          # two NaNs in one window: the first wins
    x[0, 1, 2:4, 2:4] = -np.inf     # a window of -inf
    x[1, 0, :, :] = -np.inf         # a whole plane of -inf, windows on the padding included
    x[1, 1, 3, 3] = np.inf
    x[1, 2, 4, 5] = np.nan
    x[1, 2, 4, 6] = np.inf
    nat, ref = L.Pooling(2, 2, 2, pad), R.Pooling(2, 2, 2, pad)
    out, expect = nat.forward(x), ref.forward(x)
    assert_array_equal(out, expect)
    assert_array_equal(nat.arg_max, ref.arg_max)
    dout = rng.standard_normal(out.shape).astype(dtype)
    assert_array_equal(nat.backward(dout), ref.backward(dout))
    with np.errstate(invalid="ignore"):  # inf - inf in a window: NaN on both sides
        close(L.AvgPooling(2, 2, 2, pad).forward(x), R.AvgPooling(2, 2, 2, pad).forward(x), dtype)


@pytest.mark.parametrize("shape", [(3, 4, 8, 8), (2, 3, 7, 9), (1, 1, 2, 2)])
def test_max_pooling_2x2_fast_path_ties_and_signed_zeros(dtype, shape):
    """2x2/stride 2/pad 0 has its own kernel path: ties (first wins), odd edges, -0.0."""
    rng = np.random.default_rng(21)
    x = rng.integers(-2, 3, size=shape).astype(dtype)  # many ties
    x[x == 0] = np.where(rng.random(np.count_nonzero(x == 0)) < 0.5, -0.0, 0.0)
    nat, ref = L.Pooling(2, 2, 2, 0), R.Pooling(2, 2, 2, 0)
    out, expect = nat.forward(x), ref.forward(x)
    assert_array_equal(out, expect)
    assert_array_equal(nat.arg_max, ref.arg_max)
    dout = rng.integers(-1, 2, size=out.shape).astype(dtype)
    dout[dout == 0] = -0.0
    dx, dx_ref = nat.backward(dout), ref.backward(dout)
    assert_array_equal(dx, dx_ref)
    assert_array_equal(np.signbit(dx), np.signbit(dx_ref))  # 0 + (-0.0) is +0.0 in both


def test_max_pooling_ties_with_overlap_and_padding():
    x = np.zeros((1, 1, 4, 4))  # all ties: every window's first valid element... or padding
    nat, ref = L.Pooling(3, 3, 1, 1), R.Pooling(3, 3, 1, 1)
    assert_array_equal(nat.forward(x), ref.forward(x))
    assert_array_equal(nat.arg_max, ref.arg_max)
    dout = np.arange(16.0).reshape(1, 1, 4, 4)
    assert_array_equal(nat.backward(dout), ref.backward(dout))


def test_arg_max_is_read_only_and_assignable():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 3, 4, 4))
    nat, ref = L.Pooling(2, 2, 2), R.Pooling(2, 2, 2)
    nat.forward(x), ref.forward(x)
    with pytest.raises(ValueError):
        nat.arg_max[0] = 1  # a copy of the layer's state: writing it would change nothing
    new = (np.arange(nat.arg_max.size) % 4)
    nat.arg_max, ref.arg_max = new, new
    dout = rng.standard_normal((2, 3, 2, 2))
    assert_array_equal(nat.backward(dout), ref.backward(dout))
    with pytest.raises(ValueError, match="Pooling.arg_max"):
        nat.arg_max = new + 4
    with pytest.raises(ValueError, match="Pooling.arg_max"):
        nat.arg_max = new[:-1]


def test_pooling_outputs_are_fresh_arrays():
    rng = np.random.default_rng(12)
    layer = L.Pooling(2, 2, 2)
    x1, x2 = rng.standard_normal((2, 2, 4, 4)), rng.standard_normal((2, 2, 4, 4))
    out1 = layer.forward(x1)
    a1 = layer.arg_max
    kept = out1.copy(), a1.copy()
    layer.forward(x2)
    assert_array_equal(out1, kept[0])
    assert_array_equal(a1, kept[1])


@pytest.mark.parametrize("cls", ["Pooling", "AvgPooling"])
def test_pooling_threads_agree_exactly(dtype, cls):
    rng = np.random.default_rng(13)
    x = rng.standard_normal((8, 16, 24, 24)).astype(dtype)
    dout = rng.standard_normal((8, 16, 12, 12)).astype(dtype)
    results = []
    for t in (1, 2):
        with nnfast.num_threads(t):
            layer = getattr(L, cls)(2, 2, 2)
            results.append((layer.forward(x), layer.backward(dout)))
    for a, b in zip(*results):
        assert_array_equal(a, b)


# -- without the kernels: the same classes, every op on its NumPy stand-in -------------

def test_backend_reference_environment_runs_the_layers():
    code = (
        "import numpy as np, nnfast\n"
        "from nnfast import layers as L, nets\n"
        "assert nnfast.build_info()['kernels']['conv2d_forward'] == 'reference'\n"
        "from nnfast.reference import layers as R\n"
        "assert L.Convolution is not R.Convolution and L.Pooling.__module__ == 'nnfast.layers'\n"
        "x = np.random.default_rng(0).standard_normal((2, 1, 6, 6))\n"
        "W = np.random.default_rng(1).standard_normal((2, 1, 3, 3))\n"
        "outs = []\n"
        "for M in (L, R):\n"
        "    c, p = M.Convolution(W, np.zeros(2)), M.Pooling(2, 2, 2)\n"
        "    y = p.forward(c.forward(x))\n"
        "    dx = c.backward(p.backward(np.ones_like(y)))\n"
        "    outs.append((y, dx, c.dW, p.arg_max))\n"
        "for a, b in zip(*outs):\n"
        "    assert a.shape == b.shape and np.array_equal(a, b)\n"
        "net = nets.SimpleConvNet(dtype=np.float32)\n"
        "g = net.gradient(np.ones((2, 1, 28, 28), np.float32), np.array([1, 2]))\n"
        "assert g['W1'].dtype == np.float32 and len(net.fusion) == 2\n"
    )
    env = dict(os.environ, NNFAST_BACKEND="reference")
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
