"""Parameter files: the safe ``.npz`` format next to the reference's pickle.

``save_params``/``load_params`` choose the format by extension: ``.npz`` (NumPy zip,
loaded with ``allow_pickle=False``; exact names, shapes and dtypes required) or anything
else (the reference's pickle, unchanged). A refused file changes nothing.
"""
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from nnfast import nets as native_nets
from nnfast.reference import nets as ref_nets

NETS = {
    "TwoLayerNet": lambda m, dt: m.TwoLayerNet(6, 5, 3, dtype=dt),
    "MultiLayerNetExtend": lambda m, dt: m.MultiLayerNetExtend(
        6, [5, 4], 3, use_batchnorm=True, use_dropout=True, dtype=dt),
    "SimpleConvNet": lambda m, dt: m.SimpleConvNet(
        (1, 8, 8), {"filter_num": 3, "filter_size": 3, "pad": 0, "stride": 1}, 5, 3, dtype=dt),
}


def make(name, module=native_nets, dtype=np.float64, seed=0):
    np.random.seed(seed)
    return NETS[name](module, dtype)


def snapshot(net):
    return {k: (v, v.copy()) for k, v in net.params.items()}


def assert_unchanged(net, snap):
    assert net.params.keys() == snap.keys()
    for k, (arr, vals) in snap.items():
        assert net.params[k] is arr
        np.testing.assert_array_equal(arr, vals)
    for name, (key, attr) in net._slots.items():
        assert getattr(net.layers[key], attr) is net.params[name]


@pytest.mark.parametrize("name", NETS)
@pytest.mark.parametrize("suffix", [".npz", ".NPZ", ".pkl", ".params"])
@pytest.mark.parametrize("saver, loader", [(native_nets, native_nets), (ref_nets, native_nets),
                                           (native_nets, ref_nets)])
def test_round_trip_both_ways(tmp_path, name, suffix, saver, loader, dtype):
    a, b = make(name, saver, dtype, seed=1), make(name, loader, dtype, seed=2)
    path = tmp_path / f"p{suffix}"
    a.save_params(path if suffix == ".npz" else str(path))  # path-like or str
    b.load_params(path)
    for k in a.params:
        np.testing.assert_array_equal(b.params[k], a.params[k])
        assert b.params[k].dtype == np.dtype(dtype)
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8) if "Conv" in name else (2, 6))
    np.testing.assert_array_equal(b.predict(x.astype(dtype)), a.predict(x.astype(dtype)))
    # the layers use the loaded arrays
    for pname, (key, attr) in b._slots.items():
        assert getattr(b.layers[key], attr) is b.params[pname]
    assert sorted(os.listdir(tmp_path)) == [path.name]  # no temporary file left behind


def test_formats_on_disk(tmp_path):
    net = make("TwoLayerNet")
    net.save_params(tmp_path / "p.npz")
    net.save_params(str(tmp_path / "p.pkl"))
    with np.load(tmp_path / "p.npz", allow_pickle=False) as data:
        assert sorted(data.files) == sorted(net.params)
    with open(tmp_path / "p.pkl", "rb") as f:
        assert sorted(pickle.load(f)) == sorted(net.params)  # the reference's plain dict


