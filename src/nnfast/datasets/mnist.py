"""MNIST from the standard IDX gz files, with the toolkit's ``load_mnist`` interface.

Files: ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz`` in ``<data dir>/mnist``, where the
data dir is the ``data_dir`` argument, else ``$NNFAST_DATA_DIR``, else
``$XDG_CACHE_HOME/nnfast`` (``~/.cache/nnfast``).  A missing file is downloaded from the first
mirror that answers and kept only if its MD5 matches; every file is checked against its MD5
before it is parsed, so a truncated or corrupt file is reported, never half-read.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import sys
import urllib.error
import urllib.request
import zlib
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

_PathLike = Union[str, "os.PathLike[str]"]
#: ``(x_train, t_train), (x_test, t_test)``, as every loader returns it.
Split = Tuple[Tuple[npt.NDArray[Any], npt.NDArray[Any]],
              Tuple[npt.NDArray[Any], npt.NDArray[Any]]]

__all__ = ["load_mnist", "mnist_dir", "data_home", "read_idx", "MNIST_FILES", "MIRRORS",
           "DATA_DIR_ENV", "original_data_dir", "read_original_pickle", "load_original_mnist"]

DATA_DIR_ENV = "NNFAST_DATA_DIR"

# key -> (file name, MD5 of the gz file as published).
MNIST_FILES = {
    "train_img": ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train_label": ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    "test_img": ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    "test_label": ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
}

# Tried in order; the original site no longer serves the files.
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

_DOWNLOAD_TIMEOUT = 30  # seconds per connection attempt
_IDX_UBYTE = 0x08
_IMG_SHAPE = (28, 28)


def data_home(data_dir: Optional[_PathLike] = None) -> str:
    """The nnfast data directory: ``data_dir``, else ``$NNFAST_DATA_DIR``, else the cache dir."""
    if data_dir is not None:
        return os.fspath(data_dir)
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return env
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "nnfast")


def mnist_dir(data_dir: Optional[_PathLike] = None) -> str:
    """Folder holding the four MNIST gz files."""
    return os.path.join(data_home(data_dir), "mnist")


def _md5(path: _PathLike) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _offline_message(folder: str, missing: Sequence[str], errors: Sequence[str]) -> str:
    names = "\n".join(f"  {name}" for name in missing)
    why = "; ".join(errors) if errors else "downloading is disabled (download=False)"
    return (
        f"load_mnist: MNIST file(s) missing from {folder}:\n{names}\n"
        f"and they could not be downloaded ({why}).\n"
        f"Copy the four MNIST files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        f"t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) into that folder, or point "
        f"${DATA_DIR_ENV} at a folder whose 'mnist' subfolder holds them.  Without a network, "
        f"the offline digits (nnfast.datasets.load_mnist_5k, `nnfast train --data digits5k`) "
        f"need no download."
    )


def _download(name: str, md5: str, dest: str) -> Optional[List[str]]:
    """Fetch ``name`` from the first mirror that serves it with the right MD5.

    Returns None on success, else a list of the reasons each mirror failed.  The file is written
    to ``dest + '.part'`` and renamed only once its checksum matches.
    """
    errors = []
    part = dest + ".part"
    for base in MIRRORS:
        url = base + name
        try:
            with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT) as response, \
                    open(part, "wb") as out:
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
            if os.path.exists(part):
                os.remove(part)
            continue
        got = _md5(part)
        if got != md5:
            os.remove(part)
            errors.append(f"{url}: checksum mismatch (MD5 {got}, expected {md5})")
            continue
        os.replace(part, dest)
        return None
    return errors


def _ensure_files(folder: str, download: bool) -> Dict[str, str]:
    paths = {key: os.path.join(folder, name) for key, (name, _) in MNIST_FILES.items()}
    missing = [MNIST_FILES[k][0] for k, p in paths.items() if not os.path.exists(p)]
    if not missing:
        return paths
    errors = []
    if download:
        os.makedirs(folder, exist_ok=True)
        for key, (name, md5) in MNIST_FILES.items():
            if name in missing:
                failed = _download(name, md5, paths[key])
                if failed:
                    errors.extend(failed)
        missing = [MNIST_FILES[k][0] for k, p in paths.items() if not os.path.exists(p)]
        if not missing:
            return paths
    raise FileNotFoundError(_offline_message(folder, missing, errors))


def _check_md5(path: str, expected: str) -> None:
    got = _md5(path)
    if got != expected:
        raise ValueError(
            f"load_mnist: {path} is corrupt or not the published MNIST file: its MD5 is {got}, "
            f"expected {expected}.  Delete it and run again to download it afresh, or copy a good "
            f"copy there."
        )


def read_idx(path: _PathLike) -> npt.NDArray[np.uint8]:
    """Read a gzip-compressed IDX file of unsigned bytes: an ndarray of uint8 with its shape.

    Raises ValueError naming the file when it is not gzip, is truncated, has a bad magic number,
    or holds more or fewer bytes than its header announces.
    """
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"read_idx: {path} is not a complete gzip file ({exc}); "
                         f"delete it and fetch it again") from None
    if len(raw) < 4:
        raise ValueError(f"read_idx: {path} is too short for an IDX header ({len(raw)} bytes)")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != _IDX_UBYTE or ndim < 1:
        raise ValueError(f"read_idx: {path} is not an IDX file of unsigned bytes "
                         f"(magic bytes {raw[:4].hex()})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"read_idx: {path} is truncated inside its header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header != expected:
        raise ValueError(f"read_idx: {path} announces shape {shape} ({expected} bytes of data) "
                         f"but holds {len(raw) - header}: the file is truncated or corrupt")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def _read_pair(img_path: str, label_path: str) -> Tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    images = read_idx(img_path)
    labels = read_idx(label_path)
    if images.ndim != 3 or images.shape[1:] != _IMG_SHAPE:
        raise ValueError(f"load_mnist: {img_path} must hold (N, 28, 28) images, "
                         f"got shape {images.shape}")
    return _check_labels(images.reshape(-1, 28 * 28), labels, img_path, label_path)


def _check_labels(images: npt.NDArray[Any], labels: npt.NDArray[Any], img_where: Any,
                  label_where: Any) -> Tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """(images, labels) after checking one label in 0..9 per image."""
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(f"load_mnist: {label_where} must hold one label per image of "
                         f"{img_where} ({images.shape[0]}), got shape {labels.shape}")
    if labels.size and labels.max() > 9:
        raise ValueError(f"load_mnist: {label_where} holds label {int(labels.max())}; "
                         f"MNIST labels are 0..9")
    return images, labels


def _one_hot(labels: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The toolkit's one-hot form: float64 (N, 10)."""
    out = np.zeros((labels.size, 10))
    out[np.arange(labels.size), labels] = 1
    return out


