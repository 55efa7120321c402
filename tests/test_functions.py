"""Activation, loss and derivative functions: known values, dtypes, errors."""
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from conftest import ATOL, RTOL


def _tol(dtype):
    return dict(rtol=RTOL[dtype], atol=ATOL[dtype])


# -- known values -------------------------------------------------------------

def test_sigmoid_known_values(backend, dtype):
    F = backend.functions
    assert F.sigmoid(0) == 0.5
    x = np.array([-2.0, 0.0, 1.0, 3.0], dtype=dtype)
    expected = [1 / (1 + math.exp(2.0)), 0.5, 1 / (1 + math.exp(-1.0)), 1 / (1 + math.exp(-3.0))]
    out = F.sigmoid(x)
    assert out.dtype == dtype
    assert_allclose(out, expected, **_tol(dtype))


def test_sigmoid_stable_and_close_to_textbook_formula():
    from nnfast.reference.functions import sigmoid
    x = np.linspace(-40, 40, 2001)
    textbook = 1 / (1 + np.exp(-x))
    # within a couple of ulp of the textbook formula where it does not overflow
    assert_allclose(sigmoid(x), textbook, rtol=4e-16, atol=0)
    # and exactly the textbook formula for x >= 0
    assert_array_equal(sigmoid(x[x >= 0]), textbook[x >= 0])


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_sigmoid_no_overflow_warning(backend, dt):
    x = np.array([-1e4, -800.0, -100.0, 100.0, 800.0, 1e4, -np.inf, np.inf], dtype=dt)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out = backend.functions.sigmoid(x)
    assert out.dtype == dt
    assert_array_equal(out, [0, 0, np.exp(dt(-100)) / (1 + np.exp(dt(-100))), 1, 1, 1, 0, 1])
    assert np.isnan(backend.functions.sigmoid(np.array([np.nan])))[0]


def test_step_function(backend):
    out = backend.functions.step_function(np.array([-1.0, 0.0, 0.5, 2.0]))
    assert out.dtype.kind == "i"
    assert_array_equal(out, [0, 0, 1, 1])


def test_identity_function(backend):
    x = np.array([1.0, -2.0])
    assert backend.functions.identity_function(x) is x


def test_relu_and_its_two_derivatives_at_zero(backend, dtype):
    F = backend.functions
    x = np.array([-2.0, 0.0, 3.0], dtype=dtype)
    relu = F.relu(x)
    assert relu.dtype == dtype
    assert_array_equal(relu, [0, 0, 3])
    d_relu = F.d_relu(x)  # course: 0 at 0
    assert d_relu.dtype == dtype
    assert_array_equal(d_relu, [0, 0, 1])
    relu_grad = F.relu_grad(x)  # book: 1 at 0
    assert relu_grad.dtype == dtype
    assert_array_equal(relu_grad, [0, 1, 1])


def test_softmax_known_values(backend, dtype):
    x = np.array([1.0, 2.0, 3.0], dtype=dtype)
    e = [math.exp(-2), math.exp(-1), 1.0]
    expected = [v / sum(e) for v in e]
    out = backend.functions.softmax(x)
    assert out.dtype == dtype
    assert_allclose(out, expected, **_tol(dtype))
    assert_allclose(expected, [0.09003057317038046, 0.24472847105479767, 0.6652409557748219])


def test_softmax_any_ndim_over_last_axis(backend, dtype):
    x = np.random.randn(2, 3, 5).astype(dtype)
    out = backend.functions.softmax(x)
    assert out.shape == x.shape and out.dtype == dtype
    for idx in np.ndindex(2, 3):
        row = x[idx].astype(np.float64)
        expected = np.exp(row - row.max()) / np.exp(row - row.max()).sum()
        assert_allclose(out[idx], expected, **_tol(dtype))
    assert_allclose(out.sum(axis=-1), 1, **_tol(dtype))


