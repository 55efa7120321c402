"""Dense ops: compiled nnfast vs the NumPy reference (and PyTorch CPU when installed), one run.

Reproduce:
    pytest benchmarks/bench_dense.py --benchmark-only --benchmark-max-time=0.5 \
        --benchmark-json=dense.json && python benchmarks/ratios.py dense.json
Each timed body is one training step of the op: forward (train mode) + backward, or one
optimizer update. The workloads are ``nnfast.bench.workloads``' entries of these kinds: Affine
as in SimpleConvNet (100x4320 -> 100) and TwoLayerNet (100x784 -> 50); SoftmaxWithLoss on
(100, 10) and (256, 1000); BatchNormalization on (100, 100) and (100, 16, 28, 28) (per
feature); Dropout on (100, 100); every optimizer over SimpleConvNet's parameter set. PyTorch
runs the same step with autograd / torch.optim.
"""
KINDS = ("affine", "softmax_xent", "batchnorm", "dropout", "optimizer")


def test_dense(run_workload, workload, impl, dtype, threads):
    run_workload(workload, impl, dtype, threads)
