"""Compiled dense ops (activations, Affine, softmax + cross-entropy, BatchNormalization,
Dropout, optimizers) against the reference.

Promises checked here: bit-for-bit equality (float64 and float32) for relu/step/sigmoid
and their derivatives, Relu, Sigmoid, Dropout, Affine, BatchNormalization ('feature'
mode) and every optimizer over several steps; ~1e-12 relative (~1e-5 in float32) for
softmax and cross-entropy (row sums in double instead of NumPy's pairwise order; the
cross-entropy's log is libm's, which may differ from NumPy's in the last bit).
Also: 1 and 2 threads, odd layouts, inputs unchanged, errors leave state alone, and
arrays handed out are never overwritten by a later call.
"""
import contextlib
import subprocess
import sys
import weakref

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from threadpoolctl import threadpool_limits

import nnfast
from nnfast import _blas, _dispatch
from nnfast import functions as F
from nnfast import layers as L
from nnfast import optimizer as O
from nnfast.reference import functions as RF
from nnfast.reference import layers as RL
from nnfast.reference import optimizer as RO

pytestmark = [pytest.mark.skipif(_dispatch._kernels is None,
                                 reason="compiled extension not loaded"),
              # every build of the element-wise families (csrc/isa.h) this CPU has
              pytest.mark.usefixtures("eltwise_isa")]

CLOSE = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}


def exact_or_close(a, b, dtype, exact):
    assert np.asarray(a).dtype == np.asarray(b).dtype
    if exact:
        assert_array_equal(a, b)
    else:
        assert_allclose(a, b, **CLOSE[dtype])


def layouts(base):
    """The same values as contiguous, transposed, sliced, read-only and byte-swapped arrays."""
    yield "contiguous", base.copy()
    yield "transposed", np.ascontiguousarray(base.T).T
    big = np.zeros((base.shape[0] * 2,) + base.shape[1:], dtype=base.dtype)
    big[::2] = base
    yield "sliced", big[::2]
    ro = base.copy()
    ro.flags.writeable = False
    yield "readonly", ro
    yield "byteswapped", base.astype(base.dtype.newbyteorder(">" if sys.byteorder == "little" else "<"))


def special_values(shape, dtype, seed=0):
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype) * 5
    flat = x.reshape(-1)
    special = [0.0, -0.0, np.inf, -np.inf, np.nan, 800.0, -800.0, 1e-30]
    k = min(len(special), flat.size)
    flat[:k] = special[:k]
    return x


# -- element-wise functions ----------------------------------------------------------

# sigmoid is exact too: its exp(-|x|) is computed by NumPy, the rest in C in the same order
ELTWISE = [("relu", True), ("d_relu", True), ("relu_grad", True), ("step_function", True),
           ("sigmoid", True), ("d_sigmoid", True), ("sigmoid_grad", True)]


@pytest.mark.parametrize("name, exact", ELTWISE)
@pytest.mark.parametrize("threads", [1, 2])
def test_eltwise_functions_match_reference(name, exact, dtype, threads):
    base = special_values((400, 400), dtype)  # 160k elements: the parallel path runs
    with nnfast.num_threads(threads), np.errstate(over="raise"):
        for layout, x in layouts(base):
            x0 = x.copy()
            got = getattr(F, name)(x)
            want = getattr(RF, name)(base)
            assert got.shape == want.shape and got.dtype == want.dtype, layout
            if exact or got.dtype.kind == "i":
                assert_array_equal(got, want)
                assert_array_equal(np.signbit(got), np.signbit(want))  # -0.0 as NumPy
            else:
                assert_allclose(got, want, **CLOSE[dtype])
            assert_array_equal(x, x0)


@pytest.mark.parametrize("name", [n for n, _ in ELTWISE])
def test_eltwise_scalars_and_empty(name):
    for v in (0, -1.5, np.float32(2.0), np.array(0.25)):
        got, want = getattr(F, name)(v), getattr(RF, name)(v)
        assert type(got) is type(want) and got == want
    assert getattr(F, name)(np.empty((0, 3))).shape == (0, 3)


# -- softmax and cross-entropy -------------------------------------------------------

@pytest.mark.parametrize("shape", [(7,), (5, 10), (3, 4, 9), (256, 1000)])
def test_softmax_matches_reference(shape, dtype):
    x = np.random.default_rng(1).standard_normal(shape).astype(dtype) * 10
    for layout, xl in layouts(x) if len(shape) > 1 else [("1-D", x)]:
        got = F.softmax(xl)
        assert got.dtype == dtype and got.shape == shape
        assert_allclose(got, RF.softmax(x), **CLOSE[dtype])
    x = x.copy()
    x.reshape(-1, shape[-1])[0, 1] = np.nan
    assert_array_equal(np.isnan(F.softmax(x)), np.isnan(RF.softmax(x)))


