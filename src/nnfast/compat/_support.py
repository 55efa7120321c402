"""Machinery shared by the two profiles: backends, module assembly, original-only quirks.

A profile is built by a factory from a *backend*: a namespace holding the modules
``functions, gradient, util, layers, optimizer, nets, trainer`` of either the native API
(``nnfast.*``, compiled kernels) or the reference (``nnfast.reference.*``, plain NumPy).
The compat classes subclass the backend's classes and add only the originals' quirks, so
the same factory yields the fast profile and its reference-backed twin used by the tests.
"""
from __future__ import annotations

import importlib
import types
from typing import Any, Callable, Mapping, Sequence, Tuple, cast

import numpy as np
import numpy.typing as npt

from .._checks import as_float_array, check_ndim

BACKEND_MODULES = ("functions", "gradient", "util", "layers", "optimizer", "nets", "trainer")
BACKENDS = ("native", "reference")

#: A backend: ``types.SimpleNamespace(name=..., functions=<module>, ...)``. The factories
#: subclass its classes, chosen at run time, so they are reached through Any.
Backend = types.SimpleNamespace


def load_backend(name: str) -> Backend:
    """The backend namespace ``name`` ('native' or 'reference')."""
    if name not in BACKENDS:
        raise ValueError(f"backend must be 'native' or 'reference', got {name!r}")
    base = "nnfast" if name == "native" else "nnfast.reference"
    mods = {m: importlib.import_module(f"{base}.{m}") for m in BACKEND_MODULES}
    return types.SimpleNamespace(name=name, **mods)


def make_module(fullname: str, doc: str, namespace: Mapping[str, Any],
                public: Sequence[str]) -> types.ModuleType:
    """A module object named ``fullname`` holding ``namespace``.

    ``public`` is the list of names the original module exposes to ``from m import *``
    (the originals have no ``__all__``, so that is every public top-level name, imported
    modules such as ``np`` included); it becomes ``__all__``. Functions and classes made by
    the factories are renamed into the module so that repr and pickle see module-level names.
    """
    module = types.ModuleType(fullname, doc)
    for key, value in namespace.items():
        if (isinstance(value, (type, types.FunctionType))
                and "<locals>" in value.__qualname__):
            value.__module__ = fullname
            value.__qualname__ = value.__name__
        setattr(module, key, value)
    missing = [name for name in public if not hasattr(module, name)]
    if missing:  # a factory bug, not a user error
        raise RuntimeError(f"{fullname}: public names without a value: {missing}")
    setattr(module, "__all__", list(public))
    return module


def original_sigmoid(x: Any) -> Any:
    """``1 / (1 + exp(-x))`` evaluated exactly as the originals write it.

    nnfast's own sigmoid uses ``exp(x) / (1 + exp(x))`` for negative x (no overflow); the two
    differ in the last bit for about half of the negative inputs, so the profiles keep the
    originals' formula (and their overflow warning below x = -709) to print the same numbers.
    """
    return 1 / (1 + np.exp(-x))


# -- teachers of the shapes the originals take ------------------------------------------------
#
# The originals index ``y[np.arange(N), t]``, so any integer ``t`` that broadcasts against
# ``(N,)`` works there (the book's ch07/gradient_check.py passes labels of shape (1, 1)), and
# their ``SoftmaxWithLoss.backward`` takes the batch size from ``t.shape[0]``. The backends take
# labels (N,) and one-hot (N, C); the profiles route every other teacher the originals accept
# through the originals' arithmetic below. Errors stay where the originals fail too, plus the
# negative labels SPEC refuses (the originals silently wrap them).

#: Added inside the log of the cross-entropy, as the originals.
CE_EPS = 1e-7


def backend_takes_teacher(t: npt.ArrayLike, y: npt.ArrayLike) -> bool:
    """Whether the backends' loss functions take the teacher ``t`` for ``y`` as the originals do.

    That is labels ``(N,)`` or one-hot ``(N, C)`` for a 2-D ``y``, and a single label for a 1-D
    ``y``. A one-hot teacher of a 1-D ``y`` is left to the originals' arithmetic: their backward
    then divides by ``t.shape[0]`` (the number of classes). Anything the backends refuse for
    another reason (a 3-D ``y``, a bad dtype) also answers True, so their error is raised.
    """
    y, t = np.asarray(y), np.asarray(t)
    if y.ndim == 1:
        return t.size == 1 and y.size != 1
    if y.ndim != 2:
        return True
    n, c = y.shape
    return t.shape == ((n, c) if t.size == n * c else (n,))