def test_softmax_large_values_no_overflow(backend, dtype):
    x = np.array([[1000.0, 1001.0, 1002.0], [-1000.0, -1000.0, -1000.0]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise"):
        out = backend.functions.softmax(x)
    assert_allclose(out[0], backend.functions.softmax(np.array([1.0, 2.0, 3.0], dtype=dtype)),
                    **_tol(dtype))
    assert_allclose(out[1], [1 / 3] * 3, **_tol(dtype))


def test_mean_squared_error_definition(backend, dtype):
    d = np.array([1.0, 0.0, 0.0], dtype=dtype)
    y = np.array([0.5, 0.25, 0.25], dtype=dtype)
    # mean([0.25, 0.0625, 0.0625]) / 2 = 0.125 / 2
    loss = backend.functions.mean_squared_error(d, y)
    assert np.asarray(loss).dtype == dtype
    assert_allclose(loss, 0.0625, **_tol(dtype))


Y = [[0.1, 0.7, 0.2], [0.3, 0.3, 0.4]]


def test_cross_entropy_labels_and_one_hot(backend, dtype):
    F = backend.functions
    y = np.array(Y, dtype=dtype)
    expected = -(math.log(0.7 + 1e-7) + math.log(0.4 + 1e-7)) / 2
    for labels in (np.array([1, 2]), np.array([1, 2], dtype=np.uint8), np.array([1, 2], dtype=np.int32)):
        loss = F.cross_entropy_error(labels, y)
        assert np.asarray(loss).dtype == dtype
        assert_allclose(loss, expected, **_tol(dtype))
    one_hot = np.array([[0, 1, 0], [0, 0, 1]])
    assert_allclose(F.cross_entropy_error(one_hot, y), expected, **_tol(dtype))
    assert_allclose(F.cross_entropy_error(one_hot.astype(dtype), y), expected, **_tol(dtype))


def test_cross_entropy_single_sample_and_epsilon(backend):
    F = backend.functions
    y = np.array([0.0, 1.0, 0.0])
    assert_allclose(F.cross_entropy_error(0, y), -math.log(1e-7), rtol=1e-12)
    assert_allclose(F.cross_entropy_error(np.array([1]), y), -math.log(1 + 1e-7), rtol=1e-12)
    assert_allclose(F.cross_entropy_error(np.array([1, 0, 0]), y), -math.log(1e-7), rtol=1e-12)


def test_softmax_with_loss(backend, dtype):
    F = backend.functions
    x = np.random.randn(4, 5).astype(dtype)
    t = np.array([0, 4, 2, 2])
    assert_allclose(F.softmax_with_loss(t, x), F.cross_entropy_error(t, F.softmax(x)),
                    **_tol(dtype))


# -- derivatives --------------------------------------------------------------

def test_d_sigmoid_and_sigmoid_grad(backend, dtype):
    F = backend.functions
    x = np.array([-3.0, -0.5, 0.0, 2.0], dtype=dtype)
    s = 1 / (1 + np.exp(-x.astype(np.float64)))
    for fn in (F.d_sigmoid, F.sigmoid_grad):
        out = fn(x)
        assert out.dtype == dtype
        assert_allclose(out, (1 - s) * s, **_tol(dtype))
    assert F.d_sigmoid(0) == 0.25


def test_d_step_function(backend, dtype):
    out = backend.functions.d_step_function(np.array([-1.0, 0.0, 1.0], dtype=dtype))
    assert out.dtype == dtype
    assert_array_equal(out, [0, 0, 0])


def test_d_mean_squared_error(backend, dtype):
    F = backend.functions
    d = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=dtype)
    y = np.array([[0.5, 0.5], [0.25, 0.5], [1.0, 0.0]], dtype=dtype)
    out = F.d_mean_squared_error(d, y)
    assert out.dtype == dtype
    assert_allclose(out, (y - d) / 3, **_tol(dtype))  # divides by d.shape[0]
    assert F.d_mean_squared_error(1.0, 0.25) == -0.75  # not an array: y - d


def test_d_softmax_with_loss_formulas(backend, dtype):
    F = backend.functions
    y = np.array(Y, dtype=dtype)
    expected = np.array([[0.1, -0.3, 0.2], [0.3, 0.3, -0.6]]) / 2
    out = F.d_softmax_with_loss(np.array([1, 2]), y)
    assert out.dtype == dtype
    assert_allclose(out, expected, **_tol(dtype))
    out = F.d_softmax_with_loss(np.array([[0, 1, 0], [0, 0, 1]]), y)
    assert out.dtype == dtype
    assert_allclose(out, expected, **_tol(dtype))
    single = F.d_softmax_with_loss(np.array([1]), y[0])
    assert single.shape == (3,)
    assert_allclose(single, [0.1, -0.3, 0.2], **_tol(dtype))


def test_d_softmax_with_loss_is_the_gradient(backend):
    F = backend.functions
    x = np.random.randn(3, 4)
    t = np.array([3, 0, 1])
    num = backend.gradient.numerical_gradient(lambda z: F.softmax_with_loss(t, z), x)
    assert_allclose(F.d_softmax_with_loss(t, F.softmax(x)), num, rtol=1e-5, atol=1e-7)


def test_d_sigmoid_with_loss(backend, dtype):
    d = np.array([1.0, 0.0], dtype=dtype)
    y = np.array([0.75, 0.25], dtype=dtype)
    out = backend.functions.d_sigmoid_with_loss(d, y)
    assert out.dtype == dtype
    assert_array_equal(out, [-0.25, 0.25])


# -- inputs untouched, errors -------------------------------------------------

def test_inputs_unchanged(backend, dtype):
    F = backend.functions
    x = np.random.randn(3, 4).astype(dtype)
    t = np.array([0, 3, 1])
    x0, t0 = x.copy(), t.copy()
    for call in (lambda: F.sigmoid(x), lambda: F.relu(x), lambda: F.softmax(x),
                 lambda: F.softmax_with_loss(t, x), lambda: F.d_relu(x),
                 lambda: F.d_softmax_with_loss(t, F.softmax(x)),
                 lambda: F.cross_entropy_error(t, F.softmax(x))):
        call()
        assert_array_equal(x, x0)
        assert_array_equal(t, t0)


@pytest.mark.parametrize("t, exc, match", [
    (np.array([0, 3]), ValueError, r"labels in d must be in \[0, 3\), got 3"),
    (np.array([0, -1]), ValueError, r"labels in d must be in \[0, 3\), got -1"),
    (np.array([0, 1, 2]), ValueError, r"d must have shape \(2,\)"),
    (np.array([0.0, 1.0]), TypeError, r"d must hold integer class labels"),
    (np.array([[0, 1, 0, 0, 1, 0]]), ValueError, r"one-hot d must have shape \(2, 3\)"),
])
def test_cross_entropy_bad_teacher(backend, t, exc, match):
    y = np.array(Y)
    with pytest.raises(exc, match=match):
        backend.functions.cross_entropy_error(t, y)
    with pytest.raises(exc, match=match):
        backend.functions.d_softmax_with_loss(t, y)


@pytest.mark.parametrize("bad", [np.array([1 + 2j]), np.array(["a"]), np.array([object()]),
                                 np.array([1.0], dtype=np.float16)])
def test_unsupported_dtypes(backend, bad):
    with pytest.raises(TypeError, match=r"sigmoid: x must have dtype float32 or float64"):
        backend.functions.sigmoid(bad)
    with pytest.raises(TypeError, match=r"softmax: x must have dtype"):
        backend.functions.softmax(bad)


def test_integer_input_becomes_float64(backend):
    out = backend.functions.sigmoid(np.array([0, 1], dtype=np.int32))
    assert out.dtype == np.float64
    assert out[0] == 0.5


def test_shape_errors(backend):
    F = backend.functions
    with pytest.raises(ValueError, match=r"softmax: x must have at least 1 dimension"):
        F.softmax(np.float64(1.0))
    with pytest.raises(ValueError, match=r"cross_entropy_error: y must be 1-D or 2-D"):
        F.cross_entropy_error(np.array([0]), np.ones((1, 2, 3)))
    with pytest.raises(ValueError, match=r"mean_squared_error: d must have shape \(3,\)"):
        F.mean_squared_error(np.ones(2), np.ones(3))