def format_digits(x: npt.NDArray[Any], t: npt.NDArray[Any], normalize: bool, flatten: bool,
                  one_hot_label: bool) -> Tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """The toolkit's conversions, shared with the offline set.

    ``x`` is (N, 784) uint8, ``t`` (N,) uint8: normalize -> float32 in [0, 1], else uint8;
    flatten=False -> (N, 1, 28, 28); one_hot_label -> float64 (N, 10), else the uint8 labels.
    """
    if normalize:
        x = x.astype(np.float32)
        x /= 255.0
    if not flatten:
        x = x.reshape(-1, 1, 28, 28)
    if one_hot_label:
        t = _one_hot(t)
    return x, t


def load_mnist(normalize: bool = True, flatten: bool = True, one_hot_label: bool = False, *,
               data_dir: Optional[_PathLike] = None, download: bool = True) -> Split:
    """MNIST as ``(x_train, t_train), (x_test, t_test)``, as the toolkit returns it.

    Images are (60000, 784) / (10000, 784), float32 in [0, 1] with ``normalize`` (uint8 0..255
    without), or (N, 1, 28, 28) with ``flatten=False``.  Labels are uint8 (N,), or float64
    (N, 10) one-hot with ``one_hot_label``.

    The files are read from :func:`mnist_dir` (``data_dir``, ``$NNFAST_DATA_DIR`` or the cache
    dir, then ``mnist/``); missing ones are downloaded when ``download`` is true.  Each file's MD5
    is checked before it is read.  Without a network and without the files:
    FileNotFoundError saying where to put them.
    """
    folder = mnist_dir(data_dir)
    paths = _ensure_files(folder, download)
    for key, (_, md5) in MNIST_FILES.items():
        _check_md5(paths[key], md5)
    x_train, t_train = _read_pair(paths["train_img"], paths["train_label"])
    x_test, t_test = _read_pair(paths["test_img"], paths["test_label"])
    train = format_digits(x_train, t_train, normalize, flatten, one_hot_label)
    test = format_digits(x_test, t_test, normalize, flatten, one_hot_label)
    return train, test


# --------------------------------------------------------------------------- the originals' folder
#
# The book's ``dataset/mnist.py`` (and the course's ``data/mnist.py``) keep MNIST in their own
# folder: the four gz files it downloads there and ``mnist.pkl``, a pickle of the dict
# ``{'train_img': (60000, 784) uint8, 'train_label': (60000,) uint8, 'test_img': ...,
# 'test_label': ...}`` it writes after the first run. The compatibility profiles read that
# folder first, so a checkout that has run once needs no download.

