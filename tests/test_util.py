"""im2col / col2im against naive index loops, plus the small helpers."""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from conftest import ATOL, RTOL

# -- naive oracles: explicit index loops, sharing nothing with the implementation


def naive_out_size(size, f, stride, pad):
    count = 0
    while count * stride + f <= size + 2 * pad:
        count += 1
    return count


def naive_im2col(x, fh, fw, stride, pad):
    n_, c_, h_, w_ = x.shape
    oh_, ow_ = naive_out_size(h_, fh, stride, pad), naive_out_size(w_, fw, stride, pad)
    col = np.zeros((n_ * oh_ * ow_, c_ * fh * fw), dtype=np.float64)
    for n in range(n_):
        for oh in range(oh_):
            for ow in range(ow_):
                row = (n * oh_ + oh) * ow_ + ow
                for c in range(c_):
                    for i in range(fh):
                        for j in range(fw):
                            r, q = oh * stride + i - pad, ow * stride + j - pad
                            if 0 <= r < h_ and 0 <= q < w_:
                                col[row, (c * fh + i) * fw + j] = x[n, c, r, q]
    return col


def naive_col2im(col, shape, fh, fw, stride, pad):
    n_, c_, h_, w_ = shape
    oh_, ow_ = naive_out_size(h_, fh, stride, pad), naive_out_size(w_, fw, stride, pad)
    img = np.zeros(shape, dtype=np.float64)
    for n in range(n_):
        for oh in range(oh_):
            for ow in range(ow_):
                row = (n * oh_ + oh) * ow_ + ow
                for c in range(c_):
                    for i in range(fh):
                        for j in range(fw):
                            r, q = oh * stride + i - pad, ow * stride + j - pad
                            if 0 <= r < h_ and 0 <= q < w_:
                                img[n, c, r, q] += col[row, (c * fh + i) * fw + j]
    return img


FILTERS = [(1, 1), (2, 2), (3, 3), (4, 4), (1, 3), (3, 2), (4, 1), (2, 4)]
SHAPES = [(1, 1, 5, 4), (2, 3, 7, 6), (3, 2, 4, 9)]


@pytest.mark.parametrize("pad", [0, 1, 2])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("fh, fw", FILTERS)
def test_im2col_col2im_against_loops(backend, dtype, fh, fw, stride, pad):
    U = backend.util
    for shape in SHAPES:
        h, w = shape[2:]
        if fh > h + 2 * pad or fw > w + 2 * pad:
            continue
        # small integers: every sum is exact whatever the order of additions
        x = np.random.randint(-8, 9, size=shape).astype(dtype)
        x0 = x.copy()
        col = U.im2col(x, fh, fw, stride, pad)
        expected = naive_im2col(x, fh, fw, stride, pad)
        assert col.dtype == dtype and col.flags.c_contiguous
        assert_array_equal(col, expected)
        assert_array_equal(x, x0)

        c = np.random.randint(-8, 9, size=col.shape).astype(dtype)
        c0 = c.copy()
        img = U.col2im(c, shape, fh, fw, stride, pad)
        assert img.shape == shape and img.dtype == dtype and img.flags.c_contiguous
        assert_array_equal(img, naive_col2im(c, shape, fh, fw, stride, pad))
        assert_array_equal(c, c0)

        # adjointness on random reals: <im2col(x), c> == <x, col2im(c)>
        xr = np.random.randn(*shape).astype(dtype)
        cr = np.random.randn(*col.shape).astype(dtype)
        lhs = np.vdot(U.im2col(xr, fh, fw, stride, pad).astype(np.float64), cr.astype(np.float64))
        rhs = np.vdot(xr.astype(np.float64), U.col2im(cr, shape, fh, fw, stride, pad).astype(np.float64))
        assert_allclose(lhs, rhs, rtol=1e-4 if dtype == np.float32 else 1e-10, atol=1e-4)


def test_col2im_random_reals(backend, dtype):
    shape, fh, fw, stride, pad = (2, 3, 6, 5), 3, 2, 1, 1
    col = np.random.randn(2 * 6 * 6, 3 * 3 * 2).astype(dtype)
    img = backend.util.col2im(col, shape, fh, fw, stride, pad)
    assert_allclose(img, naive_col2im(col.astype(np.float64), shape, fh, fw, stride, pad),
                    rtol=RTOL[dtype] * 10, atol=ATOL[dtype] * 10)


def test_known_small_im2col(backend):
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    col = backend.util.im2col(x, 2, 2)
    assert_array_equal(col, [[0, 1, 3, 4], [1, 2, 4, 5], [3, 4, 6, 7], [4, 5, 7, 8]])
    # col2im is the adjoint: the centre pixel is in all four windows
    img = backend.util.col2im(np.ones((4, 4)), (1, 1, 3, 3), 2, 2)
    assert_array_equal(img[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])


