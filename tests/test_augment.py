"""Data augmentation: shapes and dtypes kept, inputs untouched, seeded, and each transform
checked against a plain per-image oracle."""
import numpy as np
import pytest

from nnfast.datasets import Augmenter, gaussian_noise, horizontal_flip, random_shift


def _batch(dtype=np.float32, shape=(5, 2, 6, 7), seed=0):
    return np.random.RandomState(seed).rand(*shape).astype(dtype)


def _shift_oracle(image, dy, dx):
    """Move the content of one (C, H, W) image by (dy, dx), filling with zeros."""
    c, h, w = image.shape
    out = np.zeros_like(image)
    for i in range(h):
        for j in range(w):
            si, sj = i - dy, j - dx
            if 0 <= si < h and 0 <= sj < w:
                out[:, i, j] = image[:, si, sj]
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
def test_random_shift_matches_oracle(dtype):
    x = (_batch(np.float64) * 200).astype(dtype)
    before = x.copy()
    out = random_shift(x, 2, np.random.default_rng(5))
    shifts = np.random.default_rng(5).integers(-2, 3, size=(x.shape[0], 2))
    assert out.shape == x.shape and out.dtype == x.dtype
    for img, res, (dy, dx) in zip(x, out, shifts):
        np.testing.assert_array_equal(res, _shift_oracle(img, dy, dx))
    np.testing.assert_array_equal(x, before)
    assert np.any(shifts != 0)


def test_random_shift_zero_is_a_copy():
    x = _batch()
    out = random_shift(x, 0, np.random.default_rng(0))
    np.testing.assert_array_equal(out, x)
    assert not np.shares_memory(out, x)


def test_horizontal_flip():
    x = _batch()
    rng = np.random.default_rng(3)
    out = horizontal_flip(x, 0.5, rng)
    flipped = np.random.default_rng(3).random(x.shape[0]) < 0.5
    assert 0 < flipped.sum() < x.shape[0]
    for img, res, f in zip(x, out, flipped):
        np.testing.assert_array_equal(res, img[:, :, ::-1] if f else img)
    np.testing.assert_array_equal(horizontal_flip(x, 0.0, rng), x)
    np.testing.assert_array_equal(horizontal_flip(x, 1.0, rng), x[..., ::-1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gaussian_noise(dtype):
    x = np.zeros((200, 1, 10, 10), dtype=dtype)
    out = gaussian_noise(x, 0.1, np.random.default_rng(0))
    assert out.dtype == dtype and out.shape == x.shape
    assert abs(out.std() - 0.1) < 0.005 and abs(out.mean()) < 0.005
    assert not x.any()
    with pytest.raises(TypeError, match="float32 or float64"):
        gaussian_noise(x.astype(np.uint8), 0.1, np.random.default_rng(0))


@pytest.mark.parametrize("fn, arg", [(random_shift, 1), (horizontal_flip, 0.5),
                                     (gaussian_noise, 0.1)])
def test_functions_need_4d(fn, arg):
    with pytest.raises(ValueError, match="4-D"):
        fn(np.zeros((3, 28 * 28)), arg, np.random.default_rng(0))


@pytest.mark.parametrize("fn, bad", [(random_shift, -1), (random_shift, 1.5),
                                     (horizontal_flip, 1.5), (gaussian_noise, -0.1)])
def test_functions_reject_bad_strengths(fn, bad):
    with pytest.raises(ValueError):
        fn(_batch(), bad, np.random.default_rng(0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_augmenter_is_seeded_and_keeps_shape_and_dtype(dtype):
    x = _batch(dtype)
    before = x.copy()
    a = Augmenter(shift=2, flip=0.5, noise=0.05, seed=7)
    b = Augmenter(shift=2, flip=0.5, noise=0.05, seed=7)
    out_a, out_b = a(x), b(x)
    assert out_a.shape == x.shape and out_a.dtype == dtype
    np.testing.assert_array_equal(out_a, out_b)
    assert not np.array_equal(a(x), out_a)          # the generator moves on
    assert not np.array_equal(Augmenter(shift=2, flip=0.5, noise=0.05, seed=8)(x), out_a)
    np.testing.assert_array_equal(x, before)


def test_augmenter_composition_order():
    x = _batch(np.float64)
    aug = Augmenter(shift=1, flip=0.5, noise=0.01, seed=2)
    rng = np.random.default_rng(2)
    expected = gaussian_noise(horizontal_flip(random_shift(x, 1, rng), 0.5, rng), 0.01, rng)
    np.testing.assert_array_equal(aug(x), expected)


def test_augmenter_leaves_the_global_rng_alone():
    np.random.seed(3)
    expected = np.random.rand(4)
    np.random.seed(3)
    Augmenter(shift=2, flip=0.5, noise=0.1, seed=0)(_batch())
    np.testing.assert_array_equal(np.random.rand(4), expected)


def test_augmenter_flattened_batches():
    x = _batch(shape=(4, 1, 28, 28))
    flat = x.reshape(4, 784)
    out = Augmenter(shift=2, seed=1, image_shape=(1, 28, 28))(flat)
    assert out.shape == (4, 784) and out.dtype == np.float32
    np.testing.assert_array_equal(out, Augmenter(shift=2, seed=1)(x).reshape(4, 784))
    with pytest.raises(ValueError, match="image_shape"):
        Augmenter(shift=2)(flat)
    with pytest.raises(ValueError, match="does not match"):
        Augmenter(shift=2, image_shape=(1, 27, 28))(flat)


def test_inactive_augmenter_copies():
    x = _batch()
    aug = Augmenter()
    assert not aug.active
    out = aug(x)
    np.testing.assert_array_equal(out, x)
    assert not np.shares_memory(out, x)


def test_from_spec():
    a = Augmenter.from_spec("shift=3, noise=0.1", seed=1)
    assert (a.shift, a.flip, a.noise, a.seed) == (3, 0.0, 0.1, 1)
    b = Augmenter.from_spec("shift,flip,noise")
    assert (b.shift, b.flip, b.noise) == (2, 0.5, 0.05)
    for text in ("none", "", None, "OFF"):
        assert not Augmenter.from_spec(text).active
    with pytest.raises(ValueError, match="unknown augmentation 'rotate'"):
        Augmenter.from_spec("shift,rotate")
    with pytest.raises(ValueError, match="needs a number"):
        Augmenter.from_spec("noise=lots")
    with pytest.raises(ValueError, match="shift"):
        Augmenter.from_spec("shift=-1")