#: The pickle the originals write beside their ``mnist.py``.
ORIGINAL_PICKLE = "mnist.pkl"
_ORIGINAL_KEYS = ("train_img", "train_label", "test_img", "test_label")

# The only globals a pickle of NumPy arrays needs (module, name); anything else is refused,
# so reading the originals' pickle never runs code hidden in it.
_ARRAY_GLOBALS = {
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.numeric", "_frombuffer"), ("numpy.core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ARRAY_GLOBALS:
            raise pickle.UnpicklingError(f"it refers to {module}.{name}, which is not part of "
                                         f"a pickle of NumPy arrays")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            module = "numpy._core." + module[len("numpy.core."):]  # NumPy 1.x pickles
        return super().find_class(module, name)


def original_data_dir(package: str, path: Optional[Iterable[Any]] = None) -> Optional[str]:
    """The folder of the first ``<entry>/<package>/mnist.py`` on ``sys.path`` (or ``path``).

    ``package`` is ``'dataset'`` (the book) or ``'data'`` (the course). Entries are taken in
    order and relative ones against the current directory, as ``import`` takes them. None when
    no entry has such a file.
    """
    for entry in sys.path if path is None else path:
        if not isinstance(entry, (str, os.PathLike)):
            continue
        folder = os.path.join(os.fspath(entry) or os.curdir, package)
        if os.path.isfile(os.path.join(folder, "mnist.py")):
            return os.path.abspath(folder)
    return None


def read_original_pickle(path: _PathLike) -> Dict[str, npt.NDArray[Any]]:
    """The four arrays of the originals' ``mnist.pkl``, as a dict, checked.

    Only NumPy arrays are unpickled (any other object in the file is refused, so the file
    cannot run code). ValueError naming the file when it is not such a pickle, lacks a key,
    or holds images that are not (N, 784) uint8 or labels that do not match them.
    """
    try:
        with open(path, "rb") as f:
            data = _ArrayUnpickler(io.BytesIO(f.read())).load()
    except FileNotFoundError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            ImportError, IndexError, OSError) as exc:
        raise ValueError(f"load_mnist: {path} is not the original's MNIST pickle ({exc}); "
                         f"delete it to read the gz files or download them again") from None
    if not isinstance(data, dict) or not set(_ORIGINAL_KEYS) <= set(data):
        got = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"load_mnist: {path} must hold a dict with the keys "
                         f"{list(_ORIGINAL_KEYS)}, got {got}")
    out = {}
    for img_key, label_key in (("train_img", "train_label"), ("test_img", "test_label")):
        images, labels = data[img_key], data[label_key]
        for key, arr, ndim in ((img_key, images, 2), (label_key, labels, 1)):
            if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8 or arr.ndim != ndim \
                    or (ndim == 2 and arr.shape[1] != 28 * 28):
                want = "(N, 784) uint8 images" if ndim == 2 else "(N,) uint8 labels"
                got = (f"shape {arr.shape} dtype {arr.dtype}" if isinstance(arr, np.ndarray)
                       else type(arr).__name__)
                raise ValueError(f"load_mnist: {path}: {key!r} must be {want}, got {got}")
        _check_labels(images, labels, f"{path}[{img_key!r}]", f"{path}[{label_key!r}]")
        out[img_key], out[label_key] = images, labels
    return out


def load_original_mnist(package: str, normalize: bool = True, flatten: bool = True,
                        one_hot_label: bool = False, *,
                        path: Optional[Iterable[Any]] = None) -> Optional[Split]:
    """MNIST from the original package's own folder, or None when that folder has none.

    The folder is :func:`original_data_dir` (``package``: ``'dataset'`` for the book,
    ``'data'`` for the course). Its ``mnist.pkl`` is read if present (see
    :func:`read_original_pickle`), else its four IDX gz files if all are there (each checked
    by its gzip CRC and IDX header, not against the published MD5: the originals download
    without checking). Nothing is written there. Same return value as :func:`load_mnist`.
    """
    folder = original_data_dir(package, path)
    if folder is None:
        return None
    pkl = os.path.join(folder, ORIGINAL_PICKLE)
    if os.path.isfile(pkl):
        data = read_original_pickle(pkl)
        train = data["train_img"], data["train_label"]
        test = data["test_img"], data["test_label"]
    else:
        paths = {key: os.path.join(folder, name) for key, (name, _) in MNIST_FILES.items()}
        if not all(os.path.isfile(p) for p in paths.values()):
            return None
        train = _read_pair(paths["train_img"], paths["train_label"])
        test = _read_pair(paths["test_img"], paths["test_label"])
    return (format_digits(*train, normalize, flatten, one_hot_label),
            format_digits(*test, normalize, flatten, one_hot_label))
