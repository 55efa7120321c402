"""The element-wise families' builds (csrc/isa.h): every build gives the same bits, at 1 and
2 threads; NNFAST_ISA caps the choice; nnfast's own exponential (softmax) is within 2 ulp of
NumPy's and handles NaN, inf and underflow as the reference does."""
import os
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from conftest import supported_isas
from nnfast import _dispatch

_K = _dispatch._kernels
pytestmark = pytest.mark.skipif(_K is None, reason="compiled extension not loaded")
ISAS = supported_isas()


def _on_every_build(fn):
    """fn() on every build and thread count; the results, which must all be equal."""
    before = _K.isa_selected()
    results = []
    try:
        for isa in ISAS:
            _K.isa_select(isa, exact=True)
            for nt in (1, 2):
                results.append(((isa, nt), fn(nt)))
    finally:
        _K.isa_select(before)
    (key0, first), rest = results[0], results[1:]
    for key, res in rest:
        for a, b in zip(first, res):
            assert_array_equal(a, b, err_msg=f"{key} differs from {key0}")
    return first


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (3, 17), (256, 1000), (1000, 10), (7, 129)])
def test_softmax_xent_same_bits_on_every_build(shape, dtype):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(shape) * 20).astype(dtype)
    labels = rng.integers(0, shape[1], shape[0])

    def run(nt):
        y, dx, yy = np.empty_like(x), np.empty_like(x), np.empty_like(x)
        row = np.empty(shape[0])
        loss = _K.softmax_xent(x, labels, None, y, dx, row, nt)
        _K.softmax(x, yy, nt)
        return y, dx, row, np.array([loss]), yy
    y, _, _, _, yy = _on_every_build(run)
    assert_array_equal(y, yy)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geom", [(100, 12544, 1), (4, 300, 1), (8, 19, 49), (3, 8, 5), (1, 9, 1)])
def test_batchnorm_same_bits_on_every_build(geom, dtype):
    n, c, i = geom
    rng = np.random.default_rng(2)
    x = rng.standard_normal(n * c * i).astype(dtype) * 3 + 1
    dout = rng.standard_normal(n * c * i).astype(dtype)
    g, b = rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)
    rm, rv = np.zeros(c, dtype), np.ones(c, dtype)

    def run(nt):
        out, xc, xn, test = (np.empty_like(x) for _ in range(4))
        std, rmo, rvo = (np.empty(c, dtype) for _ in range(3))
        _K.bn_forward_train(x, n, c, i, g, b, rm, rv, 0.9, out, xc, xn, std, rmo, rvo, nt)
        out2 = np.empty_like(x)
        _K.bn_forward_train(x, n, c, i, g, b, rm, rv, 0.9, out2, xc, None, std, rmo, rvo, nt)
        assert_array_equal(out, out2)
        dx, dx2 = np.empty_like(x), np.empty_like(x)
        dg, db, dg2, db2 = (np.empty(c, dtype) for _ in range(4))
        _K.bn_backward(dout, xc, xn, std, g, n, c, i, dx, dg, db, nt)
        _K.bn_backward(dout, xc, None, std, g, n, c, i, dx2, dg2, db2, nt)  # xn formed again
        for a, a2 in ((dx, dx2), (dg, dg2), (db, db2)):
            assert_array_equal(a, a2)
        _K.bn_forward_test(x, n, c, i, g, b, rmo, rvo, test, nt)
        return out, xc, xn, std, rmo, rvo, dx, dg, db, test
    _on_every_build(run)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_elementwise_and_optimizers_same_bits_on_every_build(dtype):
    rng = np.random.default_rng(3)
    n = 300_001  # parallel, with a vector tail
    x = (rng.standard_normal(n) * 4).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    mask = (rng.random(n) > 0.5).astype(np.uint8)

    def run(nt):
        out, msk = np.empty_like(x), np.empty(n, np.uint8)
        _K.relu_forward(x, out, msk, nt)
        s, ds = np.empty_like(x), np.empty_like(x)
        _K.sigmoid(x, s, False, nt)
        _K.sigmoid(x, ds, True, nt)
        m = np.empty_like(x)
        _K.mul_mask(x, mask, m, nt)
        p, m1, v1 = x.copy(), np.zeros_like(x), np.zeros_like(x)
        _K.optim_update(_K.OPT_ADAM, p, g, m1, v1, 1e-3, 0.9, 0.999, nt)
        mp, am = np.empty((2, 3, 50, 50), dtype), np.empty((2, 3, 50, 50), np.int32)
        _K.maxpool_forward(x[:2 * 3 * 100 * 100].reshape(2, 3, 100, 100), 2, 2, 2, 0, mp, am, nt)
        return out, msk, s, ds, m, p, m1, v1, mp, am
    _on_every_build(run)


