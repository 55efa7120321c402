"""nnfast.ops against torch.nn.functional: values and gradients (where torch is installed).

Known, documented differences are part of the comparison: nnfast's cross-entropy adds
1e-7 inside the log; batch norm's running variance is the biased one (torch keeps the
unbiased); Adam's epsilon is added to sqrt(v) rather than to sqrt(v_hat).
"""
import numpy as np
import pytest

from nnfast import ops

torch = pytest.importorskip("torch", reason="torch is not installed: nnfast.ops is compared "
                                            "with torch.nn.functional only where it is")
F = torch.nn.functional
TOL = {np.float64: 1e-10, np.float32: 2e-4}


def close(a, b, dtype, tol=None):
    tol = TOL[dtype] if tol is None else tol
    np.testing.assert_allclose(np.asarray(a), b.detach().numpy(), rtol=tol, atol=tol)


def leaf(a):
    return torch.from_numpy(a.copy()).requires_grad_(True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("stride, pad", [(1, 0), (1, 1), (2, 1), (3, 2)])
def test_conv2d(stride, pad, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 8, 7)).astype(dtype)
    w = rng.standard_normal((5, 3, 3, 2)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    tx, tw, tb = leaf(x), leaf(w), leaf(b)
    ty = F.conv2d(tx, tw, tb, stride, pad)
    close(ops.conv2d(x, w, b, stride, pad), ty, dtype)
    g = rng.standard_normal(ty.shape).astype(dtype)
    ty.backward(torch.from_numpy(g))
    dx, dw, db = ops.conv2d_backward(g, x, w, stride, pad)
    close(dx, tx.grad, dtype)
    close(dw, tw.grad, dtype)
    close(db, tb.grad, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k, stride, pad", [(2, 2, 0), (3, 1, 1), (3, 2, 1)])
def test_pooling(k, stride, pad, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 7, 8)).astype(dtype)
    tx = leaf(x)
    ty = F.max_pool2d(tx, k, stride, pad)
    out, argmax = ops.max_pool2d(x, k, k, stride, pad)
    close(out, ty, dtype)
    g = rng.standard_normal(ty.shape).astype(dtype)
    ty.backward(torch.from_numpy(g))
    close(ops.max_pool2d_backward(g, argmax, x.shape, k, k, stride, pad), tx.grad, dtype)
    tx = leaf(x)
    ty = F.avg_pool2d(tx, k, stride, pad, count_include_pad=True)
    close(ops.avg_pool2d(x, k, k, stride, pad), ty, dtype)
    ty.backward(torch.from_numpy(g))
    close(ops.avg_pool2d_backward(g, x.shape, k, k, stride, pad), tx.grad, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_affine_activations_softmax(dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 6)).astype(dtype)
    w = rng.standard_normal((6, 3)).astype(dtype)
    b = rng.standard_normal(3).astype(dtype)
    tx, tw, tb = leaf(x), leaf(w), leaf(b)
    ty = F.linear(tx, tw.T, tb)
    close(ops.affine(x, w, b), ty, dtype)
    g = rng.standard_normal(ty.shape).astype(dtype)
    ty.backward(torch.from_numpy(g))
    for mine, theirs in zip(ops.affine_backward(g, x, w), (tx.grad, tw.grad, tb.grad)):
        close(mine, theirs, dtype)
    for fn, back, tfn in ((ops.relu, lambda d, y, x: ops.relu_backward(d, x), F.relu),
                          (ops.sigmoid, lambda d, y, x: ops.sigmoid_backward(d, y),
                           torch.sigmoid)):
        tx = leaf(x)
        ty = tfn(tx)
        y = fn(x)
        close(y, ty, dtype)
        g = rng.standard_normal(x.shape).astype(dtype)
        ty.backward(torch.from_numpy(g))
        close(back(g, y, x), tx.grad, dtype)
    close(ops.softmax(x), F.softmax(torch.from_numpy(x), dim=-1), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy(dtype):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((5, 4)) * 3).astype(dtype)
    t = np.array([0, 3, 1, 1, 2])
    tx = leaf(x)
    tl = F.cross_entropy(tx, torch.from_numpy(t))
    tl.backward()
    loss, dx = ops.softmax_cross_entropy(x, t)
    close(loss, tl, dtype, tol=1e-6 if dtype == np.float64 else 1e-5)  # the 1e-7 in the log
    close(dx, tx.grad, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_spatial(dtype):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 3, 5, 5)).astype(dtype)
    gamma = rng.standard_normal(3).astype(dtype)
    beta = rng.standard_normal(3).astype(dtype)
    tx, tg, tb = leaf(x), leaf(gamma), leaf(beta)
    rm, rv = torch.zeros(3, dtype=tx.dtype), torch.zeros(3, dtype=tx.dtype)
    ty = F.batch_norm(tx, rm, rv, tg, tb, training=True, momentum=0.1, eps=1e-6)
    res = ops.batch_norm(x, gamma, beta, training=True, momentum=0.9, mode="spatial")
    close(res.out, ty, dtype)
    close(res.running_mean, rm, dtype)
    m = x.size // 3
    close(res.running_var * (m / (m - 1)), rv, dtype)  # torch keeps the unbiased variance
    g = rng.standard_normal(x.shape).astype(dtype)
    ty.backward(torch.from_numpy(g))
    for mine, theirs in zip(ops.batch_norm_backward(g, res.cache, gamma),
                            (tx.grad, tg.grad, tb.grad)):
        close(mine, theirs, dtype, tol=TOL[dtype] * 100)
    ev = ops.batch_norm(x, gamma, beta, res.running_mean, res.running_var, training=False,
                        mode="spatial")
    te = F.batch_norm(torch.from_numpy(x), torch.from_numpy(res.running_mean),
                      torch.from_numpy(res.running_var), torch.from_numpy(gamma),
                      torch.from_numpy(beta), training=False, eps=1e-6)
    close(ev.out, te, dtype)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adagrad", "rmsprop", "adam"])
def test_optimizer_steps(name):
    rng = np.random.default_rng(5)
    p0 = rng.standard_normal(7)
    grads = [rng.standard_normal(7) for _ in range(4)]
    tp = torch.from_numpy(p0.copy()).requires_grad_(True)
    opt = {"sgd": lambda: torch.optim.SGD([tp], lr=0.1),
           "momentum": lambda: torch.optim.SGD([tp], lr=0.1, momentum=0.9),
           "adagrad": lambda: torch.optim.Adagrad([tp], lr=0.1, eps=1e-7),
           "rmsprop": lambda: torch.optim.RMSprop([tp], lr=0.01, alpha=0.99, eps=1e-7),
           "adam": lambda: torch.optim.Adam([tp], lr=0.01, eps=1e-7)}[name]()
    p, s1, s2 = p0.copy(), np.zeros(7), np.zeros(7)
    for i, g in enumerate(grads, start=1):
        tp.grad = torch.from_numpy(g.copy())
        opt.step()
        {"sgd": lambda: ops.sgd_(p, g, lr=0.1),
         "momentum": lambda: ops.momentum_(p, g, s1, lr=0.1, momentum=0.9),
         "adagrad": lambda: ops.adagrad_(p, g, s1, lr=0.1),
         "rmsprop": lambda: ops.rmsprop_(p, g, s1, lr=0.01, decay_rate=0.99),
         "adam": lambda: ops.adam_(p, g, s1, s2, i, lr=0.01)}[name]()
    # Momentum's velocity is -lr times torch's (same values, other rounding); Adam's epsilon
    # sits elsewhere (a ~1e-7 relative difference here)
    np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-6 if name == "adam" else 1e-12,
                               atol=1e-12)
