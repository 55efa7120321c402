"""One full training step (gradient + Adam update) at batch 100: nnfast vs the NumPy reference
vs an equivalent PyTorch CPU model (when torch is importable), in one run.

Reproduce:
    pytest benchmarks/bench_train_step.py --benchmark-only --benchmark-json=step.json
    python benchmarks/ratios.py step.json

Networks (input 1x28x28, 10 classes, the reference's default configurations):
  SimpleConvNet        conv(30, 5x5) - relu - pool 2x2 - affine(100) - relu - affine(10)
  DeepConvNet          3 x [conv 3x3 - relu - conv 3x3 - relu - pool] (16,16,32,32(pad 2),64,64)
                       - affine(50) - relu - dropout - affine(10) - dropout
  MultiLayerNetExtend  784 - 5 x [affine(100) - batchnorm - relu] - affine(10)
The torch models (``nnfast.bench.workloads.torch_model``) have the same layers and sizes,
trained with autograd + torch.optim.Adam (lr 0.001) on the same batch; `zero_grad, forward,
loss, backward, step` is one step. nnfast's step is `grads = net.gradient(x, t);
Adam.update(net.params, grads)`.
"""
KINDS = ("train_step",)
# Rounds per timing: the reference DeepConvNet step takes about a second in float64.
ROUNDS = {"train_simpleconv": 10, "train_deepconv": 5, "train_mlp_bn": 20}


def test_train_step(run_workload, workload, impl, dtype, threads):
    run_workload(workload, impl, dtype, threads, rounds=ROUNDS[workload.name])
