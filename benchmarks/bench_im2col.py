"""im2col / col2im: compiled kernel vs the NumPy reference, in one run.

Reproduce:  pytest benchmarks/bench_im2col.py --benchmark-only --benchmark-json=im2col.json
            python benchmarks/ratios.py im2col.json
Shapes (``nnfast.bench.workloads``' "im2col"/"col2im" entries): SimpleConvNet's first layer
(batch 100, 1x28x28, 5x5 filter) and a DeepConvNet middle layer (batch 100, 16x14x14, 3x3,
pad 1). No torch row: PyTorch has no public im2col of this layout.
"""
KINDS = ("im2col", "col2im")


def test_im2col_col2im(run_workload, workload, impl, dtype, threads):
    run_workload(workload, impl, dtype, threads)
