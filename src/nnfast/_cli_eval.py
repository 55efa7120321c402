"""``nnfast eval`` and ``nnfast predict``: a trained network, rebuilt from its run folder.

A run folder is what ``nnfast train`` writes: ``history.json`` (whose ``args`` say which
network was trained, on which data and split) and ``params.npz`` (or ``params.pkl``, the
toolkit's pickle, read only when there is no ``.npz``: unpickling runs code from the file).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any, List, NoReturn, Tuple

if TYPE_CHECKING:  # for the types only: NumPy is imported when a command runs
    import numpy as np
    import numpy.typing as npt

from .cli import _load_data, _make_net, _modules, _settings_namespace

#: Digit images as the networks take them: (1, 28, 28), 784 values flattened.
IMAGE_SHAPE = (1, 28, 28)


def _fail(command: str, message: str) -> NoReturn:
    raise SystemExit(f"nnfast {command}: {message}")


def load_run(command: str, folder: str, backend: str) -> Tuple[Any, argparse.Namespace]:
    """(network with the saved parameters, run settings) of the run folder ``folder``."""
    import numpy as np

    history = os.path.join(folder, "history.json")
    try:
        with open(history) as f:
            settings = json.load(f).get("args")
    except FileNotFoundError:
        _fail(command, f"{history} not found: --params takes the output folder of "
                       f"`nnfast train`")
    except (OSError, ValueError) as exc:
        _fail(command, f"cannot read {history}: {exc}")
    if not isinstance(settings, dict) or "net" not in settings:
        _fail(command, f"{history} does not record the run's settings ('args'): it was written "
                       f"by an older nnfast; train again to evaluate it")
    args = _settings_namespace(settings)
    nets, _, _ = _modules(backend)
    net = _make_net(nets, args.net, IMAGE_SHAPE, 10, np.dtype(args.dtype).type, args)
    for name in ("params.npz", "params.pkl"):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            try:
                net.load_params(path)
            except (OSError, ValueError) as exc:
                _fail(command, f"cannot load {path}: {exc}")
            return net, args
    _fail(command, f"{folder} holds neither params.npz nor params.pkl")


def _as_inputs(net: Any, args: argparse.Namespace, x: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``x`` (N, 1, 28, 28) float in [0, 1] shaped and typed for ``net``."""
    import numpy as np

    x = x.astype(np.dtype(args.dtype), copy=False)
    return x.reshape(len(x), -1) if args.net in ("mlp", "twolayer") else x


def confusion_matrix(true: npt.ArrayLike, pred: npt.ArrayLike,
                     classes: int = 10) -> npt.NDArray[np.int64]:
    """``m[i, j]``: how many samples of class i were predicted as j."""
    import numpy as np

    m = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(m, (np.asarray(true, dtype=np.int64), np.asarray(pred, dtype=np.int64)), 1)
    return m


def format_confusion(m: npt.NDArray[Any]) -> str:
    width = max(4, len(str(int(m.max()))) + 1)
    lines = [" " * 8 + "".join(f"{j:>{width}}" for j in range(len(m)))]
    for i, row in enumerate(m):
        lines.append(f"{i:>8}" + "".join(f"{int(v):>{width}}" for v in row))
    return "\n".join(lines)


def _predict_labels(net: Any, x: npt.NDArray[Any], batch: int = 100) -> npt.NDArray[Any]:
    import numpy as np

    out = [np.argmax(net.predict(x[i:i + batch]), axis=1) for i in range(0, len(x), batch)]
    return np.concatenate(out)


def eval(args: argparse.Namespace) -> int:  # noqa: A001 - the subcommand's name
    import numpy as np

    net, run = load_run("eval", args.params, args.backend)
    data = args.data or run.data
    _, (x_test, t_test) = _load_data(data, flatten=False, seed=run.seed,
                                     test_per_class=run.test_per_class)
    x = _as_inputs(net, run, x_test)
    true = np.asarray(t_test, dtype=np.int64)
    pred = _predict_labels(net, x)
    correct = int(np.sum(pred == true))
    print(f"nnfast eval: {args.params} ({run.net}, {run.dtype}) on the {data} test set "
          f"({len(true)} images)")
    print(f"accuracy: {correct / len(true):.4f} ({correct}/{len(true)})")
    print("confusion matrix (rows: true digit, columns: predicted):")
    print(format_confusion(confusion_matrix(true, pred)))
    if args.misclassified:
        wrong = np.flatnonzero(pred != true)
        if wrong.size == 0:
            print("no misclassified image: nothing drawn")
            return 0
        from nnfast.plotting import save_misclassified

        try:
            save_misclassified(x_test[wrong], true[wrong], pred[wrong], args.misclassified)
        except ImportError as exc:
            _fail("eval", str(exc))
        print(f"saved {args.misclassified} ({min(wrong.size, 64)} of {wrong.size} "
              f"misclassified images)")
    return 0


