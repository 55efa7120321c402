"""Convolution and pooling layers, forward + backward: nnfast vs reference (vs PyTorch CPU), one run.

Reproduce:  pytest benchmarks/bench_conv_pool.py --benchmark-only --benchmark-json=conv.json
            python benchmarks/ratios.py conv.json
(``--long`` adds every DeepConvNet layer shape.) Batch 100, as in training. The workloads
(shapes, setup, the torch equivalents) are ``nnfast.bench.workloads``' "conv", "maxpool" and
"avgpool" entries: SimpleConvNet's conv and DeepConvNet's, 2x2 pooling after them. The timed
body is one forward and one backward of a layer built in setup; torch runs the same op through
autograd.
"""
KINDS = ("conv", "maxpool", "avgpool")


def test_layer_forward_backward(run_workload, workload, impl, dtype, threads):
    run_workload(workload, impl, dtype, threads)