LABEL_DTYPES = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64]


@pytest.mark.parametrize("ldtype", LABEL_DTYPES)
def test_losses_with_labels_of_any_integer_dtype(ldtype, dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((13, 10)).astype(dtype) * 4
    t = rng.integers(0, 10, 13).astype(ldtype)
    y = RF.softmax(x)
    for got, want in [(F.softmax_with_loss(t, x), RF.softmax_with_loss(t, x)),
                      (F.cross_entropy_error(t, y), RF.cross_entropy_error(t, y)),
                      (F.d_softmax_with_loss(t, y), RF.d_softmax_with_loss(t, y))]:
        assert np.asarray(got).dtype == np.asarray(want).dtype == dtype
        assert_allclose(got, want, **CLOSE[dtype])


@pytest.mark.parametrize("tdtype", [np.int64, np.float32, np.float64, np.bool_])
def test_losses_with_one_hot_teachers(tdtype, dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 4)).astype(dtype)
    t = np.eye(4)[rng.integers(0, 4, 6)].astype(tdtype)
    y = RF.softmax(x)
    for fn in ("softmax_with_loss", "d_softmax_with_loss"):
        arg = x if fn == "softmax_with_loss" else y
        got, want = getattr(F, fn)(t, arg), getattr(RF, fn)(t, arg)
        assert np.asarray(got).dtype == np.asarray(want).dtype  # NumPy promotion kept
        assert_allclose(got, want, **CLOSE[dtype])
    assert_allclose(F.cross_entropy_error(t, y), RF.cross_entropy_error(t, y), **CLOSE[dtype])


def test_loss_epsilon_semantics_in_float32():
    # a perfectly classified float32 batch: y + 1e-7 rounds in float32, as in the reference
    x = np.array([[0.0, 100.0], [100.0, 0.0]], dtype=np.float32)
    t = np.array([1, 0])
    assert_allclose(F.softmax_with_loss(t, x), RF.softmax_with_loss(t, x), rtol=1e-6)
    assert_allclose(F.cross_entropy_error(t, RF.softmax(x)), RF.cross_entropy_error(t, RF.softmax(x)),
                    rtol=1e-6)


def test_loss_label_errors():
    x = np.random.randn(3, 4)
    for bad, exc, match in [(np.array([0, 4, 1]), ValueError, r"labels in d must be in \[0, 4\)"),
                            (np.array([0, -1, 1]), ValueError, r"got -1"),
                            (np.array([0, 1]), ValueError, r"must have shape \(3,\)"),
                            (np.array([0.0, 1.0, 2.0]), TypeError, r"integer class labels")]:
        for fn, arg in [(F.softmax_with_loss, x), (F.cross_entropy_error, RF.softmax(x)),
                        (F.d_softmax_with_loss, RF.softmax(x))]:
            with pytest.raises(exc, match=match):
                fn(bad, arg)


def test_kernels_check_labels_again():
    """The C side refuses labels out of range even if a caller skipped the Python checks."""
    x = np.random.randn(2, 3)
    y = np.empty_like(x)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        _dispatch._kernels.softmax_xent(x, np.array([0, 3]), None, y, None, np.empty(2), 1)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        _dispatch._kernels.cross_entropy(x, np.array([-1, 0]))
    with pytest.raises(ValueError, match=r"labels must have 2 elements"):
        _dispatch._kernels.softmax_xent_backward(x, np.array([0]), None, y, 1)


# -- layers ------------------------------------------------------------------------

def run_layer_pair(make, x, dout, train=None, threads=1):
    """forward + backward on the native and the reference layer; returns both results."""
    results = []
    for mod in (L, RL):
        layer = make(mod)
        x0, d0 = x.copy(), dout.copy()
        np.random.seed(5)
        # nnfast's GEMMs run on one BLAS thread (nnfast._blas): so does the reference's here
        blas = threadpool_limits(1, user_api="blas") if _blas.serial else contextlib.nullcontext()
        with nnfast.num_threads(threads), blas:
            out = layer.forward(x) if train is None else layer.forward(x, train)
            dx = layer.backward(dout)
        assert_array_equal(x, x0)
        assert_array_equal(dout, d0)
        results.append((layer, out, dx))
    return results


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name, exact", [("Relu", True), ("Sigmoid", True)])
def test_activation_layers(name, exact, dtype, threads):
    x = special_values((400, 400), dtype)
    dout = np.random.default_rng(4).standard_normal(x.shape).astype(dtype)
    (nl, out, dx), (rl, rout, rdx) = run_layer_pair(lambda m: getattr(m, name)(), x, dout,
                                                    threads=threads)
    exact_or_close(out, rout, dtype, exact)
    exact_or_close(dx, rdx, dtype, exact)
    if name == "Relu":
        assert_array_equal(nl.mask, rl.mask)


