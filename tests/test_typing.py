"""Typing: the stub of the compiled module is up to date, and mypy --strict passes on the
typed surface: the files listed under [tool.mypy] in pyproject.toml, i.e. nnfast.ops,
nnfast._threads, the package's __init__, the _kernels stub, the public modules (functions,
layers, nets, optimizer, trainer, util, gradient, datasets) and the reference package they
inherit from (nnfast.reference: functions, util, layers, optimizer, nets, gradient, trainer),
the helpers _checks, _npz and _blas, the plotting module, the command line (cli, _cli_eval,
__main__), the compat profiles (nnfast.compat: the package, its __main__, _support, the
_book/_course factories and the book/course modules), the benchmarks (nnfast.bench:
workloads, timing, report, roofline, run), nnfast.distributed (its communicators typed by
mpi4py's stubs) and the NumPy autograd example. Not checked: _dispatch and _fallback (reached
through their annotated functions) and search (being annotated separately; calls into it
return Any). The array-arithmetic modules are checked with warn_return_any off, the compat
factories with subclassing Any allowed (their bases are chosen at run time; see the
overrides in pyproject.toml)."""
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_kernels_stub_matches_the_pyx():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_kernels_pyi.py"),
                           "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_package_is_marked_typed():
    import nnfast
    pkg = pathlib.Path(nnfast.__file__).parent
    assert (pkg / "py.typed").exists()


def test_mypy_strict_is_clean():
    pytest.importorskip("mypy", reason="mypy is in the test extra")
    proc = subprocess.run([sys.executable, "-m", "mypy", "--config-file",
                           str(ROOT / "pyproject.toml"), "--no-incremental"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
