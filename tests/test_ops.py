"""nnfast.ops: the same bits as the layer path, the layers' validation, out= buffers.

Every op is compared with the native layer (or optimizer) doing the same work, with
``np.array_equal`` on the bytes: ops and layers run the same kernels. Inputs must come
back unchanged; ``out=`` results must be the buffer passed in.
"""
import numpy as np
import pytest

from nnfast import layers as L
from nnfast import ops
from nnfast import optimizer as O
from nnfast.reference import layers as R

DTYPES = [np.float32, np.float64]


def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


def frozen(*arrays):
    """Copies to compare with afterwards (inputs must be unchanged)."""
    return [a.copy() for a in arrays]


def unchanged(before, arrays):
    for a, b in zip(before, arrays):
        same(a, b)


CONV_CASES = [  # (N, C, H, W), (FN, FH, FW), stride, pad
    ((1, 1, 28, 28), (30, 5, 5), 1, 0),   # SimpleConvNet's layer
    ((2, 16, 14, 14), (16, 3, 3), 1, 1),  # DeepConvNet-like (direct kernels when available)
    ((3, 3, 7, 9), (4, 3, 2), 2, 1),      # odd, asymmetric, strided
    ((2, 5, 6, 6), (3, 1, 1), 1, 0),      # 1x1
    ((1, 2, 5, 5), (2, 3, 3), 3, 0),      # stride > filter
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_matches_the_layer(case, dtype):
    (n, c, h, w), (fn, fh, fw), stride, pad = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    W = rng.standard_normal((fn, c, fh, fw)).astype(dtype)
    b = rng.standard_normal(fn).astype(dtype)
    keep = frozen(x, W, b)
    layer = L.Convolution(W, b, stride, pad)
    expect = layer.forward(x)
    out = ops.conv2d(x, W, b, stride, pad)
    same(out, expect)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx_l = layer.backward(dout)
    dx, dW, db = ops.conv2d_backward(dout, x, W, stride, pad)
    same(dx, dx_l)
    same(dW, layer.dW)
    same(db, layer.db)
    unchanged(keep + [dout], [x, W, b, dout.copy()])
    none, dW2, _ = ops.conv2d_backward(dout, x, W, stride, pad, need_dx=False)
    assert none is None
    same(dW2, layer.dW)
    buf = np.empty_like(out)
    assert ops.conv2d(x, W, b, stride, pad, out=buf) is buf
    same(buf, expect)


def test_conv2d_without_bias_and_non_contiguous_inputs():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 9, 9))[:, :, ::2, ::2]  # strided view
    W = rng.standard_normal((4, 3, 3, 3))
    expect = L.Convolution(W, np.zeros(4)).forward(np.ascontiguousarray(x))
    same(ops.conv2d(x, W), expect)
    np.testing.assert_allclose(ops.conv2d(x, W), R.Convolution(W, np.zeros(4)).forward(x),
                               rtol=1e-12, atol=1e-12)