def _write_npz(path, arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize("bad, message", [
    ("missing", "missing \\['W2'\\]"),
    ("unknown", "unknown \\['W9'\\]"),
    ("shape", "'W1' .* has shape \\(5, 6\\)"),
    ("dtype", "'b1' .* dtype float32; this network needs .* dtype float64"),
    ("object", "not a readable .npz file"),
    ("pickle", "not a readable .npz file"),
    ("garbage", "not a readable .npz file"),
    ("empty", "not a readable .npz file"),
])
def test_npz_mismatches_are_refused_and_change_nothing(tmp_path, bad, message):
    net = make("TwoLayerNet")
    arrays = {k: v.copy() for k, v in net.params.items()}
    path = tmp_path / "bad.npz"
    if bad == "missing":
        del arrays["W2"]
    elif bad == "unknown":
        arrays["W9"] = np.zeros(3)
    elif bad == "shape":
        arrays["W1"] = arrays["W1"].T.copy()
    elif bad == "dtype":
        arrays["b1"] = arrays["b1"].astype(np.float32)
    elif bad == "object":
        arrays["W1"] = np.array([None, 1], dtype=object)
    if bad == "pickle":
        with open(path, "wb") as f:
            pickle.dump(arrays, f)
    elif bad == "garbage":
        path.write_bytes(b"PK\x03\x04 this is not really a zip file")
    elif bad == "empty":
        path.write_bytes(b"")
    else:
        _write_npz(path, arrays)
    snap = snapshot(net)
    with pytest.raises(ValueError, match=f"load_params: .*{message}"):
        net.load_params(path)
    assert_unchanged(net, snap)


class _Payload:
    """Unpickling this runs code (creates a file): what a hostile pickle can do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_npz_loading_never_runs_pickled_code(tmp_path):
    marker = tmp_path / "code-ran"
    hostile = tmp_path / "hostile.npz"
    with open(hostile, "wb") as f:
        pickle.dump({"W1": _Payload(str(marker))}, f)
    # a pickle named .npz, and an npz holding a pickled object array
    _write_npz(tmp_path / "objects.npz", {"W1": np.array([_Payload(str(marker))], dtype=object)})
    net = make("TwoLayerNet")
    for path in (hostile, tmp_path / "objects.npz"):
        with pytest.raises(ValueError):
            net.load_params(path)
    assert not marker.exists()
    # the pickle format does run it: that is the documented risk
    hostile_pkl = tmp_path / "hostile.pkl"
    hostile.rename(hostile_pkl)
    with pytest.raises(ValueError):
        net.load_params(hostile_pkl)  # refused after unpickling: W1 is not an array...
    assert marker.exists()  # ...but the code had already run


def test_missing_file_and_unwritable_target(tmp_path):
    net = make("TwoLayerNet")
    with pytest.raises(FileNotFoundError):
        net.load_params(tmp_path / "nope.npz")
    with pytest.raises(FileNotFoundError):
        net.save_params(tmp_path / "no-such-dir" / "p.npz")
    assert os.listdir(tmp_path) == []


def test_save_overwrites_atomically(tmp_path):
    path = tmp_path / "p.npz"
    a, b = make("TwoLayerNet", seed=1), make("TwoLayerNet", seed=2)
    a.save_params(path)
    b.save_params(path)
    c = make("TwoLayerNet", seed=3)
    c.load_params(path)
    np.testing.assert_array_equal(c.params["W1"], b.params["W1"])
    assert os.listdir(tmp_path) == ["p.npz"]


# --------------------------------------------------------------------------- layer state

def _trained_bn_net(module, dtype=np.float64, seed=1):
    """A MultiLayerNetExtend (batch norm, dropout) after a few training forwards: its
    running statistics are far from the zeros a fresh network starts with."""
    net = make("MultiLayerNetExtend", module, dtype, seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        net.predict((3 + 2 * rng.standard_normal((8, 6))).astype(dtype), train_flg=True)
    return net


@pytest.mark.parametrize("saver, loader", [(native_nets, native_nets), (ref_nets, native_nets),
                                           (native_nets, ref_nets)])
def test_npz_keeps_the_batchnorm_running_statistics(tmp_path, saver, loader, dtype):
    a = _trained_bn_net(saver, dtype)
    path = tmp_path / "p.npz"
    a.save_params(path)
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == sorted([*a.params, "BatchNorm1.running_mean",
                                             "BatchNorm1.running_var", "BatchNorm2.running_mean",
                                             "BatchNorm2.running_var"])
    b = make("MultiLayerNetExtend", loader, dtype, seed=2)  # never run: no statistics yet
    b.load_params(path)
    for key in ("BatchNorm1", "BatchNorm2"):
        for attr in ("running_mean", "running_var"):
            np.testing.assert_array_equal(getattr(b.layers[key], attr),
                                          getattr(a.layers[key], attr))
    x = (3 + 2 * np.random.default_rng(5).standard_normal((4, 6))).astype(dtype)
    np.testing.assert_array_equal(b.predict(x), a.predict(x))  # test mode: the statistics
    np.testing.assert_array_equal(b.accuracy(x, np.array([0, 1, 2, 0])),
                                  a.accuracy(x, np.array([0, 1, 2, 0])))


def test_npz_without_state_resets_the_statistics(tmp_path):
    fresh = make("MultiLayerNetExtend", seed=3)
    fresh.save_params(tmp_path / "fresh.npz")  # never run: no statistics in the file
    with np.load(tmp_path / "fresh.npz", allow_pickle=False) as data:
        assert sorted(data.files) == sorted(fresh.params)
    net = _trained_bn_net(native_nets)
    net.load_params(tmp_path / "fresh.npz")
    assert net.layers["BatchNorm1"].running_mean is None
    assert net.layers["BatchNorm2"].running_var is None


@pytest.mark.parametrize("edit, message", [
    (lambda a: a.update({"BatchNorm7.running_mean": np.zeros(5)}),
     r"holds 'BatchNorm7.running_mean', which is no state of this network"),
    (lambda a: a.update({"BatchNorm1.gamma": np.zeros(5)}), r"which is no state"),
    (lambda a: a.update({"BatchNorm1.running_var": np.zeros(4)}),
     r"'BatchNorm1.running_var' .* has shape \(4,\) .* needs shape \(5,\)"),
    (lambda a: a.update({"BatchNorm2.running_mean": np.zeros(4, dtype=np.int64)}),
     r"dtype int64; this network needs shape \(4,\) and dtype float32 or float64"),
])
def test_npz_bad_state_is_refused_and_changes_nothing(tmp_path, edit, message):
    net = _trained_bn_net(native_nets)
    arrays = net.arrays()
    edit(arrays)
    _write_npz(tmp_path / "bad.npz", arrays)
    snap = snapshot(net)
    stats = {k: v.copy() for k, v in net.layer_state().items()}
    with pytest.raises(ValueError, match=f"load_params: .*{message}"):
        net.load_params(tmp_path / "bad.npz")
    assert_unchanged(net, snap)
    for name, value in net.layer_state().items():
        np.testing.assert_array_equal(value, stats[name])


def test_pickle_stays_the_toolkits_dict_and_says_what_it_leaves_out(tmp_path):
    net = _trained_bn_net(native_nets)
    with pytest.warns(UserWarning, match=r"pickle format, which holds the parameters only: "
                                         r"the batch-norm running statistics are not saved"):
        net.save_params(str(tmp_path / "p.pkl"))
    with open(tmp_path / "p.pkl", "rb") as f:
        assert sorted(pickle.load(f)) == sorted(net.params)
