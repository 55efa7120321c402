"""The compiled im2col/col2im against the reference, over a geometry grid.

The reference itself is checked against naive index loops in test_util.py;
here the compiled kernels must agree with it exactly (they copy, and col2im
sums in the reference's order), for both dtypes, 1 and 2 threads, and odd
layouts of the input.
"""
import itertools

import numpy as np
import pytest

import nnfast
from nnfast import _dispatch
from nnfast.reference import util as ref_util

pytestmark = pytest.mark.skipif(_dispatch._kernels is None,
                                reason="compiled extension not loaded")

GRID = [  # (N, C, H, W, FH, FW, stride, pad)
    (n, c, h, w, fh, fw, s, p)
    for (n, c, h, w) in [(1, 1, 5, 5), (3, 2, 7, 6), (2, 3, 9, 4)]
    for (fh, fw) in [(1, 1), (2, 2), (3, 3), (3, 2), (1, 4)]
    for s in (1, 2, 3)
    for p in (0, 1, 2)
    if fh <= h + 2 * p and fw <= w + 2 * p
]


def _geom_id(g):
    return "N{}C{}_{}x{}_f{}x{}_s{}_p{}".format(*g)


@pytest.mark.parametrize("geom", GRID, ids=_geom_id)
def test_im2col_col2im_match_reference(geom, dtype):
    N, C, H, W, fh, fw, s, p = geom
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    x0 = x.copy()
    col = nnfast.util.im2col(x, fh, fw, s, p)
    expect = ref_util.im2col(x, fh, fw, s, p)
    assert col.dtype == dtype and col.shape == expect.shape
    np.testing.assert_array_equal(col, expect)
    np.testing.assert_array_equal(x, x0)

    dcol = rng.standard_normal(col.shape).astype(dtype)
    dcol0 = dcol.copy()
    img = nnfast.util.col2im(dcol, x.shape, fh, fw, s, p)
    img_ref = ref_util.col2im(dcol, x.shape, fh, fw, s, p)
    assert img.dtype == dtype and img.shape == x.shape
    # Same summation order as the reference: equal to the last bit.
    np.testing.assert_array_equal(img, img_ref)
    np.testing.assert_array_equal(dcol, dcol0)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("geom", GRID, ids=_geom_id)
def test_planar_pair_matches_reference(geom, dtype, threads):
    """im2col_planar is the reference's col transposed per image; col2im_planar is bit-equal."""
    from nnfast import _kernels
    N, C, H, W, fh, fw, s, p = geom
    rng = np.random.default_rng(5)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    x0 = x.copy()
    expect = ref_util.im2col(x, fh, fw, s, p)
    K = C * fh * fw
    P = expect.shape[0] // N
    cols = np.full((N, K, P), np.nan, dtype=dtype)  # every entry must be written
    _kernels.im2col_planar(x, fh, fw, s, p, cols, threads)
    np.testing.assert_array_equal(cols, expect.reshape(N, P, K).transpose(0, 2, 1))
    np.testing.assert_array_equal(x, x0)

    dcols = rng.standard_normal((N, K, P)).astype(dtype)
    dcols0 = dcols.copy()
    img = np.full(x.shape, np.nan, dtype=dtype)
    _kernels.col2im_planar(dcols, img, fh, fw, s, p, threads)
    rows = np.ascontiguousarray(dcols.transpose(0, 2, 1)).reshape(N * P, K)
    np.testing.assert_array_equal(img, ref_util.col2im(rows, x.shape, fh, fw, s, p))
    np.testing.assert_array_equal(dcols, dcols0)


