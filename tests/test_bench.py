"""`nnfast bench` and the benchmark suite: the workload registry, the timing loop's interleaving,
the ratios and the table, the JSON and the chart, the command end to end, and a smoke run of
benchmarks/ (every pytest-benchmark body once). No assertion here depends on a time."""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from nnfast import cli
from nnfast.bench import report, timing, workloads
from nnfast.bench.workloads import WORKLOADS, Workload, conv_flops, select
from test_trainer_extras import _png_size  # tests/ is on sys.path (as for test_trainer)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
HAVE_PYTEST_BENCHMARK = importlib.util.find_spec("pytest_benchmark") is not None


# --------------------------------------------------------------------------- registry

def test_suite_is_the_fixed_list():
    assert [w.name for w in select(suite=True)] == [
        "conv_simple", "conv_deep2", "conv_deep4", "maxpool_simple", "affine_simple",
        "softmax_xent_10", "softmax_xent_1000", "batchnorm_16x28x28", "optim_adam",
        "train_simpleconv", "train_deepconv", "train_mlp_bn"]


def test_select_filters():
    assert [w.name for w in select(only=["conv_deep"], kind="conv", long=False)] == [
        "conv_deep2", "conv_deep4"]
    assert [w.name for w in select(only=["conv_deep*_fwd"])] == [f"conv_deep{i}_fwd"
                                                                 for i in range(1, 7)]
    assert {w.name for w in select(only=["conv_deep?"])} == {f"conv_deep{i}"
                                                             for i in range(1, 7)}
    assert [w.name for w in select(only=["*_simple"], kind="maxpool")] == ["maxpool_simple"]
    # an exact name is not also a prefix of the longer ones
    assert [w.name for w in select(only=["softmax_xent_10"])] == ["softmax_xent_10"]
    assert [w.name for w in select(only=["softmax"])] == ["softmax_xent_10",
                                                          "softmax_xent_1000",
                                                          "softmax_xent_1000x10"]
    assert [w.name for w in select(only=["softmax_xent_1000"])] == ["softmax_xent_1000"]
    assert all(not w.long for w in select(long=False))
    assert select(only=["no_such_workload"]) == []


def test_flop_counts():
    # SimpleConvNet's conv: 24x24 outputs, 25 taps, 30 filters; 3 GEMMs with dx, 2 without.
    assert conv_flops((100, 1, 28, 28), (30, 1, 5, 5)) == 3 * 2 * 100 * 576 * 25 * 30
    assert conv_flops((100, 1, 28, 28), (30, 1, 5, 5), dx=False) == 2 * 2 * 100 * 576 * 25 * 30
    # pad 2 on 14x14 with 3x3 filters: 16x16 outputs
    assert conv_flops((2, 32, 14, 14), (32, 32, 3, 3), 1, 2) == 3 * 2 * 2 * 256 * 288 * 32
    simple = 2 * 2 * 100 * 576 * 25 * 30 + 3 * 2 * 100 * 4320 * 100 + 3 * 2 * 100 * 100 * 10
    assert WORKLOADS["train_simpleconv"].flops == simple
    mlp = 2 * 2 * 100 * 784 * 100 + 4 * 3 * 2 * 100 * 100 * 100 + 3 * 2 * 100 * 100 * 10
    assert WORKLOADS["train_mlp_bn"].flops == mlp
    assert WORKLOADS["maxpool_simple"].flops is None  # not GEMM-bound: no GFLOP/s


