"""Property-based tests (hypothesis): the native API against ``nnfast.reference``.

Valid inputs: random shapes (zero-size where meaningful), both dtypes, geometry
(filter/stride/pad), memory layouts (C, Fortran, strided, negative strides, read-only,
big-endian) and special values (NaN, inf, -0.0); the native result must equal the
reference's (tolerances of conftest) and no input may change.
Invalid inputs: wrong ndim, mismatched shapes, labels out of range, stride <= 0, pad < 0,
windows larger than the input, unsupported dtypes, absurd sizes; the call must raise
ValueError/TypeError/MemoryError/RuntimeError naming the place, and leave parameters,
optimizer state and layer caches exactly as they were.

Profiles (tests/conftest.py): "ci" by default (bounded, derandomized); the long run is
``NNFAST_HYPOTHESIS_PROFILE=long python -m pytest -q -p no:cacheprovider tests/test_fuzz.py``.
Array values come from a NumPy generator seeded by hypothesis (fast to draw; a failure
prints the seed, which reproduces it).
"""
import copy

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import nnfast.functions as F  # noqa: E402
import nnfast.layers as L  # noqa: E402
import nnfast.optimizer as O  # noqa: E402
import nnfast.util as U  # noqa: E402
from nnfast.reference import functions as RF  # noqa: E402
from nnfast.reference import layers as RL  # noqa: E402
from nnfast.reference import optimizer as RO  # noqa: E402
from nnfast.reference import util as RU  # noqa: E402

# NaN/inf inputs are part of the valid cases: NumPy's warnings about them are expected
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

SEEDS = st.integers(0, 2**32 - 1)
DTYPES = st.sampled_from([np.float32, np.float64])
LAYOUTS = st.sampled_from(["C", "F", "strided", "reversed", "readonly", "bigendian"])
ERRORS = (ValueError, TypeError, MemoryError, RuntimeError)
TOL = {np.dtype(np.float32): dict(rtol=2e-5, atol=2e-6),
       np.dtype(np.float64): dict(rtol=1e-11, atol=1e-12)}


def values(rng, shape, dtype, special=False, scale=2.0):
    a = rng.standard_normal(shape) * scale
    if special and a.size:
        k = rng.integers(0, a.size, size=max(1, a.size // 6))
        a.flat[k] = rng.choice([np.nan, np.inf, -np.inf, 0.0, -0.0], size=len(k))
    return a.astype(dtype)


def relayout(a, layout):
    """An array equal to ``a`` in another memory layout."""
    if layout == "F" and a.ndim:  # (asfortranarray turns 0-d into 1-d)
        return np.asfortranarray(a)
    if layout == "strided" and a.ndim:
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        big[..., ::2] = a
        return big[..., ::2]
    if layout == "reversed" and a.ndim:
        return a[::-1].copy()[::-1]
    if layout == "readonly":
        b = a.copy()
        b.setflags(write=False)
        return b
    if layout == "bigendian":
        return a.astype(a.dtype.newbyteorder(">"))
    return a.copy()


def assert_same(got, want, dtype, scale=1.0):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    tol = TOL[np.dtype(dtype)]
    np.testing.assert_allclose(got, want, rtol=tol["rtol"], atol=tol["atol"] * scale,
                               equal_nan=True)


def assert_native_dtype(got, dtype):
    assert np.asarray(got).dtype == np.dtype(dtype)


# ---- valid inputs: native == reference --------------------------------------------------

ELTWISE = ["identity_function", "step_function", "sigmoid", "relu", "d_sigmoid", "d_relu",
           "relu_grad", "sigmoid_grad", "d_step_function", "d_identity_function"]


@given(name=st.sampled_from(ELTWISE),
       shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
       dtype=DTYPES, layout=LAYOUTS, special=st.booleans(), seed=SEEDS)
def test_elementwise_functions(name, shape, dtype, layout, special, seed):
    base = values(np.random.default_rng(seed), shape, dtype, special)
    x = relayout(base, layout)
    before = x.copy()
    got = getattr(F, name)(x)
    want = getattr(RF, name)(base)
    assert_same(got, want, dtype)
    # (identity_function hands back its input itself, big-endian or not)
    assert np.asarray(got).dtype.newbyteorder("=") == np.asarray(want).dtype.newbyteorder("=")
    np.testing.assert_array_equal(x, before)


@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6), dtype=DTYPES,
       layout=LAYOUTS, special=st.booleans(), seed=SEEDS)
