"""Chapter-style scripts give identical output on the reference-backed and the native profile.

Each script in tests/compat_scripts/<profile>/ runs twice under ``python -m nnfast.compat``:
with ``--backend reference`` (the profile on nnfast.reference) and on the native backend.
All runs of a profile are started at once to keep the wall time low.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent / "compat_scripts"
SCRIPTS = {
    "book": ["gradient_check.py", "optimizer_compare.py", "train_extend.py", "notebook_cell.py",
             "train_convnet.py"],
    "course": ["gradient_check.py", "optimizer_compare.py", "train_multilayer.py",
               "notebook_cell.py"],
}
# train_convnet.py takes (n_train, epochs): keep it tiny here.
ARGS = {"train_convnet.py": ["100", "1"]}


def _launch(profile, script, backend):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "nnfast.compat", "--backend", backend, profile,
           str(HERE / profile / script), *ARGS.get(script, [])]
    # Started from elsewhere: the runner must chdir to the script's directory itself.
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).parent, env=env)


@pytest.mark.parametrize("profile", sorted(SCRIPTS))
def test_scripts_print_the_same_on_both_backends(profile):
    runs = {(script, backend): _launch(profile, script, backend)
            for script in SCRIPTS[profile] for backend in ("reference", "native")}
    outputs = {}
    for key, proc in runs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{profile}/{key[0]} on {key[1]} failed:\n{err}"
        outputs[key] = out
    for script in SCRIPTS[profile]:
        ref, nat = outputs[(script, "reference")], outputs[(script, "native")]
        assert ref.strip(), f"{script} printed nothing"
        assert ref == nat, f"{profile}/{script}: outputs differ\n--- reference\n{ref}\n--- native\n{nat}"
        assert "large" not in ref, f"{profile}/{script}: a gradient check failed\n{ref}"
