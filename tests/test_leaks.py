"""Memory stays flat over repeated calls of every compiled entry point (a short version
of ``scripts/leakcheck.py``, which makes 10**5 calls each)."""
import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest

from nnfast import _dispatch

pytestmark = pytest.mark.skipif(not _dispatch.compiled(),
                                reason="the compiled extension is not in use")

CALLS = 800
LIMIT = 16 * 1024  # one leaked array per call would be >= CALLS * ~100 bytes


def _leakcheck():
    path = Path(__file__).parent.parent / "scripts" / "leakcheck.py"
    spec = importlib.util.spec_from_file_location("nnfast_leakcheck", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_entry_point_is_flat():
    report = io.StringIO()
    # RSS is reported, not judged: over a few hundred calls it is noise, and under
    # AddressSanitizer (scripts/sanitize.sh) freed memory is quarantined, so it grows
    failures = _leakcheck().run(CALLS, out=report, limit=LIMIT, rss_limit=None)
    assert not failures, report.getvalue()
    assert report.getvalue().count("\n") > 40  # every entry point was measured


def test_the_check_sees_a_leak():
    leakcheck, kept = _leakcheck(), []
    import tracemalloc

    tracemalloc.start()
    try:
        traced, _ = leakcheck.measure(lambda: kept.append(np.empty(0)), CALLS)
    finally:
        tracemalloc.stop()
    assert traced > LIMIT