def test_forward_only_conv_workloads():
    """conv_deepN_fwd: conv_deepN's shapes, the FLOPs of its one product, `--all` only."""
    for i in range(1, 7):
        both, fwd = WORKLOADS[f"conv_deep{i}"], WORKLOADS[f"conv_deep{i}_fwd"]
        assert (fwd.kind, fwd.shape, fwd.suite) == ("conv_fwd", both.shape, False)
        assert 3 * fwd.flops == both.flops
    assert WORKLOADS["conv_deep4_fwd"].flops == 2 * 100 * 16 * 16 * 32 * 9 * 32
    impls = workloads.available_impls()
    out = {impl: WORKLOADS["conv_deep5_fwd"].build(impl, np.float64)() for impl in impls}
    for impl in impls:
        got = out[impl].numpy() if impl == "torch" else out[impl]
        assert got.shape == (100, 64, 8, 8)
        np.testing.assert_allclose(got, out["reference"], rtol=1e-10, atol=1e-12)
    if "torch" in impls:
        assert not out["torch"].requires_grad  # timed under torch.no_grad()


MEMORY_KINDS = ("maxpool", "avgpool", "softmax_xent", "batchnorm", "optimizer", "dropout",
                "relu", "sigmoid")
NEW_ROWS = ("relu_16x28x28", "sigmoid_16x28x28", "dropout_16x28x28", "softmax_xent_1000x10",
            "batchnorm_spatial_16x28x28", "train_simpleconv_mixed")


def test_memory_bound_rows_count_their_bytes():
    for w in WORKLOADS.values():
        assert w.memory_bound == (w.kind in MEMORY_KINDS), w.name
        if w.memory_bound:
            labels = 8 * int(w.shape.split("x")[0]) if w.kind == "softmax_xent" else 0
            assert w.bytes(np.float64) - labels == 2 * (w.bytes(np.float32) - labels), w.name
        else:
            assert w.bytes(np.float32) is None
    n = 100 * 16 * 28 * 28
    # x, out, dout, dx (+ the vectors: gamma, beta, running mean and var read; the new
    # running mean and var, dgamma, dbeta written)
    assert WORKLOADS["relu_16x28x28"].bytes(np.float32) == 4 * n * 4
    assert WORKLOADS["dropout_16x28x28"].bytes(np.float64) == 4 * n * 8
    assert WORKLOADS["batchnorm_16x28x28"].bytes(np.float32) == (4 * n + 8 * 16 * 784) * 4
    assert WORKLOADS["batchnorm_spatial_16x28x28"].bytes(np.float32) == (4 * n + 8 * 16) * 4
    # x and dx (n, c), the int64 labels, the loss
    assert WORKLOADS["softmax_xent_1000x10"].bytes(np.float32) == (2 * 10000 + 1) * 4 + 8000
    # x read, out written (forward); dout read, dx written (backward)
    assert WORKLOADS["maxpool_simple"].bytes(np.float32) == 2 * 4 * 100 * 30 * (576 + 144)
    params = sum(int(np.prod(s)) for s in workloads.SIMPLECONV_PARAMS.values())
    assert WORKLOADS["optim_adam"].bytes(np.float32) == 7 * params * 4  # p g m v; p m v
    assert WORKLOADS["optim_sgd"].bytes(np.float64) == 3 * params * 8


def test_new_rows_are_in_all_only():
    suite = {w.name for w in select(suite=True)}
    everything = {w.name for w in select(suite=None)}
    for name in NEW_ROWS:
        assert name in everything and name not in suite
    assert WORKLOADS["softmax_xent_1000x10"].shape == "1000x10"


