"""Run code written for the book's or the course's ``common`` package on nnfast.

Two profiles reproduce the two ``common`` packages in circulation, module for module —
names, signatures, defaults, keyword spellings, attribute names, return types and quirks:

``book``    the textbook's ``common.functions, gradient, util, layers, optimizer,
            multi_layer_net, multi_layer_net_extend, trainer`` (+ the chapter networks
            ``two_layer_net``, ``simple_convnet``, ``deep_convnet``; ``dataset.mnist``)
``course``  the Japanese course's ``common.functions, layers, optimizer, trainer``
            (``data.mnist``)

Use one from a notebook or script without editing it::

    import nnfast.compat
    nnfast.compat.install("book")        # now `common` is nnfast's book profile
    from common.layers import *          # exactly the names the book's module exports
    from dataset.mnist import load_mnist # the book's data folder first, then nnfast's cache

or from the shell: ``python -m nnfast.compat book train_convnet.py [args...]``.

The profiles are importable as ``nnfast.compat.book`` / ``nnfast.compat.course`` too. Their
classes subclass nnfast's native classes (compiled kernels) and add only the originals'
quirks. In float64 they print the same numbers as the originals. Where the originals
silently upcast float32 to float64 (im2col, col2im, Convolution, Pooling, the running
statistics of BatchNormalization) nnfast keeps float32. Whatever the originals accept, the
profiles accept with the originals' value (labels of shape (N, 1) included); negative labels,
which the originals silently wrap, raise a clear error, and pooling with ``pad > 0`` works
(the originals crashed). ``dataset.mnist``/``data.mnist`` read the original's own data folder
(``mnist.pkl`` or the gz files beside its ``mnist.py`` on ``sys.path``) before nnfast's cache.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
from typing import Dict, Mapping, Optional, Sequence, Tuple

from . import _book, _course
from ._support import BACKENDS, load_backend

PROFILES = ("book", "course")
_FACTORIES = {"book": _book, "course": _course}
_BUILT: Dict[Tuple[str, str], "Profile"] = {}
_installed: Optional[Tuple["Profile", "_Finder"]] = None  # of the active install()


class Profile:
    """One profile built on one backend.

    ``name`` ('book'/'course'), ``backend`` ('native'/'reference'), ``package`` (the bare
    ``common`` package module), ``modules`` (``{'functions': module, ...}``: the ``common``
    submodules), ``extra`` (``{'dataset.mnist': module, 'simple_convnet': module, ...}``).
    """

    def __init__(self, name: str, backend: str, prefix: str) -> None:
        factory = _FACTORIES[name]
        self.name = name
        self.backend = backend
        self.prefix = prefix
        self.modules: Dict[str, types.ModuleType]
        self.extra: Dict[str, types.ModuleType]
        self.modules, self.extra = factory.build(load_backend(backend), prefix)
        self.chapter: Tuple[str, ...] = factory.CHAPTER
        self.package = _package("common", f"The {name}'s common package (nnfast.compat).",
                                self.modules)

    def __repr__(self) -> str:
        return f"<nnfast.compat profile {self.name!r} on the {self.backend} backend>"


def _package(name: str, doc: str, submodules: Mapping[str, types.ModuleType]) -> types.ModuleType:
    """A bare package module whose submodules appear as attributes on first access.

    The originals' ``common/__init__.py`` is empty, so ``from common import *`` gives only
    the submodules imported so far; attributes are filled in lazily to match.
    """
    package = types.ModuleType(name, doc)
    package.__path__ = []
    package.__package__ = name
    package.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)

    def __getattr__(attr: str) -> types.ModuleType:
        if attr in submodules:
            setattr(package, attr, submodules[attr])
            return submodules[attr]
        raise AttributeError(f"module {name!r} has no attribute {attr!r}")

    setattr(package, "__getattr__", __getattr__)  # the module's own (PEP 562)
    return package


def profile(name: str, backend: str = "native") -> Profile:
    """The profile ``name`` ('book' or 'course') built on ``backend`` ('native' or
    'reference'; the reference-backed twin exists for testing). Built once, then cached."""
    if name not in PROFILES:
        raise ValueError(f"profile must be 'book' or 'course', got {name!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be 'native' or 'reference', got {backend!r}")
    key = (name, backend)
    if key not in _BUILT:
        prefix = f"nnfast.compat.{name}" if backend == "native" else \
            f"nnfast.compat.reference_{name}"
        _BUILT[key] = Profile(name, backend, prefix)
    return _BUILT[key]


class _Loader(importlib.abc.Loader):
    def __init__(self, module: types.ModuleType) -> None:
        self.module = module

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return self.module

    def exec_module(self, module: types.ModuleType) -> None:
        pass


class _Finder(importlib.abc.MetaPathFinder):
    """Serves a profile's extra modules to ``import``.

    ``dataset.mnist``/``data.mnist`` are always served (nnfast's loader, which reads the
    original's data folder first). The chapter
    modules and the ``dataset``/``data`` package itself are served only when no such
    module or package is found on ``sys.path`` — a user's own file wins.
    """

    def __init__(self, prof: Profile) -> None:
        self.prof = prof
        self.fallback: Dict[str, types.ModuleType] = {}
        for full in prof.extra:
            if "." in full:
                parent, _, child = full.partition(".")
                self.fallback[parent] = _package(
                    parent, f"Stand-in for the {parent} package (nnfast.compat).",
                    {child: prof.extra[full]})
        self.fallback.update({sub: prof.extra[sub] for sub in prof.chapter})

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Optional[types.ModuleType] = None
                  ) -> Optional[importlib.machinery.ModuleSpec]:
        if fullname in self.prof.extra and "." in fullname:
            return importlib.machinery.ModuleSpec(fullname, _Loader(self.prof.extra[fullname]))
        if fullname in self.fallback:
            if importlib.machinery.PathFinder.find_spec(fullname, path) is not None:
                return None
            module = self.fallback[fullname]
            return importlib.machinery.ModuleSpec(fullname, _Loader(module),
                                                  is_package=hasattr(module, "__path__"))
        return None


def install(name: str = "book", backend: str = "native") -> Profile:
    """Make ``name``'s profile importable as ``common`` (and its submodules).

    Registers ``common`` and ``common.<module>`` in ``sys.modules``, and serves
    ``dataset.mnist`` (book) or ``data.mnist`` (course) from ``nnfast.datasets`` and the
    book's chapter modules (``simple_convnet`` ...) when the script has no such file.
    A previous install is undone first. Returns the :class:`Profile`.
    """
    global _installed
    prof = profile(name, backend)
    uninstall()
    sys.modules["common"] = prof.package
    for sub, module in prof.modules.items():
        sys.modules[f"common.{sub}"] = module
    finder = _Finder(prof)
    sys.meta_path.insert(0, finder)
    _installed = (prof, finder)
    return prof


def uninstall() -> None:
    """Undo :func:`install`: remove ``common``, the served modules and the import hook."""
    global _installed
    if _installed is None:
        return
    prof, finder = _installed
    _installed = None
    if finder in sys.meta_path:
        sys.meta_path.remove(finder)
    ours = {"common": prof.package, **{f"common.{sub}": m for sub, m in prof.modules.items()},
            **prof.extra, **finder.fallback}
    for key, module in ours.items():  # only the names install() and the hook bound
        if sys.modules.get(key) is module:
            del sys.modules[key]


def installed() -> Optional[Profile]:
    """The active :class:`Profile`, or None."""
    return None if _installed is None else _installed[0]


def __getattr__(attr: str) -> types.ModuleType:
    if attr in PROFILES:  # nnfast.compat.book / .course
        return importlib.import_module(f"{__name__}.{attr}")
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


__all__ = ["PROFILES", "Profile", "profile", "install", "uninstall", "installed"]
