"""Machinery shared by the two profiles: backends, module assembly, original-only quirks.

A profile is built by a factory from a *backend*: a namespace holding the modules
``functions, gradient, util, layers, optimizer, nets, trainer`` of either the native API
(``nnfast.*``, compiled kernels) or the reference (``nnfast.reference.*``, plain NumPy).
The compat classes subclass the backend's classes and add only the originals' quirks, so
the same factory yields the fast profile and its reference-backed twin used by the tests.
"""
import importlib
import types

import numpy as np

BACKEND_MODULES = ("functions", "gradient", "util", "layers", "optimizer", "nets", "trainer")
BACKENDS = ("native", "reference")


def load_backend(name):
    """The backend namespace ``name`` ('native' or 'reference')."""
    if name not in BACKENDS:
        raise ValueError(f"backend must be 'native' or 'reference', got {name!r}")
    base = "nnfast" if name == "native" else "nnfast.reference"
    mods = {m: importlib.import_module(f"{base}.{m}") for m in BACKEND_MODULES}
    return types.SimpleNamespace(name=name, **mods)


def make_module(fullname, doc, namespace, public):
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
    module.__all__ = list(public)
    return module


def original_sigmoid(x):
    """``1 / (1 + exp(-x))`` evaluated exactly as the originals write it.

    nnfast's own sigmoid uses ``exp(x) / (1 + exp(x))`` for negative x (no overflow); the two
    differ in the last bit for about half of the negative inputs, so the profiles keep the
    originals' formula (and their overflow warning below x = -709) to print the same numbers.
    """
    return 1 / (1 + np.exp(-x))


def accuracy_full_batches(net, x, t, batch_size, predict):
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


def make_mnist_module(fullname):
    """``dataset.mnist`` / ``data.mnist``: ``load_mnist`` served by ``nnfast.datasets``.

    ``nnfast.datasets`` is looked up when ``load_mnist`` is called, not when the module is
    made, so installing a profile never loads or downloads data.
    """

    def load_mnist(normalize=True, flatten=True, one_hot_label=False):
        """Load MNIST as ``((x_train, t_train), (x_test, t_test))`` via ``nnfast.datasets``.

        ``normalize``: pixels as float32 in [0, 1] (else uint8 0..255); ``flatten``: images
        as 784-vectors (else (1, 28, 28)); ``one_hot_label``: labels as one-hot rows.
        """
        datasets = importlib.import_module("nnfast.datasets")
        return datasets.load_mnist(normalize=normalize, flatten=flatten,
                                   one_hot_label=one_hot_label)

    doc = ("MNIST loader of the original package, served from nnfast.datasets.load_mnist "
           "(same signature and return value).")
    return make_module(fullname, doc, {"load_mnist": load_mnist}, ["load_mnist"])
