"""Layers: values against naive loops, numerical gradients, dtypes, state and errors."""
import re

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from conftest import ATOL, RTOL

# every build of the element-wise families (csrc/isa.h) this CPU has
pytestmark = pytest.mark.usefixtures("eltwise_isa")


def _tol(dtype, factor=1):
    return dict(rtol=RTOL[dtype] * factor, atol=ATOL[dtype] * factor)


def check_gradient(backend, loss, x, analytic, rtol=1e-6, atol=1e-8):
    """Compare an analytic gradient with the numerical one of ``loss`` at ``x`` (float64)."""
    numeric = backend.gradient.numerical_gradient(lambda _: loss(), x)
    assert_allclose(analytic, numeric, rtol=rtol, atol=atol)


# -- naive oracles (explicit loops, nothing shared with the implementation) ----

def out_size(size, f, stride, pad):
    return (size + 2 * pad - f) // stride + 1


def naive_conv(x, W, b, stride, pad):
    n_, c_, h_, w_ = x.shape
    fn_, _, fh, fw = W.shape
    oh_, ow_ = out_size(h_, fh, stride, pad), out_size(w_, fw, stride, pad)
    out = np.zeros((n_, fn_, oh_, ow_))
    for n in range(n_):
        for f in range(fn_):
            for oh in range(oh_):
                for ow in range(ow_):
                    acc = float(b[f])
                    for c in range(c_):
                        for i in range(fh):
                            for j in range(fw):
                                r, q = oh * stride + i - pad, ow * stride + j - pad
                                if 0 <= r < h_ and 0 <= q < w_:
                                    acc += float(W[f, c, i, j]) * float(x[n, c, r, q])
                    out[n, f, oh, ow] = acc
    return out


def naive_max_pool(x, ph, pw, stride, pad):
    """Returns (out, winners) where winners[n, c, oh, ow] = (r, q) of the first max, or None."""
    n_, c_, h_, w_ = x.shape
    oh_, ow_ = out_size(h_, ph, stride, pad), out_size(w_, pw, stride, pad)
    out = np.zeros((n_, c_, oh_, ow_))
    winners = {}
    for n in range(n_):
        for c in range(c_):
            for oh in range(oh_):
                for ow in range(ow_):
                    best, where = None, None
                    for i in range(ph):
                        for j in range(pw):
                            r, q = oh * stride + i - pad, ow * stride + j - pad
                            v = float(x[n, c, r, q]) if (0 <= r < h_ and 0 <= q < w_) else -np.inf
                            if best is None or (not np.isnan(best) and (np.isnan(v) or v > best)):
                                best, where = v, (r, q)
                    out[n, c, oh, ow] = best
                    winners[n, c, oh, ow] = where
    return out, winners


def naive_max_pool_backward(x_shape, winners, dout):
    dx = np.zeros(x_shape)
    for (n, c, oh, ow), (r, q) in winners.items():
        if 0 <= r < x_shape[2] and 0 <= q < x_shape[3]:
            dx[n, c, r, q] += dout[n, c, oh, ow]
    return dx


def naive_avg_pool(x, ph, pw, stride, pad):
    n_, c_, h_, w_ = x.shape
    oh_, ow_ = out_size(h_, ph, stride, pad), out_size(w_, pw, stride, pad)
    out = np.zeros((n_, c_, oh_, ow_))
    for n in range(n_):
        for c in range(c_):
            for oh in range(oh_):
                for ow in range(ow_):
                    acc = 0.0
                    for i in range(ph):
                        for j in range(pw):
                            r, q = oh * stride + i - pad, ow * stride + j - pad
                            if 0 <= r < h_ and 0 <= q < w_:
                                acc += float(x[n, c, r, q])
                    out[n, c, oh, ow] = acc / (ph * pw)  # padding counts in the divisor
    return out


def naive_avg_pool_backward(x_shape, dout, ph, pw, stride, pad):
    n_, c_, h_, w_ = x_shape
    dx = np.zeros(x_shape)
    for n, c, oh, ow in np.ndindex(*dout.shape):
        for i in range(ph):
            for j in range(pw):
                r, q = oh * stride + i - pad, ow * stride + j - pad
                if 0 <= r < h_ and 0 <= q < w_:
                    dx[n, c, r, q] += dout[n, c, oh, ow] / (ph * pw)
    return dx


def distinct(shape, dtype=np.float64):
    """Values spaced 0.25 apart in random order: no ties, exact in float32."""
    size = int(np.prod(shape))
    return (np.random.permutation(size) * 0.25 - size * 0.125).reshape(shape).astype(dtype)


# -- Relu / Sigmoid --------------------------------------------------------------

def test_relu(backend, dtype):
    layer = backend.layers.Relu()
    x = np.array([[-1.0, 0.0, 2.0], [3.0, -0.5, np.nan]], dtype=dtype)
    out = layer.forward(x)
    assert out.dtype == dtype
    assert_array_equal(out, [[0, 0, 2], [3, 0, np.nan]])
    assert_array_equal(layer.mask, [[True, True, False], [False, True, False]])
    dout = np.arange(1.0, 7.0, dtype=dtype).reshape(2, 3)
    dout0 = dout.copy()
    dx = layer.backward(dout)
    assert dx.dtype == dtype
    assert_array_equal(dx, [[0, 0, 3], [4, 0, 6]])  # 0 at x == 0
    assert_array_equal(dout, dout0)  # the original zeroed dout in place; nnfast does not