@pytest.mark.parametrize("x_shape, w_shape", [((100, 784), (784, 50)), ((7, 2, 3, 4), (24, 5)),
                                              ((1, 6), (6, 3))])
@pytest.mark.parametrize("threads", [1, 2])
def test_affine_bit_exact(x_shape, w_shape, dtype, threads):
    rng = np.random.default_rng(6)
    W = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[1]).astype(dtype)
    x = rng.standard_normal(x_shape).astype(dtype)
    dout = rng.standard_normal((x_shape[0], w_shape[1])).astype(dtype)
    (nl, out, dx), (rl, rout, rdx) = run_layer_pair(lambda m: m.Affine(W, b), x, dout,
                                                    threads=threads)
    for a, r in [(out, rout), (dx, rdx), (nl.dW, rl.dW), (nl.db, rl.db), (nl.x, rl.x)]:
        assert a.dtype == r.dtype and a.shape == r.shape
        assert_array_equal(a, r)
    assert nl.original_x_shape == rl.original_x_shape


def test_affine_skip_dx_and_odd_layouts():
    W, b = np.random.randn(12, 4), np.random.randn(4)
    x = np.random.randn(5, 3, 2, 2)
    dout = np.random.randn(5, 4)
    ref = RL.Affine(W, b)
    want = ref.forward(x)
    ref.backward(dout)
    for _, xl in layouts(x):
        for _, bl in layouts(b.reshape(1, -1)):
            layer = L.Affine(W, bl.reshape(-1))
            assert_array_equal(layer.forward(xl), want)
            layer.skip_dx = True
            assert layer.backward(dout.T.copy().T) is None
            assert_array_equal(layer.dW, ref.dW)
            assert_array_equal(layer.db, ref.db)


def test_handed_out_arrays_are_never_overwritten():
    W, b = np.random.randn(6, 3), np.random.randn(3)
    layer = L.Affine(W, b)
    x1, x2 = np.random.randn(4, 6), np.random.randn(4, 6)
    out1 = layer.forward(x1)
    keep_out = out1.copy()
    dx1 = layer.backward(np.ones((4, 3)))
    grads1 = {"W": layer.dW, "b": layer.db}  # as a network's gradient() returns them
    keep = [dx1.copy(), grads1["W"].copy(), grads1["b"].copy()]
    out2 = layer.forward(x2)
    layer.backward(np.full((4, 3), 2.0))
    assert out2 is not out1 and layer.dW is not grads1["W"] and layer.db is not grads1["b"]
    for a, k in zip([out1, dx1, grads1["W"], grads1["b"]], [keep_out] + keep):
        assert_array_equal(a, k)
    # views keep their base alive: still not reused
    view = layer.forward(x1)[1:]
    keep_view = view.copy()
    layer.forward(x2)
    assert_array_equal(view, keep_view)
    bn = L.BatchNormalization(np.ones(6), np.zeros(6))
    held = [bn.forward(x1), bn.xn, bn.xc, bn.backward(np.ones((4, 6)))]
    kept = [a.copy() for a in held]
    bn.forward(x2)
    bn.backward(np.full((4, 6), 2.0))
    for a, k in zip(held, kept):
        assert_array_equal(a, k)
    sl = L.SoftmaxWithLoss()
    sl.forward(x1, np.array([0, 1, 2, 3]))
    held = [sl.y, sl.backward()]
    kept = [a.copy() for a in held]
    sl.forward(x2, np.array([5, 4, 3, 2]))
    sl.backward()
    for a, k in zip(held, kept):
        assert_array_equal(a, k)
    for cls in (L.Relu, L.Sigmoid):
        lay = cls()
        o1 = lay.forward(x1)
        k1 = o1.copy()
        d1 = lay.backward(np.ones_like(x1))
        kd1 = d1.copy()
        lay.forward(x2)
        lay.backward(np.full_like(x1, 3.0))
        assert_array_equal(o1, k1)
        assert_array_equal(d1, kd1)


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="reuse needs refcounts")
def test_buffers_are_reused_when_nobody_holds_them():
    layer = L.Affine(np.random.randn(6, 3), np.random.randn(3))
    x = np.random.randn(4, 6)
    ref = weakref.ref(layer.forward(x))  # the result is dropped at once
    assert layer.forward(x) is ref()
    layer.backward(np.ones((4, 3)))
    dW = weakref.ref(layer.dW)
    layer.backward(np.ones((4, 3)))  # only the layer held dW
    assert layer.dW is dW()


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", [(4, 3), (100, 100), (12, 16, 28, 28), (1, 5)])
def test_dropout_same_draws_and_values(shape, dtype, threads):
    x = special_values(shape, dtype)
    dout = np.random.default_rng(7).standard_normal(shape).astype(dtype)
    with np.errstate(invalid="ignore"):  # inf * 0 in the reference (C does not warn)
        (nl, out, dx), (rl, rout, rdx) = run_layer_pair(lambda m: m.Dropout(0.3), x, dout,
                                                        threads=threads)
    assert_array_equal(nl.mask, rl.mask)
    for a, r in [(out, rout), (dx, rdx)]:
        assert a.dtype == r.dtype
        assert_array_equal(a, r)
        assert_array_equal(np.signbit(a), np.signbit(r))
    assert_array_equal(nl.forward(x, False), rl.forward(x, False))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", [(100, 100), (5, 2, 3, 2), (1, 7), (64, 600)])
