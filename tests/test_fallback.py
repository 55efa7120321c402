"""nnfast._fallback: the NumPy stand-ins of the raw kernels, against the compiled kernels
(in this process) and the reference layers.

The stand-ins run when the extension is missing or NNFAST_BACKEND=reference (CI runs the
network, trainer, compat and CLI tests that way too); here each one is called directly,
with the compiled kernel's signature, and must give the kernel's results: the same bits
where the kernel promises the reference's bits, ~1e-12 relative where it does not
(softmax/cross-entropy, spatial batch norm).
"""
import numpy as np
import pytest

from nnfast import _dispatch, _fallback
from nnfast.reference import layers as R

K = _dispatch._kernels
compiled = pytest.mark.skipif(K is None, reason="needs the compiled kernels to compare with")
DTYPES = [np.float32, np.float64]


def same(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def pair(*shapes_dtypes):
    return [np.empty(s, d) for s, d in shapes_dtypes], [np.empty(s, d) for s, d in shapes_dtypes]


@compiled
@pytest.mark.parametrize("dtype", DTYPES)
def test_elementwise_stand_ins_match_the_kernels(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(37).astype(dtype)
    x[:4] = [0.0, -0.0, np.nan, np.inf]
    d = rng.standard_normal(37).astype(dtype)
    (a, am), (b, bm) = pair((37, dtype), (37, np.uint8))
    K.relu_forward(x, a, am, 1)
    _fallback.relu_forward(x, b, bm)
    same(a, b)
    same(am, bm)
    K.relu_backward(d, am, a, 1)
    _fallback.relu_backward(d, am, b)
    same(a, b)
    for derivative in (False, True):
        K.sigmoid(x, a, derivative, 1)
        _fallback.sigmoid(x, b, derivative)
        same(a, b)
    y = a.copy()
    K.sigmoid_backward(d, y, a, 1)
    _fallback.sigmoid_backward(d, y, b)
    same(a, b)
    K.mul_mask(x, am, a, 1)
    _fallback.mul_mask(x, am, b)
    same(a, b)
    K.scale(x, 0.7, a, 1)
    _fallback.scale(x, 0.7, b)
    same(a, b)
    m2 = rng.standard_normal((3, 5)).astype(dtype)
    bias = rng.standard_normal(5).astype(dtype)
    o1, o2 = m2.copy(), m2.copy()
    K.bias_add(o1, bias, 1)
    _fallback.bias_add(o2, bias)
    same(o1, o2)


@compiled
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dense", [False, True])
def test_softmax_xent_stand_in_matches_the_kernel(dtype, dense):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((6, 5)) * 5).astype(dtype)
    labels = np.array([0, 4, 2, 2, 1, 3], dtype=np.int64)
    t = np.eye(5, dtype=dtype)[labels] if dense else None
    out = [(np.empty_like(x), np.empty_like(x), np.empty(6)) for _ in range(2)]
    la = K.softmax_xent(x, labels, t, *out[0], 1)
    lb = _fallback.softmax_xent(x, labels, t, *out[1])
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(lb, la, rtol=rtol)
    for a, b in zip(out[0], out[1]):
        np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol * 1e-3)
    with pytest.raises(ValueError, match=r"softmax_xent: labels must be in \[0, 5\), got 5"):
        _fallback.softmax_xent(x, np.array([0, 5, 1, 1, 1, 1]), None, *out[1])