def test_relu_gradient(backend):
    layer = backend.layers.Relu()
    x = np.random.randn(3, 4)
    x[np.abs(x) < 0.05] = 0.5  # stay away from the kink
    dout = np.random.randn(3, 4)
    layer.forward(x)
    check_gradient(backend, lambda: np.sum(layer.forward(x) * dout), x, layer.backward(dout))


def test_sigmoid_layer(backend, dtype):
    layer = backend.layers.Sigmoid()
    x = np.random.randn(2, 5).astype(dtype)
    out = layer.forward(x)
    assert out.dtype == dtype
    assert_allclose(out, 1 / (1 + np.exp(-x.astype(np.float64))), **_tol(dtype))
    assert layer.out is not None
    dout = np.random.randn(2, 5).astype(dtype)
    dx = layer.backward(dout)
    assert dx.dtype == dtype
    assert_allclose(dx, dout * (1 - out) * out, **_tol(dtype))


def test_sigmoid_gradient(backend):
    layer = backend.layers.Sigmoid()
    x = np.random.randn(3, 4)
    dout = np.random.randn(3, 4)
    layer.forward(x)
    check_gradient(backend, lambda: np.sum(layer.forward(x) * dout), x, layer.backward(dout))


# -- Affine ----------------------------------------------------------------------

@pytest.mark.parametrize("x_shape", [(4, 6), (2, 2, 3, 1), (1, 6)])
def test_affine_forward_backward(backend, dtype, x_shape):
    W = np.random.randn(6, 3).astype(dtype)
    b = np.random.randn(3).astype(dtype)
    layer = backend.layers.Affine(W, b)
    x = np.random.randn(*x_shape).astype(dtype)
    out = layer.forward(x)
    n = x_shape[0]
    assert out.dtype == dtype and out.shape == (n, 3)
    assert_allclose(out, x.reshape(n, 6) @ W + b, **_tol(dtype))
    assert layer.x.shape == (n, 6) and layer.original_x_shape == x_shape
    dout = np.random.randn(n, 3).astype(dtype)
    dx = layer.backward(dout)
    assert dx.shape == x_shape and dx.dtype == dtype
    assert layer.dW.dtype == dtype and layer.db.dtype == dtype
    assert_allclose(dx, (dout @ W.T).reshape(x_shape), **_tol(dtype))
    assert_allclose(layer.dW, x.reshape(n, 6).T @ dout, **_tol(dtype, 10))
    assert_allclose(layer.db, dout.sum(axis=0), **_tol(dtype))


@pytest.mark.parametrize("x_shape", [(3, 4), (2, 2, 1, 2)])
def test_affine_gradient(backend, x_shape):
    W = np.random.randn(4, 3)
    b = np.random.randn(3)
    layer = backend.layers.Affine(W, b)
    x = np.random.randn(*x_shape)
    dout = np.random.randn(x_shape[0], 3)

    def loss():
        return np.sum(layer.forward(x) * dout)

    loss()
    dx = layer.backward(dout)
    dW, db = layer.dW.copy(), layer.db.copy()
    check_gradient(backend, loss, x, dx)
    check_gradient(backend, loss, W, dW)  # the layer re-reads W, perturbed in place
    check_gradient(backend, loss, b, db)


def test_affine_mixed_dtypes_follow_numpy_promotion(backend):
    layer = backend.layers.Affine(np.ones((2, 2)), np.zeros(2))
    assert layer.forward(np.ones((1, 2), dtype=np.float32)).dtype == np.float64
    layer = backend.layers.Affine(np.ones((2, 2), dtype=np.float32), np.zeros(2, dtype=np.float32))
    assert layer.forward(np.ones((1, 2), dtype=np.int64)).dtype == np.float64


def test_affine_rereads_parameters(backend):
    W, b = np.ones((2, 2)), np.zeros(2)
    layer = backend.layers.Affine(W, b)
    x = np.array([[1.0, 2.0]])
    assert_array_equal(layer.forward(x), [[3, 3]])
    W *= 2  # an optimizer updates in place
    assert_array_equal(layer.forward(x), [[6, 6]])
    layer.W = np.eye(2)  # a user rebinds
    layer.b = np.array([1.0, -1.0])
    assert_array_equal(layer.forward(x), [[2, 1]])
    layer.backward(np.ones((1, 2)))
    assert_array_equal(layer.dW, [[1, 1], [2, 2]])


def test_affine_errors(backend):
    layer = backend.layers.Affine(np.ones((4, 3)), np.zeros(3))
    with pytest.raises(ValueError, match=r"Affine.forward: x has 5 features per sample .* W expects 4"):
        layer.forward(np.ones((2, 5)))
    with pytest.raises(ValueError, match=r"Affine.forward: x must be at least 2-D"):
        layer.forward(np.ones(4))
    layer.forward(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"Affine.backward: dout must have shape \(2, 3\)"):
        layer.backward(np.ones((3, 3)))
    bad_b = backend.layers.Affine(np.ones((4, 3)), np.zeros(2))
    with pytest.raises(ValueError, match=r"Affine.forward: b must have shape \(3,\)"):
        bad_b.forward(np.ones((2, 4)))
    bad_W = backend.layers.Affine(np.ones((4, 3), dtype=complex), np.zeros(3))
    with pytest.raises(TypeError, match=r"Affine.forward: W must have dtype float32 or float64"):
        bad_W.forward(np.ones((2, 4)))


