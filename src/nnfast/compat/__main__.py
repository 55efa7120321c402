"""``python -m nnfast.compat {book,course} script.py [args...]``

Runs an unmodified script written for the book's or the course's ``common`` package on
nnfast: installs the profile (see :func:`nnfast.compat.install`), then runs the script as
``python script.py args...`` would — from the script's own directory (current directory and
``sys.path[0]``), with ``sys.argv = ['script.py', *args]`` and ``__name__ == '__main__'``.
The exit status is the script's. ``--backend reference`` runs the same profile on the
plain-NumPy reference (for comparisons and timing).
"""
import argparse
import os
import runpy
import sys
from typing import Optional, Sequence

from . import PROFILES, install


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nnfast.compat",
        description="Run a script written for the book's or the course's `common` package "
                    "on nnfast.")
    parser.add_argument("--backend", choices=("native", "reference"), default="native",
                        help="kernels behind the profile (default: native, compiled)")
    parser.add_argument("profile", choices=PROFILES)
    parser.add_argument("script", help="the script to run")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the script's arguments")
    ns = parser.parse_args(argv)

    path = os.path.abspath(ns.script)
    if not os.path.isfile(path):
        parser.error(f"script not found: {ns.script}")
    directory = os.path.dirname(path)

    install(ns.profile, ns.backend)
    os.chdir(directory)
    sys.path[0] = directory  # as python script.py: the script directory, not the cwd
    sys.argv = [ns.script, *ns.args]
    runpy.run_path(path, run_name="__main__")  # SystemExit from the script propagates
    return 0


if __name__ == "__main__":
    sys.exit(main())