def _label_index(t: npt.NDArray[Any], rows: int, shape: Tuple[int, ...], where: str,
                 name: str) -> npt.NDArray[Any]:
    """``t`` validated as the column index of ``y[np.arange(rows), t]`` for a ``y`` of ``shape``."""
    n, c = shape
    if t.dtype.kind not in "iu":
        raise TypeError(f"{where}: {name} must hold integer class labels (or be one-hot), got "
                        f"dtype {t.dtype} and shape {tuple(t.shape)}")
    try:
        np.broadcast_shapes((rows,), t.shape)
    except ValueError:
        raise ValueError(f"{where}: labels {name} of shape {tuple(t.shape)} do not broadcast "
                         f"against the batch of {rows} rows (shape ({rows},))") from None
    if rows > n:
        raise ValueError(f"{where}: {name} has {rows} rows (its first axis) but the scores have "
                         f"only {n}")
    if t.size:
        lo, hi = t.min(), t.max()
        if lo < 0 or hi >= c:
            raise ValueError(f"{where}: labels in {name} must be in [0, {c}), "
                             f"got {lo if lo < 0 else hi}")
    return t


def _dense_teacher(t: npt.NDArray[Any], y: npt.NDArray[Any], where: str,
                   name: str) -> npt.NDArray[Any]:
    if t.dtype.kind not in "biuf":
        raise TypeError(f"{where}: one-hot {name} must be numeric, got dtype {t.dtype}")
    return t.astype(y.dtype) if t.dtype.kind != "f" else t  # exact 0/1: keep y's dtype


def original_cross_entropy(t: Any, y: npt.ArrayLike, where: str = "cross_entropy_error",
                           name: str = "t") -> np.floating[Any]:
    """The originals' ``cross_entropy_error`` for any teacher they accept.

    A 1-D ``y`` is one sample; a teacher with ``t.size == y.size`` is one-hot (reduced by
    argmax over axis 1); the loss is ``-sum(log(y[np.arange(N), t] + 1e-7)) / N`` with the
    labels broadcast against ``(N,)``, as the originals compute it.
    """
    y = as_float_array(y, where, "y")
    check_ndim(y, (1, 2), where, "y", "(N, C) or (C,)")
    t = np.asarray(t)
    if y.ndim == 1:
        t = t.reshape(1, t.size)
        y = y.reshape(1, y.size)
    if t.size == y.size:
        if t.ndim < 2:
            raise ValueError(f"{where}: one-hot {name} must be 2-D (N, C), got shape "
                             f"{tuple(t.shape)}")
        t = _dense_teacher(t, y, where, name).argmax(axis=1)
    n = y.shape[0]
    labels = _label_index(t, n, y.shape, where, name)
    loss = -np.sum(np.log(y[np.arange(n), labels] + CE_EPS)) / n
    return y.dtype.type(loss)


def original_softmax_loss_grad(t: Any, y: npt.ArrayLike,
                               where: str = "SoftmaxWithLoss.backward",
                               name: str = "t") -> npt.NDArray[np.floating[Any]]:
    """The originals' ``SoftmaxWithLoss.backward`` (and the course's ``d_softmax_with_loss``).

    The batch size is ``t.shape[0]``; one-hot (``t.size == y.size``): ``(y - t) / batch``
    (NumPy broadcasting, as the originals); labels: ``y`` with 1 subtracted at
    ``[np.arange(batch), t]``, divided by ``batch``.
    """
    y = as_float_array(y, where, "y")
    t = np.asarray(t)
    if t.ndim == 0:
        raise ValueError(f"{where}: {name} must have a batch axis (the originals read "
                         f"{name}.shape[0]), got a 0-d teacher")
    batch = t.shape[0]
    if t.size == y.size:
        t = _dense_teacher(t, y, where, name)
        try:
            return (y - t) / batch
        except ValueError:
            raise ValueError(f"{where}: one-hot {name} of shape {tuple(t.shape)} does not "
                             f"broadcast against y of shape {tuple(y.shape)}") from None
    if y.ndim != 2:
        raise ValueError(f"{where}: labels {name} need 2-D scores (N, C), got y of shape "
                         f"{tuple(y.shape)}")
    labels = _label_index(t, batch, y.shape, where, name)
    dx = y.copy()
    dx[np.arange(batch), labels] -= 1
    return dx / batch