# -- SoftmaxWithLoss -------------------------------------------------------------

def test_softmax_with_loss_values(backend, dtype):
    layer = backend.layers.SoftmaxWithLoss()
    x = np.log(np.array([[1.0, 7.0, 2.0], [3.0, 3.0, 4.0]], dtype=dtype))  # softmax = rows / 10
    t = np.array([1, 2])
    loss = layer.forward(x, t)
    assert np.asarray(loss).dtype == dtype and layer.loss == loss
    assert_allclose(loss, -(np.log(0.7 + 1e-7) + np.log(0.4 + 1e-7)) / 2, **_tol(dtype))
    assert_allclose(layer.y, [[0.1, 0.7, 0.2], [0.3, 0.3, 0.4]], **_tol(dtype))
    assert_array_equal(layer.t, t)
    expected = np.array([[0.1, -0.3, 0.2], [0.3, 0.3, -0.6]]) / 2
    dx = layer.backward(123.0)  # dout is ignored, as in the original
    assert dx.dtype == dtype
    assert_allclose(dx, expected, **_tol(dtype))
    one_hot = np.array([[0, 1, 0], [0, 0, 1]])
    assert_allclose(layer.forward(x, one_hot), loss, **_tol(dtype))
    dx = layer.backward()
    assert dx.dtype == dtype
    assert_allclose(dx, expected, **_tol(dtype))


@pytest.mark.parametrize("one_hot", [False, True])
def test_softmax_with_loss_gradient(backend, one_hot):
    layer = backend.layers.SoftmaxWithLoss()
    x = np.random.randn(4, 5)
    t = np.array([0, 4, 2, 2])
    if one_hot:
        t = np.eye(5)[t]
    layer.forward(x, t)
    check_gradient(backend, lambda: layer.forward(x, t), x, layer.backward(), rtol=1e-5, atol=1e-8)


def test_softmax_with_loss_single_sample(backend):
    layer = backend.layers.SoftmaxWithLoss()
    x = np.array([0.5, -1.0, 2.0])
    layer.forward(x, 2)
    dx = layer.backward()
    y = np.exp(x) / np.exp(x).sum()
    assert dx.shape == (3,)
    assert_allclose(dx, y - [0, 0, 1], rtol=1e-12)


def test_softmax_with_loss_errors_leave_state(backend):
    layer = backend.layers.SoftmaxWithLoss()
    x = np.random.randn(2, 3)
    layer.forward(x, np.array([0, 1]))
    y, t, loss = layer.y, layer.t, layer.loss
    for bad, exc, match in [(np.array([0, 3]), ValueError, r"labels in d must be in \[0, 3\)"),
                            (np.array([-1, 0]), ValueError, r"got -1"),
                            (np.array([0, 1, 2]), ValueError, r"must have shape \(2,\)"),
                            (np.array([0.0, 1.0]), TypeError, r"integer class labels")]:
        with pytest.raises(exc, match=match):
            layer.forward(x, bad)
    with pytest.raises(ValueError, match=r"SoftmaxWithLoss.forward: x must be 1-D or 2-D"):
        layer.forward(np.ones((2, 3, 4)), np.array([0, 1]))
    assert layer.y is y and layer.t is t and layer.loss == loss


# -- Dropout ----------------------------------------------------------------------

def test_dropout_draws_like_the_original(backend, dtype):
    layer = backend.layers.Dropout(0.3)
    x = np.random.randn(4, 5).astype(dtype)
    np.random.seed(7)
    expected_mask = np.random.rand(4, 5) > 0.3
    np.random.seed(7)
    out = layer.forward(x)  # train_flg defaults to True
    assert out.dtype == dtype
    assert_array_equal(layer.mask, expected_mask)
    assert_array_equal(out, x * expected_mask)
    dout = np.random.randn(4, 5).astype(dtype)
    dx = layer.backward(dout)
    assert dx.dtype == dtype
    assert_array_equal(dx, dout * expected_mask)
    state = np.random.get_state()[1].copy()
    test_out = layer.forward(x, train_flg=False)
    assert_array_equal(np.random.get_state()[1], state)  # test mode draws nothing
    assert test_out.dtype == dtype
    assert_allclose(test_out, x * (1 - 0.3), **_tol(dtype))
    assert_array_equal(layer.mask, expected_mask)


def test_dropout_gradient_with_fixed_mask(backend):
    layer = backend.layers.Dropout(0.5)
    x = np.random.randn(3, 4)
    dout = np.random.randn(3, 4)

    def loss():
        np.random.seed(11)  # the same mask at every evaluation
        return np.sum(layer.forward(x) * dout)

    loss()
    check_gradient(backend, loss, x, layer.backward(dout))


def test_dropout_errors(backend):
    with pytest.raises(RuntimeError, match=r"Dropout.backward called before a forward with train_flg=True"):
        backend.layers.Dropout().backward(np.ones(3))
    with pytest.raises(ValueError, match=r"Dropout.forward: dropout_ratio must be in \[0, 1\], got 1.5"):
        backend.layers.Dropout(1.5).forward(np.ones(3))


