"""Benchmarks of nnfast against its NumPy reference and PyTorch CPU: ``nnfast bench``.

``workloads``: what is timed (shared with benchmarks/, the pytest-benchmark suite);
``timing``: interleaved measurement, thread limits, the GEMM and memory roofs, the machine;
``report``: medians, ratios, the table, the JSON and the chart; ``roofline``: the SimpleConvNet
training step against the machine's roofs; ``run``: the command.
"""