def test_batchnorm_feature_mode_bit_exact(shape, dtype, threads):
    rng = np.random.default_rng(8)
    d = int(np.prod(shape[1:]))
    gamma = (rng.random(d) + 0.5).astype(dtype)
    beta = rng.standard_normal(d).astype(dtype)
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    for step in range(2):  # the second step starts from non-zero running stats
        (nl, out, dx), (rl, rout, rdx) = run_layer_pair(
            lambda m: m.BatchNormalization(gamma, beta, momentum=0.8,
                                           running_mean=None if step == 0 else rm,
                                           running_var=None if step == 0 else rv),
            x, dout, train=True, threads=threads)
        rm, rv = rl.running_mean, rl.running_var
        for name in ("xc", "xn", "std", "running_mean", "running_var", "dgamma", "dbeta"):
            a, r = getattr(nl, name), getattr(rl, name)
            assert a.dtype == r.dtype and a.shape == r.shape, name
            assert_array_equal(a, r, err_msg=name)
        assert_array_equal(out, rout)
        assert_array_equal(dx, rdx)
        assert nl.batch_size == rl.batch_size
        assert_array_equal(nl.forward(x, False), rl.forward(x, False))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", [(3, 2, 2, 3), (20, 16, 14, 14)])
def test_batchnorm_spatial_mode(shape, dtype, threads):
    rng = np.random.default_rng(9)
    c = shape[1]
    gamma = (rng.random(c) + 0.5).astype(dtype)
    beta = rng.standard_normal(c).astype(dtype)
    x = (rng.standard_normal(shape) * 2 - 1).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    (nl, out, dx), (rl, rout, rdx) = run_layer_pair(
        lambda m: m.BatchNormalization(gamma, beta, mode="spatial"), x, dout, train=True,
        threads=threads)
    tol = CLOSE[dtype] if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    for a, r in [(out, rout), (dx, rdx), (nl.dgamma, rl.dgamma), (nl.dbeta, rl.dbeta),
                 (nl.running_mean, rl.running_mean), (nl.running_var, rl.running_var),
                 (nl.std, rl.std)]:
        assert a.dtype == r.dtype and a.shape == r.shape
        assert_allclose(a, r, **tol)
    # caches keep x's layout in the compiled layer (documented)
    assert nl.xn.shape == shape
    assert_allclose(nl.xn.transpose(0, 2, 3, 1).reshape(-1, c), rl.xn, **tol)
    assert_allclose(nl.forward(x, False), rl.forward(x, False), **tol)


def test_batchnorm_mixed_dtypes_follow_the_reference():
    g32, b32 = np.ones(3, np.float32), np.zeros(3, np.float32)
    x = np.random.randn(4, 3).astype(np.float32)
    for kw in [dict(running_mean=np.zeros(3)), dict()]:
        gamma = g32 if kw else np.ones(3)
        nl, rl = L.BatchNormalization(gamma, b32, **kw), RL.BatchNormalization(gamma, b32, **kw)
        out, rout = nl.forward(x), rl.forward(x)
        assert out.dtype == rout.dtype
        assert_array_equal(out, rout)
        d = np.random.randn(4, 3)  # float64 dout on float32 caches
        assert_array_equal(nl.backward(d), rl.backward(d))