# -- BatchNormalization -------------------------------------------------------------

def test_batchnorm_known_values(backend, dtype):
    layer = backend.layers.BatchNormalization(np.ones(2, dtype=dtype), np.zeros(2, dtype=dtype))
    x = np.array([[1.0, 10.0], [3.0, 10.0]], dtype=dtype)
    out = layer.forward(x)
    assert out.dtype == dtype
    # column 0: mean 2, biased var 1; column 1: constant -> 0
    assert_allclose(out, [[-1 / np.sqrt(1 + 1e-6), 0], [1 / np.sqrt(1 + 1e-6), 0]], **_tol(dtype))
    assert layer.running_mean.dtype == dtype and layer.running_var.dtype == dtype
    assert_allclose(layer.running_mean, [0.2, 1.0], **_tol(dtype))  # 0.9*0 + 0.1*mu
    assert_allclose(layer.running_var, [0.1, 0.0], **_tol(dtype))
    assert layer.batch_size == 2
    for name in ("xc", "xn", "std"):
        assert getattr(layer, name).dtype == dtype
    test_out = layer.forward(x, train_flg=False)
    assert test_out.dtype == dtype
    assert_allclose(test_out, (x - [0.2, 1.0]) / np.sqrt(np.array([0.1, 0.0]) + 1e-6),
                    **_tol(dtype, 10))


def test_batchnorm_given_running_stats_and_momentum(backend):
    rm, rv = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    layer = backend.layers.BatchNormalization(np.ones(2), np.zeros(2), momentum=0.5,
                                              running_mean=rm, running_var=rv)
    x = np.array([[0.0, 0.0], [2.0, 4.0]])
    layer.forward(x)
    assert_allclose(layer.running_mean, [0.5 * 1 + 0.5 * 1, 0.5 * 2 + 0.5 * 2])
    assert_allclose(layer.running_var, [0.5 * 3 + 0.5 * 1, 0.5 * 4 + 0.5 * 4])
    assert_array_equal(rm, [1.0, 2.0])  # the arrays passed in are not written to


def test_batchnorm_4d_is_per_feature(backend, dtype):
    x = np.random.randn(5, 2, 3, 2).astype(dtype)
    gamma = np.random.rand(12).astype(dtype) + 0.5
    beta = np.random.randn(12).astype(dtype)
    layer4 = backend.layers.BatchNormalization(gamma, beta)
    layer2 = backend.layers.BatchNormalization(gamma, beta)
    out4 = layer4.forward(x)
    out2 = layer2.forward(x.reshape(5, 12))
    assert out4.shape == x.shape and out4.dtype == dtype
    assert_allclose(out4.reshape(5, 12), out2, **_tol(dtype))
    x2 = x.reshape(5, 12).astype(np.float64)
    expected = (x2 - x2.mean(0)) / np.sqrt(x2.var(0) + 1e-6) * gamma + beta
    assert_allclose(out2, expected, **_tol(dtype, 10))
    dout = np.random.randn(*x.shape).astype(dtype)
    dx4 = layer4.backward(dout)
    dx2 = layer2.backward(dout.reshape(5, 12))
    assert dx4.shape == x.shape and dx4.dtype == dtype
    assert_allclose(dx4.reshape(5, 12), dx2, **_tol(dtype))


@pytest.mark.parametrize("shape", [(6,), (2, 3, 4), (2, 1, 2, 2, 3)])
def test_batchnorm_refuses_ranks_other_than_2_and_4(backend, shape):
    # The original reshapes a non-2-D x with ``N, C, H, W = x.shape``: 2-D and 4-D only.
    features = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
    gamma, beta = np.ones(features), np.zeros(features)
    layer = backend.layers.BatchNormalization(gamma, beta)
    with pytest.raises(ValueError, match=r"BatchNormalization.forward: x must be 2-D or 4-D "
                                         r"\(N, D\) or \(N, C, H, W\), got shape "
                                         + re.escape(str(shape))):
        layer.forward(np.ones(shape))
    # nothing changed: no running statistics, no caches
    assert layer.running_mean is None and layer.running_var is None and layer.xn is None


def test_batchnorm_spatial_mode(backend, dtype):
    x = np.random.randn(3, 2, 2, 3).astype(dtype)
    gamma = np.array([1.5, 0.5], dtype=dtype)
    beta = np.array([0.1, -0.2], dtype=dtype)
    layer = backend.layers.BatchNormalization(gamma, beta, mode="spatial")
    out = layer.forward(x)
    assert out.shape == x.shape and out.dtype == dtype and out.flags.c_contiguous
    xd = x.astype(np.float64)
    for c in range(2):
        ch = xd[:, c]
        expected = (ch - ch.mean()) / np.sqrt(ch.var() + 1e-6) * gamma[c] + beta[c]
        assert_allclose(out[:, c], expected, **_tol(dtype, 10))
    assert layer.running_mean.shape == (2,) and layer.batch_size == 3 * 2 * 3
    assert_allclose(layer.running_mean, 0.1 * xd.mean(axis=(0, 2, 3)), **_tol(dtype, 10))
    test_out = layer.forward(x, train_flg=False)
    rm = layer.running_mean.reshape(1, 2, 1, 1)
    rv = layer.running_var.reshape(1, 2, 1, 1)
    assert_allclose(test_out, (xd - rm) / np.sqrt(rv + 1e-6) * gamma.reshape(1, 2, 1, 1)
                    + beta.reshape(1, 2, 1, 1), **_tol(dtype, 100))
    with pytest.raises(ValueError, match=r"BatchNormalization.forward: x must be 4-D"):
        layer.forward(np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"mode must be 'feature' or 'spatial'"):
        backend.layers.BatchNormalization(gamma, beta, mode="channel")


