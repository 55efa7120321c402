"""The channel-lane convolution kernels (csrc/bconv*.c) against the reference.

Every build this CPU can run (baseline, AVX2+FMA, AVX-512F) is checked directly, not only
the one the layers pick: forward (with and without bias, with the fused ReLU and its
mask), the filter gradient with db, and the input gradient as the layers compute it for
stride 1 (a forward of dout with the flipped filters). The grid covers strides 1-3, pads
0-3, filters 1x1 to 7x7 (square and not), filter counts that leave every channel-group
and lane tail, channel counts that split the taps into several blocks, maps from 4x4,
odd sizes, batch 1 and 3, 1 and 2 threads. float64 to 1e-12, float32 to 1e-5. Also: the
same bits on every build and thread count, inf/NaN exactly as the reference, and the
entry points' argument checks.
"""
import itertools

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from test_dconv_compiled import ISAS, close  # the builds this CPU runs; the tolerances

from nnfast import _dispatch
from nnfast import layers as L
from nnfast.reference import layers as R

_K = _dispatch._kernels
pytestmark = pytest.mark.skipif(_K is None or not _K.dconv_built(),
                                reason="the direct convolutions are not in this build")


def _grid():
    """(N, C, H, W, F, KH, KW, stride, pad)."""
    maps = [(1, 3, 7, 9), (3, 1, 6, 5), (1, 16, 4, 4), (3, 5, 11, 8), (1, 40, 5, 6)]
    filters = [(1, 1), (3, 3), (2, 3), (5, 5), (7, 7), (3, 1)]
    counts = [1, 7, 16, 17, 33, 48, 64, 65]
    grid = []
    for k, ((kh, kw), stride, pad, f) in enumerate(itertools.product(
            filters, [1, 2, 3], [0, 1, 2, 3], counts)):
        n, c, h, w = maps[k % len(maps)]
        if kh <= h + 2 * pad and kw <= w + 2 * pad:
            grid.append((n, c, h, w, f, kh, kw, stride, pad))
    return grid[::7]  # every filter shape, stride, pad and count still appears


GRID = _grid()


