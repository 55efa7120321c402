"""Chapter-style scripts give identical output on the reference-backed and the native profile.

Each script in tests/compat_scripts/<profile>/ runs twice under ``python -m nnfast.compat``:
with ``--backend reference`` (the profile on nnfast.reference) and on the native backend.
All runs of a profile are started at once to keep the wall time low.
"""
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent / "compat_scripts"
SCRIPTS = {
    "book": ["gradient_check.py", "optimizer_compare.py", "train_extend.py", "notebook_cell.py",
             "train_convnet.py"],
    "course": ["gradient_check.py", "optimizer_compare.py", "train_multilayer.py",
               "notebook_cell.py"],
}
# train_convnet.py takes (n_train, epochs): keep it tiny here.
ARGS = {"train_convnet.py": ["100", "1"]}


def _launch(profile, script, backend, env=None):
    env = dict(os.environ if env is None else env, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    path = script if os.path.isabs(script) else HERE / profile / script
    cmd = [sys.executable, "-m", "nnfast.compat", "--backend", backend, profile,
           str(path), *ARGS.get(os.path.basename(script), [])]
    # Started from elsewhere: the runner must chdir to the script's directory itself.
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).parent, env=env)


@pytest.mark.parametrize("profile", sorted(SCRIPTS))
def test_scripts_print_the_same_on_both_backends(profile):
    runs = {(script, backend): _launch(profile, script, backend)
            for script in SCRIPTS[profile] for backend in ("reference", "native")}
    outputs = {}
    for key, proc in runs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{profile}/{key[0]} on {key[1]} failed:\n{err}"
        outputs[key] = out
    for script in SCRIPTS[profile]:
        ref, nat = outputs[(script, "reference")], outputs[(script, "native")]
        assert ref.strip(), f"{script} printed nothing"
        assert ref == nat, f"{profile}/{script}: outputs differ\n--- reference\n{ref}\n--- native\n{nat}"
        assert "large" not in ref, f"{profile}/{script}: a gradient check failed\n{ref}"


# -- a checkout of the book: its own dataset/ folder, the network off ---------------------------

CHECKOUT = HERE / "book_checkout"
CHECKOUT_SCRIPTS = ["ch05/gradient_check_mnist.py", "ch06/batch_norm_gradient_check_mnist.py",
                    "ch07/gradient_check_labels.py"]


def _write_book_pickle(path, n_train=6, n_test=4, seed=0):
    """dataset/mnist.pkl in the book's format: a dict of uint8 arrays from np.frombuffer,
    pickled with protocol -1 (what the book's dataset/mnist.py writes after its first run)."""
    rng = np.random.RandomState(seed)
    dataset = {}
    for key, n in (("train", n_train), ("test", n_test)):
        dataset[f"{key}_img"] = np.frombuffer(rng.randint(0, 256, n * 784).astype(np.uint8)
                                              .tobytes(), np.uint8).reshape(-1, 784)
        dataset[f"{key}_label"] = np.frombuffer(rng.randint(0, 10, n).astype(np.uint8)
                                                .tobytes(), np.uint8)
    with open(path, "wb") as f:
        pickle.dump(dataset, f, -1)


def _offline_env(tmp_path):
    """No network (every proxy a closed local port) and an empty nnfast data cache."""
    cache = tmp_path / "empty-cache"
    cache.mkdir()
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "all_proxy")}
    dead = "http://127.0.0.1:9"
    env.update(http_proxy=dead, https_proxy=dead, HTTP_PROXY=dead, HTTPS_PROXY=dead,
               NNFAST_DATA_DIR=str(cache))
    return env


def test_book_checkout_scripts_run_offline_on_both_backends(tmp_path):
    tree = tmp_path / "deep-learning-from-scratch"
    shutil.copytree(CHECKOUT, tree)
    _write_book_pickle(tree / "dataset" / "mnist.pkl")
    env = _offline_env(tmp_path)
    runs = {(script, backend): _launch("book", str(tree / script), backend, env)
            for script in CHECKOUT_SCRIPTS for backend in ("reference", "native")}
    outputs = {}
    for key, proc in runs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{key[0]} on {key[1]} failed:\n{err}"
        outputs[key] = out
    for script in CHECKOUT_SCRIPTS:
        ref, nat = outputs[(script, "reference")], outputs[(script, "native")]
        assert ref.strip() and "large" not in ref, f"{script}:\n{ref}"
        assert ref == nat, f"{script}: outputs differ\n--- reference\n{ref}\n--- native\n{nat}"
    assert "data: (6, 784) float32 (6, 10) float64 (4, 784)" in \
        outputs[("ch05/gradient_check_mnist.py", "reference")]
    assert "same as (1,) labels: True" in outputs[("ch07/gradient_check_labels.py", "native")]
    assert not (tmp_path / "empty-cache" / "mnist").exists()  # nothing downloaded or cached


def test_without_the_books_data_the_offline_checkout_fails_clearly(tmp_path):
    # the control for the test above: with no mnist.pkl the profile falls back to nnfast's
    # cache, which is empty, and the network is off
    tree = tmp_path / "checkout"
    shutil.copytree(CHECKOUT, tree)
    proc = _launch("book", str(tree / CHECKOUT_SCRIPTS[0]), "native", _offline_env(tmp_path))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "FileNotFoundError" in err and "could not be downloaded" in err