class OriginalTeacherShapes:
    """Mix-in for the profiles' ``SoftmaxWithLoss``: every teacher shape the originals take.

    Teachers the backend takes (labels (N,), one-hot (N, C)) run on its layer; any other
    one the originals accept is computed with the originals' arithmetic, on the backend's
    softmax. ``_softmax`` is the backend's softmax, set by the factory.
    """

    _softmax: Any = None  # the backend's softmax (a staticmethod), set by the factory
    _teacher_name: str
    y: Any
    t: Any
    loss: Any

    def forward(self, x, t):
        # type: (npt.ArrayLike, npt.ArrayLike) -> Any
        if backend_takes_teacher(t, x):
            return cast(Any, super()).forward(x, t)  # the backend's layer, after this mix-in
        where = "SoftmaxWithLoss.forward"
        x = as_float_array(x, where, "x")
        check_ndim(x, (1, 2), where, "x", "(N, C) or (C,)")
        y = type(self)._softmax(x)
        loss = original_cross_entropy(t, y, where, self._teacher_name)
        self.y, self.t, self.loss = y, np.asarray(t), loss
        return loss

    def backward(self, dout=1):
        # type: (Any) -> Any
        if self.y is None or backend_takes_teacher(self.t, self.y):
            return cast(Any, super()).backward(dout)
        return original_softmax_loss_grad(self.t, self.y, "SoftmaxWithLoss.backward",
                                          self._teacher_name)


def accuracy_full_batches(net: Any, x: npt.NDArray[Any], t: npt.NDArray[Any], batch_size: int,
                          predict: Callable[[npt.NDArray[Any]], Any]) -> float:
    """The convnets' ``accuracy``: only whole batches are scored, yet it divides by N.

    ``int(N / batch_size)`` batches are evaluated; a final partial batch is skipped (the
    originals' behaviour, kept so that printed accuracies match). ``predict(xb)`` runs the
    network in inference mode.
    """
    if t.ndim != 1:
        t = np.argmax(t, axis=1)
    acc = 0.0
    for i in range(int(x.shape[0] / batch_size)):
        lo, hi = i * batch_size, (i + 1) * batch_size
        y = predict(x[lo:hi])
        acc += np.sum(np.argmax(y, axis=1) == t[lo:hi])
    return acc / x.shape[0]


def make_mnist_module(fullname: str, package: str) -> types.ModuleType:
    """``dataset.mnist`` / ``data.mnist``: the original's ``load_mnist``, on nnfast's readers.

    ``package`` ('dataset' for the book, 'data' for the course) names the original's data
    package: its folder (beside the ``<package>/mnist.py`` found on ``sys.path``) is read
    first, then nnfast's cache (downloading there when online). ``nnfast.datasets`` is looked
    up when ``load_mnist`` is called, so installing a profile never loads or downloads data.
    """

    def load_mnist(normalize=True, flatten=True, one_hot_label=False):
        # type: (bool, bool, bool) -> Any
        """Load MNIST as ``((x_train, t_train), (x_test, t_test))``.

        Read from the original's own folder (``mnist.pkl``, else the four gz files beside
        the ``mnist.py`` of the original's data package on ``sys.path``), else from
        ``nnfast.datasets.load_mnist``'s cache (downloaded when online). ``normalize``:
        pixels as float32 in [0, 1] (else uint8 0..255); ``flatten``: images as 784-vectors
        (else (1, 28, 28)); ``one_hot_label``: labels as float64 one-hot rows.
        """
        datasets = importlib.import_module("nnfast.datasets")
        found = datasets.load_original_mnist(package, normalize=normalize, flatten=flatten,
                                             one_hot_label=one_hot_label)
        if found is not None:
            return found
        return datasets.load_mnist(normalize=normalize, flatten=flatten,
                                   one_hot_label=one_hot_label)

    doc = (f"MNIST loader of the original package: the original's own {package}/ folder "
           f"first, then nnfast.datasets.load_mnist (same signature and return value).")
    return make_module(fullname, doc, {"load_mnist": load_mnist}, ["load_mnist"])