@pytest.mark.parametrize("dtype,ulps", [(np.float32, 2), (np.float64, 2)])
def test_softmax_exponential_within_two_ulp_of_numpy(dtype, ulps):
    # softmax of [z, 0] is [e^z/(1+e^z), 1/(1+e^z)]; with one column, exactly 1. Look at the
    # exponential itself through a row [0, z]: y[1] / y[0] = exp(z) up to the division's
    # rounding, so compare softmax against NumPy's formula instead, over the whole range.
    z = np.concatenate([-np.logspace(-8, np.log10(740 if dtype == np.float64 else 103), 4000),
                        [0.0, -0.0, -1e-30]]).astype(dtype)
    x = np.stack([np.zeros_like(z), z], axis=1)
    y = np.empty_like(x)
    _K.softmax(x, y, 1)
    e = np.exp(z.astype(np.float64))
    want = np.stack([1 / (1 + e), e / (1 + e)], axis=1).astype(dtype)
    tiny = np.finfo(dtype).tiny
    normal = np.abs(want) >= tiny
    spacing = np.spacing(np.abs(want[normal]).astype(dtype))
    err = np.abs(y[normal].astype(np.float64) - want[normal]) / spacing
    assert err.max() <= ulps + 1, f"max error {err.max():.2f} ulp"  # + the division's rounding
    # subnormal results: absolute error within a few of the smallest subnormals
    sub = ~normal
    smallest = np.nextafter(dtype(0), dtype(1))
    assert (np.abs(y[sub].astype(np.float64) - want[sub]) <= 4 * float(smallest)).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_nan_and_inf_rows_match_the_reference(dtype):
    from nnfast.reference import functions as RF
    x = np.array([[1, np.nan, 3], [np.inf, 1, 2], [-np.inf, 0, 1], [-np.inf, -np.inf, -np.inf],
                  [1e30, -1e30, 0], [5, 5, 5]], dtype=dtype)
    y = np.empty_like(x)
    _K.softmax(x, y, 1)
    with np.errstate(all="ignore"):
        want = RF.softmax(x)
    assert_array_equal(np.isnan(y), np.isnan(want))
    ok = ~np.isnan(want)
    np.testing.assert_allclose(y[ok], want[ok], rtol=1e-6 if dtype == np.float32 else 1e-14)


def test_nnfast_isa_caps_every_family():
    code = "import nnfast; print(nnfast.build_info()['isa'])"

    def run(value):
        env = dict(os.environ, NNFAST_ISA=value)
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, check=True)
        return eval(done.stdout)  # a dict literal of strings
    best = ISAS[-1]
    families = ("eltwise", "batchnorm", "softmax_xent", "pool", "optim", "affine")
    got = run("")
    assert all(got[f] == best for f in families if f != "pool")
    assert got["pool"] == ("avx2" if best == "avx512" else best)
    got = run("baseline")
    assert all(got[f] == "baseline" for f in families) and got["conv"] == "baseline"
    if "avx2" in ISAS:
        assert all(run("avx2")[f] == "avx2" for f in families)


def test_families_run_their_preferred_build_and_exact_forces_every_build():
    before = _K.isa_selected()
    try:
        best = _K.isa_select(None)
        for family in ("eltwise", "batchnorm", "softmax_xent", "optim", "affine"):
            assert _K.isa_family(family) == best
        # pooling prefers AVX2 (its AVX-512 build measured slower)
        assert _K.isa_family("pool") == ("avx2" if best == "avx512" else best)
        _K.isa_select(best, exact=True)
        assert _K.isa_family("pool") == best
        with pytest.raises(ValueError, match="unknown family 'conv'"):
            _K.isa_family("conv")
    finally:
        _K.isa_select(before)


def test_isa_select_refuses_unknown_and_unsupported_levels():
    before = _K.isa_selected()
    with pytest.raises(ValueError, match="isa must be None or one of"):
        _K.isa_select("sse9")
    assert _K.isa_selected() == before
    if ISAS[-1] != "avx512":
        with pytest.raises(ValueError, match="not supported by this CPU"):
            _K.isa_select("avx512")
    assert _K.isa_select(None) == ISAS[-1]
    _K.isa_select(before)