def test_softmax(shape, dtype, layout, special, seed):
    base = values(np.random.default_rng(seed), shape, dtype, special)
    x = relayout(base, layout)
    got = F.softmax(x)
    assert_same(got, RF.softmax(base), dtype)
    assert_native_dtype(got, dtype)
    np.testing.assert_array_equal(x, base)


# c >= 2: with one class, n labels have the size of an (n, 1) one-hot teacher (the
# reference's size rule then reads them as one-hot)
@given(n=st.integers(1, 5), c=st.integers(2, 6), one_hot=st.booleans(), dtype=DTYPES,
       layout=LAYOUTS, seed=SEEDS)
def test_losses_and_their_gradients(n, c, one_hot, dtype, layout, seed):
    rng = np.random.default_rng(seed)
    x_base = values(rng, (n, c), dtype)
    labels = rng.integers(0, c, n)
    t = np.eye(c, dtype=dtype)[labels] if one_hot else labels
    y_base = RF.softmax(x_base)
    x, y = relayout(x_base, layout), relayout(y_base, layout)
    assert_same(F.cross_entropy_error(t, y), RF.cross_entropy_error(t, y_base), dtype)
    assert_same(F.softmax_with_loss(t, x), RF.softmax_with_loss(t, x_base), dtype)
    assert_same(F.d_softmax_with_loss(t, y), RF.d_softmax_with_loss(t, y_base), dtype)
    onehot = np.eye(c, dtype=dtype)[labels]
    assert_same(F.mean_squared_error(onehot, y), RF.mean_squared_error(onehot, y_base), dtype)
    assert_same(F.d_mean_squared_error(onehot, y), RF.d_mean_squared_error(onehot, y_base),
                dtype)
    np.testing.assert_array_equal(x, x_base)
    np.testing.assert_array_equal(y, y_base)