@pytest.mark.parametrize("mode, shape, n_params", [("feature", (4, 3), 3),
                                                   ("feature", (3, 2, 2, 2), 8),
                                                   ("spatial", (2, 3, 2, 2), 3)])
def test_batchnorm_gradient(backend, mode, shape, n_params):
    gamma = np.random.rand(n_params) + 0.5
    beta = np.random.randn(n_params)
    layer = backend.layers.BatchNormalization(gamma, beta, mode=mode)
    x = np.random.randn(*shape)
    dout = np.random.randn(*shape)

    def loss():
        return np.sum(layer.forward(x, train_flg=True) * dout)

    loss()
    dx = layer.backward(dout)
    dgamma, dbeta = layer.dgamma.copy(), layer.dbeta.copy()
    check_gradient(backend, loss, x, dx, rtol=1e-5, atol=1e-7)
    check_gradient(backend, loss, gamma, dgamma, rtol=1e-5, atol=1e-7)
    check_gradient(backend, loss, beta, dbeta, rtol=1e-5, atol=1e-7)


def test_batchnorm_state_rules(backend):
    layer = backend.layers.BatchNormalization(np.ones(3), np.zeros(3))
    with pytest.raises(RuntimeError, match=r"BatchNormalization.backward called before a forward "
                                           r"with train_flg=True"):
        layer.backward(np.ones((2, 3)))
    layer.forward(np.random.randn(4, 3), train_flg=False)
    with pytest.raises(RuntimeError, match=r"called before a forward with train_flg=True"):
        layer.backward(np.ones((4, 3)))
    layer.forward(np.random.randn(4, 3))
    rm, rv, xn = layer.running_mean.copy(), layer.running_var.copy(), layer.xn
    with pytest.raises(ValueError, match=r"BatchNormalization.forward: gamma must have shape \(5,\)"):
        layer.forward(np.random.randn(4, 5))
    with pytest.raises(ValueError, match=r"BatchNormalization.forward: x must be 2-D or 4-D"):
        layer.forward(np.random.randn(4))
    assert_array_equal(layer.running_mean, rm)
    assert_array_equal(layer.running_var, rv)
    assert layer.xn is xn
    with pytest.raises(ValueError, match=r"BatchNormalization.backward: dout must have shape \(4, 3\)"):
        layer.backward(np.ones((4, 2)))


# -- Convolution -----------------------------------------------------------------

CONV_CASES = [  # x shape, W shape, stride, pad
    ((1, 1, 5, 5), (1, 1, 3, 3), 1, 0),
    ((2, 3, 6, 5), (4, 3, 3, 2), 1, 1),
    ((2, 2, 7, 7), (3, 2, 3, 3), 2, 1),
    ((1, 3, 5, 6), (2, 3, 1, 1), 3, 0),   # stride > filter
    ((3, 1, 4, 4), (2, 1, 4, 4), 1, 2),
    ((1, 2, 5, 3), (2, 2, 2, 3), 2, 2),
]


@pytest.mark.parametrize("x_shape, w_shape, stride, pad", CONV_CASES)
def test_convolution_forward_against_loops(backend, dtype, x_shape, w_shape, stride, pad):
    x = np.random.randn(*x_shape).astype(dtype)
    W = np.random.randn(*w_shape).astype(dtype)
    b = np.random.randn(w_shape[0]).astype(dtype)
    layer = backend.layers.Convolution(W, b, stride, pad)
    out = layer.forward(x)
    expected = naive_conv(x, W, b, stride, pad)
    assert out.shape == expected.shape and out.dtype == dtype and out.flags.c_contiguous
    assert_allclose(out, expected, **_tol(dtype, 10))
    assert layer.col.dtype == dtype and layer.col_W.shape == (int(np.prod(w_shape[1:])), w_shape[0])
    dout = np.random.randn(*out.shape).astype(dtype)
    dx = layer.backward(dout)
    assert dx.shape == x_shape and dx.dtype == dtype
    assert layer.dW.shape == w_shape and layer.dW.dtype == dtype
    assert layer.db.shape == (w_shape[0],) and layer.db.dtype == dtype


@pytest.mark.parametrize("x_shape, w_shape, stride, pad", CONV_CASES[1:4])
def test_convolution_gradient(backend, x_shape, w_shape, stride, pad):
    x = np.random.randn(*x_shape)
    W = np.random.randn(*w_shape)
    b = np.random.randn(w_shape[0])
    layer = backend.layers.Convolution(W, b, stride, pad)
    dout = np.random.randn(*layer.forward(x).shape)

    def loss():
        return np.sum(layer.forward(x) * dout)

    loss()
    dx = layer.backward(dout)
    dW, db = layer.dW.copy(), layer.db.copy()
    check_gradient(backend, loss, x, dx)
    check_gradient(backend, loss, W, dW)
    check_gradient(backend, loss, b, db)