def test_non_contiguous_and_read_only_inputs(backend, dtype):
    base = np.random.randn(2, 3, 8, 10).astype(dtype)
    x = base[:, ::-1, 1::2, ::2]  # (2, 3, 4, 5), not contiguous
    x.setflags(write=False)
    col = backend.util.im2col(x, 2, 3, 1, 1)
    assert_array_equal(col, naive_im2col(np.array(x), 2, 3, 1, 1))
    c = np.random.randn(*col.shape).astype(dtype)[:, ::1]
    c_view = np.asfortranarray(c)
    c_view.setflags(write=False)
    assert_allclose(backend.util.col2im(c_view, x.shape, 2, 3, 1, 1),
                    naive_col2im(c.astype(np.float64), x.shape, 2, 3, 1, 1),
                    rtol=RTOL[dtype] * 10, atol=ATOL[dtype] * 10)


def test_integer_input_becomes_float64(backend):
    col = backend.util.im2col(np.arange(16).reshape(1, 1, 4, 4), 2, 2, 2)
    assert col.dtype == np.float64
    assert_array_equal(col[0], [0, 1, 4, 5])


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(x=np.ones((4, 4))), ValueError, r"im2col: x must be 4-D \(N, C, H, W\), got shape \(4, 4\)"),
    (dict(stride=0), ValueError, r"im2col: stride must be >= 1, got 0"),
    (dict(stride=1.5), TypeError, r"im2col: stride must be an integer"),
    (dict(pad=-1), ValueError, r"im2col: pad must be >= 0, got -1"),
    (dict(filter_h=0), ValueError, r"im2col: filter_h must be >= 1, got 0"),
    (dict(filter_w=7), ValueError, r"im2col: filter window \(2, 7\) is larger than the padded input \(6, 6\)"),
    (dict(x=np.ones((1, 1, 4, 4), dtype=complex)), TypeError, r"im2col: x must have dtype float32 or float64"),
    (dict(x=np.ones((1, 1, 4, 4), dtype=object)), TypeError, r"im2col: x must have dtype float32 or float64"),
])
def test_im2col_errors(backend, kwargs, exc, match):
    args = dict(x=np.ones((1, 1, 4, 4)), filter_h=2, filter_w=2, stride=1, pad=1)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        backend.util.im2col(args["x"], args["filter_h"], args["filter_w"], args["stride"], args["pad"])


def test_col2im_errors(backend):
    U = backend.util
    with pytest.raises(ValueError, match=r"col2im: col must have shape \(9, 4\)"):
        U.col2im(np.ones((9, 5)), (1, 1, 4, 4), 2, 2, 1, 0)
    with pytest.raises(ValueError, match=r"col2im: col must be 2-D"):
        U.col2im(np.ones(36), (1, 1, 4, 4), 2, 2, 1, 0)
    with pytest.raises(ValueError, match=r"col2im: .*window \(5, 5\) is larger than the padded input"):
        U.col2im(np.ones((1, 25)), (1, 1, 4, 4), 5, 5, 1, 0)
    with pytest.raises(ValueError, match=r"col2im: stride must be >= 1"):
        U.col2im(np.ones((9, 4)), (1, 1, 4, 4), 2, 2, 0, 0)
    with pytest.raises(ValueError, match=r"col2im: input_shape"):
        U.col2im(np.ones((9, 4)), (1, 4, 4), 2, 2, 1, 0)


def test_conv_output_size(backend):
    cos = backend.util.conv_output_size
    assert cos(28, 5) == 24 and isinstance(cos(28, 5), int)
    assert cos(7, 3, stride=2, pad=1) == 4
    assert cos(5, 1, stride=3) == 2
    with pytest.raises(ValueError, match=r"conv_output_size: stride must be >= 1"):
        cos(5, 1, stride=0)
    with pytest.raises(ValueError, match=r"filter_size 6 is larger than the padded input 5"):
        cos(5, 6)


def _smooth_oracle(x):
    # the original's recipe, spelled out
    s = np.concatenate([x[10:0:-1], x, x[-1:-11:-1]])
    w = np.kaiser(11, 2)
    y = np.convolve(w / w.sum(), s, mode="valid")
    return y[5:len(y) - 5]


def test_smooth_curve(backend):
    for n in (11, 12, 57):
        x = np.random.rand(n)
        out = backend.util.smooth_curve(x)
        assert out.shape == (n,)
        assert_allclose(out, _smooth_oracle(x), rtol=1e-12, atol=1e-15)
    assert_allclose(backend.util.smooth_curve(np.full(30, 2.5)), 2.5, rtol=1e-12)
    for n in (0, 1, 2, 10):  # the original breaks below 11 points; nnfast keeps the length
        assert backend.util.smooth_curve(np.random.rand(n)).shape == (n,)
    assert backend.util.smooth_curve(list(range(20))).shape == (20,)
    assert backend.util.smooth_curve(np.random.rand(15).astype(np.float32)).dtype == np.float32


def test_shuffle_dataset(backend):
    x = np.arange(5 * 2 * 3 * 3).reshape(5, 2, 3, 3)
    t = np.arange(5) * 10
    np.random.seed(3)
    perm = np.random.permutation(5)
    np.random.seed(3)
    xs, ts = backend.util.shuffle_dataset(x, t)
    assert_array_equal(xs, x[perm])
    assert_array_equal(ts, t[perm])
    assert_array_equal(x, np.arange(5 * 2 * 3 * 3).reshape(5, 2, 3, 3))
    with pytest.raises(ValueError, match=r"shuffle_dataset: x and t must have the same number"):
        backend.util.shuffle_dataset(x, t[:4])
