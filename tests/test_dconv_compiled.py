"""The direct stride-1 convolution kernels (csrc/dconv*.c) against the reference.

Every vector build this CPU can run (baseline, AVX2+FMA, AVX-512F) is checked directly,
not only the one the layers pick: forward with and without bias, the filter gradient,
and the input gradient as the layers compute it (a direct convolution of dout with the
flipped filters), over filter sizes 1-5 (square and not), paddings 0 to beyond the
filter, filter counts that leave every register-block tail, odd planes, batch 1 and 3,
1 and 2 threads. float64 to ~1e-12, float32 to ~1e-5 (FMA and another summation order).
Also: bit-identical results for 1 and 2 threads, the non-finite fallback, and argument
checks at the entry points.
"""
import itertools

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import nnfast
from nnfast import _dispatch
from nnfast import layers as L
from nnfast.reference import layers as R

_K = _dispatch._kernels
pytestmark = pytest.mark.skipif(_K is None or not _K.dconv_built(),
                                reason="the direct convolutions are not in this build")

ISAS = [] if _K is None else \
    ["baseline", "avx2", "avx512"][:["baseline", "avx2", "avx512"].index(_K.dconv_isa()) + 1]
TOL = {np.float32: 1e-5, np.float64: 1e-12}


def close(actual, expected, dtype):
    scale = float(np.abs(expected).max()) if expected.size else 0.0
    tol = TOL[dtype]
    assert_allclose(actual, expected, rtol=tol, atol=tol * (1.0 + scale))


def _grid():
    """(N, C, H, W, F, KH, KW, pad) covering filter sizes, pads and filter-block tails."""
    grid = []
    sizes = [(1, 2, 7, 9), (3, 1, 6, 5), (1, 5, 11, 4), (3, 3, 9, 13)]
    for k, ((kh, kw), pad, f) in enumerate(itertools.product(
            [(1, 1), (3, 3), (2, 3), (5, 5), (3, 1)], [0, 1, 2, 4], [1, 2, 3, 5, 7, 13])):
        n, c, h, w = sizes[k % len(sizes)]
        if kh <= h + 2 * pad and kw <= w + 2 * pad:
            grid.append((n, c, h, w, f, kh, kw, pad))
    return grid[::3]  # every filter count, pad and filter shape still appears


GRID = _grid()