def test_softmax_with_loss_layer(dtype):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((20, 7)).astype(dtype) * 3
    for t in [rng.integers(0, 7, 20).astype(np.uint8), np.eye(7)[rng.integers(0, 7, 20)],
              np.eye(7, dtype=dtype)[rng.integers(0, 7, 20)]]:
        nl, rl = L.SoftmaxWithLoss(), RL.SoftmaxWithLoss()
        loss, rloss = nl.forward(x, t), rl.forward(x, t)
        assert type(loss) is type(rloss)
        assert_allclose(loss, rloss, **CLOSE[dtype])
        assert_allclose(nl.y, rl.y, **CLOSE[dtype])
        dx, rdx = nl.backward(), rl.backward()
        assert dx.dtype == rdx.dtype
        assert_allclose(dx, rdx, **CLOSE[dtype])
        dx2 = nl.backward()  # a second backward recomputes: a new array, same values
        assert dx2 is not dx
        assert_allclose(dx2, rdx, **CLOSE[dtype])
    nl = L.SoftmaxWithLoss()
    nl.forward(x[0], 3)  # one sample
    assert nl.backward().shape == (7,)


def test_softmax_with_loss_errors_change_nothing():
    layer = L.SoftmaxWithLoss()
    x = np.random.randn(3, 4)
    layer.forward(x, np.array([0, 1, 2]))
    y, t, loss = layer.y, layer.t, layer.loss
    with pytest.raises(ValueError, match=r"labels in d must be in \[0, 4\)"):
        layer.forward(x, np.array([0, 1, 4], dtype=np.uint64))
    assert layer.y is y and layer.t is t and layer.loss == loss
    assert_allclose(layer.backward(), (y - np.eye(4)[[0, 1, 2]]) / 3, rtol=1e-12)


@pytest.mark.parametrize("cls", ["Relu", "Sigmoid", "Affine", "Dropout", "BatchNormalization",
                                 "SoftmaxWithLoss"])
def test_backward_before_forward(cls):
    make = {"Affine": lambda: L.Affine(np.ones((2, 2)), np.zeros(2)),
            "BatchNormalization": lambda: L.BatchNormalization(np.ones(2), np.zeros(2))}
    layer = make.get(cls, getattr(L, cls))()
    with pytest.raises(RuntimeError, match=rf"{cls}.backward called before"):
        layer.backward(np.ones((2, 2)))


def test_layer_shape_and_dtype_errors():
    relu = L.Relu()
    relu.forward(np.ones((2, 3)))
    mask = relu.mask
    with pytest.raises(ValueError, match=r"Relu.backward: dout must have shape \(2, 3\)"):
        relu.backward(np.ones((3, 2)))
    with pytest.raises(TypeError, match=r"Relu.forward: x must have dtype float32 or float64"):
        relu.forward(np.ones(3, dtype=complex))
    assert relu.mask is mask
    bn = L.BatchNormalization(np.ones(3), np.zeros(3))
    bn.forward(np.random.randn(4, 3))
    with pytest.raises(ValueError, match=r"BatchNormalization.backward: dout must have shape"):
        bn.backward(np.ones((4, 4)))
    with pytest.raises(TypeError, match=r"Dropout.forward: x must have dtype"):
        L.Dropout().forward(np.array(["a"]))


def test_reference_backend_keeps_the_classes_and_falls_back_per_op():
    code = ("import nnfast, nnfast.layers as L, nnfast.optimizer as O, nnfast.functions as F\n"
            "import nnfast.reference.layers as RL, nnfast.reference.optimizer as RO\n"
            "import nnfast.reference.functions as RF\n"
            "assert L.Affine is not RL.Affine and L.Affine.__module__ == 'nnfast.layers'\n"
            "assert O.Adam.__module__ == 'nnfast.optimizer' and F.softmax is RF.softmax\n"
            "k = nnfast.build_info()['kernels']\n"
            "assert k['kernel:relu_forward'] == k['kernel:optim_update'] == 'reference'\n"
            "import numpy as np; x = np.array([-1.0, -0.0, 0.0, 2.0, np.nan])\n"
            "a, b = L.Relu().forward(x), RL.Relu().forward(x)\n"
            "assert a.tobytes() == b.tobytes()\n"
            "p, q = {'a': np.ones(2)}, {'a': np.ones(2)}\n"
            "for _ in range(3):\n"
            "    O.Adam().update(p, {'a': np.array([0.5, -2.0])})\n"
            "    RO.Adam().update(q, {'a': np.array([0.5, -2.0])})\n"
            "assert p['a'].tobytes() == q['a'].tobytes()\n")
    env = dict(__import__("os").environ, NNFAST_BACKEND="reference")
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