def test_convolution_kernels_are_overridable(ref):
    # A hook of the reference layer; the native layer runs fused compiled kernels instead.
    calls = []
    base = ref.layers.Convolution

    class Counting(base):
        @staticmethod
        def _im2col(*args):
            calls.append("im2col")
            return base._im2col(*args)

        @staticmethod
        def _col2im(*args):
            calls.append("col2im")
            return base._col2im(*args)

    layer = Counting(np.random.randn(2, 1, 2, 2), np.zeros(2))
    out = layer.forward(np.random.randn(1, 1, 3, 3))
    layer.backward(np.ones_like(out))
    assert calls == ["im2col", "col2im"]


def test_convolution_errors_and_state(backend):
    W, b = np.random.randn(2, 3, 3, 3), np.zeros(2)
    layer = backend.layers.Convolution(W, b)
    with pytest.raises(RuntimeError, match=r"Convolution.backward called before forward"):
        layer.backward(np.ones((1, 2, 1, 1)))
    with pytest.raises(ValueError, match=r"Convolution.forward: x must be 4-D "
                                         r"\(N, C, H, W\), got shape \(28, 28\)"):
        layer.forward(np.ones((28, 28)))
    with pytest.raises(ValueError, match=r"Convolution.forward: x has 1 channels .* W expects 3"):
        layer.forward(np.ones((1, 1, 5, 5)))
    with pytest.raises(ValueError, match=r"Convolution.forward: filter window \(3, 3\) is larger "
                                         r"than the padded input \(2, 5\)"):
        layer.forward(np.ones((1, 3, 2, 5)))
    x = np.random.randn(1, 3, 4, 4)
    out = layer.forward(x)
    col = layer.col
    layer.stride = 0
    with pytest.raises(ValueError, match=r"Convolution.forward: stride must be >= 1, got 0"):
        layer.forward(x)
    layer.stride, layer.pad = 1, -1
    with pytest.raises(ValueError, match=r"Convolution.forward: pad must be >= 0, got -1"):
        layer.forward(x)
    layer.pad = 0
    with pytest.raises(TypeError, match=r"Convolution.forward: x must have dtype float32 or float64"):
        layer.forward(x.astype(complex))
    assert layer.col is col and layer.x is x
    with pytest.raises(ValueError, match=r"Convolution.backward: dout must have shape \(1, 2, 2, 2\)"):
        layer.backward(np.ones((1, 2, 3, 3)))
    assert layer.dW is None
    layer.b = np.zeros(3)
    with pytest.raises(ValueError, match=r"Convolution.forward: b must have shape \(2,\)"):
        layer.forward(x)
    layer.b = b
    assert out.shape == (1, 2, 2, 2)


# -- Pooling ------------------------------------------------------------------------

POOL_CASES = [  # x shape, pool_h, pool_w, stride, pad
    ((1, 1, 4, 4), 2, 2, 2, 0),
    ((2, 3, 5, 7), 3, 3, 2, 1),
    ((2, 2, 6, 5), 2, 3, 1, 1),   # overlapping windows, pad
    ((1, 2, 7, 6), 4, 2, 3, 1),
    ((3, 1, 5, 5), 1, 1, 3, 0),   # stride > window
    ((1, 3, 6, 6), 4, 4, 2, 2),
]


@pytest.mark.parametrize("x_shape, ph, pw, stride, pad", POOL_CASES)
def test_max_pooling_against_loops(backend, dtype, x_shape, ph, pw, stride, pad):
    x = distinct(x_shape, dtype)
    x0 = x.copy()
    layer = backend.layers.Pooling(ph, pw, stride, pad)
    out = layer.forward(x)
    expected, winners = naive_max_pool(x, ph, pw, stride, pad)
    assert out.shape == expected.shape and out.dtype == dtype and out.flags.c_contiguous
    assert_array_equal(out, expected)
    n, c, oh, ow = out.shape
    assert layer.arg_max.shape == (n * oh * ow * c,)
    dout = np.random.randint(-4, 5, size=out.shape).astype(dtype)
    dout0 = dout.copy()
    dx = layer.backward(dout)
    assert dx.shape == x_shape and dx.dtype == dtype
    assert_array_equal(dx, naive_max_pool_backward(x_shape, winners, dout))
    assert_array_equal(x, x0)
    assert_array_equal(dout, dout0)


def test_max_pooling_arg_max_layout(backend):
    # arg_max rows are ordered (n, oh, ow, c); values are offsets inside the window
    x = np.zeros((1, 2, 2, 4))
    x[0, 0, 1, 1] = 5  # channel 0, window (0, 0): offset (1, 1) -> 3
    x[0, 1, 0, 2] = 5  # channel 1, window (0, 1): offset (0, 0) -> 0
    x[0, 1, 1, 1] = 5  # channel 1, window (0, 0): offset (1, 1) -> 3
    x[0, 0, 0, 3] = 5  # channel 0, window (0, 1): offset (0, 1) -> 1
    layer = backend.layers.Pooling(2, 2, 2)
    layer.forward(x)
    assert_array_equal(layer.arg_max, [3, 3, 1, 0])