def _case(geom, dtype, seed=0):
    n, c, h, w, f, kh, kw, pad = geom
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    W = rng.standard_normal((f, c, kh, kw)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    ref = R.Convolution(W, b, 1, pad)
    out = ref.forward(x)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = ref.backward(dout)
    return x, W, b, dout, out, dx, ref.dW


def _scratch(c, h, w, f, kh, kw, ph, pw, dtype, threads):
    return np.full(_K.dconv_scratch_size(c, h, w, f, kh, kw, ph, pw, threads), np.nan, dtype)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("geom", GRID, ids=lambda g: "N{}C{}_{}x{}_F{}_{}x{}_p{}".format(*g))
def test_kernels_match_reference(geom, isa, dtype, threads):
    n, c, h, w, f, kh, kw, pad = geom
    x, W, b, dout, out_ref, dx_ref, dW_ref = _case(geom, dtype)
    x0, W0, dout0 = x.copy(), W.copy(), dout.copy()
    scratch = _scratch(c, h, w, f, kh, kw, pad, pad, dtype, threads)  # NaN: all must be set

    out = np.full(out_ref.shape, np.nan, dtype)
    _K.dconv_forward(x, W, b, pad, pad, out, scratch, threads, isa)
    close(out, out_ref, dtype)
    no_bias = np.full(out_ref.shape, np.nan, dtype)
    _K.dconv_forward(x, W, None, pad, pad, no_bias, scratch, threads, isa)
    close(no_bias, out_ref - b.reshape(1, f, 1, 1), dtype)

    dW = np.full(W.shape, np.nan, dtype)
    assert _K.dconv_dw(x, dout, pad, pad, dW, scratch, threads, isa) is True
    close(dW, dW_ref, dtype)
    dW2, db = np.full(W.shape, np.nan, dtype), np.full(f, np.nan, dtype)
    assert _K.dconv_dw(x, dout, pad, pad, dW2, scratch, threads, isa, db) is True
    assert_array_equal(dW2, dW)
    db_ref = np.empty(f, dtype)  # conv_db's sum: the same bits
    _K.conv_db(dout.reshape(n, f, -1), db_ref, np.empty((n, f)), threads)
    assert_array_equal(db, db_ref)

    if pad <= min(kh, kw) - 1:  # dx as the layers compute it
        flipped = np.ascontiguousarray(W.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
        oh, ow = dout.shape[2:]
        s2 = _scratch(f, oh, ow, c, kh, kw, kh - 1 - pad, kw - 1 - pad, dtype, threads)
        dx = np.full(x.shape, np.nan, dtype)
        _K.dconv_forward(dout, flipped, None, kh - 1 - pad, kw - 1 - pad, dx, s2, threads, isa)
        close(dx, dx_ref, dtype)
    for a, a0 in ((x, x0), (W, W0), (dout, dout0)):
        assert_array_equal(a, a0)


@pytest.mark.parametrize("isa", ISAS)
def test_threads_give_identical_bits(isa, dtype):
    geom = (9, 6, 20, 18, 11, 3, 3, 1)  # large enough for both kernels to go parallel
    x, W, b, dout, *_ = _case(geom, dtype, seed=3)
    results = []
    for t in (1, 2):
        scratch = _scratch(6, 20, 18, 11, 3, 3, 1, 1, dtype, t)
        out = np.empty((9, 11, 20, 18), dtype)
        dW = np.empty(W.shape, dtype)
        _K.dconv_forward(x, W, b, 1, 1, out, scratch, t, isa)
        _K.dconv_dw(x, dout, 1, 1, dW, scratch, t, isa)
        results.append((out, dW))
    for a, b_ in zip(*results):
        assert_array_equal(a, b_)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the reference's inf - inf
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_non_finite_input_falls_back_and_matches_reference(bad, monkeypatch):
    """The filter-gradient kernel multiplies discarded columns by zero, so it refuses
    non-finite inputs; the layer then takes the columns and matches the reference."""
    monkeypatch.setattr(_dispatch, "_PLANAR_MIN_POSITIONS", 0)
    geom = (2, 3, 6, 7, 4, 3, 3, 1)
    x, W, b, dout, *_ = _case(geom, np.float64, seed=4)
    x[1, 2, 3, 4] = bad
    dW = np.empty(W.shape)
    assert _K.dconv_dw(x, dout, 1, 1, dW, _scratch(3, 6, 7, 4, 3, 3, 1, 1, np.float64, 1), 1) \
        is False
    for Wbad in (W, np.where(np.arange(W.size).reshape(W.shape) == 5, bad, W)):
        nat, ref = L.Convolution(Wbad, b, 1, 1), R.Convolution(Wbad, b, 1, 1)
        assert_allclose(nat.forward(x), ref.forward(x), rtol=1e-12, atol=1e-12)
        assert_allclose(nat.backward(dout), ref.backward(dout), rtol=1e-12, atol=1e-12)
        assert_allclose(nat.dW, ref.dW, rtol=1e-12, atol=1e-12)


def test_entry_points_check_their_arguments():
    x = np.zeros((2, 3, 6, 6))
    W = np.zeros((4, 3, 3, 3))
    out = np.zeros((2, 4, 6, 6))
    s = np.zeros(_K.dconv_scratch_size(3, 6, 6, 4, 3, 3, 1, 1, 2))
    with pytest.raises(ValueError, match="out must have shape"):
        _K.dconv_forward(x, W, None, 1, 1, np.zeros((2, 4, 6, 5)), s, 2)
    with pytest.raises(ValueError, match="3 input channels"):
        _K.dconv_forward(x, np.zeros((4, 2, 3, 3)), None, 1, 1, out, s, 2)
    with pytest.raises(ValueError, match="scratch must hold"):
        _K.dconv_forward(x, W, None, 1, 1, out, s[:-1], 2)
    with pytest.raises(ValueError, match="bias must be"):
        _K.dconv_forward(x, W, np.zeros(3), 1, 1, out, s, 2)
    with pytest.raises(ValueError, match="does not fit"):
        _K.dconv_forward(x, np.zeros((4, 3, 9, 3)), None, 1, 1, out, s, 2)
    with pytest.raises(ValueError, match="dout must have shape"):
        _K.dconv_dw(x, np.zeros((2, 4, 5, 6)), 1, 1, np.zeros(W.shape), s, 2)
    with pytest.raises(ValueError, match="isa must be"):
        _K.dconv_forward(x, W, None, 1, 1, out, s, 2, "sse9")
    with pytest.raises(ValueError, match="invalid geometry"):
        _K.dconv_scratch_size(0, 6, 6, 4, 3, 3, 1, 1)
    with pytest.raises(ValueError):  # dtype mismatch
        _K.dconv_forward(x.astype(np.float32), W, None, 1, 1, out, s, 2)
    if _K.dconv_isa() != "avx512":
        with pytest.raises(ValueError, match="not supported"):
            _K.dconv_forward(x, W, None, 1, 1, out, s, 2, "avx512")


def test_layers_pick_the_direct_kernels_where_they_are_faster():
    """On a vector CPU: the channel-lane kernels from 32 products per output and 8 output
    channels (any stride), the plane kernels below that for stride 1 and 128+ output
    positions, else columns."""
    if _dispatch._DCONV_ISA not in ("avx2", "avx512"):
        pytest.skip("no vector build of the direct kernels on this CPU")
    rng = np.random.default_rng(5)
    for (c, f, h, stride, plan) in ((2, 8, 14, 1, "planes"), (2, 8, 8, 1, "columns"),
                                    (2, 8, 28, 2, "columns"), (4, 8, 8, 1, "channels"),
                                    (4, 8, 28, 2, "channels"), (4, 7, 14, 1, "planes"),
                                    (4, 7, 28, 2, "columns")):
        layer = L.Convolution(rng.standard_normal((f, c, 3, 3)), np.zeros(f), stride, 1)
        out = layer.forward(rng.standard_normal((2, c, h, h)))
        assert _dispatch.conv_plan(c, f, 3, 3, stride, out.shape[2] * out.shape[3]) == plan
        assert (layer._col is None) == (plan != "columns")


def test_environment_switch_turns_the_direct_kernels_off():
    import subprocess
    import sys
    code = ("import nnfast\nfrom nnfast import _dispatch\n"
            "print(_dispatch._DIRECT_CONV)")
    env = dict(__import__("os").environ, NNFAST_DIRECT_CONV="0")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == "False", res.stderr


@pytest.mark.parametrize("isa", ISAS)
def test_fused_relu_epilogue(isa, dtype):
    """relu_mask: out and mask exactly as Relu.forward leaves them on the plain output
    (mask = value <= 0, so NaN passes through and -0.0 becomes 0)."""
    geom = (2, 3, 9, 8, 5, 3, 3, 1)
    x, W, b, *_ = _case(geom, dtype, seed=6)
    x[0, 0, 2, 2] = np.nan
    b[1] = 0.0
    x[1] = 0.0  # image 1: the bias alone (and signed zeros where it is 0)
    scratch = _scratch(3, 9, 8, 5, 3, 3, 1, 1, dtype, 2)
    plain = np.empty((2, 5, 9, 8), dtype)
    _K.dconv_forward(x, W, b, 1, 1, plain, scratch, 2, isa)
    fused = np.full(plain.shape, 7, dtype)
    mask = np.full(plain.shape, 7, np.uint8)
    _K.dconv_forward(x, W, b, 1, 1, fused, scratch, 2, isa, mask)
    relu = R.Relu()
    assert_array_equal(fused, relu.forward(plain))
    assert_array_equal(mask.view(np.bool_), relu.mask)
    assert np.isnan(fused).any()
    with pytest.raises(ValueError, match="relu_mask must have"):
        _K.dconv_forward(x, W, b, 1, 1, fused, scratch, 2, isa, mask[:, :, :, :4].copy())


@pytest.mark.parametrize("name", ["SimpleConvNet", "DeepConvNet", "SmallAlexNet"])
def test_networks_fuse_conv_relu_without_changing_anything(name, dtype):
    """The native networks run Convolution + Relu (forward) and Pooling + Relu (backward)
    as one pass each: same loss, gradients and layer state (masks, the convolution's x
    and col) as the reference's layer loops."""
    from nnfast import nets
    from nnfast.reference import nets as ref_nets
    shape = (3, 3, 32, 32) if name == "SmallAlexNet" else (4, 1, 28, 28)
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape).astype(dtype)
    t = rng.integers(0, 10, shape[0])
    nets_ = []
    for fused in (True, False):
        np.random.seed(8)
        net = getattr(nets, name)(dtype=dtype, **({"input_dim": shape[1:]} if name != "SimpleConvNet" else {}))
        if not fused:  # the reference's loops over the same native layers
            net.predict = ref_nets._Network.predict.__get__(net)
            net._backprop = ref_nets._Network._backprop.__get__(net)
        np.random.seed(9)
        grads = net.gradient(x, t)
        nets_.append((net, grads))
    (a, ga), (b, gb) = nets_
    assert a.last_loss == b.last_loss
    for key in ga:
        assert_array_equal(ga[key], gb[key])
    for la, lb in zip(a._layer_sequence(), b._layer_sequence()):
        if isinstance(la, L.Relu):
            assert_array_equal(la.mask, lb.mask)
        if isinstance(la, L.Convolution):
            assert la.x is lb.x or np.array_equal(la.x, lb.x)
            assert_array_equal(la.col, lb.col)


def test_fusion_is_declared_when_the_network_is_built():
    """The conv+relu and relu+pool pairs are listed on the network, by layer object."""
    from nnfast import nets
    net = nets.SimpleConvNet(dtype=np.float32)
    lay = net.layers
    assert net.fusion == (("conv+relu forward", lay["Conv1"], lay["Relu1"]),
                          ("relu+pool backward", lay["Relu1"], lay["Pool1"]))
    deep = nets.DeepConvNet(dtype=np.float32)
    assert [k for k, _, _ in deep.fusion].count("conv+relu forward") == 6


def test_a_hook_runs_once_fusion_is_off_or_the_layer_is_replaced():
    """A forward replaced on the instance (a hook, a profiler) runs when the network's
    fusion is turned off (``net.fusion = ()``); a layer replaced by a subclass instance
    ends its pair's fusion. Either way the numbers are the fused run's."""
    from nnfast import nets
    np.random.seed(1)
    net = nets.SimpleConvNet(dtype=np.float32)
    x = np.random.rand(2, 1, 28, 28).astype(np.float32)
    fused = net.predict(x)
    calls = []
    relu = net.layers["Relu1"]
    inner = relu.forward
    relu.forward = lambda a: calls.append(a.shape) or inner(a)
    net.fusion = ()
    np.testing.assert_array_equal(net.predict(x), fused)
    assert calls == [(2, 30, 24, 24)]

    class Counting(L.Relu):
        def backward(self, dout):
            calls.append("backward")
            return super().backward(dout)

    net2 = nets.SimpleConvNet(dtype=np.float32)
    net2.layers["Relu1"] = Counting()
    nets.declare_fusion(net2)
    assert [k for k, _, _ in net2.fusion] == []
    net2.gradient(x, np.array([1, 2]))
    assert calls[-1] == "backward"


@pytest.mark.parametrize("cls, method", [("Convolution", "forward"), ("Relu", "forward"),
                                         ("Relu", "backward"), ("Pooling", "backward")])
def test_unfused_network_calls_a_method_replaced_on_the_class(cls, method, monkeypatch):
    """With fusion off, predict() and gradient() call each layer's methods as the
    reference's loops do (a profiler patched on the class sees every call), and fused and
    unfused runs give the same gradients bit for bit."""
    from nnfast import nets
    klass = getattr(L, cls)
    original = getattr(klass, method)
    calls = []

    def spy(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    x = np.random.rand(2, 1, 28, 28).astype(np.float32)
    np.random.seed(1)
    fused = nets.SimpleConvNet(dtype=np.float32).gradient(x, np.array([1, 2]))
    monkeypatch.setattr(klass, method, spy)
    np.random.seed(1)
    net = nets.SimpleConvNet(dtype=np.float32)
    net.fusion = ()
    grads = net.gradient(x, np.array([1, 2]))
    assert len(calls) == {"Relu": 2, "Convolution": 1, "Pooling": 1}[cls]
    for key in fused:
        np.testing.assert_array_equal(grads[key], fused[key])


def test_mixed_dtypes_take_the_columns_like_the_reference():
    """float32 x and W with a float64 bias: multiplied in float32 and the bias added in
    float64, as the reference does (the direct kernels compute in one dtype)."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 3, 14, 14)).astype(np.float32)
    W = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4)
    nat, ref = L.Convolution(W, b, 1, 1), R.Convolution(W, b, 1, 1)
    out, expect = nat.forward(x), ref.forward(x)
    assert out.dtype == expect.dtype == np.float64
    assert_allclose(out, expect, rtol=1e-12, atol=1e-12)
