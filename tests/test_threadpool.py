"""threadpoolctl sees and limits the kernels' pool; import nnfast reports what it set in
the environment and lets the user opt out (NNFAST_SET_ENV=0)."""
import json
import os
import subprocess
import sys

import pytest

from nnfast import _dispatch

pytest.importorskip("threadpoolctl", reason="threadpoolctl is in the test extra")
compiled = pytest.mark.skipif(not _dispatch.compiled(), reason="needs the compiled kernels")


def _run(code, **env):
    full = {k: v for k, v in os.environ.items()
            if k not in ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT", "NNFAST_SET_ENV")}
    full.update(env)
    out = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


LIMITS = """
import json
{first}
{second}
import nnfast.layers
from threadpoolctl import threadpool_info, threadpool_limits
nnfast.set_num_threads(2)
mine = [i for i in threadpool_info() if i["internal_api"] == "nnfast"]
with threadpool_limits(1, user_api="openmp"):
    inside = nnfast.get_num_threads()
    listed = [i["num_threads"] for i in threadpool_info() if i["internal_api"] == "nnfast"]
after = nnfast.get_num_threads()
with threadpool_limits(1):
    all_apis = nnfast.get_num_threads()
print(json.dumps({{"mine": [(i["user_api"], i["num_threads"]) for i in mine],
                  "inside": inside, "listed": listed, "after": after, "all": all_apis}}))
"""


@compiled
@pytest.mark.parametrize("order", ["threadpoolctl first", "nnfast first"])
def test_threadpool_limits_reaches_the_kernels(order):
    imports = ["import threadpoolctl", "import nnfast"]
    if order == "nnfast first":
        imports.reverse()
    res = _run(LIMITS.format(first=imports[0], second=imports[1]))
    assert res["mine"] == [["openmp", 2]]
    assert res["inside"] == 1 and res["listed"] == [1]
    assert res["after"] == 2
    assert res["all"] == 1


ENV = """
import json, os, nnfast
info = nnfast.build_info()["environment"]
print(json.dumps({"info": info, "env": {k: os.environ.get(k) for k in
                  ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT")}}))
"""


def test_environment_settings_are_reported():
    res = _run(ENV)
    assert res["env"] == {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "18"}
    assert res["info"]["set"] == res["env"] and res["info"]["opted_out"] is False


def test_user_values_win_and_are_not_reported_as_set():
    res = _run(ENV, OMP_WAIT_POLICY="ACTIVE")
    assert res["env"]["OMP_WAIT_POLICY"] == "ACTIVE"
    assert res["info"]["set"] == {"OPENBLAS_THREAD_TIMEOUT": "18"}


def test_opt_out_leaves_the_environment_alone():
    res = _run(ENV, NNFAST_SET_ENV="0")
    assert res["env"] == {"OMP_WAIT_POLICY": None, "OPENBLAS_THREAD_TIMEOUT": None}
    assert res["info"]["set"] == {} and res["info"]["opted_out"] is True


def test_build_info_says_how_the_kernels_run_in_parallel():
    import nnfast
    info = nnfast.build_info()
    assert info["parallel"] == ("OpenMP" if info["openmp"] else
                                "single-threaded (built without OpenMP)" if info["compiled"]
                                else "single-threaded (NumPy reference)")