# --------------------------------------------------------------------------- predict

def _read_png(path: str, invert: str) -> npt.NDArray[Any]:
    """A PNG as one (1, 28, 28) float image in [0, 1], light digit on dark."""
    import numpy as np

    try:
        from matplotlib.image import imread
    except ImportError:
        _fail("predict", "reading PNG files needs matplotlib: pip install \"nnfast[examples]\" "
                         "(or give the image as a .npy array)")
    try:
        img = np.asarray(imread(path, format="png"), dtype=np.float64)
    except (OSError, ValueError, SyntaxError) as exc:
        _fail("predict", f"{path} is not a readable PNG image ({exc})")
    if img.dtype.kind != "f" or img.max() > 1.0:
        img = img / 255.0
    if img.ndim == 3:
        img = img[..., :3].mean(axis=2) if img.shape[2] >= 3 else img[..., 0]
    if img.ndim != 2 or min(img.shape) < 1:
        _fail("predict", f"{path}: expected a 2-D image, got shape {img.shape}")
    rows = (np.arange(28) * img.shape[0]) // 28
    cols = (np.arange(28) * img.shape[1]) // 28
    img = img[np.ix_(rows, cols)]
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]]).mean()
    if invert == "yes" or (invert == "auto" and border > 0.5):
        img = 1.0 - img
    return img.reshape(1, *IMAGE_SHAPE)


def _read_npy(path: str) -> npt.NDArray[Any]:
    """A .npy file as (N, 1, 28, 28) floats in [0, 1]."""
    import numpy as np

    try:
        arr: npt.NDArray[Any] = np.load(path, allow_pickle=False)  # allow_pickle=False: an array
    except (OSError, ValueError) as exc:
        _fail("predict", f"{path} is not a readable .npy array ({exc})")
    if arr.dtype.kind not in "uif" or arr.size == 0 or arr.size % 784:
        _fail("predict", f"{path}: expected images of 784 values (28x28) each, got dtype "
                         f"{arr.dtype} and shape {arr.shape}")
    if arr.shape[-1] != 784 and arr.shape[-2:] != (28, 28):
        _fail("predict", f"{path}: expected (784,), (28, 28) or a stack of them, got shape "
                         f"{arr.shape}")
    x = arr.reshape(-1, *IMAGE_SHAPE).astype(np.float64)
    if arr.dtype.kind in "ui":
        if x.min() < 0 or x.max() > 255:
            _fail("predict", f"{path}: integer pixels must be in 0..255, got "
                             f"{x.min():g}..{x.max():g}")
        x /= 255.0
    return x


def predict(args: argparse.Namespace) -> int:
    import numpy as np

    from nnfast.functions import softmax

    batches: List[Tuple[str, npt.NDArray[Any]]] = []
    for path in args.inputs:
        if not os.path.isfile(path):
            _fail("predict", f"input not found: {path}")
        kind = os.path.splitext(path)[1].lower()
        if kind == ".png":
            batches.append((path, _read_png(path, args.invert)))
        elif kind == ".npy":
            batches.append((path, _read_npy(path)))
        else:
            _fail("predict", f"{path}: inputs must be .png images or .npy arrays")
    net, run = load_run("predict", args.params, args.backend)
    k = min(args.top, 10)
    for path, x in batches:
        probs = softmax(np.asarray(net.predict(_as_inputs(net, run, x)), dtype=np.float64))
        for i, p in enumerate(probs):
            top = np.argsort(-p, kind="stable")[:k]
            name = path if len(probs) == 1 else f"{path}[{i}]"
            print(f"{name}: " + ", ".join(f"{int(c)} ({p[c]:.4f})" for c in top))
    sys.stdout.flush()
    return 0