# -- optimizers ------------------------------------------------------------------------

OPTIMIZERS = [("SGD", {}), ("Momentum", {}), ("Nesterov", {"momentum": 0.7}), ("AdaGrad", {}),
              ("RMSprop", {"decay_rate": 0.9}), ("Adam", {}), ("Adam", {"lr": 0.1, "beta1": 0.8})]


def simpleconvnet_params(dtype, seed):
    rng = np.random.default_rng(seed)
    shapes = {"W1": (30, 1, 5, 5), "b1": (30,), "W2": (4320, 100), "b2": (100,),
              "W3": (100, 10), "b3": (10,)}
    return {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name, kwargs", OPTIMIZERS)
def test_optimizers_bit_exact_over_steps(name, kwargs, dtype, threads):
    params = simpleconvnet_params(dtype, 0)  # W2 has 432k elements: the parallel path runs
    ref_params = {k: v.copy() for k, v in params.items()}
    arrays = dict(params)
    opt, ref = getattr(O, name)(**kwargs), getattr(RO, name)(**kwargs)
    with nnfast.num_threads(threads):
        for step in range(3):
            grads = simpleconvnet_params(dtype, 10 + step)
            grads0 = {k: v.copy() for k, v in grads.items()}
            opt.update(params, grads)
            ref.update(ref_params, grads)
            for k in grads:
                assert_array_equal(grads[k], grads0[k])
    for k in params:
        assert params[k] is arrays[k]
        assert_array_equal(params[k], ref_params[k], err_msg=k)  # float32 too
    for state in opt._state_names:
        for k in params:
            assert_array_equal(getattr(opt, state)[k], getattr(ref, state)[k])


@pytest.mark.parametrize("name, kwargs", OPTIMIZERS)
def test_optimizers_odd_layouts_and_mixed_dtypes(name, kwargs):
    rng = np.random.default_rng(11)
    base = rng.standard_normal((6, 5))
    cases = {
        "fortran_param": (np.asfortranarray(base), base),
        "sliced_param": (np.zeros((12, 5))[::2], base),
        "float32_param_float64_grad": (base.astype(np.float32), base),
        "readonly_grad": (base.copy(), np.require(base, requirements="C").copy()),
        "transposed_grad": (base.copy(), np.ascontiguousarray(base.T).T),
    }
    cases["readonly_grad"][1].flags.writeable = False
    for case, (p, g) in cases.items():
        p[...] = base if p.dtype == np.float64 else base.astype(p.dtype)
        rp = p.copy()
        opt, ref = getattr(O, name)(**kwargs), getattr(RO, name)(**kwargs)
        for _ in range(2):
            opt.update({"p": p}, {"p": g})
            ref.update({"p": rp}, {"p": g})
        assert p.dtype == rp.dtype
        assert_array_equal(p, rp, err_msg=case)


@pytest.mark.parametrize("name, kwargs", OPTIMIZERS)
def test_failed_update_changes_nothing(name, kwargs):
    params = {"a": np.random.randn(3), "b": np.random.randn(2, 2)}
    opt = getattr(O, name)(**kwargs)
    opt.update(params, {"a": np.ones(3), "b": np.ones((2, 2))})
    before = {k: v.copy() for k, v in params.items()}
    states = {s: {k: v.copy() for k, v in getattr(opt, s).items()} for s in opt._state_names}
    it = getattr(opt, "iter", None)
    for bad, exc in [({"a": np.ones(3), "b": np.ones(3)}, ValueError),
                     ({"a": np.ones(3), "b": np.ones((2, 2), dtype=complex)}, TypeError),
                     ({"a": np.ones(3)}, ValueError)]:
        with pytest.raises(exc, match=rf"{name}.update: grads"):
            opt.update(params, bad)
    for k in params:
        assert_array_equal(params[k], before[k])
        for s in opt._state_names:
            assert_array_equal(getattr(opt, s)[k], states[s][k])
    assert getattr(opt, "iter", None) == it