@st.composite
def geometries(draw, pool=False):
    """(N, C, H, W, FH, FW, stride, pad) with the window inside the padded input; for
    pooling the pad is at most half the window."""
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    if pool:
        fh, fw = draw(st.integers(1, h)), draw(st.integers(1, w))
        pad = draw(st.integers(0, min(fh, fw) // 2))
    else:
        pad = draw(st.integers(0, 2))
        fh, fw = draw(st.integers(1, h + 2 * pad)), draw(st.integers(1, w + 2 * pad))
    return n, c, h, w, fh, fw, draw(st.integers(1, 4)), pad


@pytest.mark.skipif(not __import__("nnfast").build_info()["compiled"],
                    reason="the compiled kernels are not in use (NNFAST_BACKEND=reference?)")
@given(geo=geometries(), dtype=DTYPES, layout=LAYOUTS, seed=SEEDS)
def test_im2col_col2im(geo, dtype, layout, seed):
    n, c, h, w, fh, fw, s, p = geo
    rng = np.random.default_rng(seed)
    base = values(rng, (n, c, h, w), dtype, special=True)
    x = relayout(base, layout)
    col = U.im2col(x, fh, fw, s, p)
    np.testing.assert_array_equal(col, RU.im2col(base, fh, fw, s, p))  # a copy: exact
    assert_native_dtype(col, dtype)
    cbase = values(rng, col.shape, dtype)
    cin = relayout(cbase, layout)
    img = U.col2im(cin, (n, c, h, w), fh, fw, s, p)
    assert_same(img, RU.col2im(cbase, (n, c, h, w), fh, fw, s, p), dtype, scale=fh * fw)
    assert_native_dtype(img, dtype)
    np.testing.assert_array_equal(x, base)
    np.testing.assert_array_equal(cin, cbase)


@given(geo=geometries(), fn=st.integers(1, 4), dtype=DTYPES, layout=LAYOUTS,
       skip_dx=st.booleans(), seed=SEEDS)
def test_convolution_layer(geo, fn, dtype, layout, skip_dx, seed):
    n, c, h, w, fh, fw, s, p = geo
    rng = np.random.default_rng(seed)
    W, b = values(rng, (fn, c, fh, fw), dtype), values(rng, (fn,), dtype)
    xb = values(rng, (n, c, h, w), dtype)
    native, ref = L.Convolution(W, b, s, p), RL.Convolution(W.copy(), b.copy(), s, p)
    native.skip_dx = ref.skip_dx = skip_dx
    x = relayout(xb, layout)
    out = native.forward(x)
    scale = c * fh * fw * 10
    assert_same(out, ref.forward(xb), dtype, scale)
    assert_native_dtype(out, dtype)
    db_ = values(rng, out.shape, dtype)
    dout = relayout(db_, layout)
    dx = native.backward(dout)
    rdx = ref.backward(db_)
    if skip_dx:
        assert dx is None
    else:
        assert_same(dx, rdx, dtype, scale)
    assert_same(native.dW, ref.dW, dtype, scale * n * h * w)
    assert_same(native.db, ref.db, dtype, scale * n * h * w)
    np.testing.assert_array_equal(x, xb)
    np.testing.assert_array_equal(dout, db_)


@given(geo=geometries(pool=True), kind=st.sampled_from(["Pooling", "AvgPooling"]),
       dtype=DTYPES, layout=LAYOUTS, special=st.booleans(), seed=SEEDS)
def test_pooling_layers(geo, kind, dtype, layout, special, seed):
    n, c, h, w, fh, fw, s, p = geo
    rng = np.random.default_rng(seed)
    xb = values(rng, (n, c, h, w), dtype, special and kind == "Pooling")
    native, ref = getattr(L, kind)(fh, fw, s, p), getattr(RL, kind)(fh, fw, s, p)
    x = relayout(xb, layout)
    out = native.forward(x)
    assert_same(out, ref.forward(xb), dtype, fh * fw)
    assert_native_dtype(out, dtype)
    db_ = values(rng, out.shape, dtype)
    dout = relayout(db_, layout)
    assert_same(native.backward(dout), ref.backward(db_), dtype, fh * fw)
    np.testing.assert_array_equal(x, xb)
    np.testing.assert_array_equal(dout, db_)


DENSE = ["Relu", "Sigmoid", "Affine", "Dropout", "BatchNormalization",
         "BatchNormalization-spatial", "SoftmaxWithLoss"]


def make_layer(module, name, rng, dtype, shape):
    """A layer of ``module`` with parameters drawn from ``rng`` for inputs of ``shape``."""
    if name == "Affine":
        d = int(np.prod(shape[1:]))
        return module.Affine(values(rng, (d, 3), dtype), values(rng, (3,), dtype))
    if name.startswith("BatchNormalization"):
        spatial = name.endswith("spatial")
        ch = shape[1] if spatial else int(np.prod(shape[1:]))
        return module.BatchNormalization(1 + values(rng, (ch,), dtype, scale=0.1),
                                         values(rng, (ch,), dtype),
                                         mode="spatial" if spatial else "feature")
    if name == "Dropout":
        return module.Dropout(0.3)
    return getattr(module, name)()


@given(name=st.sampled_from(DENSE), n=st.integers(1, 4), inner=st.sampled_from([(5,), (2, 3, 2)]),
       dtype=DTYPES, layout=LAYOUTS, train=st.booleans(), seed=SEEDS)
def test_dense_layers(name, n, inner, dtype, layout, train, seed):
    if name == "BatchNormalization-spatial" and len(inner) != 3:
        inner = (2, 3, 2)
    if name == "SoftmaxWithLoss":
        inner = inner[:1]
    shape = (n,) + inner
    native = make_layer(L, name, np.random.default_rng(seed), dtype, shape)
    ref = make_layer(RL, name, np.random.default_rng(seed), dtype, shape)
    rng = np.random.default_rng(seed + 1)
    xb = values(rng, shape, dtype)
    x = relayout(xb, layout)
    if name == "SoftmaxWithLoss":
        t = rng.integers(0, shape[1], n)
        assert_same(native.forward(x, t), ref.forward(xb, t), dtype)
        assert_same(native.backward(1), ref.backward(1), dtype)
        np.testing.assert_array_equal(x, xb)
        return
    flagged = name.startswith(("Dropout", "BatchNormalization"))
    np.random.seed(seed % 2**32)
    out = native.forward(x, train) if flagged else native.forward(x)
    np.random.seed(seed % 2**32)
    rout = ref.forward(xb, train) if flagged else ref.forward(xb)
    assert_same(out, rout, dtype, 10)
    assert_native_dtype(out, dtype)
    np.testing.assert_array_equal(x, xb)
    if flagged and not train:
        return
    db_ = values(rng, np.shape(out), dtype)
    dout = relayout(db_, layout)
    assert_same(native.backward(dout), ref.backward(db_), dtype, 10 * n)
    for attr in ("dW", "db", "dgamma", "dbeta"):
        if getattr(ref, attr, None) is not None:
            assert_same(getattr(native, attr), getattr(ref, attr), dtype, 10 * n)
    np.testing.assert_array_equal(dout, db_)


OPTIMIZERS = ["SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"]
PARAM_LAYOUTS = st.sampled_from(["C", "F", "strided", "reversed", "bigendian"])


@given(name=st.sampled_from(OPTIMIZERS), dtype=DTYPES,
       shapes=st.lists(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=5),
                       min_size=1, max_size=3),
       p_layout=PARAM_LAYOUTS, g_layout=LAYOUTS, steps=st.integers(1, 3), seed=SEEDS)
def test_optimizers_match_reference_bit_for_bit(name, dtype, shapes, p_layout, g_layout,
                                                steps, seed):
    rng = np.random.default_rng(seed)
    base = {f"p{i}": values(rng, s, dtype) for i, s in enumerate(shapes)}
    params = {k: relayout(v, p_layout) for k, v in base.items()}
    ref_params = {k: v.copy() for k, v in base.items()}
    native, ref = getattr(O, name)(lr=0.05), getattr(RO, name)(lr=0.05)
    for _ in range(steps):
        gb = {k: values(rng, v.shape, dtype) for k, v in base.items()}
        grads = {k: relayout(v, g_layout) for k, v in gb.items()}
        native.update(params, grads)
        ref.update(ref_params, gb)
        for k in base:
            np.testing.assert_array_equal(params[k], ref_params[k])
            assert params[k].dtype == np.dtype(dtype).newbyteorder(params[k].dtype.byteorder)
            np.testing.assert_array_equal(grads[k], gb[k])


# ---- invalid inputs: a clear error, and nothing changed ----------------------------------

def snapshot(obj):
    """Every attribute of ``obj``: the object itself and, for arrays, a copy of the values."""
    return {k: (v, v.copy() if isinstance(v, np.ndarray) else None) for k, v in vars(obj).items()}


def assert_unchanged(obj, snap):
    now = vars(obj)
    assert now.keys() == snap.keys()
    for k, (was, values_then) in snap.items():
        assert now[k] is was, f"attribute {k} was rebound by a failing call"
        if values_then is not None:
            np.testing.assert_array_equal(now[k], values_then, err_msg=f"attribute {k}")


BAD_DTYPES = [np.complex128, np.float16, object, "U3", np.longdouble, "M8[s]"]


def bad_array(rng, shape, kind, axis=None):
    if kind == "dtype":
        dt = BAD_DTYPES[int(rng.integers(len(BAD_DTYPES)))]
        if np.dtype(dt) == np.dtype(np.float64):  # long double is double on some platforms
            dt = np.complex64
        a = np.zeros(shape, dtype=dt)
        return a
    if kind == "ndim":
        return np.zeros(shape + (2,)) if rng.integers(2) or len(shape) < 2 else np.zeros(shape[:-1])
    # "shape": one axis (``axis``, else a random one) one longer
    shape = list(shape)
    ax = int(rng.integers(len(shape))) if axis is None else axis
    shape[ax] += 1
    return np.zeros(shape)


LAYER_NAMES = ["Relu", "Sigmoid", "Affine", "Dropout", "BatchNormalization", "SoftmaxWithLoss",
               "Convolution", "Pooling", "AvgPooling"]


def trained_layer(name, rng, dtype):
    """A native layer after one valid forward and backward, and its input shape."""
    if name == "Convolution":
        layer = L.Convolution(values(rng, (2, 2, 3, 3), dtype), values(rng, (2,), dtype), 1, 1)
        shape = (2, 2, 4, 4)
    elif name in ("Pooling", "AvgPooling"):
        layer, shape = getattr(L, name)(2, 2, 2, 1), (2, 2, 4, 4)
    else:
        shape = (3, 4)
        layer = make_layer(L, name, rng, dtype, shape)
    x = values(rng, shape, dtype)
    if name == "SoftmaxWithLoss":
        layer.forward(x, rng.integers(0, 4, 3))
        layer.backward(1)
    else:
        out = layer.forward(x, True) if name in ("Dropout", "BatchNormalization") else layer.forward(x)
        layer.backward(np.ones_like(out))
    return layer, shape


@given(name=st.sampled_from(LAYER_NAMES), call=st.sampled_from(["forward", "backward"]),
       kind=st.sampled_from(["dtype", "ndim", "shape"]), dtype=DTYPES, seed=SEEDS)
def test_invalid_layer_inputs_leave_the_layer_unchanged(name, call, kind, dtype, seed):
    rng = np.random.default_rng(seed)
    layer, shape = trained_layer(name, rng, dtype)
    if name == "SoftmaxWithLoss" and call == "backward":
        call = "forward"  # backward ignores dout, as the original
    axis = None
    if call == "forward" and name in ("Relu", "Sigmoid", "Dropout", "Pooling", "AvgPooling"):
        if kind == "shape" or (kind == "ndim" and name not in ("Pooling", "AvgPooling")):
            kind = "dtype"  # these forwards take any shape (element-wise: any ndim)
    elif call == "forward" and kind == "shape":
        # the axis a forward constrains: features/channels, or the batch for the labels
        axis = 0 if name == "SoftmaxWithLoss" else 1
    params = [getattr(layer, p) for p in ("W", "b", "gamma", "beta") if hasattr(layer, p)]
    param_values = [p.copy() for p in params]
    snap = snapshot(layer)
    out_shape = shape
    if name == "Affine":
        out_shape = (shape[0], 3)
    elif name == "Convolution":
        out_shape = (2, 2, 4, 4)
    elif name in ("Pooling", "AvgPooling"):
        out_shape = (2, 2, 3, 3)
    bad = bad_array(rng, shape if call == "forward" else out_shape, kind, axis)
    if name == "SoftmaxWithLoss" and kind == "ndim":
        bad = np.zeros(shape + (2,))  # (a 1-D x is one sample: valid)
    with pytest.raises(ERRORS) as info:
        if call == "backward":
            layer.backward(bad)
        elif name == "SoftmaxWithLoss":
            layer.forward(bad, np.zeros(shape[0], dtype=np.int64))
        elif name in ("Dropout", "BatchNormalization"):
            layer.forward(bad, True)
        else:
            layer.forward(bad)
    assert name in str(info.value) or "cross_entropy_error" in str(info.value), info.value
    assert_unchanged(layer, snap)
    for p, v in zip(params, param_values):
        np.testing.assert_array_equal(p, v)


@given(n=st.integers(1, 4), c=st.integers(1, 5), dtype=DTYPES, seed=SEEDS,
       bad=st.sampled_from(["negative", "too large", "float", "length", "one-hot shape"]))
def test_invalid_labels(n, c, dtype, seed, bad):
    rng = np.random.default_rng(seed)
    layer, _ = trained_layer("SoftmaxWithLoss", rng, dtype)
    snap = snapshot(layer)
    x = values(rng, (n, c), dtype)
    t = rng.integers(0, c, n)
    if bad == "negative":
        t[-1] = -1
    elif bad == "too large":
        t[0] = c + int(rng.integers(0, 2**40))
    elif bad == "float":
        t = t.astype(np.float64) + 0.5
        if t.size == n * c:
            t = np.append(t, 0.5)
    elif bad == "length":
        t = np.append(t, 0)
        if t.size == n * c:
            t = np.append(t, 0)
    else:
        t = np.eye(c)[t].T.copy() if n != c else np.eye(c)[t][None]
    for call in (lambda: layer.forward(x, t), lambda: F.cross_entropy_error(t, x),
                 lambda: F.softmax_with_loss(t, x), lambda: F.d_softmax_with_loss(t, x)):
        with pytest.raises(ERRORS):
            call()
    assert_unchanged(layer, snap)


@given(geo=geometries(), which=st.sampled_from(["stride", "pad", "filter_h", "filter_w"]),
       value=st.sampled_from([0, -1, -2**63, 2**62, 2**31, 2**40]), seed=SEEDS)
def test_invalid_geometry(geo, which, value, seed):
    n, c, h, w, fh, fw, s, p = geo
    args = dict(filter_h=fh, filter_w=fw, stride=s, pad=p)
    args[which] = value
    if which == "pad" and value == 0:
        return  # valid
    if which == "pad" and value > 0:  # huge pads: a column matrix too large to allocate
        pass
    elif which in ("filter_h", "filter_w") and value > 0:
        pass  # a window larger than the input
    elif which == "stride" and value > 0:
        return  # a huge stride is valid (one window)
    x = values(np.random.default_rng(seed), (n, c, h, w), np.float64)
    for mod in (U, RU):
        with pytest.raises(ERRORS) as info:
            mod.im2col(x, **args)
        assert "im2col" in str(info.value)
    conv = L.Convolution(np.ones((2, c, fh, fw)), np.zeros(2), s, p)
    setattr(conv, {"filter_h": "W", "filter_w": "W"}.get(which, which),
            np.ones((2, c, value, fw)) if which == "filter_h" and 0 < value < 2**20 else
            (value if which in ("stride", "pad") else conv.W))
    if which in ("stride", "pad"):
        with pytest.raises(ERRORS) as info:
            conv.forward(x)
        assert "Convolution" in str(info.value)
    pool = L.Pooling(fh, fw, s, p)
    setattr(pool, {"filter_h": "pool_h", "filter_w": "pool_w"}.get(which, which), value)
    with pytest.raises(ERRORS) as info:
        pool.forward(x)
    assert "Pooling" in str(info.value)


@given(name=st.sampled_from(OPTIMIZERS), dtype=DTYPES, seed=SEEDS,
       bad=st.sampled_from(["missing", "shape", "dtype", "readonly", "lr", "not an array"]))
def test_invalid_optimizer_updates_change_nothing(name, dtype, seed, bad):
    rng = np.random.default_rng(seed)
    params = {k: values(rng, (3, 2), dtype) for k in ("W1", "b1", "W2")}
    opt = getattr(O, name)(lr=0.1)
    for _ in range(2):
        opt.update(params, {k: values(rng, (3, 2), dtype) for k in params})
    grads = {k: values(rng, (3, 2), dtype) for k in params}
    if bad == "missing":
        del grads["W2"]
    elif bad == "shape":
        grads["W2"] = values(rng, (2, 3), dtype)
    elif bad == "dtype":
        grads["W2"] = grads["W2"].astype(BAD_DTYPES[int(rng.integers(3))])
    elif bad == "readonly":
        params["W2"].setflags(write=False)
    elif bad == "lr":
        opt.lr = "fast"
    else:
        params["W2"] = params["W2"].tolist()
    before = {k: np.array(v, copy=True) for k, v in params.items()}
    state = {s: copy.deepcopy(getattr(opt, s)) for s in opt._state_names}
    it = getattr(opt, "iter", None)
    with pytest.raises(ERRORS) as info:
        opt.update(params, grads)
    assert f"{name}.update" in str(info.value)
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])
    for s, was in state.items():
        now = getattr(opt, s)
        assert now.keys() == was.keys()
        for k in was:
            np.testing.assert_array_equal(now[k], was[k])
    assert getattr(opt, "iter", None) == it