def _case(geom, dtype, seed=0):
    n, c, h, w, f, kh, kw, stride, pad = geom
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    W = rng.standard_normal((f, c, kh, kw)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    ref = R.Convolution(W, b, stride, pad)
    out = ref.forward(x)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = ref.backward(dout)
    return x, W, b, dout, out, dx, ref.dW, ref.db


def _fwd_scratch(c, h, w, f, kh, kw, stride, pad, dtype, threads, pw=None):
    pw = pad if pw is None else pw
    size = _K.bconv_fwd_scratch_size(c, h, w, f, kh, kw, stride, stride, pad, pw, threads,
                                     np.dtype(dtype).itemsize)
    return np.full(size, np.nan, dtype)  # NaN: everything read must have been written


def _dw_scratch(n, c, h, w, f, kh, kw, stride, pad, dtype, threads):
    size = _K.bconv_dw_scratch_size(n, c, h, w, f, kh, kw, stride, stride, pad, pad, threads,
                                    np.dtype(dtype).itemsize)
    return np.full(size, np.nan, dtype)


def _run(geom, x, W, b, dout, dtype, threads, isa):
    """(out, out without bias, ReLU out, mask, dW, db, dx or None) from the kernels."""
    n, c, h, w, f, kh, kw, stride, pad = geom
    out = np.full((n, f) + dout.shape[2:], np.nan, dtype)
    sf = _fwd_scratch(c, h, w, f, kh, kw, stride, pad, dtype, threads)
    _K.bconv_forward(x, W, b, stride, stride, pad, pad, out, sf, threads, isa)
    plain = np.full(out.shape, np.nan, dtype)
    _K.bconv_forward(x, W, None, stride, stride, pad, pad, plain, sf, threads, isa)
    relu, mask = np.full(out.shape, np.nan, dtype), np.full(out.shape, 7, np.uint8)
    _K.bconv_forward(x, W, b, stride, stride, pad, pad, relu, sf, threads, isa, mask)
    dW, db = np.full(W.shape, np.nan, dtype), np.full(f, np.nan, dtype)
    _K.bconv_dw(x, dout, stride, stride, pad, pad, dW,
                _dw_scratch(n, c, h, w, f, kh, kw, stride, pad, dtype, threads), threads, isa, db)
    dx = None
    if stride == 1 and pad <= min(kh, kw) - 1:  # dx as the layers compute it
        flipped = np.ascontiguousarray(W.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
        oh, ow = dout.shape[2:]
        dx = np.full(x.shape, np.nan, dtype)
        _K.bconv_forward(dout, flipped, None, 1, 1, kh - 1 - pad, kw - 1 - pad, dx,
                         _fwd_scratch(f, oh, ow, c, kh, kw, 1, kh - 1 - pad, dtype, threads,
                                      kw - 1 - pad),
                         threads, isa)
    return out, plain, relu, mask, dW, db, dx


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("geom", GRID,
                         ids=lambda g: "N{}C{}_{}x{}_F{}_{}x{}_s{}_p{}".format(*g))
def test_kernels_match_reference(geom, isa, dtype, threads):
    n, c, h, w, f, kh, kw, stride, pad = geom
    x, W, b, dout, out_ref, dx_ref, dW_ref, db_ref = _case(geom, dtype)
    x0, W0, dout0 = x.copy(), W.copy(), dout.copy()
    out, plain, relu, mask, dW, db, dx = _run(geom, x, W, b, dout, dtype, threads, isa)
    close(out, out_ref, dtype)
    close(plain, out_ref - b.reshape(1, f, 1, 1), dtype)
    assert_array_equal(mask, (out <= 0).astype(np.uint8))
    assert_array_equal(relu, np.where(out <= 0, 0, out))
    close(dW, dW_ref, dtype)
    conv_db = np.empty(f, dtype)  # conv_db's sum: the same bits
    _K.conv_db(dout.reshape(n, f, -1), conv_db, np.empty((n, f)), threads)
    assert_array_equal(db, conv_db)
    close(db, db_ref, dtype)
    if dx is not None:
        close(dx, dx_ref, dtype)
    for a, a0 in ((x, x0), (W, W0), (dout, dout0)):
        assert_array_equal(a, a0)


@pytest.mark.parametrize("geom", [(9, 6, 20, 18, 37, 3, 3, 1, 1), (5, 16, 9, 9, 70, 5, 5, 2, 2),
                                  (70, 8, 12, 12, 16, 3, 3, 1, 1)],
                         ids=["s1", "s2", "many-groups"])
def test_every_build_and_thread_count_gives_the_same_bits(geom, dtype):
    """Each output is one serial sum in a fixed order whatever the vector width, tile
    shape and thread count, and every build fuses the same multiply-adds."""
    x, W, b, dout, *_ = _case(geom, dtype, seed=3)
    first = None
    for isa, threads in itertools.product(ISAS, (1, 2)):
        got = _run(geom, x, W, b, dout, dtype, threads, isa)
        if first is None:
            first = got
            continue
        for a, a0 in zip(got, first):
            if a is not None:
                assert_array_equal(a, a0, err_msg=f"{isa}, {threads} thread(s)")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the reference's inf - inf
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("stride", [1, 2])
def test_non_finite_values_propagate_as_in_the_reference(bad, stride):
    """Only the reference's products are formed (no discarded columns), so an inf or NaN
    in x, W or dout gives NaN and inf exactly where the reference has them."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 8, 7, 6))
    W = rng.standard_normal((9, 8, 3, 3))
    b = rng.standard_normal(9)
    assert _dispatch.conv_plan(8, 9, 3, 3, stride, 1) == ("channels" if _dispatch._DIRECT_CONV
                                                          else "columns")
    for where in ("x", "W", "dout"):
        xx, WW = x.copy(), W.copy()
        if where == "x":
            xx[1, 2, 3, 4] = bad
        elif where == "W":
            WW[3, 1, 2, 0] = bad  # (dx then takes the columns: the zeros around dout)
        nat, ref = L.Convolution(WW, b, stride, 1), R.Convolution(WW, b, stride, 1)
        out_n, out_r = nat.forward(xx), ref.forward(xx)
        dout = rng.standard_normal(out_r.shape)
        if where == "dout":
            dout[0, 2, 1, 1] = bad
        assert_allclose(out_n, out_r, rtol=1e-12, atol=1e-12)
        assert_allclose(nat.backward(dout), ref.backward(dout), rtol=1e-12, atol=1e-12)
        assert_allclose(nat.dW, ref.dW, rtol=1e-12, atol=1e-12)
        assert_allclose(nat.db, ref.db, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("stride,pad", [(1, 0), (1, 1), (2, 1), (2, 3), (3, 2)])
def test_layers_on_the_channel_kernels_match_reference(stride, pad, dtype):
    """Through the layer: non-contiguous inputs, batch 1, an odd map; the plan is the
    channel kernels on a vector CPU."""
    rng = np.random.default_rng(8)
    W = rng.standard_normal((19, 6, 3, 3)).astype(dtype)
    b = rng.standard_normal(19).astype(dtype)
    for n in (1, 3):
        x = rng.standard_normal((n, 11, 6, 13)).astype(dtype)[:, ::2, :, ::-1][:, :, :, 1:]
        assert not x.flags.c_contiguous
        nat, ref = L.Convolution(W, b, stride, pad), R.Convolution(W, b, stride, pad)
        out = nat.forward(x)
        close(out, ref.forward(x), dtype)
        dout = rng.standard_normal(out.shape).astype(dtype)[..., ::-1]
        close(nat.backward(dout), ref.backward(dout), dtype)
        close(nat.dW, ref.dW, dtype)
        close(nat.db, ref.db, dtype)
        close(nat.col, ref.col, dtype)  # built when read


def test_entry_points_check_their_arguments():
    x = np.zeros((2, 3, 6, 6))
    W = np.zeros((4, 3, 3, 3))
    out = np.zeros((2, 4, 6, 6))
    s = np.zeros(_K.bconv_fwd_scratch_size(3, 6, 6, 4, 3, 3, 1, 1, 1, 1, 2, 8))
    _K.bconv_forward(x, W, None, 1, 1, 1, 1, out, s, 2)
    with pytest.raises(ValueError, match="out must have shape"):
        _K.bconv_forward(x, W, None, 1, 1, 1, 1, np.zeros((2, 4, 6, 5)), s, 2)
    with pytest.raises(ValueError, match="input channels"):
        _K.bconv_forward(x, np.zeros((4, 2, 3, 3)), None, 1, 1, 1, 1, out, s, 2)
    with pytest.raises(ValueError, match="scratch"):
        _K.bconv_forward(x, W, None, 1, 1, 1, 1, out, s[:-1], 2)
    with pytest.raises(ValueError, match="bias"):
        _K.bconv_forward(x, W, np.zeros(3), 1, 1, 1, 1, out, s, 2)
    with pytest.raises(ValueError, match="does not fit"):
        _K.bconv_forward(x, np.zeros((4, 3, 9, 3)), None, 1, 1, 1, 1, out, s, 2)
    with pytest.raises(ValueError, match="strides"):
        _K.bconv_forward(x, W, None, 0, 1, 1, 1, out, s, 2)
    with pytest.raises(ValueError, match="relu_mask"):
        _K.bconv_forward(x, W, None, 1, 1, 1, 1, out, s, 2, None,
                         np.zeros((2, 4, 6, 5), np.uint8))
    with pytest.raises(ValueError, match="does not fit"):  # compared as Python ints
        _K.bconv_forward(x, W, None, 1, 1, -2**62, 1, out, s, 2)
    with pytest.raises(ValueError, match="invalid geometry"):
        _K.bconv_fwd_scratch_size(3, 6, 6, 4, 3, 3, 1, 1, 2**61, 1, 1, 8)
    sd = np.zeros(_K.bconv_dw_scratch_size(2, 3, 6, 6, 4, 3, 3, 1, 1, 1, 1, 2, 8))
    _K.bconv_dw(x, out, 1, 1, 1, 1, np.zeros(W.shape), sd, 2)
    with pytest.raises(ValueError, match="dout must have shape"):
        _K.bconv_dw(x, np.zeros((2, 4, 5, 6)), 1, 1, 1, 1, np.zeros(W.shape), sd, 2)
    with pytest.raises(ValueError, match="scratch"):
        _K.bconv_dw(x, out, 1, 1, 1, 1, np.zeros(W.shape), sd[:-1], 2)
    with pytest.raises(ValueError, match="db must be"):
        _K.bconv_dw(x, out, 1, 1, 1, 1, np.zeros(W.shape), sd, 2, None, np.zeros(3))
    if "avx512" not in ISAS:
        with pytest.raises(ValueError, match="not supported"):
            _K.bconv_forward(x, W, None, 1, 1, 1, 1, out, s, 2, "avx512")


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("net", ["DeepConvNet", "SmallAlexNet", "SimpleConvNet"])
def test_networks_on_every_build_match_reference(net, isa, dtype, monkeypatch):
    """Each build through the dispatch seam (as NNFAST_ISA pins it), the direct kernels on
    even for the baseline build: the networks' gradients against the reference's."""
    from nnfast import nets as N
    from nnfast.reference import nets as RN
    monkeypatch.setattr(_dispatch, "_DCONV_ISA", isa)
    monkeypatch.setattr(_dispatch, "_DIRECT_CONV", True)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 1, 28, 28)).astype(dtype)
    t = rng.integers(0, 10, 3)
    grads = []
    for mod in (N, RN):
        np.random.seed(2)
        grads.append(getattr(mod, net)(dtype=dtype).gradient(x, t))
    for key in grads[1]:
        tol = 1e-10 if dtype == np.float64 else 2e-4
        scale = float(np.abs(grads[1][key]).max())
        assert_allclose(grads[0][key], grads[1][key], rtol=tol, atol=tol * scale,
                        err_msg=key)


def test_nnfast_isa_caps_the_convolution_build():
    import os
    import subprocess
    import sys
    code = ("import warnings; warnings.simplefilter('always')\nimport nnfast\n"
            "i = nnfast.build_info(); print(i['conv_isa'], i['direct_conv'])")

    def run(value):
        env = dict(os.environ, NNFAST_ISA=value)
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, check=True)
        return done.stdout.split(), done.stderr
    best = _K.dconv_isa()
    assert run("")[0] == [best, str(best != "baseline")]
    assert run("baseline")[0] == ["baseline", "False"]
    assert run("AVX2")[0][0] == ("avx2" if best != "baseline" else "baseline")
    assert run("avx512")[0][0] == best
    out, err = run("sse9")
    assert out[0] == best and "NNFAST_ISA must be one of" in err