def test_conv2d_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"conv2d: x must be 4-D \(N, C, H, W\), got shape "
                                         r"\(28, 28\)"):
        ops.conv2d(np.ones((28, 28)), np.ones((2, 1, 3, 3)))
    with pytest.raises(ValueError, match=r"conv2d: x has 1 channels .* w expects 3"):
        ops.conv2d(np.ones((1, 1, 5, 5)), np.ones((2, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"conv2d: filter window \(3, 3\) is larger"):
        ops.conv2d(np.ones((1, 3, 2, 5)), np.ones((2, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"conv2d: stride"):
        ops.conv2d(np.ones((1, 1, 5, 5)), np.ones((2, 1, 3, 3)), stride=0)
    with pytest.raises(ValueError, match=r"conv2d: b must have shape"):
        ops.conv2d(np.ones((1, 1, 5, 5)), np.ones((2, 1, 3, 3)), np.ones(3))
    with pytest.raises(TypeError, match=r"conv2d: x must have dtype float32 or float64"):
        ops.conv2d(np.ones((1, 1, 5, 5), np.complex128), np.ones((2, 1, 3, 3)))
    with pytest.raises(ValueError, match=r"conv2d_backward: dout must have shape "
                                         r"\(1, 2, 3, 3\)"):
        ops.conv2d_backward(np.ones((1, 2, 2, 2)), np.ones((1, 1, 5, 5)), np.ones((2, 1, 3, 3)))
    with pytest.raises(TypeError, match=r"conv2d: out must be a float64 array"):
        ops.conv2d(np.ones((1, 1, 5, 5)), np.ones((2, 1, 3, 3)),
                   out=np.empty((1, 2, 3, 3), np.float32))


POOL_CASES = [((2, 3, 6, 6), 2, 2, 2, 0), ((1, 2, 7, 5), 3, 2, 1, 1), ((3, 1, 5, 5), 3, 3, 2, 1)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOL_CASES)
def test_pooling_matches_the_layers(case, dtype):
    shape, ph, pw, stride, pad = case
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype(dtype)
    x.reshape(-1)[::3] = 0.5  # ties
    keep = frozen(x)
    mp = L.Pooling(ph, pw, stride, pad)
    expect = mp.forward(x)
    out, argmax = ops.max_pool2d(x, ph, pw, stride, pad)
    same(out, expect)
    assert argmax.dtype == np.int32 and argmax.shape == out.shape
    same(argmax.transpose(0, 2, 3, 1).reshape(-1).astype(np.intp), mp.arg_max)
    dout = rng.standard_normal(out.shape).astype(dtype)
    same(ops.max_pool2d_backward(dout, argmax, x.shape, ph, pw, stride, pad), mp.backward(dout))
    ap = L.AvgPooling(ph, pw, stride, pad)
    same(ops.avg_pool2d(x, ph, pw, stride, pad), ap.forward(x))
    same(ops.avg_pool2d_backward(dout, x.shape, ph, pw, stride, pad), ap.backward(dout))
    unchanged(keep, [x])
    buf = np.empty_like(out)
    assert ops.max_pool2d(x, ph, pw, stride, pad, out=buf)[0] is buf
    assert ops.avg_pool2d(x, ph, pw, stride, pad, out=buf) is buf


def test_pooling_errors():
    with pytest.raises(ValueError, match=r"max_pool2d: pad must be at most half"):
        ops.max_pool2d(np.ones((1, 1, 4, 4)), 2, 2, 2, 2)
    with pytest.raises(ValueError, match=r"max_pool2d: x must be 4-D"):
        ops.max_pool2d(np.ones((4, 4)), 2)
    with pytest.raises(ValueError, match=r"max_pool2d_backward: argmax offsets must be in"):
        ops.max_pool2d_backward(np.ones((1, 1, 2, 2)), np.full((1, 1, 2, 2), 4), (1, 1, 4, 4), 2)
    with pytest.raises(ValueError, match=r"avg_pool2d_backward: dout must have shape"):
        ops.avg_pool2d_backward(np.ones((1, 1, 3, 2)), (1, 1, 4, 4), 2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 7), (5, 3, 2, 2)])
def test_affine_matches_the_layer(shape, dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(dtype)
    d = int(np.prod(shape[1:]))
    W = rng.standard_normal((d, 6)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    layer = L.Affine(W, b)
    expect = layer.forward(x).copy()
    same(ops.affine(x, W, b), expect)
    dout = rng.standard_normal(expect.shape).astype(dtype)
    dx_l = layer.backward(dout)
    dx, dW, db = ops.affine_backward(dout, x, W)
    same(dx, dx_l)
    same(dW, layer.dW)
    same(db, layer.db)
    with pytest.raises(ValueError, match=r"affine: x has 3 features per sample"):
        ops.affine(np.ones((2, 3)), W)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_and_cross_entropy_match_the_layer(dtype):
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((5, 7)) * 4).astype(dtype)
    from nnfast import functions
    same(ops.softmax(x), functions.softmax(x))
    same(ops.softmax(x[0]), functions.softmax(x[0]))
    labels = np.array([0, 6, 3, 3, 1])
    for t in (labels, labels.astype(np.int32), np.eye(7, dtype=dtype)[labels],
              np.eye(7, dtype=np.int64)[labels]):
        layer = L.SoftmaxWithLoss()
        loss_l = layer.forward(x, t)
        dx_l = layer.backward()
        loss, dx = ops.softmax_cross_entropy(x, t)
        same(loss, loss_l)
        same(dx, dx_l)
    layer = L.SoftmaxWithLoss()
    loss_l = layer.forward(x[1], np.array([6]))
    loss, dx = ops.softmax_cross_entropy(x[1], np.array([6]))
    same(loss, loss_l)
    same(dx, layer.backward())
    buf = np.empty_like(x)
    assert ops.softmax_cross_entropy(x, labels, out=buf)[1] is buf
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: labels in t must be in "
                                         r"\[0, 7\), got 7"):
        ops.softmax_cross_entropy(x, np.array([0, 7, 1, 1, 1]))
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: labels in t must be in "
                                         r"\[0, 7\), got -1"):
        ops.softmax_cross_entropy(x, np.array([0, -1, 1, 1, 1]))
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: t must have shape \(5,\)"):
        ops.softmax_cross_entropy(x, np.array([0, 1]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode, shape", [("feature", (4, 6)), ("feature", (3, 2, 3, 3)),
                                         ("spatial", (3, 2, 3, 3)), ("feature", (1, 5))])
def test_batch_norm_matches_the_layer(mode, shape, dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape).astype(dtype)
    c = shape[1] if mode == "spatial" else int(np.prod(shape[1:]))
    gamma = rng.standard_normal(c).astype(dtype)
    beta = rng.standard_normal(c).astype(dtype)
    layer = L.BatchNormalization(gamma, beta, mode=mode)
    keep = frozen(x, gamma, beta)
    out_l = layer.forward(x, train_flg=True).copy()
    res = ops.batch_norm(x, gamma, beta, training=True, mode=mode)
    same(res.out, out_l)
    same(res.running_mean, layer.running_mean)
    same(res.running_var, layer.running_var)
    dout = rng.standard_normal(shape).astype(dtype)
    dx_l = layer.backward(dout).copy()
    dx, dgamma, dbeta = ops.batch_norm_backward(dout, res.cache, gamma)
    same(dx, dx_l)
    same(dgamma, layer.dgamma)
    same(dbeta, layer.dbeta)
    ev = ops.batch_norm(x, gamma, beta, res.running_mean, res.running_var, training=False,
                        mode=mode)
    same(ev.out, layer.forward(x, train_flg=False))
    assert ev.cache is None
    unchanged(keep, [x, gamma, beta])


def test_batch_norm_errors():
    with pytest.raises(ValueError, match=r"batch_norm: gamma must have shape \(6,\)"):
        ops.batch_norm(np.ones((2, 6)), np.ones(5), np.ones(6))
    with pytest.raises(ValueError, match=r"batch_norm: x must be 4-D"):
        ops.batch_norm(np.ones((2, 6)), np.ones(6), np.ones(6), mode="spatial")
    with pytest.raises(ValueError, match=r"batch_norm: mode must be"):
        ops.batch_norm(np.ones((2, 6)), np.ones(6), np.ones(6), mode="channel")
    with pytest.raises(TypeError, match=r"batch_norm_backward: cache must be"):
        ops.batch_norm_backward(np.ones((2, 6)), None, np.ones(6))


@pytest.mark.parametrize("dtype", DTYPES)
def test_activations_and_dropout_match_the_layers(dtype):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 5, 7)).astype(dtype)
    x.reshape(-1)[:4] = [0.0, -0.0, np.nan, -np.inf]
    keep = frozen(x)
    relu = L.Relu()
    same(ops.relu(x), relu.forward(x))
    dout = rng.standard_normal(x.shape).astype(dtype)
    same(ops.relu_backward(dout, x), relu.backward(dout))
    sig = L.Sigmoid()
    y = ops.sigmoid(x)
    same(y, sig.forward(x))
    same(ops.sigmoid_backward(dout, y), sig.backward(dout))
    drop = L.Dropout(0.3)
    np.random.seed(7)
    out_l = drop.forward(x, train_flg=True)
    np.random.seed(7)
    out, mask = ops.dropout(x, 0.3)
    same(out, out_l)
    same(mask, drop.mask)
    same(ops.dropout_backward(dout, mask), drop.backward(dout))
    out2, mask2 = ops.dropout(x, 0.3, rng=np.random.default_rng(8))
    same(mask2, np.random.default_rng(8).random(x.shape) > 0.3)
    same(ops.dropout(x, 0.3, mask=mask2)[0], out2)
    ev, none = ops.dropout(x, 0.3, training=False)
    same(ev, drop.forward(x, train_flg=False))
    assert none is None
    unchanged(keep, [x])
    buf = np.empty_like(x)
    assert ops.relu(x, out=buf) is buf and ops.sigmoid(x, out=buf) is buf
    with pytest.raises(ValueError, match=r"relu_backward: dout must have shape"):
        ops.relu_backward(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match=r"dropout: dropout_ratio must be in \[0, 1\]"):
        ops.dropout(x, 1.5)
    with pytest.raises(ValueError, match=r"dropout: mask must be a bool array"):
        ops.dropout(x, 0.5, mask=np.ones(x.shape))


