"""numerical_gradient: any ndim, dtype kept, x restored exactly."""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal


@pytest.mark.parametrize("shape", [(), (5,), (3, 4), (2, 3, 2), (1, 2, 2, 3)])
def test_gradient_of_sum_of_squares(backend, dtype, shape):
    x = np.asarray(np.random.randn(*shape), dtype=dtype)
    x0 = x.copy()
    grad = backend.gradient.numerical_gradient(lambda z: np.sum(z.astype(np.float64) ** 2), x)
    assert grad.shape == x.shape and grad.dtype == dtype
    # float32 x perturbed by 1e-4 carries ~1e-7 relative rounding in the step
    tol = dict(rtol=1e-3, atol=1e-3) if dtype == np.float32 else dict(rtol=1e-8, atol=1e-8)
    assert_allclose(grad, 2 * x0.astype(np.float64), **tol)
    assert_array_equal(x, x0)  # restored bit for bit


def test_central_difference_step(backend):
    # f(x) = x**3: central difference gives 3x**2 + h**2 exactly in theory
    x = np.array([2.0])
    grad = backend.gradient.numerical_gradient(lambda z: float(z[0] ** 3), x)
    assert_allclose(grad, [12.0 + 1e-8], rtol=1e-9)


def test_mixed_function_and_non_contiguous_input(backend):
    base = np.random.randn(4, 6)
    x = base[:, ::2]  # a non-contiguous view: perturbed through the view
    w = np.random.randn(4, 3)
    x0 = x.copy()
    grad = backend.gradient.numerical_gradient(lambda z: np.sum(np.sin(z) * w), x)
    assert_allclose(grad, np.cos(x0) * w, rtol=1e-7, atol=1e-9)
    assert_array_equal(x, x0)


def test_restored_when_f_raises(backend):
    x = np.arange(4.0)
    x0 = x.copy()

    def f(z):
        if z[2] != 2.0:
            raise RuntimeError("boom")
        return z.sum()

    with pytest.raises(RuntimeError, match="boom"):
        backend.gradient.numerical_gradient(f, x)
    assert_array_equal(x, x0)


def test_refuses_arrays_it_cannot_perturb(backend):
    with pytest.raises(TypeError, match=r"numerical_gradient: x must have dtype float32 or float64"):
        backend.gradient.numerical_gradient(np.sum, np.arange(3))
    with pytest.raises(TypeError, match=r"numerical_gradient: x must be a NumPy array"):
        backend.gradient.numerical_gradient(np.sum, [1.0, 2.0])
    ro = np.ones(3)
    ro.setflags(write=False)
    with pytest.raises(ValueError, match=r"numerical_gradient: x must be writeable"):
        backend.gradient.numerical_gradient(np.sum, ro)