def test_max_pooling_ties_go_to_first_maximum(backend, dtype):
    x = np.array([[[[1, 1, 0, 2],
                    [1, 1, 2, 2],
                    [3, 0, 0, 0],
                    [0, 3, 0, 0]]]], dtype=dtype)
    layer = backend.layers.Pooling(2, 2, 2)
    out = layer.forward(x)
    assert_array_equal(out, [[[[1, 2], [3, 0]]]])
    assert_array_equal(layer.arg_max, [0, 1, 0, 0])
    dx = layer.backward(np.array([[[[1, 2], [3, 4]]]], dtype=dtype))
    assert_array_equal(dx, [[[[1, 0, 0, 2],
                              [0, 0, 0, 0],
                              [3, 0, 4, 0],
                              [0, 0, 0, 0]]]])


def test_max_pooling_overlapping_windows_accumulate(backend):
    x = np.array([[[[0.0, 0.0, 0.0],
                    [0.0, 9.0, 0.0],
                    [0.0, 0.0, 0.0]]]])
    layer = backend.layers.Pooling(2, 2, stride=1)
    out = layer.forward(x)
    assert_array_equal(out, np.full((1, 1, 2, 2), 9.0))
    dx = layer.backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    assert dx[0, 0, 1, 1] == 10 and dx.sum() == 10


def test_max_pooling_nan_propagates(backend, dtype):
    x = np.array([[[[1, np.nan, 5, 6],
                    [2, 3, 7, 8]]]], dtype=dtype)
    layer = backend.layers.Pooling(2, 2, 2)
    out = layer.forward(x)
    assert np.isnan(out[0, 0, 0, 0]) and out[0, 0, 0, 1] == 8
    assert_array_equal(layer.arg_max, [1, 3])
    dx = layer.backward(np.ones((1, 1, 1, 2), dtype=dtype))
    assert_array_equal(dx, [[[[0, 1, 0, 0], [0, 0, 0, 1]]]])


def test_max_pooling_padding_never_wins(backend):
    x = -np.arange(1.0, 10.0).reshape(1, 1, 3, 3)  # all negative: zero padding would win
    layer = backend.layers.Pooling(2, 2, 2, pad=1)
    out = layer.forward(x)
    assert_array_equal(out, [[[[-1, -2], [-4, -5]]]])


def test_max_pooling_gradient(backend):
    x = distinct((2, 2, 5, 4))
    layer = backend.layers.Pooling(3, 2, stride=1, pad=1)
    dout = np.random.randn(*layer.forward(x).shape)
    dx = layer.backward(dout)
    check_gradient(backend, lambda: np.sum(layer.forward(x) * dout), x, dx)


@pytest.mark.parametrize("x_shape, ph, pw, stride, pad", POOL_CASES)
def test_avg_pooling_against_loops(backend, dtype, x_shape, ph, pw, stride, pad):
    x = np.random.randn(*x_shape).astype(dtype)
    layer = backend.layers.AvgPooling(ph, pw, stride, pad)
    out = layer.forward(x)
    expected = naive_avg_pool(x, ph, pw, stride, pad)
    assert out.shape == expected.shape and out.dtype == dtype and out.flags.c_contiguous
    assert_allclose(out, expected, **_tol(dtype, 10))
    dout = np.random.randn(*out.shape).astype(dtype)
    dx = layer.backward(dout)
    assert dx.shape == x_shape and dx.dtype == dtype
    assert_allclose(dx, naive_avg_pool_backward(x_shape, dout, ph, pw, stride, pad), **_tol(dtype, 10))


def test_avg_pooling_gradient(backend):
    x = np.random.randn(1, 2, 5, 5)
    layer = backend.layers.AvgPooling(3, 3, stride=2, pad=1)
    dout = np.random.randn(*layer.forward(x).shape)
    dx = layer.backward(dout)
    check_gradient(backend, lambda: np.sum(layer.forward(x) * dout), x, dx)


def test_avg_pooling_counts_padding(backend):
    x = np.ones((1, 1, 2, 2))
    out = backend.layers.AvgPooling(2, 2, stride=2, pad=1).forward(x)
    assert_array_equal(out, np.full((1, 1, 2, 2), 0.25))


@pytest.mark.parametrize("cls", ["Pooling", "AvgPooling"])
def test_pooling_errors(backend, cls):
    make = getattr(backend.layers, cls)
    x = np.ones((1, 1, 4, 4))
    with pytest.raises(ValueError, match=rf"{cls}.forward: pad must be at most half the pooling window"):
        make(2, 2, 2, pad=2).forward(x)
    with pytest.raises(ValueError, match=rf"{cls}.forward: pad must be at most half the pooling window"):
        make(4, 1, 1, pad=1).forward(x)
    with pytest.raises(ValueError, match=rf"{cls}.forward: stride must be >= 1, got 0"):
        make(2, 2, 0).forward(x)
    with pytest.raises(ValueError, match=rf"{cls}.forward: pooling window \(5, 2\) is larger than the padded input \(4, 4\)"):
        make(5, 2).forward(x)
    with pytest.raises(ValueError, match=rf"{cls}.forward: x must be 4-D"):
        make(2, 2).forward(np.ones((4, 4)))
    with pytest.raises(RuntimeError, match=rf"{cls}.backward called before forward"):
        make(2, 2).backward(np.ones((1, 1, 2, 2)))
    layer = make(2, 2)
    layer.forward(x)
    with pytest.raises(ValueError, match=rf"{cls}.backward: dout must have shape \(1, 1, 2, 2\)"):
        layer.backward(np.ones((1, 1, 3, 3)))