def test_relu_on_a_scalar_list_and_ints():
    same(ops.relu([-1, 2]), np.array([0.0, 2.0]))


OPTIMIZERS = [
    ("SGD", {"lr": 0.1}, lambda p, g, s: ops.sgd_(p, g, lr=0.1), 0),
    ("Momentum", {"lr": 0.1, "momentum": 0.8},
     lambda p, g, s: ops.momentum_(p, g, s[0], lr=0.1, momentum=0.8), 1),
    ("Nesterov", {"lr": 0.1, "momentum": 0.7},
     lambda p, g, s: ops.nesterov_(p, g, s[0], lr=0.1, momentum=0.7), 1),
    ("AdaGrad", {"lr": 0.1}, lambda p, g, s: ops.adagrad_(p, g, s[0], lr=0.1), 1),
    ("RMSprop", {"lr": 0.1, "decay_rate": 0.9},
     lambda p, g, s: ops.rmsprop_(p, g, s[0], lr=0.1, decay_rate=0.9), 1),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, kw, step, n_state", OPTIMIZERS)
def test_optimizer_steps_match_the_optimizers(name, kw, step, n_state, dtype):
    rng = np.random.default_rng(9)
    p0 = rng.standard_normal((4, 3)).astype(dtype)
    grads = [rng.standard_normal((4, 3)).astype(dtype) for _ in range(3)]
    opt = getattr(O, name)(**kw)
    params = {"W": p0.copy()}
    p = p0.copy()
    state = [np.zeros_like(p) for _ in range(n_state)]
    for g in grads:
        opt.update(params, {"W": g})
        assert step(p, g, state) is p
    same(p, params["W"])


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_matches_the_optimizer_also_on_strided_arrays(dtype):
    rng = np.random.default_rng(10)
    p0 = rng.standard_normal((4, 6)).astype(dtype)
    grads = [rng.standard_normal((4, 6)).astype(dtype) for _ in range(3)]
    opt = O.Adam(lr=0.01)
    params = {"W": p0.copy()}
    p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    big = np.zeros((3, 4, 12), dtype=dtype)
    ps, ms, vs = big[0, :, ::2], big[1, :, ::2], big[2, :, ::2]  # strided views
    ps[...] = p0
    for i, g in enumerate(grads, start=1):
        opt.update(params, {"W": g})
        ops.adam_(p, g, m, v, i, lr=0.01)
        ops.adam_(ps, g, ms, vs, i, lr=0.01)
    same(p, params["W"])
    same(np.ascontiguousarray(ps), params["W"])


def test_optimizer_step_errors_change_nothing():
    p, g, v = np.ones(3), np.ones(3), np.zeros(3)
    before = frozen(p, v)
    with pytest.raises(ValueError, match=r"momentum_: velocity must have param's shape"):
        ops.momentum_(p, g, np.zeros(4))
    with pytest.raises(ValueError, match=r"adam_: param and m must not share memory"):
        ops.adam_(p, g, p, v, 1)
    with pytest.raises(TypeError, match=r"sgd_: param must be a NumPy array"):
        ops.sgd_([1.0, 2.0], g)
    with pytest.raises(ValueError, match=r"sgd_: grad must have the shape of param"):
        ops.sgd_(p, np.ones(4))
    with pytest.raises(ValueError, match=r"adam_: step must be"):
        ops.adam_(p, g, np.zeros(3), v, 0)
    unchanged(before, [p, v])


@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_and_read_only_inputs_give_the_contiguous_results(dtype):
    rng = np.random.default_rng(11)
    big = rng.standard_normal((2, 3, 10, 12)).astype(dtype)
    x = big[:, :, ::2, ::2]  # strided
    xc = np.ascontiguousarray(x)
    ro = xc.copy()
    ro.setflags(write=False)
    for a in (x, ro):
        same(ops.relu(a), ops.relu(xc))
        same(ops.sigmoid(a), ops.sigmoid(xc))
        same(ops.softmax(a), ops.softmax(xc))
        same(ops.max_pool2d(a, 2)[0], ops.max_pool2d(xc, 2)[0])
        same(ops.avg_pool2d(a, 2)[0], ops.avg_pool2d(xc, 2)[0])
        same(ops.batch_norm(a, np.ones(3 * 5 * 6, dtype), np.zeros(3 * 5 * 6, dtype)).out,
             ops.batch_norm(xc, np.ones(3 * 5 * 6, dtype), np.zeros(3 * 5 * 6, dtype)).out)
        s = a.reshape(2, -1)[:, :7] if a.flags.c_contiguous else a[:, 0, 0, :]
        sc = np.ascontiguousarray(s)
        for u, v in zip(ops.softmax_cross_entropy(s, np.array([1, 2])),
                        ops.softmax_cross_entropy(sc, np.array([1, 2]))):
            same(u, v)
    w = rng.standard_normal((4, 3, 3, 3)).astype(dtype)[:, :, ::-1, :]  # negative strides
    same(ops.conv2d(x, w), ops.conv2d(xc, np.ascontiguousarray(w)))


def test_mixed_dtypes_promote_and_ints_become_float64():
    x32 = np.ones((1, 1, 4, 4), np.float32)
    assert ops.conv2d(x32, np.ones((1, 1, 2, 2))).dtype == np.float64
    assert ops.conv2d(x32, np.ones((1, 1, 2, 2), np.float32)).dtype == np.float32
    assert ops.relu(np.arange(4)).dtype == np.float64
    assert ops.affine(np.ones((2, 3), np.float32), np.ones((3, 2), np.float32),
                      np.zeros(2)).dtype == np.float64