def test_planar_pair_rejects_inconsistent_buffers():
    from nnfast import _kernels
    x = np.zeros((2, 1, 5, 5))
    with pytest.raises(ValueError, match=r"must have shape \(2, 9, 9\)"):
        _kernels.im2col_planar(x, 3, 3, 1, 0, np.zeros((2, 9, 8)), 1)
    with pytest.raises(ValueError, match=r"must have shape \(2, 9, 9\)"):
        _kernels.im2col_planar(x, 3, 3, 1, 0, np.zeros((1, 9, 9)), 1)
    with pytest.raises(ValueError, match=r"must have shape \(2, 9, 9\)"):
        _kernels.col2im_planar(np.zeros((2, 8, 9)), x, 3, 3, 1, 0, 1)
    with pytest.raises(ValueError, match="does not fit"):
        _kernels.im2col_planar(x, 6, 3, 1, 0, np.zeros((2, 9, 9)), 1)
    with pytest.raises(ValueError):  # not C-contiguous
        _kernels.im2col_planar(x, 3, 3, 1, 0, np.zeros((2, 9, 18))[:, :, ::2], 1)
    with pytest.raises(ValueError):  # dtype mismatch between x and out
        _kernels.col2im_planar(np.zeros((2, 9, 9), dtype=np.float32), x, 3, 3, 1, 0, 1)
    with pytest.raises(ValueError, match="b must be"):
        _kernels.conv_bias_planar(np.zeros((2, 3, 4)), np.zeros(2), 1)


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_give_identical_results(threads, dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((16, 8, 20, 20)).astype(dtype)  # big enough to go parallel
    with nnfast.num_threads(1):
        col1 = nnfast.util.im2col(x, 5, 5, 1, 2)
        img1 = nnfast.util.col2im(col1, x.shape, 5, 5, 1, 2)
    with nnfast.num_threads(threads):
        col = nnfast.util.im2col(x, 5, 5, 1, 2)
        img = nnfast.util.col2im(col, x.shape, 5, 5, 1, 2)
    np.testing.assert_array_equal(col, col1)
    np.testing.assert_array_equal(img, img1)


@pytest.mark.parametrize("layout", ["transposed", "sliced", "readonly", "big_endian", "fortran"])
def test_odd_layouts(layout, dtype):
    rng = np.random.default_rng(3)
    base = rng.standard_normal((3, 2, 9, 8)).astype(dtype)
    if layout == "transposed":
        x = np.ascontiguousarray(base.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    elif layout == "sliced":
        x = rng.standard_normal((3, 4, 18, 8)).astype(dtype)[:, ::2, ::2, :]
    elif layout == "readonly":
        x = base.copy()
        x.flags.writeable = False
    elif layout == "big_endian":
        x = base.astype(np.dtype(dtype).newbyteorder(">"))
    else:
        x = np.asfortranarray(base)
    col = nnfast.util.im2col(x, 3, 2, 2, 1)
    expect = ref_util.im2col(np.array(x, dtype=dtype), 3, 2, 2, 1)
    assert col.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(col, expect)
    dcol = np.asfortranarray(col)  # non-contiguous col for col2im too
    np.testing.assert_array_equal(nnfast.util.col2im(dcol, x.shape, 3, 2, 2, 1),
                                  ref_util.col2im(col, x.shape, 3, 2, 2, 1))


def test_integer_input_becomes_float64():
    x = np.arange(2 * 1 * 4 * 4).reshape(2, 1, 4, 4)
    col = nnfast.util.im2col(x, 2, 2)
    assert col.dtype == np.float64
    np.testing.assert_array_equal(col, ref_util.im2col(x.astype(np.float64), 2, 2))


def test_out_buffer_is_used(dtype):
    x = np.random.rand(2, 3, 6, 6).astype(dtype)
    out = np.empty((2 * 4 * 4, 3 * 9), dtype=dtype)
    col = _dispatch.im2col(x, 3, 3, out=out)
    assert np.shares_memory(col, out)
    img_out = np.empty(x.shape, dtype=dtype)
    img = _dispatch.col2im(col, x.shape, 3, 3, out=img_out)
    assert np.shares_memory(img, img_out)
    with pytest.raises(ValueError, match="out must be"):
        _dispatch.im2col(x, 3, 3, out=np.empty((5, 5), dtype=dtype))
    with pytest.raises(TypeError, match="out must be"):
        _dispatch.im2col(x, 3, 3, out=np.empty((32, 27), dtype=np.int64))


@pytest.mark.parametrize("shape", [(0, 2, 5, 5), (2, 0, 5, 5)])
def test_empty_batch_or_channels(shape):
    x = np.zeros(shape)
    col = nnfast.util.im2col(x, 3, 3)
    assert col.shape == ref_util.im2col(x, 3, 3).shape
    assert nnfast.util.col2im(col, shape, 3, 3).shape == shape


@pytest.mark.parametrize("args, exc, match", [
    (dict(x=np.zeros((5, 5))), ValueError, "x must be 4-D"),
    (dict(x=np.zeros((1, 1, 5, 5), dtype=np.complex128)), TypeError, "float32 or float64"),
    (dict(x=np.zeros((1, 1, 5, 5), dtype=np.float16)), TypeError, "float32 or float64"),
    (dict(stride=0), ValueError, "stride must be >= 1"),
    (dict(pad=-1), ValueError, "pad must be >= 0"),
    (dict(fh=7), ValueError, "larger than the padded input"),
    (dict(fh=0), ValueError, "filter_h must be >= 1"),
    (dict(stride=1.5), TypeError, "stride must be an integer"),
])
def test_im2col_bad_arguments(args, exc, match):
    x = args.get("x", np.zeros((1, 1, 5, 5)))
    with pytest.raises(exc, match=match):
        nnfast.util.im2col(x, args.get("fh", 3), 3, args.get("stride", 1), args.get("pad", 0))


def test_col2im_bad_arguments():
    col = np.zeros((9, 9))
    with pytest.raises(ValueError, match="col must have shape"):
        nnfast.util.col2im(col, (1, 1, 6, 6), 3, 3)
    with pytest.raises(ValueError, match="input_shape must be"):
        nnfast.util.col2im(col, (1, 5, 5), 3, 3)
    with pytest.raises(ValueError, match="col must be 2-D"):
        nnfast.util.col2im(np.zeros(81), (1, 1, 5, 5), 3, 3)


def test_kernel_seam_rejects_inconsistent_buffers():
    """The Cython entry points check sizes themselves: no out-of-bounds access."""
    from nnfast import _kernels
    x = np.zeros((1, 1, 5, 5))
    with pytest.raises(ValueError, match="out must have shape"):
        _kernels.im2col(x, 3, 3, 1, 0, np.zeros((8, 9)), 1)
    with pytest.raises(ValueError, match="does not fit"):
        _kernels.im2col(x, 6, 3, 1, 0, np.zeros((9, 9)), 1)
    with pytest.raises(ValueError, match="col must have shape"):
        _kernels.col2im(np.zeros((8, 9)), np.zeros((1, 1, 5, 5)), 3, 3, 1, 0, 1)
    with pytest.raises(ValueError, match="n_threads"):
        _kernels.im2col(x, 3, 3, 1, 0, np.zeros((9, 9)), 0)
    with pytest.raises(ValueError):  # dtype mismatch between x and out
        _kernels.im2col(x, 3, 3, 1, 0, np.zeros((9, 9), dtype=np.float32), 1)
