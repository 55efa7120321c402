"""float32 data into float64 layers and networks (the toolkit's load_mnist gives float32
images, its networks hold float64 parameters): the compiled layers convert the input once,
where the reference's first product converts it, and then run their float64 kernels; the
results are the reference's."""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from nnfast import _blas, _dispatch, layers as L, nets as N
from nnfast.reference import layers as RL, nets as RN

pytestmark = pytest.mark.skipif(_dispatch._kernels is None,
                                reason="compiled extension not loaded")


def _serial_blas():
    from threadpoolctl import threadpool_limits
    return threadpool_limits(1) if _blas.serial else threadpool_limits(None)


def test_affine_float32_input_float64_params_is_the_references_bits():
    rng = np.random.default_rng(0)
    W, b = rng.standard_normal((30, 7)), rng.standard_normal(7)
    x = rng.standard_normal((5, 2, 3, 5)).astype(np.float32)
    dout = rng.standard_normal((5, 7))
    got, want = L.Affine(W, b), RL.Affine(W, b)
    with _serial_blas():
        out, ref = got.forward(x), want.forward(x)
        assert out.dtype == ref.dtype == np.float64 and got._fast  # the kernel path ran
        assert_array_equal(out, ref)
        dx, rdx = got.backward(dout), want.backward(dout)
    assert_array_equal(dx, rdx)
    assert dx.shape == x.shape
    assert_array_equal(got.dW, want.dW)
    assert_array_equal(got.db, want.db)


@pytest.mark.parametrize("relu", [False, True])
def test_convolution_float32_input_float64_filters(relu):
    rng = np.random.default_rng(1)
    W, b = rng.standard_normal((8, 4, 3, 3)), rng.standard_normal(8)  # a direct layer
    x = rng.standard_normal((2, 4, 9, 9)).astype(np.float32)
    dout = rng.standard_normal((2, 8, 9, 9))
    got, want = L.Convolution(W, b, 1, 1), RL.Convolution(W, b, 1, 1)
    if relu:
        r = L.Relu()
        out = got._forward_relu(x, r)
        if _dispatch._DIRECT_CONV:
            assert got._col is None  # the direct float64 kernels ran, not the columns
        ref = np.maximum(want.forward(x), 0)
        dout = dout * (ref > 0)
    else:
        out, ref = got.forward(x), want.forward(x)
    assert out.dtype == np.float64
    assert got.x is x  # the layer keeps the caller's array, as the reference
    assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    dx, rdx = got.backward(dout), want.backward(dout)
    assert dx.dtype == rdx.dtype == np.float64
    for a, r_ in ((dx, rdx), (got.dW, want.dW), (got.db, want.db)):
        assert_allclose(a, r_, rtol=1e-11, atol=1e-11)
    assert_array_equal(got.col, want.col)  # the same values (in float64 on the column path)


@pytest.mark.parametrize("net", ["SimpleConvNet", "DeepConvNet"])
def test_networks_take_float32_images_into_float64_parameters(net):
    rng = np.random.default_rng(2)
    x = rng.random((3, 1, 28, 28)).astype(np.float32)
    t = rng.integers(0, 10, 3)
    np.random.seed(5)
    ours = getattr(N, net)()
    np.random.seed(5)
    ref = getattr(RN, net)()
    with _serial_blas():
        np.random.seed(6)  # the same dropout masks
        g = ours.gradient(x, t)
        np.random.seed(6)
        rg = ref.gradient(x, t)
    for key in rg:
        assert g[key].dtype == rg[key].dtype == np.float64
        scale = float(np.abs(rg[key]).max()) or 1.0
        assert_allclose(g[key], rg[key], rtol=1e-9, atol=1e-9 * scale, err_msg=key)