@pytest.mark.parametrize("name", [n for n in NEW_ROWS if n != "train_simpleconv_mixed"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_new_op_rows_agree(name, dtype):
    """Each new op row builds and runs for every implementation; nnfast's and the
    reference's results agree, torch's have the same shape (dropout: the same zeros)."""
    w = WORKLOADS[name]
    out = {impl: w.build(impl, dtype)() for impl in workloads.available_impls()}
    got = {impl: (v.detach().numpy() if impl == "torch" else v) for impl, v in out.items()}
    for impl, v in got.items():
        assert v.shape == got["nnfast"].shape and v.dtype == dtype, impl
    if w.kind == "dropout":
        return  # different random masks
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(got["nnfast"], got["reference"], rtol=rtol, atol=rtol)
    if "torch" in got and w.kind != "softmax_xent":  # torch averages over the batch too
        np.testing.assert_allclose(got["torch"], got["nnfast"], rtol=1e2 * rtol, atol=rtol)


def test_mixed_dtypes_row():
    """train_simpleconv_mixed: float64 parameters fed float32 images, float64 only."""
    w = WORKLOADS["train_simpleconv_mixed"]
    assert w.dtypes == (np.float64,) and w.runs_in(np.float64) and not w.runs_in(np.float32)
    assert w.flops == WORKLOADS["train_simpleconv"].flops
    with pytest.raises(ValueError, match="only meaningful in float64"):
        w.build("nnfast", np.float32)
    for impl in workloads.available_impls():
        w.build(impl, np.float64)()
    # its kind is its own, so benchmarks/' train-step grid (float32 too) does not take it
    assert w.kind not in ("train_step",)


def test_copy_roof():
    budget = timing.Budget(rounds=2, min_sample_s=0.0)
    roof = timing.copy_roof(np.float32, 1, budget, mib=2)
    assert roof["kernel"] == "nnfast._kernels.scale"
    assert roof["bytes"] == 2 * 2 * 2 ** 20 and len(roof["samples_s"]) == 2
    assert roof["gbps"] == pytest.approx(roof["bytes"] / min(roof["samples_s"]) / 1e9)
    again = timing.copy_roof(np.float64, 2, budget, mib=2, earlier=roof)
    assert len(again["samples_s"]) == 4 and again["best_s"] == min(again["samples_s"])


def test_run_suite_roofs_and_skips():
    """One quick run: the roofs per (dtype, threads), GB/s for the memory-bound rows, the
    mixed row skipped (and listed) in float32."""
    from nnfast.bench.run import run_suite

    chosen = [WORKLOADS[n] for n in ("relu_16x28x28", "softmax_xent_1000x10",
                                     "train_simpleconv_mixed")]
    budget = timing.Budget(rounds=1, min_sample_s=0.0)
    out = run_suite(chosen, (np.float32, np.float64), [1], ("nnfast", "reference"), budget)
    assert [(c["dtype"], c["threads"]) for c in out["copy_roof"]] == [("float32", 1),
                                                                     ("float64", 1)]
    assert all(len(c["samples_s"]) == 2 and c["gbps"] > 0 for c in out["copy_roof"])
    assert out["skipped"] == [{"workload": "train_simpleconv_mixed", "dtype": "float32",
                               "threads": 1, "reason": "only meaningful in float64"}]
    names = [(r["workload"], r["dtype"]) for r in out["results"]]
    assert ("train_simpleconv_mixed", "float64") in names
    assert ("train_simpleconv_mixed", "float32") not in names
    roofs = {c["dtype"]: c["gbps"] for c in out["copy_roof"]}
    for r in out["results"]:
        if r["kind"] == "train_step_mixed":
            assert r["gbps"] is None and r["gflops"] > 0
            continue
        med = r["impls"]["nnfast"]["median_s"]
        assert r["bytes"] == WORKLOADS[r["workload"]].bytes(r["dtype"])
        assert r["gbps"] == pytest.approx(r["bytes"] / med / 1e9)
        assert r["fraction_of_copy_roof"] == pytest.approx(r["gbps"] / roofs[r["dtype"]])


def test_build_checks_its_arguments(monkeypatch):
    w = WORKLOADS["softmax_xent_10"]
    with pytest.raises(ValueError, match="impl"):
        w.build("numpy", np.float32)
    with pytest.raises(TypeError, match="dtype"):
        w.build("nnfast", np.int32)
    with pytest.raises(ValueError, match="impl"):
        WORKLOADS["im2col_simple"].build("torch", np.float32)
    monkeypatch.setattr(workloads, "_torch", False)  # as if torch were not installed
    assert workloads.available_impls() == ("nnfast", "reference")
    with pytest.raises(RuntimeError, match="torch is not installed"):
        w.build("torch", np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nnfast_and_reference_steps_agree(dtype):
    """The two builders time the same computation: one step of each gives the same gradient."""
    grads = {}
    for impl in ("nnfast", "reference"):
        net, (x, t) = workloads.make_net(impl, "MultiLayerNetExtend", dtype)
        grads[impl] = net.gradient(x, t)
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    for key, g in grads["reference"].items():
        np.testing.assert_allclose(grads["nnfast"][key], g, rtol=rtol, atol=rtol * 1e-2)


@pytest.mark.skipif(workloads.torch_or_none() is None, reason="torch is not installed")
@pytest.mark.parametrize("name", ["SimpleConvNet", "DeepConvNet", "MultiLayerNetExtend"])
def test_torch_models_have_the_networks_sizes(name):
    net, _ = workloads.make_net("nnfast", name, np.float32)
    model = workloads.torch_model(name)
    # BatchNorm's gamma/beta are parameters on both sides.
    assert sum(p.numel() for p in model.parameters()) == sum(p.size for p in net.params.values())


# --------------------------------------------------------------------------- timing

def test_measure_interleaves_and_rotates():
    calls = []
    fns = {name: (lambda name=name: calls.append(name)) for name in ("a", "b", "c")}
    budget = timing.Budget(rounds=4, min_sample_s=0.0)
    out = timing.measure(fns, budget)
    assert {k: len(v["samples_s"]) for k, v in out.items()} == {"a": 4, "b": 4, "c": 4}
    assert all(v["number"] == 1 for v in out.values())
    timed = calls[6:]  # after two calls each to calibrate
    # each sample is one untimed call then the timed one, of the same implementation
    assert timed == [c for c in "abc" "bca" "cab" "abc" for _ in range(2)]


def test_measure_batches_fast_calls():
    out = timing.measure({"noop": lambda: None}, timing.Budget(rounds=2, min_sample_s=0.001))
    assert out["noop"]["number"] > 1 and len(out["noop"]["samples_s"]) == 2


def test_limit_threads_restores():
    import nnfast

    before = nnfast.get_num_threads()
    with timing.limit_threads(1):
        assert nnfast.get_num_threads() == 1
    assert nnfast.get_num_threads() == before


def test_machine_description():
    machine = timing.machine_info()
    line = timing.describe(machine)
    assert machine["cpu"] in line and f"numpy {np.__version__}" in line
    assert machine["cpus_usable"] >= 1 and machine["nnfast_kernels"] > 0


# --------------------------------------------------------------------------- report

def _fake(name="conv_x", flops=None, traffic=None):
    return Workload(name, "conv", "shape", make=None, flops=flops, traffic=traffic)


def _timings(**medians):
    return {impl: {"samples_s": [m * 2, m, m * 0.5], "number": 1} for impl, m in medians.items()}


def test_summarize_ratios_and_rates():
    r = report.summarize(_fake(flops=4e9), "float32", 2,
                         _timings(nnfast=0.010, reference=0.040, torch=0.005), peak_gflops=800)
    assert r["impls"]["nnfast"]["median_s"] == 0.010
    assert r["ratio_vs_reference"] == pytest.approx(4.0)
    assert r["ratio_vs_torch"] == pytest.approx(0.5)
    assert r["gflops"] == pytest.approx(400.0)
    assert r["fraction_of_gemm_peak"] == pytest.approx(0.5)


def test_summarize_missing_sides():
    r = report.summarize(_fake(), "float64", 1, _timings(nnfast=0.01, reference=0.02))
    assert r["ratio_vs_torch"] is None and r["gflops"] is None
    assert r["fraction_of_gemm_peak"] is None
    assert report.median([3.0, 1.0, 2.0, 10.0]) == 2.5
    with pytest.raises(ValueError):
        report.median([])


def test_table():
    results = [report.summarize(_fake("conv_a", 2e9), "float32", 2,
                                _timings(nnfast=0.0125, reference=0.05, torch=0.00625), 400),
               report.summarize(_fake("softmax_b"), "float64", 1,
                                _timings(nnfast=0.00002, reference=0.00003))]
    text = report.format_table(results)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["workload", "dtype", "thr"]
    assert lines[0].split()[-3:] == ["rate", "of", "roof"]
    assert lines[2].split() == ["conv_a", "float32", "2", "12.5", "50.0", "6.25", "4.00x",
                                "0.50x", "160.0", "GFLOP/s", "40%", "peak"]
    assert lines[3].split() == ["softmax_b", "float64", "1", "0.020", "0.030", "-", "1.50x",
                                "-", "-", "-"]
    assert len({len(line) for line in lines[:3]}) == 1  # aligned columns
    md = report.format_table(results, markdown=True).splitlines()
    assert len(md) == 4 and md[2].startswith("| conv_a | float32 | 2 | 12.5 |")
    assert md[2].endswith("| 160.0 GFLOP/s | 40% peak |")
    # a memory-bound row: GB/s of the copy roof in the same two columns
    pool = report.summarize(_fake("pool_c", traffic=lambda s: 1e6 * s), "float32", 1,
                            _timings(nnfast=0.001), copy_gbps=8.0)
    row = report.format_table([pool]).splitlines()[2].split()
    assert row[-4:] == ["4.0", "GB/s", "50%", "copy"]
    assert report.format_table([pool], markdown=True).endswith("| 4.0 GB/s | 50% copy |")


def test_summarize_bytes_and_copy_roof():
    w = _fake("relu_x", traffic=lambda s: 3_000_000 * s)
    r = report.summarize(w, "float64", 2, _timings(nnfast=0.004, torch=0.008), copy_gbps=12.0)
    assert r["bytes"] == 24_000_000 and r["gflops"] is None
    assert r["gbps"] == pytest.approx(24e6 / 0.004 / 1e9)  # 6 GB/s
    assert r["fraction_of_copy_roof"] == pytest.approx(0.5)
    assert r["fraction_of_gemm_peak"] is None
    # GEMM-bound rows keep GFLOP/s and get no GB/s
    g = report.summarize(_fake(flops=4e9), "float32", 1, _timings(nnfast=0.01), 800, 12.0)
    assert g["bytes"] is None and g["gbps"] is None and g["fraction_of_copy_roof"] is None
    assert report.with_roofs(r)["fraction_of_copy_roof"] is None  # roof unknown


def test_check_report_rejects_inconsistent_data():
    r = report.summarize(_fake(), "float32", 1, _timings(nnfast=0.01, reference=0.02))
    good = report.report({"cpu": "x"}, {}, [], [r])
    report.check_report(json.loads(json.dumps(good)))
    bad = json.loads(json.dumps(good))
    bad["results"][0]["impls"]["nnfast"]["median_s"] = 1.0
    with pytest.raises(ValueError, match="median"):
        report.check_report(bad)
    bad = json.loads(json.dumps(good))
    del bad["results"][0]["impls"]["nnfast"]
    with pytest.raises(ValueError, match="nnfast"):
        report.check_report(bad)
    m = report.summarize(_fake(traffic=lambda s: 1000 * s), "float32", 1,
                         _timings(nnfast=0.01))
    bad = json.loads(json.dumps(report.report({"cpu": "x"}, {}, [], [m])))
    report.check_report(bad)
    bad["results"][0]["gbps"] *= 2
    with pytest.raises(ValueError, match="gbps"):
        report.check_report(bad)


@pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="the chart needs matplotlib")
def test_ratio_chart(tmp_path):
    from nnfast.plotting import save_ratio_chart

    path = save_ratio_chart(["a", "b"], {"vs reference": [2.0, 0.5], "vs torch": [None, 3.0]},
                            str(tmp_path / "sub" / "c.png"))
    width, height = _png_size(path)
    assert width > 100 and height > 50
    with pytest.raises(ValueError, match="2 labels"):
        save_ratio_chart(["a", "b"], {"vs reference": [1.0]}, str(tmp_path / "d.png"))


# --------------------------------------------------------------------------- the command

def test_list_and_no_match(capsys):
    assert cli.main(["bench", "--list"]) == 0
    out = capsys.readouterr().out
    assert "train_deepconv" in out and "conv_deep6" in out
    assert cli.main(["bench", "--only", "no_such_workload"]) == 2
    assert "matches no workload" in capsys.readouterr().err


def test_float32_run_skips_the_mixed_row_visibly(capsys):
    assert cli.main(["bench", "--all", "--only", "train_simpleconv_mixed", "--dtype",
                     "float32", "--threads", "1", "--no-progress", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert ("\n\nskipped: train_simpleconv_mixed in float32 at 1 thread(s) (only meaningful "
            "in float64)") in out


def test_bad_arguments():
    with pytest.raises(SystemExit):
        cli.main(["bench", "--threads", "0"])
    with pytest.raises(SystemExit):
        cli.main(["bench", "--dtype", "float16"])


@pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="the chart needs matplotlib")
def test_bench_end_to_end(tmp_path):
    """`python -m nnfast bench --quick` on one small workload: exit code, table, JSON, PNG."""
    out_json, out_png = tmp_path / "bench.json", tmp_path / "bench.png"
    proc = subprocess.run(
        [sys.executable, "-m", "nnfast", "bench", "--quick", "--only", "softmax_xent_10",
         "--dtype", "both", "--threads", "1", "--json", str(out_json), "--plot", str(out_png)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("nnfast bench: 1 workload(s)")
    assert "machine: " in proc.stdout and "numpy.matmul float32 1024x1024" in proc.stdout
    rows = [line.split() for line in proc.stdout.splitlines()
            if line.startswith("softmax_xent_10")]
    assert [row[1:3] for row in rows] == [["float32", "1"], ["float64", "1"]]
    data = report.check_report(json.loads(out_json.read_text()))
    assert data["command"].startswith("nnfast bench --quick")
    assert data["settings"]["threads"] == [1]
    assert data["settings"]["dtypes"] == ["float32", "float64"]
    assert [(p["dtype"], p["threads"]) for p in data["gemm_peak"]] == [("float32", 1),
                                                                      ("float64", 1)]
    assert all(p["gflops"] > 0 for p in data["gemm_peak"])
    assert "copy nnfast._kernels.scale float32 64 MiB" in proc.stdout
    assert [(c["dtype"], c["threads"]) for c in data["copy_roof"]] == [("float32", 1),
                                                                      ("float64", 1)]
    roofs = {c["dtype"]: c["gbps"] for c in data["copy_roof"]}
    for r in data["results"]:
        assert r["workload"] == "softmax_xent_10" and r["kind"] == "softmax_xent"
        assert set(r["impls"]) == set(workloads.available_impls())
        expected = r["impls"]["reference"]["median_s"] / r["impls"]["nnfast"]["median_s"]
        assert r["ratio_vs_reference"] == pytest.approx(expected)
        assert r["gflops"] is None
        assert r["bytes"] == WORKLOADS["softmax_xent_10"].bytes(r["dtype"])
        assert r["gbps"] == pytest.approx(r["bytes"] / r["impls"]["nnfast"]["median_s"] / 1e9)
        assert r["fraction_of_copy_roof"] == pytest.approx(r["gbps"] / roofs[r["dtype"]])
    for key in ("cpu", "cpus", "numpy", "blas", "nnfast", "nnfast_openmp", "torch"):
        assert key in data["machine"]
    width, height = _png_size(out_png)
    assert width > 100 and height > 50


def test_roofline_json(tmp_path, capsys):
    path = tmp_path / "roof.json"
    assert cli.main(["bench", "--roofline", "--repeat", "1", "--threads", "1",
                     "--json", str(path)]) == 0
    assert "whole step (measured)" in capsys.readouterr().out
    data = json.loads(path.read_text())
    passes = {p["pass"]: p for p in data["passes"]}
    # the network's fused passes: Conv1 + Relu1 forward, Pool1 + Relu1 backward
    conv_relu = passes["Conv1 + Relu1 forward"]
    assert conv_relu["flops"] == 2 * 100 * 576 * 25 * 30 + 1728000
    assert passes["Conv1 backward"]["flops"] == 2 * 100 * 576 * 25 * 30  # dW only: no dx
    assert "Pool1 + Relu1 backward" in passes and "Relu1 forward" not in passes
    assert passes["Affine1 backward"]["flops"] == 2 * 2 * 100 * 4320 * 100
    # which roof bounds a pass depends on the roofs measured in this run (a loaded machine
    # measures a low bandwidth); what is fixed is the intensity, and the rule
    assert passes["Affine1 forward"]["intensity"] > 20 > 1 > passes["Relu2 forward"]["intensity"]
    peak, bw = data["gemm_peak"]["gflops"] * 1e9, data["bandwidth"]["gbs"] * 1e9
    for p in passes.values():
        assert p["bound"] == ("compute" if p["flops"] / peak >= p["bytes"] / bw else "memory")
    # x (100*784 floats) + W, b + out (100*30*24*24) + the ReLU's 1-byte mask; on the
    # columns also the column matrix written and read back, and the ReLU a pass of its own
    # (it reads out and writes its output)
    from nnfast import _dispatch
    plan = _dispatch.conv_plan(1, 30, 5, 5, 1, 576)
    assert conv_relu["method"] == plan
    extra = 0 if _dispatch._direct(100, 1, 30, 1, 576, 5, 5) else 2 * 1440000 + 2 * 1728000
    assert conv_relu["bytes"] == 4 * (78400 + 780 + 1728000 + extra) + 1728000
    assert data["net"] == "SimpleConvNet"
    assert data["gemm_peak"]["gflops"] > 0 and data["bandwidth"]["gbs"] > 0


DEEPCONV_LAYERS = ([f"Conv{i}" for i in range(1, 7)] + [f"Relu{i}" for i in range(1, 8)]
                   + ["Pool1", "Pool2", "Pool3", "Affine1", "Affine2", "Dropout1", "Dropout2"])


def _layers_of(pass_name, direction):
    return pass_name[:-len(" " + direction)].split(" + ")


def test_deepconv_roofline_model():
    """The passes of one DeepConvNet step, as the network runs them (no timing)."""
    from nnfast import _dispatch
    from nnfast.bench import roofline

    passes, _ = roofline.deepconv_passes(np.float32)
    names = [p["pass"] for p in passes]
    assert len(set(names)) == len(names)
    for direction in ("forward", "backward"):
        covered = [layer for name in names if name.endswith(" " + direction)
                   and not name.startswith("SoftmaxWithLoss")
                   for layer in _layers_of(name, direction)]
        assert sorted(covered) == sorted(DEEPCONV_LAYERS), direction  # each layer once
    assert names[-1] == "Adam update"
    assert {"SoftmaxWithLoss forward", "SoftmaxWithLoss backward"} <= set(names)
    by = {p["pass"]: p for p in passes}
    # the fused passes: each convolution with its ReLU forward, each pooling with the ReLU
    # before it backward; Relu7 follows an Affine and runs alone
    for i in range(1, 7):
        assert f"Conv{i} + Relu{i} forward" in by
    for pool, relu in ((1, 2), (2, 4), (3, 6)):
        assert f"Pool{pool} + Relu{relu} backward" in by
    assert "Relu7 forward" in by and "Relu1 backward" in by
    # FLOPs: the GEMM work adds up to the train_deepconv workload's count (the first
    # convolution computes no dx), plus one per ReLU element in the fused forwards
    shapes = workloads._deepconv_shapes()
    relu_elements = 0
    for i, (xs, ws, pad) in enumerate(shapes, start=1):
        product = workloads.conv_product_flops(xs, ws, 1, pad)
        fused = by[f"Conv{i} + Relu{i} forward"]
        oh = xs[2] + 2 * pad - 2
        out = xs[0] * ws[0] * oh * oh
        relu_elements += out
        assert fused["flops"] == product + out
        assert by[f"Conv{i} backward"]["flops"] == product * (1 if i == 1 else 2)
        plan = _dispatch.conv_plan(xs[1], ws[0], 3, 3, 1, oh * oh)
        assert fused["method"] == plan
        assert by[f"Conv{i} backward"]["method"].startswith(plan)
        assert (" + dx " in by[f"Conv{i} backward"]["method"]) == (i > 1)
        # x + W, b + out + the mask; on the columns the column matrix twice and the ReLU's
        # own read and write of out
        cols = xs[0] * oh * oh * xs[1] * 9
        extra = 0 if plan != "columns" else 2 * cols + 2 * out
        x_size = int(np.prod(xs))
        assert fused["bytes"] == 4 * (x_size + int(np.prod(ws)) + ws[0] + out + extra) + out
    gemm = sum(p["flops"] for p in passes
               if p["pass"].startswith(("Conv", "Affine"))) - relu_elements
    assert gemm == WORKLOADS["train_deepconv"].flops


def test_deepconv_roofline_json(tmp_path, capsys):
    path = tmp_path / "roof.json"
    assert cli.main(["bench", "--roofline", "--net", "deepconv", "--repeat", "1",
                     "--threads", "1", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "DeepConvNet training step, batch 100, float32" in out
    for row in ("sum of passes", "whole step (measured)", "step - sum of passes"):
        assert row in out
    data = json.loads(path.read_text())
    assert data["net"] == "DeepConvNet" and data["threads"] == 1
    peak, bw = data["gemm_peak"]["gflops"] * 1e9, data["bandwidth"]["gbs"] * 1e9
    for p in data["passes"]:
        # the rule, whatever roofs this run measured
        assert p["bound_s"] == pytest.approx(max(p["flops"] / peak, p["bytes"] / bw))
        assert p["bound"] == ("compute" if p["flops"] / peak >= p["bytes"] / bw else "memory")
        assert p["of_roofline"] == pytest.approx(p["bound_s"] / p["median_s"])
        assert p["median_s"] == pytest.approx(float(np.median(p["samples_s"])))
    assert data["sum_of_passes_s"] == pytest.approx(sum(p["median_s"] for p in data["passes"]))
    assert data["step_bound_s"] == pytest.approx(sum(p["bound_s"] for p in data["passes"]))
    assert data["step_minus_passes_s"] == pytest.approx(data["step_s"]
                                                        - data["sum_of_passes_s"])
    assert len(data["passes"]) == 34  # 14 forward, 2 softmax, 17 backward, Adam


def test_net_needs_roofline(capsys):
    assert cli.main(["bench", "--net", "deepconv"]) == 2
    assert "--roofline" in capsys.readouterr().err
    from nnfast.bench import roofline
    assert set(cli.ROOFLINE_NETS) == set(roofline.NETS)


# --------------------------------------------------------------------------- benchmarks/

@pytest.mark.skipif(not HAVE_PYTEST_BENCHMARK, reason="needs pytest-benchmark")
@pytest.mark.skipif(not os.path.isdir(os.path.join(ROOT, "benchmarks")),
                    reason="benchmarks/ is not next to the tests (installed package)")
def test_benchmarks_smoke():
    """`pytest benchmarks --benchmark-disable`: every benchmark body runs once and passes."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks", "--benchmark-disable", "-x", "-q",
         "-p", "no:cacheprovider"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout and " failed" not in proc.stdout