@compiled
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, c, inner", [(4, 6, 1), (3, 2, 9), (1, 5, 1)])
def test_batchnorm_stand_ins_match_the_kernels(n, c, inner, dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(n * c * inner).astype(dtype)
    gamma, beta, rm, rv = (rng.standard_normal(c).astype(dtype) for _ in range(4))
    rv = np.abs(rv)
    total = n * c * inner
    res = []
    for fn in (K.bn_forward_train, _fallback.bn_forward_train):
        bufs = [np.empty(total, dtype) for _ in range(3)] + [np.empty(c, dtype) for _ in range(3)]
        fn(x, n, c, inner, gamma, beta, rm, rv, 0.9, *bufs[:3], *bufs[3:], 1)
        res.append(bufs)
    check = same if inner == 1 else (lambda a, b: np.testing.assert_allclose(
        b, a, rtol=1e-12 if dtype == np.float64 else 1e-5, atol=1e-6))
    for a, b in zip(*res):
        check(a, b)
    out_k, xc, xn, std = res[0][0], res[0][1], res[0][2], res[0][3]
    outs = [np.empty(total, dtype) for _ in range(2)]
    K.bn_forward_test(x, n, c, inner, gamma, beta, rm, rv, outs[0], 1)
    _fallback.bn_forward_test(x, n, c, inner, gamma, beta, rm, rv, outs[1])
    check(outs[0], outs[1])
    d = rng.standard_normal(total).astype(dtype)
    grads = [[np.empty(total, dtype), np.empty(c, dtype), np.empty(c, dtype)] for _ in range(2)]
    K.bn_backward(d, xc, xn, std, gamma, n, c, inner, *grads[0], 1)
    _fallback.bn_backward(d, xc, xn, std, gamma, n, c, inner, *grads[1])
    for a, b in zip(*grads):
        check(a, b)
    assert out_k.dtype == dtype


@compiled
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op, hyper", [("SGD", (0.1, 0, 0)), ("MOMENTUM", (0.1, 0.9, 0)),
                                       ("NESTEROV", (0.1, 0.7, 0)), ("ADAGRAD", (0.1, 0, 0)),
                                       ("RMSPROP", (0.1, 0.9, 0)), ("ADAM", (0.01, 0.9, 0.999))])
def test_optimizer_stand_in_matches_the_kernel(op, hyper, dtype):
    rng = np.random.default_rng(3)
    p = rng.standard_normal(11).astype(dtype)
    g = rng.standard_normal(11).astype(dtype)
    s = np.abs(rng.standard_normal((2, 11))).astype(dtype)
    a = [p.copy(), s[0].copy(), s[1].copy()]
    b = [p.copy(), s[0].copy(), s[1].copy()]
    for _ in range(3):
        K.optim_update(getattr(K, f"OPT_{op}"), a[0], g, a[1], a[2], *hyper, 1)
        _fallback.optim_update(getattr(_fallback, f"OPT_{op}"), b[0], g, b[1], b[2], *hyper)
    for x, y in zip(a, b):
        same(x, y)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_and_pool_stand_ins_match_the_reference_layers(dtype):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 7, 6)).astype(dtype)
    W = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    ref = R.Convolution(W, b, 2, 1)
    out, col = _fallback.conv2d_forward(x, W, b, 2, 1)
    same(out, ref.forward(x))
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx, dW, db = _fallback.conv2d_backward(dout, x, col, W, 2, 1)
    same(dx, ref.backward(dout))
    same(dW, ref.dW)
    same(db, ref.db)
    assert _fallback.conv2d_forward_relu(x, W, b, 2, 1, None) is None
    pool = R.Pooling(3, 2, 1, 1)
    out, argmax = _fallback.maxpool_forward(x, 3, 2, 1, 1)
    same(out, pool.forward(x))
    same(argmax.transpose(0, 2, 3, 1).reshape(-1), pool.arg_max.astype(np.int32))
    dout = rng.standard_normal(out.shape).astype(dtype)
    same(_fallback.maxpool_backward(dout, argmax, x.shape, 3, 2, 1, 1), pool.backward(dout))
    mask = x > 0
    dx = _fallback.maxpool_backward(dout, argmax, x.shape, 3, 2, 1, 1, mask)
    expect = pool.backward(dout)
    expect[mask] = 0
    same(dx, expect)
    avg = R.AvgPooling(2, 2, 2, 1)
    out = _fallback.avgpool_forward(x, 2, 2, 2, 1)
    same(out, avg.forward(x))
    dout = rng.standard_normal(out.shape).astype(dtype)
    same(_fallback.avgpool_backward(dout, x.shape, 2, 2, 2, 1), avg.backward(dout))


def test_kernel_table_names_every_raw_kernel():
    for name in _dispatch._RAW_KERNELS:
        assert callable(_dispatch.kernel(name))
        assert callable(getattr(_fallback, name))
    with pytest.raises(KeyError, match="no kernel named"):
        _dispatch.kernel("nope")
