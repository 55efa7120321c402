"""benchmarks/ops_overhead.py runs (every row, a few calls each; nothing is timed here)."""
import importlib.util
import pathlib

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "ops_overhead.py"


def test_ops_overhead_script_runs(capsys, tmp_path):
    spec = importlib.util.spec_from_file_location("nnfast_ops_overhead", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "o.json"
    import nnfast
    before = nnfast.get_num_threads()
    try:
        results = module.main(["--number", "3", "--json", str(out)])
    finally:
        nnfast.set_num_threads(before)
    assert set(results) >= {"relu (10,)", "softmax_cross_entropy (1, 10)", "adam_ (10,)"}
    assert all({"ops", "layer"} <= set(row) for row in results.values())
    assert out.exists() and "relu (10,)" in capsys.readouterr().out