# -- rules shared by every layer ------------------------------------------------------

def _layers(L, dtype):
    """(name, layer, forward(layer, x), x shape)"""
    rs = np.random.RandomState(5)
    return [
        ("Relu", L.Relu(), lambda l, x: l.forward(x), (2, 3)),
        ("Sigmoid", L.Sigmoid(), lambda l, x: l.forward(x), (2, 3)),
        ("Affine", L.Affine(rs.randn(6, 2).astype(dtype), rs.randn(2).astype(dtype)),
         lambda l, x: l.forward(x), (2, 1, 2, 3)),
        ("Dropout", L.Dropout(0.5), lambda l, x: l.forward(x), (2, 3)),
        ("BatchNormalization", L.BatchNormalization(np.ones(6, dtype), np.zeros(6, dtype)),
         lambda l, x: l.forward(x), (3, 6)),
        ("Convolution", L.Convolution(rs.randn(2, 2, 2, 2).astype(dtype), rs.randn(2).astype(dtype), 1, 1),
         lambda l, x: l.forward(x), (2, 2, 3, 3)),
        ("Pooling", L.Pooling(2, 2, 1, 1), lambda l, x: l.forward(x), (2, 2, 3, 3)),
        ("AvgPooling", L.AvgPooling(2, 2, 1, 1), lambda l, x: l.forward(x), (2, 2, 3, 3)),
    ]


def test_every_layer_keeps_dtype_and_inputs(backend, dtype):
    for name, layer, forward, shape in _layers(backend.layers, dtype):
        # non-contiguous, read-only inputs must work and stay untouched
        x = np.random.randn(*shape[:-1], 2 * shape[-1]).astype(dtype)[..., ::2]
        x.setflags(write=False)
        x0 = x.copy()
        params = {k: v.copy() for k, v in vars(layer).items()
                  if k in ("W", "b", "gamma", "beta") and isinstance(v, np.ndarray)}
        out = forward(layer, x)
        assert out.dtype == dtype, name
        dout = np.random.randn(*out.shape[:-1], 2 * out.shape[-1]).astype(dtype)[..., ::2]
        dout.setflags(write=False)
        dout0 = dout.copy()
        dx = layer.backward(dout)
        assert dx.dtype == dtype and dx.shape == shape, name
        assert_array_equal(x, x0, err_msg=name)
        assert_array_equal(dout, dout0, err_msg=name)
        for k, v in params.items():
            assert_array_equal(getattr(layer, k), v, err_msg=f"{name}.{k}")
        for grad in ("dW", "db", "dgamma", "dbeta"):
            if getattr(layer, grad, None) is not None:
                assert getattr(layer, grad).dtype == dtype, f"{name}.{grad}"


def test_every_layer_refuses_backward_before_forward(backend):
    for name, layer, _, shape in _layers(backend.layers, np.float64):
        with pytest.raises(RuntimeError, match=rf"{name}.backward called before"):
            layer.backward(np.ones(shape))
    with pytest.raises(RuntimeError, match=r"SoftmaxWithLoss.backward called before forward"):
        backend.layers.SoftmaxWithLoss().backward()


def test_every_layer_refuses_bad_dtypes(backend):
    for name, layer, forward, shape in _layers(backend.layers, np.float64):
        for bad in (np.ones(shape, dtype=complex), np.ones(shape, dtype=object)):
            with pytest.raises(TypeError, match=rf"{name}.forward: x must have dtype float32 or float64"):
                forward(layer, bad)


def test_integer_input_becomes_float64(backend):
    layer = backend.layers.Relu()
    out = layer.forward(np.array([[-1, 2]], dtype=np.int32))
    assert out.dtype == np.float64
    assert_array_equal(out, [[0, 2]])


# --------------------------------------------------------------------------- skip_dx

@pytest.mark.parametrize("kind", ["affine", "conv"])
def test_skip_dx_returns_none_and_keeps_parameter_gradients(backend, kind):
    rng = np.random.default_rng(5)
    if kind == "affine":
        make = lambda: backend.layers.Affine(rng_W, rng_b)  # noqa: E731
        rng_W, rng_b = rng.standard_normal((12, 4)), rng.standard_normal(4)
        x = rng.standard_normal((3, 3, 2, 2))
    else:
        rng_W, rng_b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
        make = lambda: backend.layers.Convolution(rng_W, rng_b, stride=1, pad=1)  # noqa: E731
        x = rng.standard_normal((2, 3, 5, 5))
    full, skip = make(), make()
    assert full.skip_dx is False  # the default: public behaviour unchanged
    skip.skip_dx = True
    out = full.forward(x)
    skip.forward(x)
    dout = rng.standard_normal(out.shape)
    dx = full.backward(dout)
    assert dx is not None and dx.shape == x.shape
    assert skip.backward(dout) is None
    np.testing.assert_array_equal(skip.dW, full.dW)
    np.testing.assert_array_equal(skip.db, full.db)
