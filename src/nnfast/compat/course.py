"""The course profile on nnfast's native backend: ``nnfast.compat.course.<module>``.

The same module objects become ``common.<module>`` after ``nnfast.compat.install("course")``.
See :mod:`nnfast.compat`.
"""
import sys as _sys

from . import profile as _profile

_PROFILE = _profile("course")
__path__: list[str] = []  # a package: its submodules are registered below
for _sub, _module in {**_PROFILE.modules, **_PROFILE.extra}.items():
    if "." not in _sub:  # dataset.mnist / data.mnist stay reachable via _PROFILE.extra
        _sys.modules[f"{__name__}.{_sub}"] = _module
        globals()[_sub] = _module
del _sub, _module
